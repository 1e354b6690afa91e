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

The token count T is not a block parameter: it is the shape of the input, held by
:class:`TransformerNetwork` (with the activation). Layer 1 is a dense stem on the input tokens
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

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

from critheory.blocks.blocks import Block, LayerNorm, Residual, walk
from critheory.errors import InvalidArgumentError

__all__ = ["Attention", "MLP", "TransformerNetwork", "transformer", "transformer_names",
           "canonical_transformer", "LOGIT_SCALES", "MAX_TOKENS"]

#: The logit scalings: ``sqrt`` is ``1/√C`` (standard), ``linear`` is ``1/C`` (Tensor Programs).
LOGIT_SCALES = ("sqrt", "linear")
#: Largest token count (the theory's expectations cost ~T³ per quasi-Monte Carlo point).
MAX_TOKENS = 64
_MAX_VARIANCE = 1e6


def _variance(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v < 0 or v > _MAX_VARIANCE:
        raise InvalidArgumentError(f"{name} must be a finite number in [0, {_MAX_VARIANCE:g}], "
                                   f"got {value!r}")
    return v


def _positive_int(name: str, value: Any, hi: int | None = None) -> int:
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral) or (
            isinstance(value, float) and value.is_integer())):
        raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value!r}")
    value = int(value)
    if value < 1:
        raise InvalidArgumentError(f"{name} must be a whole number >= 1, got {value}")
    if hi is not None and value > hi:
        raise InvalidArgumentError(f"{name} must be <= {hi}, got {value}")
    return value


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
    heads: int = 1
    causal: bool = False
    logit_scale: str = "sqrt"
    cq: float = 1.0
    ck: float = 1.0
    cv: float = 1.0
    cu: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "heads", _positive_int("heads", self.heads, 1 << 20))
        if not isinstance(self.causal, bool):
            raise InvalidArgumentError(f"causal must be True or False, got {self.causal!r}")
        if self.logit_scale not in LOGIT_SCALES:
            raise InvalidArgumentError(f"logit_scale must be one of {LOGIT_SCALES}, got "
                                       f"{self.logit_scale!r}")
        for name in ("cq", "ck", "cv", "cu"):
            object.__setattr__(self, name, _variance(name.upper().replace("C", "C_", 1),
                                                     getattr(self, name)))

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
    ratio: float = 1.0

    def __post_init__(self):
        try:
            r = float(self.ratio)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"mlp ratio must be a number, got {self.ratio!r}") \
                from None
        if not (math.isfinite(r) and 0 < r <= 64):
            raise InvalidArgumentError(f"mlp ratio must be in (0, 64], got {self.ratio!r}")
        object.__setattr__(self, "ratio", r)


@dataclass(frozen=True)
class TransformerNetwork:
    """A transformer: activation, token count and the blocks of its repeated layer.

    Attributes
    ----------
    name : str
        ``transformer`` (pre-LN) or ``transformer-post-ln``.
    activation : Activation
    tokens : int
        T, the number of tokens.
    blocks : tuple of Block
        The unit every layer ``l >= 2`` applies (layer 1 is the dense stem).

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "gelu", tokens=3, heads=2)
    >>> isinstance(net, ct.TransformerNetwork), net.tokens
    (True, 3)
    """

    name: str
    activation: Any
    tokens: int
    blocks: tuple

    def __post_init__(self):
        object.__setattr__(self, "tokens", _positive_int("tokens T", self.tokens, MAX_TOKENS))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks or not all(isinstance(b, Block) for b in self.blocks):
            raise InvalidArgumentError("a transformer unit is a non-empty tuple of blocks")
        if not any(b.kind == "attention" for b in walk(self.blocks)):
            raise InvalidArgumentError("a transformer unit needs an attention block")

    @property
    def attention(self) -> Attention:
        """The (first) attention block."""
        return next(b for b in walk(self.blocks) if b.kind == "attention")

    @property
    def mlp_ratio(self) -> float | None:
        m = [b for b in walk(self.blocks) if b.kind == "mlp"]
        return m[0].ratio if m else None

    @property
    def pre_ln(self) -> bool:
        """Whether every residual branch starts with LayerNorm (the pre-LN stack)."""
        res = [b for b in self.blocks if isinstance(b, Residual)]
        return bool(res) and all(isinstance(r.branch[0], LayerNorm) for r in res)

    @property
    def everywhere_critical(self) -> bool:
        """Pre-LN with skip strength 1: χ → 1 at every hyperparameter (see the theory)."""
        res = [b for b in self.blocks if isinstance(b, Residual)]
        return self.pre_ln and all(r.mu == 1.0 for r in res)

    def describe(self) -> str:
        a = self.attention
        ln = "pre-LN" if self.pre_ln else "post-LN"
        extra = (", causal" if a.causal else "") + (", 1/C logits" if a.logit_scale == "linear"
                                                     else "")
        m = self.mlp_ratio
        mus = {b.mu for b in self.blocks if isinstance(b, Residual)}
        extra += "".join(f", mu = {u:g}" for u in mus if u != 1.0)
        return (f"{self.name} ({ln}, T = {self.tokens}, H = {a.heads}"
                + (f", M = {m:g}" if m is not None else "") + extra + ")")


def _pre_ln(att: Attention, ratio: float, mu: float) -> tuple:
    return (Residual((LayerNorm(), att), mu), Residual((LayerNorm(), MLP(ratio)), mu))


def _post_ln(att: Attention, ratio: float, mu: float) -> tuple:
    return (Residual((att,), mu), LayerNorm(), Residual((MLP(ratio),), mu), LayerNorm())


_UNITS = {"transformer": _pre_ln, "transformer-post-ln": _post_ln}
_ALIASES = {"pre-ln-transformer": "transformer", "post-ln-transformer": "transformer-post-ln",
            "transformer-postln": "transformer-post-ln"}


def transformer_names() -> tuple:
    """The transformer architecture names (kept apart from :mod:`critheory.blocks.registry`,
    whose architectures act on one token; the command line offers both).

    Examples
    --------
    >>> import critheory as ct
    >>> "transformer-post-ln" in ct.transformer_names()
    True
    """
    return tuple(_UNITS)


def canonical_transformer(name: Any) -> str:
    """Canonical transformer name (``_``/``-`` interchangeable, case-insensitive, aliases).

    >>> canonical_transformer("Transformer_Post_LN")
    'transformer-post-ln'
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"arch must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _UNITS:
        raise InvalidArgumentError(f"unknown transformer architecture {name!r}; choose one of "
                                   + ", ".join(_UNITS))
    return key


def transformer(name: str = "transformer", activation: Any = "relu", *, tokens: int = 4,
                heads: int = 1, mlp_ratio: float = 4.0, causal: bool = False,
                logit_scale: str = "sqrt", cq: float = 1.0, ck: float = 1.0, cv: float = 1.0,
                cu: float = 1.0, mu: float = 1.0, params=None) -> TransformerNetwork:
    """A named transformer architecture on ``tokens`` tokens (``mu``: strength of every skip
    connection, 1 in the standard stacks).

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "relu", tokens=2, heads=1)
    >>> net.tokens
    2
    """
    from critheory.activation import Activation

    key = canonical_transformer(name)
    att = Attention(heads=heads, causal=causal, logit_scale=logit_scale, cq=cq, ck=ck, cv=cv,
                    cu=cu)
    act = Activation.get(activation, params)
    return TransformerNetwork(key, act, tokens, _UNITS[key](att, MLP(mlp_ratio).ratio, mu))
