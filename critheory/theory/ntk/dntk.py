"""The dNTK and the ddNTK at initialization, leading order in 1/n, one input (PDLT ch. 11;
derivation in ``docs/dntk.md``).

One rule per block kind ``rule(block, state, ctx) -> state`` (:data:`THEORY`, folded by
:func:`critheory.theory.fold.fold`) on the fields ``dntk_p``, ``dntk_q``, ``ddntk_r``,
``ddntk_s``, ``ddntk_t``, ``ddntk_u`` and ``dntk_sums`` of the one
:class:`~critheory.theory.state.State` (see its docstring), beside the order-1/n NTK fields of
:mod:`critheory.theory.ntk.finite` (whose rules map them here: the dNTK reads the NTK's
``B`` and ``F``).

Definitions (a dense block's output ``z``, width-n layer below; update directions
``g_a = λ∇z_a``, λ the learning-rate tensor of ``docs/ntk.md`` §1):

* dNTK ``dĤ_{a ij} = g_a·∇Θ̂_ij = τ_{aij} + τ_{aji}`` with ``τ_{aib} = g_aᵀ∇²z_i g_b``; it is odd
  (flipping the last layer's parameters flips it), so its mean vanishes and its leading
  statistic is ``n E[dĤ_{i0i1i2} z_{i3}] = δ_{i0i3}δ_{i1i2} P + (δ_{i0i1}δ_{i2i3} +
  δ_{i0i2}δ_{i1i3}) Q``; with ``n E[τ_{aib} z_c] = X(δ_ai δ_bc + δ_bi δ_ac) + Y δ_ab δ_ic``,
  ``P = 2X``, ``Q = X + Y``;
* ddNTK ``ω_{iabc} = ∇³z_i[g_a, g_b, g_c]`` (type I) and ``ν_{ijab} = g_aᵀ∇²z_i λ ∇²z_j g_b``
  (type II): ``n E[ω_{iabc}] = R(δ_iaδ_bc + δ_ibδ_ac + δ_icδ_ab)``, ``n E[ν_{ijab}] =
  S δ_ijδ_ab + T δ_iaδ_jb + U δ_ibδ_ja``. The NTK's second derivative along updates is
  ``∂²_{g_a g_b}Θ̂_ij = ω_{iabj} + ω_{jabi} + ν_{ijab} + ν_{ijba}``.

Rules (``⟨·⟩`` the Gaussian expectation at the input kernel ``K``, ``h = ⟨φ'²⟩``,
``e = ⟨zφφ'⟩``, ``B``, ``F``, ``Θ`` the NTK fields of the phi block's input, ``σ² = σ_w²``,
``λ_W`` the dense block's rate):

=====  =========================================================================================
block  rule
=====  =========================================================================================
phi    the sums ``Ξ``: ``Ξ₁ = Θ⟨φ²φ'²⟩ + F e²/K²``,
       ``Ξ₂ = Θ²⟨φφ'²φ''⟩ + ΘF e⟨zφ'φ''⟩/K² + X h e/K``,
       ``Ξ₃ = Θ²⟨φφ'²φ''⟩ + B h⟨φφ''⟩ + Y h e/K``,
       ``Ξ₄ = Θ³⟨φ'³φ'''⟩ + ΘB h⟨φ'φ'''⟩ + ΘY h⟨zφ'φ''⟩/K + R h²``,
       ``Ξ₅ = Θ²⟨φ'⁴⟩ + h²B``, ``Ξ₆ = Θ³⟨φ'²φ''²⟩ + ΘB h⟨φ''²⟩ + S h²``,
       ``Ξ₇ = Θ³⟨φ'²φ''²⟩ + Θ²F⟨zφ'φ''⟩²/K² + 2ΘX h⟨zφ'φ''⟩/K + T h²``,
       ``Ξ₈ = Θ³⟨φ'²φ''²⟩ + U h²``
dense  ``X ← λ_Wσ²Ξ₁ + σ⁴Ξ₂``, ``Y ← σ⁴Ξ₃``, ``R ← λ_Wσ²Ξ₃ + σ⁴Ξ₄``,
       ``S ← λ_Wσ²Ξ₅ + σ⁴Ξ₆``, ``T ← λ_W²Ξ₁ + 2λ_Wσ²Ξ₂ + σ⁴Ξ₇``, ``U ← σ⁴Ξ₈``
=====  =========================================================================================

(a dense block on a Gaussian input reads the sums of φ = identity). Layer 1 is linear in its
parameters: every field is 0 there.

Activations: the dNTK needs ``φ''`` only where it multiplies ``φ`` or ``z``, so a kink at 0 of
an activation with ``φ(0) = 0`` (the scale-invariant class: ReLU, leaky ReLU) contributes
nothing and is accepted; a kink elsewhere (hardtanh) is refused in one line. The ddNTK needs
``⟨φ'²φ''²⟩``, infinite at a kink (``δ(z)²``): it is computed for smooth activations only
(:func:`ddntk_defined`) and left None otherwise. LayerNorm, RMSNorm, residual blocks,
attention and layers of another width are refused in one line naming the block.

Examples
--------
>>> from critheory.blocks.registry import network
>>> from critheory.theory.fold import Ctx
>>> from critheory.theory.ntk.dntk import apply, start
>>> net = network("mlp", "linear")
>>> ctx = Ctx(net.activation, 1.0, 0.0, lambda_b=0.0, lambda_w=1.0)
>>> s = apply(net, start(1.0, weight_var=1.0, lambda_b=0.0, lambda_w=1.0), ctx)   # layer 2
>>> float(s.dntk_p), float(s.dntk_q), float(s.ddntk_t)   # P = 2λ_W Θ¹K¹, Q = P/2, T = λ_W²Θ¹K¹
(2.0, 1.0, 1.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.powerlaw import fit_line, tail_window
from critheory.common.reprs import short_repr
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.expectations import expect
from critheory.theory.fold import Ctx, Theory, fold
from critheory.theory.meanfield.rules import E
from critheory.theory.ntk import finite
from critheory.theory.state import Rep, State

__all__ = ["RULES", "THEORY", "apply", "start", "check_network", "check_activation",
           "ddntk_defined", "ddntk_refusal", "dntk_fields", "dntk_curves", "DNTKCurves", "family_exponents",
           "depth_exponent", "refusal", "curves_at_rates", "DNTK_FIELDS", "layer_maps",
           "vectorized_fields", "VECTORIZED_DEPTH"]

_NAME = "dNTK"
#: the per-layer arrays of :func:`dntk_fields`
DNTK_FIELDS = ("theta", "kernel", "P", "Q", "R", "S", "T", "U", "dntk", "ddntk")


# ----------------------------------------------------------------------- activations
def check_activation(act) -> None:
    """Refuse, in one line, an activation whose dNTK at a kink is not covered: a jump of φ
    itself, or a kink of φ' at ``b`` where ``b ≠ 0`` or ``φ(b) ≠ 0`` (there ``φ''`` is a point
    mass that multiplies ``φ(b)`` or ``b``)."""
    if act.discontinuities:
        raise InvalidArgumentError(f"the {_NAME} theory needs a continuous activation "
                                   f"({act.name} jumps)")
    for b, value, jump in act.jumps:
        if jump != 0.0 and (b != 0.0 or value != 0.0):
            raise InvalidArgumentError(
                f"the {_NAME} theory covers kinks at 0 of an activation with φ(0) = 0 only; "
                f"{act.name} has a kink at {b:g} (φ = {value:g} there)")


def ddntk_defined(act) -> bool:
    """True where the ddNTK is finite: a smooth activation (a kink makes ``E[φ'²φ''²]``
    infinite)."""
    return bool(act.is_smooth)


def ddntk_refusal(act) -> str:
    """The one-line reason the ddNTK of a non-smooth activation is not given."""
    if any(jump != 0.0 for _, _, jump in act.jumps):
        return (f"the ddNTK of {act.name} is not defined: at its kink E[phi'^2 phi''^2] is "
                "infinite")
    return (f"the ddNTK is computed for smooth activations only: {act.name}'s phi'' jumps, so "
            "its third derivative has a point mass that the per-network derivatives miss")


def _integrand(act, name: str):
    """The integrands of the rules, built once per activation (sympy expressions in x)."""
    from critheory.activation import expressions
    from critheory.expectations.integrands import integrand

    cache = act.__dict__.setdefault("_dntk_integrands", {})
    if name not in cache:
        x = expressions.X
        f = integrand(act, "phi").expr
        d1, d2, d3 = act.derivative(1), act.derivative(2), act.derivative(3)
        expr = {"f2d2": f ** 2 * d1 ** 2, "fd2dd": f * d1 ** 2 * d2, "zddd": x * d1 * d2,
                "d3ddd": d1 ** 3 * d3, "dddd": d1 * d3, "d2dd2": d1 ** 2 * d2 ** 2,
                "dd2": d2 ** 2, "d4": d1 ** 4}[name]
        cache[name] = integrand(act, expr)
    return cache[name]


def moments(act, K, second: bool) -> dict:
    """The Gaussian expectations at ``K`` (module docstring); NaN where K is not finite > 0."""
    K = np.asarray(K, dtype=float)
    ok = np.isfinite(K) & (K > 0)
    out = {"h": E(act, "dphi2", K), "e": E(act, "h_phi_dphi", K),
           "ffdd": E(act, "phi_d2phi", K)}
    names = ["f2d2", "fd2dd", "zddd"]
    if second:
        names += ["d3ddd", "dddd", "d2dd2", "dd2", "d4"]
    for name in names:
        v = np.full(K.shape, np.nan)
        if ok.any():
            v[ok] = expect(act, _integrand(act, name), K[ok]).value
        out[name] = v
    return out


# ----------------------------------------------------------------------------- rules
def _xy(s: State):
    """``X = P/2``, ``Y = Q − P/2`` of a Gaussian representation."""
    return 0.5 * s.dntk_p, s.dntk_q - 0.5 * s.dntk_p


def _gaussian_sums(s: State) -> tuple:
    """The sums Ξ of a Gaussian representation (φ = identity)."""
    X, Y = _xy(s)
    T, K, F, B = s.theta, s.K, s.theta_f, s.theta_b
    second = s.ddntk_r is not None
    return (T * K + F, X, Y, s.ddntk_r if second else None, T * T + B,
            s.ddntk_s if second else None, s.ddntk_t if second else None,
            s.ddntk_u if second else None)


def _phi(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    check_activation(act)
    out = finite.THEORY.rule(block)(block, s, ctx)
    second = s.ddntk_r is not None and ddntk_defined(act)
    m = moments(act, s.K, second)
    K, T, F, B = s.K, s.theta, s.theta_f, s.theta_b
    X, Y = _xy(s)
    h, e = m["h"], m["e"]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        zdd = m["zddd"]                               # ⟨zφ'φ''⟩
        x1 = T * m["f2d2"] + F * (e / K) ** 2
        x2 = T * T * m["fd2dd"] + T * F * e * zdd / (K * K) + X * h * e / K
        x3 = T * T * m["fd2dd"] + B * h * m["ffdd"] + Y * h * e / K
        sums = [x1, x2, x3, None, None, None, None, None]
        if second:
            T3 = T * T * T
            c = T3 * m["d2dd2"]
            sums[3] = T3 * m["d3ddd"] + T * B * h * m["dddd"] + T * Y * h * zdd / K \
                + s.ddntk_r * h * h
            sums[4] = T * T * m["d4"] + h * h * B
            sums[5] = c + T * B * h * m["dd2"] + s.ddntk_s * h * h
            sums[6] = (c + T * T * F * zdd * zdd / (K * K) + 2.0 * T * X * h * zdd / K
                       + s.ddntk_t * h * h)
            sums[7] = c + s.ddntk_u * h * h
    return out.with_(dntk_sums=tuple(sums), dntk_p=None, dntk_q=None, ddntk_r=None,
                     ddntk_s=None, ddntk_t=None, ddntk_u=None)


def _dense(block, s: State, ctx: Ctx) -> State:
    sw, _ = ctx.variances(block)
    lw = ctx.lambda_w
    out = finite.THEORY.rule(block)(block, s, ctx)
    x = s.dntk_sums if s.dntk_sums is not None else _gaussian_sums(s)
    sw2 = sw * sw
    with np.errstate(invalid="ignore", over="ignore"):
        X = lw * sw * x[0] + sw2 * x[1]
        Y = sw2 * x[2]
        fields = dict(dntk_p=2.0 * X, dntk_q=X + Y, dntk_sums=None, ddntk_r=None,
                      ddntk_s=None, ddntk_t=None, ddntk_u=None)
        if x[3] is not None:
            fields.update(ddntk_r=lw * sw * x[2] + sw2 * x[3],
                          ddntk_s=lw * sw * x[4] + sw2 * x[5],
                          ddntk_t=lw * lw * x[0] + 2.0 * lw * sw * x[1] + sw2 * x[6],
                          ddntk_u=sw2 * x[7])
    return out.with_(**fields)


#: block kind -> rule ``(block, state, ctx) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi}
#: the dNTK theory's registry (an activation must follow a dense block)
THEORY = Theory(_NAME, RULES, needs={"phi": frozenset({Rep.GAUSSIAN})},
                reasons={"phi": f"an activation must follow a dense block (the {_NAME} rule)"})


def start(q0, *, weight_var=1.0, bias_var=0.0, lambda_b=0.0, lambda_w=0.0,
          second: bool = True) -> State:
    """Layer 1 on a fixed input with ``q0 = |x|²/n0``: linear in its parameters, so every
    dNTK and ddNTK field is 0 (the ddNTK fields None where ``second`` is False)."""
    s = finite.start(q0, weight_var=weight_var, bias_var=bias_var, lambda_b=lambda_b,
                     lambda_w=lambda_w)
    z = np.zeros(np.shape(s.K))
    dd = z if second else None
    return s.with_(dntk_p=z, dntk_q=z, ddntk_r=dd, ddntk_s=dd, ddntk_t=dd, ddntk_u=dd)


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def check_network(net) -> None:
    """Refuse, before any number is computed, a network these rules cannot read: a block
    without a rule names itself; T > 1 tokens; layers of another width; an activation with a
    kink that :func:`check_activation` refuses."""
    from critheory.theory.fold import check_composition, check_one_token

    check_one_token(net, _NAME)
    check_composition(net.unit, THEORY)
    finite.check_network(net)
    check_activation(net.activation)


def dntk_fields(net, weight_var: float, bias_var: float, lambda_b, lambda_w,
                q0: float = 1.0) -> dict:
    """The dNTK and ddNTK statistics per layer ``1..L`` of ``net`` (one input,
    ``q0 = |x|²/n0``) under per-layer rates ``lambda_b``, ``lambda_w`` (arrays of length L, as
    :func:`critheory.theory.ntk.depth.ntk_curves` uses them).

    Returns
    -------
    dict of ndarray (L,)
        ``theta`` (Θ^l), ``kernel`` (K^l), ``P``, ``Q``, ``R``, ``S``, ``T``, ``U`` (module
        docstring) and the two dimensionless magnitudes times the width,

        * ``dntk`` = ``(P + 2Q)/Θ²`` = ``n E[z_i dĤ_{iii}]/Θ²``: minus n times the mean
          relative change of one neuron's NTK ``Θ̂_ii`` in one gradient step of size
          ``1/Θ`` on the loss ``½z_i²`` (first order in the step);
        * ``ddntk`` = ``2K(3R + S + T + U)/Θ³`` = ``n K E[∂²_{g_i g_i}Θ̂_ii]/Θ³``: the NTK's
          second derivative along that update, in the same units;

        NaN past an overflowing kernel; ``R``…``U`` and ``ddntk`` NaN where the ddNTK is not
        defined (:func:`ddntk_defined`).

    Examples
    --------
    >>> import numpy as np
    >>> from critheory.blocks.registry import network
    >>> f = dntk_fields(network("mlp", "relu"), 2.0, 0.0, np.ones(3), np.ones(3))
    >>> f["P"].tolist(), f["Q"].tolist()       # X' = λ_W(ΘK + F/2) + X, Y = 0 (docs/dntk.md)
    ([0.0, 8.0, 32.0], [0.0, 4.0, 16.0])
    """
    check_network(net)
    lam_b = np.asarray(lambda_b, dtype=float)
    lam_w = np.asarray(lambda_w, dtype=float)
    L = lam_b.size
    second = ddntk_defined(net.activation)
    out = {k: np.full(L, np.nan) for k in DNTK_FIELDS}
    s = start(q0, weight_var=weight_var, bias_var=bias_var, lambda_b=lam_b[0],
              lambda_w=lam_w[0], second=second)
    names = {"theta": "theta", "kernel": "K", "P": "dntk_p", "Q": "dntk_q", "R": "ddntk_r",
             "S": "ddntk_s", "T": "ddntk_t", "U": "ddntk_u"}
    for i in range(L):
        if i:
            if not (np.isfinite(s.K) and 0 < s.K < 1e300):
                break
            ctx = Ctx(net.activation, weight_var, bias_var, lambda_b=lam_b[i],
                      lambda_w=lam_w[i])
            s = apply(net, s, ctx)
        for k, f in names.items():
            v = getattr(s, f)
            if v is not None:
                out[k][i] = float(v)
    _magnitudes(out)
    return out


#: deeper than this, :func:`dntk_curves` takes the route of :func:`vectorized_fields`
VECTORIZED_DEPTH = 64
#: the dNTK fields of a Gaussian representation, in the order of :func:`layer_maps`
_FIELDS = ("dntk_p", "dntk_q", "ddntk_r", "ddntk_s", "ddntk_t", "ddntk_u")


def layer_maps(net, weight_var: float, bias_var: float, kernel, ntk, theta_f, theta_b,
               lambda_b, lambda_w, second: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every layer's affine map of the dNTK fields, by ONE fold of :data:`THEORY` vectorized
    over the layers: at a layer's fixed kernel ``K``, NTK ``Θ`` and 1/n fields ``F``, ``B``
    (arrays over the layers, the state entering each layer) and its rates, the rules map
    ``f = (P, Q[, R, S, T, U])`` affinely, ``f' = M f + c``.

    The fold runs on the probe states ``f = i e_j`` (one per field, the imaginary unit on
    field j): the rules are affine in ``f`` with real coefficients, so the output is
    ``c + i M e_j`` — the real part ``c`` and the imaginary part the column ``M e_j``, each to
    rounding (the complex-step probe: no difference of nearly equal outputs). The Gaussian
    expectations at all the kernels are one vectorized call per integrand.

    Returns
    -------
    M : ndarray (layers, nf, nf)
    c : ndarray (layers, nf)
    """
    K = np.asarray(kernel, dtype=float)
    nf = 6 if second else 2
    probe = 1j * np.eye(nf)[:, :, None] * np.ones(K.size)          # (nf probes, nf, layers)
    z = np.zeros(K.size)
    fields = {f: probe[:, i] for i, f in enumerate(_FIELDS[:nf])}
    if not second:
        fields.update({f: None for f in _FIELDS[2:]})
    s = State(K=K, K1=z, V=z, D=2.0 * K * K, P=z, theta=np.asarray(ntk, dtype=float),
              theta1=z, theta_a=z, theta_d=z, theta_b=np.asarray(theta_b, dtype=float),
              theta_f=np.asarray(theta_f, dtype=float), **fields)
    ctx = Ctx(net.activation, weight_var, bias_var, lambda_b=np.asarray(lambda_b, dtype=float),
              lambda_w=np.asarray(lambda_w, dtype=float))
    out = fold(net.unit, s, ctx, THEORY)
    Y = np.stack([np.broadcast_to(getattr(out, f), probe[:, 0].shape) for f in _FIELDS[:nf]],
                 axis=1)                                             # (probes, fields, layers)
    M = np.moveaxis(Y.imag, 2, 0).transpose(0, 2, 1)                # [layer, field, probe]
    c = Y.real[0].T                                                  # (layers, fields)
    return M, c


def vectorized_fields(net, weight_var: float, bias_var: float, kernel, ntk, theta_f,
                      theta_b, lambda_b, lambda_w) -> dict:
    """The dNTK and ddNTK statistics per layer ``1..L`` as :func:`dntk_fields`, from the
    infinite-width curves ``K^l``, ``Θ^l`` and the 1/n fields ``F^l``, ``B^l`` per layer
    (:func:`critheory.theory.ntk.depth.ntk_curves` with a width) through :func:`layer_maps`:
    the route of deep networks (one vectorized fold, then a small matrix-vector product a
    layer; :func:`dntk_fields` folds layer by layer with a quadrature per rule).

    Examples
    --------
    >>> import numpy as np
    >>> from critheory.blocks.registry import network
    >>> from critheory.theory.ntk.depth import ntk_curves
    >>> c = ntk_curves("mlp", "relu", 2.0, 0.0, 3, width=1)      # K = 2, Θ^l = 2l
    >>> f = vectorized_fields(network("mlp", "relu"), 2.0, 0.0, c.kernel, c.ntk,
    ...                       c.finite["F"], c.finite["B"], c.lambda_b, c.lambda_w)
    >>> np.round(f["P"], 12).tolist()          # as dntk_fields: P = (L − 1/L)Θ²/3
    [0.0, 8.0, 32.0]
    """
    check_network(net)
    K = np.asarray(kernel, dtype=float)
    L = K.size
    second = ddntk_defined(net.activation)
    out = {k: np.full(L, np.nan) for k in DNTK_FIELDS}
    ok = np.isfinite(K) & (K > 0) & (K < 1e300)
    n = L if ok.all() else int(np.argmin(ok))          # layers up to the first bad kernel
    nf = 6 if second else 2
    f_all = np.zeros((max(n, 1), nf))
    if n > 1:
        sl = slice(0, n - 1)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            M, c = layer_maps(net, weight_var, bias_var, K[sl], np.asarray(ntk)[sl],
                              np.asarray(theta_f)[sl], np.asarray(theta_b)[sl],
                              np.asarray(lambda_b)[1:n], np.asarray(lambda_w)[1:n], second)
            f = np.zeros(nf)
            for i in range(n - 1):
                f = M[i] @ f + c[i]
                f_all[i + 1] = f
    if n:
        out["theta"][:n] = np.asarray(ntk, dtype=float)[:n]
        out["kernel"][:n] = K[:n]
        for j, k in enumerate(("P", "Q", "R", "S", "T", "U")[:nf]):
            out[k][:n] = f_all[:n, j]
    _magnitudes(out)
    return out


def _magnitudes(out: dict) -> None:
    """Add ``dntk`` and ``ddntk`` (:func:`dntk_fields`) to a dict of fields."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        T = out["theta"]
        out["dntk"] = (out["P"] + 2.0 * out["Q"]) / (T * T)
        out["ddntk"] = 2.0 * out["kernel"] * (3.0 * out["R"] + out["S"] + out["T"]
                                              + out["U"]) / (T * T * T)


def family_exponents(s: float) -> dict:
    """Width exponents of the output's NTK observables along the meta-principled family
    (``recipe``'s ``s``; ``docs/dntk.md`` §5): each observable ∝ ``n^e`` at fixed depth, for the
    family's parametrization (non-head rates ``× n^s``, head variance ``÷ n^s``, head rate
    unchanged), which is the ``s = 0`` network with every rate ``× n^s`` and its output
    ``× n^{−s/2}``.

    Returns
    -------
    dict
        ``ntk`` (Θ: 0), ``output`` (z at initialization: ``−s/2``), ``dntk`` (``dĤ``:
        ``s/2 − 1``), ``dntk_cross`` (``E[z dĤ]``: ``−1``), ``ddntk`` (``E[ddĤ]``: ``s − 1``,
        the family's interaction strength ``L/n^{1−s}``).

    Examples
    --------
    >>> family_exponents(1.0)["ddntk"], family_exponents(0.0)["ddntk"]
    (0.0, -1.0)
    """
    from critheory.theory.recipes.rules import check_family

    s = check_family(s)
    return {"ntk": 0.0, "output": -s / 2.0, "dntk": s / 2.0 - 1.0, "dntk_cross": -1.0,
            "ddntk": s - 1.0}


def depth_exponent(depths, values) -> float | None:
    """The slope ``s`` of ``|values| ∝ l^s`` fitted over the last 90 % of the depths (growth
    positive, as every NTK exponent of the package); None below four depths or where the fit
    has fewer than three finite nonzero points.

    >>> import numpy as np
    >>> round(depth_exponent(np.arange(1, 101), -0.2 * np.arange(1, 101) ** 1.0), 12)
    1.0
    """
    d = np.asarray(depths, dtype=float)
    if d.size < 4:
        return None
    try:
        fit = fit_line(d, np.abs(np.asarray(values, dtype=float)), tail_window(d),
                       min_points=3)
    except InvalidArgumentError:
        return None
    return float(fit.slope) if math.isfinite(fit.slope) else None


@dataclass(frozen=True, eq=False)
class DNTKCurves:
    """The dNTK and ddNTK statistics per layer (:func:`dntk_curves`).

    Attributes
    ----------
    depths : ndarray
        1..L.
    theta, kernel : ndarray
        Θ^l and K^l (infinite width).
    P, Q, R, S, T, U : ndarray
        The leading coefficients (``docs/dntk.md`` §1; R…U NaN where the ddNTK is not defined).
    dntk_coefficient, ddntk_coefficient : ndarray
        ``(P + 2Q)/Θ²`` and ``2K(3R + S + T + U)/Θ³``: n times :attr:`dntk`, :attr:`ddntk`.
    lambda_b, lambda_w : ndarray
        The rates per layer.
    width : int or None
    exponents : dict
        ``{"dntk": s, "ddntk": s}``: ``|n·dntk| ∝ l^s`` (:func:`depth_exponent`).
    ddntk_defined : bool
    note : str
        Why a quantity is absent ("" when none is).

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.dntk_curves("mlp", "relu", 2.0, 0.0, 4, width=100)
    >>> isinstance(c, ct.DNTKCurves), round(float(c.dntk[-1]), 4), c.ddntk_defined
    (True, 0.025, False)
    """

    __repr__ = short_repr

    depths: np.ndarray
    theta: np.ndarray
    kernel: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    S: np.ndarray
    T: np.ndarray
    U: np.ndarray
    dntk_coefficient: np.ndarray
    ddntk_coefficient: np.ndarray
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    width: int | None = None
    exponents: dict = field(default_factory=dict)
    ddntk_defined: bool = True
    note: str = ""

    @property
    def dntk(self) -> np.ndarray | None:
        """``E[z_i dĤ_{iii}]/Θ² = (P + 2Q)/(nΘ²)`` at the width (None without one)."""
        return None if self.width is None else self.dntk_coefficient / self.width

    @property
    def ddntk(self) -> np.ndarray | None:
        """``K E[∂²_{g_i g_i}Θ̂_ii]/Θ³ = 2K(3R + S + T + U)/(nΘ³)`` at the width (None without
        one)."""
        return None if self.width is None else self.ddntk_coefficient / self.width

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN → None) with the keys of ``ntk --width``: ``dntk``, ``ddntk``
        (at the width), ``dntk_fields`` (``P``…``U``, ``dntk_coefficient``,
        ``ddntk_coefficient``), ``exponents`` (``dntk``, ``ddntk``) and, where a quantity is
        absent, ``dntk_note``."""
        out = {"dntk": self.dntk, "ddntk": self.ddntk,
               "dntk_fields": {k: getattr(self, k) for k in ("P", "Q", "R", "S", "T", "U",
                                                            "dntk_coefficient",
                                                            "ddntk_coefficient")},
               "exponents": self.exponents}
        if self.note:
            out["dntk_note"] = self.note
        return jsonable(out)


def dntk_curves(arch="mlp", activation=None, weight_var=1.0, bias_var=0.0, depth: int = 10,
                *, lambda_b=1.0, lambda_w=1.0, scaling: str = "constant", q0: float = 1.0,
                width: int | None = None, mu: float | None = None) -> DNTKCurves:
    """The dNTK and ddNTK statistics for layers ``1..depth`` (one input).

    Parameters
    ----------
    arch, activation, weight_var, bias_var, depth, lambda_b, lambda_w, scaling, q0, mu
        As :func:`critheory.theory.ntk.depth.ntk_curves` (whose learning-rate schedule is
        used); depth <= :data:`critheory.theory.ntk.depth.MAX_DEPTH` (deeper than
        :data:`VECTORIZED_DEPTH`: :func:`vectorized_fields`).
    width : int, optional
        The network's width n: adds :attr:`DNTKCurves.dntk` and :attr:`DNTKCurves.ddntk`.

    Returns
    -------
    DNTKCurves

    Raises
    ------
    InvalidArgumentError
        A block without a dNTK rule (LayerNorm, residual, attention: named), an activation
        with a kink away from 0 or with φ(0) ≠ 0 there, a depth beyond the budget.

    Examples
    --------
    >>> c = dntk_curves("mlp", "tanh", 1.0, 0.0, 200)
    >>> c.exponents["dntk"] > 0.95, float(c.dntk_coefficient[-1] / 200) < -0.19  # → −l/5
    (True, True)
    """
    from critheory.theory.ntk.depth import MAX_DEPTH, network_maps, ntk_curves

    d = int(depth)
    if d > MAX_DEPTH:
        raise InvalidArgumentError(f"depth {d} is beyond the {MAX_DEPTH} layers of the dNTK "
                                   "recursion")
    maps = network_maps(arch, activation, mu)
    check_network(maps.network)
    # deep: the 1/n NTK fields F, B per layer come with the curves (verified tables), and the
    # dNTK goes through one vectorized fold (vectorized_fields)
    c = ntk_curves(maps, None, weight_var, bias_var, depth, lambda_b=lambda_b,
                   lambda_w=lambda_w, scaling=scaling, q0=q0,
                   width=1 if d > VECTORIZED_DEPTH else None)
    return curves_at_rates(maps.network, weight_var, bias_var, c.lambda_b, c.lambda_w, q0,
                           width, curves=c)


def curves_at_rates(net, weight_var: float, bias_var: float, lambda_b, lambda_w,
                    q0: float = 1.0, width: int | None = None, curves=None) -> DNTKCurves:
    """:class:`DNTKCurves` of ``net`` under given per-layer rates (arrays of length L, e.g.
    an :class:`~critheory.theory.ntk.depth.NTKCurves`' ``lambda_b``, ``lambda_w``).

    Deeper than :data:`VECTORIZED_DEPTH` layers, ``curves`` (those
    :class:`~critheory.theory.ntk.depth.NTKCurves` computed with a width, so that they carry
    the 1/n fields) give the route of :func:`vectorized_fields`; otherwise the fields are folded
    layer by layer (:func:`dntk_fields`, at most
    :data:`critheory.theory.ntk.depth.MAX_DEPTH_FINITE` layers).

    >>> import numpy as np
    >>> from critheory.blocks.registry import network
    >>> c = curves_at_rates(network("mlp", "linear"), 1.0, 0.0, np.zeros(3), np.ones(3))
    >>> c.P.tolist(), c.R.tolist()                # P^L = λ_W q0 θ (L³ − L)/3, R = 0
    ([0.0, 2.0, 8.0], [0.0, 0.0, 0.0])
    """
    from critheory.theory.ntk.depth import MAX_DEPTH_FINITE

    L = int(np.size(lambda_b))
    if L > VECTORIZED_DEPTH and curves is not None and curves.finite is not None:
        f = vectorized_fields(net, float(weight_var), float(bias_var), curves.kernel,
                              curves.ntk, curves.finite["F"], curves.finite["B"], lambda_b,
                              lambda_w)
    elif L > MAX_DEPTH_FINITE:
        raise InvalidArgumentError(
            f"depth {L} is beyond the {MAX_DEPTH_FINITE} layers of the dNTK recursion layer by "
            "layer: give the NTK curves with a width (curves=) for the vectorized route")
    else:
        f = dntk_fields(net, float(weight_var), float(bias_var), lambda_b, lambda_w, q0)
    depths = np.arange(1, np.size(lambda_b) + 1)
    defined = ddntk_defined(net.activation)
    note = "" if defined else ddntk_refusal(net.activation)
    ex = {"dntk": depth_exponent(depths[1:], f["dntk"][1:]),
          "ddntk": depth_exponent(depths[1:], f["ddntk"][1:]) if defined else None}
    if width is not None:
        from critheory.common.checks import check_int

        width = check_int("width", width, 1)
    return DNTKCurves(depths, f["theta"], f["kernel"], f["P"], f["Q"], f["R"], f["S"],
                      f["T"], f["U"], f["dntk"], f["ddntk"], np.asarray(lambda_b, dtype=float),
                      np.asarray(lambda_w, dtype=float), width, ex, defined, note)


def refusal(net) -> str | None:
    """The one-line reason the dNTK theory refuses ``net`` (None: it is covered)."""
    try:
        check_network(net)
    except CritheoryError as exc:
        return str(exc)
    return None
