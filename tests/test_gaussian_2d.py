"""Two-point Gaussian expectations E[f(h1) g(h2)], (h1, h2) ~ N(0, [[K11, K12], [K12, K22]]).

References (all evaluated in mpmath at 30+ digits; target: relative error <= 1e-10)
------------------------------------------------------------------------------------
* exact closed forms written here: arc-cosine kernels (linear, relu, leaky_relu, abs),
  Williams' erf kernel, sin/cos/exp (Gaussian characteristic function), polynomials (Wick).
  Both ``expect2``'s default path and its quadrature path (``method="quadrature"``) are
  checked, so the quadrature engine is validated at correlations up to ±0.999 on kinked and
  smooth integrands;
* a Mehler (Hermite) series for the activations without a closed form, valid at |ρ| <= 1/2:
  ``E[f(h1) g(h2)] = Σ_n ρ^n a_n b_n`` with ``a_n = E[f(√K11 z) He_n(z)]/√n!`` computed by a
  fixed high-order Gauss–Legendre rule in mpmath (independent of critheory's quadrature);
  the tail after N terms is below ρ^{N+1}/(1-ρ) · sqrt(E f² E g²) (Cauchy–Schwarz, Parseval);
* ``critheory.expectations.reference.mp_expect2`` (iterated mpmath quadrature) at |ρ| = 0.999, slow-only
  (tens of seconds per value).
"""
from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from mpmath.calculus.quadrature import GaussLegendre

from critheory.activation import zoo
from critheory.activation.symbolic import X, Activation
from critheory.expectations.gaussian import expect, expect2
from critheory.expectations.reference import mp_expect2

ZOO = zoo.names()
RHOS = (-0.999, -0.5, 0.0, 0.5, 0.999)
KS = (0.1, 1.0, 10.0)
SPEC = {"phi": 0, "dphi": 1}


def _cov(K11, rho, K22):
    return K11, rho * math.sqrt(K11 * K22), K22


def _check(v, ref, cs, rtol=1e-10):
    """|v - ref| <= rtol |ref|, with a floor 1e-15 · sqrt(E f² E g²) for values that cancel
    to ~0 (odd activations at ρ = 0)."""
    ref = float(ref)
    assert abs(v - ref) <= rtol * abs(ref) + 1e-15 * cs, (v, ref, cs)


# ---------------------------------------------------------------------- exact references
def _acos_kernels(rho):
    th = mpmath.acos(rho)
    j1 = lambda t: (mpmath.sin(t) + (mpmath.pi - t) * mpmath.cos(t)) / (2 * mpmath.pi)  # noqa: E731
    j0 = lambda t: (mpmath.pi - t) / (2 * mpmath.pi)  # noqa: E731
    return th, j1, j0


def _exact(name, spec, K11, K12, K22):
    """Exact E[f(h1) g(h2)] (f = g = φ or φ') in mpmath, or None."""
    K11, K12, K22 = (mpmath.mpf(v) for v in (K11, K12, K22))
    s = mpmath.sqrt(K11 * K22)
    rho = K12 / s
    slopes = {"linear": (1, 1), "relu": (1, 0), "leaky_relu": (1, mpmath.mpf("0.01")),
              "abs": (1, -1)}
    if name in slopes:
        # φ = a₊ relu(x) − a₋ relu(−x); E[relu(h1) relu(±h2)] = s J1(θ or π−θ) (Cho & Saul)
        ap, am = (mpmath.mpf(v) for v in slopes[name])
        th, j1, j0 = _acos_kernels(rho)
        if spec == "phi":
            return s * ((ap ** 2 + am ** 2) * j1(th) - 2 * ap * am * j1(mpmath.pi - th))
        return (ap ** 2 + am ** 2) * j0(th) + 2 * ap * am * j0(mpmath.pi - th)
    if name == "erf":   # Williams 1997; φ' = (2/√π) e^{-x²}
        if spec == "phi":
            return 2 / mpmath.pi * mpmath.asin(2 * K12 / mpmath.sqrt((1 + 2 * K11) * (1 + 2 * K22)))
        return 4 / mpmath.pi / mpmath.sqrt((1 + 2 * K11) * (1 + 2 * K22) - 4 * K12 ** 2)
    damp = mpmath.exp(-(K11 + K22) / 2)
    if name == "sin":   # E[sin h1 sin h2] = e^{-(K11+K22)/2} sinh K12, φ' = cos
        return damp * (mpmath.sinh(K12) if spec == "phi" else mpmath.cosh(K12))
    if name == "cos":
        return damp * (mpmath.cosh(K12) if spec == "phi" else mpmath.sinh(K12))
    if name == "exp(x)":
        return mpmath.exp((K11 + 2 * K12 + K22) / 2)
    if name == "x**2":  # Wick: E[h1² h2²] = K11 K22 + 2 K12², φ' = 2x
        return K11 * K22 + 2 * K12 ** 2 if spec == "phi" else 4 * K12
    return None


CLOSED_2D = ["linear", "relu", "leaky_relu", "abs", "erf", "sin", "cos", "exp(x)", "x**2"]


def _cs(name, spec, K11, K22):
    """sqrt(E[f(h1)²] E[f(h2)²]), the Cauchy–Schwarz scale of E[f(h1) f(h2)]."""
    g = "phi2" if spec == "phi" else "dphi2"
    return math.sqrt(expect(name, g, K11).value * expect(name, g, K22).value)


def _closed_case(name, spec, K11, rho, K22):
    K11, K12, K22 = _cov(K11, rho, K22)
    with mpmath.workdps(40):
        want = _exact(name, spec, K11, K12, K22)
    cs = _cs(name, spec, K11, K22)
    r = expect2(name, spec, spec, K11, K12, K22)
    _check(r.value, want, cs)
    q = expect2(name, spec, spec, K11, K12, K22, method="quadrature")
    _check(q.value, want, cs)
    assert abs(q.value - float(want)) <= 10 * q.error + 1e-15 * cs


@pytest.mark.parametrize("spec", ["phi", "dphi"])
@pytest.mark.parametrize("name", CLOSED_2D)
@pytest.mark.parametrize("K11, rho, K22", [(1.0, 0.5, 1.0), (0.1, -0.999, 10.0)])
def test_closed_forms_2d(name, spec, K11, rho, K22):
    _closed_case(name, spec, K11, rho, K22)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["phi", "dphi"])
@pytest.mark.parametrize("name", CLOSED_2D)
def test_closed_forms_2d_sweep(name, spec, every_point):
    with every_point() as pts:
        for rho in RHOS:
            for K11 in KS:
                for K22 in KS:
                    with pts.at(K11=K11, rho=rho, K22=K22):
                        _closed_case(name, spec, K11, rho, K22)


def test_closed_form_methods():
    assert expect2("relu", "phi", "phi", 1.0, 0.3, 2.0).method == "closed_form"
    assert expect2("erf", "dphi", "dphi", 1.0, 0.3, 2.0).method == "closed_form"
    assert expect2("tanh", "phi", "dphi", 1.0, 0.3, 2.0).method == "symmetry"  # odd × even
    r = expect2("tanh", "phi", "phi", [1.0, 2.0], [0.3, -0.3], [2.0, 2.0])
    assert r.value.shape == r.error.shape == r.methods.shape == (2,)
    assert r.method.startswith("gauss")


# ---------------------------------------------------------------------- Mehler series
@functools.lru_cache(maxsize=None)
def _gl_nodes(dps):
    with mpmath.workdps(dps):
        return tuple(GaussLegendre(mpmath.mp).calc_nodes(4, mpmath.mp.prec))   # 24 nodes


@functools.lru_cache(maxsize=None)
def _hermite_coeffs(name, deriv, K, N=50, dps=30, width=0.5):
    """a_n = E[φ^{(deriv)}(√K z) He_n(z)]/√n!, n = 0..N, by composite 24-point Gauss–Legendre
    in mpmath on panels of width ``width`` over |z| <= W, split at the kinks."""
    act = Activation.get(name)
    f = act.mpmath_func(deriv)
    with mpmath.workdps(dps + 10):
        sK = mpmath.sqrt(mpmath.mpf(K))
        W = max(math.sqrt(2 * (dps + 15) * math.log(10)), 2 * math.sqrt(N) + 6)
        edges = {mpmath.mpf(float(e)) for e in np.arange(-W, W + 1e-9, width)}
        edges.update(mpmath.mpf(b) / sK for b in act.breakpoints if abs(b / math.sqrt(K)) < W)
        edges = sorted(edges)
        sq = [mpmath.sqrt(n) for n in range(N + 2)]
        c = [mpmath.mpf(0)] * (N + 1)
        norm = 1 / mpmath.sqrt(2 * mpmath.pi)
        for a, b in zip(edges[:-1], edges[1:]):
            half, mid = (b - a) / 2, (a + b) / 2
            for t, w in _gl_nodes(dps + 10):
                z = mid + half * t
                wt = half * w * norm * mpmath.exp(-z * z / 2) * f(sK * z)
                h_prev, h = mpmath.mpf(0), mpmath.mpf(1)
                for n in range(N + 1):
                    c[n] += wt * h
                    h_prev, h = h, (z * h - sq[n] * h_prev) / sq[n + 1]
        return tuple(c)


def _mehler(name, spec, K11, K12, K22, N=50):
    a = _hermite_coeffs(name, SPEC[spec], float(K11), N)
    b = _hermite_coeffs(name, SPEC[spec], float(K22), N)
    with mpmath.workdps(40):
        rho = mpmath.mpf(K12) / mpmath.sqrt(mpmath.mpf(K11) * mpmath.mpf(K22))
        return mpmath.fsum(rho ** n * x * y for n, (x, y) in enumerate(zip(a, b)))


@pytest.mark.parametrize("name, spec", [
    ("relu", "phi"), pytest.param("erf", "dphi", marks=pytest.mark.slow)])
def test_mehler_reference_is_exact_for_closed_forms(name, spec, reference, every_point):
    """The Mehler machinery reproduces the arc-cosine and erf kernels (kink and smooth); the
    fast case checks the frozen Mehler values, the slow one computes them."""
    with every_point() as pts:
        for rho in (-0.5, 0.5):
            K11, K12, K22 = _cov(1.0, rho, 1.0)
            with mpmath.workdps(40):
                want = _exact(name, spec, K11, K12, K22)
            got = reference("mehler", name, spec, K11, K12, K22)   # _mehler(...)
            # truncation after 50 terms: 0.5^51/(1 - 0.5) · sqrt(E f² E g²) < 1e-15
            with pts.at(rho=rho):
                assert abs(got - want) <= 1e-15 * abs(want), (got, want)


@pytest.mark.parametrize("name, spec", [
    ("tanh", "phi"), pytest.param("softsign", "dphi", marks=pytest.mark.slow)])
def test_mehler_vs_expect2(name, spec, reference, every_point):
    with every_point() as pts:
        for rho in (-0.5, 0.5):
            K11, K12, K22 = _cov(1.0, rho, 1.0)
            want = reference("mehler", name, spec, K11, K12, K22)   # _mehler(...)
            with pts.at(rho=rho):
                _check(expect2(name, spec, spec, K11, K12, K22).value, want,
                       _cs(name, spec, K11, K22))


NO_CLOSED = [n for n in ZOO if n not in CLOSED_2D]


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["phi", "dphi"])
@pytest.mark.parametrize("name", NO_CLOSED)
def test_mehler_sweep(name, spec, every_point):
    """Whole zoo without closed forms × K11, K22 in {0.1, 1, 10} × ρ in {-0.5, 0, 0.5}."""
    with every_point() as pts:
        for K11 in KS:
            for K22 in KS:
                cs = _cs(name, spec, K11, K22)
                for rho in (-0.5, 0.0, 0.5):
                    K11_, K12, K22_ = _cov(K11, rho, K22)
                    want = _mehler(name, spec, K11_, K12, K22_)
                    r = expect2(name, spec, spec, K11_, K12, K22_)
                    with pts.at(K11=K11, rho=rho, K22=K22):
                        _check(r.value, want, cs)
                        assert abs(r.value - float(want)) <= 10 * r.error + 1e-15 * cs, (
                            r.value, r.error, want)


@pytest.mark.slow
def test_mehler_coefficients_converged():
    """Halving the panels changes the Hermite coefficients by < 1e-25 (hardest case: tanh'
    at K = 10, poles at distance π/(2√10) from the real z-axis)."""
    a = _hermite_coeffs("tanh", 1, 10.0, 50)
    b = _hermite_coeffs("tanh", 1, 10.0, 50, width=0.25)
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-25


@pytest.mark.slow
@pytest.mark.parametrize("name, spec, K11, rho, K22", [
    ("tanh", "phi", 1.0, 0.999, 1.0),
    ("softsign", "dphi", 0.1, -0.999, 10.0),
    ("elu", "phi", 10.0, 0.999, 10.0),
])
def test_near_degenerate_vs_mp_expect2(name, spec, K11, rho, K22):
    """|ρ| = 0.999, where the Mehler series is useless: iterated mpmath quadrature (slow)."""
    K11, K12, K22 = _cov(K11, rho, K22)
    want = mp_expect2(name, spec, spec, K11, K12, K22, dps=20)
    _check(expect2(name, spec, spec, K11, K12, K22).value, want, _cs(name, spec, K11, K22))


# ---------------------------------------------------------------------- properties
SMALL_ZOO = ["tanh", "relu", "gelu", "softsign", "hardtanh", "elu", "sigmoid", "sin"]


@given(name=st.sampled_from(SMALL_ZOO),
       pair=st.sampled_from([("phi", "phi"), ("dphi", "dphi"), ("phi", "dphi")]),
       K=st.floats(1e-2, 1e2))
def test_full_correlation_is_one_point(name, pair, K):
    """K12 = sqrt(K11 K22) with K11 = K22: h1 = h2, so E[f(h1) g(h2)] = E[f g] (one point)."""
    act = Activation.get(name)
    r2 = expect2(act, pair[0], pair[1], K, K, K)
    one = {("phi", "phi"): "phi2", ("dphi", "dphi"): "dphi2",
           ("phi", "dphi"): act.expr * act.derivative(1)}[pair]
    r1 = expect(act, one, K)
    scale = math.sqrt(expect(act, "phi2", K).value * expect(act, "dphi2", K).value)
    assert r2.value == pytest.approx(r1.value, rel=1e-12, abs=1e-15 * scale)


@given(name=st.sampled_from(["tanh", "relu", "gelu", "softsign"]), K=st.floats(1e-2, 10.0),
       c=st.floats(0.2, 5.0))
def test_full_correlation_unequal_variances(name, K, c):
    """K22 = c² K11, K12 = c K11: h2 = c h1, so E[φ(h1)φ(h2)] = E[φ(h)φ(c h)] (a 1-D
    expectation of a sympy integrand)."""
    act = Activation.get(name)
    r2 = expect2(act, "phi", "phi", K, c * K, c * c * K)
    g = act.expr * act.expr.subs(X, sp.Float(c, 17) * X)
    r1 = expect(act, g, K)
    assert r2.value == pytest.approx(r1.value, rel=1e-11, abs=1e-15)


ODD = ["tanh", "erf", "softsign", "hardtanh", "sin"]


@settings(max_examples=10)   # 5 two-point quadratures per example
@given(name=st.sampled_from(ODD), K11=st.floats(1e-2, 1e2), K22=st.floats(1e-2, 1e2),
       rho=st.floats(-0.999, 0.999))
def test_odd_symmetry(name, K11, K22, rho):
    """For odd φ: K12 -> -K12 flips E[φ(h1)φ(h2)] and leaves E[φ'(h1)φ'(h2)] unchanged."""
    K11, K12, K22 = _cov(K11, rho, K22)
    a = expect2(name, "phi", "phi", K11, K12, K22).value
    b = expect2(name, "phi", "phi", K11, -K12, K22).value
    cs = _cs(name, "phi", K11, K22)
    assert abs(a + b) <= 1e-12 * cs
    c = expect2(name, "dphi", "dphi", K11, K12, K22).value
    d = expect2(name, "dphi", "dphi", K11, -K12, K22).value
    assert abs(c - d) <= 1e-12 * _cs(name, "dphi", K11, K22)
    assert expect2(name, "phi", "phi", K11, 0.0, K22).value == pytest.approx(0.0, abs=1e-15 * cs)


@settings(max_examples=12)
@given(name=st.sampled_from(SMALL_ZOO), K11=st.floats(1e-2, 1e2), K22=st.floats(1e-2, 1e2),
       rho=st.floats(-0.999, 0.999))
def test_swap_and_factorization(name, K11, K22, rho):
    """E[f(h1) g(h2)] is symmetric under (K11, f) <-> (K22, g); at K12 = 0 it factorizes."""
    K11, K12, K22 = _cov(K11, rho, K22)
    a = expect2(name, "phi", "dphi", K11, K12, K22).value
    b = expect2(name, "dphi", "phi", K22, K12, K11).value
    scale = math.sqrt(expect(name, "phi2", K11).value * expect(name, "dphi2", K22).value)
    assert abs(a - b) <= 1e-11 * scale
    f0 = expect2(name, "phi", "dphi", K11, 0.0, K22).value
    assert f0 == pytest.approx(expect(name, "phi", K11).value * expect(name, "dphi", K22).value,
                               rel=1e-12, abs=1e-15 * scale)


def test_floor_sees_indicator_derivatives():
    """hardtanh' is the indicator of |h| < 1: at K11 = 20 none of the 48 Gauss–Hermite nodes of
    the Cauchy–Schwarz scale fell inside it, the absolute floor was 0 and E[φ'(h1) φ(h2)] — which
    is exactly 0 for every correlation (even times odd conditional mean) — raised
    ConvergenceError (found by hypothesis in test_swap_and_factorization)."""
    for rho in (0.0, 1.1920928955078125e-07, 1e-5, 0.3):
        r = expect2("hardtanh", "dphi", "phi", 20.0, rho * math.sqrt(20.0), 1.0)
        assert abs(r.value) <= max(r.error, 1e-16), (rho, r.value, r.error)
