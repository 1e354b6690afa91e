"""Arbitrary-precision reference expectations (mpmath).

Slow and scalar, independent of the fast engine's node placement and float64 evaluation: tanh-sinh
quadrature (``mpmath.quad``) over a window split at the integrand's breakpoints and at a graded
mesh, with the activation evaluated by mpmath at ``dps`` digits.

Examples
--------
>>> from critheory.expectations.reference import mp_expect
>>> float(mp_expect("relu", "phi2", 2.0))  # E[relu(h)^2] = K/2
1.0
"""
from __future__ import annotations

import math

import mpmath

from critheory.activation.symbolic import Activation
from critheory.errors import ConvergenceError
from critheory.expectations.integrands import integrand

__all__ = ["mp_expect", "mp_expect2"]


def _window(dps: int) -> float:
    return math.sqrt(2.0 * (dps + 15) * math.log(10.0))


def _split_points(lo, hi, sK, bps, mean=0):
    pts = {lo, hi}
    for z in (0, 0.5, 1, 2, 3, 4, 6, 8, 10, 12):
        pts.update((mpmath.mpf(z), mpmath.mpf(-z)))
    for k in range(-6, 7):
        for sgn in (1, -1):
            pts.add((sgn * mpmath.mpf(2) ** k - mean) / sK)
    for b in bps:
        pts.add((mpmath.mpf(b) - mean) / sK)
    return sorted(p for p in pts if lo <= p <= hi)


#: most panels of the reference quadrature for a steep integrand
MAX_REFERENCE_PANELS = 4000


def _steep_points(pts, features, sK, mean):
    """Split points (in z) at the steep features of g: graded around each centre down to
    ℓ = 1/rate, and where the features are not located a uniform grid of spacing ℓ (at most
    :data:`MAX_REFERENCE_PANELS` panels, else ConvergenceError)."""
    if not features.steep:
        return pts
    ell = mpmath.mpf(1) / mpmath.mpf(features.rate)
    lo, hi = pts[0], pts[-1]
    new = set(pts)
    for c in features.centres:
        for k in range(-5, 6):
            for sgn in (1, -1):
                new.add((mpmath.mpf(c) + sgn * ell * mpmath.mpf(2) ** k - mean) / sK)
        new.add((mpmath.mpf(c) - mean) / sK)
    if not features.located:
        n = int(mpmath.ceil((hi - lo) * sK / ell))
        if n > MAX_REFERENCE_PANELS:
            raise ConvergenceError(f"the mpmath reference would need {n} panels for features of "
                                   f"width {float(ell):.2g} (limit {MAX_REFERENCE_PANELS})")
        new.update(lo + (hi - lo) * mpmath.mpf(i) / n for i in range(n + 1))
    return sorted(p for p in new if lo <= p <= hi)


def mp_expect(activation, spec, K, dps: int = 30, mean=0) -> mpmath.mpf:
    """E[g(h)], h ~ N(mean, K), to about ``dps`` digits (g a named integrand or expression)."""
    act = Activation.get(activation)
    itg = integrand(act, spec)
    g = itg.mpmath
    a_lo, a_hi = itg.growth
    with mpmath.workdps(dps + 10):
        K = mpmath.mpf(K)
        mean = mpmath.mpf(mean)
        sK = mpmath.sqrt(K)
        L = _window(dps)
        lo, hi = -L - a_lo * sK, L + a_hi * sK
        pts = _split_points(mpmath.mpf(lo), mpmath.mpf(hi), sK, itg.breakpoints, mean)
        pts = _steep_points(pts, itg.features, sK, mean)
        f = lambda z: g(mean + sK * z) * mpmath.exp(-z * z / 2)  # noqa: E731
        val, err = mpmath.quad(f, pts, maxdegree=10, error=True)
        # a reference that did not converge is refused, not returned (cos(100x²)·tanh(cos(100x²))
        # at K = 0.3 came out 3e-14 off with the default panels)
        if err > mpmath.mpf(10) ** (-(dps // 2)) * abs(val) and err > mpmath.mpf(10) ** (-dps):
            raise ConvergenceError(f"the mpmath reference did not converge (error estimate "
                                   f"{mpmath.nstr(err, 3)} for a value {mpmath.nstr(val, 5)})")
        val = val / mpmath.sqrt(2 * mpmath.pi)
        for b, c in itg.point_masses:
            val += c * mpmath.npdf(b, mean, sK)
        return +val


_X_FEATURES = (0, 0.5, 1, 2, 4, 8, 16)
_Z_FEATURES = (0, 1, 2, 3, 4.5, 6, 8, 10.5)


def _panel_points(lo, hi, scale, mean, bps, extra=()):
    """Sorted split points in the standardized variable: window ends, a z-grid, the x-scale
    features of the activation (x = 0, ±1/2, ..., ±16) and its breakpoints, mapped by
    z = (x - mean)/scale, plus ``extra``."""
    pts = {lo, hi}
    for z in _Z_FEATURES:
        pts.update((mpmath.mpf(z), -mpmath.mpf(z)))
    for x in _X_FEATURES:
        for sgn in (1, -1):
            pts.add((sgn * mpmath.mpf(x) - mean) / scale)
    for b in bps:
        pts.add((mpmath.mpf(b) - mean) / scale)
    pts.update(extra)
    return sorted(p for p in pts if lo <= p <= hi)


def mp_expect2(activation, f_spec, g_spec, K11, K12, K22, dps: int = 20) -> mpmath.mpf:
    """E[f(h1) g(h2)] for a Gaussian pair, by iterated quadrature in mpmath (slow: seconds to
    minutes per value).

    ``h1 = √K11 u``, ``h2 = (K12/√K11) u + s v`` with u, v independent standard normals and
    ``s² = K22 - K12²/K11``. Both levels use adaptive Gauss–Legendre (``mpmath.quad``) on panels
    split at the integrand's breakpoints, at the activation's x-scale features and at a z-grid;
    the outer panels are also split around the points where the inner expectation has a
    near-kink (g's breakpoints mapped to u, width s√K11/|K12|).
    """
    act = Activation.get(activation)
    fi, gi = integrand(act, f_spec), integrand(act, g_spec)
    f, g = fi.mpmath, gi.mpmath
    with mpmath.workdps(dps + 5):
        K11, K12, K22 = (mpmath.mpf(v) for v in (K11, K12, K22))
        s11 = mpmath.sqrt(K11)
        slope = K12 / s11
        var = K22 - K12 * K12 / K11
        s = mpmath.sqrt(var) if var > 0 else mpmath.mpf(0)
        L = mpmath.mpf(_window(dps))
        c = 1 / mpmath.sqrt(2 * mpmath.pi)
        g_grow = max(gi.growth)

        def inner(u):
            m = slope * u
            if s == 0:
                return g(m)
            lo, hi = -L - g_grow * s, L + g_grow * s
            pts = _panel_points(lo, hi, s, m, gi.breakpoints)
            return mpmath.quad(lambda v: g(m + s * v) * mpmath.exp(-v * v / 2), pts,
                               method="gauss-legendre", maxdegree=8) * c

        gr = g_grow * abs(slope) + max(fi.growth) * s11
        lo, hi = -L - gr, L + gr
        extra = []
        if slope != 0:
            for x in _X_FEATURES:
                extra += [mpmath.mpf(x) / slope, -mpmath.mpf(x) / slope]
            w = s / abs(slope)
            for b in gi.breakpoints:
                u0 = mpmath.mpf(b) / slope
                for k in (0, 0.5, 1, 2, 4, 8):
                    extra += [u0 + k * w, u0 - k * w]
        pts = _panel_points(lo, hi, s11, 0, fi.breakpoints, extra)
        val = mpmath.quad(lambda u: f(s11 * u) * inner(u) * mpmath.exp(-u * u / 2), pts,
                          method="gauss-legendre", maxdegree=8) * c
        return +val
