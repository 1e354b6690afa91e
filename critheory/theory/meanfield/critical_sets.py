"""Critical sets of every architecture, everywhere-criticality and residual growth laws [DHG].

The critical set of an architecture is where ``χ_J = 1`` at the kernel the network settles on:

* ``line``: a curve in the (σ_w², σ_b²) plane (MLP, residual with μ < 1, the LayerNorm
  architectures with μ < 1);
* ``everywhere``: pre-LN residual networks at μ = 1 (``pre-ln-residual``, ``pre-ln-mlp-block``):
  ``K^l = K^{l0} + A (l - l0)`` grows linearly while ``χ_J = 1 + B/K^l`` → 1, so
  ``J^{l0,l} = Π_{j=0}^{n-1} (1 + B/(K^{l0} + A j)) = Γ(x+β+n)Γ(x) / (Γ(x+β)Γ(x+n))``,
  ``x = K^{l0}/A``, ``β = B/A``, ``n = l - l0``: a power law ``∝ l^{B/A}`` for every
  (σ_w², σ_b²) [DHG §4, re-derived in docs/architectures.md];
* ``none``: residual networks without LayerNorm at μ = 1 (and any μ > 1): K grows and χ_J > 1 at
  every layer. For bounded φ the growth is a stretched exponential
  ``log J ≈ 2 σ_w² I √(l/a)/√(2π)`` with ``I = ∫ φ'(x)² dx`` and ``a = σ_b² + σ_w² φ_∞²``
  (``φ_∞² = (φ(+∞)² + φ(-∞)²)/2``), because ``E_K[φ'²] ≈ I/√(2πK)`` and ``K^l ≈ a l``; for φ
  growing linearly it is exponential (derived; see docs/architectures.md).

For pre-LN residual networks with μ < 1, ``K* = A/(1 - μ²)`` and
``χ_J = μ² + (1 - μ²) B/A``, so the correlation length ``ξ = 1/|log χ_J|`` diverges as
``1/((1 - μ²)|B/A - 1|)`` when μ → 1.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.critical_sets import everywhere_apjn
>>> a = architecture("pre-ln-residual", "relu", mu=1.0)
>>> J, K = everywhere_apjn(a, 2.0, 0.0, depth=5, l0=1)
>>> [round(float(v), 12) for v in J / (K / K[0])]  # ReLU at σ_b = 0: J^{l0,l} = K^l/K^{l0}
[1.0, 1.0, 1.0, 1.0, 1.0]
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from critheory.errors import GrowthError, InvalidArgumentError
from critheory.common.checks import check_hyper
from critheory.theory.meanfield.maps import LayerMaps, check_arch
from critheory.common.reprs import short_repr

__all__ = ["CriticalSet", "CriticalSetKind", "critical_set", "everywhere_apjn", "residual_growth",
           "has_residual_growth_law",
           "correlation_length_vs_mu", "everywhere_constants"]


class CriticalSetKind(enum.Enum):
    """The shape of an architecture's critical set; the value is its display text."""

    LINE = "line"              #: a line χ_J(K*) = 1 in (σ_b², σ_w²)
    EVERYWHERE = "everywhere"  #: every (σ_w², σ_b²) is critical (pre-LN residual, μ = 1)
    NONE = "none"              #: no critical point


@dataclass(frozen=True)
class CriticalSet:
    """Kind and description of an architecture's critical set (for ``EVERYWHERE`` the APJN
    grows as l^(B/A), a function of σ's: see :func:`everywhere_constants`)."""

    __repr__ = short_repr

    kind: CriticalSetKind
    description: str

    @property
    def everywhere(self) -> bool:
        """True where every (σ_w², σ_b²) is critical."""
        return self.kind is CriticalSetKind.EVERYWHERE

    @property
    def empty(self) -> bool:
        """True where no point is critical."""
        return self.kind is CriticalSetKind.NONE

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "description": self.description}


def everywhere_constants(arch: LayerMaps, weight_var, bias_var) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of a network with a normalized input (LayerNorm first in the residual branch): K
    grows by A per layer at μ = 1 and χ_J = 1 + B/K.

    pre-LN residual: ``A = σ_b² + σ_w² E_1[φ²]``, ``B = σ_w² E_1[φ'²]``;
    pre-LN MLP block: ``A = σ_b² + σ_w² E_q[φ²]``, ``B = σ_w⁴ E_q[φ'²]``, ``q = σ_w² + σ_b²``
    (both read off the block rules at K = 1).
    """
    arch = check_arch(arch)
    sw, sb = check_hyper(weight_var, bias_var)
    if not arch.caps.normalized_input:
        raise InvalidArgumentError(f"{arch.name} has no everywhere-critical regime")
    return arch.unit_constants(sw, sb)


def everywhere_apjn(arch: LayerMaps, weight_var: float, bias_var: float, depth: int,
                    l0: int = 1, q0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact finite-depth APJN of a pre-LN residual network at μ = 1 (infinite width).

    Returns ``(J, K)`` for l = l0..depth: ``K^l = K^1 + A(l - 1)`` with ``K^1 = σ_b² + σ_w² q0``,
    and ``J^{l0,l} = Γ(x+β+n)Γ(x)/(Γ(x+β)Γ(x+n))``, ``x = K^{l0}/A``, ``β = B/A``,
    ``n = l - l0`` (evaluated with log-gamma).
    """
    arch = check_arch(arch)
    if not arch.caps.everywhere_critical:
        raise InvalidArgumentError("everywhere_apjn needs a pre-LN residual architecture with mu = 1")
    if int(depth) != depth or depth < 1 or not 1 <= l0 <= depth:
        raise InvalidArgumentError("need integers 1 <= l0 <= depth")
    A, B = (float(v) for v in everywhere_constants(arch, weight_var, bias_var))
    K1 = float(arch.input_kernel(q0, weight_var, bias_var))
    l = np.arange(l0, depth + 1)
    K = K1 + A * (l - 1)
    x, beta, n = (K1 + A * (l0 - 1)) / A, B / A, l - l0
    from scipy import special

    logJ = (special.gammaln(x + beta + n) - special.gammaln(x + n)
            - special.gammaln(x + beta) + special.gammaln(x))
    return np.exp(logJ), K


def has_residual_growth_law(arch: LayerMaps) -> bool:
    """True for a residual network without LayerNorm at μ = 1 (a single dense block after φ)."""
    c = arch.caps
    return c.residual_strength == 1.0 and c.single_dense and not c.has_layernorm


def residual_growth(arch: LayerMaps, weight_var: float, bias_var: float) -> dict:
    """Growth law of the APJN of a residual network without LayerNorm at μ = 1.

    Returns a dict with ``law`` (``"stretched-exponential"`` or ``"exponential"``) and its
    constants: ``log J ≈ C l^{1/2}`` with ``C = 2σ_w² I/√(2π a)`` for bounded φ; for φ with
    asymptotic slopes (a_+, a_-), ``χ_J → 1 + σ_w² (a_+² + a_-²)/2`` and J grows exponentially.
    """
    arch = check_arch(arch)
    if not has_residual_growth_law(arch):
        raise InvalidArgumentError("residual_growth is for the residual architecture at mu = 1")
    from scipy import integrate

    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    f, df = arch.activation.numpy, arch.activation.numpy_func(1)
    big = 1e6
    slopes = (float(df(big)), float(df(-big)))
    if max(abs(s) for s in slopes) > 1e-8:
        chi = 1.0 + sw * (slopes[0] ** 2 + slopes[1] ** 2) / 2
        return {"law": "exponential", "chi_jacobian_limit": chi,
                "description": f"J grows as {chi:.6g}^l (phi grows linearly)"}
    with np.errstate(over="ignore"):
        phi_inf2 = float((np.float64(f(big)) ** 2 + np.float64(f(-big)) ** 2) / 2)
    if not math.isfinite(phi_inf2):
        raise GrowthError("phi(±inf)² overflows float64: the residual network's kernel growth "
                          "rate sigma_b² + sigma_w² phi(±inf)² is not a float64 number")
    a = sb + sw * phi_inf2
    bps = sorted(set(arch.activation.breakpoints))
    edges = [-np.inf] + bps + [np.inf]
    I = sum(integrate.quad(lambda x: float(df(x)) ** 2, lo, hi, limit=200)[0]
            for lo, hi in zip(edges[:-1], edges[1:]))
    C = 2 * sw * I / np.sqrt(2 * np.pi * a) if a > 0 else np.inf
    return {"law": "stretched-exponential", "C": C, "I": I, "growth_rate": a,
            "description": f"log J ~ {C:.6g} l^(1/2): K grows as {a:.6g} l and "
                           f"chi_J ~ 1 + {sw * I / np.sqrt(2 * np.pi):.6g}/sqrt(K)"}


def correlation_length_vs_mu(arch_name: str, activation, weight_var: float, bias_var: float,
                             mus) -> np.ndarray:
    """ξ = 1/|log χ_J(K*)| at each μ < 1 (inf where χ_J = 1 to 1e-12)."""
    from critheory.theory.meanfield.fixed_points import analyze_point
    from critheory.theory.meanfield.maps import architecture

    out = []
    for mu in np.atleast_1d(mus):
        if not 0 <= mu < 1:
            raise InvalidArgumentError("correlation lengths need 0 <= mu < 1")
        p = analyze_point(architecture(arch_name, activation, mu), weight_var, bias_var)
        out.append(p.correlation_length)
    return np.array(out)


def critical_set(arch: LayerMaps) -> CriticalSet:
    """Which kind of critical set the architecture has (see module docstring).

    Examples
    --------
    >>> import critheory as ct
    >>> s = ct.critical_set(ct.architecture("residual", "tanh", mu=1.0))
    >>> s.kind, s.empty
    (<CriticalSetKind.NONE: 'none'>, True)
    """
    arch = check_arch(arch)
    c = arch.caps
    if c.unbounded_growth:
        if c.everywhere_critical:
            return CriticalSet(CriticalSetKind.EVERYWHERE, "every (weight_var, bias_var) is "
                               "critical: K grows linearly and J^(l0,l) ~ l^(B/A)")
        return CriticalSet(CriticalSetKind.NONE,
                           "K grows without bound and chi_J > 1 at every layer "
                           + ("(stretched-exponential or exponential APJN growth)"
                              if arch.mu == 1.0 else "(exponential growth, mu > 1)"))
    if c.normalized_input and not c.single_dense:
        return CriticalSet(CriticalSetKind.LINE, "B(weight_var, bias_var) = A(weight_var, "
                           "bias_var), where K' = mu^2 K + A and chi_J = mu^2 + B/K")
    if c.normalized_input:
        s = arch.line_slope
        if abs(s) <= 1e-13:
            return CriticalSet(CriticalSetKind.LINE, "bias_var = 0 for every weight_var "
                               "(E_1[phi'^2] = E_1[phi^2])")
        if s > 0:
            return CriticalSet(CriticalSetKind.LINE, f"bias_var = {s:.12g} * weight_var "
                               "(E_1[phi'^2] - E_1[phi^2] times weight_var)")
        return CriticalSet(CriticalSetKind.NONE,
                           "E_1[phi'^2] < E_1[phi^2]: the line would need bias_var < 0")
    return CriticalSet(CriticalSetKind.LINE,
                       "chi_J(K*) = 1, parametrized by " + arch.curve_parameter)
