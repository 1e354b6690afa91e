"""The blocks a network is built from: pure descriptions, read by the theory and the simulator.

A block maps the representation of one layer (a vector of width N per input) to the next. It
holds no numbers that depend on (σ_w², σ_b²): every :class:`Dense` block draws its weights with
the network's weight variance and its biases with the network's bias variance, which the theory
and the simulator receive at evaluation time (so that a grid of hyperparameters is one
vectorized call). The residual strength μ is part of the description.

==================  ==========================================================================
block               forward map on a vector ``x`` of width N
==================  ==========================================================================
``Dense()``         ``W x + b``, ``W_ij ~ N(0, σ_w²/N)``, ``b_i ~ N(0, σ_b²)``
``Phi()``           ``φ(x)`` elementwise, with the network's activation φ
``LayerNorm()``     ``(x - mean(x))/std(x)`` over the N neurons, no affine parameters
``Residual(b, μ)``  ``μ x + b(x)`` for a branch ``b`` (a tuple of blocks)
==================  ==========================================================================

How the theory reads each block (the mean-field rule of a state) lives in
:mod:`critheory.theory.meanfield.rules`; how the simulator runs it, in
:mod:`critheory.simulation.architectures`. Neither is imported here: this module is the one
description both read.

Examples
--------
>>> from critheory.blocks.blocks import Dense, Phi, LayerNorm, Residual, mlp_block, walk
>>> unit = (Residual((LayerNorm(),) + mlp_block(), mu=1.0),)
>>> [b.kind for b in walk(unit)]
['residual', 'layernorm', 'dense', 'phi', 'dense']
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Iterator

from critheory.errors import InvalidArgumentError

__all__ = ["Block", "Dense", "Phi", "LayerNorm", "Residual", "mlp_block", "walk", "check_mu"]


@dataclass(frozen=True)
class Block:
    """Base of every block; ``kind`` names the rule the theories and the simulator apply."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class Dense(Block):
    """``x -> W x + b`` with the network's weight and bias variances.

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.Network("dense-only", ct.Activation.get("relu"), (ct.Dense(),))
    >>> net.unit
    (Dense(),)
    """

    kind: ClassVar[str] = "dense"


@dataclass(frozen=True)
class Phi(Block):
    """``x -> φ(x)`` elementwise, with the network's activation.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.network("mlp", "relu").unit
    (Phi(), Dense())
    """

    kind: ClassVar[str] = "phi"


@dataclass(frozen=True)
class LayerNorm(Block):
    """``x -> (x - mean(x)) / sqrt(var(x) + eps)`` over the neurons (no affine parameters).

    The theory treats the infinite-width limit, where ``eps`` only matters for ``var = 0``; the
    simulator uses it as given (default 0: exact normalization).

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.Network("post-ln", ct.Activation.get("tanh"),
    ...                  (ct.Dense(), ct.LayerNorm(), ct.Phi()))
    >>> net.describe()
    'post-ln'
    """

    kind: ClassVar[str] = "layernorm"
    eps: float = 0.0


def check_mu(mu) -> float:
    """The residual strength as a finite float >= 0 (:class:`InvalidArgumentError` otherwise)."""
    try:
        mu = float(mu)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"residual strength mu must be a number, got {mu!r}") from None
    if not math.isfinite(mu) or mu < 0:
        raise InvalidArgumentError(f"residual strength mu must be finite and >= 0, got {mu}")
    if mu > 1e150:   # μ² enters every map: refuse where it overflows float64
        raise InvalidArgumentError(f"residual strength mu must be <= 1e150 (mu^2 overflows "
                                   f"float64), got {mu:g}")
    return mu


@dataclass(frozen=True)
class Residual(Block):
    """``x -> μ x + branch(x)``: a skip connection of strength μ around a branch of blocks.

    Examples
    --------
    >>> import critheory as ct
    >>> block = ct.Residual((ct.Phi(), ct.Dense()), mu=0.5)
    >>> net = ct.Network("resnet", ct.Activation.get("relu"), (block,))
    >>> net.describe()
    'resnet (mu = 0.5)'
    """

    kind: ClassVar[str] = "residual"
    branch: tuple = ()
    mu: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "mu", check_mu(self.mu))
        if isinstance(self.branch, Block):
            object.__setattr__(self, "branch", (self.branch,))
        try:
            object.__setattr__(self, "branch", tuple(self.branch))
        except TypeError:
            raise InvalidArgumentError(
                f"a residual branch must be a sequence of blocks, got {self.branch!r}") from None
        if not self.branch:
            raise InvalidArgumentError("a residual block needs a non-empty branch")
        for b in self.branch:
            if not isinstance(b, Block):
                raise InvalidArgumentError(f"residual branch entries must be blocks, got {b!r}")
            if isinstance(b, Residual):
                raise InvalidArgumentError("nested residual blocks are not supported")


def mlp_block() -> tuple[Block, ...]:
    """The two-layer MLP block ``W₂ φ(W₁ x + b₁) + b₂`` (hidden width = width)."""
    return (Dense(), Phi(), Dense())


def walk(blocks) -> Iterator[Block]:
    """Every block in order, a residual block before the blocks of its branch."""
    for b in blocks:
        yield b
        if isinstance(b, Residual):
            yield from b.branch
