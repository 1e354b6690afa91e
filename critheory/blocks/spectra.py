"""What the Jacobian spectra need of a network: the shared vocabulary of the spectra's theory
(:mod:`critheory.theory.spectra`), simulator (:mod:`critheory.simulation.spectra`), validation
and command line, read off the blocks and the network's capabilities, never its name.

Two free-probability laws are solved, each for the unit its :class:`SolverNeeds` describes:

* ``mlp``: one token, no normalization, no skip connection, the branch ``phi -> dense`` with
  the network's variances and square weights: ``h -> W φ(h) + b`` (the registry's ``mlp``);
* ``tarnowski-resnet``: the same, with a skip connection of strength 1 around ``dense -> phi``:
  Tarnowski's ResNet ``x -> x + φ(W x + b)`` (the registry's ``tarnowski-resnet``), whose law
  takes ``Var W = σ_w²/(N L)`` (:attr:`SolverNeeds.depth_scaled`).

A name given to a spectra entry point resolves through the registry
(:func:`spectrum_network`); ``resnet`` is the spectra's deprecated spelling of
``tarnowski-resnet`` (:class:`FutureWarning`; the registry itself spells ``resnet`` as its
``residual``, ``μh + W φ(h) + b``).

Examples
--------
>>> from critheory.blocks.registry import network
>>> solver_for(network("tarnowski-resnet", "tanh")).law
'resnet'
>>> SOLVERS["mlp"].unmet(network("residual", "tanh"))
'a skip connection (the mlp solver needs none)'
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from critheory.blocks.blocks import walk
from critheory.blocks.network import Network
from critheory.errors import InvalidArgumentError

__all__ = ["SolverNeeds", "SOLVERS", "TARNOWSKI", "DEPRECATED", "solver_for",
           "spectrum_network", "spectrum_names", "canonical_spectrum_name"]

#: Tarnowski's residual unit x + φ(W x + b), skip strength 1, Var W = σ_w²/(N L) (a registry name)
TARNOWSKI = "tarnowski-resnet"
#: the spectra's old spellings: old name -> (registry name, message)
DEPRECATED = {
    "resnet": (TARNOWSKI, "'resnet' is deprecated as the name of Tarnowski's unit "
                          "x + phi(W x + b) in the spectra: write 'tarnowski-resnet' (the "
                          "registry's 'residual' is mu h + W phi(h) + b)"),
}


@dataclass(frozen=True)
class SolverNeeds:
    """What a spectrum solver needs of a network, asked of its blocks and capabilities.

    Every solver here needs one token, no LayerNorm and no token mixing (elementwise layers
    between free weight matrices); on top of that, the kinds of the blocks of the branch in
    order (``branch``: ``("phi", "dense")`` is ``W φ(h) + b``), the strength of the skip
    connection around it (``skip``: None for none) and dense blocks without their own σ²
    (the solvers take the network's σ_w², σ_b²) and of the network's width (square weights).
    ``law`` is the name of the law in the results (``arch`` of their JSON); ``depth_scaled``:
    the law's weights have variance ``σ_w²/(N L)`` (Tarnowski's convention).

    >>> from critheory.blocks import network
    >>> SOLVERS["mlp"].unmet(network("mlp", "tanh")) is None
    True
    """

    name: str
    branch: tuple
    skip: float | None
    law: str
    depth_scaled: bool = False

    def unmet(self, net: Network) -> str | None:
        """The first need the network does not meet (None: the solver applies)."""
        caps = net.capabilities
        if caps.has_layernorm:
            return f"{_normalization(net)} (the free-probability theory here needs elementwise " \
                "layers)"
        if net.tokens != 1 or caps.mixes_tokens:
            return "several tokens or attention"
        if not net.simple:
            return "several skip connections in one layer"
        if caps.own_variances:
            return "dense blocks with their own variances"
        if any(b.weighted and getattr(b, "width", 1.0) != 1.0 for b in walk(net.unit)):
            return "dense blocks of another width (rectangular weights)"
        if (caps.residual_strength is None) != (self.skip is None):
            return ("a skip connection" if self.skip is None else "no skip connection") + \
                f" (the {self.name} solver needs " + \
                ("none)" if self.skip is None else f"one of strength {self.skip:g})")
        if self.skip is not None and caps.residual_strength != self.skip:
            return (f"skip strength {caps.residual_strength:g} (the {self.name} solver needs "
                    f"{self.skip:g})")
        kinds = tuple(b.kind for b in walk(net.branch))
        if kinds != self.branch:
            return (f"the branch {' -> '.join(kinds)} (the {self.name} solver needs "
                    f"{' -> '.join(self.branch)})")
        return None


def _normalization(net: Network) -> str:
    """The class name of the network's first normalization block (LayerNorm, RMSNorm)."""
    return next(type(b).__name__ for b in walk(net.unit) if b.normalizes)


#: the solvers by the registry name of the unit they need
SOLVERS = {"mlp": SolverNeeds("mlp", ("phi", "dense"), None, "mlp"),
           TARNOWSKI: SolverNeeds(TARNOWSKI, ("dense", "phi"), 1.0, "resnet", True)}


def solver_for(net: Network) -> SolverNeeds:
    """The solver whose needs the network meets, or :class:`InvalidArgumentError` naming, in
    one line, the first need it misses (of the MLP solver without a skip connection, of
    Tarnowski's with one)."""
    for s in SOLVERS.values():
        if s.unmet(net) is None:
            return s
    caps = net.capabilities
    if caps.has_layernorm:
        raise InvalidArgumentError(f"Jacobian spectra of networks with {_normalization(net)} "
                                   "are not covered (the free-probability theory here needs "
                                   "elementwise layers)")
    if caps.residual_strength is not None:
        raise InvalidArgumentError(
            "Jacobian spectra of residual networks are covered for Tarnowski's unit "
            f"x + phi(W x + b) with skip strength 1 (arch '{TARNOWSKI}') only: {net.name} has "
            + SOLVERS[TARNOWSKI].unmet(net))
    raise InvalidArgumentError("Jacobian spectra of MLPs are covered for the unit "
                               f"W phi(h) + b (arch 'mlp') only: {net.name} has "
                               + SOLVERS["mlp"].unmet(net))


def canonical_spectrum_name(name: Any, warn: bool = True) -> str:
    """The registry name of a spectra ``arch`` string; the deprecated ``resnet`` resolves to
    ``tarnowski-resnet`` (with a :class:`FutureWarning` where ``warn``).

    >>> canonical_spectrum_name("Tarnowski_ResNet")
    'tarnowski-resnet'
    """
    from critheory.blocks.registry import canonical

    key = str(name).strip().lower().replace("_", "-")
    if key in DEPRECATED:
        key, msg = DEPRECATED[key]
        if warn:
            warnings.warn(msg, FutureWarning, stacklevel=3)
    return canonical(key)


def spectrum_network(arch: Any, activation: Any = None, params=None, *,
                     warn: bool = True) -> Network:
    """The network of a spectra entry point's ``arch`` (and ``activation``) arguments: a
    :class:`Network` (also in the activation's place; a conflicting activation is refused) or
    a registry name (``resnet``: the deprecated spelling of ``tarnowski-resnet``), resolved
    once by :func:`critheory.blocks.registry.as_network`. Whether a solver covers it is
    :func:`solver_for`'s question."""
    from critheory.blocks.registry import as_network

    if isinstance(activation, Network) and isinstance(arch, str) and arch == "mlp":
        arch = None             # the default name gives way to a network in the activation's place
    if isinstance(arch, str):
        arch = canonical_spectrum_name(arch, warn)
    elif arch is not None and not isinstance(arch, Network):
        raise InvalidArgumentError(f"arch must be one of {', '.join(spectrum_names())} or a "
                                   f"Network, got {arch!r}")
    return as_network(arch, activation, None, params)


def spectrum_names() -> tuple:
    """The registry names a spectrum solver needs (:data:`SOLVERS`, in the registry's order)."""
    from critheory.blocks.registry import names

    return tuple(n for n in names(theory="spectra") if n in SOLVERS)
