"""Mean-field rules: how each block maps a :class:`~critheory.theory.meanfield.state.State`.

One function per block kind ``rule(block, state, ctx) -> state``, registered in :data:`RULES`
(:data:`THEORY`); a layer is the fold of its blocks' rules (:func:`critheory.theory.fold.fold`,
:func:`apply`). A dense block maps with its own variances where it carries them
(``ctx.variances(block)``); its output ``width`` does not enter (infinite width). Conventions as in :mod:`critheory.blocks.blocks`: ``E_K[g]`` is
``E[g(h)]``, ``h ~ N(0, K)``; at infinite width a dense block makes its output Gaussian with
``K' = σ_b² + σ_w² K``, an activation maps second moments through Gaussian expectations, and a
LayerNorm divides by the empirical standard deviation (its Jacobian
``(I − 11ᵀ/N − yyᵀ/N)/s`` removes two directions, which changes ``‖·‖²/N`` only at order 1/N).

=============  ====================================  ======================  ==================
block          ``K``                                 ``J`` (tangent norm²)   ``dK12`` (χ_⊥)
=============  ====================================  ======================  ==================
dense          ``σ_b² + σ_w² K``                     ``σ_w² J``              ``σ_w² dK12``
phi            ``E_K[φ²]``                           ``E_K[φ'²] J``          ``E_K[φ'²] dK12``
layernorm      ``1``                                 ``J / V``               ``dK12 / V``
rmsnorm        ``1``                                 ``J / K``               ``dK12 / K``
residual       ``μ² K + branch(K)``                  ``μ² J + branch(J)``    ``μ² dK12 + ...``
=============  ====================================  ======================  ==================

with ``V = K`` for a Gaussian input of LayerNorm and ``V = E_q[φ²] − E_q[φ]²`` for ``φ(h)``, ``h
~ N(0, q)``. An RMSNorm divides by the second moment ``K`` whatever the input (no mean is
subtracted): ``K12' = K12/√(K K22)``, ``dK = 0``, and its Jacobian ``(I − yyᵀ/N)/√K`` removes
one direction (order 1/N in ``‖·‖²/N``); on a Gaussian input it is the LayerNorm rule (``V =
K``), on ``φ(h)`` it keeps the mean ``E_q[φ]/√K``. The derivative of ``E_K[φ²]`` is
``E_K[hφφ']/K`` (Gaussian integration by parts), and ``∂E[φ(u₁)φ(u₂)]/∂K₁₂ = E[φ'(u₁)φ'(u₂)]``
(Price's theorem), which is ``E_K[φ'²]`` at coincident inputs: that is how χ_⊥ comes out of the
covariance map [PDLT §5; DHG §2–4].
The field ``gap = K₀J − K`` maps as ``σ_w² gap − σ_b²`` (dense), ``E_K[φ'²] gap + P(K)``
(activation, P the Poincaré gap of :mod:`critheory.expectations.poincare`), ``μ² gap +
branch(gap)`` (residual); a LayerNorm or an RMSNorm does not carry it (None).

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.fold import Ctx
>>> from critheory.theory.meanfield.rules import apply
>>> from critheory.theory.state import State
>>> net = network("mlp", "relu")
>>> s = apply(net, State.start(np.array(3.0), jacobian=True), Ctx(net.activation, 2.0, 0.1))
>>> float(s.K), float(s.J)          # K' = 0.1 + 2 * 3/2, chi_J = 2 * 1/2
(3.1, 1.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.activation import Activation
from critheory.blocks.blocks import Residual
from critheory.errors import CritheoryError, GrowthError, InvalidVarianceError
from critheory.expectations import expect, expect2
from critheory.expectations.derivatives import dexpect
from critheory.expectations.poincare import poincare_gap
from critheory.theory.fold import GRAMMAR, Ctx, Theory, fold, fold_branch
from critheory.theory.fold import check_composition as _check
from critheory.theory.state import Rep, State

__all__ = ["RULES", "THEORY", "apply", "check_composition", "E", "dE", "rule",
           "layernorm_variance"]


def E(act: Activation, g: str, K) -> np.ndarray:
    """``E_K[g]`` for a named integrand, vectorized over ``K >= 0``.

    ``K = 0`` (and a subnormal K) is a point evaluation (for ``phi``, ``phi2``, ``dphi2``); an entry whose value
    overflows float64 is ``inf`` (found by bisection in K, since the overflow grows with K); a
    constant array is evaluated once.
    """
    K = np.asarray(K, dtype=float)
    if K.size > 1 and K.flat[0] > 0 and np.all(K == K.flat[0]):
        return np.broadcast_to(E(act, g, K.flat[0]), K.shape).copy()
    out = np.zeros(K.shape)
    # a subnormal K (< 2.2e-308, e.g. a kernel decaying over many layers) is read as K = 0:
    # E_K[g] = g(0) + O(K), and the O(K) term is below every float64 normal number
    pos = K >= np.finfo(float).tiny
    if np.any(pos):
        try:
            out[pos] = expect(act, g, K[pos]).value
        except GrowthError:
            idx = np.flatnonzero(pos.ravel())
            order = idx[np.argsort(K.ravel()[idx])]
            lo, hi = 0, order.size  # entries [0, lo) known good, [hi, n) known bad
            while lo < hi:
                mid = (lo + hi) // 2
                try:
                    expect(act, g, K.flat[order[mid]])
                    lo = mid + 1
                except GrowthError:
                    hi = mid
            good, bad = order[:lo], order[lo:]
            if good.size:
                out.flat[good] = expect(act, g, K.flat[good]).value
            out.flat[bad] = np.inf
    if np.any(~pos):  # K = 0: point evaluation
        f = {"phi2": lambda: float(act.numpy(0.0)) ** 2,
             "dphi2": lambda: float(act.numpy_func(1)(0.0)) ** 2,
             "phi": lambda: float(act.numpy(0.0))}.get(g)
        if f is None:
            raise InvalidVarianceError("K must be > 0")
        out[~pos] = f()
    return out


def dE(act: Activation, K, order: int = 1, g: str = "phi2") -> np.ndarray:
    """``d^order/dK^order E_K[g]`` on an array of K: the one route of every theory's rules to a
    derivative in the variance (:func:`critheory.expectations.derivatives.dexpect`; for
    ``E_K[φ²]`` of a continuous φ, order 1, its integration-by-parts form ``E_K[hφφ']/K``, the
    mean field's χ_∥). NaN where K is not a finite normal number > 0 (a collapsed or runaway
    kernel: no derivative), inf where the expectation overflows float64, a constant array
    evaluated once."""
    K = np.asarray(K, dtype=float)
    method = "stein" if (g == "phi2" and order == 1 and not act.discontinuities) else "auto"
    out = np.full(K.shape, np.nan)
    ok = np.isfinite(K) & (K >= np.finfo(float).tiny)
    if not ok.any():
        return out
    if K.size > 1 and ok.all() and np.all(K == K.flat[0]):
        return np.full(K.shape, dE(act, K.flat[0], order, g))
    try:
        out[ok] = dexpect(act, g, K[ok], order, method=method).value
    except CritheoryError:   # an entry beyond float64 (growing φ): entry by entry
        for i in np.flatnonzero(ok.ravel()):
            try:
                out.flat[i] = float(dexpect(act, g, float(K.flat[i]), order,
                                            method=method).value)
            except GrowthError:
                out.flat[i] = np.inf
            except CritheoryError:
                out.flat[i] = np.nan
    return out


def _poincare(act: Activation, K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P, E_K[φ'²], E_K[φ²])`` with the Poincaré gap ``P = K E_K[φ'²] − E_K[φ²]`` computed
    without cancellation from the same two expectations (K = 0: ``P = −φ(0)²``); P is NaN where
    it cannot be resolved."""
    K = np.asarray(K, dtype=float)
    d2, p2, out = np.zeros(K.shape), np.zeros(K.shape), np.zeros(K.shape)
    pos = K >= np.finfo(float).tiny   # subnormal K: as K = 0 (see E)
    if not np.all(pos):   # K = 0: point values
        d2[~pos], p2[~pos] = E(act, "dphi2", K[~pos]), E(act, "phi2", K[~pos])
        out[~pos] = -p2[~pos]
    if np.any(pos):
        Kp = K[pos]
        try:
            D, S = expect(act, "dphi2", Kp), expect(act, "phi2", Kp)
            r = poincare_gap(act, Kp, moments=(D, S))
            d2[pos], p2[pos] = D.value, S.value
            v = np.asarray(r.value, dtype=float)
            # NaN where neither the difference nor the series resolves the gap to 1e-9
            # (softplus at K ~ 1e31: the solvers treat NaN as "no information here")
            out[pos] = np.where(np.asarray(r.error) <= 1e-9 * np.abs(v), v, np.nan)
        except GrowthError:
            # an expectation overflows float64 somewhere: the difference of E's (inf/NaN there)
            d2[pos], p2[pos] = E(act, "dphi2", Kp), E(act, "phi2", Kp)
            with np.errstate(invalid="ignore", over="ignore"):
                out[pos] = Kp * d2[pos] - p2[pos]
    return out, d2, p2


def _dense(block, s: State, ctx: Ctx) -> State:
    sw, sb = ctx.variances(block)
    # inf where a kernel overflows float64 (a runaway, e.g. E_K[exp(2h)] = e^{2K}), NaN where
    # such an inf meets σ_w² = 0: both are results the solvers read, not accidents
    with np.errstate(invalid="ignore", over="ignore"):
        return State(
            K=None if s.K is None else sb + sw * s.K,
            K22=None if s.K22 is None else sb + sw * s.K22,
            K12=None if s.K12 is None else sb + sw * s.K12,
            dK=None if s.dK is None else sw * s.dK,
            dK12=None if s.dK12 is None else sw * s.dK12,
            J=None if s.J is None else sw * s.J,
            gap=None if s.gap is None else sw * s.gap - sb)


def _phi(block, s: State, ctx: Ctx) -> State:
    act, need_K = ctx.activation, ctx.need_K
    K = s.K
    gap = phi2 = None
    if s.gap is not None:
        # the gap's two expectations are the rule's E[φ'²] and E[φ²]: computed once
        P, d2, phi2 = _poincare(act, K)
        with np.errstate(invalid="ignore", over="ignore"):  # inf where E overflows float64
            gap = s.gap * d2 + P
    else:
        d2 = E(act, "dphi2", K) if (s.J is not None or s.dK12 is not None) else None
    dK = None
    if s.dK is not None:
        with np.errstate(invalid="ignore", over="ignore"):  # inf where E overflows float64
            dK = dE(act, K, 1) * s.dK
    if need_K and phi2 is None:
        phi2 = E(act, "phi2", K)
    out = State(K=phi2 if need_K else None, q=K, dK=dK,
                J=None if s.J is None else d2 * s.J,
                dK12=None if s.dK12 is None else d2 * s.dK12, gap=gap, rep=Rep.PHI)
    if s.K12 is not None:
        e12 = expect2(act, "phi", "phi", K, s.K12, s.K22).value
        out = out.with_(K12=e12, K22=E(act, "phi2", s.K22), q22=s.K22)
    return out


def layernorm_variance(act: Activation, s: State, second: bool = False):
    """The variance a LayerNorm divides by: ``K`` for a Gaussian(-like) input, ``E_q[φ²] −
    E_q[φ]²`` for ``φ(h)``, ``h ~ N(0, q)`` (``second``: input 2)."""
    K = s.K22 if second else s.K
    if s.rep is not Rep.PHI:
        return K
    return K - E(act, "phi", s.q22 if second else s.q) ** 2


def _layernorm(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    V = layernorm_variance(act, s)
    V22 = c = None
    if s.K12 is not None:
        V22 = layernorm_variance(act, s, second=True)
        if s.rep is not Rep.PHI:      # LN(h) = h/√K at infinite width
            c = np.clip(s.K12 / np.sqrt(s.K * s.K22), -1.0, 1.0)
        else:                         # LN(φ(h)) = (φ(h) − E[φ])/√Var[φ]
            m, m2 = E(act, "phi", s.q), E(act, "phi", s.q22)
            c = (s.K12 - m * m2) / np.sqrt(V * V22)
    one = np.ones(np.shape(s.K))
    return State(
        K=one, K22=None if c is None else one.copy(), K12=c,
        dK=None if s.dK is None else np.zeros(np.shape(s.K)),
        dK12=None if s.dK12 is None else s.dK12 / V,
        J=None if s.J is None else s.J / V, rep=GRAMMAR["layernorm"].makes(s.rep))


def _rmsnorm(block, s: State, ctx: Ctx) -> State:
    # x/√K at infinite width for any input (Gaussian, φ(h), already normalized): the second
    # moment, not the variance, is what it divides by
    c = None
    if s.K12 is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.clip(s.K12 / np.sqrt(s.K * s.K22), -1.0, 1.0)
    one = np.ones(np.shape(s.K))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return State(
            K=one, K22=None if c is None else one.copy(), K12=c,
            dK=None if s.dK is None else np.zeros(np.shape(s.K)),
            dK12=None if s.dK12 is None else s.dK12 / s.K,
            J=None if s.J is None else s.J / s.K, q=s.q, q22=s.q22,
            rep=GRAMMAR["rmsnorm"].makes(s.rep))


def _residual(block: Residual, s: State, ctx: Ctx) -> State:
    b = fold_branch(block, s, ctx, THEORY)
    m = block.mu ** 2

    def add(x, y):
        return None if x is None or y is None else m * x + y

    return State(K=add(s.K, b.K), K22=add(s.K22, b.K22), K12=add(s.K12, b.K12),
                 dK=add(s.dK, b.dK), dK12=add(s.dK12, b.dK12), J=add(s.J, b.J),
                 gap=add(s.gap, b.gap))


#: block kind -> mean-field rule ``(block, state, ctx) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "layernorm": _layernorm,
                              "rmsnorm": _rmsnorm, "residual": _residual}
#: the mean-field theory's registry (:class:`~critheory.theory.fold.Theory`)
THEORY = Theory("mean-field", RULES)


def rule(block) -> Callable:
    """The mean-field rule of ``block`` (one-line refusal for a kind without one)."""
    return THEORY.rule(block)


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def check_composition(blocks) -> Rep:
    """Refuse, before any number is computed, a sequence of blocks the mean-field rules cannot
    read (:func:`critheory.theory.fold.check_composition`)."""
    return _check(blocks, THEORY)
