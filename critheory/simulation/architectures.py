"""The simulator's reading of the blocks: each block's forward map and its tangent map.

The network description is the one the theory reads (:mod:`critheory.blocks`): a unit of blocks
repeated every layer. Here each block kind becomes a forward step on arrays, with forward-mode
tangents:

=============  ==============================  ==========================================
block          forward                          tangent ``T``
=============  ==============================  ==========================================
dense          ``W x + b``                     ``W T``
phi            ``φ(x)``                        ``φ'(x) ⊙ T``
layernorm      ``LN(x)``                       ``dLN(x)·T`` (:mod:`.layernorm`)
residual       ``μ x + branch(x)``             ``μ T + branch'(x)·T``
=============  ==============================  ==========================================

``W`` are fresh ``N(0, σ_w²/N)`` matrices and ``b`` fresh ``N(0, σ_b²)`` biases, drawn in the
order of the dense blocks; ``LN`` is LayerNorm without affine parameters; the hidden width of an
MLP block equals ``N``.

State arrays have shape ``(B, N, n)`` (B networks, N neurons, n inputs) and tangents
``(B, N, P)`` (numpy arrays, or torch tensors with a torch backend:
:mod:`critheory.simulation.backend`); tangents belong to the first input. Each weight matrix is applied once to the
concatenation of the input columns and the tangent columns, through a sampler that returns a
fresh ``W @ X`` (:mod:`critheory.simulation.sampling`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from critheory.blocks.blocks import walk
from critheory.blocks.registry import canonical as normalize_arch
from critheory.blocks.registry import as_network, names, unit
from critheory.common.checks import check_real
from critheory.errors import InvalidArgumentError
from .layernorm import layer_norm, layer_norm_jvp

__all__ = ["ARCHITECTURES", "normalize_arch", "LayerSpec", "step", "unit", "resolve_network",
           "out_width"]

#: The registry's architecture names (:mod:`critheory.blocks.registry`).
ARCHITECTURES = names()


def resolve_network(activation, arch=None, mu=None, params=None):
    """``(network, μ to record)`` of a simulator entry point: the architecture resolved once
    (:func:`critheory.blocks.registry.as_network`: a Network, also in the activation's place,
    or a registry name with an activation and μ; a conflicting activation or μ is refused).

    The recorded μ is the one given, else the network's skip strength (1 without one), so that
    a hand-built network equal to a registered one records the same settings."""
    net = as_network(arch, activation, mu, params)
    if mu is not None:
        return net, check_real("mu", mu)
    strengths = net.residual_strengths
    return net, float(strengths[0]) if strengths else 1.0


@dataclass(frozen=True)
class LayerSpec:
    """Everything a layer step needs besides the random weights: the unit's blocks, φ, φ' and
    the hyperparameters (``ln_eps`` is the epsilon of every LayerNorm block)."""

    unit: tuple
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    weight_var: float
    bias_var: float
    ln_eps: float = 0.0
    width: int | None = None

    @property
    def uses_ln(self) -> bool:
        return any(b.kind == "layernorm" for b in walk(self.unit))


def _dense_layer(sampler, spec: LayerSpec, acts: np.ndarray, dacts: np.ndarray | None,
                 block=None):
    """``W [acts, dacts] + [b, 0]``: (new preactivations, new tangents or None).

    ``block`` (a Dense block, optional) gives its own σ_w², σ_b² (else the network's) and its
    output width as a multiple of the network's width ``spec.width`` (else the input's)."""
    n_in = acts.shape[-1]
    if block is None:
        n, sw, sb = acts.shape[-2], spec.weight_var, spec.bias_var
    else:
        sw, sb = block.variances(spec.weight_var, spec.bias_var)
        n = out_width(block, spec.width or acts.shape[-2])
    bk = getattr(sampler, "bk", None)   # backend of the sampler (None: numpy float64)
    if dacts is None:
        x = acts
    elif bk is None:
        x = np.concatenate([acts, dacts], axis=-1)
    else:
        x = bk.concat([acts, dacts], axis=-1)
    y = sampler.matmul(x, sw, n)
    h = y[..., :n_in] + sampler.bias(n, sb)
    t = None if dacts is None else y[..., n_in:]
    return h, t


def out_width(block, width: int) -> int:
    """The output width of a dense block on a network of width ``width`` (its ``width``
    multiple, which must give a whole number of neurons)."""
    r = getattr(block, "width", 1.0)
    if r == 1.0:
        return width
    n = round(r * width)
    if abs(r * width - n) > 1e-9 * r * width or n < 1:
        raise InvalidArgumentError(f"a dense block of width {r:g} x N needs a whole number of "
                                   f"neurons; N = {width} gives {r * width:g}")
    return int(n)


def _phi_and_tangent(spec: LayerSpec, z: np.ndarray, dz: np.ndarray | None):
    a = spec.phi(z)
    if dz is None:
        return a, None
    return a, spec.dphi(z[..., :1]) * dz


def _layernorm(spec: LayerSpec, x: np.ndarray, dx: np.ndarray | None):
    y, s = layer_norm(x, spec.ln_eps)
    return y, None if dx is None else layer_norm_jvp(y[..., :1], s[..., :1], dx)


def _blocks(sampler, spec: LayerSpec, blocks, x: np.ndarray, t: np.ndarray | None):
    for b in blocks:
        if b.kind == "dense":
            x, t = _dense_layer(sampler, spec, x, t, b)
        elif b.kind == "phi":
            x, t = _phi_and_tangent(spec, x, t)
        elif b.kind == "layernorm":
            x, t = _layernorm(spec, x, t)
        elif b.kind == "residual":
            x2, t2 = _blocks(sampler, spec, b.branch, x, t)
            x2 += b.mu * x
            if t2 is not None:
                t2 += b.mu * t
            x, t = x2, t2
        else:
            raise InvalidArgumentError(f"the simulator has no step for a {b.kind!r} block")
    return x, t


def step(sampler, spec: LayerSpec, h: np.ndarray, t: np.ndarray | None):
    """One layer (the unit's blocks): ``(h, T) -> (h', T')`` (``T`` may be None: no tangents).

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
    return _blocks(sampler, spec, spec.unit, h, t)
