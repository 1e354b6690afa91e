"""Activation functions stated symbolically.

An :class:`Activation` wraps a sympy expression φ(x) of one real variable ``x`` and derives from
it everything the theory and the simulator need: derivatives (in the almost-everywhere sense,
with the jumps of φ' recorded separately), vectorized numpy and arbitrary-precision mpmath
evaluators, the breakpoints (kinks) located from ``Max``, ``Min``, ``Abs``, ``Heaviside``,
``sign`` and ``Piecewise``, exact Taylor coefficients at 0, the exponential growth rate at
±infinity, and a few structural facts (parity, positive homogeneity).

Construction validates the activation: an expression that does not parse, a free symbol without a
value, an activation undefined or complex somewhere on the real line, or one growing like
``exp(c x**2)`` raises a :class:`~critheory.errors.ActivationError` subclass.

Examples
--------
>>> from critheory.activation.symbolic import Activation
>>> act = Activation.from_string("tanh(a*x)", params={"a": 2})
>>> float(act.numpy(0.5))  # tanh(1)
0.7615941559557649
>>> Activation.get("relu").breakpoints
(0.0,)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Mapping

import numpy as np

from critheory.activation import expressions as ex
from critheory.activation._lazy import LazyModule
from critheory.activation.analysis import check_domain, growth, real_zeros, switch_functions
from critheory.activation.budget import within
from critheory.activation.expressions import as_expr, need_sympy, sp, strip_delta
from critheory.activation.formula import normalize, parse
from critheory.activation.numeric import mp_lambdify, np_lambdify, wrap_numpy
from critheory.errors import (
    ActivationError,
    ActivationParseError,
    DomainError,
    FreeSymbolError,
    GrowthError,
    InvalidArgumentError,
)

#: sympy's srepr of an integer or a rational number (``Integer(-2)``, ``Rational(1, 2)``)
_RATIONAL_SREPR = re.compile(r"(?:Integer\((-?\d+)\)|Rational\((-?\d+), (\d+)\))")

__all__ = ["Activation", "X", "TaylorInfo"]

# mpmath is imported on first use: a zoo activation served from the zoo cache
# (critheory.activation.cache) needs neither it nor sympy for its numerical work
mpmath = LazyModule("mpmath")


def __getattr__(name: str):
    # X, the real variable of every activation expression (critheory.activation.expressions.X):
    # created with sympy, so ``from critheory.activation.symbolic import X`` imports sympy
    if name == "X":
        return ex.X
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class TaylorInfo:
    """Exact derivatives of φ at 0.

    Attributes
    ----------
    derivatives : tuple of sympy.Expr or None
        ``σ_p = φ^{(p)}(0)`` for p = 0, 1, ..., exact; ``None`` where φ is not smooth at 0.
    reason : str
        Why the coefficients are absent (empty when present).
    """

    derivatives: tuple | None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.derivatives is not None



#: Activations built from formula strings, by (text, parameters): the 256 most recent.
_FORMULA_CACHE: dict = {}

#: Wall-clock seconds the analysis of a new formula may take (breakpoints, domain, growth,
#: evaluators; each symbolic step has its own smaller budget and a numeric fallback): beyond it
#: the formula is refused in one line instead of running for minutes (issue 31).
VALIDATE_SECONDS = 30.0
#: Wall-clock seconds for simplifying the exact Taylor coefficients of a new formula at 0 (beyond
#: them a coefficient is kept exact as written, unsimplified)
TAYLOR_SECONDS = 5.0


class Activation:
    """A scalar activation function φ(x), stated as a sympy expression in ``x``.

    Build one with :meth:`get` (a zoo name, a formula string, a sympy expression or an
    existing Activation), :meth:`from_string` or :meth:`from_expr`.

    Parameters
    ----------
    expr : sympy.Expr
        φ as an expression in :data:`X` (``x``, real), with every parameter substituted.
    name : str
        A readable name (the zoo name, or the formula).

    Notes
    -----
    Derivatives are taken almost everywhere: ``DiracDelta`` terms that sympy produces at kinks
    are dropped, and the jumps of φ' at each breakpoint are kept in ``derivative_jumps``, so
    that distributional expectations (``E[φ φ'']``) can add the point masses back.

    Examples
    --------
    >>> import critheory as ct
    >>> act = ct.Activation.get("tanh(a*x) + x/10", {"a": 1.5})
    >>> act.expr, act.parity
    (x/10 + tanh(1.5*x), 'odd')
    """

    def __init__(self, expr: sp.Expr, name: str | None = None, *, _validate: bool = True):
        need_sympy()
        if not isinstance(expr, sp.Basic):
            raise ActivationParseError(f"not a sympy expression: {expr!r}")
        expr = sp.sympify(expr)
        # arg of a real argument is the step π·H(−u) (arg(0) = 0): written as such, it is
        # judged by the rules for steps (discontinuous: refused for φ'), not differentiated
        # to 0 and read as a constant
        if expr.has(sp.arg):
            expr = expr.replace(sp.arg, lambda u: sp.pi * sp.Heaviside(-u, 0))
        free = expr.free_symbols - {ex.X}
        # allow a plain (non-real) x from user code
        for s in list(free):
            if s.name == "x":
                expr = expr.subs(s, ex.X)
        free = expr.free_symbols - {ex.X}
        if free:
            names = ", ".join(sorted(str(s) for s in free))
            raise FreeSymbolError(
                f"activation has free symbol(s) {names} without a value; give them with params"
                " (e.g. --param a=1.5) or use x as the variable"
            )
        if expr.has(sp.I) or expr.has(sp.zoo) or expr.has(sp.nan) or expr.has(sp.oo):
            raise DomainError(f"activation {expr} is complex or infinite")
        unsupported = [c.__name__ for c in (sp.Derivative, sp.Integral, sp.Subs, sp.DiracDelta,
                                             sp.floor, sp.ceiling, sp.frac) if expr.has(c)]
        if unsupported:
            raise ActivationError(
                f"activation {expr} uses {', '.join(unsupported)}: unevaluated derivatives or "
                "integrals, point masses and staircases (infinitely many jumps) are not "
                "supported; write phi as an explicit formula")
        self.expr: sp.Expr = expr
        self.name: str = name or str(expr)
        if _validate:
            self._validate()

    @classmethod
    def from_cache_entry(cls, entry, name: str) -> "Activation":
        """A zoo activation from the zoo cache (:mod:`critheory.activation.cache`): the derived
        properties are filled in from the cache, the sympy expression is rebuilt on first
        access of :attr:`expr`, and the numpy/mpmath evaluators are the cached lambdify sources.
        """
        self = cls.__new__(cls)
        d = self.__dict__
        d["name"] = name
        d["_zoo"] = entry
        a = entry.data["activation"]
        for key in ("breakpoints", "discontinuities", "jumps", "parity", "homogeneous_slopes",
                    "growth_rate"):
            d[key] = a[key]
        if "features" in a:
            from critheory.activation.features import Features

            d["features"] = Features(*a["features"])
        d["_erf_params"] = a["erf_params"]
        return self

    @property
    def expr(self) -> sp.Expr:
        """φ as a sympy expression in :data:`X`."""
        try:
            return self.__dict__["_expr"]
        except KeyError:
            pass
        # a zoo activation from the cache: rebuild the expression (imports sympy)
        e = self.__dict__["_expr"] = self.__dict__["_zoo"].expr()
        return e

    @expr.setter
    def expr(self, value) -> None:
        self.__dict__["_expr"] = value
        self.__dict__.pop("_srepr", None)

    @property
    def expr_text(self) -> str:
        """``str(self.expr)``, without importing sympy for a zoo activation from the cache."""
        z = self.__dict__.get("_zoo")
        if z is not None and "_expr" not in self.__dict__:
            return z.data["expr_text"]
        return str(self.expr)

    # ------------------------------------------------------------------ construction
    @classmethod
    def get(cls, spec, params: Mapping[str, float] | None = None) -> "Activation":
        """Build an activation from a zoo name, a formula string or a sympy expression.

        Parameters
        ----------
        spec : str, sympy.Expr or Activation
            A name from :func:`critheory.activation.zoo.names` (``"relu"``, ``"gelu"``, ...), a formula in
            ``x`` (``"x*erf(x)"``), a sympy expression, or an Activation (returned as is).
        params : mapping, optional
            Values of the expression's parameters (``{"a": 2}`` for ``"tanh(a*x)"``), or of a
            zoo entry's parameters (``{"slope": 0.2}`` for ``leaky_relu``).

        Examples
        --------
        >>> Activation.get("leaky_relu", {"slope": 0.2}).name
        'leaky_relu(slope=0.2)'
        """
        if params is not None and not isinstance(params, Mapping):
            raise InvalidArgumentError(
                f"params must be a mapping of parameter names to values ({{'a': 2}}), got "
                f"{params!r:.60}")
        if isinstance(spec, Activation):
            if params:
                raise InvalidArgumentError("parameters cannot be applied to a built Activation")
            return spec
        if isinstance(spec, str):
            from critheory.activation import zoo

            key = spec.strip().lower()
            if key in zoo.ZOO:
                return zoo.make(key, params)
            # formulas are parsed, validated and analysed once (~10 ms); repeated calls such as
            # expect("x*erf(x)", ...) in a loop get the same Activation
            try:
                ck = (spec, tuple(sorted((k, float(v)) for k, v in (params or {}).items())))
            except (TypeError, ValueError):
                return cls.from_string(spec, params)      # raises the informative error
            act = _FORMULA_CACHE.get(ck)
            if act is None:
                act = cls.from_string(spec, params)
                if len(_FORMULA_CACHE) >= 256:
                    _FORMULA_CACHE.pop(next(iter(_FORMULA_CACHE)))
                _FORMULA_CACHE[ck] = act
            return act
        if isinstance(spec, sp.Basic):
            return cls.from_expr(spec, params)
        raise ActivationParseError(f"cannot build an activation from {spec!r}")

    @classmethod
    def from_string(cls, text: str, params: Mapping[str, float] | None = None,
                    name: str | None = None) -> "Activation":
        """Parse a formula in ``x``; parameters are substituted from ``params``.

        Examples
        --------
        >>> Activation.from_string("Max(0, x) + 0.1*Min(0, x)").breakpoints
        (0.0,)
        """
        expr = parse(text, params)
        return cls.from_expr(expr, params, name=name or normalize(text).strip())

    @classmethod
    def from_expr(cls, expr: sp.Expr, params: Mapping[str, float] | None = None,
                  name: str | None = None) -> "Activation":
        """Build from a sympy expression, substituting ``params`` by name."""
        params = dict(params or {})
        subs = {}
        names = {s.name: s for s in expr.free_symbols}
        for key, value in params.items():
            if key not in names:
                raise InvalidArgumentError(
                    f"parameter {key!r} does not occur in {expr} (free symbols:"
                    f" {', '.join(sorted(names)) or 'none'})")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"parameter {key}={value!r} is not a number") from None
            if not math.isfinite(v):
                raise InvalidArgumentError(f"parameter {key}={value!r} is not finite")
            subs[names[key]] = as_expr(value)
        if subs:
            expr = expr.subs(subs)
        if name is None:
            name = str(expr)
        return cls(expr, name)

    # ------------------------------------------------------------------ dunder
    def __repr__(self) -> str:
        return f"Activation({self.name!r}: {self.expr_text})"

    def _identity(self) -> str:
        """The ``srepr`` text of φ: equal texts ⇔ structurally equal expressions. A zoo
        activation from the cache has it stored, so comparing and hashing it needs no sympy."""
        d = self.__dict__
        s = d.get("_srepr")
        if s is None:
            z = d.get("_zoo")
            if z is not None:
                s = z.data["expr_srepr"]
            else:
                from critheory.activation.serialize import to_srepr

                s = to_srepr(self.expr)
            d["_srepr"] = s
        return s

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, Activation)
                                 and self._identity() == other._identity())

    def __hash__(self) -> int:
        return hash(("Activation", self._identity()))

    # ------------------------------------------------------------------ symbolic
    def derivative(self, n: int = 1) -> sp.Expr:
        """φ^{(n)} as a sympy expression, almost everywhere (no DiracDelta terms)."""
        if n < 0:
            raise InvalidArgumentError("derivative order must be >= 0")
        return self._derivatives(n)[n]

    def _derivatives(self, n: int) -> list:
        need_sympy()
        cache = self.__dict__.setdefault("_dcache", [self.expr])
        while len(cache) <= n:
            d = strip_delta(sp.diff(cache[-1], ex.X))
            cache.append(d)
        return cache

    @cached_property
    def breakpoints(self) -> tuple[float, ...]:
        """Sorted real points where φ or one of its derivatives is not smooth.

        Located from the arguments of Max, Min, Abs, Heaviside, sign and the conditions of
        Piecewise in φ and its first two derivatives.
        """
        pts: set[float] = set()
        for e in (self.expr, self.derivative(1), self.derivative(2)):
            for atom in e.atoms(*ex.NONSMOOTH):
                for g in switch_functions(atom):
                    pts.update(real_zeros(g, self.name))
        return tuple(sorted(pts))

    @cached_property
    def is_smooth(self) -> bool:
        return not self.breakpoints

    @cached_property
    def jumps(self) -> tuple[tuple[float, float, float], ...]:
        """For each breakpoint b: (b, φ(b), φ'(b+) - φ'(b-)), the jump of the first derivative.

        φ itself must be continuous; a discontinuous φ raises :class:`DomainError` when a
        derivative expectation is requested (see :meth:`check_continuous`).
        """
        out = []
        d1 = self.mpmath_func(1)
        f0 = self.mpmath_func(0)
        with mpmath.workdps(60):
            eps = mpmath.mpf(10) ** -40
            for b in self.breakpoints:
                jump = d1(mpmath.mpf(b) + eps) - d1(mpmath.mpf(b) - eps)
                val = (f0(mpmath.mpf(b) + eps) + f0(mpmath.mpf(b) - eps)) / 2
                jump = 0.0 if abs(jump) < 1e-30 else float(jump)
                val = 0.0 if abs(val) < 1e-30 else float(val)
                out.append((b, val, jump))
        return tuple(out)

    @cached_property
    def discontinuities(self) -> tuple[float, ...]:
        """Breakpoints where φ itself jumps (a step function, for instance)."""
        f0 = self.mpmath_func(0)
        out = []
        with mpmath.workdps(40):
            for b in self.breakpoints:
                eps = mpmath.mpf(10) ** -25
                if abs(f0(mpmath.mpf(b) + eps) - f0(mpmath.mpf(b) - eps)) > mpmath.mpf(10) ** -15:
                    out.append(b)
        return tuple(out)

    def check_continuous(self, what: str = "derivative expectations") -> None:
        """Raise :class:`DomainError` if φ is discontinuous (φ' would contain a delta)."""
        if self.discontinuities:
            raise DomainError(
                f"activation {self.name} is discontinuous at x = "
                f"{', '.join(f'{b:g}' for b in self.discontinuities)}: {what} are undefined")

    @cached_property
    def taylor(self) -> TaylorInfo:
        """Exact derivatives σ_p = φ^{(p)}(0), p = 0..4, from sympy (absent at a kink at 0)."""
        z = self.__dict__.get("_zoo")
        if z is not None:
            return z.taylor()
        if any(abs(b) == 0.0 for b in self.breakpoints):
            return TaylorInfo(None, "phi is not smooth at x = 0 (kink)")
        import time

        deadline = time.monotonic() + TAYLOR_SECONDS

        def tidy(v):
            return sp.nsimplify(sp.simplify(v)) if v.is_number and not v.is_Rational \
                else sp.simplify(v)

        try:
            vals = []
            for p in range(5):
                d = self.derivative(p)
                v = d.subs(ex.X, 0)
                if v.has(sp.nan, sp.zoo) or not v.is_finite:
                    v = sp.limit(d, ex.X, 0)
                # sympy's simplify of the fourth derivative of a nested formula can run for
                # minutes (gelu_tanh(100x + 0.3)·tanh(gelu_tanh(100x + 0.3)): > 150 s, issue
                # 31): under a budget, beyond which the value stays exact as written
                left = deadline - time.monotonic()
                done, tv = within(lambda: tidy(v), left) if left > 0 else (False, None)
                vals.append(tv if done else v)
        except Exception as exc:  # pragma: no cover - sympy failure
            return TaylorInfo(None, f"sympy could not expand phi at 0 ({exc})")
        return TaylorInfo(tuple(vals))

    @cached_property
    def taylor_float(self) -> tuple | None:
        """``(values, zeros)``: the Taylor derivatives σ_p = φ^{(p)}(0), p = 0..4, as floats and
        whether each is exactly zero (decided by sympy), or None where :attr:`taylor` has none.
        What the numeric theory reads; a zoo activation's cache holds it (no sympy).

        Examples
        --------
        >>> Activation.get("tanh").taylor_float
        ((0.0, 1.0, 0.0, -2.0, 0.0), (True, False, True, False, True))
        """
        z = self.__dict__.get("_zoo")
        if z is not None and "taylor_float" in z.data:
            v = z.data["taylor_float"]
            return None if v is None else (tuple(v[0]), tuple(v[1]))
        t = self.taylor
        if not t.available:
            return None
        return (tuple(float(d) for d in t.derivatives),
                tuple(bool(d == 0 or d.is_zero is True) for d in t.derivatives))

    @cached_property
    def taylor_rational(self) -> tuple | None:
        """The Taylor derivatives σ_p = φ^{(p)}(0), p = 0..4, as exact
        :class:`fractions.Fraction` where every one is rational, else None (no Taylor data, or
        an irrational derivative such as GELU's φ''(0) = √(2/π)). A zoo activation reads them
        from the text of its cache entry (no sympy); the exact exponents of the theory are
        then plain fractions.

        Examples
        --------
        >>> [str(q) for q in Activation.get("tanh").taylor_rational]
        ['0', '1', '0', '-2', '0']
        >>> Activation.get("gelu").taylor_rational is None
        True
        """
        from fractions import Fraction

        z = self.__dict__.get("_zoo")
        if z is not None and "taylor" not in self.__dict__:
            derivs = z.data["taylor"][0]
            if derivs is None:
                return None
            out = []
            for text in derivs:
                m = _RATIONAL_SREPR.fullmatch(text)
                if m is None:
                    return None
                num, den = (m.group(1), "1") if m.group(1) is not None else m.group(2, 3)
                out.append(Fraction(int(num), int(den)))
            return tuple(out)
        t = self.taylor
        if not t.available or not all(getattr(d, "is_Rational", False) for d in t.derivatives):
            return None
        return tuple(Fraction(int(d.p), int(d.q)) for d in t.derivatives)

    @cached_property
    def parity(self) -> str:
        """'odd', 'even' or 'none', from φ(±t) at 41 sample points t in [0.013, 7.3] (a numerical
        check, not a proof; the integrands' parity, which decides exact zeros, is proven by
        sympy: :attr:`critheory.expectations.integrands.Integrand.parity`)."""
        f = self.numpy
        t = np.linspace(0.013, 7.3, 41)
        with np.errstate(all="ignore"):
            a, b = f(t), f(-t)
        scale = np.maximum(1.0, np.abs(a))
        if np.all(np.abs(a + b) <= 1e-13 * scale):
            return "odd"
        if np.all(np.abs(a - b) <= 1e-13 * scale):
            return "even"
        return "none"

    @cached_property
    def homogeneous_slopes(self) -> tuple[float, float] | None:
        """(a_+, a_-) if φ(x) = a_+ x for x > 0 and a_- x for x < 0 (scale-invariant), else None.

        Checked numerically: no breakpoint other than 0, φ'' exactly 0 at 12 sample points, and
        φ(±x) = a_± (±x) to 1e-14 at 8 more."""
        if any(b != 0.0 for b in self.breakpoints):
            return None
        for s in (1, -1):
            d2 = self.derivative(2)
            # second derivative must vanish identically on each side
            pts = np.array([0.01, 0.37, 1.0, 2.9, 11.0, 47.0]) * s
            with np.errstate(all="ignore"):
                vals = np.broadcast_to(self._lambdify(d2)(pts), pts.shape)
            if not np.all(np.abs(vals) == 0.0):
                return None
        f = self.numpy
        if abs(float(f(0.0))) > 0.0:
            return None
        ap = float(f(1.0))
        am = -float(f(-1.0))
        pts = np.array([0.003, 0.5, 3.0, 40.0])
        with np.errstate(over="ignore", invalid="ignore"):    # huge slopes: not homogeneous
            homogeneous = (np.allclose(f(pts), ap * pts, rtol=1e-14, atol=0)
                           and np.allclose(f(-pts), -am * pts, rtol=1e-14, atol=0))
        if not homogeneous:
            return None
        if not math.isfinite(ap * ap + am * am):
            # the mean-field maps need a_±² (the critical σ_w² is 2/(a_+² + a_-²))
            raise GrowthError(
                f"activation {self.name} has slopes ({ap:g}, {am:g}) whose squares overflow "
                "float64: rescale it")
        return (ap, am)

    @cached_property
    def features(self):
        """Where and how narrow φ's features are (:class:`critheory.activation.features.Features`)."""
        from critheory.activation.features import features

        return features(self.expr)

    @cached_property
    def growth_rate(self) -> tuple[float, float]:
        """Exponential growth rates (α_-, α_+) with |φ(x)| ≲ e^{α_± |x|} as x → ±∞ (>= 0)."""
        return (growth(self.mpmath_func(0), -1), growth(self.mpmath_func(0), +1))

    # ------------------------------------------------------------------ numeric
    def _lambdify(self, expr: sp.Expr) -> Callable:
        return wrap_numpy(np_lambdify(expr),
                           lambda: mp_lambdify(expr))

    def numpy_func(self, n: int = 0) -> Callable[[np.ndarray], np.ndarray]:
        """Vectorized float64 evaluator of φ^{(n)} (almost everywhere)."""
        cache = self.__dict__.setdefault("_npcache", {})
        if n not in cache:
            z = self.__dict__.get("_zoo")
            srcs = z.data["functions"].get(n) if z is not None else None
            if srcs is not None:
                label = f"d{n}phi"
                cache[n] = wrap_numpy(z.function(srcs["np"], label),
                                       lambda: z.function(srcs["mp_plain"], label + " (mpmath)"))
            else:
                cache[n] = self._lambdify(self.derivative(n))
        return cache[n]

    @property
    def numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """Vectorized float64 φ."""
        return self.numpy_func(0)

    def __call__(self, x):
        return self.numpy(x)

    def mpmath_func(self, n: int = 0) -> Callable:
        """Arbitrary-precision evaluator of φ^{(n)} (uses the current ``mpmath.mp.dps``)."""
        cache = self.__dict__.setdefault("_mpcache", {})
        if n not in cache:
            z = self.__dict__.get("_zoo")
            srcs = z.data["functions"].get(n) if z is not None else None
            if srcs is not None:
                fn = z.function(srcs["mp"], f"d{n}phi (mpmath, cse)")
            else:
                fn = mp_lambdify(self.derivative(n))

            def f(x, _fn=fn):
                v = _fn(x)
                return mpmath.mpf(v) if not isinstance(v, (mpmath.mpf, mpmath.mpc)) else v

            cache[n] = f
        return cache[n]

    def sympy_numpy(self, expr: sp.Expr) -> Callable:
        """Vectorized float64 evaluator of any expression in ``x`` (an integrand built from φ)."""
        return self._lambdify(expr)

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        done, _ = within(self._validate_steps, VALIDATE_SECONDS)
        if not done:
            raise ActivationError(
                f"the analysis of activation {self.name} (breakpoints, domain, growth) did not"
                f" finish within {VALIDATE_SECONDS:g} s; write it in a simpler form")

    def _validate_steps(self) -> None:
        try:
            bps = self.breakpoints
        except ActivationError:
            raise
        except Exception as exc:
            raise ActivationError(f"cannot analyse activation {self.name}: {exc}") from None
        check_domain(self, bps)
        a_m, a_p = self.growth_rate  # raises GrowthError for super-exponential growth
        del a_m, a_p
        try:  # the numeric evaluators must exist for every expression we accept
            with np.errstate(all="ignore"):
                self.numpy_func(0)(np.array([-1.5, 0.25, 2.0]))
                self.numpy_func(1)(np.array([-1.5, 0.25, 2.0]))
        except ActivationError:
            raise
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ActivationError(f"cannot evaluate activation {self.name} numerically: "
                                  f"{msg}") from None
