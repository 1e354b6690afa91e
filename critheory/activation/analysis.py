"""Analysis of an activation's expression: where it switches branch, where it is defined, how
fast it grows.

:func:`switch_functions` and :func:`real_zeros` locate the breakpoints of Max, Min, Abs,
Heaviside, sign and Piecewise; :func:`check_domain` refuses an activation undefined, complex or
infinite somewhere on the real line; :func:`growth` measures the exponential rate of |φ| at ±∞
and refuses growth like exp(c x²) (no Gaussian expectation).

Examples
--------
>>> from critheory.activation.expressions import X, sp
>>> [g for g in switch_functions(sp.Max(0, X - 1))]
[1 - x]
>>> real_zeros(1 - X, "max(0, x - 1)")
[1.0]
>>> growth(lambda t: mpmath.exp(2 * t), +1)
2.0
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from critheory.activation import expressions as ex
from critheory.activation._lazy import LazyModule
from critheory.activation.budget import within
from critheory.activation.expressions import need_sympy, sp
from critheory.activation.numeric import mp_lambdify
from critheory.errors import ActivationError, DomainError, GrowthError

__all__ = ["switch_functions", "real_zeros", "check_domain", "growth", "DOMAIN_SECONDS"]

mpmath = LazyModule("mpmath")


def switch_functions(atom) -> list:
    """Expressions whose real zeros are the switching points of a non-smooth atom."""
    need_sympy()
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


# precisions at which a switch function that is 0 at 30 digits on the grid is evaluated again
# before that point counts as a zero: x − log(eˣ + 1) = −log(1 + e⁻ˣ) is ~−e⁻ˣ, below 30 digits
# of x from x ≈ 69 on, and 0 there would make a breakpoint (and a wrong closed form) of a formula
# that has none; 1000 digits resolve e⁻ˣ to the grid's end (x = 1000: e⁻¹⁰⁰⁰ ≈ 5e-435).
ZERO_CHECK_DPS = (80, 250, 1000)


def _sign_at(fn, t: float) -> float:
    """The sign of ``fn(t)`` (1.0, −1.0, 0.0; nan where it fails), at 30 digits and, where that
    gives 0, at :data:`ZERO_CHECK_DPS` digits: 0 only if it is 0 at every precision."""
    try:
        v = mpmath.re(fn(mpmath.mpf(t)))
        for dps in ZERO_CHECK_DPS:
            if v != 0:
                break
            with mpmath.workdps(dps):
                v = mpmath.re(fn(mpmath.mpf(t)))
        return float(mpmath.sign(v))
    except Exception:
        return float("nan")


def real_zeros(g: "sp.Expr", name: str) -> list[float]:
    """The real zeros of ``g(x)``: sympy's ``solveset`` under the symbolic budget, else sign
    changes on a grid of ±[1e-3, 1e3] refined by bisection in mpmath.

    Parameters
    ----------
    g : sympy.Expr
        An expression in :data:`critheory.activation.expressions.X` (a switch function).
    name : str
        The activation's name, for the error message.

    Raises
    ------
    ActivationError
        A sign change that bisection cannot resolve.
    """
    need_sympy()
    g = sp.sympify(g)
    if not g.has(ex.X):
        return []
    try:
        # solveset of a transcendental switch (10x = cos(10⁴x² − 10⁴x)) can run for minutes:
        # under the symbolic budget, then the numeric scan below
        done, sol = within(lambda: sp.solveset(sp.Eq(g, 0), ex.X, domain=sp.S.Reals))
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
    fn = mp_lambdify(g)
    grid = np.concatenate([-np.logspace(3, -3, 400), [0.0], np.logspace(-3, 3, 400)])
    out = []
    with mpmath.workdps(30):
        vals = [_sign_at(fn, t) for t in grid]
        for i in range(len(grid) - 1):
            a, b = vals[i], vals[i + 1]
            if a == 0.0:
                # a zero of g, or a point of an interval on which g vanishes (Abs(x) - x on
                # x >= 0): there only the ends of the interval switch a branch
                left = vals[i - 1] if i else float("nan")
                if not (left == 0.0 and b == 0.0):
                    out.append(float(grid[i]))
            elif a * b < 0:             # (signs: ±1, 0 or nan)
                try:
                    r = mpmath.findroot(lambda t: fn(t), (grid[i], grid[i + 1]), solver="bisect")
                    out.append(float(r))
                except Exception:
                    raise ActivationError(
                        f"cannot locate the breakpoints of activation {name}") from None
    return out


def check_domain(act, bps: Sequence[float]) -> None:
    """Raise DomainError if φ is undefined, infinite or complex somewhere on the real line.

    ``act`` is the :class:`~critheory.activation.symbolic.Activation` (its ``name``, ``expr``
    and ``mpmath_func`` are used); ``bps`` its breakpoints. A value beyond every exponent is
    refused with GrowthError after :data:`DOMAIN_SECONDS`.
    """
    need_sympy()
    expr = act.expr
    # symbolic: sympy's continuous domain over the reals, under a budget (its set algebra ran
    # for minutes on softplus(Max(celu(2x), 0.1(x - 2.5))), issue 31); when it runs out, the
    # places where a formula can fail between grid points (zeros of denominators, of the
    # arguments of logarithms and of roots) are searched numerically instead
    try:
        from sympy.calculus.util import continuous_domain

        done, dom = within(lambda: continuous_domain(expr, ex.X, sp.S.Reals),
                           DOMAIN_SYMBOLIC_SECONDS)
        if not done:
            _check_singular_points(act)
        elif dom != sp.S.Reals:
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
        done, _ = within(lambda: _check_values(act, f, grid), DOMAIN_SECONDS)
    except MemoryError:
        done = False   # mpmath shifting a mantissa by 10^12 bits (exp(exp(exp(-2 - x))))
    if not done:
        raise GrowthError(
            f"activation {act.name} cannot be evaluated on |x| <= 100 within "
            f"{DOMAIN_SECONDS:g} s: its values lie beyond any floating-point range (nested "
            "exponentials); its Gaussian expectations do not exist in float64")


#: seconds for evaluating an activation on the domain-check grid
DOMAIN_SECONDS = 3.0
#: seconds for sympy's symbolic domain of an activation (then a numeric search, below)
DOMAIN_SYMBOLIC_SECONDS = 2.0


def _singular_arguments(expr) -> list:
    """The subexpressions whose real zeros are the only places where φ can be undefined or
    infinite between the points of a grid: bases of negative powers, arguments of logarithms
    and bases of fractional powers (a root of a negative number is complex)."""
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow) and node.exp.is_number:
            if node.exp.is_negative or not node.exp.is_integer:
                out.append(node.base)
        elif isinstance(node, sp.log):
            out.append(node.args[0])
    return out


def _check_singular_points(act) -> None:
    """Where the symbolic domain ran out of time: evaluate φ at the real zeros of its
    :func:`_singular_arguments` (found as in :func:`real_zeros`: sympy under its budget, else
    sign changes on a grid refined by bisection); a pole or a logarithm of zero there raises
    DomainError."""
    f = act.mpmath_func(0)
    for g in _singular_arguments(act.expr):
        if not g.has(ex.X):
            continue
        for z in real_zeros(g, act.name):
            with mpmath.workdps(30):
                try:
                    v = f(mpmath.mpf(z))
                    bad = not mpmath.isfinite(abs(v))
                except (ZeroDivisionError, ValueError, TypeError, OverflowError):
                    bad = True
            if bad:
                raise DomainError(f"activation {act.name} is undefined at x = {z:g}")


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

def growth(f: Callable, sign: int) -> float:
    """Exponential rate α of |f| at sign·∞ (|f(x)| ≲ e^{α|x|}), 0 for polynomial growth.

    Read from f at 200, 400 and 10⁴ (times ``sign``) in mpmath; ``f`` takes an mpf.

    Raises
    ------
    GrowthError
        log|f| grows like x² or faster (no Gaussian expectation for all variances), or f is
        infinite there.
    DomainError
        f cannot be evaluated there.
    """
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
