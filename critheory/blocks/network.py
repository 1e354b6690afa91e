"""A network: an activation and the blocks of its repeated layer, with the capabilities that
solvers ask instead of looking at types or names.

Layer 1 of every network is a plain dense layer on the input (``K^1 = σ_b² + σ_w² q0`` with
``q0 = |x|²/N_0``); layers ``l >= 2`` apply the *unit* (a tuple of blocks) to the
preactivations of the layer before.

Capabilities (:class:`Capabilities`), all read off the blocks:

``residual_strength``  μ of a skip connection around the unit's branch (None without one)
``has_layernorm``      some block normalizes (LayerNorm, RMSNorm: ``Block.normalizes``)
``normalized_input``   the branch starts with a normalization: everything in it sees a unit-variance
                       input, so ``K' = μ²K + A(σ)`` and ``χ_J = μ² + B(σ)/K``
``affine_kernel_map``  ``K' = μ²K + c``: a normalized input, or a normalization right before the
                       last dense block (the output kernel does not depend on K)
``single_dense``       one dense block, last in the branch: at fixed K the maps are linear in
                       (σ_w², σ_b²), so the critical set has an explicit parametrization
``scale_invariant``    homogeneous φ (``a₊x`` for x > 0, ``a₋x`` below) with no normalization and a
                       single dense block: χ's independent of K
``unbounded_growth``   μ >= 1: the kernel grows without bound, no fixed point
``everywhere_critical``  every block of the unit a skip connection of strength 1 around a
                       branch that starts with a normalization: χ_J → 1 at every (σ_w², σ_b²)
``mixes_tokens``       some block couples the tokens (attention)
``own_variances``      some dense block carries its own σ_w² or σ_b² (a model read from PyTorch)
``plain_mlp``          the unit is ``W φ(h) + b`` with the network's variances (the MLP for which
                       the input-scale point of :mod:`critheory.theory.meanfield.inputs` is
                       derived)

The closed-form capabilities (``normalized_input``, ``affine_kernel_map``, ``single_dense``,
``scale_invariant``) hold only for a *simple* unit: a plain branch or one residual block around
it. A longer sequence with skip connections (a transformer layer) is solved numerically.

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
from critheory.blocks.blocks import Block, Dense, Phi, Residual, walk
from critheory.common.checks import check_int
from critheory.errors import InvalidArgumentError

__all__ = ["Network", "Capabilities", "MAX_TOKENS", "check_tokens"]


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
    mixes_tokens: bool = False
    own_variances: bool = False
    plain_mlp: bool = False

    @property
    def mu2(self) -> float:
        """μ², the skip connection's share of χ_∥ and χ_J (0 without one)."""
        return 0.0 if self.residual_strength is None else self.residual_strength ** 2

    @property
    def has_fixed_point(self) -> bool:
        return not self.unbounded_growth


#: Largest token count T (the token theory's expectations cost ~T³ per quasi-Monte Carlo point).
from critheory.common.limits import MAX_TOKENS  # noqa: E402


def check_tokens(value) -> int:
    """The token count T as an int in [1, MAX_TOKENS] (:class:`InvalidArgumentError` otherwise)."""
    value = check_int("tokens T", value, 1)
    if value > MAX_TOKENS:
        raise InvalidArgumentError(f"tokens T must be <= {MAX_TOKENS}, got {value}")
    return value


@dataclass(frozen=True)
class Network:
    """An activation, the unit (tuple of blocks) every layer after the first applies, and the
    number T of tokens a representation holds.

    Parameters
    ----------
    name : str
        Registry name (``mlp``, ``residual``, ``transformer``, ...) or any label of a custom
        composition.
    activation : Activation
    unit : tuple of Block
        The blocks of one layer: a branch of blocks, a single :class:`Residual` around one, or
        any sequence of blocks and residual blocks (a transformer layer). It needs a block that
        draws weights.
    tokens : int
        T, the number of tokens of a representation (default 1: one input vector). Blocks act on
        each token alone except those that mix tokens (attention).

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.Network("mine", ct.Activation.get("tanh"), (ct.Phi(), ct.Dense(weight_var=1.5)))
    >>> net.tokens, net.mu, [b.kind for b in net.unit]
    (1, None, ['phi', 'dense'])
    """

    name: str
    activation: Activation
    unit: tuple
    tokens: int = 1

    def __post_init__(self):
        if isinstance(self.unit, Block):
            object.__setattr__(self, "unit", (self.unit,))
        try:
            object.__setattr__(self, "unit", tuple(self.unit))
        except TypeError:
            raise InvalidArgumentError(
                f"a network unit must be a sequence of blocks, got {self.unit!r}") from None
        object.__setattr__(self, "tokens", check_tokens(self.tokens))
        if not self.unit:
            raise InvalidArgumentError("a network unit needs at least one block")
        for b in self.unit:
            if not isinstance(b, Block):
                raise InvalidArgumentError(f"network units are made of blocks, got {b!r}")
        if not any(b.weighted for b in walk(self.unit)):
            raise InvalidArgumentError("a network unit needs a block with weights (dense, "
                                       "attention or mlp)")

    @property
    def simple(self) -> bool:
        """True for a plain branch or a single residual block around one (the units the
        closed-form solvers know); False for a longer sequence with skip connections."""
        u = self.unit
        return (len(u) == 1 and isinstance(u[0], Residual)) or not any(
            isinstance(b, Residual) for b in u)

    @property
    def branch(self) -> tuple:
        """The blocks inside the skip connection of a single-residual unit (the unit itself
        otherwise)."""
        u = self.unit
        return u[0].branch if len(u) == 1 and isinstance(u[0], Residual) else u

    @property
    def mu(self) -> float | None:
        """Residual strength μ of a single-residual unit (None otherwise; see
        :attr:`residual_strengths` for every skip connection of the unit)."""
        u = self.unit
        return u[0].mu if len(u) == 1 and isinstance(u[0], Residual) else None

    @property
    def residual_strengths(self) -> tuple:
        """μ of every skip connection of the unit, in order."""
        return tuple(b.mu for b in self.unit if isinstance(b, Residual))

    @property
    def blocks(self) -> tuple:
        """The unit (the name the token architectures used)."""
        return self.unit

    @property
    def attention(self):
        """The first block that mixes tokens (None without one)."""
        return next((b for b in walk(self.unit) if b.mixes_tokens), None)

    @property
    def mlp_ratio(self) -> float | None:
        """The hidden-width ratio of the first MLP block (None without one)."""
        m = [b for b in walk(self.unit) if b.kind == "mlp"]
        return m[0].ratio if m else None

    @property
    def pre_ln(self) -> bool:
        """Whether the unit is skip connections only, each branch starting with a normalization
        (LayerNorm or RMSNorm)."""
        u = self.unit
        return all(isinstance(b, Residual) for b in u) and all(
            b.branch[0].normalizes for b in u)

    @property
    def everywhere_critical(self) -> bool:
        """Skip connections of strength 1 around branches that start with a normalization: χ → 1
        at every (σ_w², σ_b²)."""
        return self.capabilities.everywhere_critical

    @cached_property
    def capabilities(self) -> Capabilities:
        u = self.unit
        br = self.branch
        mu = self.mu
        simple = self.simple
        ln = any(b.normalizes for b in walk(u))
        normalized = simple and br[0].normalizes
        dense = [i for i, b in enumerate(br) if isinstance(b, Dense)]
        single = (simple and len(dense) == 1 and dense[0] == len(br) - 1
                  and not any(b.weighted and not isinstance(b, Dense) for b in br))
        out_norm = (simple and len(br) >= 2 and isinstance(br[-1], Dense)
                    and br[-2].normalizes)
        hs = self.activation.homogeneous_slopes
        homogeneous = hs is not None and hs[0] ** 2 + hs[1] ** 2 > 0
        has_phi = any(isinstance(b, Phi) for b in br)
        own = any(isinstance(b, Dense) and b.own_variances for b in walk(u))
        all_res = all(isinstance(b, Residual) for b in u)
        mus = self.residual_strengths
        return Capabilities(
            residual_strength=mu, has_layernorm=ln, normalized_input=normalized,
            affine_kernel_map=normalized or out_norm, single_dense=single and not own,
            scale_invariant=homogeneous and has_phi and not ln and single and not own,
            unbounded_growth=all_res and all(m >= 1.0 for m in mus),
            everywhere_critical=all_res and self.pre_ln and all(m == 1.0 for m in mus),
            mixes_tokens=any(b.mixes_tokens for b in walk(u)),
            own_variances=own,
            plain_mlp=(len(u) == 2 and isinstance(u[0], Phi) and isinstance(u[1], Dense)
                       and not own))

    def describe(self) -> str:
        """The name, with μ for residual networks (``"residual (mu = 0.5)"``), and the token
        count, heads and MLP ratio for a network with attention."""
        a = self.attention
        if a is None and self.tokens == 1:
            return self.name if self.mu is None else f"{self.name} (mu = {self.mu:g})"
        if a is None:
            mus = sorted({m for m in self.residual_strengths})
            return f"{self.name} (T = {self.tokens}" + "".join(
                f", mu = {m:g}" for m in mus) + ")"
        ln = "pre-LN" if self.pre_ln else "post-LN"
        extra = (", causal" if a.causal else "") + (", 1/C logits" if a.logit_scale == "linear"
                                                     else "")
        m = self.mlp_ratio
        mus = {m for m in self.residual_strengths}
        extra += "".join(f", mu = {u:g}" for u in mus if u != 1.0)
        return (f"{self.name} ({ln}, T = {self.tokens}, H = {a.heads}"
                + (f", M = {m:g}" if m is not None else "") + extra + ")")
