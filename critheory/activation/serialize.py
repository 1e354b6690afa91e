"""sympy expressions as text for the zoo cache (:mod:`critheory.activation.cache`).

The cache stores an activation's expression and its Taylor coefficients as ``srepr`` text, which
``sympify`` reads back to the identical expression (symbols keep their assumptions: ``x`` stays
real).

Examples
--------
>>> from critheory.activation.expressions import X
>>> text = to_srepr(X**2 + 1)
>>> text
"Add(Pow(Symbol('x', real=True), Integer(2)), Integer(1))"
>>> from_srepr(text) == X**2 + 1
True
"""
from __future__ import annotations

from critheory.activation.expressions import need_sympy, sp

__all__ = ["to_srepr", "from_srepr"]


def to_srepr(expr) -> str:
    """The ``srepr`` text of a sympy expression (what the zoo cache stores)."""
    need_sympy()
    return sp.srepr(expr)


def from_srepr(text: str):
    """The sympy expression of an ``srepr`` text (:func:`to_srepr`)."""
    need_sympy()
    return sp.sympify(text)
