"""Naive reference: the APJN from explicit per-layer Jacobian matrices.

Rebuilds network ``i`` of :func:`~critheory.simulation.engine.simulate` with the *dense* method
(same seed streams, same order of draws, so the very same weights), forms every layer's
``N × N`` Jacobian explicitly (``W diag(φ')``, the LayerNorm matrix
``(I - 11ᵀ/N - yyᵀ/N)/s``, ``μ I + ...``) and multiplies them: ``O(N³)`` per layer. It is the
independent check of the forward-mode tangents, and the "naive" baseline of the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from critheory.activation.symbolic import Activation
from ._util import check_int, check_layers, check_real, check_variance
from .architectures import normalize_arch
from .engine import make_inputs
from .layernorm import layer_norm, layer_norm_jacobian
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
                            *, width: int, depth: int, arch: str = "mlp", mu: float = 1.0,
                            l0: int = 1, seed: int = 0, index: int = 0, q0: float = 1.0,
                            ln_eps: float = 0.0, params: Mapping[str, float] | None = None,
                            keep_jacobians: bool = False) -> ChainResult:
    """APJN of network ``index`` of ``simulate(..., seed=seed, method="dense")`` by explicit
    Jacobian products.

    Parameters mirror :func:`~critheory.simulation.engine.simulate`.

    Examples
    --------
    >>> from critheory.simulation import simulate
    >>> ref = explicit_jacobian_chain("tanh", 1.5, 0.1, width=6, depth=3, seed=4)
    >>> sim = simulate("tanh", 1.5, 0.1, width=6, depth=3, seed=4, method="dense")
    >>> bool(np.allclose(ref.apjn, sim.apjn[0]))
    True
    """
    act = Activation.get(activation, params)
    phi, dphi = act.numpy_func(0), act.numpy_func(1)
    sw = check_variance("weight_var", weight_var)
    sb = check_variance("bias_var", bias_var)
    arch = normalize_arch(arch)
    n, depth, l0 = check_layers(width, depth, l0)
    index = check_int("index", index, 0)
    mu = check_real("mu", mu)
    _, streams = seed_streams(seed, index + 1)
    rng_in, rng, _ = streams[index]
    x = make_inputs(rng_in, n, check_variance("q0", q0))[:, 0]
    eye = np.eye(n)

    def dense(v):
        w = draw_weight(rng, n, n, sw)
        b = draw_bias(rng, n, sb)
        return w, w @ v + b

    _, h = dense(x)
    jac = None
    apjn, kernel, jacs = [], [], []
    for layer in range(1, depth + 1):
        if layer > 1:
            if arch in ("mlp", "residual"):
                w, h2 = dense(phi(h))
                m = w * dphi(h)[None, :]
            elif arch in ("pre-ln", "pre-ln-residual"):
                y = layer_norm(h[:, None], ln_eps)[0][:, 0]
                w, h2 = dense(phi(y))
                m = (w * dphi(y)[None, :]) @ layer_norm_jacobian(h, ln_eps)
            elif arch == "post-ln":
                a = phi(h)
                z = layer_norm(a[:, None], ln_eps)[0][:, 0]
                w, h2 = dense(z)
                m = w @ layer_norm_jacobian(a, ln_eps) * dphi(h)[None, :]
            else:  # pre-ln-mlp-block
                y = layer_norm(h[:, None], ln_eps)[0][:, 0]
                w1, u = dense(y)
                w2, h2 = dense(phi(u))
                m = (w2 * dphi(u)[None, :]) @ w1 @ layer_norm_jacobian(h, ln_eps)
            if arch in ("residual", "pre-ln-residual", "pre-ln-mlp-block"):
                h2 = h2 + mu * h
                m = m + mu * eye
            h = h2
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
