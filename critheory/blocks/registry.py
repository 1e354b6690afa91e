"""The one registry of named architectures: compositions of blocks, with their aliases.

Read by the command line's choices, the simulator, validation and the docs; adding an entry here
adds the architecture everywhere.

Examples
--------
>>> from critheory.blocks.registry import canonical, names, network
>>> names()
('mlp', 'residual', 'pre-ln', 'post-ln', 'pre-ln-residual', 'pre-ln-mlp-block')
>>> canonical("Pre_LN_Residual"), canonical("resnet")
('pre-ln-residual', 'residual')
>>> network("residual", "tanh", mu=0.5).describe()
'residual (mu = 0.5)'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from critheory.blocks.blocks import Dense, LayerNorm, Phi, Residual, check_mu, mlp_block
from critheory.blocks.network import Network
from critheory.errors import InvalidArgumentError

__all__ = ["ArchitectureSpec", "REGISTRY", "names", "canonical", "unit", "network",
           "residual_names"]


@dataclass(frozen=True)
class ArchitectureSpec:
    """A named architecture: its unit (a function of μ), its formula and aliases."""

    name: str
    branch: Callable[[], tuple]
    residual: bool
    formula: str
    aliases: tuple = ()

    def unit(self, mu: float = 1.0) -> tuple:
        br = self.branch()
        return (Residual(br, check_mu(mu)),) if self.residual else br


_SPECS = (
    ArchitectureSpec("mlp", lambda: (Phi(), Dense()), False, "h' = W phi(h) + b",
                     ("ffn", "feedforward")),
    ArchitectureSpec("residual", lambda: (Phi(), Dense()), True, "h' = mu h + W phi(h) + b",
                     ("res", "resnet")),
    ArchitectureSpec("pre-ln", lambda: (LayerNorm(), Phi(), Dense()), False,
                     "h' = W phi(LN(h)) + b", ("preln",)),
    ArchitectureSpec("post-ln", lambda: (Phi(), LayerNorm(), Dense()), False,
                     "h' = W LN(phi(h)) + b", ("postln",)),
    ArchitectureSpec("pre-ln-residual", lambda: (LayerNorm(), Phi(), Dense()), True,
                     "h' = mu h + W phi(LN(h)) + b", ("preln-residual",)),
    ArchitectureSpec("pre-ln-mlp-block", lambda: (LayerNorm(),) + mlp_block(), True,
                     "h' = mu h + W2 phi(W1 LN(h) + b1) + b2", ("preln-mlp-block",)),
)

#: name -> spec, in the order of the documentation.
REGISTRY = {s.name: s for s in _SPECS}
_ALIASES = {a: s.name for s in _SPECS for a in s.aliases}


def names() -> tuple:
    """The canonical architecture names.

    Examples
    --------
    >>> import critheory as ct
    >>> "mlp" in ct.network_names()
    True
    """
    return tuple(REGISTRY)


def residual_names() -> tuple:
    """The names of the architectures with a skip connection (a μ to choose)."""
    return tuple(s.name for s in _SPECS if s.residual)


def canonical(name: Any) -> str:
    """The canonical name (``_`` and ``-`` interchangeable, case-insensitive, aliases)."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"arch must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in REGISTRY:
        from critheory.blocks.transformer import canonical_transformer

        try:
            tkey = canonical_transformer(name)
        except InvalidArgumentError:
            tkey = None
        if tkey is not None:   # the token architectures have their own description
            raise InvalidArgumentError(
                f"{name!r} acts on T tokens: build it with "
                f"critheory.blocks.transformer.transformer({tkey!r}, ...); the commands "
                f"analyze, depth, simulate and validate take --arch {tkey}")
        raise InvalidArgumentError(f"unknown architecture {name!r}; choose one of "
                                   + ", ".join(REGISTRY) + " (token architectures: "
                                   "transformer, transformer-post-ln)")
    return key


def unit(name: str, mu: float = 1.0) -> tuple:
    """The blocks of one layer of a named architecture."""
    return REGISTRY[canonical(name)].unit(mu)


def network(name: str = "mlp", activation: Any = "relu", mu: float = 1.0,
            params=None) -> Network:
    """A named architecture with an activation spec (zoo name, formula, sympy expression or
    :class:`~critheory.activation.Activation`); ``mu`` is ignored without a skip connection.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.network("pre-ln", "gelu").describe()
    'pre-ln'
    """
    from critheory.activation import Activation

    spec = REGISTRY[canonical(name)]
    act = Activation.get(activation, params)
    return Network(spec.name, act, spec.unit(mu))
