"""Finite-width rules: how each block maps a :class:`~critheory.theory.finitewidth.state.FWState`.

One function per block kind, registered in :data:`RULES`, next to the mean-field rules whose
kernel they extend (:mod:`critheory.theory.meanfield.rules`). Notation: ``g(K) = E_K[φ²]``,
``g'``, ``g''`` its derivatives in K (:func:`critheory.expectations.derivatives.dexpect`),
``D = Var(y²)``, ``V = n Cov(y_i², y_j²)``, ``P = n E[y_i y_j]`` (i ≠ j), all at leading order.

=========  ==================  ==========================  ==============================
block      ``K``               ``K1``                      ``V``
=========  ==================  ==========================  ==============================
dense      ``σ_b² + σ_w² K``   ``σ_w² K1``                 ``σ_w⁴ (D + V)``
phi        ``g(K)``            ``g' K1 + ½ g'' V``         ``g'² V + P ⟨(φ²)'⟩²``
layernorm  ``1``               ``0``                       ``−D_out``
residual   ``μ²K + K_b``       ``μ²K1 + K1_b``             ``μ⁴V + 2μ² χ_b (D + V) + V_b``
=========  ==================  ==========================  ==============================

and ``D`` after each: ``2K'²`` (dense, residual), ``E[φ⁴] − E[φ²]²`` (phi), ``2`` (LayerNorm
of a Gaussian-like vector), ``E[(φ−m)⁴]/Var[φ]² − 1`` (LayerNorm of φ(h)).

Why (derivations in ``docs/finitewidth.md``):

* dense: given its input x, ``y_i = Σ_j W_ij x_j + b_i`` are i.i.d. ``N(0, Ĝ)`` with
  ``Ĝ = σ_b² + σ_w² (1/n)Σ_j x_j²``; so ``E[y²] = E[Ĝ]`` and
  ``Cov(y_i², y_j²) = Var(Ĝ) = (σ_w⁴/n)(Var(x_1²) + (n−1) Cov(x_1², x_2²))``.
* phi: to order 1/n a Gaussian-like vector is a Gaussian scale mixture: for i ≠ j,
  ``Cov(f(z_i), h(z_j)) = (1/n)(V ∂_K⟨f⟩ ∂_K⟨h⟩ + P ⟨f'⟩⟨h'⟩)``, and one neuron has
  ``E[f(z)] = ⟨f⟩_K + (K1/n) ∂_K⟨f⟩ + (V/2n) ∂²_K⟨f⟩`` (its fourth cumulant is 3V/n).
* layernorm: ``(1/n)Σ y² = 1`` exactly, so ``n Var(ȳ²) = D + V = 0``. For a Gaussian-like input
  the output does not depend on the input's scale: it is the sphere of radius √n in the plane
  ``Σ y = 0``, with ``E[y_i y_j] = −1/(n−1)``: ``P = −1``.
* residual ``z' = μs + b(s)``: given everything before the branch's last dense block,
  ``z'_i ~ N(μ s_i, Ĝ_b)``; the cross term ``n Cov(s_1², Ĝ_b)`` is the branch's tangent
  ``χ_b = ∂K_b/∂K`` times ``n Cov(s_1², (1/n)Σ s_j²) = D + V`` (each of the dense and phi rules
  multiplies it by its own slope, σ_w² and g').

For the MLP (phi, dense) the rules give the single-input, equal-width form of the recursions of
PDLT ch. 4 (re-derived in ``docs/finitewidth.md``):
``V' = χ_∥² V + σ_w⁴ (E[φ⁴] − E[φ²]²)``, ``K1' = χ_∥ K1 + (σ_w²/2) g'' V``, χ_∥ = σ_w² g'.

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.finitewidth.rules import apply
>>> from critheory.theory.finitewidth.state import FWState
>>> s = apply(network("mlp", "relu"), FWState.start(1.0), 2.0, 0.0)
>>> float(s.K), float(s.V), float(s.K1)   # V' = σ_w⁴ (3K²/2 − K²/4) = 5
(1.0, 5.0, 0.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.activation import Activation
from critheory.blocks.blocks import Residual
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.expectations import expect
from critheory.expectations.derivatives import dexpect
from critheory.theory.finitewidth.state import FWState
from critheory.theory.meanfield.rules import E
from critheory.theory.dispatch import rule_for

__all__ = ["RULES", "apply", "apply_blocks", "rule", "dE", "check_composition"]


def dE(act: Activation, K, order: int, g: str = "phi2") -> np.ndarray:
    """``d^order/dK^order E_K[g]`` on an array of K: NaN where K is not finite and > 0 (a
    collapsed or runaway kernel), a constant array evaluated once."""
    K = np.asarray(K, dtype=float)
    out = np.full(K.shape, np.nan)
    ok = np.isfinite(K) & (K > 0)
    if not ok.any():
        return out
    if K.size > 1 and ok.all() and np.all(K == K.flat[0]):
        return np.full(K.shape, float(dexpect(act, g, float(K.flat[0]), order).value))
    try:
        out[ok] = dexpect(act, g, K[ok], order).value
    except CritheoryError:   # an entry beyond float64 (growing φ): entry by entry
        idx = np.flatnonzero(ok.ravel())
        for i in idx:
            try:
                out.flat[i] = float(dexpect(act, g, float(K.flat[i]), order).value)
            except CritheoryError:
                out.flat[i] = np.nan
    return out


def _x_expect(act: Activation, power_of_x: int, power_of_phi: int, K) -> np.ndarray:
    """``E_K[x^a φ^b]`` for an integrand the named ones do not cover (sympy expression)."""
    from critheory.activation.symbolic import X
    from critheory.expectations.integrands import integrand

    e = integrand(act, "phi").expr ** power_of_phi * X ** power_of_x
    K = np.asarray(K, dtype=float)
    out = np.full(K.shape, np.nan)
    ok = np.isfinite(K) & (K > 0)
    if ok.any():
        out[ok] = expect(act, e, K[ok]).value
    return out


def _dense(block, s: FWState, act: Activation, sw, sb) -> FWState:
    with np.errstate(invalid="ignore", over="ignore"):
        K = sb + sw * s.K
        return FWState(K=K, K1=sw * s.K1, V=sw * sw * (s.D + s.V), D=2.0 * K * K,
                       P=np.zeros(np.shape(K)), dK=None if s.dK is None else sw * s.dK)


def _phi(block, s: FWState, act: Activation, sw, sb) -> FWState:
    if s.rep not in ("gaussian", "normalized"):
        raise InvalidArgumentError("an activation block must follow a dense block or a "
                                   "LayerNorm of a Gaussian vector (the finite-width rule "
                                   "needs a Gaussian-like input)")
    K = s.K
    g = E(act, "phi2", K)
    g1 = dE(act, K, 1)
    g2 = dE(act, K, 2)
    e4 = E(act, "phi4", K)
    with np.errstate(invalid="ignore", over="ignore"):
        V = g1 * g1 * s.V
        if s.P is not None and np.any(s.P != 0):
            # ⟨(φ²)'⟩ = ⟨x φ²⟩/K (Gaussian integration by parts)
            m = _x_expect(act, 1, 2, K) / K
            V = V + s.P * m * m
        return FWState(K=g, K1=g1 * s.K1 + 0.5 * g2 * s.V, V=V, D=e4 - g * g, P=None,
                       dK=None if s.dK is None else g1 * s.dK, rep="phi", q=K)


def _layernorm(block, s: FWState, act: Activation, sw, sb) -> FWState:
    shape = np.shape(s.K)
    one = np.ones(shape)
    if s.rep in ("normalized", "normalized-phi"):
        return s                      # LayerNorm is idempotent
    if s.rep == "gaussian":
        D = 2.0 * one
        rep = "normalized"
        P = -one
    else:                             # LN(φ(h)), h ~ N(0, q): (φ − m)/sd
        q = s.q
        m = E(act, "phi", q)
        m2 = s.K
        m3 = _x_expect(act, 0, 3, q)
        m4 = E(act, "phi4", q)
        var = m2 - m * m
        with np.errstate(invalid="ignore", divide="ignore"):
            c4 = m4 - 4 * m * m3 + 6 * m * m * m2 - 3 * m ** 4
            D = c4 / (var * var) - 1.0
        rep = "normalized-phi"
        P = None
    return FWState(K=one, K1=np.zeros(np.broadcast(s.K1, s.K).shape), V=-D + 0 * s.V, D=D,
                   P=P, dK=None if s.dK is None else np.zeros(np.broadcast(s.dK, one).shape),
                   rep=rep)


def _residual(block: Residual, s: FWState, act: Activation, sw, sb) -> FWState:
    if not s.gaussian:
        raise InvalidArgumentError("a residual block's input must be a dense block's output")
    b = apply_blocks(block.branch, act, s.with_(dK=np.ones(np.shape(s.K))), sw, sb)
    if not b.gaussian:
        raise InvalidArgumentError("a residual branch must end with a dense block (the sum of "
                                   "μh and φ(h) has no finite-width rule here)")
    m = block.mu ** 2
    with np.errstate(invalid="ignore", over="ignore"):
        K = m * s.K + b.K
        V = m * m * s.V + 2.0 * m * b.dK * (s.D + s.V) + b.V
        return FWState(K=K, K1=m * s.K1 + b.K1, V=V, D=2.0 * K * K,
                       P=np.zeros(np.shape(K)),
                       dK=None if s.dK is None else (m + b.dK) * s.dK)


#: block kind -> finite-width rule ``(block, state, activation, σ_w², σ_b²) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "layernorm": _layernorm,
                              "residual": _residual}


def rule(block) -> Callable:
    return rule_for(RULES, block, "finite-width")


def apply_blocks(blocks, act: Activation, s: FWState, sw, sb) -> FWState:
    """The state after a sequence of blocks at weight/bias variances ``sw``, ``sb``."""
    for block in blocks:
        s = rule(block)(block, s, act, sw, sb)
    return s


def apply(net, s: FWState, sw, sb) -> FWState:
    """The state after one layer (the network's unit)."""
    return apply_blocks(net.unit, net.activation, s, sw, sb)


def check_composition(blocks, rep: str = "gaussian") -> str:
    """Refuse, before any number is computed, a sequence of blocks these rules cannot read
    (an activation after an activation or after a LayerNorm of φ(h), a residual branch that
    does not end with a dense block). Returns the representation the sequence ends with."""
    for b in blocks:
        if b.kind == "phi":
            if rep not in ("gaussian", "normalized"):
                raise InvalidArgumentError("an activation block must follow a dense block or a "
                                           "LayerNorm of a Gaussian vector")
            rep = "phi"
        elif b.kind == "dense":
            rep = "gaussian"
        elif b.kind == "layernorm":
            rep = {"gaussian": "normalized", "phi": "normalized-phi"}.get(rep, rep)
        elif b.kind == "residual":
            if rep != "gaussian":
                raise InvalidArgumentError("a residual block's input must be a dense block's "
                                           "output")
            if check_composition(b.branch, rep) != "gaussian":
                raise InvalidArgumentError("a residual branch must end with a dense block")
        else:
            rule(b)
    return rep
