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

import math
from dataclasses import dataclass

import numpy as np

from critheory.activation import Activation
from critheory.common.checks import check_hyper
from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError
from critheory.common.reprs import short_repr

__all__ = ["ExactMoments", "exact_scale_invariant", "slope_moments", "exact_kurtosis_stderr"]


@dataclass(frozen=True)
class ExactMoments:
    """Exact ``E[z²]``, ``E[z⁴]`` and the excess kurtosis of one preactivation, l = 1..L."""

    __repr__ = short_repr

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
                          width: int, q0: float = 1.0, *, hidden: float | None = None
                          ) -> ExactMoments:
    """Exact moments of an MLP with a scale-invariant activation at width ``width`` (module
    docstring). float64 throughout; entries beyond float64 are inf.

    ``hidden = M``: every layer ``l -> l+1`` passes through a hidden layer of ``M·width``
    neurons, ``z^{l+1} = W₂ φ(W₁ φ(z^l) + b₁) + b₂`` (the unit ``Phi, Dense(width=M), Phi,
    Dense``): two steps of the same recursion, with ``1/n`` the fan-in of each (``width``, then
    ``M·width``, which must be a whole number).

    >>> m = exact_scale_invariant("linear", 1.0, 0.0, depth=2, width=4, hidden=2)
    >>> round(float(m.kurtosis[1]), 12)          # 3((1 + 2/4)(1 + 2/8) − 1)
    2.625

    Examples
    --------
    >>> import critheory as ct
    >>> e = ct.exact_scale_invariant("relu", 2.0, 0.0, depth=3, width=16)
    >>> e.kurtosis.shape
    (3,)
    """
    act = Activation.get(activation)
    A2, A4 = slope_moments(act)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    n, L = int(width), int(depth)
    if n != width or n < 1 or L != depth or L < 1:
        raise InvalidArgumentError("width and depth must be integers >= 1")
    fan_ins = (n,)
    if hidden is not None:
        h = float(hidden) * n
        if not (math.isfinite(h) and h >= 1 and h == int(h)):
            raise InvalidArgumentError(f"hidden * width must be a whole number >= 1, got "
                                       f"{hidden!r} * {n}")
        fan_ins = (n, int(h))
    m1 = np.empty(L)
    m2 = np.empty(L)
    m1[0] = sb + sw * q0
    m2[0] = m1[0] ** 2
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(L - 1):
            a1, a2 = m1[i], m2[i]
            for k in fan_ins:
                f = sw * sw * (A2 * A2 + (3 * A4 - A2 * A2) / k)
                a1, a2 = sb + sw * A2 * a1, sb * sb + 2 * sb * sw * A2 * a1 + f * a2
            m1[i + 1], m2[i + 1] = a1, a2
        return ExactMoments(n, np.arange(1, L + 1), m1, 3 * m2, 3 * m2 / (m1 * m1) - 3.0)


def _set_partitions(items: list) -> list:
    """All set partitions of a list (as lists of blocks)."""
    if not items:
        return [[]]
    first, rest = items[0], items[1:]
    out = []
    for part in _set_partitions(rest):
        out.append([[first]] + part)
        for k in range(len(part)):
            out.append(part[:k] + [[first] + part[k]] + part[k + 1:])
    return out


def _mean_moment(factors: tuple, raw, n: int) -> float:
    """``E[Π_f mean_n(f)]`` over n iid samples: ``n^{−k} Σ_P (n)_{|P|} Π_{B∈P} raw(B)``,
    summed over the set partitions P of the k factors (``raw(B)`` = E of the product of the
    factors of block B in one sample)."""
    k = len(factors)
    if k == 0:
        return 1.0
    tot = 0.0
    for part in _set_partitions(list(range(k))):
        ways = 1.0
        for j in range(len(part)):
            ways *= (n - j)
        if ways == 0:
            continue
        prod = 1.0
        for block in part:
            prod *= raw(tuple(factors[i] for i in block))
        tot += ways * prod
    return tot / float(n) ** k


def _dfact(m: int) -> float:
    """(m − 1)!! for even m: E[g^m]."""
    out = 1.0
    for j in range(m - 1, 0, -2):
        out *= j
    return out


def exact_kurtosis_law(activation, weight_var: float, bias_var: float, depth: int,
                       width: int, seeds: int, q0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(se, skew)``: exact standard error and skewness of the measured kurtosis
    ``M4/M2² − 3`` over ``seeds`` networks (scale-invariant MLP), per depth.

    The estimator is linearized, ``κ̂ − κ ≈ mean_s ψ_s``, ``ψ = m4/M2² − 2M4 m2/M2³``, with
    ``m2 = Ĝ a``, ``m4 = Ĝ² b`` (a, b the means of g², g⁴ over the n neurons, independent of
    Ĝ^l). Its variance and third central moment need ``E[m2^i m4^j] = E[Ĝ^{i+2j}] E[a^i b^j]``
    for i + j ≤ 3: the moments of means of iid variables by set partitions, and ``E[Ĝ^k]``,
    k ≤ 6, exactly from ``Ĝ^{l+1} = σ_b² + σ_w² Ĝ^l ū``. ``skew`` is the skewness of the mean
    over S networks, ``μ₃(ψ)/(σ³√S)``: the heavy right tail of m4 (rare networks with a large
    Ĝ) that makes the statistic's upper tail longer than a normal's.

    >>> se, sk = exact_kurtosis_law("linear", 1.0, 0.0, 3, 8, 1000)
    >>> bool(sk[1] > 0 and sk[2] > sk[1])
    True
    """
    act = Activation.get(activation)
    if act.homogeneous_slopes is None:
        raise InvalidArgumentError(f"{act.name} is not scale-invariant: no exact moments")
    ap, am = act.homogeneous_slopes
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    n, L, S = int(width), int(depth), int(seeds)
    if n < 1 or L < 1 or S < 2:
        raise InvalidArgumentError("width, depth >= 1 and seeds >= 2")
    from math import comb

    Eu = [(ap ** (2 * r) + am ** (2 * r)) / 2.0 * _dfact(2 * r) for r in range(7)]
    ub = [_mean_moment(("u",) * k, lambda B: Eu[len(B)], n) for k in range(7)]

    def raw_ab(B):
        return _dfact(sum(2 if f == "a" else 4 for f in B))

    ab = {(i, j): _mean_moment(("a",) * i + ("b",) * j, raw_ab, n)
          for i in range(4) for j in range(4) if i + j <= 3}
    G = [(sb + sw * q0) ** k for k in range(7)]
    se, skew = np.empty(L), np.empty(L)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for l in range(L):
            def E(i, j):        # E[m2^i m4^j]
                return G[i + 2 * j] * ab[(i, j)]
            M2, M4 = E(1, 0), E(0, 1)
            g4, g2 = 1.0 / M2 ** 2, -2.0 * M4 / M2 ** 3
            e1 = g4 * M4 + g2 * M2
            e2 = g4 * g4 * E(0, 2) + 2 * g4 * g2 * E(1, 1) + g2 * g2 * E(2, 0)
            e3 = (g4 ** 3 * E(0, 3) + 3 * g4 * g4 * g2 * E(1, 2) + 3 * g4 * g2 * g2 * E(2, 1)
                  + g2 ** 3 * E(3, 0))
            var = e2 - e1 * e1
            mu3 = e3 - 3 * e1 * e2 + 2 * e1 ** 3
            se[l] = np.sqrt(max(var, 0.0) / S)
            skew[l] = mu3 / var ** 1.5 / np.sqrt(S) if var > 0 else 0.0
            G = [sum(comb(k, j) * sb ** (k - j) * sw ** j * G[j] * ub[j] for j in range(k + 1))
                 for k in range(7)]
    return se, skew


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
