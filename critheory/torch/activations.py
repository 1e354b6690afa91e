"""Activations between torch and critheory: torch modules read as critheory activations, and any
critheory activation (a zoo name or a sympy formula) as a torch function or module.

The translation sympy → torch is :func:`critheory.activation.torch_eval.compile_torch` (a small
recursive evaluator of the expression tree), so a formula such as ``"x*erf(x)"`` runs on tensors
with autograd and forward-mode AD.

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
from critheory.activation.torch_eval import compile_torch

__all__ = ["torch_function", "TorchActivation", "activation_of", "is_activation"]


def torch_function(spec, params=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """φ of a critheory activation (zoo name, formula or :class:`Activation`) as a function of
    tensors (differentiable, forward-mode capable).

    Examples
    --------
    >>> import math
    >>> f = torch_function("x*erf(x)")
    >>> round(float(f(torch.tensor(1.0, dtype=torch.float64))), 12) == round(math.erf(1.0), 12)
    True
    """
    from critheory.activation.symbolic import X

    act = Activation.get(spec, params)
    return compile_torch(act.expr, X)


class TorchActivation(nn.Module):
    """An ``nn.Module`` applying a critheory activation elementwise (no parameters).

    :func:`read_model <critheory.torch.read.read_model>` reads it back as its activation.

    Parameters
    ----------
    spec : str, sympy expression or Activation
        Zoo name or formula in ``x``.
    params : mapping, optional
        Values of the formula's parameters.

    Examples
    --------
    >>> import torch
    >>> f = TorchActivation("tanh(x) + 0.1*x")
    >>> f(torch.tensor([0.0, 1.0], dtype=torch.float64))
    tensor([0.0000, 0.8616], dtype=torch.float64)
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

    Examples
    --------
    >>> import torch
    >>> activation_of(torch.nn.Tanh()).name, activation_of(torch.nn.Linear(2, 2))
    ('tanh', None)
    """
    reader = _READERS.get(type(module))
    return None if reader is None else reader(module)

