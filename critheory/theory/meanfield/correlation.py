"""The correlation map of Poole et al. (2016) and Schoenholz et al. (2017): c*, χ_c and ξ_c.

Two inputs whose preactivations have the variance ``q*`` (the fixed point of the kernel map)
and correlation ``c`` are mapped by a layer to the correlation

    c' = K12'(q*, c q*, q*) / q*          (Schoenholz et al. 2017, "Deep Information
                                           Propagation", eq. (4) with q*_11 = q*_22 = q*),

``K12'`` the covariance map of the architecture (:meth:`ArchitectureMaps.covariance_map`; for
the MLP ``σ_w² E[φ(u1)φ(u2)] + σ_b²``). Its fixed points ``c*``: ``c = 1`` always; in the
ordered phase (``χ_1 < 1``) it is the stable one; in the chaotic phase (``χ_1 > 1``) a stable
``c* < 1`` appears. The slope at ``c*`` is

    χ_c = ∂c'/∂c |_{c*}                   (for the MLP ``σ_w² E[φ'(u1) φ'(u2)]`` at ``c*``,
                                           Schoenholz et al. eq. (6)),

with ``χ_c = χ_1`` (critheory's ``chi_perp`` = ``chi_jacobian`` of the MLP) at ``c* = 1``, and
the depth scale of correlations is ``ξ_c = −1/log χ_c`` (their eq. (7)–(9): ``|c^l − c*| ∼
e^{−l/ξ_c}``), infinite at criticality.

critheory's older ``correlation_length`` was ``1/|log χ_J(K*)|``, the depth scale of the APJN
(of the gradients), which equals ``ξ_c`` only in the ordered phase; it is now also called
``jacobian_depth_scale``. For tanh at (σ_w², σ_b²) = (3, 0.1): ``1/|log χ_1| = 5.98``,
``ξ_c = 8.98``.

The slope away from ``c = 1`` is a central difference of the map with Richardson extrapolation
(steps ``h`` and ``h/2``, ``h = 1e-3``); its error estimate is the difference of the two
estimates plus the rounding of the map, and :func:`correlation_fixed_point` reports it.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> r = correlation_fixed_point(architecture("mlp", "tanh"), 3.0, 0.1, 1.5076317702082749)
>>> round(r.c_star, 4), round(r.xi_c, 2)
(0.4775, 8.98)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.theory.meanfield.maps import check_arch
from critheory.common.reprs import short_repr

__all__ = ["CorrelationFixedPoint", "correlation_fixed_point", "correlation_map"]

#: Steps of the Richardson central difference of the correlation map (in c).
_H = 1e-3
#: Relative distance from 1 below which a stable fixed point counts as c* = 1.
_AT_ONE = 1e-9


@dataclass(frozen=True)
class CorrelationFixedPoint:
    """The stable fixed point of the correlation map at ``q*`` and its depth scale.

    Attributes
    ----------
    q_star : float
        The kernel fixed point the correlation map is taken at.
    c_star : float
        The stable fixed point of the correlation map (1 in the ordered phase and at
        criticality).
    chi_c : float
        Slope of the correlation map at ``c_star``.
    chi_c_error : float
        Error estimate of ``chi_c`` (0 where it is the exact tangent at ``c* = 1``).
    xi_c : float
        ``−1/log χ_c`` (``inf`` where ``χ_c >= 1``, at criticality).
    """

    __repr__ = short_repr

    q_star: float
    c_star: float
    chi_c: float
    chi_c_error: float
    xi_c: float

    def to_dict(self) -> dict:
        return jsonable({"c_star": self.c_star, "chi_c": self.chi_c,
                         "chi_c_error": self.chi_c_error,
                         "xi_c": None if not math.isfinite(self.xi_c) else self.xi_c})


def correlation_map(arch, weight_var: float, bias_var: float, q_star: float, c):
    """``c' = K12'(q*, c q*, q*) / K'(q*)`` for an array of ``c`` in [−1, 1] (``K'(q*) = q*``
    at a fixed point; dividing by the computed ``K'`` keeps ``c' = 1`` at ``c = 1``)."""
    arch = check_arch(arch)
    c = np.asarray(c, dtype=float)
    q = np.full(c.shape, float(q_star))
    K, K12, _ = arch.covariance_map(q, c * q, q, weight_var, bias_var)
    return np.asarray(K12, dtype=float) / np.asarray(K, dtype=float)


def _slope(arch, sw, sb, q, c) -> tuple[float, float]:
    """Richardson central difference of the map at ``c`` (inside (−1, 1)) and its error."""
    h = min(_H, 0.5 * (1.0 - abs(c))) if abs(c) < 1 else _H
    f = correlation_map(arch, sw, sb, q, [c - h, c + h, c - h / 2, c + h / 2])
    d1 = (f[1] - f[0]) / (2 * h)
    d2 = (f[3] - f[2]) / h
    d = (4.0 * d2 - d1) / 3.0
    rounding = 4.0 * np.finfo(float).eps * max(abs(f).max(), 1.0) / h
    return float(d), float(abs(d - d2) + rounding)


def correlation_fixed_point(arch, weight_var: float, bias_var: float,
                            q_star: float | None) -> CorrelationFixedPoint | None:
    """``c*``, ``χ_c`` and ``ξ_c`` at the kernel fixed point ``q_star`` (None where there is
    none: a runaway kernel, or ``q* = 0``).

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.correlation_fixed_point(ct.architecture("mlp", "tanh"), 2.0, 0.0, None)
    >>> c is None or 0.0 <= c.c_star <= 1.0
    True
    """
    arch = check_arch(arch)
    from critheory.theory.roots import brent

    if q_star is None or not np.isfinite(q_star) or q_star <= 0:
        return None
    sw, sb, q = float(weight_var), float(bias_var), float(q_star)
    chi1 = float(arch.chi_perp(q, sw, sb))
    if not np.isfinite(chi1):
        return None
    if chi1 <= 1.0:                          # ordered (or critical): c* = 1 is stable
        return CorrelationFixedPoint(q, 1.0, chi1, 0.0, _xi(chi1))

    def g(c):
        return float(correlation_map(arch, sw, sb, q, [c])[0]) - c

    g0 = g(0.0)
    if g0 == 0.0:
        c_star = 0.0
    else:
        lo = 0.0 if g0 > 0 else -1.0
        if g(lo) <= 0:                        # f(-1) = -1: anticorrelated fixed point
            lo = -1.0 + 1e-12
        hi = None
        for d in (1e-2, 1e-4, 1e-6, 1e-8):
            if g(1.0 - d) < 0:
                hi = 1.0 - d
                break
        if hi is None:
            return CorrelationFixedPoint(q, 1.0, chi1, 0.0, _xi(chi1))
        c_star = brent(g, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
    if 1.0 - c_star <= _AT_ONE:
        return CorrelationFixedPoint(q, 1.0, chi1, 0.0, _xi(chi1))
    chi_c, err = _slope(arch, sw, sb, q, c_star)
    return CorrelationFixedPoint(q, float(c_star), chi_c, err, _xi(chi_c))


def _xi(chi: float) -> float:
    if not (chi > 0) or chi >= 1.0:
        return math.inf
    return -1.0 / math.log(chi)
