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

import builtins
import math
import unicodedata
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Mapping, Sequence

import numpy as np

from critheory.activation._lazy import LazyModule, load, on_import
from critheory.activation.budget import within
from critheory.errors import (
    ActivationError,
    CritheoryError,
    ActivationParseError,
    DomainError,
    FreeSymbolError,
    GrowthError,
    InvalidArgumentError,
)

__all__ = ["Activation", "X", "TaylorInfo"]

# sympy (~0.8 s to import) and mpmath are imported on first use: a zoo activation served from
# the zoo cache (critheory.activation.cache) needs neither for its numerical work
sp = LazyModule("sympy")
mpmath = LazyModule("mpmath")

#: The real variable of every activation expression (``X`` and ``_NONSMOOTH`` are created when
#: sympy is imported; ``from critheory.activation.symbolic import X`` imports it).
_SYMPY_GLOBALS = ("X", "_NONSMOOTH")


def _on_sympy(mod) -> None:
    global sp, X, _NONSMOOTH
    sp = mod
    X = mod.Symbol("x", real=True)
    _NONSMOOTH = (mod.Max, mod.Min, mod.Abs, mod.Heaviside, mod.sign, mod.Piecewise,
                  mod.DiracDelta)


def _on_mpmath(mod) -> None:
    global mpmath
    mpmath = mod


on_import("sympy", _on_sympy)
on_import("mpmath", _on_mpmath)


def _need_sympy() -> None:
    """Import sympy (once) and create the module globals derived from it."""
    if "X" not in globals():
        load("sympy")


def __getattr__(name: str):
    if name in _SYMPY_GLOBALS:
        _need_sympy()
        return globals()[name]
    if name == "_NUMPY_MODULE":
        return _numpy_module()
    if name == "_IntPowPrinter":
        return _int_pow_printer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ipow(b, n: int):
    """b**n for an integer n != 0 by repeated squaring: numpy's power takes ~20 ns per element
    for exponents other than 2, -1 and 1/2, a product ~1 ns (error: a few ulps, like pow's
    one ulp well inside what the float64 noise model of an integrand measures)."""
    if n < 0:
        return 1.0 / _ipow(b, -n)
    r = None
    while True:
        if n & 1:
            r = b if r is None else r * b
        n >>= 1
        if not n:
            return r
        b = b * b


def _heaviside(x, h0=0.5):
    """numpy translation of sympy's Heaviside (H(0) = 1/2)."""
    return np.heaviside(x, h0)


_NUMPY_MODULE_CACHE: dict = {}


def _numpy_module() -> dict:
    """numpy translations for lambdify (scipy.special for the special functions; imported here,
    on the first lambdify, not with this module)."""
    if not _NUMPY_MODULE_CACHE:
        import scipy.special

        _NUMPY_MODULE_CACHE.update({
            "erf": scipy.special.erf,
            "erfc": scipy.special.erfc,
            "Heaviside": _heaviside,
            "sign": np.sign,
            "_ipow": _ipow,
        })
    return _NUMPY_MODULE_CACHE


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


def _as_expr(value) -> sp.Expr:
    _need_sympy()
    try:
        return sp.sympify(value)
    except (sp.SympifyError, TypeError, ValueError) as exc:  # pragma: no cover - defensive
        raise ActivationParseError(f"cannot interpret parameter value {value!r}") from exc


def _strip_delta(expr: sp.Expr) -> sp.Expr:
    """Replace DiracDelta terms by 0: derivatives almost everywhere."""
    _need_sympy()
    if expr.has(sp.DiracDelta):
        expr = expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
    return expr


#: Activations built from formula strings, by (text, parameters): the 256 most recent.
_FORMULA_CACHE: dict = {}


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
    are dropped, and the jumps of φ' at each breakpoint are kept in :attr:`derivative_jumps`, so
    that distributional expectations (``E[φ φ'']``) can add the point masses back.

    Examples
    --------
    >>> import critheory as ct
    >>> act = ct.Activation.get("tanh(a*x) + x/10", {"a": 1.5})
    >>> act.expr, act.parity
    (x/10 + tanh(1.5*x), 'odd')
    """

    def __init__(self, expr: sp.Expr, name: str | None = None, *, _validate: bool = True):
        _need_sympy()
        if not isinstance(expr, sp.Basic):
            raise ActivationParseError(f"not a sympy expression: {expr!r}")
        expr = sp.sympify(expr)
        # arg of a real argument is the step π·H(−u) (arg(0) = 0): written as such, it is
        # judged by the rules for steps (discontinuous: refused for φ'), not differentiated
        # to 0 and read as a constant
        if expr.has(sp.arg):
            expr = expr.replace(sp.arg, lambda u: sp.pi * sp.Heaviside(-u, 0))
        free = expr.free_symbols - {X}
        # allow a plain (non-real) x from user code
        for s in list(free):
            if s.name == "x":
                expr = expr.subs(s, X)
        free = expr.free_symbols - {X}
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
    def _from_zoo_cache(cls, entry, name: str) -> "Activation":
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
        if not isinstance(text, str) or not text.strip():
            raise ActivationParseError("empty activation expression")
        # compatibility forms (fullwidth letters, ligatures, superscripts) as plain ASCII
        text = unicodedata.normalize("NFKC", text)
        params = dict(params or {})
        _check_formula_tokens(text, allowed=params)
        _need_sympy()
        from sympy.parsing.sympy_parser import parse_expr, standard_transformations

        local = {"x": X}
        for key in params:
            if not isinstance(key, str) or not key.isidentifier() or key == "x":
                raise InvalidArgumentError(f"invalid parameter name {key!r}")
            if key in _RESERVED_NAMES:
                raise InvalidArgumentError(
                    f"parameter name {key!r} is reserved (a constant or function of formulas); "
                    "choose another name")
            local[key] = sp.Symbol(key, real=True)
        _check_function_names(text, allowed=params)
        # zoo activations as functions (gelu(x), sigmoid(1.702*x)), and a few friendly aliases
        for key, fn in _zoo_functions(tuple(sorted(params))).items():
            local.setdefault(key, fn)
        local.setdefault("relu", lambda u: sp.Max(0, u))
        local.setdefault("step", sp.Heaviside)
        local.setdefault("pi", sp.pi)
        local.setdefault("e", sp.E)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # unevaluated first: integer towers and factorials are bounded before sympy
                # computes them exactly (9**9**9 has 369 million digits)
                raw = parse_expr(text, local_dict=local,
                                 transformations=standard_transformations, evaluate=False)
                _check_constants(raw, text)
                expr = parse_expr(text, local_dict=local, transformations=standard_transformations,
                                  evaluate=True)
        except CritheoryError:
            raise
        except Exception as exc:  # SyntaxError, TokenError, TypeError, AttributeError...
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ActivationParseError(f"cannot parse activation {text!r}: {msg}") from None
        if not isinstance(expr, sp.Expr):
            raise ActivationParseError(f"activation {text!r} is not an expression in x")
        return cls.from_expr(expr, params, name=name or text.strip())

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
            subs[names[key]] = _as_expr(value)
        if subs:
            expr = expr.subs(subs)
        if name is None:
            name = str(expr)
        return cls(expr, name)

    # ------------------------------------------------------------------ dunder
    def __repr__(self) -> str:
        return f"Activation({self.name!r}: {self.expr_text})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Activation) and self.expr == other.expr

    def __hash__(self) -> int:
        return hash(("Activation", self.expr))

    # ------------------------------------------------------------------ symbolic
    def derivative(self, n: int = 1) -> sp.Expr:
        """φ^{(n)} as a sympy expression, almost everywhere (no DiracDelta terms)."""
        if n < 0:
            raise InvalidArgumentError("derivative order must be >= 0")
        return self._derivatives(n)[n]

    def _derivatives(self, n: int) -> list:
        _need_sympy()
        cache = self.__dict__.setdefault("_dcache", [self.expr])
        while len(cache) <= n:
            d = _strip_delta(sp.diff(cache[-1], X))
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
            for atom in e.atoms(*_NONSMOOTH):
                for g in _switch_functions(atom):
                    pts.update(_real_zeros(g, self))
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
        try:
            vals = []
            for p in range(5):
                d = self.derivative(p)
                v = d.subs(X, 0)
                if v.has(sp.nan, sp.zoo) or not v.is_finite:
                    v = sp.limit(d, X, 0)
                v = sp.nsimplify(sp.simplify(v)) if v.is_number and not v.is_Rational else sp.simplify(v)
                vals.append(v)
        except Exception as exc:  # pragma: no cover - sympy failure
            return TaylorInfo(None, f"sympy could not expand phi at 0 ({exc})")
        return TaylorInfo(tuple(vals))

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
        return (_growth(self.mpmath_func(0), -1), _growth(self.mpmath_func(0), +1))

    # ------------------------------------------------------------------ numeric
    def _lambdify(self, expr: sp.Expr) -> Callable:
        return _wrap_numpy(_np_lambdify(expr),
                           lambda: sp.lambdify(X, expr, modules=["mpmath"]))

    def numpy_func(self, n: int = 0) -> Callable[[np.ndarray], np.ndarray]:
        """Vectorized float64 evaluator of φ^{(n)} (almost everywhere)."""
        cache = self.__dict__.setdefault("_npcache", {})
        if n not in cache:
            z = self.__dict__.get("_zoo")
            srcs = z.data["functions"].get(n) if z is not None else None
            if srcs is not None:
                label = f"d{n}phi"
                cache[n] = _wrap_numpy(z.function(srcs["np"], label),
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
                fn = _mp_lambdify(self.derivative(n))

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
        try:
            bps = self.breakpoints
        except ActivationError:
            raise
        except Exception as exc:
            raise ActivationError(f"cannot analyse activation {self.name}: {exc}") from None
        _check_domain(self, bps)
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


# ---------------------------------------------------------------------- helpers
def _wrap_numpy(fn: Callable, mp_factory: Callable[[], Callable]) -> Callable:
    """The float64 evaluator around a lambdified numpy function ``fn``: float64 results, and
    non-finite values where the argument is finite repaired in extended, then arbitrary
    precision (``mp_factory()`` gives the plain mpmath lambdification, made on first need)."""
    mp_fn: list = []
    # per side: (|x| beyond which the value itself overflows float64, its ±inf), found
    # by _mp_repair
    overflow_at = {-1: (math.inf, math.inf), 1: (math.inf, math.inf)}

    def f(x, _fn=fn):
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            y = _fn(x)
        y = np.broadcast_to(np.asarray(y, dtype=float), x.shape) if np.ndim(y) < np.ndim(x) \
            else np.asarray(y, dtype=float)
        if np.isfinite(np.add.reduce(y, axis=None)):
            # one pass: the sum is finite only if every value is (a sum that overflows
            # merely takes the checks below)
            return y
        fin = np.isfinite(y)
        bad = ~fin & np.isfinite(x)
        if bad.any() and y.ndim:
            # first retry in extended precision (exp overflows at 11356 instead of 709)
            with np.errstate(all="ignore"):
                try:
                    yl = np.asarray(_fn(x[bad].astype(np.longdouble)), dtype=float)
                except TypeError:
                    yl = np.full(int(bad.sum()), np.nan)
            y = np.array(y, dtype=float, copy=True)
            y[bad] = np.broadcast_to(yl, y[bad].shape)
            bad = ~np.isfinite(y) & np.isfinite(x)
        if bad.any():
            # float64 overflow in an intermediate (e.g. exp(-x)/(1 + exp(-x))**2 at x = -1e3):
            # re-evaluate those entries in arbitrary precision, where the result is finite
            if not mp_fn:
                mp_fn.append(mp_factory())
            y = np.array(y, dtype=float, copy=True)
            _mp_repair(mp_fn[0], x, y, bad, overflow_at)
        return y

    return f


def _from_srepr(text: str):
    """A sympy expression from its ``srepr`` (the zoo cache stores expressions so)."""
    _need_sympy()
    return sp.sympify(text)


_BUILTIN_NAMES = frozenset(dir(builtins)) - {"abs", "pow", "min", "max", "True", "False"}
_FORBIDDEN_OPS = frozenset({".", ";", "=", ":", ":=", "[", "]", "{", "}", "@", "->", "\\"})


#: names a parameter may not take: constants and the variable of formulas
_RESERVED_NAMES = frozenset({"x", "pi", "e", "E", "I", "oo", "zoo", "nan", "S", "N", "relu",
                             "step"})
#: sympy functions that may be called in a formula besides the zoo names: the elementary and
#: special functions (sympy Function classes); operations (expand, integrate, Sum, ...) and
#: the combinatorial functions of huge integers are not among them
_BLOCKED_FUNCTIONS = frozenset({"factorial2", "subfactorial", "binomial", "RisingFactorial",
                                "FallingFactorial", "rf", "ff", "fibonacci", "lucas", "bell",
                                "bernoulli", "catalan", "euler", "harmonic", "partition",
                                "primepi", "prime", "totient", "mobius", "divisor_sigma",
                                "Function", "Lambda", "Derivative", "Integral", "Subs",
                                "DiracDelta", "Sum", "Product", "Limit", "Order"})
#: callables of formulas that are not sympy Function classes: pieces, conditions, numbers
_ALSO_CALLABLE = frozenset({"Piecewise", "Max", "Min", "sqrt", "root", "cbrt", "Abs", "And",
                            "Or", "Not", "Xor", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Rational",
                            "Integer", "Float", "S"})
#: magnitude (decimal digits) of a constant in a formula beyond which it is refused: float64
#: holds 308 digits, so anything larger ends as inf or 0 anyway
_MAX_CONSTANT_DIGITS = 400


def _callable_names() -> frozenset:
    import sympy

    out = set()
    for k in dir(sympy):
        v = getattr(sympy, k)
        if k.startswith("_") or k in _BLOCKED_FUNCTIONS:
            continue
        if isinstance(v, type) and issubclass(v, sympy.Function) or k in _ALSO_CALLABLE:
            out.add(k)
    return frozenset(out)


_CALLABLE: list = []


def _check_function_names(text: str, allowed=()) -> None:
    """Every name called in a formula must be a function: a sympy elementary/special function,
    a zoo activation, ``relu``/``step``; anything else (``foo(x)``, ``expand(...)``) is a
    one-line error naming it rather than an undefined function or a symbolic operation."""
    import io
    import tokenize

    from critheory.activation import zoo

    if not _CALLABLE:
        _CALLABLE.append(_callable_names() | set(zoo.ZOO) | {"relu", "step"})
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
              if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    for a, b in zip(tokens[:-1], tokens[1:]):
        if a.type == tokenize.NAME and b.type == tokenize.OP and b.string == "(":
            if a.string in allowed:
                raise ActivationParseError(
                    f"cannot parse activation {text!r}: parameter {a.string!r} is called as a "
                    "function")
            if a.string not in _CALLABLE[0]:
                raise ActivationParseError(
                    f"cannot parse activation {text!r}: unknown function {a.string!r} (zoo "
                    "names, relu, step and sympy's elementary and special functions are known)")


def _zoo_functions(user_params: tuple) -> dict:
    """Each zoo activation (other than names sympy already defines identically: tanh, erf,
    sin, cos, abs) as a function of its argument, ``gelu(u) = u(1 + erf(u/√2))/2``, with the
    zoo's default parameters except those the user gives as parameters (``--param beta=2``
    with ``swish(x)``)."""
    key = user_params
    if key not in _ZOO_FUNCS:
        from sympy.parsing.sympy_parser import parse_expr, standard_transformations

        from critheory.activation import zoo

        u = sp.Dummy("u", real=True)
        out = {}
        for name, (formula, defaults) in zoo.ZOO.items():
            if name in ("tanh", "erf", "sin", "cos", "abs"):
                continue
            loc = {"x": X}
            loc.update({k: sp.Symbol(k, real=True) for k in defaults})
            e = parse_expr(formula, local_dict=loc, transformations=standard_transformations)
            vals = {sp.Symbol(k, real=True): v for k, v in zoo._defaults(name).items()
                    if k not in user_params}
            e = e.subs(vals).subs(X, u)
            out[name] = sp.Lambda(u, e)
        if len(_ZOO_FUNCS) > 32:
            _ZOO_FUNCS.clear()
        _ZOO_FUNCS[key] = out
    return _ZOO_FUNCS[key]


_ZOO_FUNCS: dict = {}


def _check_constants(raw, text: str) -> None:
    """Refuse integer towers and factorials whose value has more than
    :data:`_MAX_CONSTANT_DIGITS` digits, read off the *unevaluated* formula (evaluating
    ``2**2**2**2**2`` or ``factorial(10**6)`` exactly takes minutes and ends in Python's
    integer-string limit): every constant power and factorial is estimated in log10 by
    mpmath first."""
    import mpmath

    def log10_abs(e):
        """log10 |e| of a constant subtree (None: depends on x or not a plain number)."""
        if e.free_symbols:
            return None
        if e.is_Integer or e.is_Float or e.is_Rational:
            v = abs(e)
            return -math.inf if v == 0 else float(mpmath.log10(mpmath.mpf(sp.Rational(v).p))
                                                  - mpmath.log10(sp.Rational(v).q))
        if isinstance(e, sp.Pow):
            lb = log10_abs(e.base)
            if lb is None:
                return None
            ex = _const_value(e.exp)
            if ex is None:
                return None
            return lb * ex
        if isinstance(e, sp.factorial):
            n = _const_value(e.args[0])
            if n is None:
                return None
            n = max(float(n), 1.0)
            return float(mpmath.loggamma(n + 1) / mpmath.log(10))
        if isinstance(e, sp.Mul):
            parts = [log10_abs(a) for a in e.args]
            return None if any(p is None for p in parts) else sum(parts)
        if isinstance(e, sp.Add):
            parts = [log10_abs(a) for a in e.args]
            return None if any(p is None for p in parts) else max(parts) + 1
        return None

    def _const_value(e):
        lg = log10_abs(e)
        if lg is None:
            return None
        if lg > _MAX_CONSTANT_DIGITS:
            raise ActivationParseError(
                f"cannot parse activation {text!r}: the constant {_short(e)} has about 10^"
                f"{math.log10(lg):.0f} digits (at most {_MAX_CONSTANT_DIGITS} digits in a formula)")
        try:
            return float(sp.N(e, 20)) if e.free_symbols == set() else None
        except (TypeError, ValueError, OverflowError):
            return None

    for node in sp.preorder_traversal(raw):
        if isinstance(node, (sp.Pow, sp.factorial)) and not node.free_symbols:
            lg = log10_abs(node)
            if lg is not None and lg > _MAX_CONSTANT_DIGITS:
                raise ActivationParseError(
                    f"cannot parse activation {text!r}: the constant {_short(node)} has about "
                    f"{lg:.3g} digits (at most {_MAX_CONSTANT_DIGITS} in a formula)")


def _short(e) -> str:
    t = str(e)
    return t if len(t) <= 40 else t[:37] + "..."


def _check_formula_tokens(text: str, allowed=()) -> None:
    """Reject formulas that are not plain arithmetic expressions before ``parse_expr`` ``eval``s
    them: attribute access, dunder and Python builtin names, keywords, strings, statements.

    ``parse_expr`` evaluates its input as Python code; without this check
    ``"__import__('os').system(...)"`` given as an activation (on the command line, say) runs.
    """
    import io
    import keyword
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise ActivationParseError(f"cannot parse activation {text!r}: {msg}") from None
    for tok in tokens:
        bad = None
        if tok.type == tokenize.NAME:
            if tok.string in allowed:
                continue
            if tok.string.startswith("_") or tok.string in _BUILTIN_NAMES:
                bad = f"name {tok.string!r}"
            elif keyword.iskeyword(tok.string) and tok.string not in ("True", "False"):
                bad = f"keyword {tok.string!r}"
        elif tok.type == tokenize.STRING:
            bad = "a string literal"
        elif tok.type == tokenize.OP and tok.string in _FORBIDDEN_OPS:
            bad = f"{tok.string!r}"
        elif tok.type == tokenize.ERRORTOKEN and tok.string.strip():
            bad = f"{tok.string!r}"
        if bad:
            raise ActivationParseError(
                f"cannot parse activation {text!r}: {bad} is not allowed in a formula in x")


def _mp_lambdify(expr: sp.Expr) -> Callable:
    """mpmath lambdify, with common-subexpression elimination unless the expression has a
    Piecewise (whose branches are evaluated lazily: a hoisted subexpression could be evaluated
    where its branch is undefined). CSE makes the references 2-4x faster for the derivative
    integrands of mish, gelu_tanh, swish (φφ'' of mish: 400 -> 110 µs per evaluation)."""
    _need_sympy()
    if not expr.has(sp.Piecewise):
        try:
            return sp.lambdify(X, expr, modules=["mpmath"], cse=True)
        except Exception:  # pragma: no cover - sympy CSE failure
            pass
    return sp.lambdify(X, expr, modules=["mpmath"])


def _np_lambdify(expr: sp.Expr) -> Callable:
    """numpy lambdify with common-subexpression elimination.

    Derivative integrands (φ'², φφ'', hφφ') repeat large subexpressions — φφ'' of mish or
    gelu_tanh is 3-4x faster to evaluate with CSE, and the quadrature spends most of its time
    there. Falls back to the plain translation if sympy's CSE fails on an expression.

    ``exp(u) - 1`` and ``log(1 + u)`` are rewritten to ``expm1``/``log1p`` first: float64
    ``exp(x) - 1`` has relative error eps/|x| near 0, which made E[elu(h)²] at K = 1e-30 fail to
    converge (every node on the negative side was off by ~10%).
    """
    _need_sympy()
    numpy_module = _numpy_module()
    modules = [numpy_module, "numpy", "scipy"]
    try:
        from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

        # the rewrite factors polynomials and can run for minutes on a large derivative: under
        # the symbolic budget, else evaluated as written (accurate except near exp(u) ≈ 1)
        done, opt = within(lambda: optimize(expr, [expm1_opt, log1p_opt]))
        if done:
            expr = opt
    except Exception:  # pragma: no cover - rewriting failure: evaluate as written
        pass
    printer = _int_pow_printer()({"fully_qualified_modules": False, "inline": True,
                                  "allow_unknown_functions": True,
                                  "user_functions": {k: k for k in numpy_module}})
    try:
        return sp.lambdify(X, expr, modules=modules, printer=printer, cse=True)
    except Exception:  # pragma: no cover - sympy CSE failure
        return sp.lambdify(X, expr, modules=modules, printer=printer)


_PRINTER: list = []


def _int_pow_printer() -> type:
    """The class ``_IntPowPrinter``: lambdify's numpy/scipy printer, with integer powers other
    than 2 and -1 as ``_ipow`` (repeated squaring): φ⁴, (1 + |x|)^-4, tanh(u)^3 ... 5-20x faster
    to evaluate. Created on first use (it subclasses a sympy printer)."""
    if not _PRINTER:
        from sympy.printing.numpy import SciPyPrinter

        class _IntPowPrinter(SciPyPrinter):
            def _print_Pow(self, expr, rational=False):
                e = expr.exp
                if e.is_Integer and abs(int(e)) <= 64 and int(e) not in (0, 1, 2, -1):
                    return f"_ipow({self._print(expr.base)}, {int(e)})"
                return super()._print_Pow(expr, rational=rational)

        _IntPowPrinter.__doc__ = _int_pow_printer.__doc__
        _PRINTER.append(_IntPowPrinter)
    return _PRINTER[0]


def _switch_functions(atom) -> list:
    """Expressions whose real zeros are the switching points of a non-smooth atom."""
    _need_sympy()
    if isinstance(atom, (sp.Max, sp.Min)):
        args = atom.args
        return [args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args))]
    if isinstance(atom, (sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta)):
        return [atom.args[0]]
    if isinstance(atom, sp.Piecewise):
        out = []
        for _, cond in atom.args:
            for rel in cond.atoms(sp.core.relational.Relational):
                out.append(rel.lhs - rel.rhs)
        return out
    return []


def _real_zeros(g: sp.Expr, act: "Activation") -> list[float]:
    _need_sympy()
    g = sp.sympify(g)
    if not g.has(X):
        return []
    try:
        # solveset of a transcendental switch (10x = cos(10⁴x² − 10⁴x)) can run for minutes:
        # under the symbolic budget, then the numeric scan below
        done, sol = within(lambda: sp.solveset(sp.Eq(g, 0), X, domain=sp.S.Reals))
        if not done:
            sol = None
    except Exception:
        sol = None
    if isinstance(sol, sp.FiniteSet):
        out = []
        for s in sol:
            v = complex(sp.N(s, 30))
            if abs(v.imag) < 1e-14 and math.isfinite(v.real):
                out.append(float(v.real))
        return out
    if sol is not None and sol == sp.S.EmptySet:
        return []
    # numeric fallback: sign changes on a grid, refined by bisection
    fn = sp.lambdify(X, g, modules=["mpmath"])
    grid = np.concatenate([-np.logspace(3, -3, 400), [0.0], np.logspace(-3, 3, 400)])
    out = []
    with mpmath.workdps(30):
        vals = []
        for t in grid:
            try:
                vals.append(float(mpmath.re(fn(mpmath.mpf(t)))))
            except Exception:
                vals.append(float("nan"))
        for i in range(len(grid) - 1):
            a, b = vals[i], vals[i + 1]
            if a == 0.0:
                # a zero of g, or a point of an interval on which g vanishes (Abs(x) - x on
                # x >= 0): there only the ends of the interval switch a branch
                left = vals[i - 1] if i else float("nan")
                if not (left == 0.0 and b == 0.0):
                    out.append(float(grid[i]))
            elif a * b < 0:
                try:
                    r = mpmath.findroot(lambda t: fn(t), (grid[i], grid[i + 1]), solver="bisect")
                    out.append(float(r))
                except Exception:
                    raise ActivationError(
                        f"cannot locate the breakpoints of activation {act.name}") from None
    return out


def _check_domain(act: Activation, bps: Sequence[float]) -> None:
    """Raise DomainError if φ is undefined, infinite or complex somewhere on the real line."""
    _need_sympy()
    expr = act.expr
    # symbolic: sympy's continuous domain over the reals
    try:
        from sympy.calculus.util import continuous_domain

        dom = continuous_domain(expr, X, sp.S.Reals)
        if dom != sp.S.Reals:
            missing = sp.Complement(sp.S.Reals, dom)
            # discontinuities of step-like functions (Heaviside, sign, Piecewise) are allowed
            if not (expr.has(sp.Heaviside, sp.sign, sp.Piecewise) and missing.is_FiniteSet):
                raise DomainError(
                    f"activation {act.name} is not defined (or not real) on all of the real line:"
                    f" it fails on {missing}")
    except DomainError:
        raise
    except Exception:
        pass
    # numeric: real and finite on a dense grid, at breakpoints and at 0
    f = act.mpmath_func(0)
    grid = np.concatenate([np.linspace(-30, 30, 241), np.array(bps, dtype=float),
                           [0.0, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 100.0, -100.0]])
    # a value beyond every exponent (exp(exp(exp(30))): mpmath works on 10^(4e12) digits)
    # is evaluated under a wall-clock budget and refused when it runs out
    try:
        done, _ = within(lambda: _check_values(act, f, grid), _DOMAIN_SECONDS)
    except MemoryError:
        done = False   # mpmath shifting a mantissa by 10^12 bits (exp(exp(exp(-2 - x))))
    if not done:
        raise GrowthError(
            f"activation {act.name} cannot be evaluated on |x| <= 100 within "
            f"{_DOMAIN_SECONDS:g} s: its values lie beyond any floating-point range (nested "
            "exponentials); its Gaussian expectations do not exist in float64")


#: seconds for evaluating an activation on the domain-check grid
_DOMAIN_SECONDS = 3.0


def _check_values(act, f, grid) -> None:
    with mpmath.workdps(30):
        for t in grid:
            try:
                v = f(mpmath.mpf(float(t)))
            except (ZeroDivisionError, ValueError, TypeError, OverflowError):
                raise DomainError(f"activation {act.name} is undefined at x = {t:g}") from None
            if isinstance(v, mpmath.mpc):
                if abs(v.imag) > 0:
                    raise DomainError(f"activation {act.name} is complex at x = {t:g}")
                v = v.real
            if not mpmath.isfinite(v):
                raise DomainError(f"activation {act.name} is not finite at x = {t:g}")


_FLOAT_MAX: list = []


def _mp_repair(mp_fn: Callable, x: np.ndarray, y: np.ndarray, bad: np.ndarray,
               overflow_at: dict) -> None:
    """Fill the non-finite entries ``y[bad]`` with arbitrary-precision values of φ at ``x[bad]``.

    Entries are visited from small to large ``|x|`` on each side. Once the value itself exceeds
    the float64 range at some ``|x0|`` (a genuine overflow, e.g. ``exp(x)`` at ``x = 1e5``, not a
    cancelling intermediate), every entry further out on that side is set to that ``±inf``
    without evaluation, and ``overflow_at[side] = (|x0|, ±inf)`` is remembered for later calls:
    an expectation at huge variance can put millions of nodes there, at ~50 µs per mpmath
    evaluation.
    """
    if y.ndim == 0:
        y1, x1 = y.reshape(1), np.asarray(x, dtype=float).reshape(1)
        _mp_repair(mp_fn, x1, y1, np.asarray(bad).reshape(1), overflow_at)
        y[()] = y1[0]
        return
    flat = np.flatnonzero(bad)
    xs = x.ravel()[flat]
    yv = y.reshape(-1)  # a view: y is a fresh contiguous array
    side_of = np.where(xs >= 0, 1, -1)
    far = np.abs(xs) >= np.where(side_of > 0, overflow_at[1][0], overflow_at[-1][0])
    yv[flat[far]] = np.where(side_of[far] > 0, overflow_at[1][1], overflow_at[-1][1])
    order = np.argsort(np.abs(xs), kind="stable")
    if not _FLOAT_MAX:
        _FLOAT_MAX.append(mpmath.mpf(np.finfo(float).max))
    float_max = _FLOAT_MAX[0]
    with mpmath.workdps(30):
        for k in order[~far[order]]:
            xv, side = float(xs[k]), int(side_of[k])
            x0, beyond = overflow_at[side]
            if abs(xv) >= x0:  # found earlier in this loop
                yv[flat[k]] = beyond
                continue
            try:
                v = mp_fn(mpmath.mpf(xv))
                if abs(mpmath.im(v)) != 0:
                    yv[flat[k]] = np.nan
                    continue
                v = mpmath.re(v)
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                continue
            if mpmath.isnan(v):
                yv[flat[k]] = np.nan
            elif mpmath.isfinite(v) and abs(v) <= float_max:
                yv[flat[k]] = float(v)
            else:
                yv[flat[k]] = math.copysign(math.inf, float(mpmath.sign(v)))
                overflow_at[side] = (abs(xv), yv[flat[k]])


def _growth(f, sign: int) -> float:
    """Exponential rate α of |φ| at sign·∞; GrowthError if log|φ| grows like x²."""
    with mpmath.workdps(30):
        xs = [mpmath.mpf(200), mpmath.mpf(400), mpmath.mpf(10) ** 4]
        logs = []
        for x in xs:
            try:
                v = abs(f(sign * x))
            except Exception:
                raise DomainError(f"activation cannot be evaluated at x = {sign * float(x):g}") from None
            if not mpmath.isfinite(v):
                raise GrowthError(
                    f"activation is infinite at x = {sign * float(x):g}: it grows too fast for"
                    " Gaussian expectations")
            logs.append(float(mpmath.log(v)) if v > 0 else -math.inf)
        if logs[2] > 0 and logs[2] / float(xs[2]) ** 2 > 1e-3:
            raise GrowthError(
                "activation grows like exp(c*x**2) or faster: its Gaussian expectations do not"
                " exist for all variances")
        if not math.isfinite(logs[0]) or not math.isfinite(logs[1]):
            return 0.0
        rate = (logs[1] - logs[0]) / 200.0
        # polynomial growth gives p*log(2)/200: not exponential
        return rate if rate > 0.05 else 0.0
