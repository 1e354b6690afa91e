"""Exact finite-width moments of scale-invariant MLPs: the check of the 1/n expansion.

For ``φ(x) = a₊x`` (x > 0), ``a₋x`` (x < 0) the MLP's preactivations at layer l+1 are, given layer
l, i.i.d. ``N(0, Ĝ^{l+1})`` with ``Ĝ^{l+1} = σ_b² + (σ_w²/n) Σ_j φ(z_j^l)²``, and given
``Ĝ^l`` the ``φ(z_j^l)² = Ĝ^l u_j`` with ``u_j = φ(g_j)²``, ``g_j ~ N(0, 1)`` i.i.d., so that
``E[u] = A₂``, ``E[u²] = 3A₄`` (``A_k = (a₊^k + a₋^k)/2``). Hence, exactly at every width n,

    E[Ĝ^{l+1}]  = σ_b² + σ_w² A₂ E[Ĝ^l]
    E[(Ĝ^{l+1})²] = σ_b⁴ + 2σ_b²σ_w² A₂ E[Ĝ^l] + σ_w⁴ (A₂² + (3A₄ − A₂²)/n) E[(Ĝ^l)²]

with ``Ĝ¹ = K¹ = σ_b² + σ_w² q0`` deterministic, and ``E[z²] = E[Ĝ]``, ``E[z⁴] = 3E[Ĝ²]``. The
deep linear network (a₊ = a₋ = 1) at σ_b² = 0 gives PDLT ch. 3:
``E[z⁴]/E[z²]² = 3 (1 + 2/n)^{l−1}``.

Examples
--------
>>> from critheory.theory.finitewidth.exact import exact_scale_invariant
>>> m = exact_scale_invariant("linear", 1.0, 0.0, depth=3, width=4)
>>> [round(float(k), 12) for k in m.kurtosis]     # 3((3/2)^(l-1) - 1)
[0.0, 1.5, 3.75]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.activation import Activation
from critheory.common.checks import check_hyper
from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError

__all__ = ["ExactMoments", "exact_scale_invariant", "slope_moments", "exact_kurtosis_stderr"]


@dataclass(frozen=True)
class ExactMoments:
    """Exact ``E[z²]``, ``E[z⁴]`` and the excess kurtosis of one preactivation, l = 1..L."""

    width: int
    depths: np.ndarray
    second: np.ndarray
    fourth: np.ndarray
    kurtosis: np.ndarray

    def to_dict(self) -> dict:
        return jsonable({"width": self.width, "depths": self.depths, "second": self.second,
                         "fourth": self.fourth, "kurtosis": self.kurtosis})


def slope_moments(act: Activation) -> tuple[float, float]:
    """``(A₂, A₄)`` of a scale-invariant activation (InvalidArgumentError otherwise)."""
    hs = act.homogeneous_slopes
    if hs is None:
        raise InvalidArgumentError(f"{act.name} is not scale-invariant (a+ x for x > 0, a- x "
                                   "below): no exact finite-width moments")
    ap, am = hs
    return (ap * ap + am * am) / 2.0, (ap ** 4 + am ** 4) / 2.0


def exact_scale_invariant(activation, weight_var: float, bias_var: float, depth: int,
                          width: int, q0: float = 1.0) -> ExactMoments:
    """Exact moments of an MLP with a scale-invariant activation at width ``width`` (module
    docstring). float64 throughout; entries beyond float64 are inf."""
    act = Activation.get(activation)
    A2, A4 = slope_moments(act)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    n, L = int(width), int(depth)
    if n != width or n < 1 or L != depth or L < 1:
        raise InvalidArgumentError("width and depth must be integers >= 1")
    m1 = np.empty(L)
    m2 = np.empty(L)
    m1[0] = sb + sw * q0
    m2[0] = m1[0] ** 2
    f = sw * sw * (A2 * A2 + (3 * A4 - A2 * A2) / n)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(L - 1):
            m1[i + 1] = sb + sw * A2 * m1[i]
            m2[i + 1] = sb * sb + 2 * sb * sw * A2 * m1[i] + f * m2[i]
        return ExactMoments(n, np.arange(1, L + 1), m1, 3 * m2, 3 * m2 / (m1 * m1) - 3.0)


def _raw_from_cumulants(k1, k2, k3, k4):
    return (1.0, k1, k2 + k1 ** 2, k3 + 3 * k2 * k1 + k1 ** 3,
            k4 + 4 * k3 * k1 + 3 * k2 ** 2 + 6 * k2 * k1 ** 2 + k1 ** 4)


def _mean_moments(raw, n: int):
    """Raw moments E[ū^k], k = 0..4, of the mean ū of n iid copies of u (raw moments ``raw``)."""
    _, m1, m2, m3, m4 = raw
    k1 = m1
    k2 = m2 - m1 ** 2
    k3 = m3 - 3 * m2 * m1 + 2 * m1 ** 3
    k4 = m4 - 4 * m3 * m1 - 3 * m2 ** 2 + 12 * m2 * m1 ** 2 - 6 * m1 ** 4
    return _raw_from_cumulants(k1, k2 / n, k3 / n ** 2, k4 / n ** 3)


def exact_kurtosis_stderr(activation, weight_var: float, bias_var: float, depth: int,
                          width: int, seeds: int, q0: float = 1.0) -> np.ndarray:
    """Exact standard error of the measured kurtosis ``M4/M2² − 3`` over ``seeds`` networks.

    The simulator's estimator (:mod:`critheory.simulation.finitewidth`) averages, over S
    independent networks, ``m2 = (1/n)Σ z_i²`` and ``m4 = (1/n)Σ z_i⁴`` of layer l. Given
    ``Ĝ^l`` the z_i are iid N(0, Ĝ^l), so ``m2 = Ĝ a``, ``m4 = Ĝ² b`` with a = (1/n)Σg²,
    b = (1/n)Σg⁴ independent of Ĝ^l: ``E[a²] = 1 + 2/n``, ``E[b²] = 9 + 96/n``,
    ``E[ab] = 3 + 12/n``. The moments ``E[(Ĝ^l)^k]``, k ≤ 4, follow exactly from
    ``Ĝ^{l+1} = σ_b² + σ_w² Ĝ^l ū``, ū the mean of n iid ``u = φ(g)²`` (``E[u^r] =
    A_{2r}(2r − 1)!!``). The delta method with these exact (population) variances gives the
    standard error. Unlike the sample's own standard error it sees the rare networks that
    dominate the variance of m4 (log Ĝ has variance ~ l·(3A₄/A₂² − 1)/n: at depth 10 and
    width 32 the sample variance of 20 000 networks misses most of it).

    >>> se = exact_kurtosis_stderr("linear", 1.0, 0.0, 3, 8, 1000)
    >>> float(se[0]) > 0 and bool(np.all(np.diff(se) > 0))
    True
    """
    act = Activation.get(activation)
    ap, am = act.homogeneous_slopes if act.homogeneous_slopes is not None else (None, None)
    if ap is None:
        raise InvalidArgumentError(f"{act.name} is not scale-invariant: no exact moments")
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    n, L, S = int(width), int(depth), int(seeds)
    if n < 1 or L < 1 or S < 2:
        raise InvalidArgumentError("width, depth >= 1 and seeds >= 2")
    dfact = (1.0, 1.0, 3.0, 15.0, 105.0)
    raw_u = tuple((ap ** (2 * r) + am ** (2 * r)) / 2.0 * dfact[r] for r in range(5))
    ub = _mean_moments(raw_u, n)
    from math import comb

    G = [1.0] + [(sb + sw * q0) ** k for k in range(1, 5)]
    se = np.empty(L)
    Ea2, Eb, Eb2, Eab = 1 + 2.0 / n, 3.0, 9 + 96.0 / n, 3 + 12.0 / n
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(L):
            M2, M4 = G[1], G[2] * Eb
            v2 = G[2] * Ea2 - M2 ** 2
            v4 = G[4] * Eb2 - M4 ** 2
            c24 = G[3] * Eab - M2 * M4
            g4, g2 = 1.0 / M2 ** 2, -2.0 * M4 / M2 ** 3
            var = g4 * g4 * v4 + g2 * g2 * v2 + 2 * g2 * g4 * c24
            se[i] = np.sqrt(max(var, 0.0) / S)
            G = [1.0] + [sum(comb(k, j) * sb ** (k - j) * sw ** j * G[j] * ub[j]
                             for j in range(k + 1)) for k in range(1, 5)]
    return se
