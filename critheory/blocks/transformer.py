"""Transformer blocks: multi-head self-attention, the MLP block with a hidden-width ratio, and
the transformer architectures (pre-LN and post-LN residual stacks on T tokens).

A transformer's representation is a ``T x n`` matrix (T tokens of width n). Every block acts on
each token alone except :class:`Attention`, which mixes tokens. The blocks are pure descriptions
(as in :mod:`critheory.blocks.blocks`), read by the token-kernel theory
(:mod:`critheory.theory.transformer`) and by the simulator
(:mod:`critheory.simulation.transformer`).

=====================  =====================================================================
block                  forward map on ``x`` (``T x n``)
=====================  =====================================================================
``Attention(H, ...)``  ``concat_h(softmax(q_h k_hᵀ · s) v_h) W_U``, ``q_h = x W_Q[:, head h]``
                       (``W_Q, W_K, W_V, W_U`` with variances ``C_Q/n, C_K/n, C_V/n, C_U/n``,
                       H heads of ``C = n/H`` channels, ``s = 1/√C`` or ``1/C``, optional causal
                       mask ``r <= t``)
``MLP(M)``             ``φ(x W₁ + b₁) W₂ + b₂``, hidden width ``M n``, ``W₁ ~ σ_w²/n``,
                       ``W₂ ~ σ_w²/(M n)``, biases ``σ_b²``
=====================  =====================================================================

The token count T is not a block parameter: it is the shape of the input, held by the
:class:`~critheory.blocks.network.Network` (``tokens``, with the activation); the transformer
stacks are entries of the one registry (:mod:`critheory.blocks.registry`). Layer 1 is a dense stem on the input tokens
(``h¹ = x W₀ + b₀``, weights ``σ_w²/n``, one bias vector shared by the tokens); layers
``l >= 2`` apply the unit:

``transformer``          pre-LN: ``h += MHSA(LN(h))``, then ``h += MLP(LN(h))``
``transformer-post-ln``  post-LN: ``h = LN(h + MHSA(h))``, then ``h = LN(h + MLP(h))``

Examples
--------
>>> from critheory.blocks.blocks import walk
>>> from critheory.blocks.transformer import transformer
>>> net = transformer("transformer", "relu", tokens=4, heads=2, mlp_ratio=4)
>>> [b.kind for b in walk(net.blocks)]
['residual', 'layernorm', 'attention', 'residual', 'layernorm', 'mlp']
>>> net.attention.heads, net.tokens, net.describe()
(2, 4, 'transformer (pre-LN, T = 4, H = 2, M = 4)')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from critheory.blocks.blocks import (Block, LayerNorm, Residual, check_block_variance,
                                     check_width_ratio)
from critheory.blocks.network import MAX_TOKENS, Network
from critheory.common.checks import check_int
from critheory.errors import InvalidArgumentError

__all__ = ["Attention", "MLP", "TransformerNetwork", "transformer", "transformer_names",
           "canonical_transformer", "LOGIT_SCALES", "MAX_TOKENS", "pre_ln_unit", "post_ln_unit"]

#: The logit scalings: ``sqrt`` is ``1/√C`` (standard), ``linear`` is ``1/C`` (Tensor Programs).
LOGIT_SCALES = ("sqrt", "linear")
#: Most attention heads of a block (a width must be divisible by them: the simulator refuses)
MAX_HEADS = 1 << 20
_MAX_VARIANCE = 1e6


@dataclass(frozen=True)
class Attention(Block):
    """Multi-head self-attention (no LayerNorm, no skip connection: those are other blocks).

    Parameters
    ----------
    heads : int
        H, the number of heads; a width n is split into H heads of ``C = n/H`` channels (the
        simulator refuses an n that H does not divide).
    causal : bool
        Token t attends to tokens ``r <= t`` only.
    logit_scale : {"sqrt", "linear"}
        Logits ``q·k/√C`` (standard) or ``q·k/C`` (Tensor Programs / μP: logits vanish at
        infinite width).
    cq, ck, cv, cu : float
        Variances ``C_Q, C_K, C_V, C_U`` of the query, key, value and output weights (times 1/n).
    
    Examples
    --------
    >>> import critheory as ct
    >>> att = ct.Attention(heads=2, cv=1.5)
    >>> att.heads, att.cv
    (2, 1.5)
    """

    kind: ClassVar[str] = "attention"
    weighted: ClassVar[bool] = True
    matrices: ClassVar[int] = 4
    mixes_tokens: ClassVar[bool] = True
    heads: int = 1
    causal: bool = False
    logit_scale: str = "sqrt"
    cq: float = 1.0
    ck: float = 1.0
    cv: float = 1.0
    cu: float = 1.0

    def __post_init__(self):
        heads = check_int("heads", self.heads, 1)
        if heads > MAX_HEADS:
            raise InvalidArgumentError(f"heads must be <= {MAX_HEADS}, got {heads}")
        object.__setattr__(self, "heads", heads)
        if not isinstance(self.causal, bool):
            raise InvalidArgumentError(f"causal must be True or False, got {self.causal!r}")
        if self.logit_scale not in LOGIT_SCALES:
            raise InvalidArgumentError(f"logit_scale must be one of {LOGIT_SCALES}, got "
                                       f"{self.logit_scale!r}")
        for name in ("cq", "ck", "cv", "cu"):
            label = name.upper().replace("C", "C_", 1)
            object.__setattr__(self, name, check_block_variance(label, getattr(self, name),
                                                                _MAX_VARIANCE))

    @property
    def logit_variance(self) -> float:
        """``C_Q C_K``: the logits' scale at infinite width (with ``1/√C`` scaling)."""
        return self.cq * self.ck if self.logit_scale == "sqrt" else 0.0


@dataclass(frozen=True)
class MLP(Block):
    """``φ(x W₁ + b₁) W₂ + b₂`` with hidden width ``ratio · n`` (the network's σ_w², σ_b²).

    Examples
    --------
    >>> import critheory as ct
    >>> ct.MLP(ratio=4.0).ratio
    4.0
    """

    kind: ClassVar[str] = "mlp"
    weighted: ClassVar[bool] = True
    matrices: ClassVar[int] = 2
    ratio: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "ratio", check_width_ratio(self.ratio, "mlp ratio"))


def TransformerNetwork(name: str, activation: Any, tokens: int, blocks: tuple) -> Network:
    """A :class:`~critheory.blocks.network.Network` on ``tokens`` tokens whose unit has an
    attention block (the spelling of the token architectures before they joined the one
    network model: ``Network(name, activation, blocks, tokens)`` is the same).

    Examples
    --------
    >>> import critheory as ct
    >>> unit = ct.network("transformer", "relu", tokens=2).unit
    >>> TransformerNetwork("t", ct.Activation.get("relu"), 2, unit).tokens
    2
    """
    net = Network(name, activation, blocks, tokens)
    if net.attention is None:
        raise InvalidArgumentError("a transformer unit needs an attention block")
    return net


def pre_ln_unit(att: Attention, ratio: float, mu: float) -> tuple:
    """Pre-LN layer: ``h += MHSA(LN(h))``, then ``h += MLP(LN(h))``."""
    return (Residual((LayerNorm(), att), mu), Residual((LayerNorm(), MLP(ratio)), mu))


def post_ln_unit(att: Attention, ratio: float, mu: float) -> tuple:
    """Post-LN layer: ``h = LN(h + MHSA(h))``, then ``h = LN(h + MLP(h))``."""
    return (Residual((att,), mu), LayerNorm(), Residual((MLP(ratio),), mu), LayerNorm())


def transformer_names() -> tuple:
    """The registry's token architectures (:func:`critheory.blocks.registry.names` with
    ``tokens=True``).

    Examples
    --------
    >>> import critheory as ct
    >>> "transformer-post-ln" in ct.transformer_names()
    True
    """
    from critheory.blocks.registry import names

    return names(tokens=True)


def canonical_transformer(name: Any) -> str:
    """Canonical transformer name (``_``/``-`` interchangeable, case-insensitive, aliases).

    >>> canonical_transformer("Transformer_Post_LN")
    'transformer-post-ln'
    """
    from critheory.blocks.registry import canonical, names

    key = canonical(name)
    if key not in names(tokens=True):
        raise InvalidArgumentError(f"unknown transformer architecture {name!r}; choose one of "
                                   + ", ".join(names(tokens=True)))
    return key


def transformer(name: str = "transformer", activation: Any = "relu", *, tokens: int = 4,
                heads: int = 1, mlp_ratio: float = 4.0, causal: bool = False,
                logit_scale: str = "sqrt", cq: float = 1.0, ck: float = 1.0, cv: float = 1.0,
                cu: float = 1.0, mu: float = 1.0, params=None) -> Network:
    """A named transformer architecture on ``tokens`` tokens (``mu``: strength of every skip
    connection, 1 in the standard stacks); the same as
    :func:`critheory.blocks.registry.network` with these options.

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "relu", tokens=2, heads=1)
    >>> net.tokens, net == ct.network("transformer", "relu", tokens=2)
    (2, True)
    """
    from critheory.blocks.registry import network

    return network(canonical_transformer(name), activation, mu, params, tokens=tokens,
                   heads=heads, mlp_ratio=mlp_ratio, causal=causal, logit_scale=logit_scale,
                   cq=cq, ck=ck, cv=cv, cu=cu)
