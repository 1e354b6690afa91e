"""Drift and diffusion of the neural covariance SDE [LNR, arXiv:2206.02768, Thms 3.2, 3.5].

``dV_t = b(V_t) dt + Σ(V_t)^{1/2} dB_t`` for the m×m covariance ``V_ab = <h_a, h_b>/n`` in
t = l/n, with ``Σ_{ab,cd} = V_ac V_bd + V_ad V_bc`` and

* ReLU shaping: ``b_ab = ν(ρ_ab) √(V_aa V_bb)``,
  ``ν(ρ) = (c₊ − c₋)² (√(1 − ρ²) − ρ arccos ρ)/(2π)``;
* smooth shaping (σ_p = φ^{(p)}(0)):
  ``b_ab = (σ₂²/(4a²)) [V_aa V_bb + V_ab(2V_ab − 3)] + (σ₃/(2a²)) V_ab (V_aa + V_bb − 2)``.

Both are ``n (c E[φ_s(x_a)φ_s(x_b)] − V_ab)`` at n → ∞ (x ~ N(0, V)); :func:`drift_symbolic`
derives the smooth one from the Taylor coefficients with sympy (Isserlis moments), and the
tests check both against exact two-point expectations at large n.

Correlation of two inputs (Itô; ReLU shaping, where ρ is Markov because b is homogeneous of
degree 1): ``dρ = [ν(ρ) − ρ(1 − ρ²)/2] dt + (1 − ρ²) dW``. In ``x = atanh ρ`` the noise is
additive: ``dx = [ν(ρ)/(1 − ρ²) + ρ/2] dt + dW``.

Norm (smooth shaping): ``dV = (B/a²) V (V − 1) dt + √2 V dB``, ``B = ¾σ₂² + σ₃``: for B ≤ 0 no
finite-time blow-up; for B > 0 the drift is superlinear and V explodes in finite time with
positive probability (for V₀ > 1 already the ODE explodes at t* = (a²/B) log(V₀/(V₀ − 1))).

Examples
--------
>>> import numpy as np
>>> from critheory.theory.shaped.shaping import shape_relu
>>> from critheory.theory.shaped.sde import drift, nu
>>> s = shape_relu(0.0, -1.0)
>>> round(float(nu(s, 0.0)), 12) == round(1 / (2 * np.pi), 12)
True
>>> float(drift(s, np.array([[1.0, 1.0], [1.0, 1.0]]))[0, 1])     # ν(1) = 0
0.0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["nu", "drift", "drift_pair", "geo_step2", "geo_step", "rho_drift", "rho_diffusion",
           "x_drift", "drift_symbolic", "drift_text", "Stability", "stability",
           "sin_minus_theta_cos", "GEO2_SCRATCH"]

_TWO_PI = 2.0 * np.pi


def _smtc_series(theta):
    """``θ³/3 − θ⁵/30 + θ⁷/840 − θ⁹/45360``: ``sin θ − θ cos θ`` below θ = 0.05."""
    t2 = theta * theta
    return theta * t2 * (1 / 3 - t2 * (1 / 30 - t2 * (1 / 840 - t2 / 45360)))


def _small_by_series(v, theta):
    """``v`` with the entries where θ < 0.05 replaced by :func:`_smtc_series` (in place)."""
    small = theta < 0.05
    if small.ndim == 0:
        return _smtc_series(theta) if small else v
    if small.any():
        v[small] = _smtc_series(theta[small])
    return v


def sin_minus_theta_cos(theta):
    """``sin θ − θ cos θ`` without cancellation near θ = 0 (series below 0.05).

    >>> t = 1e-3    # the Taylor series θ³/3 − θ⁵/30 + θ⁷/840 − ...
    >>> abs(float(sin_minus_theta_cos(t)) - (t ** 3 / 3 - t ** 5 / 30)) < 1e-14 * t ** 3
    True
    """
    theta = np.asarray(theta, dtype=float)
    v = np.sin(theta) - theta * np.cos(theta)
    return _small_by_series(v, theta)


def _scratch(shape, k: int) -> list:
    """``k`` float64 arrays of ``shape`` to compute into."""
    return [np.empty(shape) for _ in range(k)]


def _nu_into(k: float, rho, v, w1, w2):
    """``ν(ρ)`` into ``v`` (ρ clipped to [−1, 1] in place; w1, w2 scratch): see :func:`nu`."""
    np.clip(rho, -1.0, 1.0, out=rho)
    theta = np.arccos(rho, out=w1)
    np.subtract(1.0, rho, out=v)
    v *= np.add(1.0, rho, out=w2)
    np.sqrt(v, out=v)
    v -= np.multiply(rho, theta, out=w2)
    small = theta < 0.05
    if small.any():
        v[small] = _smtc_series(theta[small])
    np.multiply(k, v, out=v)
    v /= _TWO_PI
    return v


def nu(shaping, rho):
    """ReLU correlation drift ``ν(ρ) = (c₊ − c₋)²(√(1 − ρ²) − ρ arccos ρ)/(2π)`` (vectorized).

    With θ = arccos ρ the bracket is ``sin θ − θ cos θ`` (:func:`sin_minus_theta_cos`), here
    evaluated as written, ``√((1 − ρ)(1 + ρ)) − ρθ``, without the sine and cosine (each ~8×
    the cost of ``arccos`` in numpy, and this is the integrator's innermost function); below
    θ = 0.05, where the difference cancels, by the same series. Either way the absolute error
    is about one ulp of ν (checked against mpmath in the tests).

    >>> from critheory.theory.shaped.shaping import shape_relu
    >>> float(nu(shape_relu(1, -1), -1.0)) == 4 * np.pi / (2 * np.pi)
    True
    """
    rho = np.array(rho, dtype=float)            # a copy: clipped in place
    v = _nu_into(shaping.k, rho, *_scratch(rho.shape, 3))
    return v[()] if v.ndim == 0 else v


def _relu_drift_into(shaping, Vaa, Vbb, Vab, v, w1, w2, w3, w4):
    """ReLU-shaping ``b_ab = ν(ρ_ab)√(V_aa V_bb)`` into ``v`` (w1–w4 scratch of its shape)."""
    r = np.maximum(Vaa, 0.0, out=w1)
    r *= np.maximum(Vbb, 0.0, out=w2)
    np.sqrt(r, out=r)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.divide(Vab, r, out=w2)
    pos = r > 0
    if not pos.all():
        rho[~pos] = 1.0
    _nu_into(shaping.k, rho, v, w3, w4)
    v *= r
    return v


def drift_pair(shaping, Vaa, Vbb, Vab):
    """Entry ``b_ab`` of the drift from ``V_aa, V_bb, V_ab`` (vectorized, broadcast)."""
    Vaa = np.asarray(Vaa, dtype=float)
    Vbb = np.asarray(Vbb, dtype=float)
    Vab = np.asarray(Vab, dtype=float)
    if shaping.homogeneous:
        shape = np.broadcast_shapes(Vaa.shape, Vbb.shape, Vab.shape)
        v = _relu_drift_into(shaping, Vaa, Vbb, Vab, *_scratch(shape, 5))
        return v[()] if v.ndim == 0 else v
    Vaa = np.maximum(Vaa, 0.0)
    Vbb = np.maximum(Vbb, 0.0)
    P = Vaa * Vbb
    a2 = shaping.a ** 2
    return (shaping.sigma2 ** 2 / (4 * a2)) * (P + Vab * (2 * Vab - 3)) \
        + (shaping.sigma3 / (2 * a2)) * Vab * (Vaa + Vbb - 2)
def drift(shaping, V):
    """Drift ``b(V)`` for a stack of covariance matrices ``V`` (shape ``(..., m, m)``).

    >>> from critheory.theory.shaped.shaping import shape_smooth
    >>> b = drift(shape_smooth("tanh", 1.0), np.array([[2.0, 0.5], [0.5, 1.0]]))
    >>> b.tolist()         # σ₃/(2a²) V_ab (V_aa + V_bb − 2) with σ₃ = −2
    [[-4.0, -0.5], [-0.5, 0.0]]
    """
    V = np.asarray(V, dtype=float)
    d = np.diagonal(V, axis1=-2, axis2=-1)
    return drift_pair(shaping, d[..., :, None], d[..., None, :], V)


def _sqrt2(a, b, c, w=None):
    """Closed-form square root S of 2×2 PSD matrices (a, b; b, c): ``(V + √det I)/√(tr V + 2√det)``.

    Returns ``(s11, s12, s22)``, computed into ``w[0], w[1], w[2]`` (``w[3]`` scratch) when
    given."""
    s11, s12, s22, t = _scratch(np.shape(a), 4) if w is None else w[:4]
    sd = np.multiply(a, c, out=s22)
    sd -= np.multiply(b, b, out=t)
    np.maximum(sd, 0.0, out=sd)
    np.sqrt(sd, out=sd)
    np.add(a, c, out=t)
    t += np.multiply(2, sd, out=s11)
    np.maximum(t, 1e-300, out=t)
    np.sqrt(t, out=t)
    np.add(a, sd, out=s11)
    s11 /= t
    np.divide(b, t, out=s12)
    sd += c                                     # s22 = (c + sd)/t
    sd /= t
    return s11, s12, s22


#: scratch arrays :func:`geo_step2` computes in
GEO2_SCRATCH = 13


def geo_step2(shaping, a, b, c, g, dt, out=None, work=None):
    """One geometric (multiplicative) step for 2×2 covariances ``(a, b, c)``.

    ``V' = S exp(√dt M − (m+1)/2 dt I) S + b(V) dt`` with ``S = V^{1/2}``,
    ``M = (G + Gᵀ)/√2`` (m = 2). The diffusion part keeps V positive definite and is exact for
    the norms' geometric Brownian motion when V is diagonal (``log V_aa`` gains
    ``√(2dt) g − dt``); its first two moments agree with ``Σ(V) dt`` to O(dt²) (E[M²] = (m+1)I:
    the ``−(m+1)/2`` term is the Itô correction), so the scheme has weak order 1 like
    Euler–Maruyama but no multiplicative step can turn a norm negative. The drift is added
    explicitly.

    ``out`` (three arrays, not ``a``, ``b``, ``c`` themselves) and ``work``
    (:data:`GEO2_SCRATCH` arrays of the paths' shape) let a loop over steps compute without
    allocating: :func:`~critheory.theory.shaped.solve.integrate` steps 10⁴–10⁵ paths, where
    allocating and paging in each intermediate array cost more than the arithmetic.

    >>> from critheory.theory.shaped.shaping import shape_relu
    >>> one = np.ones(3)
    >>> na, nb, nc = geo_step2(shape_relu(0, -1), one, 0.5 * one, one, np.zeros((4, 3)), 0.01)
    >>> bool(np.all(na == nc)), bool(np.all(nb < na))
    (True, True)
    """
    shape = np.shape(a)
    w = _scratch(shape, GEO2_SCRATCH) if work is None else work
    oa, ob, oc = _scratch(shape, 3) if out is None else out
    s11, s12, s22 = _sqrt2(a, b, c, w)
    t = w[3]
    p_, r_, o_, h, d, eh, ch, sh, m00 = w[4:13]
    g11, g12, g21, g22 = g
    q = np.sqrt(dt)
    r2 = np.sqrt(2.0)
    np.multiply(r2, g11, out=p_)
    p_ *= q
    p_ -= 1.5 * dt
    np.multiply(r2, g22, out=r_)
    r_ *= q
    r_ -= 1.5 * dt
    np.add(g12, g21, out=o_)
    o_ /= r2
    o_ *= q
    # exp of the symmetric (p o; o r): e^h [cosh d I + sinh(d)/d (A − h I)]
    np.add(p_, r_, out=h)
    h *= 0.5
    np.subtract(p_, r_, out=d)
    np.square(d, out=d)
    d *= 0.25
    d += np.multiply(o_, o_, out=t)
    np.sqrt(d, out=d)
    np.exp(h, out=eh)
    np.cosh(d, out=ch)
    ch *= eh
    with np.errstate(invalid="ignore", divide="ignore"):
        np.sinh(d, out=sh)
        sh /= d
    small = ~(d > 1e-8)
    if small.any():
        ds = d[small]
        sh[small] = 1.0 + ds * ds / 6
    sh *= eh
    e11, e22, e12 = p_, r_, o_       # e11 = ch + sh (p − h), e22 = ch + sh (r − h), e12 = sh o
    e11 -= h
    e11 *= sh
    e11 += ch
    e22 -= h
    e22 *= sh
    e22 += ch
    e12 *= sh
    # S E S: m00 = s11 e11 + s12 e12, m01 = s11 e12 + s12 e22,
    #        m10 = s12 e11 + s22 e12, m11 = s12 e12 + s22 e22
    m01, m10, m11 = h, d, eh
    np.multiply(s11, e11, out=m00)
    m00 += np.multiply(s12, e12, out=t)
    np.multiply(s11, e12, out=m01)
    m01 += np.multiply(s12, e22, out=t)
    np.multiply(s12, e11, out=m10)
    m10 += np.multiply(s22, e12, out=t)
    np.multiply(s12, e12, out=m11)
    m11 += np.multiply(s22, e22, out=t)
    np.multiply(m00, s11, out=oa)
    oa += np.multiply(m01, s12, out=t)
    np.multiply(m00, s12, out=ob)
    ob += np.multiply(m01, s22, out=t)
    np.multiply(m10, s12, out=oc)
    oc += np.multiply(m11, s22, out=t)
    if shaping.homogeneous:  # ν(1) = 0: no drift of the norms under ReLU shaping
        bd = _relu_drift_into(shaping, a, c, b, *w[:5])
        bd *= dt
        ob += bd
    else:
        ob += drift_pair(shaping, a, c, b) * dt
        oa += drift_pair(shaping, a, a, a) * dt
        oc += drift_pair(shaping, c, c, c) * dt
    return oa, ob, oc


def geo_step(shaping, V, G, dt):
    """:func:`geo_step2` for m×m covariances (eigen-decompositions; ``G`` shape (P, m, m))."""
    m = V.shape[-1]
    w, U = np.linalg.eigh(V)
    S = (U * np.sqrt(np.maximum(w, 0.0))[..., None, :]) @ np.swapaxes(U, -1, -2)
    A = (G + np.swapaxes(G, -1, -2)) * np.sqrt(dt / 2.0)
    A = A - 0.5 * (m + 1) * dt * np.eye(m)
    wa, Ua = np.linalg.eigh(A)
    E = (Ua * np.exp(wa)[..., None, :]) @ np.swapaxes(Ua, -1, -2)
    return S @ E @ S + drift(shaping, V) * dt


def rho_drift(shaping, rho):
    """Drift of the correlation SDE (ReLU shaping): ``ν(ρ) − ρ(1 − ρ²)/2``."""
    rho = np.asarray(rho, dtype=float)
    return nu(shaping, rho) - 0.5 * rho * (1 - rho * rho)


def rho_diffusion(rho):
    """Diffusion coefficient of the correlation SDE: ``1 − ρ²``."""
    rho = np.asarray(rho, dtype=float)
    return 1 - rho * rho


def x_drift(shaping, x):
    """Drift of ``x = atanh ρ`` (unit additive noise): ``ν(ρ) cosh²x + tanh(x)/2``.

    Computed with θ = arccos(tanh x) = 2 atan(e^{-x}), without cancellation at large |x|.
    """
    x = np.asarray(x, dtype=float)
    theta = 2.0 * np.arctan(np.exp(-x))
    # ν cosh² x = k (sin θ − θ cos θ)/(2π sin² θ), sin θ = sech x
    s = np.sin(theta)
    return shaping.k * sin_minus_theta_cos(theta) / (_TWO_PI * s * s) + 0.5 * np.tanh(x)


def drift_symbolic(shaping):
    """The smooth drift derived with sympy from φ_s(x) = x + σ₂x²/(2s) + σ₃x³/(6s²) + O(s⁻³).

    Computes ``n (c E[φ_s(x_a)φ_s(x_b)] − V_ab)`` with Isserlis moments and c⁻¹ = E[φ_s(g)²],
    expanded to order 1/s², s = a√n. Returns a sympy expression in ``Vaa, Vbb, Vab, a``.

    >>> from critheory.theory.shaped.shaping import shape_smooth
    >>> import sympy as sp
    >>> e = drift_symbolic(shape_smooth("tanh", 1.0))
    >>> sp.factor(e)
    -Vab*(Vaa + Vbb - 2)/a**2
    """
    import sympy as sp

    Vaa, Vbb, Vab, a, eps, t1, t2 = sp.symbols("Vaa Vbb Vab a epsilon t1 t2")
    s2 = sp.sympify(shaping.sigma2_exact)
    s3 = sp.sympify(shaping.sigma3_exact)

    def phi(x):
        return x + s2 * eps * x ** 2 / 2 + s3 * eps ** 2 * x ** 3 / 6

    mgf = sp.exp((Vaa * t1 ** 2 + 2 * Vab * t1 * t2 + Vbb * t2 ** 2) / 2)

    def moment(i, j):  # E[x_a^i x_b^j]
        return sp.diff(mgf, t1, i, t2, j).subs({t1: 0, t2: 0})

    xa, xb = sp.symbols("xa xb")
    prod = sp.expand(phi(xa) * phi(xb))
    poly = sp.Poly(prod, xa, xb)
    E = sum(coef * moment(i, j) for (i, j), coef in poly.terms())
    sq = sp.Poly(sp.expand(phi(xa) ** 2), xa)
    c_inv = sum(coef * moment(i, 0) for (i,), coef in sq.terms()).subs(Vaa, 1)
    val = sp.series(sp.expand(E) / c_inv, eps, 0, 3).removeO()
    # eps = 1/s = 1/(a√n): the eps² coefficient times 1/a² is n (c E − V_ab)
    coeff1 = sp.simplify(val.coeff(eps, 1))
    if coeff1 != 0:  # pragma: no cover - odd moments vanish
        raise ArithmeticError("unexpected O(1/s) term in the shaped kernel map")
    return sp.expand(val.coeff(eps, 2) / a ** 2)


def drift_text(shaping) -> str:
    """The drift formula, printed (ReLU: ν(ρ); smooth: derived symbolically).

    Examples
    --------
    >>> import critheory as ct
    >>> ct.drift_text(ct.shape_smooth("tanh", 1.0))
    'b_ab = V_ab*(-V_aa - V_bb + 2)/a**2'
    """
    if shaping.homogeneous:
        return (f"b_ab = nu(rho_ab) sqrt(V_aa V_bb), nu(rho) = {shaping.k:g} "
                f"(sqrt(1 - rho^2) - rho arccos(rho))/(2 pi)")
    import sympy as sp

    e = drift_symbolic(shaping)
    return "b_ab = " + str(sp.collect(sp.factor_terms(e), sp.Symbol("a"))).replace(
        "Vaa", "V_aa").replace("Vbb", "V_bb").replace("Vab", "V_ab")


@dataclass(frozen=True)
class Stability:
    """Stability of the norm SDE ``dV = (B/a²) V(V − 1) dt + √2 V dB``.

    Attributes
    ----------
    B : float
        ``¾φ''(0)² + φ'''(0)`` (0 for ReLU shaping: the norm is a driftless geometric Brownian
        motion, log V_t ~ N(log V₀ − t, 2t)).
    verdict : str
        ``"stable"`` (B ≤ 0: no finite-time blow-up) or ``"blows_up"`` (B > 0: finite-time
        blow-up with positive probability).
    reason : str
        One sentence.
    """

    B: float
    verdict: str
    reason: str


def stability(shaping) -> Stability:
    """Norm stability and its verdict.

    Examples
    --------
    >>> from critheory.theory.shaped.shaping import shape_smooth
    >>> stability(shape_smooth("tanh", 1.0)).B
    -2.0
    >>> stability(shape_smooth("x + x**2", 1.0)).verdict
    'blows_up'
    >>> import critheory as ct
    >>> ct.stability(ct.shape_smooth("sin(x)", 1.0)).verdict
    'stable'
    """
    B = float(shaping.B)
    if shaping.homogeneous:
        return Stability(0.0, "stable", "ReLU shaping: the norm is a geometric Brownian motion "
                                        "(no drift), finite for all t")
    if B <= 0:
        return Stability(B, "stable", f"B = {B:g} <= 0: the drift (B/a^2)V(V-1) pulls large V "
                                      "back, no finite-time blow-up")
    return Stability(B, "blows_up", f"B = {B:g} > 0: the drift (B/a^2)V(V-1) is superlinear, "
                                    "the norm explodes in finite time with positive probability")
