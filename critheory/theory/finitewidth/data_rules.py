"""Finite-width rules on several inputs: the kernel, its 1/n shift and the four-point vertex
over a set of m inputs, through the blocks of the one network model.

The fields of the one :class:`~critheory.theory.state.State` carry trailing input axes here
(``α, β, ... = 0..m-1``, a neuron ``y_i`` of the representation on the m inputs):

``K``   ``(m, m)``        ``K_αβ = E[y_{i;α} y_{i;β}]`` at infinite width
``K1``  ``(m, m)``        the 1/n shift: ``E[y_{i;α} y_{i;β}] = K_αβ + K1_αβ/n``
``V``   ``(m, m, m, m)``  ``V_(αβ)(γδ) = n Cov(y_{i;α}y_{i;β}, y_{j;γ}y_{j;δ})``, i ≠ j
``D``   ``(m, m, m, m)``  ``Cov(y_{i;α}y_{i;β}, y_{i;γ}y_{i;δ})`` at infinite width
``dK``  ``(m, m, m, m)``  a residual branch's tangent ``∂K_αβ/∂K_γδ`` (ordered entries)

The connected four-point function of one neuron is
``(1/n)(V_(αβ)(γδ) + V_(αγ)(βδ) + V_(αδ)(βγ))`` (PDLT eq. (4.90)'s structure; at one input
``3V/n``, the single-input theory of :mod:`.rules`). Several output neurons: the same
``K``, ``K1`` on each, independent at infinite width, and ``V`` couples them only through the
kernel: ``E[z_{i;α}z_{i;β}z_{j;γ}z_{j;δ}]_c = V_(αβ)(γδ)/n`` for i ≠ j (the identity across
neurons).

=========  =========================  ================================================
block      ``K``, ``K1``              ``V``
=========  =========================  ================================================
dense      ``σ_b² + σ_w² K``, ``σ_w² K1``   ``σ_w⁴ (D/r + V)``
phi        ``E(K)``, ``∇E·K1 + ½ ∇²E:V``    ``∇E V ∇Eᵀ`` (``D' = ⟨φφφφ⟩ − ⟨φφ⟩⟨φφ⟩``)
residual   ``μ²K + K_b``, ``μ²K1 + K1_b``   ``μ⁴V + μ²(χ_b:W + W:χ_bᵀ) + V_b``, ``W = D/r + V``
=========  =========================  ================================================

Why: a dense block's output is, given its input, i.i.d. Gaussian over neurons with the random
metric ``Ĝ_αβ = σ_b² + σ_w² (1/m)Σ_j x_{j;α} x_{j;β}`` (PDLT ch. 4), so
``E[y y] = E[Ĝ]`` and ``n Cov(Ĝ_αβ, Ĝ_γδ) = σ_w⁴ (D/r + V)`` (the same argument as the
single-input rule). An activation maps a Gaussian-like vector whose metric fluctuates with
covariance ``V/n`` and shifts by ``K1/n``: by the delta method in the three entries
``(K_αα, K_αβ, K_ββ)`` of each pair, ``E(K)_αβ = E[φ(h_α)φ(h_β)]`` moves by
``∇E·K1/n + ½ ∇²E:V/n`` and fluctuates with ``∇E V ∇Eᵀ/n`` (PDLT eqs. (4.90), (4.115) in
this form; the gradient and Hessian come from
:func:`critheory.expectations.kernel_derivatives.pair_derivatives`, the diagonal from the
single-input route :func:`critheory.theory.meanfield.rules.dE`, so m = 1 gives the
single-input numbers exactly). ``D'`` needs the four-point functions
``⟨φ_αφ_βφ_γφ_δ⟩`` (:func:`critheory.expectations.multipoint.four_point`). The residual rule
is the single-input one with the branch's tangent a linear map on kernels.

Not covered (one-line refusals): LayerNorm and RMSNorm (their several-input vertex — the
normalization couples the inputs only through each input's own norm, but the cross term
``P`` becomes a matrix — is not derived here), attention blocks (T > 1 tokens).

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.finitewidth.data_rules import apply, start
>>> from critheory.theory.fold import Ctx
>>> net = network("mlp", "relu")
>>> s = apply(net, start(np.array([[1.0]])), Ctx(net.activation, 2.0, 0.0))
>>> float(s.K[0, 0]), float(s.V[0, 0, 0, 0])   # the single-input rule's V' = 5
(1.0, 5.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.expectations.kernel_derivatives import pair_derivatives
from critheory.theory.fold import Ctx, Theory, check_composition, check_one_token, fold, fold_branch
from critheory.theory.meanfield.rules import E, dE
from critheory.theory.state import Rep, State

__all__ = ["THEORY", "RULES", "apply", "start", "check_network", "gaussian_D", "identity_map",
           "pair_entries", "pair_expectations", "from_pairs", "tensor_from_pairs"]


def gaussian_D(K: np.ndarray) -> np.ndarray:
    """``Cov(y_α y_β, y_γ y_δ) = K_αγ K_βδ + K_αδ K_βγ`` of a centred Gaussian vector."""
    return np.einsum("ac,bd->abcd", K, K) + np.einsum("ad,bc->abcd", K, K)


def identity_map(m: int) -> np.ndarray:
    """The identity on symmetric m×m kernels, as an ordered ``(m, m, m, m)`` map."""
    e = np.eye(m)
    return 0.5 * (np.einsum("ac,bd->abcd", e, e) + np.einsum("ad,bc->abcd", e, e))


def start(K, *, tangents: bool = False) -> State:
    """The first layer's state on m inputs: kernel ``K`` (``(m, m)``, ``K¹_αβ = σ_b² +
    σ_w² x_α·x_β/n0``), exactly Gaussian (``K1 = V = 0``)."""
    K = np.asarray(K, dtype=float)
    m = K.shape[-1]
    return State(K=K, K1=np.zeros_like(K), V=np.zeros((m,) * 4), D=gaussian_D(K),
                 P=np.zeros_like(K), dK=identity_map(m) if tangents else None)


def pair_entries(m: int):
    """The unordered pairs ``a <= b`` of m inputs (``np.triu_indices``) and, per pair, the three
    kernel entries ``(a, a), (a, b), (b, b)`` its two-point expectations depend on (shape
    ``(pairs, 3, 2)``)."""
    a, b = np.triu_indices(m)
    # the three entries (K_aa, K_ab, K_bb) each pair depends on
    ent = np.stack([np.stack([a, a], -1), np.stack([a, b], -1), np.stack([b, b], -1)], 1)
    return a, b, ent


def from_pairs(vals: np.ndarray, a, b, m: int) -> np.ndarray:
    """The symmetric ``(m, m, ...)`` array from its values on the pairs ``a <= b``."""
    out = np.empty((m, m) + vals.shape[1:])
    out[a, b] = vals
    out[b, a] = vals
    return out


def pair_expectations(act, K: np.ndarray, hessian: bool = True):
    """Per unordered pair (a <= b): ``a, b, ent`` of :func:`pair_entries` and ``E[φ_a φ_b]``, its
    gradient (3) and Hessian (3, 3) in (K_aa, K_ab, K_bb) (the diagonal through the
    single-input route, only its first entries non-zero)."""
    m = K.shape[0]
    a, b, ent = pair_entries(m)
    p = a.size
    val = np.empty(p)
    grad = np.zeros((p, 3))
    hess = np.zeros((p, 3, 3))
    diag = a == b
    kd = K[a[diag], a[diag]]
    val[diag] = E(act, "phi2", kd)
    grad[diag, 0] = dE(act, kd, 1)
    hess[diag, 0, 0] = dE(act, kd, 2)
    off = ~diag
    if off.any():
        d = pair_derivatives(act, K[a[off], a[off]], K[a[off], b[off]], K[b[off], b[off]],
                             hessian=hessian)
        val[off], grad[off], hess[off] = d.value, d.grad, d.hess
    return a, b, ent, val, grad, hess


def _phi(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    K = s.K
    m = K.shape[-1]
    # the Hessian multiplies V: not needed (and singular at |ρ| = 1 for a kink) where V = 0
    fluctuates = bool(np.any(s.V != 0))
    a, b, ent, val, grad, hess = pair_expectations(act, K, hessian=fluctuates)
    # C[P, Q, i, j] = n Cov(K_{ent[P, i]}, K_{ent[Q, j]}) = V at those entries
    C = s.V[ent[:, None, :, None, 0], ent[:, None, :, None, 1],
            ent[None, :, None, :, 0], ent[None, :, None, :, 1]]
    Cd = C[np.arange(a.size), np.arange(a.size)]
    k1 = np.einsum("pi,pi->p", grad, s.K1[ent[..., 0], ent[..., 1]])
    if fluctuates:
        k1 = k1 + 0.5 * np.einsum("pij,pij->p", hess, Cd)
    vpq = np.einsum("pi,pqij,qj->pq", grad, C, grad)
    Kn = from_pairs(val, a, b, m)
    four = _four_point(act, K)
    D = four - np.einsum("ab,cd->abcd", Kn, Kn)
    dK = None
    if s.dK is not None:
        dk = np.einsum("pi,pief->pef", grad, s.dK[ent[..., 0], ent[..., 1]])
        dK = from_pairs(dk, a, b, m)
    return State(K=Kn, K1=from_pairs(k1, a, b, m), V=tensor_from_pairs(vpq, a, b, m), D=D,
                 P=None, dK=dK, rep=Rep.PHI, q=K, width=s.width)


#: four-point accuracy ladder: the tightest that converges (a vertex entry enters at order 1/n:
#: 1e-6 relative is still far below any finite-width effect)
_FOUR_RTOL = (1e-10, 1e-8, 1e-6)


def _four_point(act, K: np.ndarray) -> np.ndarray:
    from critheory.expectations.multipoint import four_point

    for rtol in _FOUR_RTOL:
        try:
            return four_point(act, K, rtol=rtol, batch_single=True)[0]
        except ConvergenceError as exc:
            last = exc
    raise ConvergenceError(f"the four-point functions of {act.name} on these inputs did not "
                           f"converge even at rtol {_FOUR_RTOL[-1]:g} ({last})")


def tensor_from_pairs(vpq: np.ndarray, a, b, m: int) -> np.ndarray:
    """The full ``(m, m, m, m)`` tensor from its values on pairs of unordered pairs."""
    half = np.empty((m, m, vpq.shape[1]))
    half[a, b] = vpq
    half[b, a] = vpq
    out = np.empty((m, m, m, m))
    out[:, :, a, b] = half
    out[:, :, b, a] = half
    return out


def _dense(block, s: State, ctx: Ctx) -> State:
    sw, sb = (float(v) for v in ctx.variances(block))
    K = sb + sw * s.K
    return State(K=K, K1=sw * s.K1, V=sw * sw * (s.D / s.width + s.V), D=gaussian_D(K),
                 P=np.zeros_like(K), dK=None if s.dK is None else sw * s.dK, width=block.width)


def _residual(block, s: State, ctx: Ctx) -> State:
    m = s.K.shape[-1]
    br = fold_branch(block, s.with_(dK=identity_map(m)), ctx, THEORY)
    if br.width != s.width:
        raise InvalidArgumentError(f"a residual branch must end at its input's width (a dense "
                                   f"block of width {s.width:g}, got {br.width:g})")
    mu2 = float(block.mu) ** 2
    W = s.D / s.width + s.V
    cross = np.einsum("cdef,abef->abcd", br.dK, W) + np.einsum("abef,cdef->abcd", br.dK, W)
    K = mu2 * s.K + br.K
    dK = None
    if s.dK is not None:
        dK = mu2 * s.dK + np.einsum("abef,efgh->abgh", br.dK, s.dK)
    return State(K=K, K1=mu2 * s.K1 + br.K1, V=mu2 * mu2 * s.V + mu2 * cross + br.V,
                 D=gaussian_D(K), P=np.zeros_like(K), dK=dK, width=s.width)


#: block kind -> rule ``(block, state, ctx) -> state`` of the several-input theory
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "residual": _residual}
#: the several-input finite-width theory's registry
THEORY = Theory("finite-width (several inputs)", RULES,
                needs={"residual": frozenset({Rep.GAUSSIAN})},
                reasons={"residual": "a residual block's input must be a dense block's output "
                                     "(the finite-width rule)"})


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def check_network(net) -> None:
    """Refuse, before any number is computed, a network these rules cannot read (T > 1
    tokens, a block without a rule, a unit that does not end at the network's width)."""
    check_one_token(net, THEORY.name)
    check_composition(net.unit, THEORY)
    out = 1.0
    for b in net.unit:
        out = getattr(b, "width", out) if b.weighted and not getattr(b, "branch", ()) else out
    if out != 1.0:
        raise InvalidArgumentError(f"the {THEORY.name} theory needs the unit of {net.name!r} "
                                   f"to end at the network's width (its last dense block has "
                                   f"width {out:g})")
