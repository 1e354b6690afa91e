"""float64 arithmetic with an unbounded exponent, vectorized: the repair of float64 overflows.

A lambdified integrand can overflow float64 in an intermediate although its value is an
ordinary number: ``exp(114.2 x) / (exp(57.1 x) + c)**4`` at ``x = 100`` is ``inf / inf``, while
the value is 3260.41. :class:`Wide` holds each number as a float64 mantissa ``m`` (``0.5 <= |m| <
1``, or 0) and a separate exponent ``e`` (an integer stored as float64), ``m·2**e``, so that the
same lambdified code, re-run on :class:`Wide` numbers by :func:`evaluate`, computes such values
for whole arrays at once (the alternative, one mpmath evaluation per entry at ~50-100 µs, took
minutes for the millions of quadrature nodes of a fixed-point scan: issue 31).

Every operation returns **exactly the float64 result** wherever float64 gives a normal finite
number (the operands are then ordinary floats and the float64 operation is used), and otherwise
the same correctly rounded mantissa with the exponent kept apart: +, -, ×, / and integer powers
round once, like float64; ``exp`` reduces its argument in extended precision (relative error
≲ |u|·2⁻⁶⁴ besides the one rounding of ``exp`` on [-ln2/2, ln2/2], below the |u|·2⁻⁵³ that the
rounding of its argument u already carries). A function this module does not know is applied
to float64 arguments where they are representable and gives NaN where they are not (an
argument beyond the float64 range or below its normal range, ``sin(exp(1000))``): those entries,
and every other NaN, are left to the caller's arbitrary-precision repair.

Examples
--------
>>> import numpy as np
>>> x = np.array([100.0, 1000.0])
>>> f = lambda x: exp(2 * x) / (exp(x) + 1) ** 2      # inf / inf in float64
>>> evaluate(f, x, {"exp": np.exp}).round(12).tolist()
[1.0, 1.0]
"""
from __future__ import annotations

import math
import types
from typing import Callable, Mapping

import numpy as np

__all__ = ["Wide", "evaluate", "FUNCTIONS", "as_float"]

_TINY = np.finfo(float).tiny
_HUGE = np.finfo(float).max
#: |exponent| up to which the float64 exponent field holds every integer exactly
_EMAX = 2.0 ** 52
_LN2 = np.log(np.longdouble(2))


def _normal(v: np.ndarray) -> np.ndarray:
    """Entries that are exact float64 numbers: finite and zero or of normal magnitude."""
    a = np.abs(v)
    return np.isfinite(v) & ((a >= _TINY) | (a == 0))


class Wide:
    """Numbers ``m·2**e`` (arrays): float64 mantissas with an exponent of their own.

    Build one with ``Wide.of(array)``; convert back with :meth:`float` (rounding to float64,
    ±inf beyond its range, subnormals and 0 below it, NaN where the exponent is undefined).
    """

    __slots__ = ("m", "e")
    __array_ufunc__ = None          # ndarray (op) Wide defers to Wide's reflected operators

    def __init__(self, m, e):
        m, e = np.broadcast_arrays(np.asarray(m, dtype=float), np.asarray(e, dtype=float))
        fm, de = np.frexp(m)
        e = np.where(m == 0, 0.0, e + de)
        bad = ~np.isfinite(m) | ~(np.abs(e) <= _EMAX)
        self.m = np.where(bad, np.nan, fm)
        self.e = np.where(bad, 0.0, e)

    @classmethod
    def of(cls, v) -> "Wide":
        """``v`` (a number, an array or a Wide) as a Wide."""
        if isinstance(v, Wide):
            return v
        return cls(np.asarray(v, dtype=float), 0.0)

    def float(self) -> np.ndarray:
        """The float64 values (rounded once; ±inf or 0 beyond the range)."""
        with np.errstate(all="ignore"):
            return np.ldexp(self.m, np.clip(self.e, -2200, 2200).astype(np.int64))

    def _plain(self):
        """(float64 values, mask of the entries those represent exactly)."""
        v = self.float()
        return v, _normal(v) & ~np.isnan(self.m)

    # ------------------------------------------------------------------ arithmetic
    @staticmethod
    def _both(a, b, fop, wop):
        a, b = Wide.of(a), Wide.of(b)
        va, oka = a._plain()
        vb, okb = b._plain()
        with np.errstate(all="ignore"):
            r = fop(va, vb)
        ok = oka & okb & _normal(r) & (r != 0)
        if ok.all():
            return Wide.of(r)
        w = wop(a, b)
        return Wide(np.where(ok, r, w.m), np.where(ok, 0.0, w.e))

    def __add__(self, o):
        def wop(a, b):
            za, zb = a.m == 0, b.m == 0
            top = np.where(za, b.e, np.where(zb, a.e, np.maximum(a.e, b.e)))
            with np.errstate(all="ignore"):
                s = (np.where(za, 0.0, a.m * np.exp2(np.minimum(a.e - top, 0)))
                     + np.where(zb, 0.0, b.m * np.exp2(np.minimum(b.e - top, 0))))
            return Wide(s, top)

        return Wide._both(self, o, np.add, wop)

    __radd__ = __add__

    def __neg__(self):
        w = Wide.__new__(Wide)
        w.m, w.e = -self.m, self.e
        return w

    def __pos__(self):
        return self

    def __sub__(self, o):
        return self + (-Wide.of(o))

    def __rsub__(self, o):
        return Wide.of(o) + (-self)

    def __mul__(self, o):
        return Wide._both(self, o, np.multiply,
                          lambda a, b: Wide(a.m * b.m, a.e + b.e))

    __rmul__ = __mul__

    def __truediv__(self, o):
        def wop(a, b):
            with np.errstate(all="ignore"):
                return Wide(a.m / b.m, a.e - b.e)

        return Wide._both(self, o, np.divide, wop)

    def __rtruediv__(self, o):
        return Wide.of(o) / self

    def __abs__(self):
        w = Wide.__new__(Wide)
        w.m, w.e = np.abs(self.m), self.e
        return w

    def __pow__(self, p):
        if isinstance(p, Wide):
            pv, okp = p._plain()
            if not okp.all():
                return exp(p * log(self))
            p = pv
        p = np.asarray(p, dtype=float)
        v, ok = self._plain()
        with np.errstate(all="ignore"):
            r = np.power(v, p)
        ok = ok & _normal(r) & (r != 0)
        if ok.all():
            return Wide.of(r)
        integral = (p == np.round(p)) & (np.abs(p) <= 64)
        with np.errstate(all="ignore"):
            wi = Wide(np.power(self.m, np.where(integral, p, 1.0)),
                      self.e * np.where(integral, p, 1.0))
            # other exponents: exp(p log b) for b > 0 (NaN for b < 0, as in float64)
            wr = exp(Wide.of(p) * log(self)) if not integral.all() else wi
        w = Wide(np.where(integral, wi.m, wr.m), np.where(integral, wi.e, wr.e))
        return Wide(np.where(ok, r, w.m), np.where(ok, 0.0, w.e))

    def __rpow__(self, b):
        return Wide.of(b) ** self

    # ------------------------------------------------------------------ comparisons
    def _sign_of_difference(self, o) -> np.ndarray:
        return np.sign((self - o).m)

    def __lt__(self, o):
        return self._sign_of_difference(o) < 0

    def __le__(self, o):
        return self._sign_of_difference(o) <= 0

    def __gt__(self, o):
        return self._sign_of_difference(o) > 0

    def __ge__(self, o):
        return self._sign_of_difference(o) >= 0

    def __eq__(self, o):
        return self._sign_of_difference(o) == 0

    def __ne__(self, o):
        return ~(self == o)

    __hash__ = None


# ---------------------------------------------------------------------- functions
#: ln 2 as an integer over 2**_LN2_BITS (the reduction of exp's argument is done exactly)
_LN2_BITS = 256
_LN2_INT = int("b17217f7d1cf79abc9e3b39803f2f6af40f343267298b62d8a0d175b8baafa2be", 16) >> (
    260 - _LN2_BITS)


def _reduce(v: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``v − k ln2`` for float64 ``v`` and integer-valued ``k``, correctly rounded: exact
    integer arithmetic on ``v`` (an exact binary fraction) and ln 2 to 256 bits. The long-double
    reduction it replaces lost |v|·2⁻⁶⁴ (1e-9 relative in exp(2e10)), which an integrand such
    as ``exp(2x)/(exp(x) + 1)**2`` at x = 1e10 turned into an error of 1e-9 in a value of 1."""
    out = np.empty(v.shape)
    for i, (vi, ki) in enumerate(zip(v.tolist(), k.tolist())):
        n, d = vi.as_integer_ratio()          # d a power of two
        num = (n << _LN2_BITS) - int(ki) * _LN2_INT * d
        out[i] = num / (d << _LN2_BITS)       # int / int: correctly rounded
    return out


def exp(u) -> Wide:
    """e**u: float64's ``exp`` where that is normal, else 2**k·exp(r), u = k ln2 + r with r
    computed exactly (:func:`_reduce`)."""
    u = Wide.of(u)
    v, ok = u._plain()
    with np.errstate(all="ignore"):
        r = np.exp(v)
        good = ok & _normal(r) & (r != 0)
        k = np.rint(v / float(_LN2))
        need = ok & ~good & (np.abs(k) <= _EMAX)
        red = np.full(np.shape(v), np.nan)
        if np.any(need):
            red[need] = _reduce(np.asarray(v)[need], k[need])
        w = Wide(np.where(need, np.exp(red), np.nan), np.where(ok, k, 0.0))
    return Wide(np.where(good, r, w.m), np.where(good, 0.0, w.e))


def log(x) -> Wide:
    """Natural logarithm: float64's where x is a normal float, else log(m) + e·ln2."""
    x = Wide.of(x)
    v, ok = x._plain()
    with np.errstate(all="ignore"):
        r = np.log(v)
        big = np.asarray(np.log(x.m).astype(np.longdouble) + x.e.astype(np.longdouble) * _LN2,
                         dtype=float)
        big = np.where(x.m > 0, big, np.log(x.m))    # log 0 = -inf, log of a negative: nan
    return Wide.of(np.where(ok & (v != 0), r, big))


def sqrt(x) -> Wide:
    """Square root (one rounding, like float64's)."""
    x = Wide.of(x)
    odd = np.mod(x.e, 2) != 0
    with np.errstate(all="ignore"):
        return Wide(np.sqrt(np.where(odd, 2 * x.m, x.m)), np.where(odd, x.e - 1, x.e) / 2)


def expm1(u) -> Wide:
    """e**u - 1 (float64's expm1 for |u| < 1, where it matters)."""
    u = Wide.of(u)
    v, ok = u._plain()
    small = ok & (np.abs(v) < 1)
    with np.errstate(all="ignore"):
        r = np.expm1(v)
    w = exp(u) - 1.0
    return Wide(np.where(small, r, w.m), np.where(small, 0.0, w.e))


def log1p(x) -> Wide:
    """log(1 + x) (float64's log1p where x is a normal float)."""
    x = Wide.of(x)
    v, ok = x._plain()
    with np.errstate(all="ignore"):
        r = np.log1p(v)
    w = log(1.0 + x)
    use = ok & np.isfinite(r)
    return Wide(np.where(use, r, w.m), np.where(use, 0.0, w.e))


def cosh(u) -> Wide:
    return (exp(u) + exp(-Wide.of(u))) / 2.0


def sinh(u) -> Wide:
    u = Wide.of(u)
    v, ok = u._plain()
    small = ok & (np.abs(v) < 1)
    with np.errstate(all="ignore"):
        r = np.sinh(v)
    w = (exp(u) - exp(-u)) / 2.0
    return Wide(np.where(small, r, w.m), np.where(small, 0.0, w.e))


def _ipow(b, n: int) -> Wide:
    return Wide.of(b) ** n


def _saturating(fn: Callable) -> Callable:
    """A function whose float64 value at ±inf is its value at every argument beyond the float64
    range (tanh, erf, arctan, sign, ...): applied to the arguments rounded to float64."""
    def f(*args, **kw):
        args = [a._plain()[0] if isinstance(a, Wide) else a for a in args]
        # below the normal range the rounding would lose digits: left to the caller
        tiny = np.zeros((), dtype=bool)
        for a in args:
            if isinstance(a, np.ndarray):
                tiny = tiny | ((np.abs(a) < _TINY) & (a != 0))
        with np.errstate(all="ignore"):
            r = np.asarray(fn(*args, **kw), dtype=float)
        return Wide.of(np.where(tiny, np.nan, r))

    return f


def _generic(fn: Callable) -> Callable:
    """Any other function: on float64 arguments where they are exact, NaN elsewhere."""
    def conv(a, bad):
        if isinstance(a, Wide):
            v, ok = a._plain()
            bad.append(~ok)
            return v
        if isinstance(a, (list, tuple)):
            return type(a)(conv(b, bad) for b in a)
        return a

    def f(*args, **kw):
        bad: list = []
        args = [conv(a, bad) for a in args]
        kw = {k: conv(v, bad) for k, v in kw.items()}
        with np.errstate(all="ignore"):
            r = fn(*args, **kw)
        if not bad:
            return r
        try:
            r = np.asarray(r, dtype=float)
        except (TypeError, ValueError):
            return r
        mask = np.zeros(r.shape, dtype=bool)
        for b in bad:
            if np.ndim(b) <= r.ndim:
                mask = mask | np.broadcast_to(b, r.shape)
        return Wide.of(np.where(mask, np.nan, r))

    return f


#: functions of lambdified numpy code with a Wide version (by the name the code calls them)
FUNCTIONS: dict = {"exp": exp, "log": log, "sqrt": sqrt, "expm1": expm1, "log1p": log1p,
                   "cosh": cosh, "sinh": sinh, "ipow": _ipow, "abs": abs, "absolute": abs}
#: functions whose value at ±inf holds for every argument beyond the float64 range
SATURATING = ("tanh", "erf", "erfc", "arctan", "sign", "Heaviside", "heaviside")


def evaluate(fn: Callable, x: np.ndarray, namespace: Mapping | None = None) -> np.ndarray:
    """``fn(x)`` re-run with Wide numbers: the float64 values of a lambdified function whose
    intermediates overflow (NaN where this arithmetic cannot decide, see the module docstring).

    Parameters
    ----------
    fn : callable
        A function of one array (lambdified numpy code), whose global names are looked up in
        ``namespace`` (default: its own globals) and replaced by their Wide versions.
    x : ndarray
        Finite float64 arguments.
    """
    ns = dict(fn.__globals__ if namespace is None else namespace)
    for name in list(ns):
        v = ns[name]
        if name in FUNCTIONS:
            ns[name] = FUNCTIONS[name]
        elif name in SATURATING and callable(v):
            ns[name] = _saturating(v)
        elif callable(v) and not isinstance(v, type) and not name.startswith("__"):
            ns[name] = _generic(v)
    ns.setdefault("__builtins__", __builtins__)
    if "abs" not in ns:
        ns["abs"] = abs          # builtin abs calls Wide.__abs__
    g = types.FunctionType(fn.__code__, ns, fn.__name__, fn.__defaults__, fn.__closure__)
    try:
        with np.errstate(all="ignore"):
            y = g(Wide.of(np.asarray(x, dtype=float)))
    except Exception:  # code this arithmetic cannot run: every entry left to the caller
        return np.full(np.shape(x), np.nan)
    if isinstance(y, Wide):
        return y.float()
    return np.broadcast_to(np.asarray(as_float(y), dtype=float), np.shape(x)).copy()


def as_float(y):
    """``y`` with a Python integer beyond float64 as ±inf: a constant expression is lambdified
    to an int (φ² of ``3**2**9`` is 10^488), whose conversion to float raised OverflowError
    (exit 3, found by the long fuzz profile); it overflows at every argument, like exp(x) beyond
    709, and takes the same route.

    >>> as_float(3 ** 1024), as_float(-3 ** 1024), as_float(2)
    (inf, -inf, 2.0)
    """
    if isinstance(y, int) and not isinstance(y, bool):
        try:
            return float(y)
        except OverflowError:
            return math.inf if y > 0 else -math.inf
    return y
