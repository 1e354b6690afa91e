"""Closed forms over a (possibly degenerate) bivariate normal: its CDF and the product moment
``G = E[φ(X) φ(Y)]`` of a positively homogeneous piecewise-linear φ at nonzero means.

For ``φ(x) = a₊ x⁺ − a₋ (−x)⁺`` (ReLU: (1, 0); leaky ReLU: (1, α); linear: (a, a); |x|: (1, −1);
:attr:`~critheory.activation.symbolic.Activation.homogeneous_slopes`) write
``φ(x) = δ x⁺ + a₋ x`` with ``δ = a₊ − a₋``. For ``X = μ₁ + s₁U``, ``Y = μ₂ + s₂V``,
``(U, V)`` standard bivariate normal with correlation r, ``C = r s₁ s₂``, ``h = μ₁/s₁``,
``k = μ₂/s₂``, ``σ = √(1 − r²)``, ``h' = (h − rk)/σ``, ``k' = (k − rh)/σ``:

* ``E[X Y] = μ₁μ₂ + C``;
* ``E[X⁺ Y] = μ₂ (μ₁ Φ(h) + s₁ ϕ(h)) + C Φ(h)`` (``E[X⁺ U] = s₁ Φ(h)`` by Stein's lemma);
* ``E[X⁺ Y⁺] = (μ₁μ₂ + C) Φ₂(h, k; r) + μ₁ s₂ ϕ(k) Φ(h') + μ₂ s₁ ϕ(h) Φ(k')
  + s₁ s₂ σ ϕ(h) ϕ(k')``: the first and second truncated moments of the standard bivariate
  normal (Rosenbaum, JRSS B 23 (1961) 405; Tallis, JRSS B 23 (1961) 223), derived here by
  Stein's identity ``E[A g(A, B)] = E[∂_A g] + r E[∂_B g]`` applied to ``g = 1{A<h, B<k}`` and
  ``g = B 1{A<h, B<k}`` with ``A = −U, B = −V``: the terms ``r h ϕ(h)Φ(k')`` cancel.

so ``G = δ² E[X⁺Y⁺] + δ a₋ (E[X⁺Y] + E[XY⁺]) + a₋² E[XY]``. The degenerate cases are the limits
of the same expressions, taken explicitly: ``s = 0`` (h = ±∞, ``Φ(h)`` a step, r read as 0) and
``|r| = 1`` (``Φ(h')`` a step, ½ where ``h = rk``; ``Φ₂(h, k; 1) = Φ(min(h, k))``,
``Φ₂(h, k; −1) = max(0, Φ(h) − Φ(−k))``).

The bivariate normal CDF is Owen's formula (Owen, Ann. Math. Statist. 27 (1956) 1075, eq. 2.1)
``Φ₂(h, k; r) = ½Φ(h) + ½Φ(k) − T(h, a_h) − T(k, a_k) − β``, ``a_h = (k − rh)/(hσ)``,
``a_k = (h − rk)/(kσ)``, ``β = ½`` if ``hk < 0`` or (``hk = 0`` and ``h + k < 0``), else 0,
with Owen's T from :func:`scipy.special.owens_t` (``T(0, a) = arctan(a)/(2π)`` taken directly,
``a_h = ±∞`` or ``(1 − r)/σ`` at ``h = 0``). It is evaluated in the quadrant h, k <= 0 only
(``Φ₂(h, k; r) = Φ(k) − Φ₂(−h, k; −r)`` etc.), where every term is at most ½. Measured against
an mpmath integral (300 random points, |r| up to 1 − 1e-12): absolute error <= 1.2e-16; the
relative error of values below ~1e-8 is not controlled (the terms cancel), which the
expectations built on it do not need (their error is relative to E|φ φ|).

Along a ray of the conditioning variables (the four-point route of
:mod:`critheory.expectations.multipoint`) the means are linear in the radius r and the radial
integrals of G are closed forms too: :func:`radial_pair_moment`, :func:`radial_mean_phi` and,
for erf's sign representation, :func:`radial_sign_moment` (derivation above them; measured
against mpmath and against quadrature of the closed forms here: tests/test_angular_route.py).

Examples
--------
>>> import numpy as np
>>> bool(abs(bvn_cdf(0.0, 0.0, 0.5) - (0.25 + np.arcsin(0.5) / (2 * np.pi))) < 1e-15)
True
>>> # ReLU at zero means: the arc-cosine kernel (1/2π)(sin θ + (π − θ) cos θ), θ = π/2
>>> bool(abs(pair_moment(1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0) - 1 / (2 * np.pi)) < 1e-15)
True
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.special import ndtr, owens_t

__all__ = ["bvn_cdf", "pair_moment", "mean_phi", "erf_pair_moment", "radial_pair_moment",
           "homogeneous_moment4", "linear_part_moment4",
           "radial_sign_moment", "radial_mean_phi"]

_INV_SQRT2PI = 1.0 / np.sqrt(2.0 * np.pi)
#: 1 − r² below this is |r| = 1 (the formulas' limits are taken)
_SINGULAR = 1e-15


def _pdf(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        return _INV_SQRT2PI * np.exp(-0.5 * x * x)


def _owen_neg(h: np.ndarray, k: np.ndarray, r: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """Owen's formula for finite h, k <= 0 and 0 < σ = √(1 − r²)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ah = np.where(h != 0.0, (k - r * h) / (h * sig),
                      np.where(k != 0.0, np.copysign(np.inf, k), (1.0 - r) / sig))
        ak = np.where(k != 0.0, (h - r * k) / (k * sig),
                      np.where(h != 0.0, np.copysign(np.inf, h), (1.0 - r) / sig))
    th = np.where(h == 0.0, np.arctan(ah) / (2.0 * np.pi), owens_t(h, np.where(h == 0.0, 0.0, ah)))
    tk = np.where(k == 0.0, np.arctan(ak) / (2.0 * np.pi), owens_t(k, np.where(k == 0.0, 0.0, ak)))
    beta = np.where((h * k == 0.0) & (h + k < 0.0), 0.5, 0.0)
    return np.maximum(0.5 * ndtr(h) + 0.5 * ndtr(k) - th - tk - beta, 0.0)


def bvn_cdf(h, k, r) -> np.ndarray:
    """Φ₂(h, k; r) = P(U <= h, V <= k), (U, V) standard bivariate normal with correlation r.

    Parameters
    ----------
    h, k : array_like
        Upper limits (±∞ allowed), broadcast together.
    r : array_like
        Correlation in [−1, 1] (|r| = 1 to within 1e-15 in 1 − r² is taken as |r| = 1).

    Returns
    -------
    numpy.ndarray
        The probability, absolute error ~1e-16 (module docstring).

    Examples
    --------
    >>> float(bvn_cdf(0.3, np.inf, 0.7)) == float(__import__("scipy.special").special.ndtr(0.3))
    True
    """
    h, k, r = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (h, k, r)))
    out = np.empty(h.shape)
    ph, pk = ndtr(h), ndtr(k)
    one = 1.0 - r * r <= _SINGULAR
    inf = ~(np.isfinite(h) & np.isfinite(k))
    # |r| = 1: U = ±V
    lim = np.where(r > 0, ndtr(np.minimum(h, k)), np.maximum(0.0, ph - ndtr(-k)))
    out[...] = lim
    # infinite limits
    out = np.where(np.isneginf(h) | np.isneginf(k), 0.0, out)
    out = np.where(np.isposinf(h) & ~np.isneginf(k), pk, out)
    out = np.where(np.isposinf(k) & ~np.isneginf(h), ph, out)
    gen = ~one & ~inf
    if gen.any():
        hh, kk, rr = h[gen], k[gen], r[gen]
        sig = np.sqrt((1.0 - rr) * (1.0 + rr))
        sh, sk = hh > 0, kk > 0
        # reflect into h, k <= 0: U → −U flips the sign of r
        hn = np.where(sh, -hh, hh)
        kn = np.where(sk, -kk, kk)
        rn = np.where(sh ^ sk, -rr, rr)
        core = _owen_neg(hn, kn, rn, sig)
        phg, pkg = ph[gen], pk[gen]
        val = np.where(~sh & ~sk, core,
                       np.where(sh & ~sk, pkg - core,
                                np.where(~sh & sk, phg - core,
                                         phg - ndtr(-kk) + core)))
        out = np.array(out, dtype=float)
        out[gen] = np.clip(val, 0.0, np.minimum(phg, pkg))
    return out


def _homogeneous(ap: float, am: float, x: np.ndarray) -> np.ndarray:
    """φ(x) = a₊x⁺ − a₋(−x)⁺."""
    return np.where(x > 0, ap * x, am * x)


def _steps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x/y for y >= 0 with the limits ±∞ (y = 0, x ≠ 0) and 0 (x = y = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, x / np.where(y > 0, y, 1.0),
                        np.where(x > 0, np.inf, np.where(x < 0, -np.inf, 0.0)))


def mean_phi(ap: float, am: float, mu, s) -> np.ndarray:
    """E[φ(μ + s U)], U ~ N(0, 1), φ = a₊x⁺ − a₋(−x)⁺: ``δ(μ Φ(μ/s) + s ϕ(μ/s)) + a₋ μ``
    (s = 0: φ(μ)).

    Examples
    --------
    >>> bool(abs(mean_phi(1.0, 0.0, 0.0, 1.0) - 1 / np.sqrt(2 * np.pi)) < 1e-15)
    True
    """
    mu, s = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(s, dtype=float))
    h = _steps(mu, s)
    return (ap - am) * (mu * ndtr(h) + s * _pdf(h)) + am * mu


def pair_moment(ap: float, am: float, mu1, mu2, s1, s2, r) -> np.ndarray:
    """G = E[φ(μ₁ + s₁U) φ(μ₂ + s₂V)], corr(U, V) = r, for φ = a₊x⁺ − a₋(−x)⁺ (module
    docstring), vectorized over broadcast arrays; s₁, s₂ >= 0 (0 allowed), |r| <= 1.

    Examples
    --------
    >>> # linear φ = 2x: 4 E[XY] = 4(μ₁μ₂ + r s₁ s₂)
    >>> float(pair_moment(2.0, 2.0, 0.5, -1.0, 1.0, 2.0, 0.5))
    2.0
    """
    mu1, mu2, s1, s2, r = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (mu1, mu2, s1, s2, r)))
    d = ap - am
    r = np.where((s1 > 0) & (s2 > 0), np.clip(r, -1.0, 1.0), 0.0)
    C = r * s1 * s2
    out = am * am * (mu1 * mu2 + C)
    if d == 0.0:
        return out
    h = _steps(mu1, s1)
    k = _steps(mu2, s2)
    Ph, Pk = ndtr(h), ndtr(k)
    ph, pk = _pdf(h), _pdf(k)
    if am != 0.0:
        cross = mu2 * (mu1 * Ph + s1 * ph) + C * Ph + mu1 * (mu2 * Pk + s2 * pk) + C * Pk
        out = out + d * am * cross
    sig2 = (1.0 - r) * (1.0 + r)
    one = sig2 <= _SINGULAR
    # |r| = 1 exactly there: the steps Φ(h'), Φ(k') read the sign of h ∓ k, which a rounded r
    # would replace by the sign of its rounding (both 1 at h = k instead of ½ each)
    r = np.where(one, np.sign(r), r)
    sig = np.sqrt(np.where(one, 0.0, sig2))
    # r = 0 wherever an s is 0 (then h' = h, k' = k, possibly ±∞)
    fin = r != 0.0          # then s₁, s₂ > 0 and h, k are finite
    hf, kf = np.where(fin, h, 0.0), np.where(fin, k, 0.0)
    hp = np.where(fin, _steps(hf - r * kf, sig), h)
    kp = np.where(fin, _steps(kf - r * hf, sig), k)
    F2 = bvn_cdf(h, k, r)
    pp = ((mu1 * mu2 + C) * F2 + mu1 * s2 * pk * ndtr(hp) + mu2 * s1 * ph * ndtr(kp)
          + s1 * s2 * sig * ph * _pdf(kp))
    return out + d * d * pp


def erf_pair_moment(c: float, a: float, mu1, mu2, s1, s2, r) -> np.ndarray:
    """G = E[φ(μ₁ + s₁U) φ(μ₂ + s₂V)], corr(U, V) = r, for φ(x) = c·erf(a x).

    ``erf(x) = 2Φ(√2 x) − 1 = 2 P(g < √2 x) − 1`` with g ~ N(0, 1) independent, so
    ``E[erf(X) erf(Y)] = 4 Φ₂(h, k; ρ) − 2Φ(h) − 2Φ(k) + 1`` with
    ``h = √2 aμ₁/√(1 + 2a²s₁²)``, ``k`` likewise and ``ρ = 2a² r s₁ s₂/√((1 + 2a²s₁²)(1 + 2a²s₂²))``
    (the signs of the two independent Gaussians ``g_i − √2 a X_i``). Smooth in the means for
    every s >= 0 and |r| <= 1; |ρ| < 1 always.

    Examples
    --------
    >>> # zero means: (2/π) arcsin(2 K₁₂ / √((1 + 2K₁₁)(1 + 2K₂₂))) (Williams 1998)
    >>> v = float(erf_pair_moment(1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.5))
    >>> bool(abs(v - 2 / np.pi * np.arcsin(1.0 / 3.0)) < 1e-15)
    True
    """
    mu1, mu2, s1, s2, r = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (mu1, mu2, s1, s2, r)))
    v1 = 1.0 + 2.0 * a * a * s1 * s1
    v2 = 1.0 + 2.0 * a * a * s2 * s2
    h = np.sqrt(2.0) * a * mu1 / np.sqrt(v1)
    k = np.sqrt(2.0) * a * mu2 / np.sqrt(v2)
    rho = np.clip(2.0 * a * a * r * s1 * s2 / np.sqrt(v1 * v2), -1.0, 1.0)
    # 4Φ₂ − 2Φ(h) − 2Φ(k) + 1 = 4Φ₂(h, k) − 2Φ(h) + 2Φ(−k) − 1: as 4[Φ₂ − Φ(h)Φ(k)] +
    # (2Φ(h) − 1)(2Φ(k) − 1), the second the product of the two means (no cancellation there)
    Ph, Pk = ndtr(h), ndtr(k)
    eh = np.where(h > 0, 1.0 - 2.0 * ndtr(-h), 2.0 * Ph - 1.0)
    ek = np.where(k > 0, 1.0 - 2.0 * ndtr(-k), 2.0 * Pk - 1.0)
    return c * c * (4.0 * (bvn_cdf(h, k, rho) - Ph * Pk) + eh * ek)


# ------------------------------------------------------------------ radial integrals
# Along a ray u = r(cos θ, sin θ) of a standard 2-D Gaussian every argument of G is linear in r,
# so the radial integral of the conditioned four-point integrand is a closed form (the
# angular route of :mod:`critheory.expectations.multipoint`). The pieces, for p > 0, real q:
#
#   ∫₀^∞ e^{-pr²/2} Φ(qr) dr = √(2π/p) c,  c = ¼ + arctan(q/√p)/(2π) = atan2(1, −q/√p)/(2π)
#   (the r², r⁴ moments by −2∂_p), ∫₀^∞ r^{2m+1} e^{-r²/2} Φ(hr) dr from
#   ∫₀^∞ r e^{-pr²/2} Φ(hr) dr = (1 + h/√(p + h²))/(2p), and for F(r) = Φ₂(hr, kr; ρ) by parts
#   ∫₀^∞ r^n e^{-r²/2} F dr = P_n(0) F(0) + ∫₀^∞ P_n(r) e^{-r²/2} F'(r) dr (P_1 = 1,
#   P_3 = r² + 2, P_5 = r⁴ + 4r² + 8), F(0) = ¼ + arcsin(ρ)/(2π),
#   F' = h ϕ(hr) Φ(k'r) + k ϕ(kr) Φ(h'r), h' = (h − ρk)/σ, k' = (k − ρh)/σ.
# Each piece is evaluated without cancellation between terms larger than the piece's bound
# (h + √(1 + h²) as 1/(√(1 + h²) − h) for h < 0, c by atan2).


def _even_phi_cdf(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U_n(x, y) = ∫₀^∞ rⁿ e^{-r²/2} ϕ(xr) Φ(yr) dr for n = 0, 2, 4 (p = 1 + x²)."""
    return _even_phi_cdf_q(x, y)[:3]


def _even_phi_cdf_q(x: np.ndarray, y: np.ndarray):
    """:func:`_even_phi_cdf` and Q = 1 + x² + y² (one division per node for 1/p, 1/Q)."""
    p = 1.0 + x * x
    sp = np.sqrt(p)
    ip = 1.0 / p
    Q = p + y * y
    iQ = 1.0 / Q
    u0 = np.arctan2(1.0, -y / sp) / (2.0 * np.pi * sp)
    t = y * ip * iQ / (2.0 * np.pi)
    u2 = u0 * ip + t
    u4 = ip * (3.0 * u0 * ip + 2.0 * t * (1.0 + 0.5 * (3.0 * p + y * y) * iQ))
    return u0, u2, u4, Q


def _odd_cdf(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S_n(h) = ∫₀^∞ rⁿ e^{-r²/2} Φ(hr) dr for n = 1, 3, 5."""
    Q = 1.0 + h * h
    sq = np.sqrt(Q)
    e = np.where(h >= 0, h + sq, 1.0 / (sq - h))         # h + √Q without cancellation
    s1 = e / (2.0 * sq)
    s3 = e / sq + h / (2.0 * Q * sq)
    s5 = 4.0 * e / sq + h * (4.0 * Q + 3.0) / (2.0 * Q * Q * sq)
    return s1, s3, s5


def _odd35(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S₃(h), S₅(h) of :func:`_odd_cdf` and T₄(h) = ∫₀^∞ r⁴ e^{-r²/2} ϕ(hr) dr =
    1.5 (1 + h²)^{-5/2}, sharing 1/√(1 + h²)."""
    Q = 1.0 + h * h
    sq = np.sqrt(Q)
    isq = 1.0 / sq
    iQ = isq * isq
    e = np.where(h >= 0, h + sq, 1.0 / (sq - h))         # h + √Q without cancellation
    ei = e * isq
    hq = h * iQ * isq
    return ei + 0.5 * hq, 4.0 * ei + 0.5 * hq * (4.0 * Q + 3.0) * iQ, 1.5 * iQ * iQ * isq


def _bvn_radial(h: np.ndarray, k: np.ndarray, r: np.ndarray, sig: np.ndarray):
    """F_n = ∫₀^∞ rⁿ e^{-r²/2} Φ₂(hr, kr; ρ) dr for n = 3, 5 (|ρ| < 1, σ = √(1 − ρ²)),
    U₄(h, k'), U₄(k, h') (:func:`_even_phi_cdf`) and 1 + h² + k'², h' = (h − ρk)/σ,
    k' = (k − ρh)/σ. ρ and σ may have a shape of their own (one per kernel, broadcast)."""
    isig = 1.0 / sig
    hp = (h - r * k) * isig
    kp = (k - r * h) * isig
    a0, a2, a4, qh = _even_phi_cdf_q(h, kp)
    b0, b2, b4, _ = _even_phi_cdf_q(k, hp)
    f0 = 0.25 + np.arcsin(r) / (2.0 * np.pi)
    f3 = 2.0 * f0 + h * (a2 + 2.0 * a0) + k * (b2 + 2.0 * b0)
    f5 = 8.0 * f0 + h * (a4 + 4.0 * a2 + 8.0 * a0) + k * (b4 + 4.0 * b2 + 8.0 * b0)
    return f3, f5, a4, b4, qh


def radial_pair_moment(ap: float, am: float, pc, pd, s1, s2, r) -> tuple[np.ndarray, np.ndarray]:
    """``∫₀^∞ r³ e^{-r²/2} G(r p_c, r p_d) dr`` with G = :func:`pair_moment` (φ = a₊x⁺ − a₋(−x)⁺)
    at means linear in r, in closed form, and a bound of the terms it adds (the scale of its
    rounding error). s₁ = 0: G = φ(μ₁) E[φ(μ₂ + s₂V)], the radial integral φ(p_c) ×
    :func:`radial_mean_phi` (p_d, s₂) (likewise s₂ = 0); s₁, s₂ > 0 and |r| = 1: NaN (not a
    closed form here).

    Examples
    --------
    >>> from scipy import integrate
    >>> g = lambda t: t ** 3 * np.exp(-t * t / 2) * pair_moment(1.0, 0.0, 0.3 * t, -0.5 * t,
    ...                                                         0.8, 1.1, 0.4)
    >>> ref = integrate.quad(g, 0, 40, epsabs=1e-14, epsrel=1e-13)[0]
    >>> bool(abs(radial_pair_moment(1.0, 0.0, 0.3, -0.5, 0.8, 1.1, 0.4)[0] - ref) < 1e-13)
    True
    """
    # per-kernel quantities (s₁, s₂, r: often one per row of nodes) keep their own shape
    pc, pd, s1, s2, r = (np.asarray(x, dtype=float) for x in (pc, pd, s1, s2, r))
    shape = np.broadcast_shapes(pc.shape, pd.shape, s1.shape, s2.shape, r.shape)
    d = ap - am
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig = np.sqrt((1.0 - r) * (1.0 + r))
        ok = (s1 > 0) & (s2 > 0) & (sig > 0)
        h = pc * (1.0 / s1)
        k = pd * (1.0 / s2)
        C = r * s1 * s2
        pcd = pc * pd
        out = am * am * (8.0 * pcd + 2.0 * C)
        if d != 0.0 and am != 0.0:
            h3, h5, t4h = _odd35(h)
            k3, k5, t4k = _odd35(k)
            out = out + d * am * (pcd * (h5 + k5) + C * (h3 + k3) + pd * s1 * t4h
                                  + pc * s2 * t4k)
        if d != 0.0:
            f3, f5, u4h, u4k, qh = _bvn_radial(h, k, r, sig)
            w3 = (s1 * s2 * sig / np.pi) / (qh * qh)
            out = out + d * d * (pcd * f5 + C * f3 + pc * s2 * u4k + pd * s1 * u4h + w3)
        a2 = (abs(am) + abs(d)) ** 2
        scale = a2 * (8.0 * np.abs(pcd) + 1.5 * (np.abs(pc) * s2 + np.abs(pd) * s1)
                      + (2.0 + 1.0 / np.pi) * (s1 * s2))
        out = np.where(ok, out, np.nan)
        # a spread 0: one factor is φ(μ) itself, the other its Gaussian mean
        z1, z2 = s1 == 0, s2 == 0
        if np.any(z1 | z2):
            m2, _ = radial_mean_phi(ap, am, pd, s2)
            m1, _ = radial_mean_phi(ap, am, pc, s1)
            deg = np.where(z1, _homogeneous(ap, am, pc) * m2, _homogeneous(ap, am, pd) * m1)
            out = np.where(z1 | z2, deg, out)
    return np.broadcast_to(out, shape), np.broadcast_to(scale, shape)


def radial_sign_moment(pc, pd, s1, s2, r) -> np.ndarray:
    """``∫₀^∞ r e^{-r²/2} E[sgn(r p_c + s₁U) sgn(r p_d + s₂V)] dr``, corr(U, V) = r, in closed
    form (s₁, s₂ > 0, |r| < 1; NaN elsewhere): ``4F₁ − 2S₁(h) − 2S₁(k) + 1`` with h = p_c/s₁,
    k = p_d/s₂ (the sign expectation is 4Φ₂(h, k; ρ) − 2Φ(h) − 2Φ(k) + 1 at radius r).

    Examples
    --------
    >>> # independent signs with zero means: 0
    >>> float(radial_sign_moment(0.0, 0.0, 1.0, 1.0, 0.0))
    0.0
    """
    # per-kernel quantities (s₁, s₂, r: often one per row of nodes) keep their own shape
    pc, pd, s1, s2, r = (np.asarray(x, dtype=float) for x in (pc, pd, s1, s2, r))
    shape = np.broadcast_shapes(pc.shape, pd.shape, s1.shape, s2.shape, r.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig = np.sqrt((1.0 - r) * (1.0 + r))
        ok = (s1 > 0) & (s2 > 0) & (sig > 0)
        isig = 1.0 / sig
        h = pc * (1.0 / s1)
        k = pd * (1.0 / s2)
        # F₁ = F(0) + h U₀(h, k') + k U₀(k, h'), U₀(x, y) = atan2(1, −y/√p)/(2π√p), p = 1 + x²
        hp = (h - r * k) * isig
        kp = (k - r * h) * isig
        iph, ipk = 1.0 / np.sqrt(1.0 + h * h), 1.0 / np.sqrt(1.0 + k * k)
        hh, kk = h * iph, k * ipk
        # 4F₁ − 1 (the ¼ of F(0) cancels the 1)
        f4 = (2.0 / np.pi) * (np.arcsin(r) + hh * np.arctan2(1.0, -kp * iph)
                              + kk * np.arctan2(1.0, -hp * ipk))
        # S₁(h) = (h + √(1 + h²))/(2√(1 + h²)): 2S₁(h) = 1 + h/√(1 + h²)
        out = f4 - hh - kk
    return np.broadcast_to(np.where(ok, out, np.nan), shape)


def radial_mean_phi(ap: float, am: float, pc, s) -> tuple[np.ndarray, np.ndarray]:
    """``∫₀^∞ r⁴ e^{-r²/2} E[φ(r p_c + s U)] dr`` (φ = a₊x⁺ − a₋(−x)⁺, :func:`mean_phi` at a
    mean linear in r) in closed form, ``δ(p_c S₅(h) + s T₄(h)) + 8a₋p_c`` with h = p_c/s,
    ``T₄(h) = ∫₀^∞ r⁴ e^{-r²/2} ϕ(hr) dr = 1.5 (1 + h²)^{-5/2}`` (s = 0: 8φ(p_c)); and a bound
    of the terms it adds.

    Examples
    --------
    >>> from scipy import integrate
    >>> g = lambda t: t ** 4 * np.exp(-t * t / 2) * mean_phi(1.0, 0.2, -0.4 * t, 0.7)
    >>> ref = integrate.quad(g, 0, 40, epsabs=1e-14, epsrel=1e-13)[0]
    >>> bool(abs(radial_mean_phi(1.0, 0.2, -0.4, 0.7)[0] - ref) < 1e-13)
    True
    """
    pc, s = np.asarray(pc, dtype=float), np.asarray(s, dtype=float)
    d = ap - am
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        h = pc * (1.0 / np.where(s > 0, s, 1.0))
        _, s5, t4 = _odd35(h)
        gen = d * (pc * s5 + s * t4) + 8.0 * am * pc
    bound = 8.0 * (abs(d) + abs(am)) * np.abs(pc) + 1.5 * abs(d) * s
    if np.all(s > 0):
        return gen, bound
    lim = 8.0 * np.where(pc > 0, ap * pc, am * pc)
    return np.where(s > 0, gen, lim), bound


# ------------------------------------------------------------------ orthant moments
# Moments of a unit-variance normal vector over the positive orthant, by Stein's identity
# E[x_i f(x)] = Σ_j ρ_ij E[∂_j f] with f holding Heaviside factors H(x_j): ∂H = δ and
# x_j δ(x_j) = 0, so each step lowers a power or conditions one coordinate on 0 (a Gaussian of
# one dimension less, its density there 1/√(2π)). Two coordinates (x, y; ρ, s = √(1 − ρ²)):
#   M00 = ¼ + arcsin ρ/(2π),  M11 = ρ M00 + s/(2π),  M20 = M00 + ρ s/(2π),
#   M22 = M20 + 2ρ M11,  M31 = 2 M11 + ρ M20        (M_ij = E[xⁱ yʲ H(x) H(y)]).
# Three (x, y, z; a = ρ_xy, b = ρ_xz, c = ρ_yz), with T(u; w, v) = E[δ(u) w H(v) H(w)] =
# (s_uw + (ρ_vw − ρ_uv ρ_uw)/s_uv)/(4π) (E[w H(v) H(w) | u = 0] = σ_w(1 + ρ')/(2√(2π))):
#   N000 = 1/8 + (arcsin a + arcsin b + arcsin c)/(4π),
#   N011 = a T(x; z, y) + T(y; z, x) + c N000,  N101 = T(x; z, y) + a T(y; z, x) + b N000,
#   N110 = T(x; y, z) + a N000 + b T(z; y, x),  N211 = N011 + a N101 + b N110.
# φ = a₊x⁺ − a₋(−x)⁺ is a_σ x on the orthant of signs σ: E[φ(z₁)^p φ(z₂)^q] and
# E[φ(z₁)² φ(z₂) φ(z₃)] are sums over the sign orthants of these moments at correlations with
# flipped signs (x → −x on a negative side).

_TWO_PI = 2.0 * np.pi


def _orthant_pair4(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M22, M31) of a standard bivariate normal with correlation r (|r| <= 1)."""
    s = np.sqrt(np.maximum((1.0 - r) * (1.0 + r), 0.0))
    m00 = 0.25 + np.arcsin(r) / _TWO_PI
    m11 = r * m00 + s / _TWO_PI
    m20 = m00 + r * s / _TWO_PI
    return m20 + 2.0 * r * m11, 2.0 * m11 + r * m20


def _orthant_211(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """N211 = E[x² y z H(x) H(y) H(z)] of a unit-variance normal (x, y, z) with correlations
    a = ρ_xy, b = ρ_xz, c = ρ_yz (|a|, |b|, |c| < 1)."""
    sa = np.sqrt((1.0 - a) * (1.0 + a))
    sb = np.sqrt((1.0 - b) * (1.0 + b))
    sc = np.sqrt((1.0 - c) * (1.0 + c))
    n000 = 0.125 + (np.arcsin(a) + np.arcsin(b) + np.arcsin(c)) / (2.0 * _TWO_PI)
    f = 1.0 / (2.0 * _TWO_PI)
    t_xzy = (sb + (c - a * b) / sa) * f
    t_yzx = (sc + (b - a * c) / sa) * f
    t_xyz = (sa + (c - a * b) / sb) * f
    t_zyx = (sc + (a - b * c) / sb) * f
    n011 = a * t_xzy + t_yzx + c * n000
    n101 = t_xzy + a * t_yzx + b * n000
    n110 = t_xyz + a * n000 + b * t_zyx
    return n011 + a * n101 + b * n110


#: rounding allowance of the orthant closed forms, in ulps of Σ|terms| per unit of (1 + Σ 1/s)
#: (the divisions by s = √(1 − ρ²)); measured against mpmath (50 digits) from the same float
#: kernels, 1500 kernels with conditional spreads down to 1e-7 and nearly collinear pairs, five
#: (a₊, a₋): the true error is at most 0.003 of it
_ORTHANT_ULPS = 64


def homogeneous_moment4(ap: float, am: float, K) -> tuple[np.ndarray, np.ndarray]:
    """``E[φ(z₁)² φ(z₂) φ(z₃)]``, z ~ N(0, K) for 3×3 kernels K (..., 3, 3), φ = a₊x⁺ −
    a₋(−x)⁺, in closed form (the orthant moments above), and a bound of its rounding error.
    Two coordinates that coincide exactly (equal rows of K) give ``E[φ(z₁)³ φ(z₃)]`` (rows 1,
    2) and ``E[φ(z₁)² φ(z₂)²]`` (rows 2, 3) by the two-coordinate moments. The error is NaN
    where a pair of distinct coordinates is collinear (1 − ρ² = 0: no closed form here).

    Examples
    --------
    >>> # φ = x: Wick, E[z₁² z₂ z₃] = K₁₁K₂₃ + 2K₁₂K₁₃
    >>> K = np.array([[1.0, 0.3, -0.2], [0.3, 2.0, 0.5], [-0.2, 0.5, 1.5]])
    >>> v, e = homogeneous_moment4(1.0, 1.0, K)
    >>> bool(abs(v - (0.5 + 2 * 0.3 * -0.2)) <= e)
    True
    """
    K = np.asarray(K, dtype=float)
    d = np.sqrt(np.diagonal(K, axis1=-2, axis2=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.clip(K / (d[..., :, None] * d[..., None, :]), -1.0, 1.0)
    a, b, c = R[..., 0, 1], R[..., 0, 2], R[..., 1, 2]
    same12 = (K[..., 0, 0] == K[..., 1, 1]) & (K[..., 0, 1] == K[..., 0, 0]) \
        & (K[..., 0, 2] == K[..., 1, 2])
    same23 = (K[..., 1, 1] == K[..., 2, 2]) & (K[..., 1, 2] == K[..., 1, 1]) \
        & (K[..., 0, 1] == K[..., 0, 2])
    A = (ap, am)
    val = np.zeros(a.shape)
    mag = np.zeros(a.shape)
    val2 = np.zeros(a.shape)
    mag2 = np.zeros(a.shape)
    val3 = np.zeros(a.shape)
    mag3 = np.zeros(a.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for s1, s2, s3 in itertools.product((1, -1), repeat=3):
            coef = A[s1 < 0] ** 2 * A[s2 < 0] * A[s3 < 0] * s2 * s3
            if coef == 0.0:
                continue
            n = _orthant_211(s1 * s2 * a, s1 * s3 * b, s2 * s3 * c)
            val = val + coef * n
            mag = mag + abs(coef) * (np.abs(n) + 1.0)
        for s1, s3 in itertools.product((1, -1), repeat=2):
            # z₂ = z₁: E[φ(z₁)³ φ(z₃)] (M31 at ρ₁₃); z₃ = z₂: E[φ(z₁)² φ(z₂)²] (M22 at ρ₁₂)
            m22, _ = _orthant_pair4(s1 * s3 * a)
            _, m31 = _orthant_pair4(s1 * s3 * b)
            c31 = A[s1 < 0] ** 3 * A[s3 < 0] * s1 * s3
            c22 = A[s1 < 0] ** 2 * A[s3 < 0] ** 2
            val2, mag2 = val2 + c31 * m31, mag2 + abs(c31) * (np.abs(m31) + 1.0)
            val3, mag3 = val3 + c22 * m22, mag3 + abs(c22) * (np.abs(m22) + 1.0)
        s = [np.sqrt((1.0 - x) * (1.0 + x)) for x in (a, b, c)]
        cond3 = 1.0 + sum(1.0 / x for x in s)
        cond_b = 1.0 + 1.0 / s[1]
        cond_a = 1.0 + 1.0 / s[0]
    scale = K[..., 0, 0] * d[..., 1] * d[..., 2]
    eps = _ORTHANT_ULPS * np.finfo(float).eps
    value = np.where(same12, val2, np.where(same23, val3, val)) * scale
    err = eps * scale * np.where(same12, mag2 * cond_b,
                                 np.where(same23, mag3 * cond_a, mag * cond3))
    err = np.where(np.isfinite(err), err, np.nan)
    return value, err


def _orthant_011(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """N011 = E[H(x) y⁺ z⁺] of a unit-variance normal (x, y, z), a = ρ_xy, b = ρ_xz, c = ρ_yz
    (|a|, |b|, |c| < 1; the comment block above)."""
    sa = np.sqrt((1.0 - a) * (1.0 + a))
    sb = np.sqrt((1.0 - b) * (1.0 + b))
    sc = np.sqrt((1.0 - c) * (1.0 + c))
    n000 = 0.125 + (np.arcsin(a) + np.arcsin(b) + np.arcsin(c)) / (2.0 * _TWO_PI)
    f = 1.0 / (2.0 * _TWO_PI)
    return a * (sb + (c - a * b) / sa) * f + (sc + (b - a * c) / sa) * f + c * n000


def linear_part_moment4(ap: float, am: float, K) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``E[φ(z₁)φ(z₂)φ(z₃)φ(z₄)]`` (z ~ N(0, K), K (..., 4, 4), φ = a₊x⁺ − a₋(−x)⁺ =
    δx⁺ + a₋x with δ = a₊ − a₋) that holds at least one linear factor a₋x, in closed form, and
    a bound of its rounding error: the whole moment is ``δ⁴ E[z₁⁺z₂⁺z₃⁺z₄⁺]`` plus this.

    By Stein's identity (unit variances, correlations ρ): ``E[x_j x_a⁺x_b⁺x_c⁺] = Σ_{i∈abc}
    ρ_ji E[H_i x⁺x⁺]`` (N011 of the comment block above), ``E[x_j x_k x_a⁺x_b⁺] = ρ_jk M11 +
    ρ_ja(ρ_ka s/2π + ρ_kb M00) + ρ_jb(ρ_kb s/2π + ρ_ka M00)`` (s = √(1 − ρ_ab²)),
    ``E[x_j x_k x_l x_a⁺]`` half of Wick's sum, and Wick's sum itself; NaN (value and error)
    where a pair has |ρ| = 1.

    Examples
    --------
    >>> # φ = |x| = 2x⁺ − x at K = I: E|z|⁴ = (2/π)² = 16 E[z⁺]⁴ + this part
    >>> v, e = linear_part_moment4(1.0, -1.0, np.eye(4))
    >>> bool(abs(v + 16 / (2 * np.pi) ** 2 - (2 / np.pi) ** 2) <= e + 1e-15)
    True
    """
    K = np.asarray(K, dtype=float)
    d = np.sqrt(np.diagonal(K, axis1=-2, axis2=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.clip(K / (d[..., :, None] * d[..., None, :]), -1.0, 1.0)
    dl = ap - am
    rho = lambda i, j: R[..., i, j]                                      # noqa: E731
    val = np.zeros(R.shape[:-2])
    mag = np.zeros(R.shape[:-2])
    cond = np.ones(R.shape[:-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, j in itertools.combinations(range(4), 2):
            cond = cond + 1.0 / np.sqrt((1.0 - rho(i, j)) * (1.0 + rho(i, j)))
        idx = range(4)
        for size in (3, 2, 1, 0):                    # relu factors in the term
            coef = dl ** size * am ** (4 - size)
            if coef == 0.0:
                continue
            for S in itertools.combinations(idx, size):
                lin = [i for i in idx if i not in S]
                if size == 3:
                    (j,), (a, b, c) = lin, S
                    t = (rho(j, a) * _orthant_011(rho(a, b), rho(a, c), rho(b, c))
                         + rho(j, b) * _orthant_011(rho(a, b), rho(b, c), rho(a, c))
                         + rho(j, c) * _orthant_011(rho(a, c), rho(b, c), rho(a, b)))
                elif size == 2:
                    (j, k), (a, b) = lin, S
                    r = rho(a, b)
                    s = np.sqrt((1.0 - r) * (1.0 + r))
                    m00 = 0.25 + np.arcsin(r) / _TWO_PI
                    m11 = r * m00 + s / _TWO_PI
                    t = (rho(j, k) * m11
                         + rho(j, a) * (rho(k, a) * s / _TWO_PI + rho(k, b) * m00)
                         + rho(j, b) * (rho(k, b) * s / _TWO_PI + rho(k, a) * m00))
                elif size == 1:
                    (j, k, m), (a,) = lin, S
                    t = 0.5 * (rho(j, k) * rho(m, a) + rho(j, m) * rho(k, a)
                               + rho(j, a) * rho(k, m))
                else:
                    t = (rho(0, 1) * rho(2, 3) + rho(0, 2) * rho(1, 3)
                         + rho(0, 3) * rho(1, 2))
                val = val + coef * t
                mag = mag + abs(coef) * (np.abs(t) + 1.0)
    scale = np.prod(d, axis=-1)
    err = _ORTHANT_ULPS * np.finfo(float).eps * scale * mag * cond
    ok = np.isfinite(val) & np.isfinite(err)
    return np.where(ok, val * scale, np.nan), np.where(ok, err, np.nan)
