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

__all__ = ["ExactMoments", "exact_scale_invariant", "slope_moments"]


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
