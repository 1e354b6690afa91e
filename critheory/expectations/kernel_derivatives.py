"""Derivatives of a two-point Gaussian expectation in its covariance.

For ``(h_a, h_b) ~ N(0, Σ)``, ``Σ = [[K_aa, K_ab], [K_ab, K_bb]]``, the function
``E(K_aa, K_ab, K_bb) = E[φ(h_a) φ(h_b)]`` and its gradient and Hessian in the three entries
``p = (K_aa, K_ab, K_bb)`` (``K_ab`` moves both off-diagonal entries) are what the finite-width
theory on several inputs needs: the gradient maps a shift of the kernel of one layer to the
next, and the Hessian turns the fluctuations of the kernel into the 1/n shift of the mean
(:mod:`critheory.theory.finitewidth.data_rules`).

Four routes, chosen by the activation:

* scale-invariant φ (``a₊x`` for x > 0, ``a₋x`` for x < 0: ReLU, leaky ReLU, |x|, linear):
  ``E = √(K_aa K_bb) F(ρ)``, ``ρ = K_ab/√(K_aa K_bb)``, with the arc-cosine kernel
  ``2π F(ρ) = (a₊² + a₋²) J(θ) − 2a₊a₋ J(π − θ)``, ``J(θ) = sin θ + (π − θ) cos θ``,
  ``θ = arccos ρ`` (Cho & Saul 2009), ``2π F'(ρ) = (a₊² + a₋²)(π − θ) + 2a₊a₋θ`` and
  ``2π F''(ρ) = (a₊ − a₋)²/sin θ``; the gradient and Hessian in ``(K_aa, K_ab, K_bb)`` by the
  chain rule, exactly.
* ``c·erf(a x)``: ``E = (2c²/π) arcsin(2a²K_ab/√((1 + 2a²K_aa)(1 + 2a²K_bb)))`` (Williams
  1998), gradient and Hessian by the chain rule, exactly (:func:`_erf`).
* other smooth φ (no breakpoints): the heat-equation identities ``∂E/∂K_ab = ⟨φ'φ'⟩``,
  ``∂E/∂K_aa = ½⟨φ''φ⟩`` (Price's theorem), so the Hessian entries are
  ``¼⟨φ⁗φ⟩``, ``½⟨φ‴φ'⟩``, ``¼⟨φ''φ''⟩``, ``⟨φ''φ''⟩``; every term is a two-point
  expectation of regular functions, accurate at any correlation. All of them share one
  tensor trapezoidal rule per covariance, in its eigen-coordinates, with the step halved
  until the error estimate is below ``rtol`` relative to ``E|f g|`` (see
  :func:`_shared_trapezoid`); entries that do not converge go to
  :func:`~critheory.expectations.gaussian.expect2`'s adaptive rules.
* other φ with kinks (hard tanh, ReLU6, ELU's second derivative, ...): only φ' is used.
  ``∂E/∂K_ab = ⟨φ'φ'⟩`` and, from the scaling ``h_a → λ h_a`` (which moves ``K_aa`` by
  ``2λ`` and ``K_ab`` by ``λ``), ``∂E/∂K_aa = (⟨h_a φ'(h_a) φ(h_b)⟩ − K_ab ⟨φ'φ'⟩)/(2K_aa)``.
  The second derivatives are the gradients of these product expectations by Gaussian
  integration by parts: for ``F = f(h_a) g(h_b)``, ``∂⟨F⟩/∂Σ = ½ Σ⁻¹ ⟨F (hhᵀ − Σ)⟩ Σ⁻¹``
  (ordered entries; ``∂/∂K_ab`` is twice the off-diagonal one). Its weights grow like
  ``1/(1 − ρ²)`` as the correlation ρ → ±1: the error estimate grows with them.

The Hessian of the second route is computed twice (row ``K_ab`` from ``⟨φ'φ'⟩``, rows
``K_aa``, ``K_bb`` from the scaling forms); their difference enters the error estimate.

Examples
--------
>>> import numpy as np
>>> from critheory.expectations.kernel_derivatives import pair_derivatives
>>> d = pair_derivatives("relu", 1.0, 0.0, 1.0)
>>> bool(np.isclose(d.value, 1 / (2 * np.pi))), bool(np.isclose(d.grad[1], 0.25))
(True, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.activation import Activation
from critheory.errors import InvalidVarianceError
from critheory.expectations.closed_forms import erf_params
from critheory.expectations.gaussian import expect2

__all__ = ["PairDerivatives", "pair_derivatives", "dphi_pair_derivatives"]


@dataclass(frozen=True)
class PairDerivatives:
    """``E[φ(h_a)φ(h_b)]``, its gradient (``(..., 3)``) and Hessian (``(..., 3, 3)``) in
    ``(K_aa, K_ab, K_bb)``, and an error estimate of each (same shapes)."""

    value: np.ndarray
    grad: np.ndarray
    hess: np.ndarray
    value_error: np.ndarray
    grad_error: np.ndarray
    hess_error: np.ndarray


def _x(power: int, e):
    from critheory.activation.expressions import X

    return e * X ** power if power else e


def _e2(act, f, g, k11, k12, k22, rtol):
    r = expect2(act, f, g, k11, k12, k22, rtol=rtol)
    return np.asarray(r.value, dtype=float), np.asarray(r.error, dtype=float)


_SMOOTH_PAIRS = ((0, 0), (1, 1), (2, 0), (0, 2), (4, 0), (0, 4), (3, 1), (1, 3), (2, 2))
_STEPS = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32)
_WINDOW = 9.5          # e^{-9.5²/2} = 2e-20: the Gaussian tail beyond the window


def _shared_trapezoid(act, k11, k12, k22, rtol):
    """``E[φ^(i)(h_a) φ^(j)(h_b)]`` for the pairs of :data:`_SMOOTH_PAIRS` on one tensor
    trapezoidal rule per entry, in the eigen-coordinates ``h = R u`` of the covariance, with
    steps 1/2, 1/4, ..., 1/32.

    The trapezoidal rule converges like ``C exp(-2π d/h)`` for a Gaussian-weighted integrand
    analytic in the strip ``|Im u| < d`` (Trefethen & Weideman, SIAM Rev. 56 (2014), §5; e.g.
    ``d = π/(2√λ_max)`` for tanh), far faster than Gauss–Hermite for integrands with poles
    near the real axis. Halving the step squares the factor, so with ``ε = |T_h − T_2h|``
    (≈ the error of ``T_2h``) the error of ``T_h`` is about ``ε²/C``, ``C ~ E|f g|``: an entry
    is accepted once ``16 ε²/E|f g|`` is below ``rtol E|f g|`` and ``ε`` itself below
    ``1e-3 E|f g|`` (inside the asymptotic regime), and that is its error estimate (floored at
    the round-off of the sum). Returns values and errors ``(len(_SMOOTH_PAIRS), n)`` and the
    mask of the entries that converged."""
    from critheory.expectations.integrands import integrand

    its = [integrand(act, act.derivative(i)) for i in range(5)]
    fns = [it.numpy for it in its]
    grow = max(max(abs(g) for g in it.growth) for it in its)
    n = k11.size
    P = len(_SMOOTH_PAIRS)
    S = np.stack([np.stack([k11, k12], -1), np.stack([k12, k22], -1)], -2).reshape(n, 2, 2)
    lam, Q = np.linalg.eigh(S)
    R = Q * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]       # h = R u
    # exponential growth e^{α|h|} shifts the weight's bulk by up to 4α√λ (four factors)
    X = _WINDOW + np.ceil(8.0 * grow * np.sqrt(np.clip(lam.max(axis=-1), 0.0, None))) / 2
    vals = np.full((P, n), np.nan)
    errs = np.full((P, n), np.nan)
    done = np.zeros(n, dtype=bool)
    prev = np.full((P, n), np.nan)
    eps = np.finfo(float).eps
    for h in _STEPS:
        for x in np.unique(X[~done]):
            idx = np.flatnonzero(~done & (X == x))
            t = np.arange(-np.ceil(x / h), np.ceil(x / h) + 1) * h
            w = h * np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi)
            u1, u2 = np.meshgrid(t, t, indexing="ij")
            W = (w[:, None] * w[None, :]).ravel()
            U = np.stack([u1.ravel(), u2.ravel()])
            chunk = max(1, int(4e6 // W.size))
            for c in range(0, idx.size, chunk):
                k = idx[c:c + chunk]
                H = R[k] @ U                                          # (k, 2, N)
                with np.errstate(all="ignore"):
                    da = [np.broadcast_to(f(H[:, 0]), H[:, 0].shape) for f in fns]
                    db = [np.broadcast_to(f(H[:, 1]), H[:, 1].shape) for f in fns]
                    cur = np.stack([(da[i] * db[j]) @ W for i, j in _SMOOTH_PAIRS])
                    mag = np.stack([np.abs(da[i] * db[j]) @ W for i, j in _SMOOTH_PAIRS])
                    e = np.abs(cur - prev[:, k])
                    est = np.maximum(16.0 * e * e / np.maximum(mag, 1e-300), 8 * eps * mag)
                ok = np.all(np.isfinite(cur) & (e <= 1e-3 * mag) & (est <= rtol * mag + 1e-300),
                            axis=0)
                kk = k[ok]
                vals[:, kk], errs[:, kk] = cur[:, ok], est[:, ok]
                done[kk] = True
                prev[:, k] = cur
        if done.all():
            break
    return vals, errs, done


def _smooth(act, k11, k12, k22, rtol):
    shape = np.shape(k11)
    flat = [np.ravel(a) for a in (k11, k12, k22)]
    vals, errs, done = _shared_trapezoid(act, *flat, max(rtol, 1e-13))
    bad = ~done
    e = {}
    for r, (i, j) in enumerate(_SMOOTH_PAIRS):
        v, er = vals[r], errs[r]
        if bad.any():
            v[bad], er[bad] = _e2(act, act.derivative(i), act.derivative(j),
                                  *(a[bad] for a in flat), rtol)
        e[i, j] = (v.reshape(shape), er.reshape(shape))
    val = e[0, 0]
    g = [(0.5 * e[2, 0][0], 0.5 * e[2, 0][1]), e[1, 1], (0.5 * e[0, 2][0], 0.5 * e[0, 2][1])]
    h = {(0, 0): (0.25, e[4, 0]), (0, 1): (0.5, e[3, 1]), (0, 2): (0.25, e[2, 2]),
         (1, 1): (1.0, e[2, 2]), (1, 2): (0.5, e[1, 3]), (2, 2): (0.25, e[0, 4])}
    shape = np.shape(k11) + (3, 3)
    H, He = np.zeros(shape), np.zeros(shape)
    for (i, j), (c, (v, err)) in h.items():
        H[..., i, j] = H[..., j, i] = c * v
        He[..., i, j] = He[..., j, i] = c * err
    G = np.stack([t[0] for t in g], axis=-1)
    Ge = np.stack([t[1] for t in g], axis=-1)
    return val[0], G, H, val[1], Ge, He


def _hermite_grad(act, f, g, k11, k12, k22, rtol):
    """Gradient of ``⟨f(h_a) g(h_b)⟩`` in ``(K_aa, K_ab, K_bb)`` by Gaussian integration by
    parts, and its error."""
    m00 = _e2(act, f, g, k11, k12, k22, rtol)
    maa = _e2(act, _x(2, f), g, k11, k12, k22, rtol)
    mab = _e2(act, _x(1, f), _x(1, g), k11, k12, k22, rtol)
    mbb = _e2(act, f, _x(2, g), k11, k12, k22, rtol)
    det = k11 * k22 - k12 * k12
    # Σ⁻¹ = [[k22, -k12], [-k12, k11]]/det
    s = np.stack([np.stack([k22, -k12], -1), np.stack([-k12, k11], -1)], -2) / det[..., None, None]
    M = np.stack([np.stack([maa[0] - k11 * m00[0], mab[0] - k12 * m00[0]], -1),
                  np.stack([mab[0] - k12 * m00[0], mbb[0] - k22 * m00[0]], -1)], -2)
    Me = np.stack([np.stack([maa[1] + k11 * m00[1], mab[1] + abs(k12) * m00[1]], -1),
                   np.stack([mab[1] + abs(k12) * m00[1], mbb[1] + k22 * m00[1]], -1)], -2)
    D = 0.5 * s @ M @ s
    De = 0.5 * np.abs(s) @ Me @ np.abs(s)
    grad = np.stack([D[..., 0, 0], 2 * D[..., 0, 1], D[..., 1, 1]], -1)
    err = np.stack([De[..., 0, 0], 2 * De[..., 0, 1], De[..., 1, 1]], -1)
    return grad, err


def _kinked(act, k11, k12, k22, rtol):
    phi, d1 = act.expr, act.derivative(1)
    val = _e2(act, phi, phi, k11, k12, k22, rtol)
    f11 = _e2(act, d1, d1, k11, k12, k22, rtol)
    fa = _e2(act, _x(1, d1), phi, k11, k12, k22, rtol)
    fb = _e2(act, phi, _x(1, d1), k11, k12, k22, rtol)
    g1 = (fa[0] - k12 * f11[0]) / (2 * k11)
    g3 = (fb[0] - k12 * f11[0]) / (2 * k22)
    G = np.stack([g1, f11[0], g3], -1)
    Ge = np.stack([(fa[1] + abs(k12) * f11[1]) / (2 * k11), f11[1],
                   (fb[1] + abs(k12) * f11[1]) / (2 * k22)], -1)
    # row K_ab: the gradient of ⟨φ'φ'⟩
    r2, r2e = _hermite_grad(act, d1, d1, k11, k12, k22, rtol)
    # rows K_aa, K_bb: differentiate the scaling forms
    ga, gae = _hermite_grad(act, _x(1, d1), phi, k11, k12, k22, rtol)
    gb, gbe = _hermite_grad(act, phi, _x(1, d1), k11, k12, k22, rtol)
    e12 = np.zeros(np.shape(k11) + (3,))
    e12[..., 1] = 1.0
    r1 = (ga - e12 * f11[0][..., None] - k12[..., None] * r2) / (2 * k11[..., None])
    r1[..., 0] -= g1 / k11
    r3 = (gb - e12 * f11[0][..., None] - k12[..., None] * r2) / (2 * k22[..., None])
    r3[..., 2] -= g3 / k22
    r1e = (gae + e12 * f11[1][..., None] + np.abs(k12)[..., None] * r2e) / (2 * k11[..., None])
    r3e = (gbe + e12 * f11[1][..., None] + np.abs(k12)[..., None] * r2e) / (2 * k22[..., None])
    raw = np.stack([r1, r2, r3], -2)
    rawe = np.stack([r1e, r2e, r3e], -2)
    H = 0.5 * (raw + np.swapaxes(raw, -1, -2))
    He = 0.5 * (rawe + np.swapaxes(rawe, -1, -2)) + 0.5 * np.abs(raw - np.swapaxes(raw, -1, -2))
    return val[0], G, H, val[1], Ge, He


def _homogeneous(act, k11, k12, k22):
    """The scale-invariant route (see the module docstring)."""
    ap, am = act.homogeneous_slopes
    r = np.sqrt(k11 * k22)
    rho = np.clip(k12 / r, -1.0, 1.0)
    th = np.arccos(rho)
    sin = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))
    s2 = ap * ap + am * am
    tau = 2.0 * np.pi

    def J(t):
        return np.sin(t) + (np.pi - t) * np.cos(t)

    F = (s2 * J(th) - 2 * ap * am * J(np.pi - th)) / tau
    F1 = (s2 * (np.pi - th) + 2 * ap * am * th) / tau
    with np.errstate(divide="ignore", invalid="ignore"):
        F2 = np.where(ap == am, 0.0, (ap - am) ** 2 / (tau * sin))
    A, C = k11, k22
    z = np.zeros_like(A)
    rp = np.stack([r / (2 * A), z, r / (2 * C)], -1)                 # ∂r/∂p, r = √(AC)
    pp = np.stack([-rho / (2 * A), 1.0 / r, -rho / (2 * C)], -1)      # ∂ρ/∂p
    rpp = np.zeros(A.shape + (3, 3))
    rpp[..., 0, 0] = -r / (4 * A * A)
    rpp[..., 2, 2] = -r / (4 * C * C)
    rpp[..., 0, 2] = rpp[..., 2, 0] = r / (4 * A * C)
    ppp = np.zeros(A.shape + (3, 3))
    ppp[..., 0, 0] = 0.75 * rho / (A * A)
    ppp[..., 2, 2] = 0.75 * rho / (C * C)
    ppp[..., 0, 2] = ppp[..., 2, 0] = rho / (4 * A * C)
    ppp[..., 0, 1] = ppp[..., 1, 0] = -1.0 / (2 * A * r)
    ppp[..., 2, 1] = ppp[..., 1, 2] = -1.0 / (2 * C * r)
    val = r * F
    G = rp * F[..., None] + (r * F1)[..., None] * pp
    outer = rp[..., :, None] * pp[..., None, :]
    H = (rpp * F[..., None, None] + F1[..., None, None] * (outer + np.swapaxes(outer, -1, -2))
         + (r * F2)[..., None, None] * pp[..., :, None] * pp[..., None, :]
         + (r * F1)[..., None, None] * ppp)
    # round-off: arccos amplifies the rounding of ρ by 1/sin θ near |ρ| = 1
    rel = 64 * np.finfo(float).eps * (1.0 + 1.0 / np.maximum(sin, 1e-300))
    scale = s2 * r
    ve = rel * scale
    ge = rel[..., None] * (np.abs(G) + scale[..., None] * (np.abs(rp) / r[..., None]
                                                           + np.abs(pp)))
    he = rel[..., None, None] * (np.abs(H) + (r * np.abs(F2))[..., None, None]
                                 * np.abs(pp[..., :, None] * pp[..., None, :]))
    return val, G, H, ve, ge, he


def _erf(c: float, a: float, k11, k12, k22):
    """φ = c·erf(a x): ``E = (2c²/π) arcsin(q)``, ``q = αK_ab/√(uw)``, α = 2a²,
    u = 1 + αK_aa, w = 1 + αK_bb (Williams 1998), its gradient and Hessian in closed form;
    arcsin(q) as atan2(αK_ab, √D), D = uw − α²K_ab² = 1 + α(K_aa + K_bb) + α²(K_aa K_bb − K_ab²)
    (no cancellation near |q| = 1)."""
    al = 2.0 * a * a
    A, B, C = k11, k12, k22
    u, w = 1.0 + al * A, 1.0 + al * C
    D = np.maximum(1.0 + al * (A + C) + al * al * (A * C - B * B), 0.0)
    uw = u * w
    s = np.sqrt(uw)
    q = al * B / s
    f = 2.0 * c * c / np.pi
    val = f * np.arctan2(al * B, np.sqrt(D))
    k = np.sqrt(uw / D)                                   # 1/√(1 − q²)
    qp = np.stack([-0.5 * al * q / u, al / s, -0.5 * al * q / w], -1)
    qpp = np.zeros(A.shape + (3, 3))
    qpp[..., 0, 0] = 0.75 * al * al * q / (u * u)
    qpp[..., 2, 2] = 0.75 * al * al * q / (w * w)
    qpp[..., 0, 2] = qpp[..., 2, 0] = 0.25 * al * al * q / uw
    qpp[..., 0, 1] = qpp[..., 1, 0] = -0.5 * al * al / (u * s)
    qpp[..., 2, 1] = qpp[..., 1, 2] = -0.5 * al * al / (w * s)
    G = (f * k)[..., None] * qp
    H = ((f * k)[..., None, None] * qpp
         + (f * q * k ** 3)[..., None, None] * qp[..., :, None] * qp[..., None, :])
    # round-off: a few operations on terms of the size of each result, amplified by 1/√(1 − q²)
    rel = 64 * np.finfo(float).eps * (1.0 + k)
    ve = rel * f
    ge = rel[..., None] * (np.abs(G) + (f * k)[..., None] * np.abs(qp))
    he = rel[..., None, None] * (np.abs(H) + (f * k ** 3)[..., None, None]
                                 * np.abs(qp[..., :, None] * qp[..., None, :]))
    return val, G, H, ve, ge, he


def pair_derivatives(activation, K11, K12, K22, *, rtol: float = 1e-12,
                     hessian: bool = True) -> PairDerivatives:
    """``E[φ(h_a)φ(h_b)]`` and its gradient and Hessian in ``(K_aa, K_ab, K_bb)``, vectorized
    (see the module docstring for the two routes).

    The covariance must be positive definite for an activation with kinks (the second
    derivatives of ``E`` are singular at ``|ρ| = 1`` there: ReLU's ``∂²E/∂K_ab² =
    1/(2π√det Σ)``); a smooth activation allows ``|ρ| = 1``, and so does a scale-invariant one
    with ``hessian=False`` (the gradient is finite there; the Hessian is then not computed:
    NaN).

    Raises
    ------
    InvalidVarianceError
        A covariance that is not positive semidefinite, or singular for a kinked φ.
    """
    act = Activation.get(activation)
    k11, k12, k22 = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (K11, K12, K22)))
    if not (np.all(np.isfinite(k11)) and np.all(np.isfinite(k12)) and np.all(np.isfinite(k22))):
        raise InvalidVarianceError("the covariance entries must be finite")
    if np.any(k11 <= 0) or np.any(k22 <= 0):
        raise InvalidVarianceError("the variances K_aa, K_bb must be > 0")
    if act.homogeneous_slopes is not None:
        hs = act.homogeneous_slopes
        if hessian and hs[0] != hs[1] and np.any(k12 * k12 >= k11 * k22 * (1 - 1e-12)):
            raise InvalidVarianceError(
                f"the kernel derivatives of {act.name} (an activation with a kink) are singular "
                "at correlation |rho| = 1 (two inputs that coincide up to scale): merge equal "
                "inputs first")
        out = _homogeneous(act, k11, k12, k22)
        if not hessian:
            out = out[:2] + (np.full(out[2].shape, np.nan),) + out[3:5] + \
                (np.full(out[2].shape, np.nan),)
    elif (ep := erf_params(act)) is not None:
        out = _erf(*ep, k11, k12, k22)
    elif act.is_smooth:
        out = _smooth(act, k11, k12, k22, rtol)
    else:
        act.check_continuous("the derivatives of E[phi(h_a) phi(h_b)] in the covariance")
        rho2 = k12 * k12 / (k11 * k22)
        if np.any(rho2 >= 1 - 1e-12):
            raise InvalidVarianceError(
                f"the kernel derivatives of {act.name} (an activation with kinks) are singular "
                "at correlation |rho| = 1 (two inputs that coincide up to scale): merge equal "
                "inputs first")
        out = _kinked(act, k11, k12, k22, rtol)
    return PairDerivatives(*out)


def _dphi_homogeneous(act, k11, k12, k22):
    """``E[φ'(h_a)φ'(h_b)] = F'(ρ)`` of a scale-invariant φ (the arc-cosine kernel's derivative,
    module docstring), a function of ``ρ`` alone: its gradient and Hessian by the chain rule
    with ``F''(ρ) = (a₊ − a₋)²/(2π sin θ)`` and its derivative ``(a₊ − a₋)² ρ/(2π sin³ θ)``."""
    ap, am = act.homogeneous_slopes
    r = np.sqrt(k11 * k22)
    rho = np.clip(k12 / r, -1.0, 1.0)
    th = np.arccos(rho)
    sin = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))
    tau = 2.0 * np.pi
    val = ((ap * ap + am * am) * (np.pi - th) + 2 * ap * am * th) / tau
    c = (ap - am) ** 2 / tau
    with np.errstate(divide="ignore", invalid="ignore"):
        F2 = np.where(c == 0.0, 0.0, c / sin)
        F3 = np.where(c == 0.0, 0.0, c * rho / sin ** 3)
    A, C = k11, k22
    pp = np.stack([-rho / (2 * A), 1.0 / r, -rho / (2 * C)], -1)      # ∂ρ/∂p
    ppp = np.zeros(A.shape + (3, 3))
    ppp[..., 0, 0] = 0.75 * rho / (A * A)
    ppp[..., 2, 2] = 0.75 * rho / (C * C)
    ppp[..., 0, 2] = ppp[..., 2, 0] = rho / (4 * A * C)
    ppp[..., 0, 1] = ppp[..., 1, 0] = -1.0 / (2 * A * r)
    ppp[..., 2, 1] = ppp[..., 1, 2] = -1.0 / (2 * C * r)
    G = F2[..., None] * pp
    H = F3[..., None, None] * pp[..., :, None] * pp[..., None, :] + F2[..., None, None] * ppp
    # round-off: arccos amplifies the rounding of ρ by 1/sin θ, F''' by 1/sin³ θ
    rel = 64 * np.finfo(float).eps * (1.0 + 1.0 / np.maximum(sin, 1e-300) ** 3)
    ve = rel * (ap * ap + am * am)
    return val, G, H, ve, rel[..., None] * np.abs(G), rel[..., None, None] * np.abs(H)


def dphi_pair_derivatives(activation, K11, K12, K22, *, rtol: float = 1e-12,
                          hessian: bool = True) -> PairDerivatives:
    """``E[φ'(h_a)φ'(h_b)]`` and its gradient and Hessian in ``(K_aa, K_ab, K_bb)``,
    vectorized: the NTK's tangent factor on two inputs and its response to the kernel (the
    several-input NTK at order 1/n, :mod:`critheory.theory.ntk.finite_data`).

    A scale-invariant φ (ReLU, leaky ReLU, linear, |x|) has ``E[φ'φ'] = F'(ρ)``, the
    derivative of the arc-cosine kernel of :func:`pair_derivatives`, in closed form (its
    derivatives are singular at ``|ρ| = 1`` for a kink). Otherwise φ' must be continuous: it is
    the activation of :func:`pair_derivatives` (its smooth route for a smooth φ, the kinked
    one for a φ' with kinks such as ELU's); a φ' with jumps (hard tanh, ReLU6) is refused in
    one line.

    Examples
    --------
    >>> import numpy as np
    >>> d = dphi_pair_derivatives("relu", 1.0, 0.0, 1.0)     # P(h_a > 0, h_b > 0) = 1/4
    >>> bool(np.isclose(d.value, 0.25)), bool(np.isclose(d.grad[1], 1 / (2 * np.pi)))
    (True, True)
    """
    act = Activation.get(activation)
    k11, k12, k22 = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (K11, K12, K22)))
    if act.homogeneous_slopes is None:
        cache = act.__dict__.setdefault("_dphi_activation", [])
        if not cache:
            cache.append(Activation.get(act.derivative(1)))
        return pair_derivatives(cache[0], k11, k12, k22, rtol=rtol, hessian=hessian)
    if not (np.all(np.isfinite(k11)) and np.all(np.isfinite(k12)) and np.all(np.isfinite(k22))):
        raise InvalidVarianceError("the covariance entries must be finite")
    if np.any(k11 <= 0) or np.any(k22 <= 0):
        raise InvalidVarianceError("the variances K_aa, K_bb must be > 0")
    hs = act.homogeneous_slopes
    if hs[0] != hs[1] and np.any(k12 * k12 >= k11 * k22 * (1 - 1e-12)):
        raise InvalidVarianceError(
            f"the kernel derivatives of E[phi'(h_a) phi'(h_b)] for {act.name} (an activation "
            "with a kink) are singular at correlation |rho| = 1 (two inputs that coincide up to "
            "scale): merge equal inputs first")
    out = _dphi_homogeneous(act, k11, k12, k22)
    if not hessian:
        nan = np.full(out[2].shape, np.nan)
        out = out[:2] + (nan,) + out[3:5] + (nan,)
    return PairDerivatives(*out)
