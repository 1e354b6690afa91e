"""Gaussian expectations of activations: the numerical foundation of critheory.

``expect(act, g, K)`` computes ``E_K[g] = E[g(h)]``, h ~ N(0, K), and ``expect2(act, f, g, K11,
K12, K22)`` computes ``E[f(h1) g(h2)]`` for a Gaussian pair, both vectorized over arrays of
variances. Each result carries its value, an error estimate and the method used:

* ``"symmetry"``: odd integrand, exactly 0;
* ``"closed_form"``: see :mod:`critheory.expectations.closed_forms`; accepted only where its round-off
  estimate is below ``rtol`` (else the entry falls back to quadrature);
* ``"double_exponential"``: the trapezoidal rule after a sinh / exp-exp / tanh-sinh map of each
  piece between breakpoints (:mod:`critheory.expectations.de_quadrature`), for centred Gaussians;
* ``"gauss_hermite"`` / ``"gauss_legendre_composite"``: see :mod:`critheory.expectations.quadrature` (the
  two-point expectations, and the fallback where the double-exponential rule does not converge:
  singularities very close to the real axis, exponentially growing integrands);
* ``"mpmath"``: the arbitrary-precision reference of :mod:`critheory.expectations.reference` (on request).

Examples
--------
>>> from critheory.expectations.gaussian import expect
>>> r = expect("erf", "phi2", 1.0)
>>> r.method
'closed_form'
>>> round(float(r.value), 12)  # (2/π) arcsin(2/3)
0.464559054398
>>> expect("tanh", "dphi2", [0.01, 10.0]).method
'double_exponential'
>>> expect("tanh(30*x)", "dphi2", 1.0).method  # poles at ±iπ/60: too close for the DE rule
'gauss_legendre_composite'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.expectations.closed_forms import closed_form_1d, closed_form_2d
from critheory.errors import ConvergenceError, CritheoryError, InvalidArgumentError, InvalidVarianceError
from critheory.expectations.integrands import integrand
from critheory.expectations.quadrature import expect_1d, expect_2d

__all__ = ["Expectation", "expect", "expect2", "moments", "check_variance"]

_METHODS = ("auto", "closed_form", "quadrature", "mpmath")


@dataclass(frozen=True)
class Expectation:
    """A Gaussian expectation with its error estimate.

    Attributes
    ----------
    value : float or ndarray
    error : float or ndarray
        Estimated absolute error.
    method : str
        The method used, or several joined by ``+`` where entries differ (see ``methods``).
    methods : ndarray of str
        The method of each entry.

    Examples
    --------
    >>> import critheory as ct
    >>> r = ct.expect("tanh", "dphi2", 0.7)
    >>> isinstance(r, ct.Expectation), r.error < 1e-12
    (True, True)
    """

    value: Any
    error: Any
    method: str
    methods: Any

    def __float__(self) -> float:
        return float(self.value)


def check_variance(K, name: str = "K") -> np.ndarray:
    """Return K as a float64 array; InvalidVarianceError unless finite, >= the smallest normal
    float64 (2.2e-308) everywhere, a number (not a string or a boolean) and at most
    :data:`MAX_VARIANCES` entries.

    A subnormal K (5e-324) is refused: every Gaussian quadrature node ``√K z`` then gives
    ``g`` values whose products with the weights underflow, so E_K[tanh²] came out 0 ± 0
    (truth 4.9e-324)."""
    if isinstance(K, (str, bytes, bool, np.bool_)) or (
            isinstance(K, (list, tuple)) and any(isinstance(v, (str, bytes, bool, np.bool_))
                                                 for v in K)):
        raise InvalidVarianceError(f"{name} must be a number or an array of numbers, "
                                   f"got {K!r:.60}")
    if isinstance(K, np.ndarray) and K.dtype.kind not in "iuf":
        raise InvalidVarianceError(f"{name} must be an array of numbers, got dtype {K.dtype}")
    if np.size(K) > MAX_VARIANCES:
        raise InvalidVarianceError(f"{name} has {np.size(K)} entries; at most {MAX_VARIANCES} "
                                   "per call (memory grows with their number)")
    try:
        arr = np.asarray(K, dtype=float)
    except (TypeError, ValueError):
        raise InvalidVarianceError(f"{name} must be a number or an array of numbers") from None
    if arr.size == 0:
        raise InvalidVarianceError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise InvalidVarianceError(f"{name} must be finite (got {arr[~np.isfinite(arr)].ravel()[0]})")
    if (arr <= 0).any():
        raise InvalidVarianceError(f"{name} must be > 0 (got {arr[arr <= 0].ravel()[0]:g})")
    if (arr < _TINY).any():
        raise InvalidVarianceError(
            f"{name} = {arr[arr < _TINY].ravel()[0]:g} is subnormal (below {_TINY:g}, the "
            "smallest normal float64): Gaussian expectations there underflow")
    return arr


#: most variances of one expect/expect2 call (each holds a few hundred quadrature nodes)
MAX_VARIANCES = 2_000_000
_TINY = float(np.finfo(float).tiny)


def _pack(value, error, methods, scalar: bool) -> Expectation:
    methods = np.asarray(methods, dtype=object)
    uniq = sorted(set(methods.ravel().tolist()))
    method = "+".join(uniq)
    if scalar:
        return Expectation(float(value.ravel()[0]), float(error.ravel()[0]), method, methods)
    return Expectation(value, error, method, methods)


def _check_method(method: str, rtol=1e-13, dps=30) -> None:
    """The options of expect/expect2: a known method, 1e-16 <= rtol < 1, 15 <= dps <= 1000."""
    if not isinstance(method, str) or method not in _METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    try:
        ok = 1e-16 <= float(rtol) < 1.0 and not isinstance(rtol, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidArgumentError(f"rtol must be a number in [1e-16, 1), got {rtol!r}")
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)) or not 15 <= dps <= 1000:
        raise InvalidArgumentError(f"dps (mpmath digits) must be an integer in [15, 1000], "
                                   f"got {dps!r}")


def expect(activation, g="phi2", K=1.0, *, method: str = "auto", rtol: float = 1e-13,
           dps: int = 30) -> Expectation:
    """E[g(h)], h ~ N(0, K), vectorized over K.

    Parameters
    ----------
    activation : str, sympy.Expr or Activation
    g : str or sympy.Expr
        A named integrand (``"phi"``, ``"phi2"``, ``"dphi2"``, ``"phi_d2phi"``, ``"phi4"``,
        ``"h_phi_dphi"``, ...; see :mod:`critheory.expectations.integrands`) or an expression in ``x``.
    K : float or array_like
        Variance(s), finite and > 0.
    method : {"auto", "closed_form", "quadrature", "mpmath"}
    rtol : float
        Target relative accuracy of the fast methods.
    dps : int
        Decimal digits of the mpmath method.

    Returns
    -------
    Expectation

    Examples
    --------
    >>> float(expect("relu", "phi2", 3.0).value)
    1.5
    """
    _check_method(method, rtol, dps)
    act = Activation.get(activation)
    itg = integrand(act, g)
    Karr = check_variance(K)
    scalar = Karr.ndim == 0
    Kf = Karr.ravel()
    itg.growth  # raises GrowthError for integrands without Gaussian expectations
    if method == "mpmath":
        from critheory.expectations.reference import mp_expect

        vals = np.array([float(mp_expect(act, itg, k, dps=dps)) for k in Kf])
        err = np.abs(vals) * 10.0 ** (-dps + 2)
        return _pack(vals.reshape(Karr.shape), err.reshape(Karr.shape),
                     np.full(Karr.shape, "mpmath", dtype=object), scalar)
    value = np.full(Kf.shape, np.nan)
    error = np.full(Kf.shape, np.nan)
    meth = np.empty(Kf.shape, dtype=object)
    todo = np.ones(Kf.shape, dtype=bool)
    if method in ("auto", "closed_form"):
        if itg.parity == "odd":
            value[:], error[:], meth[:] = 0.0, 0.0, "symmetry"
            todo[:] = False
        else:
            cf = closed_form_1d(itg, Kf)
            if cf is not None:
                v, e = cf
                ok = np.isfinite(v) & (e <= rtol * np.abs(v) + 1e-300)
                if method == "closed_form":
                    ok = np.isfinite(v)
                value[ok], error[ok], meth[ok] = v[ok], e[ok], "closed_form"
                todo &= ~ok
        if method == "closed_form" and np.any(todo):
            raise CritheoryError(f"no closed form is known for E[{itg.name}] of {act.name}")
    if todo.any():
        # the float64 error model of g (measured once per integrand, 5-200 ms) serves the
        # double-exponential rules, which take integrands of bounded exponential growth only
        noise = itg.float64_noise if itg.growth == (0.0, 0.0) else None
        every = todo.all()
        r = expect_1d(itg.numpy, 0.0, np.sqrt(Kf if every else Kf[todo]),
                      breakpoints=itg.breakpoints, growth=itg.growth, rtol=rtol, noise=noise,
                      even=itg.even, features=itg.features)
        if every and not itg.point_masses:
            # nothing from closed forms or symmetry (the common case for smooth activations)
            return _pack(r.value.reshape(Karr.shape), r.error.reshape(Karr.shape),
                         r.method.reshape(Karr.shape), scalar)
        v = r.value
        err = r.error
        for b, c in itg.point_masses:
            pm = c * np.exp(-0.5 * b * b / Kf[todo]) / np.sqrt(2 * np.pi * Kf[todo])
            v = v + pm
            # round-off of the point-mass term (exp, sqrt, products: a few ulps)
            err = err + 8 * np.finfo(float).eps * np.abs(pm)
        value[todo], error[todo], meth[todo] = v, err, r.method
    return _pack(value.reshape(Karr.shape), error.reshape(Karr.shape), meth.reshape(Karr.shape),
                 scalar)


def expect2(activation, f="phi", g="phi", K11=1.0, K12=0.0, K22=1.0, *, method: str = "auto",
            rtol: float = 1e-12, dps: int = 20) -> Expectation:
    """E[f(h1) g(h2)] for (h1, h2) ~ N(0, [[K11, K12], [K12, K22]]), vectorized.

    Examples
    --------
    >>> import numpy as np
    >>> r = expect2("relu", "phi", "phi", 1.0, 0.0, 1.0)  # sin θ/(2π) at θ = π/2
    >>> bool(np.isclose(r.value, 1 / (2 * np.pi)))
    True
    """
    _check_method(method, rtol, dps)
    act = Activation.get(activation)
    fi, gi = integrand(act, f), integrand(act, g)
    if fi.point_masses or gi.point_masses:
        raise InvalidArgumentError("two-point expectations of distributional integrands"
                                   " (phi'' at a kink) are not supported")
    k11, k22 = check_variance(K11, "K11"), check_variance(K22, "K22")
    try:
        k12 = np.asarray(K12, dtype=float)
    except (TypeError, ValueError):
        raise InvalidVarianceError("K12 must be a number or array") from None
    if not np.all(np.isfinite(k12)):
        raise InvalidVarianceError("K12 must be finite")
    try:
        k11, k12, k22 = np.broadcast_arrays(k11, k12, k22)
    except ValueError:
        raise InvalidArgumentError(f"K11, K12, K22 have shapes {np.shape(k11)}, "
                                   f"{np.shape(k12)}, {np.shape(k22)} that do not broadcast "
                                   "together") from None
    bound = np.sqrt(k11 * k22)
    if np.any(np.abs(k12) > bound * (1 + 1e-12)):
        raise InvalidVarianceError("covariance matrix is not positive semidefinite (|K12| >"
                                   " sqrt(K11 K22))")
    k12 = np.clip(k12, -bound, bound)
    scalar = k11.ndim == 0
    a11, a12, a22 = k11.ravel(), k12.ravel(), k22.ravel()
    fi.growth, gi.growth  # noqa: B018 - raise GrowthError early
    if method == "mpmath":
        from critheory.expectations.reference import mp_expect2

        vals = np.array([float(mp_expect2(act, fi, gi, x, y, z, dps=dps))
                         for x, y, z in zip(a11, a12, a22)])
        return _pack(vals.reshape(k11.shape), (np.abs(vals) * 10.0 ** (-dps + 2)).reshape(k11.shape),
                     np.full(k11.shape, "mpmath", dtype=object), scalar)
    n = a11.size
    value = np.full(n, np.nan)
    error = np.full(n, np.nan)
    meth = np.empty(n, dtype=object)
    todo = np.ones(n, dtype=bool)
    cf = None
    if method in ("auto", "closed_form"):
        pf, pg = fi.parity, gi.parity
        if (pf == "odd" and pg == "even") or (pf == "even" and pg == "odd"):
            value[:], error[:], meth[:] = 0.0, 0.0, "symmetry"
            todo[:] = False
        else:
            cf = closed_form_2d(fi, gi, a11, a12, a22)
            if cf is not None:
                v, e = (np.broadcast_to(np.asarray(t, dtype=float), (n,)) for t in cf)
                ok = np.isfinite(v) & ((e <= rtol * np.abs(v) + 1e-300) | (method == "closed_form"))
                value[ok], error[ok], meth[ok] = v[ok], e[ok], "closed_form"
                todo &= ~ok
        if method == "closed_form" and np.any(todo):
            raise CritheoryError(
                f"no closed form is known for E[{fi.name}(h1) {gi.name}(h2)] of {act.name}")
    if np.any(todo):
        try:
            r = expect_2d(fi.numpy, gi.numpy, a11[todo], a12[todo], a22[todo],
                          f_breakpoints=fi.breakpoints, g_breakpoints=gi.breakpoints,
                          f_growth=fi.growth, g_growth=gi.growth, rtol=rtol,
                          f_features=fi.features, g_features=gi.features)
        except ConvergenceError:
            # near |ρ| = 1 a closed form with a larger round-off estimate beats no answer
            if cf is None or not np.all(np.isfinite(v[todo])):
                raise
            value[todo], error[todo], meth[todo] = v[todo], e[todo], "closed_form"
        else:
            value[todo], error[todo], meth[todo] = r.value, r.error, r.method
    return _pack(value.reshape(k11.shape), error.reshape(k11.shape), meth.reshape(k11.shape),
                 scalar)


def moments(activation, K=1.0, *, method: str = "auto") -> dict[str, Expectation]:
    """E[φ], E[φ²], E[φ'²] and E[φφ''] at variance K (the ``critheory moments`` command).

    Examples
    --------
    >>> m = moments("relu", 2.0)
    >>> float(m["dphi2"].value), float(m["phi2"].value)
    (0.5, 1.0)
    """
    act = Activation.get(activation)
    return {name: expect(act, name, K, method=method)
            for name in ("phi", "phi2", "dphi2", "phi_d2phi")}
