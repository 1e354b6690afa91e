"""Length scales of an activation: where and how narrow its features are.

Quadrature rules that sample an integrand at fixed nodes (Gauss–Hermite, the double-exponential
trapezoid, a composite rule on a fixed panel grid) cannot see a feature narrower than their node
spacing: two successive rules then agree on a wrong value, and the comparison of rules that the
error estimate rests on says the result is exact. ``tanh(100*x)`` is the standard case: every
node of a 48-point Gauss–Hermite rule lies where tanh(100x)² = 1, so E[φ'²] came out 0 ± 0.

This module reads the scales off the formula. Every argument ``a(x)`` of a non-polynomial
function (tanh, exp, erf, sin, a non-integer power, ...) changes by O(1) over a length
``1/rate``; the integrand bends on that length, near the points where ``a`` is O(1):

* ``a`` a polynomial of degree 1, ``c₁x + c₀``: rate ``|c₁|``, centre ``-c₀/c₁``;
* degree 2, ``c₂(x - x₀)² + d``: rate ``√|c₂|`` at the vertex ``x₀``; where the function is
  singular at 0 (a power, a log) also the complex roots of ``a``: rate ``1/|Im r|`` at ``Re r``
  (``sqrt(x**2 + 1e-6)`` bends within 1e-3 of 0);
* higher degree: rate ``max_k |c_k|^{1/k}`` about 0;
* otherwise the largest ``|a'(x)|`` on |x| <= 8 (a dense grid), with no known centre unless an
  inner argument already explains the steepness (``tanh(tanh(100*x))``);
* arguments of periodic functions (sin, cos, ...) other than ``c x + b`` always take that last
  rule: ``cos(10⁴x²)`` oscillates at ``2·10⁴|x|`` everywhere, not only near its vertex.

A periodic function whose argument sweeps more than one period (an unbounded polynomial, or a
range above 2π on |x| <= 8) makes the formula *oscillate*: it keeps bending far from 0, which
routes wide Gaussians to the uniform trapezoidal rule (``Features.oscillates``).

The result is a conservative *upper* estimate of the steepness (``exp(-1000*(x - 0.3)**2)`` has
rate √1000 at 0.3); quadrature uses it to refuse its fixed-node shortcuts and to place panels.

Examples
--------
>>> from critheory.activation.symbolic import Activation
>>> f = features(Activation.get("tanh(100*x)").expr)
>>> f.rate, f.centres, f.located
(100.0, (0.0,), True)
>>> features(Activation.get("tanh(100*sin(x))").expr).located
False
>>> features(Activation.get("gelu").expr).rate <= 1
True
>>> features(Activation.get("tanh(sin(x))").expr).oscillates
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.activation._lazy import LazyModule
from critheory.activation.numeric import mp_lambdify, np_lambdify

sp = LazyModule("sympy")

__all__ = ["Features", "features", "STEEP_RATE"]

#: Rate above which an activation counts as steep: the fixed-node rules (tuned on the zoo, whose
#: rates are <= 1) are not used and the composite rule places panels of width 1/rate.
STEEP_RATE = 8.0
# the grid on which the derivative of a non-polynomial argument is sampled
_SCAN = np.linspace(-8.0, 8.0, 4001)


@dataclass(frozen=True)
class Features:
    """Steepness of a formula.

    Attributes
    ----------
    rate : float
        1/(the shortest length on which the formula bends), >= 0 (0: a polynomial).
    centres : tuple of float
        Where the steep features lie (sorted, at most 64), for the arguments whose location is
        known.
    located : bool
        Every argument with rate above :data:`STEEP_RATE` has a known centre.
    oscillates : bool
        A periodic function (sin, cos, ...) of an argument that sweeps more than one period
        on |x| <= 8 (``sin(x)``, ``tanh(sin(x))``; not ``sin(erf(x))``): the formula goes on
        bending far from 0, where the nodes of the sinh rule spread out, and the expectations
        route wide Gaussians to the uniform trapezoidal rule first
        (:func:`critheory.expectations.de_quadrature.expect_centered`). Only a routing hint:
        every rule's error estimate stands on its own.
    """

    rate: float
    centres: tuple
    located: bool
    oscillates: bool = False

    @property
    def steep(self) -> bool:
        """rate > :data:`STEEP_RATE`."""
        return self.rate > STEEP_RATE

    def to_data(self) -> tuple:
        return (self.rate, self.centres, self.located, self.oscillates)


def _singular_at_zero(node) -> bool:
    """Functions of ``a`` singular at a = 0 (powers with non-integer or negative exponent, log)."""
    if isinstance(node, sp.Pow):
        e = node.exp
        return not (e.is_Integer and e >= 0)
    return isinstance(node, sp.log)


def _kinks() -> tuple:
    return (sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise, sp.Max, sp.Min)


def _poly_scale(a, x, singular: bool):
    """(rate, centres) of a polynomial argument, or None if ``a`` is not a real polynomial."""
    try:
        p = sp.Poly(a, x)
    except (sp.PolynomialError, sp.GeneratorsNeeded, ValueError, TypeError):
        return None
    try:
        c = [float(v) for v in p.all_coeffs()[::-1]]  # c[k] multiplies x^k
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in c):
        return None
    d = len(c) - 1
    if d <= 0:
        return (0.0, ())
    centres = []
    if d == 1:
        rate, centres = abs(c[1]), [-c[0] / c[1]]
    elif d == 2:
        x0 = -c[1] / (2.0 * c[2])
        rate, centres = math.sqrt(abs(c[2])), [x0]
    else:
        rate = max(abs(c[k]) ** (1.0 / k) for k in range(1, d + 1))
        centres = [0.0]
    if singular and d <= 8:
        for r in np.roots(c[::-1]):
            im = abs(r.imag)
            if im > 0 and 1.0 / im > rate and math.isfinite(r.real):
                rate = 1.0 / im
            if math.isfinite(r.real):
                centres.append(float(r.real))
    return (rate, tuple(centres))


def _periodic(node) -> bool:
    """sin, cos, tan, ...: they oscillate at the rate |a'| wherever their argument a goes, not
    only near a centre (cos(10⁴x²) is fast everywhere but at 0)."""
    return isinstance(node, sp.functions.elementary.trigonometric.TrigonometricFunction)


def _sweeps_period(a, x) -> bool:
    """The argument ``a`` of a periodic function spans more than one period (2π) on |x| <= 8
    (sampled on the scan grid; an argument numpy cannot evaluate counts as not sweeping), or
    is a non-constant polynomial (unbounded: ``sin(0.1*x)`` sweeps periods on wide Gaussians)."""
    if a.is_polynomial(x) and sp.degree(a, x) >= 1:
        return True
    try:
        fa = np_lambdify(a, x, rewrite=False)
        with np.errstate(all="ignore"):
            v = np.asarray(fa(_SCAN), dtype=complex) * np.ones_like(_SCAN)
    except Exception:  # noqa: BLE001 - a function numpy/scipy lack: no routing hint
        return False
    v = v.real[np.isfinite(v) & (v.imag == 0)]
    return bool(v.size) and float(v.max() - v.min()) > 2.0 * math.pi


def _numeric_rate(a, x, relative: bool = True) -> float:
    """max |a'(x)| / max(1, |a(x)|) on |x| <= 8 (finite values only): where an argument is
    large, the function of it (a saturated tanh, an exponential, a power) changes by the relative
    amount a'/a, not by a'."""
    d = sp.diff(a, x)
    try:
        fa, fd = np_lambdify(a, x, rewrite=False), np_lambdify(d, x, rewrite=False)
        with np.errstate(all="ignore"):
            va = np.abs(np.asarray(fa(_SCAN), dtype=complex)) * np.ones_like(_SCAN)
            v = np.abs(np.asarray(fd(_SCAN), dtype=complex)) * np.ones_like(_SCAN)
    except Exception:  # noqa: BLE001 - a function numpy/scipy lack: mpmath, coarser grid
        import mpmath

        fa, fd = mp_lambdify(a, x), mp_lambdify(d, x)
        pts = _SCAN[::10]
        va, v = np.full(pts.size, np.nan), np.full(pts.size, np.nan)
        for i, t in enumerate(pts):
            try:
                va[i] = float(abs(fa(mpmath.mpf(t))))
                v[i] = float(abs(fd(mpmath.mpf(t))))
            except Exception:  # noqa: BLE001 - a point where it is undefined: skipped
                pass
    if relative:
        with np.errstate(all="ignore"):
            v = v / np.maximum(va, 1.0)
    v = v[np.isfinite(v)]
    # nothing evaluable: no information beyond the inner arguments (0 here)
    return float(v.max()) if v.size else 0.0


def features(expr, x=None) -> Features:
    """The :class:`Features` of a sympy expression in ``x`` (default: critheory's symbol)."""
    if x is None:
        from critheory.activation.symbolic import X as x
    memo: dict = {}

    def arg_scale(a, singular, periodic=False):
        key = (a, singular, periodic)
        if key in memo:
            return memo[key]
        ps = None if periodic else _poly_scale(a, x, singular)
        if periodic and a.is_polynomial(x) and sp.degree(a, x) <= 1:
            ps = _poly_scale(a, x, singular)      # sin(c x + b): one rate everywhere
        if ps is not None:
            out = (ps[0], ps[1], True)
        else:
            inner = walk(a)
            r = _numeric_rate(a, x, relative=not periodic)
            # steepness explained by an inner, located feature keeps its location
            located = inner[2] and r <= 2.0 * max(inner[0], 1.0)
            out = (max(r, inner[0]), inner[1], located or r <= STEEP_RATE)
        memo[key] = out
        return out

    def walk(e):
        rate, centres, located = 0.0, [], True
        for node in sp.preorder_traversal(e):
            if not node.has(x) or node == x:
                continue
            if isinstance(node, sp.Pow):
                if node.exp.is_Integer and node.exp >= 0:
                    continue
                args = [node.base] if not node.exp.has(x) else [node.base, node.exp]
            elif isinstance(node, sp.Function) and not isinstance(node, _kinks()):
                # (the branches of Piecewise, Max, Min, Abs are values, not arguments: their
                # switch points are breakpoints, and the functions inside them are visited)
                args = list(node.args)
            else:
                continue
            sing = _singular_at_zero(node)
            per = _periodic(node)
            for a in args:
                if not a.has(x):
                    continue
                if per and not osc[0]:
                    osc[0] = _sweeps_period(a, x)
                r, c, loc = arg_scale(a, sing, per)
                rate = max(rate, r)
                centres.extend(c)
                located = located and (loc or r <= STEEP_RATE)
        return rate, centres, located

    osc = [False]
    rate, centres, located = walk(sp.sympify(expr))
    cs = sorted({float(c) + 0.0 for c in centres if math.isfinite(c)}, key=abs)[:64]
    return Features(float(rate), tuple(sorted(cs)), bool(located), osc[0])
