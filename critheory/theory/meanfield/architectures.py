"""Layer maps at infinite width: how each architecture maps a kernel, and its susceptibilities.

Every architecture is a frozen object that knows, for weight variance ``σ_w²`` (``sw``) and bias
variance ``σ_b²`` (``sb``) and vectorized over arrays of all three arguments:

* ``kernel_map(K, sw, sb)``: the single-input kernel of the next layer, ``K^{l+1}``;
* ``covariance_map(K11, K12, K22, sw, sb)``: the two-input covariance of the next layer;
* ``chi_parallel(K, sw, sb)``: ``χ_∥ = dK^{l+1}/dK^l``;
* ``chi_perp(K, sw, sb)``: ``χ_⊥``, the slope of the covariance map at coincident inputs
  (``∂K^{l+1}_{12}/∂K^l_{12}`` at ``K_11 = K_12 = K_22 = K``);
* ``chi_jacobian(K, sw, sb)``: the APJN factor ``χ_J`` with
  ``J^{l0,l+1} = χ_J(K^l) J^{l0,l}`` [DHG eq. (4)];
* ``critical_curve(t)``: the critical set ``χ_J(K*) = 1`` parametrized explicitly by ``t``
  (``t = K*`` or another variable, see ``curve_parameter``), returning ``(σ_w², σ_b², K*)``.

Conventions: preactivations of width N, ``W_ij ~ N(0, σ_w²/N)``, ``b_i ~ N(0, σ_b²)``; ``E_K[f]``
is ``E[f(h)]`` for ``h ~ N(0, K)``; ``LN(h) = (h - mean(h))/std(h)`` without affine parameters,
which at infinite width is ``h/√K``. The first layer of every architecture is a plain linear
layer, ``K^1 = σ_b² + σ_w² |x|²/N_0``.

=====================  ==================================  ===================================
architecture           kernel map ``K -> K'``              ``χ_J``
=====================  ==================================  ===================================
``mlp``                ``σ_b² + σ_w² E_K[φ²]``             ``σ_w² E_K[φ'²]``
``residual``           ``μ²K + σ_b² + σ_w² E_K[φ²]``       ``μ² + σ_w² E_K[φ'²]``
``pre-ln``             ``A = σ_b² + σ_w² E_1[φ²]``         ``B/K``,  ``B = σ_w² E_1[φ'²]``
``post-ln``            ``σ_b² + σ_w²``                     ``σ_w² E_K[φ'²]/Var_K[φ]``
``pre-ln-residual``    ``μ²K + A``                         ``μ² + B/K``
``pre-ln-mlp-block``   ``μ²K + σ_b² + σ_w² E_q[φ²]``       ``μ² + σ_w⁴ E_q[φ'²]/K``
=====================  ==================================  ===================================

with ``q = σ_w² + σ_b²`` the variance of the block's hidden preactivation ``W₁ LN(h) + b₁``.
Sources: [PDLT] §4–5 and [DHG] §2–4 (Doshi, He, Gromov, arXiv:2111.12143); the LayerNorm rows are
re-derived in ``docs/architectures.md``: LayerNorm's Jacobian ``(1/√K)(I - 11ᵀ/N - yyᵀ/N)``
removes two directions, which changes ``||·||_F²/N`` only at order 1/N.

Examples
--------
>>> from critheory.theory.meanfield.architectures import architecture
>>> mlp = architecture("mlp", "relu")
>>> float(mlp.chi_jacobian(3.0, 2.0, 0.1))
1.0
>>> float(mlp.kernel_map(1.0, 2.0, 0.0))
1.0
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.errors import GrowthError, InvalidArgumentError, InvalidVarianceError
from critheory.expectations.gaussian import expect, expect2

__all__ = ["Architecture", "MLP", "Residual", "PreLN", "PostLN", "PreLNResidual",
           "PreLNMLPBlock", "architecture", "ARCHITECTURES", "check_hyper"]


def check_hyper(sw, sb, *, allow_zero_weight: bool = False):
    """Validate weight and bias variances: finite, σ_w² > 0 (or >= 0), σ_b² >= 0."""
    try:
        sw = np.asarray(sw, dtype=float)
        sb = np.asarray(sb, dtype=float)
    except (TypeError, ValueError):
        raise InvalidVarianceError("weight and bias variances must be numbers") from None
    if sw.size == 0 or sb.size == 0:
        raise InvalidArgumentError("empty array of weight or bias variances")
    if not (np.all(np.isfinite(sw)) and np.all(np.isfinite(sb))):
        raise InvalidVarianceError("weight and bias variances must be finite")
    if np.any(sb < 0):
        raise InvalidVarianceError(f"bias variance must be >= 0 (got {sb[sb < 0].ravel()[0]:g})")
    bad = sw < 0 if allow_zero_weight else sw <= 0
    if np.any(bad):
        raise InvalidVarianceError(f"weight variance must be > 0 (got {sw[bad].ravel()[0]:g})")
    return sw, sb


def _E(act: Activation, g: str, K) -> np.ndarray:
    K = np.asarray(K, dtype=float)
    out = np.zeros(K.shape)
    pos = K > 0
    if np.any(pos):
        try:
            out[pos] = expect(act, g, K[pos]).value
        except GrowthError:
            # the expectation overflows float64 at the largest K (e.g. E_K[exp(2h)] = e^{2K}):
            # evaluate entry by entry and mark the overflowing ones as inf
            # overflow grows with K: bisect for the largest K that still evaluates
            idx = np.flatnonzero(pos.ravel())
            order = idx[np.argsort(K.ravel()[idx])]
            lo, hi = 0, order.size  # entries [0, lo) known good, [hi, n) known bad
            while lo < hi:
                mid = (lo + hi) // 2
                try:
                    expect(act, g, K.flat[order[mid]])
                    lo = mid + 1
                except GrowthError:
                    hi = mid
            good, bad = order[:lo], order[lo:]
            if good.size:
                out.flat[good] = expect(act, g, K.flat[good]).value
            out.flat[bad] = np.inf
    if np.any(~pos):  # K = 0: point evaluation
        f = {"phi2": lambda: float(act.numpy(0.0)) ** 2,
             "dphi2": lambda: float(act.numpy_func(1)(0.0)) ** 2,
             "phi": lambda: float(act.numpy(0.0))}.get(g)
        if f is None:
            raise InvalidVarianceError("K must be > 0")
        out[~pos] = f()
    return out


@dataclass(frozen=True)
class Architecture:
    """Base class: a layer's infinite-width kernel map and susceptibilities (see module doc)."""

    activation: Activation
    mu: float = 1.0
    name: str = field(default="", init=False)
    curve_parameter: str = field(default="K*", init=False)

    # ------------------------------------------------------------- interface
    def kernel_map(self, K, sw, sb) -> np.ndarray:
        raise NotImplementedError

    def covariance_map(self, K11, K12, K22, sw, sb) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def chi_parallel(self, K, sw, sb) -> np.ndarray:
        raise NotImplementedError

    def chi_jacobian(self, K, sw, sb) -> np.ndarray:
        raise NotImplementedError

    def chi_perp(self, K, sw, sb) -> np.ndarray:
        """χ_⊥ = ∂K'_12/∂K_12 at coincident inputs; equal to χ_J for every architecture here."""
        return self.chi_jacobian(K, sw, sb)

    def critical_curve(self, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(σ_w², σ_b², K*) on the critical set χ_J(K*) = 1, parametrized by ``t``; NaN where
        the parameter value gives no point with σ_w² > 0."""
        raise NotImplementedError

    # ------------------------------------------------------------- derived
    @property
    def has_fixed_point(self) -> bool:
        """False where the kernel grows without bound for every σ (residual with μ >= 1)."""
        return True

    @property
    def residual(self) -> bool:
        return False

    @property
    def mu2(self) -> float:
        """μ², the skip connection's contribution to χ_∥ and χ_J (0 without one)."""
        return 0.0

    def input_kernel(self, q0, sw, sb) -> np.ndarray:
        """K^1 = σ_b² + σ_w² q0 for an input with |x|²/N_0 = q0 (plain first layer)."""
        return np.asarray(sb, dtype=float) + np.asarray(sw, dtype=float) * q0

    @property
    def homogeneous(self) -> bool:
        """True where χ_J does not depend on K (scale-invariant φ without LayerNorm)."""
        return False

    def describe(self) -> str:
        return self.name if not self.residual else f"{self.name} (mu = {self.mu:g})"


def _check_mu(mu: float) -> float:
    mu = float(mu)
    if not np.isfinite(mu) or mu < 0:
        raise InvalidArgumentError(f"residual strength mu must be finite and >= 0, got {mu}")
    return mu


class _ResidualBranch:
    """The skip connection ``μ h`` shared by the residual architectures: μ is validated, ``μ²``
    is added to χ_∥ and χ_J (through ``mu2``), and for μ >= 1 there is no fixed point and no
    critical curve (NaN). Mixed in before the architecture whose map it extends."""

    def __post_init__(self):
        object.__setattr__(self, "mu", _check_mu(self.mu))

    @property
    def mu2(self) -> float:
        return self.mu ** 2

    @property
    def residual(self) -> bool:
        return True

    @property
    def has_fixed_point(self) -> bool:
        return self.mu < 1.0

    def critical_curve(self, t):
        if self.mu >= 1.0:
            nan = np.full(np.shape(t), np.nan)
            return nan, nan, nan
        return super().critical_curve(t)


@dataclass(frozen=True)
class MLP(Architecture):
    """``h' = W φ(h) + b`` [PDLT eq. (4.69); DHG eq. (6)]."""

    name: str = field(default="mlp", init=False)

    def kernel_map(self, K, sw, sb):
        K = np.asarray(K, dtype=float)
        return self.mu2 * K + sb + sw * _E(self.activation, "phi2", K)

    def covariance_map(self, K11, K12, K22, sw, sb):
        a = self.activation
        e12 = expect2(a, "phi", "phi", K11, K12, K22).value
        m = self.mu2
        return (m * np.asarray(K11) + sb + sw * _E(a, "phi2", K11),
                m * np.asarray(K12) + sb + sw * e12,
                m * np.asarray(K22) + sb + sw * _E(a, "phi2", K22))

    def chi_parallel(self, K, sw, sb):
        K = np.asarray(K, dtype=float)
        # χ_∥ = σ_w² E[φ'² + φφ''] = (σ_w²/K) E[h φ φ'] (Gaussian integration by parts)
        with np.errstate(invalid="ignore", over="ignore"):  # inf where E overflows float64
            return self.mu2 + sw * _E(self.activation, "h_phi_dphi", K) / K

    def chi_jacobian(self, K, sw, sb):
        return self.mu2 + sw * _E(self.activation, "dphi2", K)

    @property
    def homogeneous(self) -> bool:
        s = self.activation.homogeneous_slopes
        return s is not None and s[0] ** 2 + s[1] ** 2 > 0

    def critical_curve(self, t):
        # χ_J(K*) = 1 and K* = μ²K* + σ_b² + σ_w² E[φ²]  ⇒  explicit in K* = t
        t = np.asarray(t, dtype=float)
        one = 1.0 - self.mu2
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            # where E overflows float64 (K* far out for exponential φ) the point is NaN: out of
            # range, skipped by the scans
            sw = one / _E(self.activation, "dphi2", t)
            sb = one * t - sw * _E(self.activation, "phi2", t)
        return sw, sb, t


@dataclass(frozen=True)
class Residual(_ResidualBranch, MLP):
    """``h' = μ h + W φ(h) + b`` [DHG §4]."""

    name: str = field(default="residual", init=False)


@dataclass(frozen=True)
class PreLN(Architecture):
    """``h' = W φ(LN(h)) + b``: K' = A, χ_J = B/K [DHG §3]."""

    name: str = field(default="pre-ln", init=False)
    curve_parameter: str = field(default="sigma_w^2", init=False)

    @cached_property
    def _unit(self) -> tuple[float, float]:
        a = self.activation
        return (float(expect(a, "phi2", 1.0).value), float(expect(a, "dphi2", 1.0).value))

    def kernel_map(self, K, sw, sb):
        e2, _ = self._unit
        return self.mu2 * np.asarray(K, dtype=float) + sb + sw * e2

    def covariance_map(self, K11, K12, K22, sw, sb):
        K11, K12, K22 = (np.asarray(v, dtype=float) for v in (K11, K12, K22))
        c = np.clip(K12 / np.sqrt(K11 * K22), -1.0, 1.0)
        e12 = expect2(self.activation, "phi", "phi", np.ones_like(c), c, np.ones_like(c)).value
        e2, _ = self._unit
        m = self.mu2
        return m * K11 + sb + sw * e2, m * K12 + sb + sw * e12, m * K22 + sb + sw * e2

    def chi_parallel(self, K, sw, sb):
        return np.broadcast_to(self.mu2, np.broadcast(np.asarray(K), sw, sb).shape).astype(float)

    def chi_jacobian(self, K, sw, sb):
        _, d2 = self._unit
        return self.mu2 + np.asarray(sw, dtype=float) * d2 / np.asarray(K, dtype=float)

    def critical_curve(self, t):
        # χ_J = 1 at K* ⇔ B = A ⇔ σ_b² = σ_w² (E_1[φ'²] - E_1[φ²]); parameter t = σ_w²
        t = np.asarray(t, dtype=float)
        e2, d2 = self._unit
        sb = t * (d2 - e2)
        kstar = t * d2 / (1.0 - self.mu2)
        return t.copy(), sb, kstar

    @property
    def line_slope(self) -> float:
        """dσ_b²/dσ_w² along the critical line: E_1[φ'²] - E_1[φ²]."""
        e2, d2 = self._unit
        return d2 - e2


@dataclass(frozen=True)
class PreLNResidual(_ResidualBranch, PreLN):
    """``h' = μ h + W φ(LN(h)) + b``: K' = μ²K + A, χ_J = μ² + B/K [DHG §4]."""

    name: str = field(default="pre-ln-residual", init=False)

    def everywhere_exponent(self, sw, sb) -> np.ndarray:
        """At μ = 1: K^l = K^{l0} + A (l - l0) exactly and J^{l0,l} ~ l^{B/A}; returns B/A."""
        e2, d2 = self._unit
        sw, sb = np.asarray(sw, dtype=float), np.asarray(sb, dtype=float)
        return sw * d2 / (sb + sw * e2)


@dataclass(frozen=True)
class PostLN(Architecture):
    """``h' = W LN(φ(h)) + b``: K' = σ_w² + σ_b², χ_J = σ_w² E_K[φ'²]/Var_K[φ] [DHG §3]."""

    name: str = field(default="post-ln", init=False)

    def kernel_map(self, K, sw, sb):
        K = np.asarray(K, dtype=float)
        return np.broadcast_to(sw + sb, np.broadcast(K, sw, sb).shape).astype(float)

    def _var(self, K):
        a = self.activation
        v = _E(a, "phi2", K) - _E(a, "phi", K) ** 2
        return v

    def covariance_map(self, K11, K12, K22, sw, sb):
        a = self.activation
        e12 = expect2(a, "phi", "phi", K11, K12, K22).value
        m1, m2 = _E(a, "phi", K11), _E(a, "phi", K22)
        cov = (e12 - m1 * m2) / np.sqrt(self._var(K11) * self._var(K22))
        k = np.asarray(sw + sb, dtype=float)
        return k + 0 * cov, sb + sw * cov, k + 0 * cov

    def chi_parallel(self, K, sw, sb):
        return np.zeros(np.broadcast(np.asarray(K), sw, sb).shape)

    def chi_jacobian(self, K, sw, sb):
        return sw * _E(self.activation, "dphi2", K) / self._var(K)

    def critical_curve(self, t):
        t = np.asarray(t, dtype=float)
        sw = self._var(t) / _E(self.activation, "dphi2", t)
        return sw, t - sw, t


@dataclass(frozen=True)
class PreLNMLPBlock(_ResidualBranch, Architecture):
    """``h' = μh + W₂ φ(W₁ LN(h) + b₁) + b₂``, the MLP block of pre-LN transformers/Mixers.

    Hidden preactivation variance ``q = σ_w² + σ_b²`` (LN output has unit second moment);
    ``K' = μ²K + σ_b² + σ_w² E_q[φ²]``, ``χ_J = μ² + σ_w⁴ E_q[φ'²]/K``.
    """

    name: str = field(default="pre-ln-mlp-block", init=False)
    curve_parameter: str = field(default="q", init=False)

    def kernel_map(self, K, sw, sb):
        q = np.asarray(sw + sb, dtype=float)
        return self.mu2 * np.asarray(K, dtype=float) + sb + sw * _E(self.activation, "phi2", q)

    def covariance_map(self, K11, K12, K22, sw, sb):
        K11, K12, K22 = (np.asarray(v, dtype=float) for v in (K11, K12, K22))
        c = np.clip(K12 / np.sqrt(K11 * K22), -1.0, 1.0)
        q = np.asarray(sw + sb, dtype=float)
        e12 = expect2(self.activation, "phi", "phi", q, sw * c + sb, q).value
        e2 = _E(self.activation, "phi2", q)
        m = self.mu2
        return m * K11 + sb + sw * e2, m * K12 + sb + sw * e12, m * K22 + sb + sw * e2

    def chi_parallel(self, K, sw, sb):
        return np.broadcast_to(self.mu2, np.broadcast(np.asarray(K), sw, sb).shape).astype(float)

    def chi_jacobian(self, K, sw, sb):
        q = np.asarray(sw + sb, dtype=float)
        return self.mu2 + sw ** 2 * _E(self.activation, "dphi2", q) / np.asarray(K, dtype=float)

    def critical_curve(self, t):
        # χ_J = 1 at the fixed point ⇔ σ_w⁴ E_q[φ'²] = σ_b² + σ_w² E_q[φ²]; with σ_b² = q - σ_w²:
        # E_q[φ'²] s² + (1 - E_q[φ²]) s - q = 0 for s = σ_w² (positive root); parameter t = q.
        if self.mu >= 1.0:
            return _ResidualBranch.critical_curve(self, t)
        q = np.asarray(t, dtype=float)
        d2 = _E(self.activation, "dphi2", q)
        e2 = _E(self.activation, "phi2", q)
        bq = 1.0 - e2
        s = 2.0 * q / (bq + np.sqrt(bq * bq + 4.0 * d2 * q))  # stable form of the positive root
        sb = q - s
        kstar = (sb + s * e2) / (1.0 - self.mu2)
        return s, sb, kstar


ARCHITECTURES = {
    "mlp": MLP,
    "residual": Residual,
    "pre-ln": PreLN,
    "post-ln": PostLN,
    "pre-ln-residual": PreLNResidual,
    "pre-ln-mlp-block": PreLNMLPBlock,
}


def architecture(name: str = "mlp", activation: Any = "relu", mu: float = 1.0,
                 params=None) -> Architecture:
    """Build an architecture by name (``mlp``, ``residual``, ``pre-ln``, ``post-ln``,
    ``pre-ln-residual``, ``pre-ln-mlp-block``) for an activation spec; ``mu`` is the residual
    strength (ignored without a residual branch)."""
    if isinstance(name, Architecture):
        return name
    try:
        cls = ARCHITECTURES[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown architecture {name!r}; choose from "
                                   + ", ".join(ARCHITECTURES)) from None
    act = Activation.get(activation, params)
    if cls in (MLP, PreLN, PostLN):
        return cls(act)
    return cls(act, _check_mu(mu))
