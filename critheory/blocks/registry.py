"""The one registry of named architectures: compositions of blocks, with their aliases.

Read by the command line's choices, the simulator, validation and the docs; adding an entry here
adds the architecture everywhere. The token architectures (the transformer stacks, whose unit
has an attention block and which act on T tokens) are entries like the others, with their
options (heads, MLP ratio, ...).

Examples
--------
>>> from critheory.blocks.registry import canonical, names, network
>>> names()
('mlp', 'residual', 'pre-ln', 'post-ln', 'pre-ln-residual', 'pre-ln-mlp-block')
>>> names(tokens=True)
('transformer', 'transformer-post-ln')
>>> names(theory="spectra")[-1], REGISTRY["tarnowski-resnet"].theories
('tarnowski-resnet', ('spectra',))
>>> canonical("Pre_LN_Residual"), canonical("res")
('pre-ln-residual', 'residual')
>>> network("residual", "tanh", mu=0.5).describe()
'residual (mu = 0.5)'
>>> network("transformer", "relu", tokens=4, heads=2).describe()
'transformer (pre-LN, T = 4, H = 2, M = 4)'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import warnings

from critheory.blocks.blocks import Dense, LayerNorm, Phi, Residual, check_mu, mlp_block
from critheory.blocks.network import Network
from critheory.blocks.transformer import Attention, MLP, post_ln_unit, pre_ln_unit
from critheory.errors import InvalidArgumentError

__all__ = ["ArchitectureSpec", "REGISTRY", "names", "canonical", "unit", "network",
           "as_network", "residual_names", "registered", "TOKEN_OPTIONS", "DEPRECATED"]


#: The options of a token architecture (the attention block's and the MLP ratio), with defaults.
TOKEN_OPTIONS = {"heads": 1, "mlp_ratio": 4.0, "causal": False, "logit_scale": "sqrt",
                 "cq": 1.0, "ck": 1.0, "cv": 1.0, "cu": 1.0}
#: Default token count of a token architecture.
DEFAULT_TOKENS = 4


@dataclass(frozen=True)
class ArchitectureSpec:
    """A named architecture: its unit (a function of μ and, for a token architecture, of the
    :data:`TOKEN_OPTIONS`), its formula and aliases.

    ``theories`` states which theories cover it: None for every theory of the block model (each
    as far as it has rules for the blocks, and the Jacobian spectra as far as a solver's needs
    are met), or a tuple naming the only ones (the others refuse the network in one line naming
    the rule they lack). Tarnowski's unit ``x + φ(W x + b)`` is ``("spectra",)``: its residual
    branch ends in φ, and the sum of the skip and a non-Gaussian branch output has no rule in
    the mean-field, finite-width, NTK or token-kernel theories (:func:`names` lists it only for
    ``theory="spectra"``)."""

    name: str
    branch: Callable[..., tuple]
    residual: bool
    formula: str
    aliases: tuple = ()
    token: bool = False
    theories: tuple | None = None

    def covered_by(self, theory: str | None) -> bool:
        """Whether ``theory`` covers it (None: whether every theory does)."""
        return self.theories is None or (theory is not None and theory in self.theories)

    def unit(self, mu: float = 1.0, **options) -> tuple:
        """The blocks of one layer."""
        if self.token:
            o = {**TOKEN_OPTIONS, **options}
            att = Attention(heads=o["heads"], causal=o["causal"], logit_scale=o["logit_scale"],
                            cq=o["cq"], ck=o["ck"], cv=o["cv"], cu=o["cu"])
            return self.branch(att, MLP(o["mlp_ratio"]).ratio, check_mu(mu))
        if options:
            raise InvalidArgumentError(f"{self.name} takes no option "
                                       + ", ".join(sorted(options)) + " (token architectures "
                                       "do: " + ", ".join(names(tokens=True)) + ")")
        br = self.branch()
        return (Residual(br, check_mu(mu)),) if self.residual else br


_SPECS = (
    ArchitectureSpec("mlp", lambda: (Phi(), Dense()), False, "h' = W phi(h) + b",
                     ("ffn", "feedforward")),
    ArchitectureSpec("residual", lambda: (Phi(), Dense()), True, "h' = mu h + W phi(h) + b",
                     ("res",)),
    ArchitectureSpec("pre-ln", lambda: (LayerNorm(), Phi(), Dense()), False,
                     "h' = W phi(LN(h)) + b", ("preln",)),
    ArchitectureSpec("post-ln", lambda: (Phi(), LayerNorm(), Dense()), False,
                     "h' = W LN(phi(h)) + b", ("postln",)),
    ArchitectureSpec("pre-ln-residual", lambda: (LayerNorm(), Phi(), Dense()), True,
                     "h' = mu h + W phi(LN(h)) + b", ("preln-residual",)),
    ArchitectureSpec("pre-ln-mlp-block", lambda: (LayerNorm(),) + mlp_block(), True,
                     "h' = mu h + W2 phi(W1 LN(h) + b1) + b2", ("preln-mlp-block",)),
    ArchitectureSpec("transformer", pre_ln_unit, True,
                     "h += MHSA(LN(h)); h += MLP(LN(h))  (T tokens)", ("pre-ln-transformer",),
                     token=True),
    ArchitectureSpec("transformer-post-ln", post_ln_unit, True,
                     "h = LN(h + MHSA(h)); h = LN(h + MLP(h))  (T tokens)",
                     ("post-ln-transformer", "transformer-postln"), token=True),
    ArchitectureSpec("tarnowski-resnet", lambda: (Dense(), Phi()), True,
                     "x' = x + phi(W x + b)  (Tarnowski; the spectra take Var W = "
                     "sigma_w^2/(N L))", theories=("spectra",)),
)

#: name -> spec, in the order of the documentation.
REGISTRY = {s.name: s for s in _SPECS}
_ALIASES = {a: s.name for s in _SPECS for a in s.aliases}
#: Old spellings that meant something else somewhere: old name -> (canonical name, message).
DEPRECATED = {
    "resnet": ("residual", "'resnet' is deprecated as a name of the residual architecture "
                           "h' = mu h + W phi(h) + b: write 'residual' (Tarnowski's unit "
                           "x + phi(W x + b) of the spectra is 'tarnowski-resnet')"),
}


def names(tokens: bool | None = False, theory: str | None = None) -> tuple:
    """The canonical architecture names: those on one token (default), the token
    architectures (``tokens=True``) or all (``tokens=None``); by default those every theory
    covers, with ``theory`` (``"spectra"``) also those that theory alone covers
    (``ArchitectureSpec.theories``).

    Examples
    --------
    >>> import critheory as ct
    >>> "mlp" in ct.network_names(), "transformer" in ct.network_names(tokens=True)
    (True, True)
    """
    return tuple(s.name for s in _SPECS
                 if (tokens is None or s.token == tokens) and s.covered_by(theory))


def residual_names() -> tuple:
    """The names of the one-token architectures every theory covers with a skip connection
    (a μ to choose)."""
    return tuple(s.name for s in _SPECS if s.residual and not s.token and s.covered_by(None))


def canonical(name: Any) -> str:
    """The canonical name (``_`` and ``-`` interchangeable, case-insensitive, aliases); a
    deprecated spelling warns (:class:`FutureWarning`) and resolves."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"arch must be a string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key in DEPRECATED:
        key, msg = DEPRECATED[key]
        warnings.warn(msg, FutureWarning, stacklevel=2)
    key = _ALIASES.get(key, key)
    if key not in REGISTRY:
        raise InvalidArgumentError(f"unknown architecture {name!r}; choose one of "
                                   + ", ".join(REGISTRY))
    return key


def unit(name: str, mu: float = 1.0, **options) -> tuple:
    """The blocks of one layer of a named architecture."""
    return REGISTRY[canonical(name)].unit(mu, **options)


def network(name: str = "mlp", activation: Any = "relu", mu: float = 1.0,
            params=None, *, tokens: int | None = None, **options) -> Network:
    """A named architecture with an activation spec (zoo name, formula, sympy expression or
    :class:`~critheory.activation.Activation`); ``mu`` is ignored without a skip connection.

    A token architecture takes ``tokens`` (T, default 4) and the :data:`TOKEN_OPTIONS`
    (``heads``, ``mlp_ratio``, ``causal``, ``logit_scale``, ``cq``, ``ck``, ``cv``, ``cu``); a
    one-token architecture takes ``tokens`` too (T independent tokens, default 1).

    Examples
    --------
    >>> import critheory as ct
    >>> ct.network("pre-ln", "gelu").describe()
    'pre-ln'
    >>> ct.network("transformer", "gelu", tokens=3, heads=2).tokens
    3
    """
    from critheory.activation import Activation

    if isinstance(name, Network):
        raise InvalidArgumentError(f"network() builds a network from a registry name; "
                                   f"{name.describe()} is already one")
    spec = REGISTRY[canonical(name)]
    unknown = set(options) - set(TOKEN_OPTIONS)
    if unknown:
        raise InvalidArgumentError("unknown network option " + ", ".join(sorted(unknown))
                                   + "; the options are " + ", ".join(TOKEN_OPTIONS))
    act = Activation.get(activation, params)
    T = (DEFAULT_TOKENS if spec.token else 1) if tokens is None else tokens
    return Network(spec.name, act, spec.unit(mu, **options), T)


def as_network(arch: Any = None, activation: Any = None, mu: float | None = None,
               params=None, **options) -> Network:
    """The one boundary where an architecture argument becomes a :class:`Network`.

    ``arch`` is a :class:`Network` (returned as is) or a registry name (None: ``mlp``), built
    with ``activation`` (required then; a Network in the activation's place is taken as
    ``arch``), ``mu`` (default 1; ignored without a skip connection), ``params`` and the token
    ``options`` (:func:`network`). With a Network, an ``activation`` other than its own, a
    ``mu`` other than its skip strengths (or other than 1 without one), ``params`` or options
    are refused (:class:`InvalidArgumentError`), never silently ignored.

    Examples
    --------
    >>> net = as_network("residual", "tanh", 0.5)
    >>> as_network(net) is net, as_network(net, "tanh", 0.5) is net
    (True, True)
    >>> as_network(net, "relu")
    Traceback (most recent call last):
    ...
    critheory.errors.InvalidArgumentError: the network residual (mu = 0.5) has activation tanh; \
got the conflicting activation 'relu'
    """
    if isinstance(activation, Network):      # the network given in the activation's place
        if arch is not None and arch is not activation and arch != activation:
            other = arch.describe() if isinstance(arch, Network) else repr(arch)
            raise InvalidArgumentError(f"two networks given: {activation.describe()} and "
                                       f"{other}")
        arch, activation = activation, None
    if arch is None:
        arch = "mlp"
    if isinstance(arch, Network):
        if activation is not None:
            from critheory.activation import Activation

            act = Activation.get(activation, params)
            if act != arch.activation:
                raise InvalidArgumentError(
                    f"the network {arch.describe()} has activation {arch.activation.name}; "
                    f"got the conflicting activation {activation!r}")
        elif params:
            raise InvalidArgumentError("activation parameters cannot be applied to a built "
                                       "network")
        if mu is not None:
            m = check_mu(mu)
            strengths = set(arch.residual_strengths)
            if not strengths:
                if m != 1.0:
                    raise InvalidArgumentError(
                        f"the network {arch.describe()} has no skip connection; got mu = {m:g}")
            elif strengths != {m}:
                raise InvalidArgumentError(
                    f"the network {arch.describe()} has skip strengths "
                    + ", ".join(f"{s:g}" for s in sorted(strengths))
                    + f"; got the conflicting mu = {m:g}")
        if options:
            raise InvalidArgumentError("network options (" + ", ".join(sorted(options))
                                       + ") cannot be applied to a built network")
        return arch
    if activation is None:
        raise InvalidArgumentError(f"architecture {arch!r} needs an activation")
    return network(arch, activation, 1.0 if mu is None else mu, params, **options)


def registered(net: Network) -> tuple | None:
    """``(name, μ)`` of the one-token registry entry every theory covers whose unit at that μ
    is the network's (blocks compared, the network's own name ignored), or None (a custom
    composition, a token network).

    Examples
    --------
    >>> from critheory.activation import Activation
    >>> from critheory.blocks import Dense, Phi, Residual
    >>> registered(Network("mine", Activation.get("tanh"), (Residual((Phi(), Dense()), 0.5),)))
    ('residual', 0.5)
    >>> registered(Network("lin", Activation.get("tanh"), (Dense(),))) is None
    True
    """
    if net.tokens != 1:
        return None
    strengths = net.residual_strengths
    for spec in _SPECS:
        if spec.token or not spec.covered_by(None) or spec.residual != bool(strengths):
            continue
        mu = float(strengths[0]) if strengths else 1.0
        if spec.unit(mu) == net.unit:
            return spec.name, mu
    return None
