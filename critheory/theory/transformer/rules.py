"""The token-kernel rule of each block: infinite-width maps of the ``T x T`` token kernel G and
of tangent kernels Θ (forward-mode APJN), batched over R quasi-Monte Carlo randomizations.

Rules ``rule(block, state, ctx) -> state`` on the one :class:`~critheory.theory.state.State`
(folded by :func:`critheory.theory.fold.fold`): its kernel ``K`` is the token kernel ``G`` of
shape ``(R, T, T)``, ``G_{ts} = lim (1/n) Σ_i h_{t,i} h_{s,i}``, and its tangent field ``J`` the
tangent kernels ``Θ`` of shape ``(R, K, T, T)``, ``Θ_{ts} = lim (1/n) Σ_i δh_{t,i} δh_{s,i}``
for K tangents ``δh = J η`` started from iid ``η`` (``Θ = I``: then ``tr Θ^l / T`` is the
APJN). Primal and tangent are
uncorrelated at infinite width (the tangent is odd in η), which removes every cross term below.

==============  ===========================================  =================================
block           G'                                           Θ'
==============  ===========================================  =================================
layernorm       ``D^{-1/2} G D^{-1/2}``, ``D = diag G``      ``D^{-1/2} Θ D^{-1/2}``
rmsnorm         ``D^{-1/2} G D^{-1/2}`` (any input)          ``D^{-1/2} Θ D^{-1/2}``
mlp             ``σ_w² E[φ(u_t)φ(u_s)] + σ_b²``              ``σ_w⁴ E[φ'(u_t)φ'(u_s)] ∘ Θ``
                (``u ~ N(0, σ_w² G + σ_b²)``)
attention       ``C_U C_V E[A G Aᵀ]``                        ``C_U C_V (E[A Θ Aᵀ]``
                                                             ``+ C_Q C_K (Θ∘E[tr(GPGP)]``
                                                             ``+ G∘E[tr(ΘPGP)]))``
residual        ``μ² G + branch(G)``                         ``μ² Θ + branch'(Θ)``
dense           ``σ_b² + σ_w² G`` (its own σ's if any)       ``σ_w² Θ``
phi             ``E[φ(u_t)φ(u_s)]``, ``u ~ N(0, G)``         ``E[φ'(u_t)φ'(u_s)] ∘ Θ``
==============  ===========================================  =================================

(layernorm: a centred input, whose variance is its second moment ``G_tt``; rmsnorm divides by
the second moment ``G_tt`` of any input, φ(h) included: ``G_ts/√(G_tt G_ss)``, its Jacobian
``(I − y_t y_tᵀ/n)/√G_tt`` removing one direction per token, order 1/n in Θ.) (attention: value
path ``A δv`` and logit path ``δA v``, ``δA_{s·} = P_s δz_{s·}``, with
``E[δz_{sr} δz_{s'r'}] = C_Q C_K (Θ_{ss'} G_{rr'} + Θ_{rr'} G_{ss'})``; derivation in
``docs/transformers.md``.) The two-point expectations of the MLP block are
:func:`critheory.expectations.gaussian.expect2` (relative errors <= 1e-10, negligible next
to the attention block's quasi-Monte Carlo error). Where every token has the same variance
(the block is fed by a LayerNorm, as in every registered transformer) they are functions of the
correlation alone and come from a verified Chebyshev table in ``θ = arccos ρ``, built once per
run (:func:`_correlation_table`; all token pairs, replicas and layers in one evaluation);
elsewhere they are evaluated once at the replicas' mean and carried to each replica to first
order by Price's theorem where the replicas differ only by QMC noise (:func:`_mlp_expectations`).
"""
from __future__ import annotations

import math

import numpy as np

from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.theory.fold import GRAMMAR, Ctx, Theory, fold, fold_branch
from critheory.theory.meanfield.tabulated import PiecewiseChebyshev
from critheory.theory.state import Rep, State
from critheory.theory.transformer.softmax import SoftmaxSampler, softmax_moments

__all__ = ["context", "apply_blocks", "RULES", "THEORY"]


def context(activation, weight_var: float, bias_var: float,
            sampler: SoftmaxSampler | None = None) -> Ctx:
    """The :class:`~critheory.theory.fold.Ctx` of these rules: φ, σ_w², σ_b², the logit
    sampler (None where the attention weights are deterministic) and, built on demand, the
    tables of the MLP block's two-point expectations (:func:`_correlation_table`)."""
    return Ctx(activation, weight_var, bias_var, sampler=sampler)


def _layernorm(block, s: State, ctx: Ctx) -> State:
    G, Th = s.K, s.J
    d = np.einsum("rtt->rt", G)
    if np.any(d <= 0):
        raise ConvergenceError(f"{type(block).__name__} of a "
                               "token with zero kernel (all weight and bias variances zero?): "
                               "the normalization is undefined")
    r = 1.0 / np.sqrt(d)
    S = r[:, :, None] * r[:, None, :]
    return State(K=G * S, J=Th * S[:, None], rep=GRAMMAR[block.kind].makes(s.rep))


def _pairs(act, f, g, k11, k12, k22):
    """``E[f(u_t) g(u_s)]`` per entry, each distinct (K11, K12, K22) triple once (the diagonal
    of a normalized input repeats). rtol 1e-10: far below the QMC errors (~1e-5)."""
    from critheory.expectations.gaussian import expect2

    trip = np.stack([k11.ravel(), k12.ravel(), k22.ravel()])
    uniq, inv = np.unique(trip, axis=1, return_inverse=True)
    return expect2(act, f, g, *uniq, rtol=1e-10).value[inv.ravel()].reshape(k11.shape)


#: Largest spread of the replicas' covariances (relative) for the linearized MLP rule.
_LINEAR_SPREAD = 1e-3


def _mlp_expectations(act, k11, k12, k22):
    """``E[φφ]`` and ``E[φ'φ']`` for every replica (first axis) and token pair.

    The R replicas differ only by the attention blocks' QMC noise δ (~1e-5). Where the
    variances agree across replicas (they do after LayerNorm) and the spread of the covariances
    is small, the expectations are evaluated at the replica mean and carried to each replica by
    Price's theorem, ``∂E[f(u₁)g(u₂)]/∂K₁₂ = E[f'(u₁)g'(u₂)]``, to first order in δ (the
    neglected term is ``O(δ²)`` ~ 1e-10 relative); R times fewer expectations. Elsewhere, or for
    activations whose ``φ''`` is distributional (ReLU: closed forms, fast anyway), every replica
    is evaluated.
    """
    R = k11.shape[0]
    m12 = k12.mean(axis=0)
    dev = k12 - m12
    scale = np.sqrt(k11[0] * k22[0])
    # variances equal across replicas up to rounding (1e-12: a change below the 1e-10 rtol)
    if (R > 1 and np.allclose(k11, k11[:1], rtol=1e-12, atol=0)
            and np.allclose(k22, k22[:1], rtol=1e-12, atol=0)
            and np.all(np.abs(dev) <= _LINEAR_SPREAD * scale)):
        try:
            e3 = _pairs(act, "d2phi", "d2phi", k11[0], m12, k22[0])
        except (InvalidArgumentError, ConvergenceError):
            e3 = None
        if e3 is not None:
            e1 = _pairs(act, "phi", "phi", k11[0], m12, k22[0])
            e2 = _pairs(act, "dphi", "dphi", k11[0], m12, k22[0])
            return e1 + e2 * dev, e2 + e3 * dev
    return (_pairs(act, "phi", "phi", k11, k12, k22),
            _pairs(act, "dphi", "dphi", k11, k12, k22))


#: Accuracy of the MLP block's correlation tables, relative to E[φ²] and E[φ'²] at the common
#: variance (the largest |E[φ(u₁)φ(u₂)]|, |E[φ'(u₁)φ'(u₂)]| by Cauchy–Schwarz): the rtol of the
#: per-pair route, far below the QMC errors (~1e-5).
_TABLE_RTOL = 1e-10
#: Largest relative spread of the token variances that counts as one common variance (a
#: LayerNorm output, up to rounding); the change it causes is below 1e-12 relative.
_SAME_VARIANCE = 1e-13


def _correlation_table(act, v: float, ctx: Ctx) -> PiecewiseChebyshev:
    """``θ ↦ (E[φ(u₁)φ(u₂)], E[φ'(u₁)φ'(u₂)])`` for ``u`` of variances ``v`` and correlation
    ``cos θ``, θ in [0, π] (in θ the ReLU-type kinks' ``√(1 − ρ²)`` terms are analytic),
    tabulated on demand once per run and variance (up to rounding): pieces verified against
    :func:`~critheory.expectations.gaussian.expect2` to ``_TABLE_RTOL`` × (the value at θ = 0),
    else evaluated by it directly. Returns the table and the two values at θ = 0."""
    from critheory.expectations.gaussian import expect2

    # a table of a variance within _SAME_VARIANCE of v serves v (LayerNorm outputs of the
    # layers and replicas differ from one another by rounding; a change below 1e-12)
    key = next((k for k in ctx.tables if isinstance(k, tuple) and len(k) == 3
                and k[0] == "correlation" and k[1] == id(act)
                and abs(k[2] - v) <= _SAME_VARIANCE * v), ("correlation", id(act), v))
    if key not in ctx.tables:
        def exact(theta):
            k12 = v * np.cos(theta)
            return np.stack([expect2(act, "phi", "phi", v, k12, v, rtol=_TABLE_RTOL).value,
                             expect2(act, "dphi", "dphi", v, k12, v, rtol=_TABLE_RTOL).value])

        diag = exact(np.zeros(1))[:, 0]
        scale = np.abs(diag)
        ctx.tables[key] = (PiecewiseChebyshev(exact, math.pi, rtol=_TABLE_RTOL,
                                              floor=np.where(scale > 0, scale, 1e-300),
                                              lo=0.0, hi=math.pi), diag)
    return ctx.tables[key]


def _tabulated_expectations(ctx: Ctx, k11, k12, k22):
    """``E[φφ]``, ``E[φ'φ']`` for every entry from the correlation table, where all the
    variances are one (a LayerNorm feeds the block); None elsewhere."""
    v = float(k11.flat[0])
    if not (v > 0 and math.isfinite(v)):
        return None
    if (np.abs(k11 - v).max() > _SAME_VARIANCE * v
            or np.abs(k22 - v).max() > _SAME_VARIANCE * v):
        return None
    # each entry's own correlation (a diagonal entry is exactly 1: θ = 0, where the ReLU-type
    # maps have an infinite slope in ρ and a rounding of ρ would show as √δρ)
    theta = np.arccos(np.clip(k12 / np.sqrt(k11 * k22), -1.0, 1.0))
    table, diag = _correlation_table(ctx.activation, v, ctx)
    e = table(theta)
    e[:, theta == 0.0] = diag[:, None]        # coincident tokens: E[φ²], E[φ'²] as computed
    return e[0], e[1]


def _pair_expectations(ctx: Ctx, Sig: np.ndarray):
    """``E[φ(u_t)φ(u_s)]`` and ``E[φ'(u_t)φ'(u_s)]``, ``u ~ N(0, Sig)``, for every replica and
    token pair (shape ``(R, T, T)`` each)."""
    R, T, _ = Sig.shape
    iu, ju = np.triu_indices(T)       # each (t, s) pair once, then mirrored
    args = Sig[:, iu, iu], Sig[:, iu, ju], Sig[:, ju, ju]
    tab = _tabulated_expectations(ctx, *args)
    pp, dd = tab if tab is not None else _mlp_expectations(ctx.activation, *args)
    E1, E2 = np.empty((R, T, T)), np.empty((R, T, T))
    E1[:, iu, ju] = pp
    E1[:, ju, iu] = pp
    E2[:, iu, ju] = dd
    E2[:, ju, iu] = dd
    return E1, E2


def _mlp(block, s: State, ctx: Ctx) -> State:
    sw, sb = ctx.weight_var, ctx.bias_var
    E1, E2 = _pair_expectations(ctx, sw * s.K + sb)
    return State(K=sw * E1 + sb, J=(sw * sw) * E2[:, None] * s.J)


def _dense(block, s: State, ctx: Ctx) -> State:
    # one bias vector for every token: σ_b² enters every entry of G
    sw, sb = ctx.variances(block)
    return State(K=sb + sw * s.K, J=sw * s.J)


def _phi(block, s: State, ctx: Ctx) -> State:
    E1, E2 = _pair_expectations(ctx, s.K)
    return State(K=E1, J=E2[:, None] * s.J, rep=Rep.PHI)


def _attention(block, s: State, ctx: Ctx) -> State:
    afa, ata, logit = softmax_moments(s.K, s.J, block.logit_variance, block.causal,
                                      ctx.sampler)
    c = block.cu * block.cv
    return State(K=c * afa, J=c * (ata + logit))


def _residual(block, s: State, ctx: Ctx) -> State:
    b = fold_branch(block, s, ctx, THEORY)
    m2 = block.mu ** 2
    return State(K=m2 * s.K + b.K, J=m2 * s.J + b.J)


#: block kind -> token-kernel rule ``(block, state, ctx) -> state``
RULES = {"layernorm": _layernorm, "rmsnorm": _layernorm, "mlp": _mlp, "attention": _attention,
         "residual": _residual, "dense": _dense, "phi": _phi}
#: the token-kernel theory's registry; its LayerNorm rule divides by the second moment, so it
#: needs a centred input (a LayerNorm of φ(h) would subtract E[φ]: not covered here); the same
#: rule is RMSNorm's on every input (RMSNorm divides by the second moment)
THEORY = Theory("transformer token-kernel", RULES,
                needs={"layernorm": frozenset({Rep.GAUSSIAN, Rep.NORMALIZED})},
                reasons={"layernorm": "a LayerNorm of an activation's output has no token-kernel "
                                      "rule (the rule needs a centred input)"})


def apply_blocks(blocks, G: np.ndarray, Th: np.ndarray, ctx: Ctx):
    """``(G, Θ)`` after a sequence of blocks (the fold of :mod:`critheory.theory.fold` on the
    token state ``State(K=G, J=Θ)``)."""
    s = fold(blocks, State.start_tokens(G, Th), ctx, THEORY)
    return s.K, s.J
