"""The Poincaré gap ``P(K) = K·E_K[φ'²] − E_K[φ²]`` without cancellation.

``P`` decides where the critical line meets small bias variances: on the critical set of a
single-dense network ``σ_b² = (1 − μ²)·P(K*)/E_{K*}[φ'²]``. For activations with φ(0) = 0 the
two terms agree to leading order (tanh: ``P(K) = (4/3)K³ + O(K⁴)``), so the difference of two
float64 expectations loses every digit once ``K`` is below ~1e-5 and the line at
``σ_b² = 1e-30`` came out empty.

Where that difference is not accurate enough, ``P`` comes from its Taylor series in ``K``: with
``φ(x) = Σ a_k x^k`` and ``E[x^{2m}] = (2m − 1)!! K^m``,

    ``P(K) = −a₀² + Σ_{m >= 1} c_m K^m``,  ``c_m = (2m − 3)!! Σ_{k+l=2m} a_k a_l (k l − (2m − 1))``,

in which the cancelling terms (k = 1 or l = 1 with k + l = 2m) carry the integer weight 0
exactly. The coefficients ``a_k`` are computed by the trapezoidal rule on a circle in the complex
plane (Cauchy's integral, 64 points, mpmath at 40 digits) at two radii whose agreement is
checked; the series (asymptotic, like every Gaussian moment series) is truncated before its
smallest term, which is its error estimate (plus the rounding of the sum).

Examples
--------
>>> g = poincare_gap("tanh", [1e-10, 0.5])
>>> float(g.value[0] / 1e-30)  # (4/3)K³ − (32/3)K⁴ at K = 1e-10
1.33333333226666...
>>> g.methods.tolist()
['series', 'difference']
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.expectations.gaussian import Expectation, check_variance, expect
from critheory.expectations.integrands import integrand

__all__ = ["poincare_gap", "taylor_coefficients", "taylor_by_cauchy"]

_EPS = np.finfo(float).eps
_NCOEF = 26          # a_0 .. a_25: the series to K^12
_NPTS = 64           # points on the Cauchy circle


def _cauchy(f, r, n: int):
    import mpmath

    roots = [mpmath.expjpi(mpmath.mpf(2 * j) / _NPTS) for j in range(_NPTS)]
    vals = [mpmath.mpc(f(mpmath.mpf(r) * w)) for w in roots]
    out = []
    for k in range(n):
        s = mpmath.fsum(v * roots[(-j * k) % _NPTS] for j, v in enumerate(vals))
        out.append(s / _NPTS / mpmath.mpf(r) ** k)
    return out


@lru_cache(maxsize=64)
def _taylor(act: Activation) -> tuple | None:
    """The Taylor coefficients of φ at 0 (floats, by Cauchy integrals at 40 digits), or None;
    a zoo activation reads them from its cache entry (no mpmath)."""
    zoo = act.__dict__.get("_zoo")
    if zoo is not None and "poincare_taylor" in zoo.data:
        v = zoo.data["poincare_taylor"]
        return None if v is None else tuple(v)
    return taylor_by_cauchy(act)


def taylor_by_cauchy(act: Activation) -> tuple | None:
    """a_0 .. a_25 of φ at 0 as floats by Cauchy integrals on two circles at 40 digits
    (mpmath), or None where φ is not analytic on a disc about 0: what the zoo cache stores
    for :func:`taylor_coefficients`."""
    import mpmath

    if any(abs(b) < 1.0 for b in act.breakpoints):
        return None
    rate = max(act.features.rate, 1.0)
    r = 0.5 / rate
    f = act.mpmath_func(0)
    try:
        with mpmath.workdps(40):
            a1 = _cauchy(f, r, _NCOEF)
            a2 = _cauchy(f, r / 2, _NCOEF)
    except Exception:  # noqa: BLE001 - φ not analytic (or not evaluable) off the real axis
        return None
    out = []
    # coefficients at the level of the quadrature noise (|a_k| r^k ~ 1e-40 max_j |a_j| r^j) are 0
    scale = max(abs(u) * r ** k for k, u in enumerate(a1))
    for k, (u, v) in enumerate(zip(a1, a2)):
        if abs(u) * r ** k < 1e-32 * scale:
            out.append(0.0)
            continue
        if abs(u.imag) > 1e-20 * (r ** -k) or not mpmath.isfinite(u.real):
            return None
        # the two radii agree to ~1e-30 r^-k for an analytic φ; a disagreement means a
        # singularity inside the circle (or a non-analytic formula)
        if abs(u - v) > 1e-18 * max(abs(u), (r / 2) ** -k * 1e-12):
            return None
        out.append(float(u.real))
    return tuple(out)


def taylor_coefficients(activation) -> np.ndarray | None:
    """a_0 .. a_25 of φ at 0 (float64), or None where φ is not analytic on a disc about 0.

    >>> taylor_coefficients("tanh")[:4].round(15).tolist()
    [0.0, 1.0, 0.0, -0.333333333333333]
    """
    t = _taylor(Activation.get(activation))
    return None if t is None else np.array(t)


def _dfact(n: int) -> float:
    return float(math.prod(range(n, 0, -2))) if n > 0 else 1.0


def _series(a: np.ndarray, K: np.ndarray):
    """Σ c_m K^m summed while the terms decrease: (value, error, converged)."""
    M = (len(a) - 1) // 2
    c = np.zeros(M + 1)
    c[0] = -a[0] ** 2
    for m in range(1, M + 1):
        s = sum(a[k] * a[2 * m - k] * (k * (2 * m - k) - (2 * m - 1)) for k in range(2 * m + 1))
        c[m] = _dfact(2 * m - 3) * s
    # optimal truncation of the (asymptotic) series: sum the terms before the smallest one of
    # m >= 1 and take that term as the error; terms with c_m = 0 are skipped
    with np.errstate(over="ignore", invalid="ignore"):   # K^m overflows for K >> 1: inf terms
        T = c[:, None] * K[None, :] ** np.arange(M + 1)[:, None]      # (M+1, n)
    A = np.abs(np.nan_to_num(T, nan=np.inf))
    A1 = np.where(c[1:, None] != 0, A[1:], np.inf)   # (a term that underflows to 0 ends it)
    stop = 1 + np.argmin(A1, axis=0)                                   # index of the smallest
    keep = np.arange(M + 1)[:, None] < stop[None, :]
    val = np.where(keep, T, 0.0).sum(axis=0)
    mag = np.where(keep, A, 0.0).sum(axis=0)
    smallest = A[stop, np.arange(K.size)]
    smallest = np.where(np.isfinite(smallest), smallest, 0.0)
    return val, smallest + 8 * _EPS * mag


#: seconds for one integration-by-parts evaluation of the gap
_PARTS_SECONDS = 2.0
#: activations whose integration-by-parts route failed (not tried again)
_PARTS_FAILED: set = set()


@lru_cache(maxsize=64)
def _parts_integrand(act: Activation):
    """The named integrand ``phi_euler``, ``φ·(xφ' − φ)`` with ``xφ' − φ`` expanded so that
    the terms that grow with x cancel symbolically (held in a zoo activation's cache), or None
    where it is not defined or the symbolic work does not finish within its budget."""
    from critheory.errors import CritheoryError

    try:
        return integrand(act, "phi_euler")
    except CritheoryError:
        return None


def _by_parts(act: Activation, K: np.ndarray):
    """``P(K) = E_K[φ(xφ' − φ)] − K E_K[φφ'']`` (Gaussian integration by parts,
    ``K E[φ'²] = E[xφφ'] − K E[φφ'']`` with φ'' distributional): for φ asymptotically
    linear through the origin (GELU, SiLU, ELU) both integrands are localized near 0, so at
    large K the gap ~ √K is no difference of two O(K) terms (the difference resolved GELU's
    σ_b² = 1.1e10 at K* = 1e22 to no digit). Returns ``(value, error)`` or None."""
    from critheory.errors import CritheoryError

    from critheory.activation.budget import within

    if act in _PARTS_FAILED:
        return None
    g = _parts_integrand(act)
    if g is None:
        return None
    try:
        # under a budget: where the integrand cancels in float64 (softplus: xσ(x) − log(1 + e^x)
        # at large x) the quadrature refines for seconds and then fails; that activation is
        # not tried again
        ok, r = within(lambda: (expect(act, g, K), expect(act, "phi_d2phi", K)), _PARTS_SECONDS)
    except CritheoryError:
        ok, r = False, None
    if not ok:
        _PARTS_FAILED.add(act)
        return None
    e1, e2 = r
    v1, v2 = np.asarray(e1.value, float), np.asarray(e2.value, float)
    val = v1 - K * v2
    err = (np.asarray(e1.error, float) + K * np.asarray(e2.error, float)
           + 2 * _EPS * (np.abs(v1) + K * np.abs(v2)))
    return val, np.where(np.isfinite(val), err, np.inf)


def poincare_gap(activation, K, *, moments: tuple | None = None) -> Expectation:
    """``K E_K[φ'²] − E_K[φ²]`` (>= 0 by the Gaussian Poincaré inequality for continuous φ),
    vectorized over K > 0, with an error estimate; method ``difference``, ``series`` (small K)
    or ``parts`` (large K, integration by parts: see :func:`_by_parts`).

    ``moments``: the expectations ``(E_K[φ'²], E_K[φ²])`` at the same K where the caller has
    them already (the mean-field activation rule needs them anyway), else computed here."""
    act = Activation.get(activation)
    act.check_continuous("the Poincaré gap")
    Karr = check_variance(K)
    Kf = Karr.ravel()
    D, S = moments if moments is not None else (expect(act, "dphi2", Kf),
                                                  expect(act, "phi2", Kf))
    dv, de = np.asarray(D.value, float), np.asarray(D.error, float)
    sv, se = np.asarray(S.value, float), np.asarray(S.error, float)
    val = Kf * dv - sv
    err = Kf * de + se + 2 * _EPS * (Kf * np.abs(dv) + np.abs(sv))
    meth = np.full(Kf.shape, "difference", dtype=object)
    poor = ~(err <= 1e-13 * np.abs(val))
    if np.any(poor):
        a = _taylor(act)
        if a is not None:
            sv2, se2 = _series(np.array(a), Kf[poor])
            better = se2 < err[poor]
            idx = np.flatnonzero(poor)[better]
            val[idx], err[idx], meth[idx] = sv2[better], se2[better], "series"
    poor = ~(err <= 1e-13 * np.abs(val)) & (Kf > 1.0)
    if np.any(poor):
        r = _by_parts(act, Kf[poor])
        if r is not None:
            sv2, se2 = r
            better = se2 < err[poor]
            idx = np.flatnonzero(poor)[better]
            val[idx], err[idx], meth[idx] = sv2[better], se2[better], "parts"
    shape = Karr.shape
    if Karr.ndim == 0:
        return Expectation(float(val[0]), float(err[0]), str(meth[0]), meth.reshape(shape))
    return Expectation(val.reshape(shape), err.reshape(shape),
                       "+".join(sorted(set(meth.tolist()))), meth.reshape(shape))
