"""Finite-width transformers at initialization: token kernels and APJN over random networks.

An independent check of :mod:`critheory.theory.transformer` (it shares only the block
description and the activation). The blocks run through the simulator's one interpreter
(:mod:`critheory.simulation.interpreter`, tokens as columns). A network of width n on T tokens is run forward on a ``T x n``
input whose token Gram matrix is exactly ``G⁰ = q0((1 − c0) I + c0 11ᵀ)``; layer 1 is the dense
stem ``h¹ = x W₀ + b₀`` (one bias vector for all tokens), layers ``l >= 2`` apply the unit's
blocks (:mod:`critheory.blocks.transformer`):

=============  ==============================================================================
block          forward (``x``: ``T x n``) and its forward-mode tangent
=============  ==============================================================================
layernorm      per token over the n channels, no affine parameters
attention      H heads of ``C = n/H`` channels; ``W_Q, W_K, W_V, W_U ~ N(0, C_·/n)``; logits
               ``q·k/√C`` (or ``/C``), causal mask optional; tangent ``δA v + A δv`` with
               ``δA = A ⊙ (δz − Σ_r A δz)``
mlp            ``φ(x W₁ + b₁) W₂ + b₂``, hidden width ``M n``, ``W₁ ~ σ_w²/n``,
               ``W₂ ~ σ_w²/(M n)``, biases ``σ_b²``
residual       ``μ x + branch(x)``
=============  ==============================================================================

Measured per layer and network: the token kernel ``G^l = h hᵀ/n`` and the APJN
``J^{l0,l} = ‖∂h^l/∂h^{l0}‖²_F/(T n)``, exactly (tangents along all ``T n`` basis
directions) or with Gaussian Hutchinson probes (``E‖J η‖² = ‖J‖²_F``). Means and standard
errors are over networks.

Examples
--------
>>> from critheory.blocks.transformer import transformer
>>> from critheory.simulation.transformer import simulate_transformer
>>> net = transformer("transformer", "relu", tokens=1, heads=2, mlp_ratio=2)
>>> r = simulate_transformer(net, 2.0, 0.0, width=32, depth=3, seeds=4, seed=0)
>>> r.kernel_tokens.shape, r.apjn.shape
((4, 3, 1, 1), (4, 3))
>>> float(r.apjn[0, 0])                    # J^{1,1} = 1
1.0
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from critheory.common.checks import (check_bias_var, check_int, check_layers, check_real,
                                     check_weight_var)
from critheory.errors import InvalidArgumentError
from .interpreter import Context, check_blocks, dense, run
from critheory.common import limits
from critheory.common.reprs import dataclass_dict, short_repr

__all__ = ["TransformerSimulation", "simulate_transformer", "check_transformer_budget",
           "MAX_WORK", "MAX_BYTES", "EXACT_LIMIT", "DEFAULT_PROBES"]

#: Most multiply-adds of one simulation (seeds x layers x tangents x matrix products).
MAX_WORK = limits.MAX_TRANSFORMER_SIM_WORK
#: Most bytes of one network's weights plus its tangent arrays.
MAX_BYTES = limits.MAX_TRANSFORMER_SIM_BYTES
#: Exact APJN (T n basis tangents) while T n is at most this; Hutchinson probes above.
EXACT_LIMIT = 512
#: Hutchinson probes per network above :data:`EXACT_LIMIT`.
DEFAULT_PROBES = 8


@dataclass(frozen=True)
class TransformerSimulation:
    """Per-network measurements (``kernel_tokens``: S x L x T x T, ``apjn``: S x L, NaN for
    ``l < l0``) with their means and standard errors over the S networks."""

    __repr__ = short_repr
    to_dict = dataclass_dict

    arch: str
    activation: str
    weight_var: float
    bias_var: float
    width: int
    depth: int
    tokens: int
    heads: int | None
    l0: int
    probes: int | None
    seed: int
    kernel_tokens: np.ndarray
    apjn: np.ndarray
    elapsed: float
    settings: dict = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return self.apjn.shape[0]

    @property
    def kernel_tokens_mean(self) -> np.ndarray:
        return self.kernel_tokens.mean(axis=0)

    @property
    def kernel_tokens_stderr(self) -> np.ndarray:
        return _stderr(self.kernel_tokens)

    @property
    def apjn_mean(self) -> np.ndarray:
        return self.apjn.mean(axis=0)

    @property
    def apjn_stderr(self) -> np.ndarray:
        return _stderr(self.apjn)

    @property
    def kernel(self) -> np.ndarray:
        """Mean diagonal ``(1/T) tr G^l`` per network (S x L)."""
        return np.einsum("sltt->sl", self.kernel_tokens) / self.tokens


def _stderr(x: np.ndarray) -> np.ndarray:
    S = x.shape[0]
    if S < 2:
        return np.full(x.shape[1:], np.nan)
    return x.std(axis=0, ddof=1) / math.sqrt(S)


def _input(rng, T: int, n: int, q0: float, corr: float) -> np.ndarray:
    """T tokens of width n whose Gram matrix ``x xᵀ/n`` is exactly ``G⁰``."""
    G0 = q0 * ((1.0 - corr) * np.eye(T) + corr * np.ones((T, T)))
    w, V = np.linalg.eigh(G0)
    L = V * np.sqrt(np.clip(w, 0.0, None))
    Q, _ = np.linalg.qr(rng.standard_normal((n, T)))
    return math.sqrt(n) * L @ Q.T


class _TokenSampler:
    """Fresh dense layers of one network in the stream order of the token simulation: each
    ``W`` drawn as ``(n_in, n_out)`` (``x W`` on row tokens), then applied to the columns."""

    def __init__(self, rng):
        self.rng = rng

    def matmul(self, x, var: float, n_out: int):
        b, n_in, _ = x.shape
        W = self.rng.standard_normal((n_in, n_out)) * math.sqrt(var / n_in)
        return W.T @ x

    def bias(self, n: int, var: float):
        return (self.rng.standard_normal(n) * math.sqrt(var))[None, :, None]


def _tangents(rng, T, n, probes):
    """Tangent directions in the interpreter's layout ``(1, n, P·T)`` (direction p holds
    columns ``p T .. p T + T − 1``): every basis direction of the ``T x n`` input, or Gaussian
    probes."""
    U = (np.eye(T * n).reshape(T * n, T, n) if probes is None
         else rng.standard_normal((probes, T, n)))
    return U.transpose(2, 0, 1).reshape(1, n, -1)


def check_transformer_budget(net, width: int, depth: int, seeds: int, probes) -> None:
    """Refuse at once a simulation over :data:`MAX_WORK` or :data:`MAX_BYTES`."""
    T, n = net.tokens, width
    M = net.mlp_ratio or 0.0
    P = T * n if probes is None else probes
    per = T * n * n * (4 + 2 * M) * (P + 1) + (P + 1) * T * T * n * 4
    work = seeds * depth * per
    if work > MAX_WORK:
        raise InvalidArgumentError(
            f"this transformer simulation needs ~{work:.2g} multiply-adds; at most "
            f"{MAX_WORK:.0e} (fewer seeds, layers, width or probes)")
    need = 8 * (n * n * max(4.0, 2 * M) + (P + 1) * T * n * max(3.0, M + 1)
                + (P + 1) * (net.attention.heads if net.attention else 0) * T * T * 2)
    if need > MAX_BYTES:
        raise InvalidArgumentError(f"this transformer simulation needs ~{need / 2 ** 30:.1f} "
                                   f"GiB at once; at most {MAX_BYTES / 2 ** 30:.0f} GiB")


def resolve_probes(net, width: int, probes) -> int | None:
    """None (exact) where ``T n <= EXACT_LIMIT`` and no probes were asked for."""
    if probes == "exact":
        return None
    if probes is None:
        return None if net.tokens * width <= EXACT_LIMIT else DEFAULT_PROBES
    return check_int("probes", probes, 1)


def simulate_transformer(net, weight_var: float, bias_var: float, *, width: int, depth: int,
                         seeds: int = 8, l0: int = 1, q0: float = 1.0, corr: float = 0.5,
                         probes=None, seed: int = 0) -> TransformerSimulation:
    """Simulate ``seeds`` random networks on T tokens (``net``: a
    :class:`~critheory.blocks.network.Network`, with attention or without: T tokens through a
    one-token unit) of width ``width`` and ``depth`` layers.

    ``probes``: None (exact while ``T n <= 512``, else 8 probes), ``"exact"`` or a count.

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "relu", tokens=2, heads=1, mlp_ratio=1)
    >>> sim = ct.simulate_transformer(net, 2.0, 0.0, width=16, depth=2, seeds=4)
    >>> sim.apjn_mean.shape
    (2,)
    """
    from critheory.blocks.registry import as_network

    net = as_network(net)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    width, depth, l0 = check_layers(width, depth, l0)
    seeds = check_int("seeds", seeds, 1)
    seed = check_int("seed", seed, 0)
    q0 = check_real("q0", q0)
    corr = check_real("corr", corr)
    a = net.attention
    T, H = net.tokens, (None if a is None else a.heads)
    if q0 <= 0:
        raise InvalidArgumentError(f"q0 must be > 0, got {q0}")
    if H is not None and width % H:
        raise InvalidArgumentError(f"heads ({H}) must divide the width ({width})")
    if width < T:
        raise InvalidArgumentError(f"width ({width}) must be >= tokens ({T})")
    if not -1.0 / max(T - 1, 1) - 1e-12 <= corr <= 1.0:
        raise InvalidArgumentError(f"token correlation must lie in [{-1.0 / max(T - 1, 1):.4g},"
                                   f" 1], got {corr}")
    M = net.mlp_ratio
    if M is not None and abs(M * width - round(M * width)) > 1e-9:
        raise InvalidArgumentError(f"mlp ratio x width must be a whole number, got "
                                   f"{M:g} x {width}")
    probes = resolve_probes(net, width, probes)
    check_transformer_budget(net, width, depth, seeds, probes)
    t0 = time.perf_counter()
    K = np.full((seeds, depth, T, T), np.nan)
    J = np.full((seeds, depth), np.nan)
    check_blocks(net.unit, "the transformer simulator")
    ctx = Context(net.unit, net.activation.numpy_func(0), net.activation.numpy_func(1), sw, sb,
                  width=width, tokens=T)
    for s in range(seeds):
        rng = np.random.default_rng([seed, s])
        sim = _TokenSampler(rng)
        x0 = _input(rng, T, width, q0, corr)
        h, _ = dense(sim, ctx, x0.T[None], None)                   # the stem, (1, n, T)
        U = None
        for l in range(1, depth + 1):
            if l == l0:
                U = _tangents(rng, T, width, probes)
            K[s, l - 1] = h[0].T @ h[0] / width
            if l >= l0:
                J[s, l - 1] = (U * U).sum() / (U.shape[-1] // T if probes is not None else 1) / (
                    T * width)
            if l < depth:
                h, U = run(net.unit, sim, ctx, h, U)
    return TransformerSimulation(
        arch=net.name, activation=net.activation.name, weight_var=sw, bias_var=sb, width=width,
        depth=depth, tokens=T, heads=H, l0=l0, probes=probes, seed=seed, kernel_tokens=K,
        apjn=J, elapsed=time.perf_counter() - t0,
        settings={"q0": q0, "corr": corr, "mlp_ratio": M} | ({} if a is None else {
            "causal": a.causal, "logit_scale": a.logit_scale, "cq": a.cq, "ck": a.ck,
            "cv": a.cv, "cu": a.cu}))
