"""Symbolic activations: a sympy expression in ``x`` with its derived numeric forms.

``symbolic``  :class:`Activation` (parsing, derivatives, breakpoints, Taylor data, numpy/mpmath
              evaluation)
``zoo``       the built-in activations by name
"""
from critheory.activation.symbolic import X, Activation, TaylorInfo

__all__ = ["Activation", "X", "TaylorInfo"]
