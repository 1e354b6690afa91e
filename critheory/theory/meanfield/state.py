"""The state the mean-field theory iterates through the blocks of a layer: the one
:class:`~critheory.theory.state.State` of every theory (its mean-field fields: ``K``, ``K22``,
``K12``, ``q``, ``q22``, ``dK``, ``dK12``, ``J``, ``gap``; see :mod:`critheory.theory.state`).
Re-exported here, where it lived before the theories shared it."""
from critheory.theory.state import Rep, State

__all__ = ["State", "Rep"]
