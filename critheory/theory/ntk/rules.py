"""NTK rules: how each block maps an :class:`~critheory.theory.ntk.state.NTKState`.

One function per block kind, registered in :data:`RULES` (dispatch by ``block.kind``). Each rule
maps the mean-field part with the mean-field rule of the same kind
(:mod:`critheory.theory.meanfield.rules`) and the NTK with the table below; ``λ_b`` and ``λ_W``
are the learning rates of the layer the block belongs to (the weight rate divided by the fan-in,
PDLT's convention), ``K`` the second moment of the block's *input*.

=========  ==========================================  ===========================================
block      ``Θ`` (one input)                           ``Θ_12`` (two inputs)
=========  ==========================================  ===========================================
dense      ``λ_b + λ_W K + σ_w² Θ``                    ``λ_b + λ_W K_12 + σ_w² Θ_12``
phi        ``E_K[φ'²] Θ``                              ``E[φ'(u₁)φ'(u₂)] Θ_12``
layernorm  ``Θ / V``                                   ``Θ_12 / √(V V_22)``
residual   ``μ² Θ + branch(Θ)``                        ``μ² Θ_12 + branch(Θ_12)``
=========  ==========================================  ===========================================

``V`` is the variance the LayerNorm divides by (``K`` for a Gaussian input, ``E_q[φ²] − E_q[φ]²``
for ``φ(h)``). Why (``docs/ntk.md`` §2): a dense block's output ``z_i = Σ_j W_ij x_j + b_i`` has
gradient ``x_j`` in ``W_ij`` (rate ``λ_W/n``: ``λ_W K``), 1 in ``b_i`` (``λ_b``) and ``W_ij`` times
the gradient of ``x_j`` (``Σ_j W_ij² Θ_x → σ_w² Θ``: the NTK of distinct neurons is of order
``1/√n`` with random sign and drops out); ``φ(h_i)`` has gradient ``φ'(h_i)`` times that of
``h_i``; LayerNorm's Jacobian ``(I − 11ᵀ/n − yyᵀ/n)/s`` changes the NTK only at order ``1/n``
beyond the factor ``1/s²``; in a residual sum the cross term ``Σ_θ ∂z_i ∂b_i(z)`` involves the
branch's ``∂b_i/∂z_i = O(1/√n)`` and vanishes. For the MLP unit (phi, dense) the rules compose
to PDLT's recursion (§8.1, with ``C_W = σ_w²``):
``Θ^{l+1} = λ_b + λ_W E_{K^l}[φ²] + σ_w² E_{K^l}[φ'²] Θ^l`` = ``λ_b + λ_W E[φ²] + χ_⊥ Θ^l``.

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.ntk.rules import apply
>>> from critheory.theory.ntk.state import NTKState
>>> s = NTKState.start(1.0, weight_var=2.0, lambda_b=1.0, lambda_w=1.0)   # K¹ = 2, Θ¹ = 2
>>> s = apply(network("mlp", "relu"), s, 2.0, 0.0, 1.0, 1.0)
>>> float(s.mf.K), float(s.T)     # Θ² = 1 + 1·(2/2) + 2·(1/2)·2
(2.0, 4.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.activation import Activation
from critheory.errors import InvalidArgumentError
from critheory.expectations import expect2
from critheory.theory.dispatch import rule_for
from critheory.theory.meanfield.rules import E
from critheory.theory.meanfield.rules import rule as mf_rule
from critheory.theory.meanfield.state import State
from critheory.theory.ntk.state import NTKState

__all__ = ["RULES", "apply", "apply_blocks", "rule"]


def _mf(block, s: NTKState, act, sw, sb) -> State:
    return mf_rule(block)(block, s.mf, act, sw, sb, need_K=True)


def _dense(block, s: NTKState, act: Activation, sw, sb, lb, lw) -> NTKState:
    m = s.mf
    with np.errstate(invalid="ignore", over="ignore"):
        T = lb + lw * m.K + sw * s.T
        T12 = None if s.T12 is None else lb + lw * m.K12 + sw * s.T12
        T22 = None if s.T22 is None else lb + lw * m.K22 + sw * s.T22
    return NTKState(_mf(block, s, act, sw, sb), T, T12, T22)


def _phi(block, s: NTKState, act: Activation, sw, sb, lb, lw) -> NTKState:
    out = _mf(block, s, act, sw, sb)      # refuses a non-Gaussian input
    m = s.mf
    with np.errstate(invalid="ignore", over="ignore"):
        T = E(act, "dphi2", m.K) * s.T
        T12 = T22 = None
        if s.T12 is not None:
            T12 = expect2(act, "dphi", "dphi", m.K, m.K12, m.K22).value * s.T12
            T22 = E(act, "dphi2", m.K22) * s.T22
    return NTKState(out, T, T12, T22)


def _variance(act: Activation, m: State, second: bool = False):
    K = m.K22 if second else m.K
    if m.gaussian:
        return K
    return K - E(act, "phi", m.q22 if second else m.q) ** 2


def _layernorm(block, s: NTKState, act: Activation, sw, sb, lb, lw) -> NTKState:
    out = _mf(block, s, act, sw, sb)
    V = _variance(act, s.mf)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        T = s.T / V
        T12 = T22 = None
        if s.T12 is not None:
            V22 = _variance(act, s.mf, second=True)
            T12 = s.T12 / np.sqrt(V * V22)
            T22 = s.T22 / V22
    return NTKState(out, T, T12, T22)


def _residual(block, s: NTKState, act: Activation, sw, sb, lb, lw) -> NTKState:
    b = apply_blocks(block.branch, act, s, sw, sb, lb, lw)
    if not b.mf.gaussian:
        raise InvalidArgumentError("a residual branch must end with a dense block (the sum of "
                                   "μh and φ(h) has no NTK rule here)")
    m2 = block.mu ** 2

    def add(x, y):
        if x is None or y is None:
            return None
        with np.errstate(over="ignore"):      # past the float64 range: inf, read as a runaway
            return m2 * x + y

    mf = State(K=add(s.mf.K, b.mf.K), K12=add(s.mf.K12, b.mf.K12), K22=add(s.mf.K22, b.mf.K22))
    with np.errstate(invalid="ignore", over="ignore"):
        return NTKState(mf, add(s.T, b.T), add(s.T12, b.T12), add(s.T22, b.T22))


#: block kind -> NTK rule ``(block, state, activation, σ_w², σ_b², λ_b, λ_W) -> state``
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "layernorm": _layernorm,
                              "residual": _residual}


def rule(block) -> Callable:
    return rule_for(RULES, block, "NTK")


def apply_blocks(blocks, act: Activation, s: NTKState, sw, sb, lb, lw) -> NTKState:
    """The state after a sequence of blocks (learning rates ``lb``, ``lw`` for every dense
    block of them)."""
    for block in blocks:
        s = rule(block)(block, s, act, sw, sb, lb, lw)
    return s


def apply(net, s: NTKState, sw, sb, lb, lw) -> NTKState:
    """The state after one layer (the network's unit)."""
    return apply_blocks(net.unit, net.activation, s, sw, sb, lb, lw)
