"""The activation at 0 and the kernel map near K* = 0 (shared by fixed points and criticality).

An MLP's kernel map near ``K = 0`` is set by the activation's derivatives at 0 [PDLT §5.3]:
``σ_1 = φ'(0)`` places the K* = 0 end of the critical line at ``σ_w² = (1 − μ²)/σ_1²``,
PDLT's ``a_1 = σ_3/σ_1 + (3/4)(σ_2/σ_1)²`` decides whether it attracts (``a_1 < 0``), and
``b_1 = σ_3/σ_1 + (σ_2/σ_1)²`` gives the APJN exponent ``p_⊥ = b_1/a_1``; where φ'' jumps at 0
(ELU-type), ``Δ_2/σ_1`` with ``Δ_2 = φ''(0+) − φ''(0−)`` plays the role of ``a_1``.

:mod:`critheory.theory.meanfield.fixed_points` (stability of K* = 0) and
:mod:`critheory.theory.meanfield.criticality` (critical points, universality classes) both read
them from here.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.taylor import a1_b1, zero_endpoint
>>> a1_b1(architecture("mlp", "tanh")), zero_endpoint(architecture("mlp", "tanh"))
((-2, -2), 1.0)
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from critheory.errors import InvalidArgumentError
from critheory.theory.meanfield.maps import LayerMaps

if TYPE_CHECKING:  # sympy is imported where it is used (importing it takes ~0.5 s)
    import sympy as sp

__all__ = ["a1_sign", "one_sided_derivatives", "exact_coefficient", "kernel_dependent", "zero_endpoint",
           "kinked_second", "a1_b1", "ExactRational", "exact_ratio", "exact_text", "as_sympy"]


class ExactRational:
    """An exact rational number standing for the sympy ``Rational`` it equals, without importing
    sympy for what the theory asks of it: its text (sympy's: ``-2``, ``196/197``), its sign,
    its float value, equality and order with numbers, negation and exact division. Anything
    else (``.evalf()``, arithmetic with sympy expressions, ...) is passed to the sympy number
    (:meth:`sympy`, which imports sympy).

    Examples
    --------
    >>> a = ExactRational(Fraction(-197, 100))
    >>> a, -a, a.is_negative, float(a), a == Fraction(-197, 100), a < 0
    (-197/100, 197/100, True, -1.97, True, True)
    >>> exact_ratio(ExactRational(-2), ExactRational(-2)) == 1
    True
    >>> import pickle, copy
    >>> pickle.loads(pickle.dumps(a)) == a, copy.deepcopy(a) == a
    (True, True)
    """

    __slots__ = ("value", "_sym")

    def __init__(self, value):
        object.__setattr__(self, "value", Fraction(value))
        object.__setattr__(self, "_sym", None)

    def sympy(self):
        """The sympy ``Rational`` (imports sympy)."""
        if self._sym is None:
            import sympy as sp

            object.__setattr__(self, "_sym", sp.Rational(self.value.numerator,
                                                         self.value.denominator))
        return self._sym

    def __setattr__(self, name, value):
        raise AttributeError("ExactRational is immutable")

    def __reduce__(self):
        # pickling and copying rebuild it from its value (the default protocol sets the slots
        # one by one, which __setattr__ refuses: a Universality did not unpickle)
        return (ExactRational, (self.value,))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.sympy(), name)

    def __str__(self) -> str:
        return str(self.value)

    __repr__ = __str__

    def __float__(self) -> float:
        return float(self.value)

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other):
        if isinstance(other, ExactRational):
            return self.value == other.value
        if isinstance(other, (int, Fraction)):
            return self.value == other
        return self.sympy() == other

    def __ne__(self, other):
        return not self == other

    def __lt__(self, other):
        return self.value < _fraction(other) if _fraction(other) is not None \
            else self.sympy() < other

    def __gt__(self, other):
        return self.value > _fraction(other) if _fraction(other) is not None \
            else self.sympy() > other

    def __neg__(self):
        return ExactRational(-self.value)

    @property
    def is_negative(self) -> bool:
        return self.value < 0

    @property
    def is_positive(self) -> bool:
        return self.value > 0

    @property
    def is_zero(self) -> bool:
        return self.value == 0

    is_Rational = is_rational = is_number = is_real = is_finite = True

    @property
    def is_integer(self) -> bool:
        return self.value.denominator == 1

    def _sym_op(name):  # noqa: N805 - a factory of methods
        def op(self, *args):
            return getattr(self.sympy(), name)(*(as_sympy(a) for a in args))
        op.__name__ = name
        return op

    for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                  "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__abs__", "__le__",
                  "__ge__"):
        locals()[_name] = _sym_op(_name)
    del _name, _sym_op


def _fraction(v):
    if isinstance(v, ExactRational):
        return v.value
    if isinstance(v, (int, Fraction)):
        return Fraction(v)
    return None


def as_sympy(v):
    """``v`` as sympy sees it: an :class:`ExactRational` as its sympy number, anything else as
    it is."""
    return v.sympy() if isinstance(v, ExactRational) else v


def exact_ratio(b, a):
    """``nsimplify(simplify(b/a))`` (the exact ratio of two exact numbers): a fraction where
    both are :class:`ExactRational` (no sympy), else by sympy."""
    if isinstance(a, ExactRational) and isinstance(b, ExactRational):
        return ExactRational(b.value / a.value)
    import sympy as sp

    return sp.nsimplify(sp.simplify(as_sympy(b) / as_sympy(a)))


def exact_text(v) -> str:
    """sympy's text of an exact number (``sstr``), without sympy for an :class:`ExactRational`."""
    if isinstance(v, ExactRational):
        return str(v)
    import sympy as sp

    return sp.sstr(v)


def one_sided_derivatives(act, n: int = 3) -> tuple[tuple[float, float], ...]:
    """(φ^{(k)}(0+), φ^{(k)}(0-)) for k = 0..n, at 60 digits (rounded to 1e-30)."""
    import mpmath

    out = []
    with mpmath.workdps(60):
        eps = mpmath.mpf(10) ** -40
        for k in range(n + 1):
            f = act.mpmath_func(k)
            vals = []
            for x in (eps, -eps):
                v = f(x)
                v = mpmath.re(v) if isinstance(v, mpmath.mpc) else v
                vals.append(0.0 if abs(v) < 1e-30 else float(v))
            out.append(tuple(vals))
    return tuple(out)


def exact_coefficient(v):
    """A Taylor coefficient as an exact sympy number: already exact ones as they are (nsimplify
    of an exact irrational such as 2/√π runs a PSLQ search, ~35 ms, for nothing), floats
    rationalized by nsimplify."""
    import sympy as sp

    v = sp.sympify(v)
    return sp.nsimplify(v) if v.has(sp.Float) else v


def kernel_dependent(arch: LayerMaps) -> bool:
    """True where the kernel map depends on K non-trivially (no LayerNorm fixing it) and a
    fixed point exists: the MLP-like networks with universality classes."""
    c = arch.caps
    return not c.affine_kernel_map and c.has_fixed_point and c.single_dense


def zero_endpoint(arch: LayerMaps) -> float | None:
    """σ_w² of the K* = 0 end of an MLP/residual critical line (φ(0) = 0 and φ'(0) ≠ 0, with φ'
    continuous at 0), or None."""
    if not kernel_dependent(arch) or arch.caps.scale_invariant:
        return None
    t = arch.activation.taylor_float
    if t is not None:
        (_, s1), (z0, z1) = t[0][:2], t[1][:2]
        if not z0 or z1:
            return None
        return _representable((1.0 - arch.mu2) / (s1 * s1), arch,
                              f"(1 - mu^2)/phi'(0)^2 with phi'(0) = {s1:g}")
    d = one_sided_derivatives(arch.activation, 1)
    if d[0] != (0.0, 0.0) or d[1][0] != d[1][1] or d[1][0] == 0.0:
        return None
    return _representable((1.0 - arch.mu2) / d[1][0] ** 2, arch,
                          f"(1 - mu^2)/phi'(0)^2 with phi'(0) = {d[1][0]:g}")


def _representable(sw: float, arch: LayerMaps, what: str) -> float:
    """The critical weight variance, or a CritheoryError naming the input where it is not a
    positive float64 (tanh(a*x) with a = 1e308: 1/a² underflows to 0)."""
    if sw > 0 and math.isfinite(sw) and sw >= np.finfo(float).tiny:
        return sw
    raise InvalidArgumentError(
        f"the critical weight variance of {arch.activation.name} is {what}, which is outside "
        "the float64 range: rescale the activation's parameters")


def kinked_second(arch: LayerMaps) -> float | None:
    """For φ(0) = 0, φ'(0) = σ_1 continuous but φ'' jumping at 0 (ELU-type): Δ_2/σ_1 with
    Δ_2 = φ''(0+) - φ''(0-); else None."""
    if arch.activation.taylor_float is not None or zero_endpoint(arch) is None:
        return None
    d = one_sided_derivatives(arch.activation, 2)
    delta2 = d[2][0] - d[2][1]
    return delta2 / d[1][0] if delta2 != 0.0 else None


def a1_sign(arch: LayerMaps) -> int | None:
    """The sign (−1, 0, +1) of PDLT's a_1 for φ(0) = 0, φ'(0) ≠ 0, else None: from the float
    Taylor derivatives where |a_1| exceeds their rounding bound (no sympy), else exactly."""
    t = arch.activation.taylor_float
    if t is None or not t[1][0] or t[1][1]:
        return None
    s1, s2, s3 = t[0][1:4]
    u, w = s3 / s1, 0.75 * (s2 / s1) ** 2
    a1 = u + w
    if abs(a1) > 16 * np.finfo(float).eps * (abs(u) + w):
        return 1 if a1 > 0 else -1
    ab = a1_b1(arch)
    return None if ab is None else (1 if ab[0].is_positive else -1 if ab[0].is_negative else 0)


def a1_b1(arch: LayerMaps) -> tuple[sp.Expr, sp.Expr] | None:
    """PDLT's a_1, b_1 (exact) for φ(0) = 0, φ'(0) ≠ 0, else None: :class:`ExactRational`
    where the Taylor derivatives are rational (read without sympy from a zoo activation's
    cache: tanh, sin), else sympy expressions."""
    q = arch.activation.taylor_rational
    if q is not None:
        if q[0] != 0 or q[1] == 0:
            return None
        u, w = q[3] / q[1], (q[2] / q[1]) ** 2
        return ExactRational(u + Fraction(3, 4) * w), ExactRational(u + w)
    t = arch.activation.taylor
    if not t.available or t.derivatives[0] != 0 or t.derivatives[1] == 0:
        return None
    import sympy as sp

    s1, s2, s3 = (exact_coefficient(t.derivatives[i]) for i in (1, 2, 3))
    return (sp.simplify(s3 / s1 + sp.Rational(3, 4) * (s2 / s1) ** 2),
            sp.simplify(s3 / s1 + (s2 / s1) ** 2))
