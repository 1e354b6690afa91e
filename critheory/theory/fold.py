"""The one fold every theory runs: a rule per block kind, ``rule(block, state, ctx) -> state``,
applied block by block, with one composition grammar.

* :class:`~critheory.theory.state.State` is the one state (every theory's fields).
* :class:`Ctx` is what a rule needs beside the state: the activation, the network's σ_w², σ_b²
  (arrays allowed: a grid), and the options of the theories (``need_K`` of the mean-field
  tangents, the NTK's ``lambda_b``, ``lambda_w``, the transformer's quasi-Monte Carlo
  ``sampler`` and its ``tables``). A dense block reads its own variances through
  :meth:`Ctx.variances`.
* :class:`Theory` is a theory's registry: its name and its table ``block kind -> rule``. A kind
  it does not cover is refused in one line naming the theory and the block.
* :func:`fold` walks the blocks; a residual rule folds its branch through it
  (:func:`fold_branch`).
* :data:`GRAMMAR` says what representation each block kind needs and what it makes
  (:class:`~critheory.theory.state.Rep`); :func:`fold` checks it before each rule, and
  :func:`check_composition` checks a whole unit before any number is computed. A theory may
  ask for more than the grammar (:attr:`Theory.needs`: the finite-width residual rule needs a
  dense block's output).

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> from critheory.theory.fold import Ctx, fold
>>> from critheory.theory.meanfield.rules import THEORY
>>> from critheory.theory.state import State
>>> net = network("mlp", "relu")
>>> s = fold(net.unit, State.start(np.array(3.0), jacobian=True), Ctx(net.activation, 2.0, 0.1),
...          THEORY)
>>> float(s.K), float(s.J)          # K' = 0.1 + 2 * 3/2, chi_J = 2 * 1/2
(3.1, 1.0)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from critheory.errors import InvalidArgumentError
from critheory.theory.dispatch import rule_for
from critheory.theory.state import Rep, State

__all__ = ["Ctx", "Theory", "Grammar", "GRAMMAR", "fold", "fold_branch", "check_composition",
           "check_one_token"]

_ANY = frozenset(Rep)
_GAUSSIAN_LIKE = frozenset({Rep.GAUSSIAN, Rep.NORMALIZED})


@dataclass(frozen=True, eq=False)
class Ctx:
    """What a rule needs beside the state (see the module docstring)."""

    activation: Any
    weight_var: Any = 1.0
    bias_var: Any = 0.0
    need_K: bool = True
    lambda_b: Any = 0.0
    lambda_w: Any = 0.0
    sampler: Any = None
    tables: dict = field(default_factory=dict)

    def variances(self, block) -> tuple:
        """``(σ_w², σ_b²)`` of a block: its own where it carries them, else the network's."""
        return block.variances(self.weight_var, self.bias_var)

    def with_(self, **fields) -> "Ctx":
        """A copy with some options replaced (the tables are shared)."""
        return replace(self, **fields)


@dataclass(frozen=True)
class Grammar:
    """What a block kind needs of its input representation, what it makes, and whether its
    rule reads the input kernel (a dense block's tangents do not); ``refusal`` and ``wants``
    word the one-line refusal of an input it does not accept."""

    needs: frozenset
    makes: Callable[[Rep], Rep]
    reads_kernel: bool = True
    refusal: str = ""
    wants: str = "a Gaussian-like input"


def _normalize(rep: Rep) -> Rep:
    return {Rep.GAUSSIAN: Rep.NORMALIZED, Rep.PHI: Rep.NORMALIZED_PHI}.get(rep, rep)


def _rms_normalize(rep: Rep) -> Rep:
    # RMSNorm of a centred Gaussian is its LayerNorm at infinite width; of φ(h) it keeps the
    # mean (SCALED_PHI); of a representation with second moment 1 it is the identity
    return {Rep.GAUSSIAN: Rep.NORMALIZED, Rep.PHI: Rep.SCALED_PHI}.get(rep, rep)


def _gaussian(rep: Rep) -> Rep:
    return Rep.GAUSSIAN


#: block kind -> :class:`Grammar` (the one composition grammar every theory reads)
GRAMMAR: dict[str, Grammar] = {
    "dense": Grammar(_ANY, _gaussian, reads_kernel=False),
    "phi": Grammar(_GAUSSIAN_LIKE, lambda rep: Rep.PHI,
                   refusal="an activation block must follow a dense block or a LayerNorm of a "
                           "Gaussian vector"),
    "layernorm": Grammar(_ANY - {Rep.SCALED_PHI}, _normalize,
                         refusal="a LayerNorm of an RMSNorm of an activation's output has no "
                                 "rule", wants="a centred input or φ(h) itself"),
    "rmsnorm": Grammar(_ANY, _rms_normalize),
    "residual": Grammar(_ANY, _gaussian),
    "attention": Grammar(_ANY, _gaussian),
    "mlp": Grammar(_ANY, _gaussian),
}

_RESIDUAL_INPUT = "a residual block's input must be a dense block's output"


@dataclass(frozen=True)
class Theory:
    """A theory's rules: ``rules[block kind] -> rule(block, state, ctx) -> state``.

    ``needs``: representations a rule of this theory needs beyond the grammar (kind -> set),
    with the one-line reason in ``reasons``.
    """

    name: str
    rules: Mapping[str, Callable]
    needs: Mapping[str, frozenset] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)

    def rule(self, block) -> Callable:
        """The rule of ``block``, or a one-line refusal naming the theory and the block."""
        return rule_for(self.rules, block, self.name)

    def check(self, block, rep: Rep) -> None:
        """Refuse ``block`` on an input of representation ``rep`` (grammar and theory)."""
        g = GRAMMAR.get(block.kind)
        if g is None:
            self.rule(block)
            raise InvalidArgumentError(f"the {self.name} theory has no composition rule for a "
                                       f"{block.kind!r} block")
        if rep not in g.needs:
            raise InvalidArgumentError(f"{g.refusal or block.kind + ' block: bad input'} (the "
                                       f"{self.name} rule needs {g.wants})")
        extra = self.needs.get(block.kind)
        if extra is not None and rep not in extra:
            raise InvalidArgumentError(self.reasons.get(block.kind, f"{block.kind!r} block: "
                                                       f"input not covered by the {self.name} "
                                                       "theory"))


def _reads_kernel(block) -> bool:
    g = GRAMMAR.get(block.kind)
    return True if g is None else g.reads_kernel


def fold(blocks, state: State, ctx: Ctx, theory: Theory) -> State:
    """The state after a sequence of blocks: each block's rule in order, after the grammar's
    check of its input.

    ``ctx.need_K=False``: the caller reads only tangent fields (χ's), so a rule whose output
    kernel no later block reads may skip computing it (``K`` is then None); the fold passes
    ``need_K=True`` to every block that some later block's rule needs the kernel of.
    """
    blocks = tuple(blocks)
    full = ctx if ctx.need_K else None
    for i, block in enumerate(blocks):
        theory.check(block, state.rep)
        c = ctx
        if not ctx.need_K and any(_reads_kernel(b) for b in blocks[i + 1:]):
            if full is None:
                full = ctx.with_(need_K=True)
            c = full
        state = theory.rule(block)(block, state, c)
    return state


def _no_sum_rule(theory: Theory, rep: Rep) -> InvalidArgumentError:
    """The one-line refusal of a residual branch that does not end with a dense block."""
    ends = ("phi (the sum of the skip path and phi(h), as in Tarnowski's x + phi(W x + b), "
            "which only the Jacobian spectra cover)" if rep is Rep.PHI else "a normalization")
    return InvalidArgumentError(f"the {theory.name} theory has no rule for a residual branch "
                                f"that ends in {ends}: a residual branch must end with a dense "
                                "block")


def fold_branch(block, state: State, ctx: Ctx, theory: Theory) -> State:
    """The state after a residual block's branch (refused unless it ends with a dense block:
    the sum of μh and φ(h) has no rule)."""
    b = fold(block.branch, state, ctx, theory)
    if b.rep is not Rep.GAUSSIAN:
        raise _no_sum_rule(theory, b.rep)
    return b


def check_composition(blocks, theory: Theory, rep: Rep = Rep.GAUSSIAN) -> Rep:
    """Refuse, before any number is computed, a sequence of blocks the theory cannot read: a
    kind without a rule, an input the grammar (or the theory) does not accept, a residual
    branch that does not end with a dense block. Returns the representation it ends with."""
    for b in blocks:
        theory.check(b, rep)
        theory.rule(b)
        if getattr(b, "branch", None):
            end = check_composition(b.branch, theory, rep)
            if end is not Rep.GAUSSIAN:
                raise _no_sum_rule(theory, end)
        rep = GRAMMAR[b.kind].makes(rep)
    return rep


def check_one_token(net, theory: str) -> None:
    """Refuse, in one line naming it, a network the one-token theories do not cover: T > 1
    tokens (the token kernel is the transformer theory's)."""
    if net.tokens > 1:
        raise InvalidArgumentError(f"the {theory} theory follows one token; {net.name!r} has "
                                   f"T = {net.tokens} tokens (the token-kernel theory covers it)")
