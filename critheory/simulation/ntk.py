"""The empirical neural tangent kernel of finite networks, per depth.

The check of :mod:`critheory.theory.ntk` (which this module never imports: it shares only the
activation and the block description with the theory). For one network of width n with fresh
``W ~ N(0, σ_w²/n_in)``, ``b ~ N(0, σ_b²)`` in every dense block and a fixed input with
``|x|²/n0 = q0``, the NTK of preactivation ``i`` of layer ``l`` in PDLT's convention is

    ``Θ̂_ii = Σ_{dense blocks m ≤ l} (λ_b^{(m)} + λ_W^{(m)} |x_m|²/n_in) |∂z_i/∂y_m|²``

with ``x_m`` the block's input and ``y_m`` its output: ``Σ_jk (∂z_i/∂W_jk)² = |∂z_i/∂y_m|² |x_m|²``
since ``∂z_i/∂W_jk = (∂z_i/∂y_m)_j x_k``, so no per-parameter gradient is materialized. The
row ``∂z_i/∂y_m`` is back-propagated (reverse mode, batched over networks and ``k`` neurons)
through the same blocks, by the cotangent steps of the simulator's one interpreter
(:data:`critheory.simulation.interpreter.COTANGENTS`: dense ``g' W``, phi ``g' ⊙ φ'(x)``,
layernorm ``(g' − mean(g') − y mean(g' ⊙ y))/s``, residual ``μ g' + branch(g')``) on the tape
its forward steps record.

Estimators per depth, over S independent networks: ``θ_s = mean_i Θ̂_ii`` over the tracked
neurons of network s; ``ntk_mean = mean_s θ_s`` ± ``std_s θ_s/√S`` (neurons of one network are
correlated; networks are independent); ``ntk_std``: the spread of one neuron's ``Θ̂_ii`` across
networks and neurons; ``kernel_mean`` likewise for ``|z^l|²/n``.

Examples
--------
>>> from critheory.simulation.ntk import measure_ntk
>>> m = measure_ntk("linear", 1.0, 0.0, width=4, depth=3, seeds=2000, lambda_b=0.0,
...                 lambda_w=1.0, seed=0)
>>> [bool(abs(m.ntk_mean[i] - (i + 1)) <= 4 * m.ntk_stderr[i]) for i in range(3)]
[True, True, True]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.blocks.blocks import walk
from critheory.blocks.network import Network
from critheory.blocks.registry import network
from critheory.common.checks import (check_bias_var, check_int, check_nonnegative,
                                     check_per_layer, check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError
from .architectures import resolve_network
from .interpreter import Context, back, check_cotangents, dense, run
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["NTKMeasurement", "measure_ntk", "check_ntk_budget", "MAX_NTK_COST"]

#: Largest measurement accepted (~ flops of the back-propagations: seeds·k·n²·L²/2 per dense
#: block), about half a minute.
MAX_NTK_COST = limits.MAX_NTK_WORK
_BATCH_FLOATS = 2 * 10 ** 7
MAX_TRACKED = 16


@dataclass(frozen=True)
class NTKMeasurement:
    """Measured NTK (and kernel) per depth ``1..L`` over ``seeds`` networks of width ``width``."""

    __repr__ = short_repr

    depths: np.ndarray
    width: int
    seeds: int
    seed: int
    neurons: int
    ntk_mean: np.ndarray
    ntk_stderr: np.ndarray
    ntk_std: np.ndarray
    kernel_mean: np.ndarray
    kernel_stderr: np.ndarray
    #: per-network NTK, shape (seeds, L): the samples behind ``ntk_mean`` (not in ``to_dict``)
    ntk_per_network: np.ndarray | None = None
    #: per-neuron NTK ``Θ̂_ii``, shape (seeds, L, neurons): the samples behind a variance (not
    #: in ``to_dict``)
    ntk_per_neuron: np.ndarray | None = None

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__
                         if k not in ("ntk_per_network", "ntk_per_neuron")})


def _dense_count(unit) -> int:
    """Weight matrices of a unit (an MLP block has two): the cost of its reverse passes."""
    return sum(b.matrices for b in walk(unit))


def check_ntk_budget(width, depth, seeds, arch="mlp") -> tuple[int, int, int]:
    """Refuse, before any work, a measurement above :data:`MAX_NTK_COST` (``arch``: a registry
    name or a Network)."""
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    seeds = check_int("seeds", seeds, 2)
    nd = _dense_count((arch if isinstance(arch, Network) else network(arch, "linear")).unit)
    k = min(width, MAX_TRACKED)
    cost = float(seeds) * k * width * width * (1 + nd * depth * (depth + 1) / 2)
    if cost > MAX_NTK_COST:
        raise InvalidArgumentError(
            f"NTK simulation of {seeds} networks of width {width} and depth {depth} costs "
            f"~{cost:.1e} operations, above the budget {MAX_NTK_COST:.0e} (fewer seeds, a "
            "smaller width or depth)")
    return width, depth, seeds


class _NTKSampler:
    """Fresh dense layers for a batch of B networks from one generator: the whole ``W``
    (``(B, n_out, n_in)``, kept as ``last_weight`` for the reverse pass), then the biases
    (none drawn at σ_b² = 0)."""

    def __init__(self, rng, b: int):
        self.rng, self.b, self.last_weight = rng, b, None

    def matmul(self, x, var: float, n_out: int):
        b, n_in, _ = x.shape
        W = self.rng.standard_normal((b, n_out, n_in)) * math.sqrt(var / n_in)
        self.last_weight = W
        return W @ x

    def bias(self, n: int, var: float):
        if var > 0:
            return (self.rng.standard_normal((self.b, n)) * math.sqrt(var))[:, :, None]
        return 0.0


def measure_ntk(activation, weight_var: float, bias_var: float, *, width: int, depth: int,
                seeds: int, lambda_b=1.0, lambda_w=1.0, arch=None, mu: float | None = None,
                q0: float = 1.0, seed: int = 0) -> NTKMeasurement:
    """The empirical NTK of ``seeds`` random networks at layers ``1..depth``.

    Parameters
    ----------
    activation : str, Activation or Network
        (a Network here stands for ``arch``)
    weight_var, bias_var : float
        The network's σ_w², σ_b² (dense blocks with their own keep theirs).
    width, depth, seeds : int
        Width n (also the input dimension), depth L, number of networks (>= 2).
    lambda_b, lambda_w : float or array of shape (depth,)
        Bias rate and weight rate per fan-in, per layer (PDLT's convention).
    arch, mu : a one-token Network, or a registry name (default ``mlp``) and its residual
        strength (:func:`critheory.blocks.registry.as_network`).
    q0 : float
        ``|x|²/n0`` of the (fixed) input.
    seed : int
        Seed of the one generator every network is drawn from.

    Examples
    --------
    >>> import critheory as ct
    >>> m = ct.measure_ntk("relu", 2.0, 0.0, width=32, depth=3, seeds=4, seed=0)
    >>> m.ntk_mean.shape
    (3,)
    """
    net, _ = resolve_network(activation, arch, mu)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    q0 = check_nonnegative("q0", q0)
    seed = check_int("seed", seed, 0)
    check_cotangents(net.unit, "the NTK simulator")
    if net.tokens != 1:
        raise InvalidArgumentError(f"the NTK measurement runs one-token networks; "
                                   f"{net.describe()} acts on {net.tokens} tokens")
    width, depth, seeds = check_ntk_budget(width, depth, seeds, net)
    lb = check_per_layer("lambda_b", lambda_b, depth)
    lw = check_per_layer("lambda_w", lambda_w, depth)
    act = net.activation
    phi, dphi = act.numpy_func(0), act.numpy_func(1)
    rng = np.random.default_rng(seed)
    n, k = width, min(width, MAX_TRACKED)
    nd = _dense_count(net.unit)
    bsize = max(1, min(seeds, _BATCH_FLOATS // (n * n * (1 + nd * depth))))
    theta = np.empty((seeds, depth, k))
    kern = np.empty((seeds, depth))
    x0 = np.full(n, math.sqrt(q0))
    ctx = Context(net.unit, phi, dphi, sw, sb, width=n)
    done = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while done < seeds:
            b = min(bsize, seeds - done)
            sim = _NTKSampler(rng, b)
            tapes = []
            t1 = []
            z, _ = dense(sim, ctx, np.broadcast_to(x0, (b, n))[:, :, None].copy(), None,
                         tape=t1)
            tapes.append(t1)
            kern[done:done + b, 0] = (z[..., 0] * z[..., 0]).mean(axis=1)
            for l in range(1, depth):
                t = []
                z, _ = run(net.unit, sim, ctx, z, None, t)
                tapes.append(t)
                kern[done:done + b, l] = (z[..., 0] * z[..., 0]).mean(axis=1)
            eye = np.broadcast_to(np.eye(k, n), (b, k, n))
            for l in range(depth):
                g, th = eye, 0.0
                for m in range(l, -1, -1):
                    def rate(xn, m=m):
                        return lb[m] + lw[m] * xn
                    g, tm = back(tapes[m], g, rate)
                    th = th + tm
                theta[done:done + b, l] = th
            done += b
    per_net = theta.mean(axis=2)
    return NTKMeasurement(
        depths=np.arange(1, depth + 1), width=width, seeds=seeds, seed=seed, neurons=k,
        ntk_mean=per_net.mean(axis=0), ntk_stderr=per_net.std(axis=0, ddof=1) / math.sqrt(seeds),
        ntk_std=theta.transpose(1, 0, 2).reshape(depth, -1).std(axis=1, ddof=1),
        kernel_mean=kern.mean(axis=0), kernel_stderr=kern.std(axis=0, ddof=1) / math.sqrt(seeds),
        ntk_per_network=per_net, ntk_per_neuron=theta)
