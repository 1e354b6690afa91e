"""The dNTK and the ddNTK on several inputs at initialization, leading order in 1/n: PDLT
ch. 11's ``P_{δ0δ1δ2δ3}``, ``Q_{δ0δ1δ2δ3}`` and ``R``, ``S``, ``T``, ``U`` with input indices
(derivation in ``docs/dntk.md`` §8).

The one-input rules of :mod:`critheory.theory.ntk.dntk` with input indices: for a dense
block's output ``z`` on m inputs (``α, β, … = 0..m-1``), update directions
``g_{a;α} = λ∇z_{a;α}``, ``τ_{aib;αβγ} = g_{a;α}ᵀ ∇²z_{i;β} g_{b;γ}`` and the dNTK
``dĤ_{i0i1i2;δ0δ1δ2} = g_{i0;δ0}·∇Θ̂_{i1i2;δ1δ2} = τ_{i0i1i2;δ0δ1δ2} + τ_{i0i2i1;δ0δ2δ1}``,

    n E[dĤ_{i0i1i2;δ0δ1δ2} z_{i3;δ3}] = δ_{i0i3}δ_{i1i2} P_{δ0δ1δ2δ3}
                                       + δ_{i0i1}δ_{i2i3} Q_{δ0δ1δ2δ3} + δ_{i0i2}δ_{i1i3} Q_{δ0δ2δ1δ3}

(the index structure of PDLT eq. (11.xx); normalization as ``docs/dntk.md``). With, for
distinct neurons ``i ≠ b``, ``X_{αβγδ} = n E[τ_{iib;αβγ} z_{b;δ}]`` and
``Y_{αβγδ} = n E[τ_{bib;αβγ} z_{i;δ}]`` (symmetric in α ↔ γ),

    P_{δ0δ1δ2δ3} = X_{δ2δ1δ0δ3} + X_{δ1δ2δ0δ3},     Q_{δ0δ1δ2δ3} = X_{δ0δ1δ2δ3} + Y_{δ0δ2δ1δ3}

(one input: ``P = 2X``, ``Q = X + Y``).

Rules (``⟨·⟩`` Gaussian expectations at the input kernel ``K`` (m, m), ``Θ``, ``B``, ``F`` the
several-input NTK fields of :mod:`critheory.theory.ntk.finite_data`, whose rules this theory
runs first; ``H_αβ = ⟨φ'_αφ'_β⟩``, ``u[α,β,ε] = E[∂_ε(φ'_α φ_β)]``,
``v[α,β,ε] = E[∂_ε(φ'_α φ''_β)]``, ``w_βδ = ⟨φ''_β φ_δ⟩``, einstein sums over ε, ε'):

=====  =========================================================================================
block  rule
=====  =========================================================================================
phi    ``Ξ₁[αβγδ] = Θ_βγ⟨φ_αφ'_βφ'_γφ_δ⟩ + F[β,ε,γ,ε'] u[β,α,ε] u[γ,δ,ε']``,
       ``Ξ₂[αβγδ] = Θ_αβΘ_βγ⟨φ'_αφ''_βφ'_γφ_δ⟩ + Θ_αβ F[β,ε,γ,ε'] v[α,β,ε] u[γ,δ,ε']
       + H_αβ X[α,β,γ,ε] u[γ,δ,ε]``,
       ``Ξ₃[αβγδ] = Θ_αβΘ_βγ⟨φ'_αφ''_βφ'_γφ_δ⟩ + B[α,γ,β,β] H_αγ w_βδ
       + H_αγ Y[α,β,γ,ε] u[β,δ,ε]``
dense  ``X ← λ_Wσ_w²Ξ₁ + σ_w⁴Ξ₂``, ``Y ← σ_w⁴Ξ₃`` (a dense block on a Gaussian input reads
       ``Ξ₁ = Θ_βγK_αδ + F[β,α,γ,δ]``, ``Ξ₂ = X``, ``Ξ₃ = Y``)
=====  =========================================================================================

The ddNTK of type II, ``ν_{ijab;δiδjδaδb} = (∇²z_{i;δi} g_{a;δa})ᵀ λ (∇²z_{j;δj} g_{b;δb})``,
``n E[ν] = δ_ijδ_ab S + δ_iaδ_jb T + δ_ibδ_ja U`` (every tensor indexed ``[i, j, a, b]`` by the
inputs of those four factors; smooth activations): dense ``S ← λ_Wσ_w²Z₅ + σ_w⁴Z₆``,
``T[i,j,a,b] ← λ_W²Ξ₁[a,i,j,b] + λ_Wσ_w²(Ξ₂[a,i,j,b] + Ξ₂[b,j,i,a]) + σ_w⁴Z₇``,
``U ← σ_w⁴Z₈``; phi (``c = Θ_ijΘ_aiΘ_jb⟨φ''_iφ''_jφ'_aφ'_b⟩``)
``Z₅ = Θ_iaΘ_jb⟨φ'_iφ'_aφ'_jφ'_b⟩ + B[i,j,a,b]H_ijH_ab``,
``Z₆ = c + Θ_ijH_ab⟨φ''_iφ''_j⟩B[i,j,a,b] + H_ijH_ab S``,
``Z₇ = c + Θ_aiΘ_jb F[i,ε,j,ε']v[a,i,ε]v[b,j,ε'] + Θ_aiH_jb X[b,j,i,ε]v[a,i,ε]
+ Θ_jbH_ai X[a,i,j,ε]v[b,j,ε] + H_aiH_jb T``, ``Z₈ = c + H_ibH_ja U`` (a dense block on a
Gaussian input: ``Z₅ = Θ_iaΘ_jb + B``, ``Z₆₇₈ = S, T, U``).

The ddNTK of type I, ``ω_{i0i1i2i3;δ0δ1δ2δ3} = ∇³z_{i0;δ0}[g_{i1;δ1}, g_{i2;δ2}, g_{i3;δ3}]``,
``n E[ω_{iabc}] = δ_iaδ_bc R_{δ0δ1δ2δ3} + δ_ibδ_ac R_{δ0δ2δ1δ3} + δ_icδ_ab R_{δ0δ3δ1δ2}`` (R
symmetric in δ2 ↔ δ3): dense ``R[0,1,2,3] ← λ_Wσ_w² Ξ₃[2,0,3,1] + σ_w⁴ Z₄``, phi
``Z₄[0,1,2,3] = Θ_01Θ_02Θ_03⟨φ‴_0φ'_1φ'_2φ'_3⟩ + Θ_01⟨φ‴_0φ'_1⟩H_23 B[0,0,2,3]
+ Θ_01H_23 Y[2,0,3,ε]v[1,0,ε] + H_01H_23 R`` (Gaussian input: ``Z₄ = R``).

The state carries ``P``, ``Q`` in ``dntk_p``, ``dntk_q``, ``R`` … ``U`` in ``ddntk_r`` …
``ddntk_u`` (``(m, m, m, m)``) and, at a Gaussian representation, ``(X, Y)`` in ``dntk_sums``
(after φ: ``(Ξ₁, Ξ₂, Ξ₃, Z₅, Z₆, Z₇, Z₈, Z₄)``). The
all-equal entries of every expectation are the one-input moments of
:mod:`critheory.theory.ntk.dntk`, so m = 1 gives that theory's numbers exactly.

Refused in one line: what the one-input room refuses (LayerNorm, RMSNorm, residual blocks,
attention, other widths, a kink away from 0), and, on several inputs, a non-smooth activation
(ReLU, ELU, …): ``φ''`` at one input then multiplies ``φ`` at another
(``⟨δ(z_β)φ(z_δ)⟩ ≠ 0``), which the almost-everywhere derivatives of a network do not see.
The ddNTK (R … U) needs a smooth activation (NaN otherwise, as at one input).

Examples
--------
>>> import numpy as np
>>> import critheory as ct
>>> s = ct.dntk_data_statistics("mlp", "tanh", 1.0, 0.1, [[1.0, 0.0], [0.6, 0.8]], depth=3)
>>> s.P.shape, bool(np.allclose(s.P, s.P.transpose(0, 1, 3, 2, 4)))   # P symmetric in δ1 ↔ δ2
((3, 2, 2, 2, 2), True)
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.theory.fold import Ctx, Theory, fold
from critheory.theory.ntk import dntk as one
from critheory.theory.ntk import finite_data
from critheory.theory.state import Rep, State

__all__ = ["RULES", "THEORY", "apply", "start", "check_network", "pq_from_xy",
           "DNTKDataStatistics", "dntk_data_statistics"]

_NAME = "dNTK (several inputs)"
_RTOLS = (1e-10, 1e-8, 1e-6)


def pq_from_xy(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``P[d0,d1,d2,d3] = X[d2,d1,d0,d3] + X[d1,d2,d0,d3]``, ``Q[d0,d1,d2,d3] = X[d0,d1,d2,d3]
    + Y[d0,d2,d1,d3]`` (module docstring).

    >>> P, Q = pq_from_xy(np.full((1,) * 4, 2.0), np.full((1,) * 4, 1.0))
    >>> float(P[0, 0, 0, 0]), float(Q[0, 0, 0, 0])               # P = 2X, Q = X + Y
    (4.0, 3.0)
    """
    P = X.transpose(2, 1, 0, 3) + X.transpose(2, 0, 1, 3)
    Q = X + Y.transpose(0, 2, 1, 3)
    return P, Q


# ------------------------------------------------------------------------ expectations
def _expr(act, name: str):
    """sympy expressions of φ and its derivatives."""
    from critheory.activation import expressions
    from critheory.expectations.integrands import integrand

    if name == "x":
        return expressions.X
    if name == "phi":
        return integrand(act, "phi").expr
    return act.derivative(int(name[1]))


def _product(act, names: tuple, K: np.ndarray, diag) -> np.ndarray:
    """``E[Π_i f_i(z_{α_i})]`` for every index tuple (shape ``(m,)*k``), ``f_i`` named in
    ``names`` ("phi", "d1", "d2", "d3"), through
    :func:`critheory.expectations.multipoint.expect_product` (tightest accuracy that
    converges); the all-equal entries are ``diag`` (the one-input moments, per input)."""
    from critheory.expectations.multipoint import expect_product

    m, k = K.shape[0], len(names)
    keys = [t for t in product(range(m), repeat=k) if len(set(t)) > 1]
    out = np.empty((m,) * k)
    if keys:
        idx = np.array(keys)
        Ks = K[idx[:, :, None], idx[:, None, :]]
        fns = [_expr(act, n) for n in names]
        for rtol in _RTOLS:
            try:
                vals = np.asarray(expect_product(act, fns, Ks, rtol=rtol).value,
                                  dtype=float).reshape(-1)
                break
            except ConvergenceError as exc:
                last = exc
        else:
            raise ConvergenceError(f"the expectations {'·'.join(names)} of {act.name} on "
                                   f"these inputs did not converge ({last})")
        for t, v in zip(keys, vals):
            out[t] = v
    for a in range(m):
        out[(a,) * k] = diag[a]
    return out


def _data(act, K: np.ndarray, second: bool = False) -> dict:
    """The expectations of the phi rule at the kernel ``K`` (module docstring)."""
    m = K.shape[0]
    Kd = np.diag(K)
    mom = one.moments(act, Kd, False)
    pair = finite_data.pair_data(act, K, False)
    zdd = mom["zddd"] / Kd                                          # ⟨φ''² + φ'φ'''⟩
    v = np.zeros((m, m, m))
    if m > 1:
        dd = _product(act, ("d2", "d2"), K, np.zeros(m))            # ⟨φ''_a φ''_b⟩ off-diag
        d13 = _product(act, ("d1", "d3"), K, np.zeros(m))           # ⟨φ'_a φ'''_b⟩
        for a in range(m):
            for b in range(m):
                if a != b:
                    v[a, b, a], v[a, b, b] = dd[a, b], d13[a, b]
    for a in range(m):
        v[a, a, a] = zdd[a]
    out = {}
    if second:
        m2 = one.moments(act, Kd, True)
        out["dd"] = _product(act, ("d2", "d2"), K, m2["dd2"]) if m > 1 else m2["dd2"].reshape(1, 1)
        out["e4d"] = _product(act, ("d1", "d1", "d2", "d2"), K, m2["d2dd2"])   # ⟨φ'_aφ'_bφ''_iφ''_j⟩
        out["e4"] = _product(act, ("d1",) * 4, K, m2["d4"])
        # E[phi3_0 phi1_1 phi1_2 phi1_3] and E[phi3_0 phi1_1] (phiN: the N-th derivative)
        out["e4t"] = _product(act, ("d3", "d1", "d1", "d1"), K, m2["d3ddd"])
        out["d13"] = (_product(act, ("d3", "d1"), K, m2["dddd"]) if m > 1
                      else m2["dddd"].reshape(1, 1))
    return dict(out, H=pair["H"], u=pair["u"], v=v,
                w=_product(act, ("d2", "phi"), K, mom["ffdd"]),
                e4a=_product(act, ("phi", "d1", "d1", "phi"), K, mom["f2d2"]),
                e4b=_product(act, ("d1", "d2", "d1", "phi"), K, mom["fd2dd"]))


# ----------------------------------------------------------------------------- rules
def _gaussian_sums(s: State) -> tuple:
    X, Y = s.dntk_sums
    out = (np.einsum("bc,ad->abcd", s.theta, s.K) + s.theta_f.transpose(1, 0, 2, 3), X, Y)
    if s.ddntk_s is None:
        return out + (None,) * 5
    z5 = np.einsum("ia,jb->ijab", s.theta, s.theta) + s.theta_b
    return out + (z5, s.ddntk_s, s.ddntk_t, s.ddntk_u, s.ddntk_r)


def _phi(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    one.check_activation(act)
    m = s.K.shape[-1]
    if m > 1 and not act.is_smooth:
        raise InvalidArgumentError(_KINK.format(act.name))
    out = finite_data.THEORY.rule(block)(block, s, ctx)
    second = s.ddntk_s is not None and one.ddntk_defined(act)
    d = _data(act, s.K, second)
    T, F, B = s.theta, s.theta_f, s.theta_b
    X, Y = s.dntk_sums
    H, u, v, w = d["H"], d["u"], d["v"], d["w"]
    TT = T[:, :, None] * T[None, :, :]                              # Θ_ab Θ_bc
    with np.errstate(invalid="ignore", over="ignore"):
        x1 = (T[None, :, :, None] * d["e4a"]
              + np.einsum("bxcy,bax,cdy->abcd", F, u, u))
        x2 = (TT[..., None] * d["e4b"]
              + T[:, :, None, None] * np.einsum("bxcy,abx,cdy->abcd", F, v, u)
              + H[:, :, None, None] * np.einsum("abcx,cdx->abcd", X, u))
        x3 = (TT[..., None] * d["e4b"]
              + np.einsum("acbb,ac,bd->abcd", B, H, w)
              + H[:, None, :, None] * np.einsum("abcx,bdx->abcd", Y, u))
        z = (None,) * 5
        if second:
            # [i, j, a, b] = the inputs of (∇²z_i g_a)ᵀ λ (∇²z_j g_b)
            c = (np.einsum("ij,ai,jb->ijab", T, T, T)
                 * d["e4d"].transpose(2, 3, 0, 1))               # ⟨φ''_iφ''_jφ'_aφ'_b⟩
            Hij_ab = np.einsum("ij,ab->ijab", H, H)
            z5 = (np.einsum("ia,jb->ijab", T, T) * d["e4"].transpose(0, 2, 1, 3)
                  + B * Hij_ab)
            z6 = (c + np.einsum("ij,ab,ij,ijab->ijab", T, H, d["dd"], B)
                  + Hij_ab * s.ddntk_s)
            z7 = (c + np.einsum("ai,jb,ixjy,aix,bjy->ijab", T, T, F, v, v)
                  + np.einsum("ai,jb,bjix,aix->ijab", T, H, X, v)
                  + np.einsum("jb,ai,aijx,bjx->ijab", T, H, X, v)
                  + np.einsum("ai,jb->ijab", H, H) * s.ddntk_t)
            z8 = c + np.einsum("ib,ja->ijab", H, H) * s.ddntk_u
            # R: [δ0, δ1, δ2, δ3] = the inputs of ∇³z_{i;δ0}[g_{i;δ1}, g_{b;δ2}, g_{b;δ3}]
            z4 = (np.einsum("pq,pr,ps->pqrs", T, T, T) * d["e4t"]
                  + np.einsum("pq,pq,rs,pprs->pqrs", T, d["d13"], H, B)
                  + np.einsum("pq,rs,rpsx,qpx->pqrs", T, H, Y, v)
                  + np.einsum("pq,rs->pqrs", H, H) * s.ddntk_r)
            z = (z5, z6, z7, z8, z4)
    return out.with_(dntk_sums=(x1, x2, x3) + z, dntk_p=None, dntk_q=None, ddntk_r=None,
                     ddntk_s=None, ddntk_t=None, ddntk_u=None)


def _dense(block, s: State, ctx: Ctx) -> State:
    sw, _ = (float(v) for v in ctx.variances(block))
    lw = float(ctx.lambda_w)
    out = finite_data.THEORY.rule(block)(block, s, ctx)
    x = s.dntk_sums if s.rep is Rep.PHI else _gaussian_sums(s)
    with np.errstate(invalid="ignore", over="ignore"):
        X = lw * sw * x[0] + sw * sw * x[1]
        Y = sw * sw * x[2]
    P, Q = pq_from_xy(X, Y)
    dd = dict(ddntk_r=None, ddntk_s=None, ddntk_t=None, ddntk_u=None)
    if x[3] is not None:
        x1, x2 = x[0], x[1]
        with np.errstate(invalid="ignore", over="ignore"):
            dd = dict(ddntk_s=lw * sw * x[3] + sw * sw * x[4],
                      ddntk_t=(lw * lw * x1.transpose(1, 2, 0, 3)
                               + lw * sw * (x2.transpose(1, 2, 0, 3) + x2.transpose(2, 1, 3, 0))
                               + sw * sw * x[5]),
                      ddntk_u=sw * sw * x[6],
                      ddntk_r=lw * sw * x[2].transpose(1, 3, 0, 2) + sw * sw * x[7])
    return out.with_(dntk_p=P, dntk_q=Q, dntk_sums=(X, Y), **dd)


_KINK = ("the dNTK on several inputs needs a smooth activation ({}: phi'' at a kink is a point "
         "mass that multiplies phi at another input)")

#: block kind -> rule ``(block, state, ctx) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi}
#: the several-input dNTK theory's registry
THEORY = Theory(_NAME, RULES, needs={"phi": frozenset({Rep.GAUSSIAN})},
                reasons={"phi": f"an activation must follow a dense block (the {_NAME} rule)"})


def start(gram, *, weight_var: float = 1.0, bias_var: float = 0.0, lambda_b: float = 0.0,
          lambda_w: float = 0.0, second: bool = True) -> State:
    """Layer 1 on m fixed inputs (Gram matrix ``x_α·x_β/n0``): linear in its parameters, so
    ``P = Q = X = Y = 0`` and ``S = T = U = 0`` (None where ``second`` is False)."""
    s = finite_data.start(gram, weight_var=weight_var, bias_var=bias_var, lambda_b=lambda_b,
                          lambda_w=lambda_w)
    z4 = np.zeros((s.K.shape[0],) * 4)
    dd = {k: (z4.copy() if second else None) for k in ("ddntk_r", "ddntk_s", "ddntk_t",
                                                        "ddntk_u")}
    return s.with_(dntk_p=z4, dntk_q=z4.copy(), dntk_sums=(z4.copy(), z4.copy()), **dd)


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def check_network(net, m: int = 2) -> None:
    """Refuse, in one line, what the one-input dNTK refuses and, for m > 1, a non-smooth
    activation (module docstring)."""
    one.check_network(net)
    if m > 1 and not net.activation.is_smooth:
        raise InvalidArgumentError(_KINK.format(net.activation.name))


@dataclass(frozen=True, eq=False)
class DNTKDataStatistics:
    """The dNTK's P and Q per layer on m inputs (:func:`dntk_data_statistics`).

    Attributes
    ----------
    depths : ndarray (L,)
    inputs : ndarray (m, n0)
    kernel, ntk : ndarray (L, m, m)
        K and Θ at infinite width.
    P, Q : ndarray (L, m, m, m, m)
        ``n E[dĤ_{i0i1i2;δ0δ1δ2} z_{i3;δ3}]`` coefficients (module docstring), indexed
        ``[l, δ0, δ1, δ2, δ3]``.
    X, Y : ndarray (L, m, m, m, m)
        The τ–preactivation correlations they are built from.
    S, T, U : ndarray (L, m, m, m, m)
        The ddNTK of type II: ``n E[ν_{ijab;δiδjδaδb}] = δ_ijδ_ab S + δ_iaδ_jb T + δ_ibδ_ja U``,
        indexed ``[l, δi, δj, δa, δb]`` (NaN for a non-smooth activation).
    R : ndarray (L, m, m, m, m)
        The ddNTK of type I (module docstring), indexed ``[l, δ0, δ1, δ2, δ3]``.

    Examples
    --------
    >>> s = dntk_data_statistics("mlp", "tanh", 1.0, 0.0, [[1.0]], depth=2)
    >>> isinstance(s, DNTKDataStatistics), s.P.shape
    (True, (2, 1, 1, 1, 1))
    """

    __repr__ = short_repr

    activation: str
    weight_var: float
    bias_var: float
    inputs: np.ndarray
    depths: np.ndarray
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    kernel: np.ndarray
    ntk: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    S: np.ndarray
    T: np.ndarray
    U: np.ndarray
    R: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})


def dntk_data_statistics(arch="mlp", activation=None, weight_var: float = 1.0,
                         bias_var: float = 0.0, inputs=((1.0,),), *, depth: int = 3,
                         lambda_b=1.0, lambda_w=1.0) -> DNTKDataStatistics:
    """The dNTK–preactivation correlations P, Q and the ddNTK tensors R, S, T, U on m
    inputs, layers ``1..depth`` (module docstring).

    Parameters
    ----------
    arch : str or Network
        ``"mlp"`` (with ``activation``) or a network of dense and phi blocks.
    activation : str or Activation, optional
        Default tanh. Smooth for m > 1.
    weight_var, bias_var : float
        σ_w², σ_b².
    inputs : array_like (m, n0)
        The inputs (kernel ``K¹ = σ_b² + σ_w² x_α·x_β/n0``).
    depth : int
        L >= 1 (at most :data:`critheory.common.limits.MAX_DEPTH_DATA`).
    lambda_b, lambda_w : float or array (L,)
        Bias rate and weight rate per fan-in, per layer.

    Returns
    -------
    DNTKDataStatistics

    Raises
    ------
    InvalidArgumentError
        A block without a rule (named), a non-smooth activation on several inputs, bad
        arguments.

    Examples
    --------
    >>> s = dntk_data_statistics("mlp", "linear", 1.0, 0.0, [[2.0, 0.0], [1.0, 1.0]], depth=2,
    ...                          lambda_b=0.0)
    >>> float(s.P[-1, 0, 1, 1, 0])       # linear, no biases: 2 Θ¹_10 K¹_10 = 2·1·1
    2.0
    """
    from critheory.blocks.registry import network
    from critheory.common.checks import check_hyper, check_int, check_per_layer
    from critheory.common.limits import MAX_DEPTH_DATA

    net = arch if hasattr(arch, "unit") else network(arch, "tanh" if activation is None
                                                     else activation)
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise InvalidArgumentError("inputs must be a finite (m, n0) array")
    m = x.shape[0]
    check_network(net, m)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    L = check_int("depth", depth, 1)
    if L > MAX_DEPTH_DATA:
        raise InvalidArgumentError(f"depth must be between 1 and {MAX_DEPTH_DATA}, got {L}")
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    G = x @ x.T / x.shape[1]
    if np.any(sb + sw * np.diag(G) <= 0):
        raise InvalidArgumentError("an input has zero kernel K¹ = σ_b² + σ_w²|x|²/n0 = 0")
    second = one.ddntk_defined(net.activation)
    s = start(G, weight_var=sw, bias_var=sb, lambda_b=lb[0], lambda_w=lw[0], second=second)
    states = [s]
    for i in range(1, L):
        s = apply(net, s, Ctx(net.activation, sw, sb, lambda_b=lb[i], lambda_w=lw[i]))
        states.append(s)

    def stack(f):
        return np.array([f(t) for t in states])

    def dd(name):
        return np.array([np.full((m,) * 4, np.nan) if getattr(t, name) is None
                         else getattr(t, name) for t in states])

    return DNTKDataStatistics(net.activation.name, sw, sb, x, np.arange(1, L + 1), lb, lw,
                              stack(lambda t: t.K), stack(lambda t: t.theta),
                              stack(lambda t: t.dntk_p), stack(lambda t: t.dntk_q),
                              stack(lambda t: t.dntk_sums[0]), stack(lambda t: t.dntk_sums[1]),
                              dd("ddntk_s"), dd("ddntk_t"), dd("ddntk_u"), dd("ddntk_r"))
