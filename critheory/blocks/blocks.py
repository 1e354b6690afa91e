"""The blocks a network is built from: pure descriptions, read by the theory and the simulator.

A block maps the representation of one layer (a vector of width N per input, or T such
vectors for T tokens) to the next. By default a :class:`Dense` block draws its weights with the
network's weight variance and its biases with the network's bias variance, which the theory and
the simulator receive at evaluation time (so that a grid of hyperparameters is one vectorized
call); a block may instead carry its own ``weight_var``/``bias_var`` (a model read from PyTorch,
whose layers differ), and its own output width as a multiple of N (the hidden layer of an MLP
block). The residual strength μ is part of the description.

==================  ==========================================================================
block               forward map on a vector ``x`` of width N
==================  ==========================================================================
``Dense()``         ``W x + b``, ``W_ij ~ N(0, σ_w²/N_in)``, ``b_i ~ N(0, σ_b²)``; options
                    ``weight_var``, ``bias_var`` (this block's σ_w², σ_b²) and ``width``
                    (output width / N, default 1)
``Phi()``           ``φ(x)`` elementwise, with the network's activation φ
``LayerNorm()``     ``(x - mean(x))/std(x)`` over the N neurons, no affine parameters
``RMSNorm()``       ``x/sqrt(mean(x²))`` over the N neurons (no mean subtraction, no affine
                    parameters)
``Residual(b, μ)``  ``μ x + b(x)`` for a branch ``b`` (a tuple of blocks)
==================  ==========================================================================

How the theory reads each block (the mean-field rule of a state) lives in
:mod:`critheory.theory.meanfield.rules`; how the simulator runs it, in
:mod:`critheory.simulation.interpreter`. Neither is imported here: this module is the one
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

from critheory.common.checks import check_nonnegative
from critheory.errors import InvalidArgumentError

__all__ = ["Block", "Dense", "Phi", "LayerNorm", "RMSNorm", "Residual", "mlp_block", "walk",
           "check_mu", "check_variance_option", "check_block_variance", "check_width_ratio",
           "MAX_BLOCK_VARIANCE", "MAX_WIDTH_RATIO"]


@dataclass(frozen=True)
class Block:
    """Base of every block; ``kind`` names the rule the theories and the simulator apply.

    Class-level facts that the network, the solvers and the budgets read instead of looking at
    types: ``weighted`` (the block draws weights: a network needs at least one), ``matrices``
    (how many weight matrices it draws: the cost of a reverse pass), ``normalizes`` (the block
    divides each representation by its own scale: LayerNorm, RMSNorm; its output's second
    moment is 1 at infinite width whatever the input's) and ``mixes_tokens`` (it couples the T
    tokens of a representation: attention).
    """

    kind: ClassVar[str] = ""
    weighted: ClassVar[bool] = False
    matrices: ClassVar[int] = 0
    normalizes: ClassVar[bool] = False
    mixes_tokens: ClassVar[bool] = False


#: The largest variance a block may carry (σ² enters every map multiplied by a kernel).
MAX_BLOCK_VARIANCE = 1e300
#: The largest output-width multiple of a block.
MAX_WIDTH_RATIO = 64.0


def check_block_variance(name: str, value, hi: float = MAX_BLOCK_VARIANCE) -> float:
    """A variance a block carries, as a finite float in [0, hi] (:class:`InvalidArgumentError`
    otherwise, a bool included)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or not 0 <= v <= hi:
        raise InvalidArgumentError(f"{name} must be a finite number in [0, {hi:g}], "
                                   f"got {value!r}")
    return v


def check_variance_option(name: str, value) -> float | None:
    """A block's own variance: None (the network's) or a finite float in [0, 1e300]."""
    return None if value is None else check_block_variance(name, value)


def check_width_ratio(value, name: str = "width") -> float:
    """An output width as a multiple of N: a finite float in (0, 64]."""
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(r) and 0 < r <= MAX_WIDTH_RATIO):
        raise InvalidArgumentError(f"{name} must be in (0, {MAX_WIDTH_RATIO:g}], got {value!r}")
    return r


@dataclass(frozen=True)
class Dense(Block):
    """``x -> W x + b``: weights ``N(0, σ_w²/N_in)``, biases ``N(0, σ_b²)``.

    Parameters
    ----------
    weight_var, bias_var : float or None
        This block's σ_w² and σ_b²; None (default) takes the network's, given at evaluation.
    width : float
        Output width as a multiple of the network's width N (default 1; the hidden layer of a
        transformer's MLP block is ``width = M``). The infinite-width kernel does not depend on
        it; the 1/N corrections and the simulator do.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.Dense().variances(1.0, 0.5), ct.Dense(weight_var=2.0).variances(1.0, 0.5)
    ((1.0, 0.5), (2.0, 0.5))
    """

    kind: ClassVar[str] = "dense"
    weighted: ClassVar[bool] = True
    matrices: ClassVar[int] = 1
    weight_var: float | None = None
    bias_var: float | None = None
    width: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "weight_var", check_variance_option("weight_var",
                                                                     self.weight_var))
        object.__setattr__(self, "bias_var", check_variance_option("bias_var", self.bias_var))
        object.__setattr__(self, "width", check_width_ratio(self.width))

    @property
    def own_variances(self) -> bool:
        """Whether the block carries its own σ_w² or σ_b²."""
        return self.weight_var is not None or self.bias_var is not None

    def variances(self, weight_var, bias_var):
        """``(σ_w², σ_b²)`` of this block given the network's (its own where it has them)."""
        return (weight_var if self.weight_var is None else self.weight_var,
                bias_var if self.bias_var is None else self.bias_var)


@dataclass(frozen=True)
class Phi(Block):
    """``x -> φ(x)`` elementwise, with the network's activation.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.network("mlp", "relu").unit
    (Phi(), Dense(weight_var=None, bias_var=None, width=1.0))
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
    >>> net.capabilities.has_layernorm
    True
    """

    kind: ClassVar[str] = "layernorm"
    normalizes: ClassVar[bool] = True
    eps: float = 0.0


@dataclass(frozen=True)
class RMSNorm(Block):
    """``x -> x / sqrt(mean(x²) + eps)`` over the neurons: no mean subtraction, no affine
    parameters.

    At infinite width it divides a representation by its second moment ``K``: the output has
    ``K' = 1``, two inputs have ``K12' = K12/√(K11 K22)``, and a tangent's ``‖t‖²/N`` is divided
    by ``K`` (the Jacobian ``(I − yyᵀ/N)/rms`` removes one direction). On a dense block's output
    (a centred Gaussian) it is LayerNorm at infinite width; on ``φ(h)`` it keeps the mean
    ``E[φ]/√E[φ²]`` that LayerNorm would subtract. The theory treats the infinite-width limit,
    where ``eps`` only matters for ``K = 0``; the simulator uses it as given (default 0).

    Parameters
    ----------
    eps : float
        Added to the mean square under the square root (simulator only; default 0).

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.Network("rms-mlp", ct.Activation.get("relu"),
    ...                  (ct.RMSNorm(), ct.Phi(), ct.Dense()))
    >>> d = ct.depth_curves(ct.architecture(net), 2.0, 0.0, depth=3, q0=4.0)
    >>> d.kernel.tolist()          # K¹ = σ_w² q0, then K' = σ_w² E_1[relu²] = 1 at every depth
    [8.0, 1.0, 1.0]
    >>> net.capabilities.normalized_input     # on a Gaussian input it is LayerNorm
    True
    """

    kind: ClassVar[str] = "rmsnorm"
    normalizes: ClassVar[bool] = True
    eps: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "eps", check_nonnegative("eps", self.eps))


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
    >>> net = ct.Network("my-residual", ct.Activation.get("relu"), (block,))
    >>> net.describe()
    'my-residual (mu = 0.5)'
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
