"""The NTK at initialization to order 1/n, one input: its mean shift, its fluctuations and its
correlation with the preactivations (PDLT ch. 8's A, B, D, F; derivation in ``docs/ntk.md`` §7).

One rule per block kind ``rule(block, state, ctx) -> state`` (:data:`THEORY`, folded by
:func:`critheory.theory.fold.fold`) on the fields ``theta1``, ``theta_a``, ``theta_b``,
``theta_d``, ``theta_f``, ``theta_s``, ``theta_sx`` of the one
:class:`~critheory.theory.state.State` (see its docstring), beside the finite-width fields
``K``, ``K1``, ``V``, ``D`` of :mod:`critheory.theory.finitewidth.rules` (whose rules map them
here) and the infinite-width ``theta`` of :mod:`critheory.theory.ntk.rules`. Gaussian
expectations and their K-derivatives go through the mean-field route
(:func:`critheory.theory.meanfield.rules.E`, :func:`~critheory.theory.meanfield.rules.dE`).
Notation (input kernel ``K``): ``g = E_K[φ²]``, ``h = E_K[φ'²]``, ``g', h', h''`` their
K-derivatives, ``e = E_K[z φ φ']``; ``λ_b``, ``λ_W`` the layer's rates (``ctx``), ``σ_w²`` the
dense block's. ``A, B, Dn, F`` are ``theta_a, theta_b, theta_d, theta_f``; ``D``, ``V``, ``K1``
the finite-width fields; ``s, sx`` = ``theta_s, theta_sx``.

=====  =========================================================================================
block  rule
=====  =========================================================================================
phi    ``Θ1 ← hΘ1 + Θ(h'K1 + ½h''V) + h'(Dn + 2F)``, ``A ← h²A + 2hh'Θ Dn + h'²Θ²V``,
       ``Dn ← g'(h Dn + h'ΘV)``, ``B ← h²B``, ``F ← (e/K)² F``,
       ``s = Θ²(E[φ'⁴] − h²)``, ``sx = Θ(E[φ²φ'²] − gh)``
dense  ``Θ1 ← λ_W K1 + σ_w²Θ1``, ``A ← λ_W²(D + V) + 2λ_Wσ_w²(sx + Dn) + σ_w⁴(s + A)``,
       ``Dn ← σ_w²[λ_W(D + V) + σ_w²(sx + Dn)]``, ``B ← σ_w⁴(s + Θ² + B)``,
       ``F ← σ_w⁴(sx + KΘ + F)``; ``s = sx = 0``
resid  ``z' = μz + W φ(z) + b`` (the branch (phi, dense), φ linear only): with the branch's
       own fields (subscript b) and its tangents ``χ = σ_w²g'``, ``τ_K = λ_W g' + σ_w²Θh'``, ``τ_Θ = σ_w²h``:
       ``Θ1 ← μ²Θ1 + Θ1_b``, ``A ← μ⁴A + 2μ²(τ_K Dn + τ_Θ A) + A_b``,
       ``B ← μ⁴B + 2μ²σ_w²h(Θ² + B) + B_b``,
       ``Dn ← μ⁴Dn + μ²[χ Dn + τ_K(D + V) + τ_Θ Dn] + Dn_b``,
       ``F ← μ⁴F + 2μ²σ_w² e (Θ + F/K) + F_b``
=====  =========================================================================================

Depth: beyond 64 layers :func:`critheory.theory.ntk.depth.ntk_curves` reads one layer from
verified tables instead of folding it at every layer (:func:`tabulated_fields`,
``docs/ntk.md`` §7.6; :func:`finite_width_fields` is the per-layer route). Several inputs:
:mod:`critheory.theory.ntk.finite_data` (m = 1 is this module's numbers).

LayerNorm, RMSNorm, attention and the MLP block (a hidden layer of another width) are refused in
one line naming the block; so is a residual block of a nonlinear φ (:data:`RESIDUAL_REFUSAL`:
the rule above treats the residual stream as a Gaussian scale mixture, exact where every
expectation is quadratic; for tanh at μ = 0.7 the measured ``n Var(Θ̂)`` at depth 6 lies 7 % above
it at n = 64 and at n = 256 alike, for ReLU the stream has an odd cross cumulant
``E[z_j z_k²] = μσ_w²E[zφ²]/n`` the closure sets to 0). For a Gaussian representation
``n Var(Θ̂_ii) = A + 2B`` and ``n Cov(Θ̂_ii, z_i²) = Dn + 2F`` (:func:`variance`, :func:`cross`).

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.fold import Ctx
>>> from critheory.theory.ntk.finite import apply, start, variance
>>> net = network("mlp", "relu")
>>> ctx = Ctx(net.activation, 2.0, 0.0, lambda_b=1.0, lambda_w=0.0)
>>> s = start(1.0, weight_var=2.0, lambda_b=1.0, lambda_w=0.0)      # K¹ = 2, Θ¹ = 1
>>> s = apply(net, apply(net, s, ctx), ctx)                         # layer 3
>>> float(s.theta), float(s.theta1), float(variance(s))  # n Var = 5 Σ_{l<3} (Θ^l)² = 25
(3.0, 0.0, 25.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.errors import InvalidArgumentError
from critheory.expectations import expect
from critheory.theory.finitewidth.rules import THEORY as FINITE_WIDTH
from critheory.theory.fold import GRAMMAR, Ctx, Theory, fold, fold_branch
from critheory.theory.meanfield.rules import E, dE
from critheory.theory.state import Rep, State

__all__ = ["RULES", "THEORY", "RESIDUAL_REFUSAL", "apply", "start", "variance", "cross",
           "moments", "check_network", "check_residual", "finite_width_fields",
           "tabulated_fields", "layer_probes", "layer_table", "TABLE_FIELDS", "TABLE_ROWS",
           "TABLE_RTOL"]

_NAME = "NTK (finite width)"


def _integrand(act, name: str):
    """``φ'⁴`` or ``φ²φ'²`` as an integrand of ``act`` (built once per activation)."""
    from critheory.expectations.integrands import integrand

    cache = act.__dict__.setdefault("_ntk_finite", {})
    if name not in cache:
        phi, d1 = integrand(act, "phi").expr, act.derivative(1)
        cache[name] = integrand(act, d1 ** 4 if name == "dphi4" else phi ** 2 * d1 ** 2)
    return cache[name]


def moments(act, K) -> dict:
    """The Gaussian expectations the rules read at input kernel ``K`` (module docstring): a dict
    of arrays ``g, g1, h, h1, h2, e, dphi4, phi2dphi2`` (``E[φ'⁴]``, ``E[φ²φ'²]``)."""
    K = np.asarray(K, dtype=float)
    out = {"g": E(act, "phi2", K), "g1": dE(act, K, 1), "h": E(act, "dphi2", K),
           "h1": dE(act, K, 1, "dphi2"), "h2": dE(act, K, 2, "dphi2"),
           "e": E(act, "h_phi_dphi", K)}
    ok = np.isfinite(K) & (K > 0)
    for name in ("dphi4", "phi2dphi2"):
        v = np.full(K.shape, np.nan)
        if ok.any():
            v[ok] = expect(act, _integrand(act, name), K[ok]).value
        out[name] = v
    return out


def _zero_if_none(x):
    return 0.0 if x is None else x


def _check_width(block, s: State) -> None:
    if getattr(block, "width", 1.0) != 1.0 or s.width != 1.0:
        raise InvalidArgumentError(f"the {_NAME} theory follows layers of the network's width "
                                   f"only (a dense block of width {block.width:g})")


def _dense(block, s: State, ctx: Ctx) -> State:
    _check_width(block, s)
    sw, _ = ctx.variances(block)
    lb, lw = ctx.lambda_b, ctx.lambda_w
    out = FINITE_WIDTH.rule(block)(block, s, ctx)
    ts, tsx = _zero_if_none(s.theta_s), _zero_if_none(s.theta_sx)
    with np.errstate(invalid="ignore", over="ignore"):
        DV = s.D + s.V                        # n Var((1/n) Σ x²)
        return out.with_(
            theta=lb + lw * s.K + sw * s.theta, theta1=lw * s.K1 + sw * s.theta1,
            theta_a=lw * lw * DV + 2.0 * lw * sw * (tsx + s.theta_d) + sw * sw * (ts + s.theta_a),
            theta_b=sw * sw * (ts + s.theta * s.theta + s.theta_b),
            theta_d=sw * (lw * DV + sw * (tsx + s.theta_d)),
            theta_f=sw * sw * (tsx + s.K * s.theta + s.theta_f),
            theta_s=None, theta_sx=None)


def _phi(block, s: State, ctx: Ctx) -> State:
    if s.P is not None and np.any(s.P != 0):
        raise InvalidArgumentError(f"the {_NAME} theory has no rule for an activation of a "
                                   "correlated (normalized) input")
    m = moments(ctx.activation, s.K)
    out = FINITE_WIDTH.rule(block)(block, s, ctx)
    T, h, h1 = s.theta, m["h"], m["h1"]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return out.with_(
            theta=h * T,
            theta1=h * s.theta1 + T * (h1 * s.K1 + 0.5 * m["h2"] * s.V)
            + h1 * (s.theta_d + 2.0 * s.theta_f),
            theta_a=h * h * s.theta_a + 2.0 * h * h1 * T * s.theta_d + h1 * h1 * T * T * s.V,
            theta_d=m["g1"] * (h * s.theta_d + h1 * T * s.V),
            theta_b=h * h * s.theta_b,
            theta_f=(m["e"] / s.K) ** 2 * s.theta_f,
            theta_s=T * T * (m["dphi4"] - h * h), theta_sx=T * (m["phi2dphi2"] - m["g"] * h))


def _branch_is_phi_dense(block) -> bool:
    """True for a branch (phi, dense) of the network's width, read off the one grammar: the
    activation is the block that makes ``φ(h)`` of a Gaussian, the dense block the one whose
    rule does not read its input kernel."""
    br = tuple(block.branch)
    return (len(br) == 2 and GRAMMAR[br[0].kind].makes(Rep.GAUSSIAN) is Rep.PHI
            and not GRAMMAR[br[1].kind].reads_kernel and getattr(br[1], "width", 1.0) == 1.0)


def _affine(act) -> bool:
    """True for an affine φ (φ'' = 0 and no jump of φ'): every expectation is quadratic."""
    return act.derivative(2) == 0 and not act.jumps


#: why a residual block of a nonlinear activation is refused (``docs/ntk.md`` §7.4)
RESIDUAL_REFUSAL = (f"the {_NAME} theory has a residual rule for a linear activation only: "
                    "through the skip path each neuron stays correlated with its own past, "
                    "which the order-1/n closure follows only for quadratic expectations")


def check_residual(block, act) -> None:
    """Refuse a residual block these rules do not follow: a branch other than (phi, dense) of
    the network's width, or a nonlinear φ (:data:`RESIDUAL_REFUSAL`)."""
    if not _branch_is_phi_dense(block):
        raise InvalidArgumentError(f"the {_NAME} theory has a residual rule for the branch "
                                   "(phi, dense) only (h' = mu h + W phi(h) + b)")
    if not _affine(act):
        raise InvalidArgumentError(RESIDUAL_REFUSAL)


def _residual(block, s: State, ctx: Ctx) -> State:
    check_residual(block, ctx.activation)
    sw, _ = ctx.variances(block.branch[1])
    lw = ctx.lambda_w
    b = fold_branch(block, s, ctx, THEORY)
    out = FINITE_WIDTH.rule(block)(block, s, ctx)
    m = moments(ctx.activation, s.K)
    mu2 = block.mu ** 2
    T = s.theta
    chi, tK, tT = sw * m["g1"], lw * m["g1"] + sw * T * m["h1"], sw * m["h"]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return out.with_(
            theta=mu2 * T + b.theta, theta1=mu2 * s.theta1 + b.theta1,
            theta_a=mu2 * mu2 * s.theta_a + 2.0 * mu2 * (tK * s.theta_d + tT * s.theta_a)
            + b.theta_a,
            theta_b=mu2 * mu2 * s.theta_b + 2.0 * mu2 * sw * m["h"] * (T * T + s.theta_b)
            + b.theta_b,
            theta_d=mu2 * mu2 * s.theta_d
            + mu2 * (chi * s.theta_d + tK * (s.D + s.V) + tT * s.theta_d) + b.theta_d,
            theta_f=mu2 * mu2 * s.theta_f + 2.0 * mu2 * sw * m["e"] * (T + s.theta_f / s.K)
            + b.theta_f,
            theta_s=None, theta_sx=None)


#: block kind -> rule ``(block, state, ctx) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "residual": _residual}
#: the finite-width NTK theory's registry (an activation and a residual block need a dense
#: block's output: a Gaussian representation)
THEORY = Theory(_NAME, RULES,
                needs={"residual": frozenset({Rep.GAUSSIAN}), "phi": frozenset({Rep.GAUSSIAN})},
                reasons={"residual": f"a residual block's input must be a dense block's output "
                                     f"(the {_NAME} rule)",
                         "phi": f"an activation must follow a dense block (the {_NAME} rule)"})


def start(q0, *, weight_var=1.0, bias_var=0.0, lambda_b=0.0, lambda_w=0.0) -> State:
    """Layer 1 on a fixed input with ``q0 = |x|²/n0``: ``z¹`` is exactly Gaussian with kernel
    ``σ_b² + σ_w² q0`` and ``Θ̂¹_ij = δ_ij (λ_b + λ_W q0)`` exactly, so every 1/n field is 0."""
    s = State.start_ntk(q0, weight_var=weight_var, bias_var=bias_var, lambda_b=lambda_b,
                        lambda_w=lambda_w)
    fw = State.start_finite_width(s.K)
    z = np.zeros(np.shape(s.K))
    return fw.with_(theta=s.theta, theta1=z, theta_a=z, theta_b=z, theta_d=z, theta_f=z)


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def variance(s: State) -> np.ndarray:
    """``n Var(Θ̂_ii)`` of a Gaussian representation: ``A + 2B``."""
    return s.theta_a + 2.0 * s.theta_b


def cross(s: State) -> np.ndarray:
    """``n Cov(Θ̂_ii, z_i²)`` of a Gaussian representation: ``Dn + 2F``."""
    return s.theta_d + 2.0 * s.theta_f


def check_network(net) -> None:
    """Refuse, before any number is computed, a network these rules cannot read (a block
    without a rule names itself; T > 1 tokens)."""
    from critheory.theory.fold import check_composition, check_one_token

    check_one_token(net, _NAME)
    check_composition(net.unit, THEORY)
    for b in net.unit:
        if getattr(b, "branch", ()):
            check_residual(b, net.activation)
        if getattr(b, "width", 1.0) != 1.0:
            raise InvalidArgumentError(f"the {_NAME} theory follows layers of the network's "
                                       f"width only (a dense block of width {b.width:g})")


def finite_width_fields(net, weight_var: float, bias_var: float, lambda_b, lambda_w,
                        q0: float = 1.0) -> dict:
    """The order-1/n NTK fields per layer ``1..L`` of ``net`` (one input, ``q0 = |x|²/n0``)
    under per-layer rates ``lambda_b``, ``lambda_w`` (arrays of length L, as
    :func:`critheory.theory.ntk.depth.ntk_curves` uses them): a dict of arrays ``theta``,
    ``theta1``, ``A``, ``B``, ``D``, ``F``, ``variance`` (``A + 2B``: ``n Var(Θ̂)``) and
    ``cross`` (``D + 2F``: ``n Cov(Θ̂, z²)``); NaN past an overflowing kernel."""
    check_network(net)
    lam_b = np.asarray(lambda_b, dtype=float)
    lam_w = np.asarray(lambda_w, dtype=float)
    L = lam_b.size
    keys = ("theta", "theta1", "A", "B", "D", "F")
    out = {k: np.full(L, np.nan) for k in keys}
    s = start(q0, weight_var=weight_var, bias_var=bias_var, lambda_b=lam_b[0],
              lambda_w=lam_w[0])
    for i in range(L):
        if i:
            if not (np.isfinite(s.K) and 0 < s.K < 1e300):
                break
            ctx = Ctx(net.activation, weight_var, bias_var, lambda_b=lam_b[i],
                      lambda_w=lam_w[i])
            s = apply(net, s, ctx)
        for k, f in zip(keys, (s.theta, s.theta1, s.theta_a, s.theta_b, s.theta_d,
                               s.theta_f)):
            out[k][i] = float(f)
    out["variance"] = out["A"] + 2.0 * out["B"]
    out["cross"] = out["D"] + 2.0 * out["F"]
    return out


# ------------------------------------------------------------------ depth: verified tables
#: the one-input fields a layer maps affinely at fixed K, Θ and λ_W (the state of the
#: tabulated route), and their grade: the degree in the NTK's scale (λ_b, λ_W, Θ, Θ1, D, F
#: grade 1; A, B grade 2; K1, V grade 0). Every rule is homogeneous in that grading, so the
#: coefficient of field j in field k is a homogeneous polynomial of degree
#: ``grade_k − grade_j`` in (Θ, λ_W), and the constant term one of degree ``grade_k``.
TABLE_FIELDS = ("theta1", "theta_a", "theta_b", "theta_d", "theta_f", "K1", "V")
_GRADES = (1, 2, 2, 1, 1, 0, 0)
#: the scale of each field in powers of the kernel (at Θ of order one): the basis state of
#: field j is ``K^{p_j}`` (not 1) and the rows of field k are divided by ``K^{p_k}``, so that
#: every probe output is of the size of its terms at any K (with a basis of ones, a kernel of
#: 1e13 makes ``Var(φ²) ~ K²`` swamp the coefficient of A in A': the difference of the two
#: probe outputs would lose every digit)
_KPOWERS = (0, 0, 0, 1, 1, 1, 2)
#: the probes ``(Θ, λ_W W(K))`` that fix a homogeneous polynomial of degree <= 2: its values
#: at (1, 0), (0, 1) and (1, 1) (degree 0: the first, degree 1: the first two), with ``W(K)``
#: the weight rate's coefficient in Θ' (``E[φ²]`` for the MLP), so that both probes move Θ'
#: by terms of order one
_PROBES = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
#: (output k, input j or -1 for the constant term, degree d) per coefficient, in table order
_COEFFS = tuple((k, j, _GRADES[k] - (0 if j < 0 else _GRADES[j]))
                for k in range(len(TABLE_FIELDS)) for j in range(-1, len(TABLE_FIELDS))
                if _GRADES[k] - (0 if j < 0 else _GRADES[j]) >= 0)
#: the table's rows: the coefficient's values at its d + 1 probes, then ``W(K)/K`` (row -1)
TABLE_ROWS = tuple((k, j, d, p) for k, j, d in _COEFFS for p in range(d + 1))
#: kernels beyond which the exact rules are evaluated instead of the tables (float64 limits)
_TABLE_RANGE = (1e-280, 1e280)
#: a decade of K is tabulated where it holds more layers than this (else folded directly)
_TABLE_MIN_LAYERS = 200
#: accuracy of each table row relative to the largest coefficient of its output field on the
#: piece (the terms of one sum: a term negligible beside the others, such as the one-neuron
#: ``Var(φ'²) = E[φ'⁴] − E[φ'²]² ≈ 8K²`` of tanh at small K, is known to the rules themselves
#: only to the rounding of ``E[φ'⁴] ≈ 1``, which a check relative to itself cannot pass)
TABLE_RTOL = 1e-12


def layer_probes(net, weight_var: float, bias_var: float, K) -> np.ndarray:
    """One layer of ``net`` on one input at the kernels ``K`` (1-D), by one vectorized fold of
    :data:`THEORY` on 24 probe states: the rows :data:`TABLE_ROWS` and ``W(K)/K`` (shape
    ``(rows + 1, K.size)``), the coefficient of field j in field k (or the constant term) at the
    probe ``(Θ, λ_W W)`` of :data:`_PROBES`, in the units of :data:`_KPOWERS`.

    A first fold (Θ = 0, λ_W = 1, every field 0) gives ``W(K)``, the coefficient of λ_W in Θ'.
    The probe states are the 8 basis states (every field of :data:`TABLE_FIELDS` 0, or field j
    equal to ``K^{p_j}``) at each of the 3 probes (λ_b = 0: it enters Θ only); a coefficient is
    the basis state's output minus the zero state's, over ``K^{p_k}``."""
    K = np.asarray(K, dtype=float).reshape(-1)
    nf = len(TABLE_FIELDS)
    zero = np.zeros(K.size)
    ctx = Ctx(net.activation, weight_var, bias_var, lambda_b=0.0, lambda_w=1.0)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        W = fold(net.unit, State(K=K, D=2.0 * K * K, P=zero, theta=zero,
                                 **{f: zero for f in TABLE_FIELDS}), ctx, THEORY).theta
        W = np.broadcast_to(W, K.shape)
        lp = np.where(np.isfinite(W) & (W > 0), 1.0 / W, 1.0)
        scale = np.stack([K ** p for p in _KPOWERS])                    # (7, N)
        basis = np.concatenate([np.zeros((1, nf, K.size)),
                                np.eye(nf)[:, :, None] * scale[None]])  # (8, 7, N)
        nb, npr = basis.shape[0], _PROBES.shape[0]
        col = np.tile(basis, (npr, 1, 1))                               # (24, 7, N)
        T = np.repeat(_PROBES[:, 0], nb)[:, None] * np.ones(K.size)
        lw = np.repeat(_PROBES[:, 1], nb)[:, None] * lp
        fields = {f: col[:, i] for i, f in enumerate(TABLE_FIELDS)}
        s = State(K=K, D=2.0 * K * K, P=zero, theta=T, **fields)
        r = fold(net.unit, s, ctx.with_(lambda_w=lw), THEORY)
        Y = [np.broadcast_to(getattr(r, f), T.shape).reshape(npr, nb, K.size) / scale[k]
             for k, f in enumerate(TABLE_FIELDS)]
        rows = [Y[k][p, 0] if j < 0 else Y[k][p, 1 + j] - Y[k][p, 0]
                for k, j, _, p in TABLE_ROWS]
        return np.array(rows + [W / K])


def layer_table(net, weight_var: float, bias_var: float):
    """The verified table of :func:`layer_probes` in ``x = log10 K``
    (:class:`~critheory.theory.meanfield.tabulated.PiecewiseChebyshev`, pieces of a decade
    halved as needed; each row within :data:`TABLE_RTOL` of the largest coefficient of its
    output field on the piece, the exact fold elsewhere)."""
    from critheory.errors import CritheoryError
    from critheory.theory.meanfield.tabulated import PiecewiseChebyshev

    groups = [k for k, _, _, _ in TABLE_ROWS] + [len(TABLE_FIELDS)]
    return PiecewiseChebyshev(lambda t: layer_probes(net, weight_var, bias_var, 10.0 ** t),
                              1.0, rtol=TABLE_RTOL, errors=(CritheoryError,), groups=groups)


def _layer_maps(rows: np.ndarray, K: np.ndarray, theta: np.ndarray, lam_w: np.ndarray):
    """Per layer the affine map ``f' = M f + c`` of the fields :data:`TABLE_FIELDS` from the
    rows of :func:`layer_probes` at its kernel K and the layer's Θ and λ_W: ``M`` (layers, 7,
    7), ``c`` (layers, 7)."""
    nl, nf = theta.size, len(TABLE_FIELDS)
    M, c = np.zeros((nl, nf, nf)), np.zeros((nl, nf))
    with np.errstate(invalid="ignore", over="ignore"):
        T, x = theta, lam_w * rows[-1] * K                 # the probes' (Θ, λ_W W)
        scale = [K ** p for p in _KPOWERS]
        r = 0
        for k, j, d in _COEFFS:
            v = rows[r:r + d + 1]
            r += d + 1
            if d == 0:
                coef = v[0]
            elif d == 1:
                coef = v[0] * T + v[1] * x
            else:
                coef = v[0] * T * T + v[1] * x * x + (v[2] - v[0] - v[1]) * T * x
            if j < 0:
                c[:, k] = coef * scale[k]
            else:
                M[:, k, j] = coef * scale[k] / scale[j]
    return M, c


def tabulated_fields(net, weight_var: float, bias_var: float, kernel, ntk, lambda_w) -> dict:
    """The order-1/n NTK fields per layer ``1..L`` (one input) as :func:`finite_width_fields`,
    from verified tables of one layer (:func:`layer_table`) instead of the rules' quadratures
    at every layer: the route of deep networks (``docs/ntk.md`` §7.6).

    ``kernel`` and ``ntk`` are ``K^l`` and ``Θ^l`` per layer (the infinite-width curves of
    :func:`critheory.theory.ntk.depth.ntk_curves`), ``lambda_w`` the weight rates per layer.
    At fixed ``K^l``, ``Θ^l`` and ``λ_W^{l+1}`` one layer maps the fields
    :data:`TABLE_FIELDS` affinely, with coefficients that are homogeneous polynomials of
    degree <= 2 in (Θ, λ_W) (the grading of :data:`TABLE_FIELDS`) whose values at three probes
    are functions of K alone (in the units of :data:`_KPOWERS`): those are tabulated. The recursion itself is then a 7×7
    matrix-vector product a layer.

    Examples
    --------
    >>> import numpy as np
    >>> from critheory.blocks.registry import network
    >>> L = 4                               # ReLU, biases only: n Var(Θ̂^L) = 5 Σ_{l<L} l²
    >>> f = tabulated_fields(network("mlp", "relu"), 2.0, 0.0, np.full(L, 2.0),
    ...                      np.arange(1.0, L + 1), np.zeros(L))
    >>> np.round(f["variance"], 9).tolist()
    [0.0, 5.0, 25.0, 70.0]
    """
    check_network(net)
    K = np.asarray(kernel, dtype=float)
    T = np.asarray(ntk, dtype=float)
    lw = np.asarray(lambda_w, dtype=float)
    L = K.size
    keys = ("theta", "theta1", "A", "B", "D", "F")
    out = {k: np.full(L, np.nan) for k in keys}
    ok = np.isfinite(K) & (K > 0) & (K < 1e300)
    n = L if ok.all() else int(np.argmin(ok))      # layers up to the first bad kernel
    f_all = np.zeros((max(n, 1), len(TABLE_FIELDS)))
    if n > 1:
        k = K[:n - 1]
        x = np.log10(k)
        # a decade of K holding many layers goes through the table; the others (a kernel
        # running through the decades, near the float64 limits) are folded directly
        inside = (k > _TABLE_RANGE[0]) & (k < _TABLE_RANGE[1])
        dec = np.floor(np.where(inside, x, 0.0)).astype(np.int64)
        _, inv, cnt = np.unique(dec, return_inverse=True, return_counts=True)
        dense = inside & (cnt[inv.reshape(-1)] > _TABLE_MIN_LAYERS)
        rows = np.empty((len(TABLE_ROWS) + 1, n - 1))
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if dense.any():       # each distinct kernel once (a fixed point: one evaluation)
                xu, back = np.unique(x[dense], return_inverse=True)
                rows[:, dense] = layer_table(net, weight_var, bias_var)(xu)[:, back.reshape(-1)]
            for i in np.array_split(np.flatnonzero(~dense), max(1, (~dense).sum() // 2000)):
                if i.size:
                    rows[:, i] = layer_probes(net, weight_var, bias_var, k[i])
            M, c = _layer_maps(rows, k, T[:n - 1], lw[1:n])
            f = np.zeros(len(TABLE_FIELDS))
            for i in range(n - 1):
                f = M[i] @ f + c[i]
                f_all[i + 1] = f
    if n:
        out["theta"][:n] = T[:n]
        for key, name in zip(keys[1:], TABLE_FIELDS[:5]):
            out[key][:n] = f_all[:n, TABLE_FIELDS.index(name)]
    out["variance"] = out["A"] + 2.0 * out["B"]
    out["cross"] = out["D"] + 2.0 * out["F"]
    return out
