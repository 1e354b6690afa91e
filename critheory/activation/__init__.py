"""Symbolic activations: a sympy expression in ``x`` with its derived numeric forms.

``symbolic``     :class:`Activation`: the expression with its derivatives, breakpoints, jumps,
                 Taylor data, parity, growth and numeric evaluators, built from the modules below
``expressions``  the variable ``x`` and the sympy helpers every module shares
``formula``      formulas in ``x``: sanitized (no code runs, no huge constants), then parsed
``analysis``     breakpoints (switch functions, real zeros), the domain check, growth rates
``numeric``      numpy and mpmath lambdification, the float64 evaluator with overflow repair
``wide``         float64 arithmetic with an unbounded exponent (the vectorized overflow repair)
``serialize``    expressions as ``srepr`` text for the zoo cache
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
