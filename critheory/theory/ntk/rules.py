"""NTK rules: how each block maps the Θ fields (``theta``, ``theta12``, ``theta22``) of the one
:class:`~critheory.theory.state.State`.

One function per block kind ``rule(block, state, ctx) -> state``, registered in :data:`RULES`
(:data:`THEORY`, folded by :func:`critheory.theory.fold.fold`). Each rule maps the mean-field
fields with the mean-field rule of the same kind
(:mod:`critheory.theory.meanfield.rules`) and the NTK with the table below; ``λ_b`` and ``λ_W``
are the learning rates of the layer the block belongs to (``ctx.lambda_b``, ``ctx.lambda_w``: the
weight rate divided by the fan-in, PDLT's convention), ``K`` the second moment of the block's
*input*, ``σ_w²`` the dense block's own where it carries one (``ctx.variances(block)``).

=========  ==========================================  ===========================================
block      ``Θ`` (one input)                           ``Θ_12`` (two inputs)
=========  ==========================================  ===========================================
dense      ``λ_b + λ_W K + σ_w² Θ``                    ``λ_b + λ_W K_12 + σ_w² Θ_12``
phi        ``E_K[φ'²] Θ``                              ``E[φ'(u₁)φ'(u₂)] Θ_12``
layernorm  ``Θ / V``                                   ``Θ_12 / √(V V_22)``
rmsnorm    ``Θ / K``                                   ``Θ_12 / √(K K_22)``
residual   ``μ² Θ + branch(Θ)``                        ``μ² Θ_12 + branch(Θ_12)``
=========  ==========================================  ===========================================

``V`` is the variance the LayerNorm divides by (``K`` for a Gaussian input, ``E_q[φ²] − E_q[φ]²``
for ``φ(h)``); an RMSNorm divides by the second moment ``K`` of any input. Why (``docs/ntk.md`` §2):
a dense block's output ``z_i = Σ_j W_ij x_j + b_i`` has gradient ``x_j`` in ``W_ij`` (rate
``λ_W/n``: ``λ_W K``), 1 in ``b_i`` (``λ_b``) and ``W_ij`` times the gradient of ``x_j`` (``Σ_j
W_ij² Θ_x → σ_w² Θ``: the NTK of distinct neurons is of order ``1/√n`` with random sign and drops
out); ``φ(h_i)`` has gradient ``φ'(h_i)`` times that of ``h_i``; LayerNorm's Jacobian ``(I − 11ᵀ/n −
yyᵀ/n)/s`` changes the NTK only at order ``1/n`` beyond the factor ``1/s²``, and RMSNorm's ``(I −
yyᵀ/n)/√K`` likewise beyond ``1/K``; in a residual sum the cross term ``Σ_θ ∂z_i ∂b_i(z)`` involves
the branch's ``∂b_i/∂z_i = O(1/√n)`` and vanishes.
For the MLP unit (phi, dense) the rules compose
to PDLT's recursion (§8.1, with ``C_W = σ_w²``):
``Θ^{l+1} = λ_b + λ_W E_{K^l}[φ²] + σ_w² E_{K^l}[φ'²] Θ^l`` = ``λ_b + λ_W E[φ²] + χ_⊥ Θ^l``.

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.fold import Ctx
>>> from critheory.theory.ntk.rules import apply
>>> from critheory.theory.state import State
>>> s = State.start_ntk(1.0, weight_var=2.0, lambda_b=1.0, lambda_w=1.0)   # K¹ = 2, Θ¹ = 2
>>> net = network("mlp", "relu")
>>> s = apply(net, s, Ctx(net.activation, 2.0, 0.0, lambda_b=1.0, lambda_w=1.0))
>>> float(s.K), float(s.theta)     # Θ² = 1 + 1·(2/2) + 2·(1/2)·2
(2.0, 4.0)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.expectations import expect2
from critheory.theory.fold import Ctx, Theory, fold, fold_branch
from critheory.theory.meanfield.rules import E, layernorm_variance
from critheory.theory.meanfield.rules import rule as mf_rule
from critheory.theory.state import State

__all__ = ["RULES", "THEORY", "apply", "rule"]


def _dense(block, s: State, ctx: Ctx) -> State:
    sw, _ = ctx.variances(block)
    lb, lw = ctx.lambda_b, ctx.lambda_w
    with np.errstate(invalid="ignore", over="ignore"):
        T = lb + lw * s.K + sw * s.theta
        T12 = None if s.theta12 is None else lb + lw * s.K12 + sw * s.theta12
        T22 = None if s.theta22 is None else lb + lw * s.K22 + sw * s.theta22
    return mf_rule(block)(block, s, ctx).with_(theta=T, theta12=T12, theta22=T22)


def _phi(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    out = mf_rule(block)(block, s, ctx)
    with np.errstate(invalid="ignore", over="ignore"):
        T = E(act, "dphi2", s.K) * s.theta
        T12 = T22 = None
        if s.theta12 is not None:
            T12 = expect2(act, "dphi", "dphi", s.K, s.K12, s.K22).value * s.theta12
            T22 = E(act, "dphi2", s.K22) * s.theta22
    return out.with_(theta=T, theta12=T12, theta22=T22)


def _normalized(block, s: State, ctx: Ctx, V, V22) -> State:
    """A normalization dividing by ``V`` (input 1) and ``V22`` (input 2): Θ / V, Θ_12 / √(V V22)."""
    out = mf_rule(block)(block, s, ctx)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        T = s.theta / V
        T12 = T22 = None
        if s.theta12 is not None:
            T12 = s.theta12 / np.sqrt(V * V22)
            T22 = s.theta22 / V22
    return out.with_(theta=T, theta12=T12, theta22=T22)


def _layernorm(block, s: State, ctx: Ctx) -> State:
    act = ctx.activation
    return _normalized(block, s, ctx, layernorm_variance(act, s),
                       None if s.theta12 is None else layernorm_variance(act, s, second=True))


def _rmsnorm(block, s: State, ctx: Ctx) -> State:
    return _normalized(block, s, ctx, s.K, s.K22)


def _residual(block, s: State, ctx: Ctx) -> State:
    b = fold_branch(block, s, ctx, THEORY)
    m2 = block.mu ** 2

    def add(x, y):
        if x is None or y is None:
            return None
        with np.errstate(invalid="ignore", over="ignore"):   # past float64: inf, a runaway
            return m2 * x + y

    return State(K=add(s.K, b.K), K12=add(s.K12, b.K12), K22=add(s.K22, b.K22),
                 theta=add(s.theta, b.theta), theta12=add(s.theta12, b.theta12),
                 theta22=add(s.theta22, b.theta22))


#: block kind -> NTK rule ``(block, state, ctx) -> state`` (learning rates ``ctx.lambda_b``,
#: ``ctx.lambda_w`` for every dense block)
RULES: dict[str, Callable] = {"dense": _dense, "phi": _phi, "layernorm": _layernorm,
                              "rmsnorm": _rmsnorm, "residual": _residual}
#: the NTK theory's registry
THEORY = Theory("NTK", RULES)


def rule(block) -> Callable:
    """The NTK rule of ``block`` (one-line refusal for a kind without one)."""
    return THEORY.rule(block)


def apply(net, s: State, ctx: Ctx) -> State:
    """The state after one layer (the network's unit)."""
    return fold(net.unit, s, ctx, THEORY)
