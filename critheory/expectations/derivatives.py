"""Derivatives in the variance of Gaussian expectations: ``d^k/dK^k E_K[g]``, k = 1, 2.

The finite-width theory needs ``d E_K[φ²]/dK`` (χ_∥) and ``d² E_K[φ²]/dK²`` (the 1/n shift of
the kernel). Four routes, each with a value and an error estimate as for :func:`expect`:

``closed_form``
    where ``E_K[g]`` itself is known in closed form as a function of K: a scale-invariant
    activation (``φ = a₊x`` for x > 0, ``a₋x`` below) makes every named integrand of degree p
    homogeneous, ``E_K[g] = E_1[g] K^{p/2}``, so ``d^k/dK^k E_K[g] = E_1[g] (p/2)_k K^{p/2−k}``
    (falling factorial; exactly 0 when p/2 is an integer below k); ``φ = c·erf(ax)`` has
    ``E_K[φ²] = c²(2/π) arcsin(2a²K/(1+2a²K))``, hence
    ``d/dK = 4a²c²/(π(1+2a²K)√(1+4a²K))`` and
    ``d²/dK² = −16a⁴c²(1+3a²K)/(π(1+2a²K)²(1+4a²K)^{3/2})`` (derived).
``heat``
    where the integrand g is smooth on the real line (no breakpoint, no point mass): the heat
    equation of the Gaussian, ``∂_K E_K[g] = ½ E_K[g'']``, so ``d^k/dK^k E_K[g] =
    2^{-k} E_K[g^{(2k)}]``, with ``g^{(2k)}`` differentiated symbolically (sympy) and its
    expectation computed by :func:`expect` (same accuracy; error estimate scaled by 2^{-k}).
``stein``
    where g has kinks (ELU, hardtanh, ...): the Hermite (Stein) forms
    ``d/dK E_K[g] = E_K[g(h)(h² − K)]/(2K²)`` and
    ``d²/dK² E_K[g] = E_K[g(h)(h⁴ − 6Kh² + 3K²)]/(4K⁴)``, assembled from ``E_K[g]``,
    ``E_K[h²g]``, ``E_K[h⁴g]``. The combination cancels (for g ≈ h² near small K the three terms
    of the second derivative are 15K³, −18K³, 3K³), so the reported error is conservative:
    the quadrature errors of the three terms times their coefficients plus 8 ulps of the sum
    of their magnitudes, divided by ``2K²`` (``4K⁴``). For ``g = φ²`` (continuous φ) the same
    forms are applied to ``u = E_K[hφφ'] = K dE_K[φ²]/dK`` (one expectation fewer):
    ``d/dK E_K[φ²] = u/K``, ``d²/dK² E_K[φ²] = (E_K[h³φφ'] − 3Ku)/(2K³)``.
``mpmath``
    the Stein form with every expectation at ``dps`` digits
    (:func:`critheory.expectations.reference.mp_expect`): cancellation costs digits of the
    working precision only. The reference of the tests.

``auto`` takes the first that applies among closed_form, heat, stein.

Examples
--------
>>> from critheory.expectations.derivatives import dexpect
>>> float(dexpect("relu", "phi2", 3.0).value)          # E_K[relu²] = K/2
0.5
>>> float(dexpect("relu", "phi2", 3.0, order=2).value)
0.0
>>> r = dexpect("tanh", "phi2", 0.5, order=2)
>>> r.method, bool(r.error < 1e-12)
('heat', True)
>>> e = dexpect("erf", "phi2", 1.0)                     # 4/(π·3·√5)
>>> e.method, round(float(e.value), 12)
('closed_form', 0.189803344911)
"""
from __future__ import annotations

import math

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.errors import InvalidArgumentError
from critheory.expectations.gaussian import Expectation, check_variance, expect
from critheory.expectations.integrands import NAMED, integrand

__all__ = ["dexpect", "DERIVATIVE_METHODS"]

DERIVATIVE_METHODS = ("auto", "closed_form", "heat", "stein", "mpmath")

_EPS = np.finfo(float).eps

#: degree p of the named integrands of a scale-invariant φ (E_K[g] ∝ K^{p/2})
_DEGREE = {"phi": 1, "phi2": 2, "phi4": 4, "dphi": 0, "dphi2": 0, "h_phi_dphi": 2}


def _falling(a: float, k: int) -> float:
    out = 1.0
    for j in range(k):
        out *= a - j
    return out


def _pack(value, error, method: str, scalar: bool) -> Expectation:
    value = np.asarray(value, dtype=float)
    error = np.asarray(error, dtype=float)
    methods = np.full(value.shape, method, dtype=object)
    if scalar:
        return Expectation(float(value.ravel()[0]), float(error.ravel()[0]), method, methods)
    return Expectation(value, error, method, methods)


def _homogeneous(act: Activation, name, K: np.ndarray, order: int):
    if not isinstance(name, str) or name not in _DEGREE or act.homogeneous_slopes is None:
        return None
    p = _DEGREE[name]
    c = expect(act, name, 1.0)
    f = _falling(p / 2.0, order)
    if f == 0.0:
        z = np.zeros(K.shape)
        return z, z.copy()
    v = c.value * f * K ** (p / 2.0 - order)
    return v, (abs(c.error) * abs(f) + 4 * _EPS * abs(c.value * f)) * K ** (p / 2.0 - order)


def _erf(act: Activation, name, K: np.ndarray, order: int):
    if name != "phi2":
        return None
    from critheory.expectations.closed_forms import erf_params

    try:
        p = erf_params(act)
    except Exception:  # noqa: BLE001 - no sympy match: no closed form
        return None
    if p is None:
        return None
    c, a = p
    a2 = a * a
    u = a2 * K
    if order == 1:
        v = 4 * a2 * c * c / (math.pi * (1 + 2 * u) * np.sqrt(1 + 4 * u))
    else:
        v = -16 * a2 * a2 * c * c * (1 + 3 * u) / (math.pi * (1 + 2 * u) ** 2
                                                      * (1 + 4 * u) ** 1.5)
    return v, 16 * _EPS * np.abs(v)


def _smooth(itg) -> bool:
    return not itg.breakpoints and not itg.point_masses


def _heat(act, itg, K, order: int, rtol: float):

    if itg.name in NAMED:      # a named derived integrand: in a zoo activation's cache
        d = integrand(act, f"dx{2 * order}:{itg.name}")
    else:
        cache = act.__dict__.setdefault("_heat_derivatives", {})
        key = (itg.name, 2 * order)
        d = cache.get(key)
        if d is None:
            import sympy as sp

            from critheory.activation.symbolic import X

            d = cache[key] = sp.diff(itg.expr, X, 2 * order)
    r = expect(act, d, K, rtol=rtol)
    s = 0.5 ** order
    return np.asarray(r.value, dtype=float) * s, np.asarray(r.error, dtype=float) * s


def _stein_phi2(act, K, order: int, rtol: float):
    """``E_K[φ²]``'s derivatives from ``u = E_K[hφφ']`` (integration by parts, φ continuous):
    ``d/dK = u/K``, ``d²/dK² = (E_K[h³φφ'] − 3K u)/(2K³)`` (the Stein form applied to u):
    one expectation fewer than the general form, and the one the mean field's χ_∥ uses."""
    u = expect(act, "h_phi_dphi", K, rtol=rtol)
    uv, ue = np.asarray(u.value, dtype=float), np.asarray(u.error, dtype=float)
    if order == 1:
        return uv / K, (ue + 4 * _EPS * np.abs(uv)) / K
    t = expect(act, "x2:h_phi_dphi", K, rtol=rtol)
    tv, te = np.asarray(t.value, dtype=float), np.asarray(t.error, dtype=float)
    den = 2 * K ** 3
    val = (tv - 3 * K * uv) / den
    err = (te + 3 * K * ue + 8 * _EPS * (np.abs(tv) + 3 * K * np.abs(uv))) / den
    return val, err


def _times_power(act, itg, p: int):
    """x^p·g: a named derived integrand where g is named (in a zoo activation's cache)."""
    if p == 0:
        return itg
    if itg.name in NAMED:
        return integrand(act, f"x{p}:{itg.name}")
    from critheory.activation.symbolic import X

    return itg.expr * X ** p


def _stein_terms(act, itg, K, order: int, rtol: float):
    if itg.name == "phi2" and not act.discontinuities:
        return _stein_phi2(act, K, order, rtol)
    if itg.point_masses:
        raise InvalidArgumentError(f"derivatives in K of E[{itg.name}] (a distributional "
                                   "integrand) are not supported")
    powers = (0, 2) if order == 1 else (0, 2, 4)
    m = {}
    for p in powers:
        r = expect(act, _times_power(act, itg, p), K, rtol=rtol)
        m[p] = (np.asarray(r.value, dtype=float), np.asarray(r.error, dtype=float))
    if order == 1:
        coef = {0: -K, 2: np.ones_like(K)}
        den = 2 * K * K
    else:
        coef = {0: 3 * K * K, 2: -6 * K, 4: np.ones_like(K)}
        den = 4 * K ** 4
    val = sum(coef[p] * m[p][0] for p in powers)
    err = sum(np.abs(coef[p]) * m[p][1] for p in powers)
    mag = sum(np.abs(coef[p] * m[p][0]) for p in powers)
    return val / den, (err + 8 * _EPS * mag) / den


def _mp_combo(act, itg, K: float, order: int, dps: int):
    """The Stein combination for one K, every expectation at ``dps`` digits (cancellation
    costs working digits only)."""
    import mpmath

    from critheory.activation.symbolic import X
    from critheory.expectations.reference import mp_expect

    with mpmath.workdps(dps + 10):
        k = mpmath.mpf(K)
        m = {p: mp_expect(act, itg.expr * X ** p if p else itg.expr, k, dps=dps + 10)
             for p in ((0, 2) if order == 1 else (0, 2, 4))}
        if order == 1:
            return (m[2] - k * m[0]) / (2 * k * k)
        return (m[4] - 6 * k * m[2] + 3 * k * k * m[0]) / (4 * k ** 4)


def dexpect(activation, g="phi2", K=1.0, order: int = 1, *, method: str = "auto",
            rtol: float = 1e-13, dps: int = 30) -> Expectation:
    """``d^order/dK^order E_K[g]``, h ~ N(0, K), vectorized over K (see the module docstring).

    Parameters
    ----------
    activation : str, sympy.Expr or Activation
    g : str or sympy.Expr
        A named integrand (``"phi2"``, ``"phi4"``, ...) or an expression in ``x``.
    K : float or array_like
        Variance(s), finite and > 0.
    order : {1, 2}
    method : {"auto", "closed_form", "heat", "stein", "mpmath"}
    rtol : float
        Target relative accuracy of the expectations the fast routes call.
    dps : int
        Decimal digits of the mpmath route.

    Returns
    -------
    Expectation
        ``value``, ``error`` (estimated absolute error) and ``method`` (the route).

    Examples
    --------
    >>> float(dexpect("linear", "phi4", 2.0, order=2).value)   # E[h⁴] = 3K²
    6.0
    """
    if isinstance(order, bool) or order not in (1, 2):
        raise InvalidArgumentError(f"order must be 1 or 2, got {order!r}")
    if not isinstance(method, str) or method not in DERIVATIVE_METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(DERIVATIVE_METHODS)}, "
                                   f"got {method!r}")
    act = Activation.get(activation)
    itg = integrand(act, g)
    Karr = check_variance(K)
    scalar = Karr.ndim == 0
    itg.growth  # noqa: B018 - GrowthError for integrands without Gaussian expectations
    name = g if isinstance(g, str) else None
    if method in ("auto", "closed_form"):
        for route in (_homogeneous, _erf):
            r = route(act, name, Karr, order)
            if r is not None:
                return _pack(r[0], r[1], "closed_form", scalar)
        if method == "closed_form":
            raise InvalidArgumentError(f"no closed form is known for d/dK E[{itg.name}] of "
                                       f"{act.name}")
    if method == "heat" or (method == "auto" and _smooth(itg)):
        if not _smooth(itg):
            raise InvalidArgumentError(f"the heat-equation route needs a smooth integrand; "
                                       f"E[{itg.name}] of {act.name} has kinks at "
                                       f"{', '.join(f'{b:g}' for b in itg.breakpoints)}")
        v, e = _heat(act, itg, Karr, order, rtol)
        return _pack(v, e, "heat", scalar)
    if method == "mpmath":
        vals = np.array([float(_mp_combo(act, itg, float(k), order, dps))
                         for k in Karr.ravel()]).reshape(Karr.shape)
        return _pack(vals, np.abs(vals) * 10.0 ** (-dps + 3), "mpmath", scalar)
    v, e = _stein_terms(act, itg, Karr, order, rtol)
    return _pack(v, e, "stein", scalar)
