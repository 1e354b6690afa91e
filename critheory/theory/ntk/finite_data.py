"""The NTK at initialization to order 1/n on several inputs: its mean shift, its fluctuations
and its correlation with the preactivations over a set of m inputs (PDLT ch. 8's A, B, D, F
with input indices; derivation in ``docs/ntk.md`` §9).

Fields of the one :class:`~critheory.theory.state.State`, with trailing input axes (``α, β,
... = 0..m-1``) beside the several-input finite-width fields ``K``, ``K1``, ``V``, ``D`` of
:mod:`critheory.theory.finitewidth.data_rules` (whose rules map those here); for neurons
``i ≠ j`` of the representation and its NTK ``Θ̂_{ij;αβ}`` (``Θ̂_{ij;αβ} = Θ̂_{ji;βα}``):

===========  ================  ==========================================================
field        shape             definition
===========  ================  ==========================================================
``theta``    ``(m, m)``        ``Θ_αβ``: ``E[Θ̂_{ii;αβ}]`` at infinite width
``theta1``   ``(m, m)``        ``E[Θ̂_{ii;αβ}] = Θ_αβ + Θ1_αβ/n``
``theta_a``  ``(m, m, m, m)``  ``A[α1,α2,α3,α4] = n Cov(Θ̂_{ii;α1α2}, Θ̂_{jj;α3α4})``
``theta_b``  ``(m, m, m, m)``  ``B[α1,α3,α2,α4] = n E[Θ̂_{ij;α1α2} Θ̂_{ij;α3α4}]``
``theta_d``  ``(m, m, m, m)``  ``D[α1,α2,α3,α4] = n Cov(Θ̂_{ii;α1α2}, x_{j;α3} x_{j;α4})``
``theta_f``  ``(m, m, m, m)``  ``F[α1,α3,α2,α4] = n E[Θ̂_{ij;α1α2} x_{i;α3} x_{j;α4}]``
``theta_s``  ``(m, m, m, m)``  one neuron at infinite width: ``Cov(Θ̂_{ii;α1α2}, Θ̂_{ii;α3α4})``
``theta_sx`` ``(m, m, m, m)``  ``Cov(Θ̂_{ii;α1α2}, x_{i;α3} x_{i;α4})`` (both 0 for a Gaussian
                               representation, set by an activation)
===========  ================  ==========================================================

One index convention per tensor, PDLT's: ``A`` and ``D`` pair the indices by neuron
*factor* ((α1α2) the NTK's, (α3α4) the other factor's); ``B`` and ``F`` list the two indices
carried by neuron i first (α1, α3), then those of neuron j (α2, α4). For a Gaussian
representation (a dense block's output ``z``) one neuron then has
(:func:`variance`, :func:`cross`)

    n Cov(Θ̂_{ii;α1α2}, Θ̂_{ii;α3α4}) = A[α1,α2,α3,α4] + B[α1,α3,α2,α4] + B[α1,α4,α2,α3]
    n Cov(Θ̂_{ii;α1α2}, z_{i;α3} z_{i;α4}) = D[α1,α2,α3,α4] + F[α1,α3,α2,α4] + F[α1,α4,α2,α3]

At one input (m = 1) every field is the one-input field of :mod:`critheory.theory.ntk.finite`
(the same rules, the same numbers to rounding: ``tests/test_ntk_finite_data.py``).

Rules (notation: ``H_αβ = E[φ'_α φ'_β]``, ``∇`` the gradient in a pair's three kernel entries
``(K_aa, K_ab, K_bb)``, ``u[α,β,γ] = E[∂_γ(φ'_α φ_β)]`` (``2∂E[φ_αφ_β]/∂K_αα``,
``E[φ'_αφ'_β]`` and ``e/K`` on the diagonal), ``λ_W``, ``σ_w²`` as in the one-input rules):

=====  =========================================================================================
block  rule
=====  =========================================================================================
phi    ``Θ ← Θ∘H``; ``Θ1_P ← H_P Θ1_P + Θ_P(∇H_P·K1 + ½∇²H_P:V) + ∇H_P·D_{P·} + Σ_γγ' F-term``;
       ``A_PQ ← H_P H_Q A_PQ + H_P Θ_Q ∇H_Q·D_{P·} + Θ_P H_Q ∇H_P·D_{Q·} + Θ_P Θ_Q ∇H_P V ∇H_Q``;
       ``D_PQ ← H_P ∇g_Q·D_{P·} + Θ_P ∇H_P V ∇g_Q``; ``B ← H⊗H ∘ B``;
       ``F[p,q,r,s] ← Σ_γγ' F[p,γ,r,γ'] u[p,q,γ] u[r,s,γ']``; ``s``, ``sx`` from
       ``E[φ'φ'φ'φ']`` and ``E[φ'φ'φφ]``
dense  ``Θ1 ← λ_W K1 + σ_w²Θ1``, ``A ← λ_W²(D_x + V) + λ_Wσ_w²(S + Sᵀ) + σ_w⁴(s + A)``
       (``S = sx + D``, ``ᵀ`` swapping the two pairs), ``D ← σ_w²[λ_W(D_x + V) + σ_w² S]``,
       ``B[i,j,k,l] ← σ_w⁴(Θ_ik Θ_jl + s[i,k,j,l] + B)``, ``F[i,j,k,l] ← σ_w⁴(Θ_ik K_jl +
       sx[i,k,j,l] + F)``
resid  affine φ only (``φ' = a``): ``A ← μ⁴A + μ²[λ_W a²(D + Dᵀ) + 2σ_w²a² A] + A_b``,
       ``B ← μ⁴B + 2μ²σ_w²a²(ΘΘ + B) + B_b``, ``D ← μ⁴D + μ²[2σ_w²a² D + λ_W a²(D_z + V)] +
       D_b``, ``F ← μ⁴F + 2μ²σ_w²a²(ΘK + F) + F_b``, ``Θ1 ← μ²Θ1 + Θ1_b``
=====  =========================================================================================

(``P = (a, b)``, ``Q = (c, d)`` pairs of inputs; ``D_{P·}`` the row of D at P contracted
with the three entries of the other pair; the F-term of ``Θ1_P`` is
``2F[a,a,b,a]∂_{K_aa}H_P + (F[a,a,b,b] + F[a,b,b,a])∂_{K_ab}H_P + 2F[a,b,b,b]∂_{K_bb}H_P``.)

Refused in one line, as at one input: LayerNorm, RMSNorm, attention, the MLP block, a residual
block of a nonlinear φ (:data:`critheory.theory.ntk.finite.RESIDUAL_REFUSAL`), a dense block of
another width; on several inputs also an activation whose φ' jumps (hard tanh, ReLU6: the
kernel derivatives of ``E[φ'_a φ'_b]`` do not exist) and, for a kinked φ, two inputs at
correlation 1 (:func:`critheory.expectations.kernel_derivatives.dphi_pair_derivatives`).

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.fold import Ctx
>>> from critheory.theory.ntk.finite_data import apply, start, variance
>>> net = network("mlp", "linear")
>>> ctx = Ctx(net.activation, 1.0, 0.0, lambda_b=1.0, lambda_w=0.0)
>>> s = apply(net, start(np.eye(2), lambda_b=1.0), ctx)          # layer 2, biases only
>>> np.round(s.theta, 12).tolist()                             # Θ² = λ_b (1 + σ_w²·1)
[[2.0, 2.0], [2.0, 2.0]]
>>> float(variance(s)[0, 0, 1, 1])      # n Cov(Θ̂_00, Θ̂_11) = 2 Θ¹_01² + ... = 2 (linear MLP)
2.0
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Callable

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.expectations.kernel_derivatives import dphi_pair_derivatives
from critheory.theory.finitewidth import data_rules
from critheory.theory.finitewidth.data_rules import (from_pairs, pair_expectations,
                                                     tensor_from_pairs)
from critheory.theory.fold import Ctx, Theory, fold, fold_branch
from critheory.theory.ntk import finite
from critheory.theory.state import Rep, State

__all__ = ["RULES", "THEORY", "NTKDataStatistics", "ntk_data_statistics", "apply", "start",
           "variance", "cross", "check_network", "product_tensor"]

_NAME = "NTK (finite width, several inputs)"
#: accuracy ladder of the four-point functions of φ' (as the several-input finite-width rules')
_RTOLS = (1e-10, 1e-8, 1e-6)


def _zero_if_none(x, like):
    return np.zeros_like(like) if x is None else x


def _swap(T: np.ndarray) -> np.ndarray:
    """``T[c,d,a,b]`` as ``[a,b,c,d]``: the two pairs exchanged."""
    return T.transpose(2, 3, 0, 1)


def _interleave(T: np.ndarray) -> np.ndarray:
    """``T[a,c,b,d]`` as ``[a,b,c,d]``: a tensor indexed by pairs (ab)(cd) read in the neuron
    order (a, c | b, d) of ``B`` and ``F``, and back (the map is its own inverse)."""
    return T.transpose(0, 2, 1, 3)


def product_tensor(act, K: np.ndarray, fns: tuple[str, str, str, str]) -> np.ndarray:
    """``E[f1(z_a) f2(z_b) f3(z_c) f4(z_d)]`` over m inputs, z ~ N(0, K), as an ``(m, m, m, m)``
    array, for ``fns`` ``("dphi",) * 4`` (fully symmetric) or ``("dphi", "dphi", "phi",
    "phi")`` (symmetric within each pair): one batch of
    :func:`critheory.expectations.multipoint.expect_product` over the distinct index
    combinations, tightest accuracy first (1e-10, then 1e-8, 1e-6: an entry enters at order
    1/n). The all-equal entries ``(a, a, a, a)`` are the one-input moments
    (:func:`critheory.theory.ntk.finite.moments`), the one-input theory's numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from critheory.activation import Activation
    >>> T = product_tensor(Activation.get("relu"), np.eye(2), ("dphi",) * 4)
    >>> [round(float(T[i]), 12) for i in [(0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1)]]
    [0.5, 0.25, 0.25]
    """
    from critheory.expectations.multipoint import expect_product

    K = np.asarray(K, dtype=float)
    m = K.shape[0]
    full = fns[2] == "dphi"
    if full:
        keys = list(combinations_with_replacement(range(m), 4))
    else:
        pairs = list(combinations_with_replacement(range(m), 2))
        keys = [p + q for p in pairs for q in pairs]
    keys = [k for k in keys if len(set(k)) > 1]          # (a, a, a, a): the moments below
    vals: np.ndarray = np.empty(0)
    if keys:
        idx = np.array(keys)
        Ks = K[idx[:, :, None], idx[:, None, :]]
        for rtol in _RTOLS:
            try:
                vals = np.asarray(expect_product(act, list(fns), Ks, rtol=rtol).value,
                                  dtype=float).reshape(-1)
                break
            except ConvergenceError as exc:
                last = exc
        else:
            raise ConvergenceError(f"the four-point functions {'·'.join(fns)} of {act.name} "
                                   f"on these inputs did not converge even at rtol "
                                   f"{_RTOLS[-1]:g} ({last})")
    out = np.empty((m,) * 4)
    for key, v in zip(keys, vals):
        if full:
            for perm in set(_perms(key)):
                out[perm] = v
        else:
            a, b, c, d = key
            out[a, b, c, d] = out[b, a, c, d] = out[a, b, d, c] = out[b, a, d, c] = v
    mom = finite.moments(act, np.diag(K))
    diag = mom["dphi4"] if full else mom["phi2dphi2"]
    for a in range(m):
        out[a, a, a, a] = diag[a]
    return out


def _perms(key):
    from itertools import permutations

    return permutations(key)


def pair_data(act, K: np.ndarray, fluctuates: bool) -> dict:
    """Per unordered pair (a <= b) the two-point data the phi rule reads: ``E[φφ]``'s gradient,
    ``H = E[φ'φ'] `` with its gradient and Hessian, and the per-input moments of the one-input
    rules on the diagonal (the one-input numbers exactly)."""
    m = K.shape[0]
    a, b, ent, gval, ggrad, _ = pair_expectations(act, K, hessian=False)
    mom = finite.moments(act, np.diag(K))
    p = a.size
    hval, hgrad, hhess = np.empty(p), np.zeros((p, 3)), np.zeros((p, 3, 3))
    diag = a == b
    hval[diag], hgrad[diag, 0], hhess[diag, 0, 0] = (mom["h"][a[diag]], mom["h1"][a[diag]],
                                                     mom["h2"][a[diag]])
    off = ~diag
    if off.any():
        d = dphi_pair_derivatives(act, K[a[off], a[off]], K[a[off], b[off]], K[b[off], b[off]],
                                  hessian=fluctuates)
        hval[off], hgrad[off] = d.value, d.grad
        hhess[off] = d.hess if fluctuates else 0.0
    # u[α, β, γ] = E[∂_γ (φ'(z_α) φ(z_β))] (Gaussian integration by parts; Price's theorem)
    u = np.zeros((m, m, m))
    for k in range(p):
        i, j = a[k], b[k]
        if i == j:
            u[i, i, i] = mom["e"][i] / K[i, i]
        else:
            u[i, j, i], u[i, j, j] = 2.0 * ggrad[k, 0], hval[k]
            u[j, i, j], u[j, i, i] = 2.0 * ggrad[k, 2], hval[k]
    return dict(a=a, b=b, ent=ent, ggrad=ggrad, hval=hval, hgrad=hgrad, hhess=hhess, u=u,
                H=from_pairs(hval, a, b, m))


def _at_entries(T: np.ndarray, a, b, ent) -> np.ndarray:
    """``T[a_P, b_P, ent_Q]``: a pair-indexed row of T at the three entries of every pair Q,
    shape (pairs, pairs, 3)."""
    return T[a[:, None, None], b[:, None, None], ent[None, :, :, 0], ent[None, :, :, 1]]


def _phi(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    K = s.K
    m = K.shape[-1]
    out = data_rules.THEORY.rule(block)(block, s, ctx)
    d = pair_data(act, K, bool(np.any(s.V != 0)))
    a, b, ent, H = d["a"], d["b"], d["ent"], d["H"]
    hv, hg, hh, gg = d["hval"], d["hgrad"], d["hhess"], d["ggrad"]
    T, A, Dn, F = s.theta, s.theta_a, s.theta_d, s.theta_f
    Tp = T[a, b]
    # C[P, Q, i, j] = V at the entries i of P and j of Q; E[P, Q, j] = D at (P, entry j of Q)
    C = s.V[ent[:, None, :, None, 0], ent[:, None, :, None, 1],
            ent[None, :, None, :, 0], ent[None, :, None, :, 1]]
    Dq = _at_entries(Dn, a, b, ent)
    P = np.arange(a.size)
    fterm = (2.0 * F[a, a, b, a] * hg[:, 0] + (F[a, a, b, b] + F[a, b, b, a]) * hg[:, 1]
             + 2.0 * F[a, b, b, b] * hg[:, 2])
    t1 = (s.theta1[a, b] * hv + Tp * (np.einsum("pi,pi->p", hg, s.K1[ent[..., 0], ent[..., 1]])
                                      + 0.5 * np.einsum("pij,pij->p", hh, C[P, P]))
          + np.einsum("pi,pi->p", hg, Dq[P, P]) + fterm)
    hVh = np.einsum("pi,pqij,qj->pq", hg, C, hg)
    hDq = np.einsum("qj,pqj->pq", hg, Dq)                 # ∇H_Q · D_{P·}
    A_pq = (hv[:, None] * hv[None, :] * A[a[:, None], b[:, None], a[None, :], b[None, :]]
            + hv[:, None] * Tp[None, :] * hDq + Tp[:, None] * hv[None, :] * hDq.T
            + Tp[:, None] * Tp[None, :] * hVh)
    D_pq = (hv[:, None] * np.einsum("qj,pqj->pq", gg, Dq)
            + Tp[:, None] * np.einsum("pi,pqij,qj->pq", hg, C, gg))
    E4 = product_tensor(act, K, ("dphi",) * 4)
    E22 = product_tensor(act, K, ("dphi", "dphi", "phi", "phi"))
    TT = T[:, :, None, None] * T[None, None, :, :]
    HH = H[:, :, None, None] * H[None, None, :, :]
    u = d["u"]
    with np.errstate(invalid="ignore", over="ignore"):
        return out.with_(
            theta=T * H, theta1=from_pairs(t1, a, b, m),
            theta_a=tensor_from_pairs(A_pq, a, b, m), theta_d=tensor_from_pairs(D_pq, a, b, m),
            theta_b=s.theta_b * H[:, :, None, None] * H[None, None, :, :],
            theta_f=np.einsum("pgrh,pqg,rsh->pqrs", F, u, u),
            theta_s=TT * (E4 - HH),
            theta_sx=T[:, :, None, None] * (E22 - H[:, :, None, None] * out.K[None, None]))


def _dense(block, s: State, ctx: Ctx) -> State:
    if getattr(block, "width", 1.0) != 1.0 or s.width != 1.0:
        raise InvalidArgumentError(f"the {_NAME} theory follows layers of the network's width "
                                   f"only (a dense block of width {block.width:g})")
    sw, _ = (float(v) for v in ctx.variances(block))
    lb, lw = float(ctx.lambda_b), float(ctx.lambda_w)
    out = data_rules.THEORY.rule(block)(block, s, ctx)
    z4 = s.theta_a
    ts, tsx = _zero_if_none(s.theta_s, z4), _zero_if_none(s.theta_sx, z4)
    DV = s.D + s.V                          # n Cov((1/n)Σ x_α x_β, (1/n)Σ x_γ x_δ)
    S = tsx + s.theta_d                     # n Cov(T_P, S_Q), T = (1/n)Σ Θ̂_kk, S = (1/n)Σ x x
    T = s.theta
    with np.errstate(invalid="ignore", over="ignore"):
        return out.with_(
            theta=lb + lw * s.K + sw * T, theta1=lw * s.K1 + sw * s.theta1,
            theta_a=lw * lw * DV + lw * sw * (S + _swap(S)) + sw * sw * (ts + s.theta_a),
            theta_d=sw * (lw * DV + sw * S),
            theta_b=sw * sw * (np.einsum("ik,jl->ijkl", T, T) + _interleave(ts) + s.theta_b),
            theta_f=sw * sw * (np.einsum("ik,jl->ijkl", T, s.K) + _interleave(tsx)
                               + s.theta_f),
            theta_s=None, theta_sx=None)


def _residual(block, s: State, ctx: Ctx) -> State:
    finite.check_residual(block, ctx.activation)
    sw, _ = (float(v) for v in ctx.variances(block.branch[1]))
    lw = float(ctx.lambda_w)
    b = fold_branch(block, s, ctx, THEORY)
    out = data_rules.THEORY.rule(block)(block, s, ctx)
    # an affine φ: every tangent is the one slope a² = E[φ'²] = g' = e/K (one-input moments)
    mom = finite.moments(ctx.activation, s.K[0, 0])
    g1, h, eK = float(mom["g1"]), float(mom["h"]), float(mom["e"] / s.K[0, 0])
    mu2 = float(block.mu) ** 2
    T, A, Dn = s.theta, s.theta_a, s.theta_d
    chi, tK, tT = sw * g1, lw * g1, sw * h
    with np.errstate(invalid="ignore", over="ignore"):
        return out.with_(
            theta=mu2 * T + b.theta, theta1=mu2 * s.theta1 + b.theta1,
            theta_a=mu2 * mu2 * A + mu2 * (tK * (Dn + _swap(Dn)) + tT * (A + _swap(A)))
            + b.theta_a,
            theta_b=mu2 * mu2 * s.theta_b
            + 2.0 * mu2 * sw * h * (np.einsum("ik,jl->ijkl", T, T) + s.theta_b) + b.theta_b,
            theta_d=mu2 * mu2 * Dn + mu2 * (chi * Dn + tK * (s.D + s.V) + tT * Dn) + b.theta_d,
            theta_f=mu2 * mu2 * s.theta_f
            + 2.0 * mu2 * sw * eK * (np.einsum("ik,jl->ijkl", T, s.K) + s.theta_f) + b.theta_f,
            theta_s=None, theta_sx=None)


#: block kind -> rule ``(block, state, ctx) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "residual": _residual}
#: the several-input finite-width NTK theory's registry
THEORY = Theory(_NAME, RULES,
                needs={"residual": frozenset({Rep.GAUSSIAN}), "phi": frozenset({Rep.GAUSSIAN})},
                reasons={"residual": f"a residual block's input must be a dense block's output "
                                     f"(the {_NAME} rule)",
                         "phi": f"an activation must follow a dense block (the {_NAME} rule)"})


def start(gram, *, weight_var: float = 1.0, bias_var: float = 0.0, lambda_b: float = 0.0,
          lambda_w: float = 0.0) -> State:
    """Layer 1 on m fixed inputs with Gram matrix ``gram = x_α·x_β/n0`` (``(m, m)``): ``z¹`` is
    exactly Gaussian with kernel ``σ_b² + σ_w² gram`` and ``Θ̂¹_{ij;αβ} = δ_ij(λ_b + λ_W
    gram_αβ)`` exactly, so every 1/n field is 0."""
    G = np.asarray(gram, dtype=float)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise InvalidArgumentError(f"the Gram matrix must be square (m, m), got {G.shape}")
    fw = data_rules.start(float(bias_var) + float(weight_var) * G)
    z2, z4 = np.zeros_like(G), np.zeros((G.shape[0],) * 4)
    return fw.with_(theta=float(lambda_b) + float(lambda_w) * G, theta1=z2, theta_a=z4,
                    theta_b=z4.copy(), theta_d=z4.copy(), theta_f=z4.copy())


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def variance(s: State) -> np.ndarray:
    """``n Cov(Θ̂_{ii;α1α2}, Θ̂_{ii;α3α4})`` of one neuron of a Gaussian representation, indexed
    ``[α1, α2, α3, α4]``: ``A[α1,α2,α3,α4] + B[α1,α3,α2,α4] + B[α1,α4,α2,α3]``."""
    B = s.theta_b
    return s.theta_a + np.einsum("acbd->abcd", B) + np.einsum("adbc->abcd", B)


def cross(s: State) -> np.ndarray:
    """``n Cov(Θ̂_{ii;α1α2}, z_{i;α3} z_{i;α4})`` of one neuron of a Gaussian representation,
    indexed ``[α1, α2, α3, α4]``: ``D[α1,α2,α3,α4] + F[α1,α3,α2,α4] + F[α1,α4,α2,α3]``."""
    F = s.theta_f
    return s.theta_d + np.einsum("acbd->abcd", F) + np.einsum("adbc->abcd", F)


def check_network(net, m: int = 2) -> None:
    """Refuse, before any number is computed, a network these rules cannot read: what the
    one-input theory refuses (:func:`critheory.theory.ntk.finite.check_network`) and, on
    ``m >= 2`` inputs, an activation whose φ' jumps (the kernel derivatives of
    ``E[φ'_a φ'_b]`` do not exist)."""
    finite.check_network(net)
    act = net.activation
    if m >= 2 and act.homogeneous_slopes is None and _dphi_jumps(act):
        raise InvalidArgumentError(f"the {_NAME} theory needs the kernel derivatives of "
                                   f"E[phi'(h_a) phi'(h_b)], undefined for {act.name} (its "
                                   "derivative jumps)")


def _dphi_jumps(act) -> bool:
    """True where φ' has a jump (its kernel derivatives do not exist)."""
    from critheory.activation import Activation

    d1 = act.derivative(1)
    if not d1.free_symbols:           # a constant slope: nothing jumps
        return False
    return bool(Activation.get(d1).jumps)


@dataclass(frozen=True)
class NTKDataStatistics:
    """The NTK of a network on m inputs to order 1/n, at depths ``1..L`` (module docstring for
    the definitions and the index convention of each tensor).

    Attributes
    ----------
    activation, arch : str
    weight_var, bias_var : float
    inputs : ndarray, shape (m, n0)
    depths : ndarray, shape (L,)
    lambda_b, lambda_w : ndarray, shape (L,)
        The learning rates per layer (weight rate per fan-in).
    kernel, kernel_correction : ndarray, shape (L, m, m)
        ``K^l`` and ``K^{(1),l}`` (:class:`critheory.theory.finitewidth.data.DataStatistics`).
    vertex : ndarray, shape (L, m, m, m, m)
        ``V^l``.
    ntk, ntk_correction : ndarray, shape (L, m, m)
        ``Θ^l`` and ``Θ^{(1),l}``: ``E[Θ̂_{ii;αβ}] = Θ + Θ^{(1)}/n``.
    A, B, D, F : ndarray, shape (L, m, m, m, m)
        The order-1/n NTK tensors (``theta_a``, ``theta_b``, ``theta_d``, ``theta_f``).

    Examples
    --------
    >>> import critheory as ct
    >>> s = ct.ntk_data_statistics("mlp", 1.0, 0.0, [[1.0, 0.0], [0.0, 1.0]], depth=2,
    ...                            activation="linear", lambda_w=0.0)
    >>> isinstance(s, ct.NTKDataStatistics), s.variance().shape, s.cross(64).shape
    (True, (2, 2, 2, 2), (2, 2, 2, 2))
    """

    __repr__ = short_repr

    activation: str
    arch: str
    weight_var: float
    bias_var: float
    inputs: np.ndarray
    depths: np.ndarray
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    kernel: np.ndarray
    kernel_correction: np.ndarray
    vertex: np.ndarray
    ntk: np.ndarray
    ntk_correction: np.ndarray
    A: np.ndarray
    B: np.ndarray
    D: np.ndarray
    F: np.ndarray

    def _state(self, layer: int) -> State:
        return State(K=self.kernel[layer], theta_a=self.A[layer], theta_b=self.B[layer],
                     theta_d=self.D[layer], theta_f=self.F[layer])

    def ntk_mean(self, width: float, layer: int = -1) -> np.ndarray:
        """``E[Θ̂_{ii;αβ}] = Θ + Θ^{(1)}/n`` at width n (``(m, m)``)."""
        return self.ntk[layer] + self.ntk_correction[layer] / float(width)

    def variance(self, width: float = 1.0, layer: int = -1) -> np.ndarray:
        """``Cov(Θ̂_{ii;α1α2}, Θ̂_{ii;α3α4})`` of one neuron at width n, indexed
        ``[α1, α2, α3, α4]`` (:func:`variance` over ``width``; width 1: the coefficient
        ``n Cov``)."""
        return variance(self._state(layer)) / float(width)

    def cross(self, width: float = 1.0, layer: int = -1) -> np.ndarray:
        """``Cov(Θ̂_{ii;α1α2}, z_{i;α3} z_{i;α4})`` of one neuron at width n, indexed
        ``[α1, α2, α3, α4]`` (:func:`cross` over ``width``)."""
        return cross(self._state(layer)) / float(width)

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})


def _expand(arrs, where, rank: int) -> np.ndarray:
    ix = np.ix_(*([where] * rank))
    return np.stack([a[ix] for a in arrs])


def ntk_data_statistics(arch, weight_var: float, bias_var: float, inputs, depth: int, *,
                        lambda_b=1.0, lambda_w=1.0, activation=None,
                        mu: float | None = None) -> NTKDataStatistics:
    """The NTK's order-1/n statistics over several inputs at depths ``1..L``: the mean shift,
    ``A``, ``B``, ``D``, ``F`` (module docstring), beside the kernel, its 1/n shift and the
    vertex.

    Parameters
    ----------
    arch : Network, LayerMaps or a registry name
        A one-token network these rules cover (dense, activation, residual of a linear φ).
    weight_var, bias_var : float
        σ_w² (> 0) and σ_b² (>= 0).
    inputs : array_like, shape (m, n0)
        The inputs (rows); equal rows are computed once.
    depth : int
        Weight layers L (the output is ``z^(L)``).
    lambda_b, lambda_w : float or array (L,)
        Bias rate and weight rate per fan-in, per layer (PDLT's convention, as
        :func:`critheory.theory.ntk.depth.ntk_curves`).
    activation : str or Activation, optional
        With a registry name (default ReLU).
    mu : float, optional
        Residual strength of a registry name.

    Raises
    ------
    InvalidArgumentError
        Bad arguments, a block without a rule (one line naming it), two inputs at correlation
        one for a kinked φ, a problem beyond the work budget, or a kernel that leaves float64.

    Examples
    --------
    >>> import numpy as np
    >>> import critheory as ct
    >>> s = ct.ntk_data_statistics("mlp", 2.0, 0.0, [[1.0, 0.0], [0.6, 0.8]], depth=3)
    >>> s.ntk.shape, s.A.shape
    ((3, 2, 2), (3, 2, 2, 2, 2))
    >>> float(s.ntk_correction[-1, 0, 0])     # ReLU: the diagonal mean is exact at any width
    0.0
    """
    from critheory.common.checks import check_hyper, check_int, check_per_layer
    from critheory.common.limits import MAX_DATA_WORK, MAX_DEPTH_DATA
    from critheory.theory.finitewidth.data import (check_inputs, reduce_inputs,
                                                   seconds_per_layer)
    from critheory.theory.meanfield.maps import architecture

    net = getattr(arch, "network", arch)
    if not hasattr(net, "unit"):
        net = architecture(arch, "relu" if activation is None else activation,
                           1.0 if mu is None else mu).network
    x = check_inputs(inputs)
    xu, where, _ = reduce_inputs(x, False)
    m = xu.shape[0]
    check_network(net, m)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    L = check_int("depth", depth, 1)
    if L > MAX_DEPTH_DATA:
        raise InvalidArgumentError(f"depth must be between 1 and {MAX_DEPTH_DATA}, got {L}")
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    act = net.activation
    est = L * (seconds_per_layer(act, m) + 2.0 * seconds_per_layer(act, m, conditioned=False))
    if est > MAX_DATA_WORK:
        raise InvalidArgumentError(
            f"{m} distinct inputs to depth {L} need about {est:.3g} s of four-point "
            f"expectations for {act.name}, beyond the budget {MAX_DATA_WORK:g} s: use fewer "
            "inputs or layers")
    G = xu @ xu.T / xu.shape[1]
    if np.any(sb + sw * np.diag(G) <= 0):
        raise InvalidArgumentError("an input has zero kernel K¹ = σ_b² + σ_w²|x|²/n0 = 0 (a "
                                   "zero input without bias): its preactivations are all zero")
    s = start(G, weight_var=sw, bias_var=sb, lambda_b=lb[0], lambda_w=lw[0])
    states = [s]
    for i in range(1, L):
        s = apply(net, s, Ctx(act, sw, sb, lambda_b=lb[i], lambda_w=lw[i]))
        if not all(np.all(np.isfinite(getattr(s, k))) for k in
                   ("K", "K1", "V", "theta", "theta1", "theta_a", "theta_b", "theta_d",
                    "theta_f")):
            raise InvalidArgumentError(
                f"the kernel or the NTK statistics left float64 at layer {i + 1} (a runaway or "
                "collapsed kernel): no finite-width statistics there")
        states.append(s)
    f2 = {k: _expand([getattr(t, k) for t in states], where, 2) for k in ("K", "K1", "theta",
                                                                          "theta1")}
    f4 = {k: _expand([getattr(t, k) for t in states], where, 4) for k in ("V", "theta_a",
                                                                          "theta_b", "theta_d",
                                                                          "theta_f")}
    return NTKDataStatistics(act.name, architecture(net).describe(), sw, sb, x,
                             np.arange(1, L + 1), lb, lw, f2["K"], f2["K1"], f4["V"],
                             f2["theta"], f2["theta1"], f4["theta_a"], f4["theta_b"],
                             f4["theta_d"], f4["theta_f"])
