"""The simulator's architectures: the registry's names, the resolution of an architecture
argument into a :class:`~critheory.blocks.network.Network`, and one layer step.

The block steps themselves (forward, tangent and cotangent per block kind) live in the one
interpreter, :mod:`critheory.simulation.interpreter`; :func:`step` runs a network's unit
through it. ``LayerSpec`` is the interpreter's :class:`~critheory.simulation.interpreter.Context`
(the unit's blocks, φ, φ', the network's σ_w², σ_b², LayerNorm epsilon, width, tokens).
"""
from __future__ import annotations

import numpy as np

from critheory.blocks.registry import as_network, names, unit
from critheory.blocks.registry import canonical as normalize_arch
from critheory.common.checks import check_real
from .interpreter import Context, out_width, run

__all__ = ["ARCHITECTURES", "normalize_arch", "LayerSpec", "step", "unit", "resolve_network",
           "out_width"]

#: The registry's architecture names (:mod:`critheory.blocks.registry`).
ARCHITECTURES = names()

#: The interpreter's context under its former name.
LayerSpec = Context


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


def step(sampler, spec: Context, h: np.ndarray, t: np.ndarray | None):
    """One layer (the unit's blocks): ``(h, T) -> (h', T')`` (``T`` may be None: no tangents).

    Parameters
    ----------
    sampler : DenseSampler, ProjectedSampler or any sampler of the interpreter
        Source of fresh ``W @ X`` products and biases.
    spec : Context
    h : ndarray, shape (B, N, n)
    t : ndarray, shape (B, N, P), or None

    Returns
    -------
    (ndarray, ndarray or None)
    """
    return run(spec.unit, sampler, spec, h, t)
