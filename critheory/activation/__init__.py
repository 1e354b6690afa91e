"""Symbolic activations: a sympy expression in ``x`` with its derived numeric forms.

``symbolic``     :class:`Activation` (parsing, derivatives, breakpoints, Taylor data, numpy/mpmath
                 evaluation)
``zoo``          the built-in activations by name
``cache``        the zoo cache: what the symbolic analysis derives for the built-in activations,
                 stored per machine in the user cache directory by
                 ``critheory.expectations.build_zoo_cache`` (a zoo activation then needs no sympy)
"""
from critheory.activation.symbolic import Activation, TaylorInfo

__all__ = ["Activation", "X", "TaylorInfo"]


def __getattr__(name: str):
    # X is a sympy symbol: imported (with sympy) on first access only
    if name == "X":
        from critheory.activation import symbolic

        return symbolic.X
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
