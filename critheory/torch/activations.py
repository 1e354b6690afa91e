"""Activations between torch and critheory: torch modules read as critheory activations, and any
critheory activation (a zoo name or a sympy formula) as a torch function or module.

The translation sympy → torch is a small recursive evaluator of the expression tree (sums,
products, powers, the elementary functions, ``Max``/``Min``, ``Abs``, ``Piecewise``), so a
formula such as ``"x*erf(x)"`` runs on tensors with autograd and forward-mode AD.

Examples
--------
>>> import torch
>>> from critheory.torch.activations import TorchActivation, activation_of
>>> act = TorchActivation("Max(0, x) + 0.1*Min(0, x)")
>>> act(torch.tensor([-2.0, 3.0], dtype=torch.float64)).tolist()
[-0.2, 3.0]
>>> activation_of(torch.nn.GELU(approximate="tanh")).name, activation_of(torch.nn.Linear(2, 2))
('gelu_tanh', None)
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from critheory.activation import Activation
from critheory.errors import ActivationError

__all__ = ["torch_function", "TorchActivation", "activation_of", "is_activation"]


def _unary(name: str) -> Callable:
    table = {
        "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sinh": torch.sinh,
        "cosh": torch.cosh, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
        "atan": torch.atan, "asinh": torch.asinh, "erf": torch.erf, "erfc": torch.erfc,
        "sqrt": torch.sqrt, "Abs": torch.abs, "sign": torch.sign,
        "Heaviside": lambda x: (x > 0).to(x.dtype) + 0.5 * (x == 0).to(x.dtype),
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
        parts = [_compile(a, x_symbol) for a in expr.args]

        def add(x):
            out = parts[0](x)
            for p in parts[1:]:
                out = out + p(x)
            return out
        return add
    if isinstance(expr, sp.Mul):
        parts = [_compile(a, x_symbol) for a in expr.args]

        def mul(x):
            out = parts[0](x)
            for p in parts[1:]:
                out = out * p(x)
            return out
        return mul
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
        parts = [_compile(a, x_symbol) for a in expr.args]
        op = torch.maximum if isinstance(expr, sp.Max) else torch.minimum

        def mm(x):
            out = parts[0](x)
            for p in parts[1:]:
                out = op(out, p(x))
            return out
        return mm
    if isinstance(expr, sp.Piecewise):
        branches = [(_compile(e, x_symbol), _condition(c, x_symbol)) for e, c in expr.args]

        def pw(x):
            out = branches[-1][0](x)
            for f, cond in reversed(branches[:-1]):
                out = torch.where(cond(x), f(x), out)
            return out
        return pw
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
        parts = [_condition(c, x_symbol) for c in cond.args]
        op = torch.logical_and if isinstance(cond, sp.And) else torch.logical_or

        def combine(x):
            out = parts[0](x)
            for p in parts[1:]:
                out = op(out, p(x))
            return out
        return combine
    ops = {sp.StrictGreaterThan: torch.gt, sp.GreaterThan: torch.ge,
           sp.StrictLessThan: torch.lt, sp.LessThan: torch.le}
    for cls, op in ops.items():
        if isinstance(cond, cls):
            lhs, rhs = _compile(cond.lhs, x_symbol), _compile(cond.rhs, x_symbol)
            return lambda x, op=op: op(lhs(x), rhs(x))
    raise ActivationError(f"cannot evaluate the condition {cond} with torch")


def torch_function(spec, params=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """φ of a critheory activation (zoo name, formula or :class:`Activation`) as a function of
    tensors (differentiable, forward-mode capable).

    >>> import math
    >>> f = torch_function("x*erf(x)")
    >>> round(float(f(torch.tensor(1.0, dtype=torch.float64))), 12) == round(math.erf(1.0), 12)
    True
    """
    from critheory.activation.symbolic import X

    act = Activation.get(spec, params)
    return _compile(act.expr, X)


class TorchActivation(nn.Module):
    """An ``nn.Module`` applying a critheory activation elementwise (no parameters).

    :func:`read_model <critheory.torch.read.read_model>` reads it back as its activation.

    Parameters
    ----------
    spec : str, sympy expression or Activation
        Zoo name or formula in ``x``.
    params : mapping, optional
        Values of the formula's parameters.
    """

    def __init__(self, spec, params=None):
        super().__init__()
        self.activation = Activation.get(spec, params)
        self._fn = torch_function(self.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._fn(x)

    def extra_repr(self) -> str:
        return self.activation.expr_text


def _softplus(m: nn.Softplus) -> Activation:
    if m.beta == 1:
        return Activation.get("softplus")
    return Activation.get("log(1 + exp(b*x))/b", {"b": float(m.beta)})


#: torch activation module -> its critheory activation (None: the module is not one)
_READERS: dict = {
    nn.Tanh: lambda m: Activation.get("tanh"),
    nn.ReLU: lambda m: Activation.get("relu"),
    nn.GELU: lambda m: Activation.get("gelu_tanh" if m.approximate == "tanh" else "gelu"),
    nn.SiLU: lambda m: Activation.get("silu"),
    nn.Sigmoid: lambda m: Activation.get("sigmoid"),
    nn.Softplus: _softplus,
    nn.ELU: lambda m: Activation.get("elu", {"alpha": float(m.alpha)}),
    nn.CELU: lambda m: Activation.get("celu", {"alpha": float(m.alpha)}),
    nn.SELU: lambda m: Activation.get("selu"),
    nn.LeakyReLU: lambda m: Activation.get("leaky_relu", {"slope": float(m.negative_slope)}),
    nn.ReLU6: lambda m: Activation.get("relu6"),
    nn.Mish: lambda m: Activation.get("mish"),
    nn.Softsign: lambda m: Activation.get("softsign"),
    nn.Hardtanh: lambda m: (Activation.get("hardtanh") if (m.min_val, m.max_val) == (-1, 1)
                            else Activation.get("Max(a, Min(b, x))",
                                                {"a": float(m.min_val), "b": float(m.max_val)})),
    TorchActivation: lambda m: m.activation,
}


def is_activation(module: nn.Module) -> bool:
    """Whether critheory can read ``module`` as an elementwise activation."""
    return type(module) in _READERS


def activation_of(module: nn.Module) -> Activation | None:
    """The critheory activation of a torch activation module, or None if it is not one.

    The softplus threshold of ``nn.Softplus`` (linear above 20/β) is ignored: the difference is
    below 1e-8 there.
    """
    reader = _READERS.get(type(module))
    return None if reader is None else reader(module)

