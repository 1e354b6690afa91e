"""Naive reference: the APJN from explicit per-layer Jacobian matrices.

Rebuilds network ``i`` of :func:`~critheory.simulation.engine.simulate` with the *dense* method
(same seed streams, same order of draws, so the very same weights), forms every layer's ``N × N``
Jacobian explicitly (``W diag(φ')``, the LayerNorm matrix ``(I - 11ᵀ/N - yyᵀ/N)/s``, the RMSNorm
matrix ``(I - yyᵀ/N)/r``, ``μ I + ...``) and multiplies them: ``O(N³)`` per layer. It is the
independent check of the forward-mode tangents, and the "naive" baseline of the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.common.checks import (check_bias_var, check_int, check_layers, check_nonnegative,
                                     check_weight_var)
from critheory.errors import InvalidArgumentError, InvalidVarianceError
from .architectures import out_width, resolve_network
from .engine import make_inputs
from .layernorm import layer_norm, layer_norm_jacobian, rms_norm, rms_norm_jacobian
from .sampling import draw_bias, draw_weight, seed_streams

__all__ = ["explicit_jacobian_chain", "ChainResult"]


@dataclass(frozen=True, eq=False)
class ChainResult:
    """Output of :func:`explicit_jacobian_chain` for one network.

    Attributes
    ----------
    depths : ndarray, shape (D,)
        ``l0..L``.
    apjn : ndarray, shape (D,)
        ``‖∂h^l/∂h^{l0}‖_F² / N``.
    kernel : ndarray, shape (L,)
        ``(1/N) Σ (h_i^l)²``.
    jacobians : list of ndarray or None
        The end-to-end Jacobians ``∂h^l/∂h^{l0}`` (``keep_jacobians=True``).
    """

    depths: np.ndarray
    apjn: np.ndarray
    kernel: np.ndarray
    jacobians: list | None = None


def explicit_jacobian_chain(activation: str | Activation, weight_var: float, bias_var: float,
                            *, width: int, depth: int, arch=None, mu: float | None = None,
                            l0: int = 1, seed: int = 0, index: int = 0, q0: float = 1.0,
                            ln_eps: float = 0.0, params: Mapping[str, float] | None = None,
                            keep_jacobians: bool = False) -> ChainResult:
    """APJN of network ``index`` of ``simulate(..., seed=seed, method="dense")`` by explicit
    Jacobian products.

    Parameters mirror :func:`~critheory.simulation.engine.simulate` (a one-token Network or a
    registry name; dense blocks with their own σ_w², σ_b² and width keep them).

    Examples
    --------
    >>> from critheory.simulation import simulate
    >>> ref = explicit_jacobian_chain("tanh", 1.5, 0.1, width=6, depth=3, seed=4)
    >>> sim = simulate("tanh", 1.5, 0.1, width=6, depth=3, seed=4, method="dense")
    >>> bool(np.allclose(ref.apjn, sim.apjn[0]))
    True
    """
    net, _ = resolve_network(activation, arch, mu, params)
    act = net.activation
    phi, dphi = act.numpy_func(0), act.numpy_func(1)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    n, depth, l0 = check_layers(width, depth, l0)
    index = check_int("index", index, 0)
    blocks = net.unit
    ln_eps = check_nonnegative("ln_eps", ln_eps, error=InvalidVarianceError)
    _, streams = seed_streams(seed, index + 1)
    rng_in, rng, _ = streams[index]
    x = make_inputs(rng_in, n, check_nonnegative("q0", q0, error=InvalidVarianceError))[:, 0]
    eye = np.eye(n)

    def dense(v, blk=None):
        n_out, w2, b2 = ((n, sw, sb) if blk is None else
                         (out_width(blk, n),) + blk.variances(sw, sb))
        w = draw_weight(rng, n_out, v.shape[0], w2)
        b = draw_bias(rng, n_out, b2)
        return w, w @ v + b

    def run(blocks, v):
        """(output, explicit Jacobian) of a sequence of blocks at the vector v."""
        m = eye
        for blk in blocks:
            if blk.kind == "dense":
                w, v = dense(v, blk)
                m = w @ m
            elif blk.kind == "phi":
                m = dphi(v)[:, None] * m
                v = phi(v)
            elif blk.kind == "layernorm":
                eps = blk.eps + ln_eps
                m = layer_norm_jacobian(v, eps) @ m
                v = layer_norm(v[:, None], eps)[0][:, 0]
            elif blk.kind == "rmsnorm":
                eps = blk.eps + ln_eps
                m = rms_norm_jacobian(v, eps) @ m
                v = rms_norm(v[:, None], eps)[0][:, 0]
            elif blk.kind == "residual":
                v2, m2 = run(blk.branch, v)
                v, m = v2 + blk.mu * v, m2 + blk.mu * m
            else:
                raise InvalidArgumentError(f"the explicit Jacobian chain has no step for a "
                                           f"{blk.kind!r} block")
        return v, m

    _, h = dense(x)
    jac = None
    apjn, kernel, jacs = [], [], []
    for layer in range(1, depth + 1):
        if layer > 1:
            h, m = run(blocks, h)
            if jac is not None:
                jac = m @ jac
        if layer == l0:
            jac = eye.copy()
        kernel.append(float(h @ h) / n)
        if jac is not None:
            apjn.append(float(np.sum(jac * jac)) / n)
            if keep_jacobians:
                jacs.append(jac.copy())
    return ChainResult(depths=np.arange(l0, depth + 1), apjn=np.array(apjn),
                       kernel=np.array(kernel), jacobians=jacs if keep_jacobians else None)
