"""A network: an activation and the blocks of its repeated layer, with the capabilities that
solvers ask instead of looking at types or names.

Layer 1 of every network is a plain dense layer on the input (``K^1 = σ_b² + σ_w² q0`` with
``q0 = |x|²/N_0``); layers ``l >= 2`` apply the *unit* (a tuple of blocks) to the
preactivations of the layer before.

Capabilities (:class:`Capabilities`), all read off the blocks:

``residual_strength``  μ of a skip connection around the unit's branch (None without one)
``has_layernorm``      some block normalizes
``normalized_input``   the branch starts with LayerNorm: everything in it sees a unit-variance
                       input, so ``K' = μ²K + A(σ)`` and ``χ_J = μ² + B(σ)/K``
``affine_kernel_map``  ``K' = μ²K + c``: a normalized input, or a LayerNorm right before the
                       last dense block (the output kernel does not depend on K)
``single_dense``       one dense block, last in the branch: at fixed K the maps are linear in
                       (σ_w², σ_b²), so the critical set has an explicit parametrization
``scale_invariant``    homogeneous φ (``a₊x`` for x > 0, ``a₋x`` below) with no LayerNorm and a
                       single dense block: χ's independent of K
``unbounded_growth``   μ >= 1: the kernel grows without bound, no fixed point
``everywhere_critical``  μ = 1 with a normalized input: χ_J → 1 at every (σ_w², σ_b²)

Examples
--------
>>> from critheory.blocks.registry import network
>>> net = network("pre-ln-residual", "relu", mu=1.0)
>>> c = net.capabilities
>>> c.affine_kernel_map, c.everywhere_critical, c.scale_invariant
(True, True, False)
>>> network("mlp", "relu").capabilities.scale_invariant
True
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from critheory.activation import Activation
from critheory.blocks.blocks import Block, Dense, LayerNorm, Phi, Residual, walk
from critheory.errors import InvalidArgumentError

__all__ = ["Network", "Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """What a network's blocks guarantee about its maps (see the module docstring)."""

    residual_strength: float | None
    has_layernorm: bool
    normalized_input: bool
    affine_kernel_map: bool
    single_dense: bool
    scale_invariant: bool
    unbounded_growth: bool
    everywhere_critical: bool

    @property
    def mu2(self) -> float:
        """μ², the skip connection's share of χ_∥ and χ_J (0 without one)."""
        return 0.0 if self.residual_strength is None else self.residual_strength ** 2

    @property
    def has_fixed_point(self) -> bool:
        return not self.unbounded_growth


@dataclass(frozen=True)
class Network:
    """An activation and the unit (tuple of blocks) every layer after the first applies.

    Parameters
    ----------
    name : str
        Registry name (``mlp``, ``residual``, ...) or any label of a custom composition.
    activation : Activation
    unit : tuple of Block
        Either a branch of blocks, or a single :class:`Residual` around one.

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.Network("my-mlp", ct.Activation.get("tanh"), (ct.Dense(), ct.Phi()))
    >>> [type(b).__name__ for b in net.unit]
    ['Dense', 'Phi']
    """

    name: str
    activation: Activation
    unit: tuple

    def __post_init__(self):
        object.__setattr__(self, "unit", tuple(self.unit))
        if not self.unit:
            raise InvalidArgumentError("a network unit needs at least one block")
        for b in self.unit:
            if not isinstance(b, Block):
                raise InvalidArgumentError(f"network units are made of blocks, got {b!r}")
        if any(isinstance(b, Residual) for b in self.unit) and len(self.unit) != 1:
            raise InvalidArgumentError("a residual block must be the whole unit "
                                       "(wrap the other blocks into its branch)")
        if not any(isinstance(b, Dense) for b in walk(self.unit)):
            raise InvalidArgumentError("a network unit needs a dense block")

    @property
    def branch(self) -> tuple:
        """The blocks inside the skip connection (the unit itself without one)."""
        u = self.unit
        return u[0].branch if isinstance(u[0], Residual) else u

    @property
    def mu(self) -> float | None:
        """Residual strength μ (None without a skip connection)."""
        u = self.unit
        return u[0].mu if isinstance(u[0], Residual) else None

    @cached_property
    def capabilities(self) -> Capabilities:
        br = self.branch
        mu = self.mu
        ln = any(isinstance(b, LayerNorm) for b in br)
        normalized = isinstance(br[0], LayerNorm)
        dense = [i for i, b in enumerate(br) if isinstance(b, Dense)]
        single = len(dense) == 1 and dense[0] == len(br) - 1
        out_norm = len(br) >= 2 and isinstance(br[-1], Dense) and isinstance(br[-2], LayerNorm)
        hs = self.activation.homogeneous_slopes
        homogeneous = hs is not None and hs[0] ** 2 + hs[1] ** 2 > 0
        has_phi = any(isinstance(b, Phi) for b in br)
        return Capabilities(
            residual_strength=mu, has_layernorm=ln, normalized_input=normalized,
            affine_kernel_map=normalized or out_norm, single_dense=single,
            scale_invariant=homogeneous and has_phi and not ln and single,
            unbounded_growth=mu is not None and mu >= 1.0,
            everywhere_critical=mu == 1.0 and normalized)

    def describe(self) -> str:
        """The name, with μ for residual networks (``"residual (mu = 0.5)"``)."""
        return self.name if self.mu is None else f"{self.name} (mu = {self.mu:g})"
