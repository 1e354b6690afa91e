"""Numeric evaluators of sympy expressions in ``x``: vectorized float64 (numpy) and arbitrary
precision (mpmath), with the repair of float64 overflows.

:func:`np_lambdify` and :func:`mp_lambdify` print an expression as numpy or mpmath code (with
common-subexpression elimination, integer powers by repeated squaring, ``expm1``/``log1p``
rewrites); :func:`wrap_numpy` turns the numpy function into the float64 evaluator the
quadratures call: where float64 overflows in an intermediate while the value is an ordinary
number, the entries are evaluated again in extended precision (numpy's ``longdouble``), then with
an unbounded exponent (:mod:`critheory.activation.wide`, vectorized), and what is left, one by
one in mpmath (:func:`mp_repair`) under a wall-clock budget (:data:`REPAIR_SECONDS`) beyond
which the evaluation is refused rather than left to run for minutes.

Examples
--------
>>> from critheory.activation.expressions import X, sp
>>> f = wrap_numpy(np_lambdify(sp.exp(2 * X) / (1 + sp.exp(X))**2),
...                lambda: mp_lambdify(sp.exp(2 * X) / (1 + sp.exp(X))**2))
>>> [round(float(v), 12) for v in f(np.array([0.0, 1000.0, 1e6]))]
[0.25, 1.0, 1.0]
"""
from __future__ import annotations

import math
import time
import types
from typing import Callable

import numpy as np

from critheory.activation import expressions as ex
from critheory.activation import wide
from critheory.activation._lazy import LazyModule
from critheory.activation.budget import within
from critheory.activation.expressions import need_sympy, sp
from critheory.errors import ConvergenceError

__all__ = ["np_lambdify", "mp_lambdify", "mp_heaviside", "wrap_numpy", "mp_repair", "ipow", "heaviside",
           "numpy_module", "int_pow_printer", "REPAIR_SECONDS"]

mpmath = LazyModule("mpmath")

#: wall-clock seconds one float64 evaluation may spend repairing entries one by one in mpmath
#: (what the vectorized repairs leave: values beyond any float64 exponent inside a function
#: float64 cannot take, such as sin(exp(1000))); beyond it the evaluation raises
#: ConvergenceError instead of running for minutes over millions of quadrature nodes
REPAIR_SECONDS = 2.0


def ipow(b, n: int):
    """b**n for an integer n != 0 by repeated squaring: numpy's power takes ~20 ns per element
    for exponents other than 2, -1 and 1/2, a product ~1 ns (error: a few ulps, like pow's
    one ulp well inside what the float64 noise model of an integrand measures)."""
    if n < 0:
        return 1.0 / ipow(b, -n)
    r = None
    while True:
        if n & 1:
            r = b if r is None else r * b
        n >>= 1
        if not n:
            return r
        b = b * b


def heaviside(x, h0=0.5):
    """numpy translation of sympy's Heaviside (H(0) = 1/2)."""
    return np.heaviside(x, h0)


_NUMPY_MODULE_CACHE: dict = {}


def numpy_module() -> dict:
    """numpy translations for lambdify (scipy.special for the special functions; imported here,
    on the first lambdify, not with this module)."""
    if not _NUMPY_MODULE_CACHE:
        import scipy.special

        _NUMPY_MODULE_CACHE.update({
            "erf": scipy.special.erf,
            "erfc": scipy.special.erfc,
            "Heaviside": heaviside,
            "sign": np.sign,
            "ipow": ipow,
        })
    return _NUMPY_MODULE_CACHE



def mp_heaviside(x, h0=0.5):
    """mpmath translation of sympy's Heaviside (H(0) = 1/2)."""
    return mpmath.mpf(1) if x > 0 else (mpmath.mpf(0) if x < 0 else mpmath.mpf(h0))


def _mp_printer():
    """sympy's mpmath printer with ``Heaviside`` printed as a call: without it sympy rewrites
    Heaviside to a Piecewise whose conditions it then tries to decide, which recursed without
    end on ``Heaviside(a - Max(b, c))`` (the derivative of a nested Max, issue 31)."""
    from sympy.printing.pycode import MpmathPrinter

    return MpmathPrinter({"fully_qualified_modules": False, "inline": True,
                          "allow_unknown_functions": True,
                          "user_functions": {"Heaviside": "Heaviside"}})


def mp_lambdify(expr: "sp.Expr", x=None) -> Callable:
    """mpmath lambdify of an expression in ``x`` (default critheory's symbol), with
    common-subexpression elimination unless the expression has a Piecewise (whose branches are
    evaluated lazily: a hoisted subexpression could be evaluated where its branch is undefined).
    CSE makes the references 2-4x faster for the derivative integrands of mish, gelu_tanh, swish
    (φφ'' of mish: 400 -> 110 µs per evaluation). Every mpmath evaluator of the project is
    printed here (one printer, one Heaviside convention)."""
    need_sympy()
    x = ex.X if x is None else x
    modules = [{"Heaviside": mp_heaviside}, "mpmath"]
    if not expr.has(sp.Piecewise):
        try:
            return sp.lambdify(x, expr, modules=modules, printer=_mp_printer(), cse=True)
        except Exception:  # pragma: no cover - sympy CSE failure
            pass
    return sp.lambdify(x, expr, modules=modules, printer=_mp_printer())


def np_lambdify(expr: "sp.Expr", x=None, *, rewrite: bool = True) -> Callable:
    """numpy lambdify with common-subexpression elimination.

    Derivative integrands (φ'², φφ'', hφφ') repeat large subexpressions — φφ'' of mish or
    gelu_tanh is 3-4x faster to evaluate with CSE, and the quadrature spends most of its time
    there. Falls back to the plain translation if sympy's CSE fails on an expression.

    ``exp(u) - 1`` and ``log(1 + u)`` are rewritten to ``expm1``/``log1p`` first: float64
    ``exp(x) - 1`` has relative error eps/|x| near 0, which made E[elu(h)²] at K = 1e-30 fail to
    converge (every node on the negative side was off by ~10%). ``rewrite=False`` skips that
    rewrite (a quick scan that needs no such accuracy).
    """
    need_sympy()
    x = ex.X if x is None else x
    namespace = numpy_module()
    modules = [namespace, "numpy", "scipy"]
    try:
        if not rewrite:
            raise LookupError
        from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

        # the rewrite factors polynomials and can run for minutes on a large derivative: under
        # the symbolic budget, else evaluated as written (accurate except near exp(u) ≈ 1)
        done, opt = within(lambda: optimize(expr, [expm1_opt, log1p_opt]))
        if done:
            expr = opt
    except Exception:  # rewriting failure or not asked for: evaluated as written
        pass
    printer = int_pow_printer()({"fully_qualified_modules": False, "inline": True,
                                  "allow_unknown_functions": True,
                                  "user_functions": {k: k for k in namespace}})
    try:
        return sp.lambdify(x, expr, modules=modules, printer=printer, cse=True)
    except Exception:  # pragma: no cover - sympy CSE failure
        return sp.lambdify(x, expr, modules=modules, printer=printer)


_PRINTER: list = []


def int_pow_printer() -> type:
    """The class ``_IntPowPrinter``: lambdify's numpy/scipy printer, with integer powers other
    than 2 and -1 as ``ipow`` (repeated squaring): φ⁴, (1 + |x|)^-4, tanh(u)^3 ... 5-20x faster
    to evaluate. Created on first use (it subclasses a sympy printer)."""
    if not _PRINTER:
        from sympy.printing.numpy import SciPyPrinter

        class _IntPowPrinter(SciPyPrinter):
            def _print_Pow(self, expr, rational=False):
                e = expr.exp
                if e.is_Integer and abs(int(e)) <= 64 and int(e) not in (0, 1, 2, -1):
                    return f"ipow({self._print(expr.base)}, {int(e)})"
                return super()._print_Pow(expr, rational=rational)

        _IntPowPrinter.__doc__ = int_pow_printer.__doc__
        _PRINTER.append(_IntPowPrinter)
    return _PRINTER[0]



def wrap_numpy(fn: Callable, mp_factory: Callable[[], Callable]) -> Callable:
    """The float64 evaluator around a lambdified numpy function ``fn``: float64 results, and
    non-finite values where the argument is finite repaired in extended precision, then with an
    unbounded exponent (:func:`critheory.activation.wide.evaluate`), then in arbitrary precision
    (:func:`mp_repair`; ``mp_factory()`` gives the plain mpmath lambdification, made on first
    need).

    Parameters
    ----------
    fn : callable
        A lambdified numpy function of one array (:func:`np_lambdify`, or its source compiled
        from the zoo cache).
    mp_factory : callable
        Returns the mpmath version of the same expression.

    Returns
    -------
    callable
        ``f(x)``: float64 values of the shape of ``x``. Raises
        :class:`~critheory.errors.ConvergenceError` when the arbitrary-precision repair of one
        call would take longer than :data:`REPAIR_SECONDS`.
    """
    mp_fn: list = []
    # per side: (|x| beyond which the value itself overflows float64, its ±inf), found
    # by mp_repair
    overflow_at = {-1: (math.inf, math.inf), 1: (math.inf, math.inf)}

    def f(x, _fn=fn):
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            y = wide.as_float(_fn(x))
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
                    yl = np.asarray(wide.as_float(_fn(x[bad].astype(np.longdouble))),
                                    dtype=float)
                except TypeError:
                    yl = np.full(int(bad.sum()), np.nan)
            y = np.array(y, dtype=float, copy=True)
            y[bad] = np.broadcast_to(yl, y[bad].shape)
            bad = ~np.isfinite(y) & np.isfinite(x)
        if bad.any() and y.ndim and isinstance(_fn, types.FunctionType):
            # float64 overflow in an intermediate (e.g. exp(-x)/(1 + exp(-x))**2 at x = -1e3):
            # the same code with an unbounded exponent, for all those entries at once
            y = np.array(y, dtype=float, copy=True)
            yw = wide.evaluate(_fn, x[bad])
            # ±inf from it is the value's own overflow (exp(x) at x = 1e5); NaN: undecided,
            # left as it was for the arbitrary-precision repair
            decided = ~np.isnan(yw)
            y[bad] = np.where(decided, yw, y[bad])
            bad[bad] = ~decided
        if bad.any():
            # what is left (NaN there, or a function float64 cannot take beyond its range):
            # entry by entry in arbitrary precision, under REPAIR_SECONDS
            if not mp_fn:
                mp_fn.append(mp_factory())
            y = np.array(y, dtype=float, copy=True)
            mp_repair(mp_fn[0], x, y, bad, overflow_at)
        return y

    return f


_FLOAT_MAX: list = []


def mp_repair(mp_fn: Callable, x: np.ndarray, y: np.ndarray, bad: np.ndarray,
               overflow_at: dict) -> None:
    """Fill the non-finite entries ``y[bad]`` with arbitrary-precision values of φ at ``x[bad]``.

    Entries are visited from small to large ``|x|`` on each side. Once the value itself exceeds
    the float64 range at some ``|x0|`` (a genuine overflow, e.g. ``exp(x)`` at ``x = 1e5``, not a
    cancelling intermediate), every entry further out on that side is set to that ``±inf``
    without evaluation, and ``overflow_at[side] = (|x0|, ±inf)`` is remembered for later calls:
    an expectation at huge variance can put millions of nodes there, at ~50 µs per mpmath
    evaluation.

    The entries are evaluated under :data:`REPAIR_SECONDS` of wall-clock time; when it is spent
    with entries left, :class:`~critheory.errors.ConvergenceError` is raised (a refusal in
    one line rather than minutes of work).

    Parameters
    ----------
    mp_fn : callable
        The mpmath function of φ (one mpf argument).
    x, y : ndarray
        Arguments and float64 values (``y`` is filled in place; a fresh contiguous array).
    bad : ndarray of bool
        The entries to repair.
    overflow_at : dict
        Per side (-1, +1): ``(|x0|, ±inf)``, updated as described above.
    """
    if y.ndim == 0:
        y1, x1 = y.reshape(1), np.asarray(x, dtype=float).reshape(1)
        mp_repair(mp_fn, x1, y1, np.asarray(bad).reshape(1), overflow_at)
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
    deadline = time.monotonic() + REPAIR_SECONDS
    with mpmath.workdps(30):
        for i, k in enumerate(order[~far[order]]):
            if not i % 64 and time.monotonic() > deadline:
                raise ConvergenceError(
                    f"{int(bad.sum())} values overflow float64 in an intermediate and need "
                    f"arbitrary precision one by one (|x| from {np.abs(xs).min():.3g} to "
                    f"{np.abs(xs).max():.3g}); more than {REPAIR_SECONDS:g} s: refused")
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

