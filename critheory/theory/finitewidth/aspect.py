"""The optimal aspect ratio r* = (L/n)* of a critical network, from the information-theoretic
argument of PDLT (Roberts, Yaida, Hanin, arXiv:2106.10165, appendix "Information in Deep
Learning"; the abstract: "we estimate the optimal aspect ratio at which we expect the network to
be practically most useful and show how residual connections can be used to push this scale to
arbitrary depths").

The argument (derived in ``docs/finitewidth.md``, section "Optimal aspect ratio"): on one input,
the ``n_L`` outputs of a finite network are exactly Gaussian given the last hidden layer, with a
random variance Ĝ shared by all of them (theory.md §7). Split the outputs into two groups A and
B (``n_A + n_B = n_L``); their mutual information is zero at infinite width and, in the 1/n
expansion at criticality where ``ε = Var(Ĝ)/E[Ĝ]² = V/(nK²) ≈ ν L/n = ν r``,

    I(A; B) = (n_A n_B / 8) [ε² − (20 + 3 n_L) ε³ / 6] + O(ε⁴)               (A)

(the six-point vertex, the third cumulant of Ĝ, drops out at this order). The leading term grows
with depth (the outputs interact: the network is more than a Gaussian process); the next one
reduces it. (A) is stationary at

    ε* = 4/(20 + 3 n_L),   r* = ε*/ν = 4/((20 + 3 n_L) ν),                     (B)

the same for every split of the outputs. With one output there is no pair of groups, so (B)
holds for ``n_L >= 2`` only. The expansion (A) is at the edge of its validity at r* (the cubic
term is 2/3 of the quadratic one there); the exact mutual information of the scale mixture keeps
growing with r. r* is an order-of-magnitude design scale, not a sharp optimum.

Examples
--------
>>> from critheory.theory.finitewidth.aspect import optimal_aspect_ratio
>>> a = optimal_aspect_ratio(5.0, n_out=2)          # ReLU MLP, two outputs
>>> round(a.value, 12), a.formula
(0.030769230769, '4/((20 + 3 n_L) nu)')
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.common.checks import check_int, check_real
from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError

__all__ = ["AspectRatio", "optimal_aspect_ratio", "information_coefficients",
           "truncated_information", "student_t_information", "aspect_ratio_from_curves",
           "network_optimal_aspect_ratio"]

FORMULA = "4/((20 + 3 n_L) nu)"
#: Largest number of outputs accepted (r* ~ 4/(3 n_L ν) is then far below any depth of one layer
#: per width); the command line's --outputs has the same bound.
MAX_OUTPUTS = 10 ** 6
MEANING = ("r* = L/n at which the mutual information between two groups of output neurons "
           "(one input, at initialization), expanded to third order in the depth-to-width "
           "ratio, is largest (PDLT appendix on information): deep enough that the outputs "
           "interact (more than a Gaussian process), not so deep that the 1/n expansion breaks "
           "down. An order-of-magnitude design scale: at r* the third-order term is 2/3 of the "
           "second-order one, and the exact information keeps growing with L/n")


@dataclass(frozen=True)
class AspectRatio:
    """The optimal depth-to-width ratio r* = (L/n)*, or None with the reason.

    ``value``      r* (None where the argument does not apply; ``reason`` says why)
    ``nu``         the ν used (V/(nK²) ≈ ν L/n)
    ``n_out``      number of output neurons n_L (>= 2)
    ``epsilon``    ε* = 4/(20 + 3 n_L): the optimal V/(nK²) itself
    ``formula``    the formula used
    ``regime``     assumptions and how ν was obtained
    ``meaning``    what the number means
    ``reason``     why ``value`` is None (else None)
    ``width``      the width given (or None); then ``depth_estimate`` = r* n and
    ``depth_reached`` = the first computed depth where the actual V^l/(n (K^l)²) reaches ε*
    (None when not within the computed depths, or where ``value`` is None)

    Examples
    --------
    >>> import critheory as ct
    >>> a = ct.optimal_aspect_ratio(5.0, n_out=4)
    >>> isinstance(a, ct.AspectRatio), round(a.epsilon, 12), sorted(a.to_dict())[:3]
    (True, 0.125, ['depth_estimate', 'depth_reached', 'epsilon'])
    """

    __repr__ = short_repr

    value: float | None
    nu: float | None
    n_out: int
    epsilon: float
    formula: str
    regime: str
    meaning: str
    reason: str | None = None
    width: int | None = None
    depth_estimate: float | None = None
    depth_reached: int | None = None

    def to_dict(self) -> dict:
        return jsonable({"value": self.value, "nu": self.nu, "n_out": self.n_out,
                         "epsilon": self.epsilon, "formula": self.formula,
                         "regime": self.regime, "meaning": self.meaning, "reason": self.reason,
                         "width": self.width, "depth_estimate": self.depth_estimate,
                         "depth_reached": self.depth_reached})


def _n_out(n_out) -> int:
    n = check_int("n_out", n_out, 1)
    if n > MAX_OUTPUTS:
        raise InvalidArgumentError(f"n_out must be <= {MAX_OUTPUTS:.0e}, got {n}")
    if n < 2:
        raise InvalidArgumentError(
            "n_out must be >= 2: the argument maximizes the mutual information between two "
            "groups of output neurons, and one output has no pair (4/((20 + 3 n_L) nu) at "
            "n_L = 1 would be an extrapolation without meaning)")
    return n


def information_coefficients(n_a: int, n_b: int) -> tuple[float, float]:
    """Coefficients (c2, c3) of I(A; B) = c2 ε² + c3 ε³ + O(ε⁴), eq. (A) of the module.

    >>> information_coefficients(1, 1)
    (0.125, -0.5416666666666666)
    """
    a = check_int("n_a", n_a, 1)
    b = check_int("n_b", n_b, 1)
    return a * b / 8.0, -a * b * (20.0 + 3.0 * (a + b)) / 48.0


def truncated_information(r, nu: float, n_a: int, n_b: int) -> np.ndarray:
    """The quantity the argument maximizes: (A) at ε = ν r, in nats (array over r).

    >>> float(truncated_information(0.0, 5.0, 1, 1))
    0.0
    """
    c2, c3 = information_coefficients(n_a, n_b)
    nu = check_real("nu", nu)
    eps = nu * np.asarray(r, dtype=np.float64)
    return c2 * eps ** 2 + c3 * eps ** 3


def student_t_information(eps: float, n_a: int, n_b: int, digits: int = 50) -> float:
    """Exact I(A; B) (nats) of one scale mixture, the multivariate Student t: z | Ĝ Gaussian
    with an inverse-gamma Ĝ of ν_t = 4 + 2/ε degrees of freedom, so Var(Ĝ)/E[Ĝ]² = ε (its
    third cumulant is 4ε²/(1 − ε)). From the entropies
    ``h_d = log Γ(ν_t/2) − log Γ((ν_t+d)/2) + (d/2) log(ν_t π) + ((ν_t+d)/2)(ψ((ν_t+d)/2) −
    ψ(ν_t/2))``, ``I = h_{n_A} + h_{n_B} − h_{n_A+n_B}``, to ``digits`` digits (16..200; the
    working precision adds the ~3 log10(1/ε) digits the difference cancels): an
    independent check of (A), and the exact information beside its expansion (docs figure).

    >>> round(student_t_information(0.01, 1, 1) / 0.01 ** 2, 3)    # -> n_A n_B/8 as eps -> 0
    0.12
    """
    import mpmath as mp

    a = check_int("n_a", n_a, 1)
    b = check_int("n_b", n_b, 1)
    e = check_real("eps", eps)
    if not e > 0:
        raise InvalidArgumentError(f"eps must be > 0, got {e:g}")
    d = check_int("digits", digits, 16)
    if d > 200:
        raise InvalidArgumentError(f"digits must be <= 200, got {d}")
    # the entropies are ~ (2/ε) log(2/ε) and I ~ ε²/8: the difference loses ~3 log10(1/ε)
    # digits, which the working precision adds on top of the ``digits`` kept
    with mp.workdps(d + int(3 * max(0.0, -math.log10(e))) + 5):
        nu = 4 + 2 / mp.mpf(e)

        def g(d):
            x = (nu + d) / 2
            return mp.loggamma(x) - x * (mp.digamma(x) - mp.digamma(nu / 2))
        return float(mp.loggamma(nu / 2) - g(a) - g(b) + g(a + b))


def optimal_aspect_ratio(nu: float, n_out: int = 2) -> AspectRatio:
    """r* = 4/((20 + 3 n_L) ν) for a critical network with V/(nK²) ≈ ν L/n.

    Parameters
    ----------
    nu : float
        ν > 0 (ReLU MLP 5, K*=0 class such as tanh 2/3; residual nets ν(ξ)).
    n_out : int
        Number of output neurons n_L >= 2.

    Raises
    ------
    InvalidArgumentError
        ν not finite and > 0 (ν = 0: the network stays Gaussian at every depth, no finite
        optimum), or n_out < 2.

    Examples
    --------
    >>> round(optimal_aspect_ratio(2 / 3, n_out=2).value, 12)   # tanh at criticality
    0.230769230769
    """
    v = check_real("nu", nu)
    if not v > 0:
        raise InvalidArgumentError(
            f"nu must be > 0, got {v:g}: with nu <= 0 the non-Gaussianity V/(nK^2) does not "
            "grow with depth and the argument gives no finite optimal depth-to-width ratio")
    n = _n_out(n_out)
    eps = 4.0 / (20.0 + 3.0 * n)
    return AspectRatio(eps / v, v, n, eps, FORMULA,
                       "critical network, one input, leading order in 1/n at fixed L/n: "
                       "V/(nK^2) = nu L/n", MEANING)


def aspect_ratio_from_curves(curves, n_out: int = 2) -> AspectRatio:
    """r* for the network of finite-width curves (:class:`FiniteWidthCurves`), from its ν;
    ``value`` None with the reason where the argument does not apply.

    Where the curves have a width n, ``depth_estimate`` = r* n and ``depth_reached`` is the
    first computed depth where the actual V^l/(n (K^l)²) reaches ε* (this is the statement
    that holds also where V/K² approaches ν l slowly, as in the K* = 0 class).
    """
    n = _n_out(n_out)
    eps = 4.0 / (20.0 + 3.0 * n)
    nu = curves.nu
    width = curves.width
    reached = None
    if width is not None:
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(np.asarray(curves.vertex_normalized) / width >= eps)
        reached = int(curves.depths[hit[0]]) if hit.size else None

    def none(reason: str) -> AspectRatio:
        return AspectRatio(None, nu.value, n, eps, FORMULA, f"nu: {nu.method}", MEANING,
                           reason, width, None, None)

    v = nu.value
    if v is None or not math.isfinite(v):
        return none(f"nu is not determined ({nu.method}), so r* is not")
    if v <= 0:
        sat = ("" if nu.saturation is None else
               f"; V/K^2 saturates at {nu.saturation:.6g}")
        return none("nu = 0: V/K^2 does not grow linearly with depth" + sat
                    + ", so the non-Gaussianity is not set by L/n and the argument gives no "
                      "finite optimal depth-to-width ratio")
    method = nu.method
    if method.startswith("numeric") and nu.fixed_point is None:
        return none("the kernel flow reaches no fixed point (collapse or runaway): the network "
                    "is not critical, nu is only a slope over the computed window, and the "
                    "argument (one scale L/n) does not apply")
    if method.startswith("exact"):
        regime = ("exact nu: V^l/(K^l)^2 = nu (l - 1) at every depth, so V/(nK^2) = nu (L-1)/n "
                  "and the optimum is at L - 1 = r* n")
    elif method.startswith("asymptotic"):
        regime = ("asymptotic nu (K*=0 class): V^l/(K^l)^2 ~ nu l is approached slowly (log "
                  "corrections), so the actual optimum in depth lies beyond r* n; with a width, "
                  "depth_reached is where the computed V/(nK^2) reaches epsilon*")
    else:
        regime = (f"numeric nu ({method}): an estimate at a marginal fixed point, no better "
                  "than the slope it comes from")
    base = optimal_aspect_ratio(v, n)
    est = None if width is None else base.value * width
    return AspectRatio(base.value, v, n, eps, FORMULA, regime, MEANING, None, width, est,
                       reached)


def network_optimal_aspect_ratio(arch, weight_var: float, bias_var: float, depth: int, *,
                                 width: int | None = None, q0: float = 1.0,
                                 n_out: int = 2) -> AspectRatio:
    """r* for a network at a point, with the arguments of
    :func:`~critheory.theory.finitewidth.curves.finite_width_curves` (its ν along the actual
    kernel flow; residual nets give ν(ξ)) and the number of outputs ``n_out`` >= 2.

    Raises
    ------
    InvalidArgumentError
        Bad arguments, or a block without finite-width rules (e.g. attention: ν is not defined
        there), refused by the finite-width theory.

    Examples
    --------
    >>> import critheory as ct
    >>> a = network_optimal_aspect_ratio(ct.architecture("mlp", "relu"), 2.0, 0.0, depth=10)
    >>> a.nu, round(a.value, 12)
    (5.0, 0.030769230769)
    """
    from critheory.theory.finitewidth.curves import finite_width_curves

    n = _n_out(n_out)
    c = finite_width_curves(arch, weight_var, bias_var, depth, width=width, q0=q0)
    return aspect_ratio_from_curves(c, n)
