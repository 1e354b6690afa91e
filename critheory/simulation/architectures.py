"""The simulated architectures: one layer's forward map and its tangent (forward-mode) map.

Notation: ``h`` the preactivations of the layer, ``W, W₁, W₂`` fresh ``N(0, σ_w²/N)`` matrices,
``b, b₁, b₂`` fresh ``N(0, σ_b²)`` biases, ``LN`` LayerNorm without affine parameters
(:mod:`critheory.simulation.layernorm`), ``μ`` the residual strength.

=====================  ==========================================  ==================================
arch                   forward ``h'``                              tangent ``T'``
=====================  ==========================================  ==================================
``mlp``                ``W φ(h) + b``                              ``W (φ'(h) ⊙ T)``
``residual``           ``μ h + W φ(h) + b``                        ``μ T + W (φ'(h) ⊙ T)``
``pre-ln``             ``W φ(LN h) + b``                           ``W (φ'(y) ⊙ dLN·T)``
``post-ln``            ``W LN(φ(h)) + b``                          ``W dLN(φ(h))·(φ'(h) ⊙ T)``
``pre-ln-residual``    ``μ h + W φ(LN h) + b``                     ``μ T + W (φ'(y) ⊙ dLN·T)``
``pre-ln-mlp-block``   ``μ h + W₂ φ(W₁ LN h + b₁) + b₂``            ``μ T + W₂ (φ'(u) ⊙ W₁ dLN·T)``
=====================  ==========================================  ==================================

(``y = LN h``, ``u = W₁ y + b₁``; the hidden width of the MLP block equals ``N``.)

State arrays have shape ``(B, N, n)`` (B networks, N neurons, n inputs) and tangents
``(B, N, P)``; tangents belong to the first input. Each weight matrix is applied once to the
concatenation of the input columns and the tangent columns, through a sampler that returns a
fresh ``W @ X`` (:mod:`critheory.simulation.sampling`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from critheory.errors import InvalidArgumentError
from .layernorm import layer_norm, layer_norm_jvp

__all__ = ["ARCHITECTURES", "normalize_arch", "LayerSpec", "step"]

ARCHITECTURES = ("mlp", "residual", "pre-ln", "post-ln", "pre-ln-residual", "pre-ln-mlp-block")

_ALIASES = {
    "ffn": "mlp", "feedforward": "mlp", "res": "residual", "resnet": "residual",
    "preln": "pre-ln", "postln": "post-ln", "preln-residual": "pre-ln-residual",
    "preln-mlp-block": "pre-ln-mlp-block", "transformer": "pre-ln-mlp-block",
}


def normalize_arch(arch: str) -> str:
    """Canonical architecture name (``_`` and ``-`` are interchangeable, case-insensitive).

    Examples
    --------
    >>> normalize_arch("Pre_LN_Residual")
    'pre-ln-residual'
    """
    if not isinstance(arch, str):
        raise InvalidArgumentError(f"arch must be a string, got {arch!r}")
    key = arch.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in ARCHITECTURES:
        raise InvalidArgumentError(
            f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return key


@dataclass(frozen=True)
class LayerSpec:
    """Everything a layer step needs besides the random weights."""

    arch: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    weight_var: float
    bias_var: float
    mu: float = 1.0
    ln_eps: float = 0.0

    @property
    def residual(self) -> bool:
        return self.arch in ("residual", "pre-ln-residual", "pre-ln-mlp-block")

    @property
    def uses_ln(self) -> bool:
        return self.arch.startswith(("pre-ln", "post-ln"))


def _dense_layer(sampler, spec: LayerSpec, acts: np.ndarray, dacts: np.ndarray | None):
    """``W [acts, dacts] + [b, 0]``: (new preactivations, new tangents or None)."""
    n_in = acts.shape[-1]
    n = acts.shape[-2]
    x = acts if dacts is None else np.concatenate([acts, dacts], axis=-1)
    y = sampler.matmul(x, spec.weight_var, n)
    h = y[..., :n_in] + sampler.bias(n, spec.bias_var)
    t = None if dacts is None else y[..., n_in:]
    return h, t


def _phi_and_tangent(spec: LayerSpec, z: np.ndarray, dz: np.ndarray | None):
    a = spec.phi(z)
    if dz is None:
        return a, None
    return a, spec.dphi(z[..., :1]) * dz


def step(sampler, spec: LayerSpec, h: np.ndarray, t: np.ndarray | None):
    """One layer: ``(h, T) -> (h', T')`` (``T`` may be None: no tangents yet).

    Parameters
    ----------
    sampler : DenseSampler or ProjectedSampler
        Source of fresh ``W @ X`` products and biases.
    spec : LayerSpec
    h : ndarray, shape (B, N, n)
    t : ndarray, shape (B, N, P), or None

    Returns
    -------
    (ndarray, ndarray or None)
    """
    arch = spec.arch
    if arch in ("mlp", "residual"):
        a, da = _phi_and_tangent(spec, h, t)
        h2, t2 = _dense_layer(sampler, spec, a, da)
    elif arch in ("pre-ln", "pre-ln-residual"):
        y, s = layer_norm(h, spec.ln_eps)
        dy = None if t is None else layer_norm_jvp(y[..., :1], s[..., :1], t)
        a, da = _phi_and_tangent(spec, y, dy)
        h2, t2 = _dense_layer(sampler, spec, a, da)
    elif arch == "post-ln":
        a, da = _phi_and_tangent(spec, h, t)
        z, s = layer_norm(a, spec.ln_eps)
        dz = None if da is None else layer_norm_jvp(z[..., :1], s[..., :1], da)
        h2, t2 = _dense_layer(sampler, spec, z, dz)
    elif arch == "pre-ln-mlp-block":
        y, s = layer_norm(h, spec.ln_eps)
        dy = None if t is None else layer_norm_jvp(y[..., :1], s[..., :1], t)
        u, du = _dense_layer(sampler, spec, y, dy)
        a, da = _phi_and_tangent(spec, u, du)
        h2, t2 = _dense_layer(sampler, spec, a, da)
    else:  # pragma: no cover - normalize_arch guards this
        raise InvalidArgumentError(f"unknown architecture {arch!r}")
    if spec.residual:
        h2 += spec.mu * h
        if t2 is not None:
            t2 += spec.mu * t
    return h2, t2
