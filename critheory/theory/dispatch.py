"""The one dispatch every theory room uses: a block's rule from the room's table, keyed by the
block's kind (never by its type or name), with one error for a kind the room does not cover."""
from __future__ import annotations

from typing import Callable

from critheory.errors import InvalidArgumentError

__all__ = ["rule_for"]


def rule_for(rules: dict[str, Callable], block, theory: str) -> Callable:
    """``rules[block.kind]``, or InvalidArgumentError naming the theory and the kind.

    >>> from critheory.blocks.blocks import Dense
    >>> rule_for({"dense": len}, Dense(), "example") is len
    True
    """
    try:
        return rules[block.kind]
    except KeyError:
        raise InvalidArgumentError(f"the {theory} theory has no rule for a {block.kind!r} "
                                   "block") from None
