"""Shaping rules: activations pushed toward the identity at rate 1/√n [LNR, arXiv:2206.02768].

Two families:

* ReLU-like (:func:`shape_relu`): ``φ_s(x) = s₊ max(x,0) + s₋ min(x,0)``, ``s± = 1 + c±/√n``;
* smooth (:func:`shape_smooth`): ``φ_s(x) = s φ(x/s)``, ``s = a√n``, for an activation with
  φ(0) = 0 and φ'(0) = 1 (:func:`shape_smooth` offers to normalize one that is not).

What the solvers need to know is one capability, :attr:`Shaping.homogeneous`: ReLU shaping is
positively 1-homogeneous (``φ_s(λx) = λφ_s(x)``, λ > 0), so the covariance SDE is
1-homogeneous, the norms have no drift and the correlation alone is a Markov process.

The network is ``h^{l+1} = √(c/n) W φ_s(h^l)``, ``W_ij ~ N(0,1)``, ``c⁻¹ = E[φ_s(g)²]``,
g ~ N(0,1), depth d = Tn, and the covariance ``V^l_ab = <h^l_a, h^l_b>/n`` follows the covariance
SDE in t = l/n (:mod:`critheory.theory.shaped.sde`).

Examples
--------
>>> from critheory.theory.shaped.shaping import shape_relu, shape_smooth
>>> s = shape_relu(0.0, -1.0)
>>> s.slopes(100)            # s± = 1 + c±/√n at n = 100
(1.0, 0.9)
>>> t = shape_smooth("tanh", a=1.0)
>>> t.sigma2, t.sigma3, t.note
(0.0, -2.0, '')
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.errors import ActivationError, InvalidArgumentError

__all__ = ["Shaping", "shape_relu", "shape_smooth", "MAX_C", "MIN_A", "MAX_A"]

#: Bound of |c₊|, |c₋| (ReLU shaping): the drift rate (c₊ − c₋)²/2 stays finite.
MAX_C = 1e4
#: Bounds of the smooth shaping constant a (the drift scales like 1/a²).
MIN_A, MAX_A = 1e-4, 1e8


@dataclass(frozen=True)
class Shaping:
    """A shaping rule: the activation's parameters as functions of the width n.

    Exactly one family is set: ``c_plus``/``c_minus`` (ReLU shaping) or ``a`` (smooth shaping);
    :attr:`homogeneous` says which.

    Attributes
    ----------
    c_plus, c_minus : float
        ReLU shaping constants (``None`` for smooth shaping).
    a : float
        Smooth shaping constant (``None`` for ReLU shaping).
    activation : Activation or None
        The (normalized) base activation φ of smooth shaping; for ReLU shaping the unshaped
        activation the network is compared with (``None``: plain ReLU).
    sigma2, sigma3 : float
        φ''(0), φ'''(0) of the normalized activation (0 for ReLU shaping).
    sigma2_exact, sigma3_exact : str
        The same, exact (sympy text).
    note : str
        What normalization was applied to the activation (empty if none).

    Examples
    --------
    >>> import critheory as ct
    >>> s = ct.shape_relu(0.0, -1.0)
    >>> isinstance(s, ct.Shaping)
    True
    """

    c_plus: float | None = None
    c_minus: float | None = None
    a: float | None = None
    activation: object = None
    sigma2: float = 0.0
    sigma3: float = 0.0
    sigma2_exact: str = "0"
    sigma3_exact: str = "0"
    note: str = ""

    def __post_init__(self):
        if ((self.c_plus is None) != (self.c_minus is None)
                or (self.c_plus is None) == (self.a is None)):
            raise InvalidArgumentError("a shaping rule has either c_plus and c_minus (ReLU "
                                       "shaping) or a (smooth shaping)")

    @property
    def homogeneous(self) -> bool:
        """True for ReLU shaping: ``φ_s`` is positively 1-homogeneous (slopes s± either side of
        a kink at 0), so the covariance SDE is 1-homogeneous, the norms follow a driftless
        geometric Brownian motion (ν(1) = 0) and the correlation alone is Markov (the
        Fokker-Planck solver and the exact ODE limit of ρ apply); False for smooth shaping."""
        return self.c_plus is not None

    def slopes(self, n: float) -> tuple[float, float]:
        """ReLU slopes ``(s₊, s₋)`` at width n."""
        if not self.homogeneous:
            raise InvalidArgumentError("slopes are defined for ReLU shaping only")
        r = 1.0 / math.sqrt(float(n))
        return (1.0 + self.c_plus * r, 1.0 + self.c_minus * r)

    def scale(self, n: float) -> float:
        """Smooth shaping scale ``s = a√n``."""
        if self.homogeneous:
            raise InvalidArgumentError("the scale s = a√n is defined for smooth shaping only")
        return self.a * math.sqrt(float(n))

    def phi(self, n: float):
        """Vectorized float64 ``φ_s`` at width n.

        >>> import numpy as np
        >>> float(shape_relu(1.0, -1.0).phi(4)(np.array(-2.0)))
        -1.0
        """
        if self.homogeneous:
            sp_, sm = self.slopes(n)
            return lambda x: np.where(x > 0, sp_ * x, sm * x)
        s = self.scale(n)
        f = self.activation.numpy
        return lambda x: s * f(np.asarray(x, dtype=float) / s)

    @property
    def k(self) -> float:
        """``(c₊ − c₋)²`` (ReLU shaping), the strength of the correlation drift."""
        return (self.c_plus - self.c_minus) ** 2 if self.homogeneous else 0.0

    @property
    def B(self) -> float:
        """Norm-stability constant ``B = ¾φ''(0)² + φ'''(0)`` (0 for ReLU shaping)."""
        return 0.75 * self.sigma2 ** 2 + self.sigma3

    def describe(self) -> str:
        """One line: which shaping, with which constants."""
        if self.homogeneous:
            return (f"shaped ReLU s+ max(x,0) + s- min(x,0), s± = 1 + c±/√n, "
                    f"c+ = {self.c_plus:g}, c- = {self.c_minus:g}")
        return (f"smooth shaping s φ(x/s), s = a√n, a = {self.a:g}, φ = "
                f"{self.activation.expr_text}" + (f" ({self.note})" if self.note else ""))


def _finite(name: str, v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{name} must be finite, got {v!r}")
    return v


def shape_relu(c_plus, c_minus, activation=None) -> Shaping:
    """ReLU shaping ``s± = 1 + c±/√n``.

    Parameters
    ----------
    c_plus, c_minus : float
        The shaping constants (finite).
    activation : Activation, optional
        The unshaped activation the shaped network is compared with; it must be positively
        homogeneous (φ(x) = a₊x, x > 0; a₋x, x < 0). Default ReLU.

    Examples
    --------
    >>> shape_relu(0, -1).k
    1.0
    """
    cp, cm = _finite("c_plus", c_plus), _finite("c_minus", c_minus)
    for name, v in (("c_plus", cp), ("c_minus", cm)):
        if abs(v) > MAX_C:
            raise InvalidArgumentError(
                f"|{name}| = {abs(v):g} is beyond {MAX_C:g} (the correlation drift grows like "
                f"(c+ - c-)^2; such a rate needs more steps than any budget)")
    if activation is not None and activation.homogeneous_slopes is None:
        raise ActivationError(
            f"ReLU shaping needs a positively homogeneous activation (a+ x, a- x); "
            f"{activation.expr_text} is not: use --shape smooth")
    return Shaping(c_plus=cp, c_minus=cm, activation=activation)


def shape_smooth(activation, a, *, normalize: bool = False, params=None) -> Shaping:
    """Smooth shaping ``φ_s(x) = s φ(x/s)``, ``s = a√n``.

    Parameters
    ----------
    activation : str or Activation
        Any symbolic activation smooth at 0.
    a : float
        Shaping constant, > 0.
    normalize : bool
        If φ(0) ≠ 0 or φ'(0) ≠ 1, use ``(φ(x) − φ(0))/φ'(0)`` instead of refusing (the
        ``note`` says what was done).

    Raises
    ------
    ActivationError
        φ is not smooth at 0, or φ(0) ≠ 0 / φ'(0) ≠ 1 without ``normalize``, or φ'(0) = 0.

    Examples
    --------
    >>> s = shape_smooth("x + x**2", a=2.0)
    >>> s.sigma2, s.B
    (2.0, 3.0)
    >>> shape_smooth("sigmoid", 1.0, normalize=True).note
    'normalized: (phi(x) - 1/2)/(1/4)'
    """
    import sympy as sp

    from critheory.activation import Activation

    a = _finite("a", a)
    if a <= 0:
        raise InvalidArgumentError(f"the smooth shaping constant a must be > 0, got {a:g}")
    if not MIN_A <= a <= MAX_A:
        raise InvalidArgumentError(f"the smooth shaping constant a must lie in [{MIN_A:g}, "
                                   f"{MAX_A:g}] (the drift grows like 1/a^2), got {a:g}")
    act = activation if hasattr(activation, "taylor") else Activation.get(activation, params)
    tay = act.taylor
    if not tay.available:
        raise ActivationError(f"smooth shaping needs φ smooth at 0: {tay.reason}")
    d = tay.derivatives
    note = ""
    if d[0] != 0 or d[1] != 1:
        if not normalize:
            raise ActivationError(
                f"smooth shaping needs φ(0) = 0 and φ'(0) = 1; {act.expr_text} has φ(0) = "
                f"{d[0]}, φ'(0) = {d[1]} (pass normalize=True / --normalize to use "
                f"(φ(x) - φ(0))/φ'(0))")
        if d[1] == 0:
            raise ActivationError(f"φ'(0) = 0 for {act.expr_text}: it cannot be normalized")
        expr = (act.expr - d[0]) / d[1]
        act = Activation.from_expr(sp.simplify(expr))
        note = f"normalized: (phi(x) - {d[0]})/({d[1]})"
        d = tuple(sp.simplify(v / d[1]) for v in d)
    return Shaping(a=a, activation=act, sigma2=float(d[2]), sigma3=float(d[3]),
                   sigma2_exact=str(d[2]), sigma3_exact=str(d[3]), note=note)
