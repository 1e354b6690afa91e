"""Activation formulas evaluated on torch tensors: a sympy expression compiled to a function of
tensors, differentiable (autograd and forward mode).

The translation is a small recursive evaluator of the expression tree (sums, products, powers,
the elementary functions, ``Max``/``Min``, ``Abs``, ``Heaviside`` with its value at 0,
``Piecewise``); an expression it cannot translate is an :class:`ActivationError`. It is read by
the PyTorch integration (:mod:`critheory.torch.activations`: activations as torch functions and
modules) and by the simulator's torch backend (:mod:`critheory.simulation.backend`: φ and its
derivatives on the device). torch is imported on the first compilation, not with the module:
the core package never needs it.

Examples
--------
>>> import torch
>>> from critheory.activation.symbolic import X
>>> from critheory.activation.torch_eval import compile_torch
>>> import sympy as sp
>>> f = compile_torch(sp.Max(0, X) + sp.Heaviside(X), X)
>>> f(torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)).tolist()
[0.0, 0.5, 3.0]
"""
from __future__ import annotations

from typing import Callable

from critheory.activation._lazy import LazyModule
from critheory.errors import ActivationError

torch = LazyModule("torch")

__all__ = ["compile_torch"]


def _fold(op: Callable, parts: list) -> Callable:
    """``x -> op(...op(op(p₀(x), p₁(x)), p₂(x))...)`` over the compiled parts."""
    def fold(x):
        out = parts[0](x)
        for p in parts[1:]:
            out = op(out, p(x))
        return out
    return fold


def _heaviside(h0: float) -> Callable:
    return lambda x: (x > 0).to(x.dtype) + h0 * (x == 0).to(x.dtype)


def _unary(name: str) -> Callable:
    table = {
        "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sinh": torch.sinh,
        "cosh": torch.cosh, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
        "atan": torch.atan, "asinh": torch.asinh, "erf": torch.erf, "erfc": torch.erfc,
        "sqrt": torch.sqrt, "Abs": torch.abs, "sign": torch.sign, "asin": torch.asin,
        "acos": torch.acos, "atanh": torch.atanh, "acosh": torch.acosh, "floor": torch.floor,
        "ceiling": torch.ceil, "loggamma": torch.lgamma, "Heaviside": _heaviside(0.5),
    }
    return table.get(name)


def _compile(expr, x_symbol) -> Callable:
    """A function tensor -> tensor evaluating the sympy expression ``expr`` in ``x_symbol``."""
    import sympy as sp

    if expr == x_symbol:
        return lambda x: x
    if expr.is_Number or expr.is_NumberSymbol:
        c = float(expr)
        return lambda x, c=c: torch.full_like(x, c)
    if isinstance(expr, sp.Add):
        return _fold(torch.add, [_compile(a, x_symbol) for a in expr.args])
    if isinstance(expr, sp.Mul):
        return _fold(torch.mul, [_compile(a, x_symbol) for a in expr.args])
    if isinstance(expr, sp.Pow):
        base = _compile(expr.base, x_symbol)
        e = expr.exp
        if e.is_Number:
            ev = float(e)
            if ev == 0.5:
                return lambda x: torch.sqrt(base(x))
            if float(e).is_integer():
                n = int(ev)
                return lambda x, n=n: base(x) ** n
            return lambda x, ev=ev: base(x) ** ev
        ex = _compile(e, x_symbol)
        return lambda x: base(x) ** ex(x)
    if isinstance(expr, (sp.Max, sp.Min)):
        op = torch.maximum if isinstance(expr, sp.Max) else torch.minimum
        return _fold(op, [_compile(a, x_symbol) for a in expr.args])
    if isinstance(expr, sp.Piecewise):
        branches = [(_compile(e, x_symbol), _condition(c, x_symbol)) for e, c in expr.args]

        def pw(x):
            out = branches[-1][0](x)
            for f, cond in reversed(branches[:-1]):
                out = torch.where(cond(x), f(x), out)
            return out
        return pw
    if isinstance(expr, sp.Heaviside) and len(expr.args) == 2 and expr.args[1].is_Number:
        inner, step = _compile(expr.args[0], x_symbol), _heaviside(float(expr.args[1]))
        return lambda x: step(inner(x))
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        f = _unary(type(expr).__name__)
        if f is not None:
            inner = _compile(expr.args[0], x_symbol)
            return lambda x: f(inner(x))
    raise ActivationError(f"cannot evaluate {expr} with torch (no torch translation of "
                          f"{type(expr).__name__})")


def _condition(cond, x_symbol) -> Callable:
    import sympy as sp

    if cond is sp.true or cond == True:  # noqa: E712 - sympy's true
        return lambda x: torch.ones_like(x, dtype=torch.bool)
    if isinstance(cond, (sp.And, sp.Or)):
        op = torch.logical_and if isinstance(cond, sp.And) else torch.logical_or
        return _fold(op, [_condition(c, x_symbol) for c in cond.args])
    ops = {sp.StrictGreaterThan: torch.gt, sp.GreaterThan: torch.ge,
           sp.StrictLessThan: torch.lt, sp.LessThan: torch.le}
    for cls, op in ops.items():
        if isinstance(cond, cls):
            lhs, rhs = _compile(cond.lhs, x_symbol), _compile(cond.rhs, x_symbol)
            return lambda x, op=op: op(lhs(x), rhs(x))
    raise ActivationError(f"cannot evaluate the condition {cond} with torch")


def compile_torch(expr, x_symbol) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function tensor -> tensor evaluating the sympy expression ``expr`` in ``x_symbol``
    (:class:`ActivationError` where a part of it has no torch translation)."""
    return _compile(expr, x_symbol)
