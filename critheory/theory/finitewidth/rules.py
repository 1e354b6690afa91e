"""Finite-width rules: how each block maps the finite-width fields of the one
:class:`~critheory.theory.state.State` (``K``, ``K1``, ``V``, ``D``, ``P``, ``dK``, ``width``).

One function per block kind ``rule(block, state, ctx) -> state``, registered in :data:`RULES`
(:data:`THEORY`, folded by :func:`critheory.theory.fold.fold`), next to the mean-field rules whose
kernel they extend (:mod:`critheory.theory.meanfield.rules`). A dense block maps with its own
variances where it carries them (``ctx.variances(block)``). Notation: ``g(K) = E_K[φ²]``,
``g'``, ``g''`` its derivatives in K (:func:`critheory.theory.meanfield.rules.dE`, the one
route),
``D = Var(y²)``, ``V = n Cov(y_i², y_j²)``, ``P = n E[y_i y_j]`` (i ≠ j), all at leading order.

=========  ==================  ==========================  ==============================
block      ``K``               ``K1``                      ``V``
=========  ==================  ==========================  ==============================
dense      ``σ_b² + σ_w² K``   ``σ_w² K1``                 ``σ_w⁴ (D/r + V)``
phi        ``g(K)``            ``g' K1 + ½ g'' V``         ``g'² V + P ⟨(φ²)'⟩²``
layernorm  ``1``               ``0``                       ``−D_out/r``
rmsnorm    ``1``               ``0``                       ``−D_out/r``
residual   ``μ²K + K_b``       ``μ²K1 + K1_b``             ``μ⁴V + 2μ² χ_b (D/r + V) + V_b``
=========  ==================  ==========================  ==============================

and ``D`` after each: ``2K'²`` (dense, residual), ``E[φ⁴] − E[φ²]²`` (phi), ``2`` (LayerNorm
of a Gaussian-like vector), ``E[(φ−m)⁴]/Var[φ]² − 1`` (LayerNorm of φ(h)), ``D/K²`` (RMSNorm:
2 on a Gaussian, ``E[φ⁴]/E[φ²]² − 1`` on φ(h)); ``P`` after an RMSNorm of a Gaussian is 0.

Why (derivations in ``docs/finitewidth.md``):

* dense: given its input x (``m = r n`` neurons: ``r`` is the input's ``width``, the ``width``
  of the dense block that made it, 1 for the network's own width), ``y_i = Σ_j W_ij x_j + b_i``
  are i.i.d. ``N(0, Ĝ)`` with ``Ĝ = σ_b² + σ_w² (1/m)Σ_j x_j²``; so ``E[y²] = E[Ĝ]`` and
  ``Cov(y_i², y_j²) = Var(Ĝ) = (σ_w⁴/m)(Var(x_1²) + (m−1) Cov(x_1², x_2²))``, i.e.
  ``V' = n Var(Ĝ) = σ_w⁴ (D/r + V)`` to order 1/n: a hidden layer of width ``M n`` divides its
  own fluctuation ``D`` by M (as the deep linear network of PDLT ch. 3 with layer widths
  ``n_l``, ``E[z⁴]/E[z²]² = 3 Π_l (1 + 2/n_l)``: the factor ``2/n_l = D/(K² n_l)`` per layer). Every field stays in units of the network's width n
  (``E[z⁴] − 3E[z²]² = 3V/n`` for a neuron of any layer). The output's ``width`` is the
  block's.
* phi: to order 1/n a Gaussian-like vector is a Gaussian scale mixture: for i ≠ j,
  ``Cov(f(z_i), h(z_j)) = (1/n)(V ∂_K⟨f⟩ ∂_K⟨h⟩ + P ⟨f'⟩⟨h'⟩)``, and one neuron has
  ``E[f(z)] = ⟨f⟩_K + (K1/n) ∂_K⟨f⟩ + (V/2n) ∂²_K⟨f⟩`` (its fourth cumulant is 3V/n).
* layernorm: ``(1/m)Σ y² = 1`` exactly, so ``Var = D/m + Cov(y_1², y_2²) = 0``: ``V = −D/r``.
  For a Gaussian-like input the output does not depend on the input's scale: it is the sphere
  of radius √m in the plane ``Σ y = 0``, with ``E[y_i y_j] = −1/(m−1)``: ``P = −1/r``.
* rmsnorm: ``(1/m)Σ y² = 1`` exactly as for LayerNorm, so ``K1 = 0`` and ``V = −D/r`` by the
  same argument; at infinite width ``y = x/√K``, so ``D = Var(x²)/K²``. A dense block's output
  is, given the layers before, i.i.d. ``N(0, Ĝ)`` (PDLT ch. 4's Gaussian scale mixture), so its
  RMSNorm is exactly uniform on the sphere of radius √m: ``E[y_i y_j] = 0`` (flip the sign of
  row i of the dense weights and of ``b_i``), ``P = 0``, the sphere without LayerNorm's plane
  ``Σ y = 0`` (whose ``P = −1/r``); ``tests/test_rmsnorm.py`` checks the next activation's
  ``K1 = ½ g'' V`` against the exact Beta law of ``y_1²/m``. On ``φ(h)`` the output keeps the
  mean of φ, so ``n E[y_i y_j]`` is of order n: ``P`` is None (no rule reads it: an activation
  does not follow it). On an input with second moment exactly 1 it is the identity. Inside a
  residual branch it is refused (:data:`NOT_IN_BRANCH`).
* residual ``z' = μs + b(s)``: given everything before the branch's last dense block,
  ``z'_i ~ N(μ s_i, Ĝ_b)``; the cross term ``n Cov(s_1², Ĝ_b)`` is the branch's tangent
  ``χ_b = ∂K_b/∂K`` times ``n Cov(s_1², (1/m)Σ s_j²) = D/r + V`` (each of the dense and phi rules
  multiplies it by its own slope, σ_w² and g').

For the MLP (phi, dense) the rules give the single-input, equal-width form of the recursions of
PDLT ch. 4 (re-derived in ``docs/finitewidth.md``):
``V' = χ_∥² V + σ_w⁴ (E[φ⁴] − E[φ²]²)``, ``K1' = χ_∥ K1 + (σ_w²/2) g'' V``, χ_∥ = σ_w² g'.

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.finitewidth.rules import apply
>>> from critheory.theory.fold import Ctx
>>> from critheory.theory.state import State
>>> net = network("mlp", "relu")
>>> s = apply(net, State.start_finite_width(1.0), Ctx(net.activation, 2.0, 0.0))
>>> float(s.K), float(s.V), float(s.K1)   # V' = σ_w⁴ (3K²/2 − K²/4) = 5
(1.0, 5.0, 0.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.activation import Activation
from critheory.blocks.blocks import Residual
from critheory.errors import InvalidArgumentError
from critheory.expectations import expect
from critheory.theory.fold import (GRAMMAR, Ctx, Theory, check_composition, check_one_token,
                                   fold, fold_branch)
from critheory.theory.meanfield.rules import E, dE
from critheory.theory.state import Rep, State

__all__ = ["RULES", "THEORY", "apply", "rule", "dE", "check_network", "check_branch",
           "NOT_IN_BRANCH"]


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


def _dense(block, s: State, ctx: Ctx) -> State:
    sw, sb = ctx.variances(block)
    with np.errstate(invalid="ignore", over="ignore"):
        K = sb + sw * s.K
        return State(K=K, K1=sw * s.K1, V=sw * sw * (s.D / s.width + s.V), D=2.0 * K * K,
                     P=np.zeros(np.shape(K)), dK=None if s.dK is None else sw * s.dK,
                     width=block.width)


def _phi(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
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
        return State(K=g, K1=g1 * s.K1 + 0.5 * g2 * s.V, V=V, D=e4 - g * g, P=None,
                     dK=None if s.dK is None else g1 * s.dK, rep=Rep.PHI, q=K, width=s.width)


def _layernorm(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    shape = np.shape(s.K)
    one = np.ones(shape)
    if s.rep in (Rep.NORMALIZED, Rep.NORMALIZED_PHI):
        return s                      # LayerNorm is idempotent
    if s.rep is Rep.GAUSSIAN:
        D = 2.0 * one
        P = -one / s.width            # E[y_i y_j] = −1/(m − 1), m = width·n neurons
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
        P = None
    # (1/m) Σ y² = 1 exactly: n Cov(y_i², y_j²) = −D/width
    return State(K=one, K1=np.zeros(np.broadcast(s.K1, s.K).shape), V=-D / s.width + 0 * s.V,
                 D=D, P=P, dK=None if s.dK is None else np.zeros(np.broadcast(s.dK, one).shape),
                 rep=GRAMMAR["layernorm"].makes(s.rep), width=s.width)


def _rmsnorm(block, s: State, ctx: Ctx) -> State:
    rep = GRAMMAR["rmsnorm"].makes(s.rep)
    if s.rep is not Rep.GAUSSIAN and s.rep is not Rep.PHI:
        return s.with_(rep=rep)       # second moment exactly 1 already: the identity
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        D = s.D / (s.K * s.K)         # Var(x²)/K² (2 on a Gaussian)
    P = np.zeros(np.shape(D)) if s.rep is Rep.GAUSSIAN else None
    return State(K=np.ones(np.shape(s.K)), K1=np.zeros(np.broadcast(s.K1, s.K).shape),
                 V=-D / s.width + 0 * s.V, D=D, P=P, q=s.q,
                 dK=None if s.dK is None else np.zeros(np.broadcast(s.dK, s.K).shape),
                 rep=rep, width=s.width)


#: block kinds the residual rule does not follow inside its branch, with the one-line reason.
#: Its cross term ``n Cov(s_1², Ĝ_b)`` takes the branch to read its input through the scale
#: ``(1/m)Σ s²`` alone (the tangent ``χ_b``). A normalization first in the branch reads the
#: direction's shape instead: ``n Cov(s_1², F(y)) = n Cov((1/m)Σ s², F(y))`` for ``y`` the
#: normalized input and ``F = (1/m)Σ φ(y)²``, which vanishes for a Gaussian scale mixture but
#: not for a residual sum (layer 3 on). For an RMSNorm the missing term is measurable (pre-RMS
#: residual ReLU, σ_w² = 2, μ = 0.7, n = 64: kurtosis 0.058 ± 0.003 against the rule's 0.038 at
#: layer 3); for a LayerNorm branch it is below the simulator's resolution
#: (``tests/test_finitewidth.py``, ``tests/test_rmsnorm.py``).
NOT_IN_BRANCH = {"rmsnorm": "the finite-width theory has no rule for a 'rmsnorm' block inside a "
                            "residual branch (its cross term with the skip path is not followed)"}


def check_branch(block) -> None:
    """Refuse a residual block whose branch holds a kind in :data:`NOT_IN_BRANCH`."""
    for b in block.branch:
        if b.kind in NOT_IN_BRANCH:
            raise InvalidArgumentError(NOT_IN_BRANCH[b.kind])


def _residual(block: Residual, s: State, ctx: Ctx) -> State:
    check_branch(block)
    b = fold_branch(block, s.with_(dK=np.ones(np.shape(s.K))), ctx, THEORY)
    if b.width != s.width:
        raise InvalidArgumentError(f"a residual branch must end at its input's width (a dense "
                                   f"block of width {s.width:g}, got {b.width:g})")
    m = block.mu ** 2
    with np.errstate(invalid="ignore", over="ignore"):
        K = m * s.K + b.K
        V = m * m * s.V + 2.0 * m * b.dK * (s.D / s.width + s.V) + b.V
        return State(K=K, K1=m * s.K1 + b.K1, V=V, D=2.0 * K * K, P=np.zeros(np.shape(K)),
                     dK=None if s.dK is None else (m + b.dK) * s.dK, width=s.width)


#: block kind -> finite-width rule ``(block, state, ctx) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "layernorm": _layernorm,
                              "rmsnorm": _rmsnorm, "residual": _residual}
#: the finite-width theory's registry; its residual rule needs a dense block's output
THEORY = Theory("finite-width", RULES, needs={"residual": frozenset({Rep.GAUSSIAN})},
                reasons={"residual": "a residual block's input must be a dense block's output "
                                     "(the finite-width rule)"})


def rule(block) -> Callable:
    """The finite-width rule of ``block`` (one-line refusal for a kind without one)."""
    return THEORY.rule(block)


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)


def check_network(net) -> None:
    """Refuse, before any number is computed, a network these rules cannot read: T > 1 tokens,
    a block without a rule or on an input the grammar refuses, a unit that does not end at the
    network's width (its last dense block's ``width``, the next layer's input width)."""
    check_one_token(net, THEORY.name)
    check_composition(net.unit, THEORY)
    for b in net.unit:
        if getattr(b, "branch", ()):
            check_branch(b)
    out = 1.0
    for b in net.unit:                # a residual block keeps its input's width
        out = getattr(b, "width", out) if b.weighted and not getattr(b, "branch", ()) else out
    if out != 1.0:
        raise InvalidArgumentError(f"the finite-width theory needs the unit of {net.name!r} to "
                                   f"end at the network's width (its last dense block has "
                                   f"width {out:g})")
