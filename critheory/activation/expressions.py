"""The variable ``x`` of activation formulas and the small sympy helpers every module shares.

sympy (~0.8 s to import) is imported on first use: :data:`X` and :data:`NONSMOOTH` are created
when it is (reading ``expressions.X`` imports it), so that a zoo activation served from the zoo
cache never pays for it.

Examples
--------
>>> from critheory.activation import expressions
>>> expressions.X
x
>>> expressions.strip_delta(expressions.X * expressions.sp.DiracDelta(expressions.X) + 1)
1
"""
from __future__ import annotations

from critheory.activation._lazy import LazyModule, load, on_import
from critheory.errors import ActivationParseError

__all__ = ["X", "NONSMOOTH", "sp", "need_sympy", "nonsmooth", "as_expr", "strip_delta"]

#: sympy, imported on first attribute access
sp = LazyModule("sympy")

#: names created when sympy is imported: ``X`` (the real variable ``x`` of every activation
#: expression) and ``NONSMOOTH`` (the sympy classes whose arguments locate breakpoints)
_SYMPY_GLOBALS = ("X", "NONSMOOTH")


def _on_sympy(mod) -> None:
    global sp, X, NONSMOOTH
    sp = mod
    X = mod.Symbol("x", real=True)
    NONSMOOTH = (mod.Max, mod.Min, mod.Abs, mod.Heaviside, mod.sign, mod.Piecewise,
                 mod.DiracDelta)


on_import("sympy", _on_sympy)


def need_sympy() -> None:
    """Import sympy (once) and create :data:`X` and :data:`NONSMOOTH`."""
    if "X" not in globals():
        load("sympy")


def __getattr__(name: str):
    if name in _SYMPY_GLOBALS:
        need_sympy()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def nonsmooth() -> tuple:
    """:data:`NONSMOOTH` (imports sympy): Max, Min, Abs, Heaviside, sign, Piecewise, DiracDelta,
    the classes whose arguments locate an expression's breakpoints."""
    need_sympy()
    return NONSMOOTH


def as_expr(value):
    """A parameter value as a sympy number (:class:`ActivationParseError` if it is none)."""
    need_sympy()
    try:
        return sp.sympify(value)
    except (sp.SympifyError, TypeError, ValueError) as exc:  # pragma: no cover - defensive
        raise ActivationParseError(f"cannot interpret parameter value {value!r}") from exc


def strip_delta(expr):
    """``expr`` with its DiracDelta terms replaced by 0: a derivative almost everywhere."""
    need_sympy()
    if expr.has(sp.DiracDelta):
        expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    return expr
