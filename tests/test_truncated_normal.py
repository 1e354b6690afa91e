"""The bivariate normal CDF and the product moments of positively homogeneous φ
(critheory.expectations.truncated_normal), and the conditioned four-point route built on them
(``multipoint._four_conditioned`` / ``_three_conditioned``, used by ``four_point``).

Independent references:

* Φ₂: mpmath quadrature of ∫_{-∞}^h ϕ(x) Φ((k − r x)/√(1 − r²)) dx at 30 digits, with panels cut
  at the near-step x = k/r (graded by √(1 − r²)/|r|), and scipy.stats.multivariate_normal.cdf
  at abseps 1e-14 (Genz's algorithm);
* G = E[φ(X)φ(Y)]: scipy.integrate.quad over U of φ(μ₁ + s₁U) E[φ(Y) | U] (the inner mean a
  one-line formula, itself checked against quad), cut at the kinks;
* four-point entries: the nested Gauss–Legendre rule (``expect_product``, a different
  method on a different decomposition), Wick's theorem for linear φ (exact), and for kernels of
  rank 2 a 1-D angular integral of the piecewise trigonometric polynomial Π φ(x_i · ω) (z = X w,
  w ~ N(0, I₂): E = ∫ r⁵ e^{-r²/2} dr ∫ Π φ(x_i·ω) dθ/(2π), the radial factor 8).
"""
from __future__ import annotations

import itertools
import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal

import critheory.expectations.multipoint as mpt
from critheory.activation.symbolic import X as X_SYM
from critheory.expectations.multipoint import expect_product, four_point
from critheory.expectations.truncated_normal import bvn_cdf, mean_phi, pair_moment

ACTS = {"relu": (1.0, 0.0), "0.1*x + 0.9*relu(x)": (1.0, 0.1), "abs(x)": (1.0, -1.0),
        "2*x": (2.0, 2.0)}


def _phi(ap, am, x):
    return np.where(x > 0, ap * x, am * x)


def bvn_ref(h: float, k: float, r: float) -> float:
    mp.mp.dps = 30
    s = mp.sqrt(1 - mp.mpf(r) ** 2)
    pts = {-mp.inf, mp.mpf(h)}
    if h > 0:
        pts.add(mp.mpf(0))
    if r != 0 and k / r < h:
        c, w = mp.mpf(k) / r, s / abs(r)
        pts |= {c + w * j for j in (-8, -2, -0.5, 0, 0.5, 2, 8) if c + w * j < h}
    return float(mp.quad(lambda x: mp.npdf(x) * mp.ncdf((k - r * x) / s), sorted(pts)))


def pair_ref(ap, am, m1, m2, s1, s2, r) -> float:
    sig = math.sqrt(max(1 - r * r, 0.0))

    def g(u):
        return float(_phi(ap, am, m1 + s1 * u) * mean_phi(ap, am, m2 + s2 * r * u, s2 * sig)
                     * math.exp(-u * u / 2) / math.sqrt(2 * math.pi))

    pts = [-13.0, 13.0]
    if s1 > 0:
        pts.append(-m1 / s1)
    if s2 * r != 0:
        pts.append(-m2 / (s2 * r))
    pts = sorted(p for p in pts if -13.0 <= p <= 13.0)
    return sum(integrate.quad(g, a, b, epsabs=1e-15, epsrel=1e-14, limit=200)[0]
               for a, b in zip(pts[:-1], pts[1:]) if b > a)


# ---------------------------------------------------------------- Φ₂
def test_bvn_cdf_against_mpmath():
    rng = np.random.default_rng(1)
    pts = [(0.0, 0.0, 0.5), (0.0, -1.3, 0.7), (0.4, 0.0, -0.8), (0.0, 0.0, -0.999999),
           (-2.0, 1.5, 1 - 1e-12), (1.0, 1.0, -1 + 1e-9), (5.0, -5.0, 0.3), (-6.0, -7.0, 0.4)]
    pts += [tuple(rng.normal(0, 3, 2)) + (rng.uniform(-1, 1),) for _ in range(40)]
    pts += [tuple(rng.normal(0, 2, 2)) + (float(np.sign(rng.uniform(-1, 1))
                                                * (1 - 10 ** rng.uniform(-12, -2))),)
            for _ in range(20)]
    for h, k, r in pts:
        # absolute error: a few ulps of 1 (module docstring: 1.1e-16 measured)
        assert abs(float(bvn_cdf(h, k, r)) - bvn_ref(h, k, r)) <= 4e-16, (h, k, r)


def test_bvn_cdf_against_scipy_and_limits():
    rng = np.random.default_rng(3)
    h, k = rng.normal(0, 2, (2, 60))
    r = rng.uniform(-0.99, 0.99, 60)
    ours = bvn_cdf(h, k, r)
    for i in range(60):
        ref = multivariate_normal.cdf([h[i], k[i]], mean=[0, 0], cov=[[1, r[i]], [r[i], 1]],
                                      abseps=1e-14, releps=1e-14)
        assert abs(ours[i] - ref) <= 1e-14
    from scipy.special import ndtr
    x = np.array([-1.0, 0.3, 2.0])
    # |r| = 1 and infinite limits: the exact limits
    np.testing.assert_allclose(bvn_cdf(x, 0.5, 1.0), ndtr(np.minimum(x, 0.5)), rtol=0, atol=0)
    np.testing.assert_allclose(bvn_cdf(x, 0.5, -1.0), np.maximum(0, ndtr(x) - ndtr(-0.5)),
                               rtol=0, atol=1e-17)
    np.testing.assert_array_equal(bvn_cdf(x, np.inf, 0.3), ndtr(x))
    np.testing.assert_array_equal(bvn_cdf(-np.inf, x, 0.3), 0.0)
    # continuity into |r| = 1
    assert abs(float(bvn_cdf(0.2, 0.7, 1 - 1e-14)) - float(ndtr(0.2))) < 1e-12


# ---------------------------------------------------------------- G
def test_mean_phi():
    for ap, am in ACTS.values():
        for mu, s in ((0.3, 0.7), (-1.2, 0.4), (0.0, 2.0), (0.5, 0.0), (-0.5, 0.0)):
            ref = (float(_phi(ap, am, mu)) if s == 0 else integrate.quad(
                lambda u: float(_phi(ap, am, mu + s * u)) * math.exp(-u * u / 2)
                / math.sqrt(2 * math.pi), -14, 14, points=[-mu / s], epsabs=1e-15)[0])
            assert abs(float(mean_phi(ap, am, mu, s)) - ref) <= 1e-14 * (1 + abs(ref))


def test_pair_moment_against_quadrature():
    rng = np.random.default_rng(2)
    for ap, am in ACTS.values():
        cases = [(0.3, -0.2, 0.0, 1.0, 0.4), (0.3, -0.2, 0.5, 1.0, 1.0),
                 (0.3, -0.2, 0.5, 1.0, -1.0), (0.3, 0.15, 0.5, 0.25, 1.0),
                 (-0.7, 0.2, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 1.0, 0.0)]
        for _ in range(12):
            m1, m2 = rng.normal(0, 1.5, 2)
            s1, s2 = rng.uniform(0.05, 1.5, 2)
            cases.append((m1, m2, s1, s2, rng.uniform(-1, 1)))
        for m1, m2, s1, s2, r in cases:
            got = float(pair_moment(ap, am, m1, m2, s1, s2, r))
            ref = pair_ref(ap, am, m1, m2, s1, s2, r)
            scale = max(ap * ap, am * am) * (abs(m1) + s1) * (abs(m2) + s2)
            assert abs(got - ref) <= 1e-13 * scale + 1e-15, (ap, am, m1, m2, s1, s2, r)
    # regression: a correlation that rounds to just below 1 at h = k (the same input twice,
    # r = cov/(s s) = 1 − 2⁻⁵²) is |r| = 1 with Φ(h') = Φ(k') = ½, not a step read from the
    # sign of the rounding (which doubled a term: E[relu² relu²] 15 % off)
    for mu, sd in ((0.42, 1.35), (-0.3, 0.7)):
        exact = float(pair_moment(1.0, 0.0, mu, mu, sd, sd, 1.0))
        ref = pair_ref(1.0, 0.0, mu, mu, sd, sd, 1.0)
        assert abs(exact - ref) <= 1e-14
        assert abs(float(pair_moment(1.0, 0.0, mu, mu, sd, sd, 1 - 2 ** -52)) - exact) <= 1e-14
    # symmetric in its two coordinates, vectorized
    a = pair_moment(1.0, 0.1, np.array([0.3, -1.0]), 0.5, 0.7, np.array([0.2, 1.1]), -0.4)
    b = pair_moment(1.0, 0.1, 0.5, np.array([0.3, -1.0]), np.array([0.2, 1.1]), 0.7, -0.4)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)


# ---------------------------------------------------------------- the conditioned route
def _random_kernel(rng, k, rank=None):
    X = rng.standard_normal((k, rank or k + 2))
    return X @ X.T


def _check(act, fns, Ks, v, e, rtol_ref):
    r = expect_product(act, fns, Ks, rtol=rtol_ref)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(e))
    assert np.all(np.abs(v - r.value) <= e + r.error), (v, r.value, e, r.error)
    return float(np.max(np.abs(v - r.value) / np.maximum(np.abs(r.value), 1e-300)))


@pytest.mark.parametrize("act,rtol_ref,n", [("relu", 1e-11, 6), ("0.1*x + 0.9*relu(x)", 1e-8, 2),
                                            ("abs(x)", 1e-7, 2)])
def test_four_conditioned_against_nested(act, rtol_ref, n):
    """Every entry within the sum of both error estimates of the nested rule's; the
    conditioned route at rtol 1e-10 reports errors that bound its distance to a nested
    rule at 1e-11 (relu)."""
    rng = np.random.default_rng(5)
    ap, am = ACTS[act]
    Ks = np.stack([_random_kernel(rng, 4) for _ in range(n)])
    v, e = mpt._four_conditioned(ap, am, Ks, 1e-10)
    assert np.all(e <= 1e-10 * np.abs(v) + 1e-13 * np.abs(v).max())
    _check(act, ["phi"] * 4, Ks, v, e, rtol_ref)
    K3 = np.stack([_random_kernel(rng, 3) for _ in range(n)])
    v, e = mpt._three_conditioned(ap, am, K3, 1e-10)
    _check(act, ["phi2", "phi", "phi"], K3, v, e, rtol_ref)


def test_four_conditioned_linear_is_wick():
    rng = np.random.default_rng(7)
    Ks = np.stack([_random_kernel(rng, 4) for _ in range(5)]
                  + [_random_kernel(rng, 4, 2), _random_kernel(rng, 4, 3)])
    v, e = mpt._four_conditioned(2.0, 2.0, Ks, 1e-12)
    w = 16 * (Ks[:, 0, 1] * Ks[:, 2, 3] + Ks[:, 0, 2] * Ks[:, 1, 3] + Ks[:, 0, 3] * Ks[:, 1, 2])
    assert np.all(np.abs(v - w) <= e)
    v, e = mpt._three_conditioned(2.0, 2.0, Ks[:, :3, :3], 1e-12)
    w = 16 * (Ks[:, 0, 0] * Ks[:, 1, 2] + 2 * Ks[:, 0, 1] * Ks[:, 0, 2])
    assert np.all(np.abs(v - w) <= e)


def _rank2_reference(ap, am, X):
    """E[Π φ(x_i · w)], w ~ N(0, I₂): 8 ∫ Π φ(x_i · ω(θ)) dθ/(2π) (radial factor ∫ r⁵ e^{-r²/2}
    = 8), quad cut at the kinks θ where x_i · ω = 0."""
    ang = np.arctan2(X[:, 1], X[:, 0])
    cuts = np.sort(np.concatenate([(ang + 0.5 * np.pi) % (2 * np.pi),
                                   (ang - 0.5 * np.pi) % (2 * np.pi), [0.0, 2 * np.pi]]))

    def f(t):
        w = np.array([math.cos(t), math.sin(t)])
        return float(np.prod(_phi(ap, am, X @ w)))

    tot = sum(integrate.quad(f, a, b, epsabs=1e-16, epsrel=1e-14)[0]
              for a, b in zip(cuts[:-1], cuts[1:]) if b > a)
    return 8 * tot / (2 * np.pi)


def test_four_conditioned_rank_two():
    """Inputs in two dimensions (e.g. 1-D data with a bias): Σ = 0, G = φ(μ_c)φ(μ_d)."""
    rng = np.random.default_rng(11)
    for act, (ap, am) in ACTS.items():
        # dyadic inputs: K = X Xᵀ exactly of rank 2 (a rounded K has conditional variances
        # ~1e-13 K, which move E by as much relative: the reference would be another kernel)
        Xs = [rng.integers(1, 9, (4, 2)) * rng.choice([-1, 1], (4, 2)) / 4.0 for _ in range(4)]
        Ks = np.stack([X @ X.T for X in Xs])
        v, e = mpt._four_conditioned(ap, am, Ks, 1e-10)
        for i, X in enumerate(Xs):
            ref = _rank2_reference(ap, am, X)
            assert abs(v[i] - ref) <= e[i] + 1e-14 * np.sqrt(np.prod(np.diag(Ks[i]))), act


def test_four_conditioned_rank_three_and_collinear():
    """Rank 3: a repeated input (four_point's φ²φφ entries by another route), a scaled one,
    and z_4 = z_1 + z_2 (continuity from K + εI, the change O(ε))."""
    rng = np.random.default_rng(13)
    for act, (ap, am) in ACTS.items():
        K3 = _random_kernel(rng, 3)
        for c in (1.0, 2.5, -0.5):
            M = np.vstack([np.eye(3), [c, 0, 0]])
            K = M @ K3 @ M.T
            v, e = mpt._four_conditioned(ap, am, K[None], 1e-10)
            if c > 0:     # φ(c z) = c φ(z): E[φ_1² φ_2 φ_3] c
                r3 = expect_product(act, ["phi2", "phi", "phi"], K3, rtol=1e-10)
                assert abs(v[0] - c * r3.value) <= e[0] + c * r3.error, (act, c)
            else:         # φ(−z/2)φ(z) = −(a₊ a₋/2) z² for homogeneous φ
                r3 = expect_product(act, [X_SYM ** 2, "phi", "phi"], K3, rtol=1e-10)
                ref = -ap * am / 2 * r3.value
                assert abs(v[0] - ref) <= e[0] + abs(ap * am / 2) * r3.error, (act, c)
        M = np.vstack([np.eye(3), [1.0, 1.0, 0.0]])
        K = M @ K3 @ M.T
        v, e = mpt._four_conditioned(ap, am, np.stack([K, K + 1e-9 * np.eye(4)]), 1e-10)
        assert np.all(np.isfinite(v)) and abs(v[0] - v[1]) <= 1e-7 * abs(v[0]) + e.sum()


def test_four_conditioned_nearly_collinear():
    """Two inputs at correlation 1 − 1e-9, and a kernel at correlations 0.85–0.95: agree
    with the nested rule within both errors."""
    rng = np.random.default_rng(17)
    K = _random_kernel(rng, 4)
    d = np.sqrt(np.diag(K))
    C = K / np.outer(d, d)
    C[0, 1] = C[1, 0] = 1 - 1e-9
    C[0, 2:] = C[1, 2:] = C[1, 2:]
    C[2:, 0] = C[2:, 1] = C[1, 2:]
    KN = C * np.outer(d, d)
    KC = 0.9 * np.ones((4, 4)) + 0.1 * np.eye(4)
    KC[0, 3] = KC[3, 0] = 0.85
    KC[1, 2] = KC[2, 1] = 0.95
    Ks = np.stack([KN, KC])
    v, e = mpt._four_conditioned(1.0, 0.0, Ks, 1e-9)
    _check("relu", ["phi"] * 4, Ks, v, e, 1e-10)


def test_four_point_takes_the_homogeneous_route(monkeypatch):
    """four_point of a positively homogeneous φ never calls the quadrature routes on
    kernels with distinct inputs, and agrees with them within the errors."""
    rng = np.random.default_rng(19)
    X = rng.standard_normal((5, 8))
    K = X @ X.T / 8
    T_old = {}
    for act in ("relu", "0.1*x + 0.9*relu(x)"):
        def boom(*a, **k):
            raise AssertionError("quadrature route called")
        with monkeypatch.context() as mc:
            mc.setattr(mpt, "expect_product", boom)
            mc.setattr(mpt, "expect2", boom)
            T, E = four_point(act, K, rtol=1e-9)
        T_old[act] = (T, E)
    # the whole tensor against the general routes (the old dispatch)
    T, E = T_old["relu"]
    Tn, En = mpt._four_point(mpt.Activation.get("relu"), K, 1e-10, conditioned=False)
    assert np.all(np.abs(T - Tn) <= E + En)
    assert np.all(np.isfinite(T_old["0.1*x + 0.9*relu(x)"][0]))


# ---------------------------------------------------------------- erf
def test_erf_pair_moment_against_quadrature():
    """G for c·erf(a x) against a 1-D quad over U of φ(μ₁ + s₁U) E[φ(Y) | U], the inner mean
    E[erf(a(m + sV))] = erf(a m/√(1 + 2a²s²)) (the same sign trick in 1-D, checked by quad)."""
    from scipy.special import erf

    from critheory.expectations.truncated_normal import erf_pair_moment

    m, s, a = 0.4, 0.8, 1.7
    inner = integrate.quad(lambda v: erf(a * (m + s * v)) * math.exp(-v * v / 2)
                           / math.sqrt(2 * math.pi), -14, 14, epsabs=1e-15)[0]
    assert abs(inner - erf(a * m / math.sqrt(1 + 2 * a * a * s * s))) < 1e-14
    rng = np.random.default_rng(23)
    cases = [(0.0, 0.0, 1.0, 1.0, 0.5), (0.3, -0.4, 0.0, 0.7, 0.0), (0.3, -0.4, 0.6, 0.7, 1.0),
             (0.3, -0.4, 0.6, 0.7, -1.0), (1.5, 2.0, 0.0, 0.0, 0.0)]
    cases += [tuple(rng.normal(0, 1, 2)) + tuple(rng.uniform(0, 1.5, 2)) + (rng.uniform(-1, 1),)
              for _ in range(15)]
    for c, a in ((1.0, 1.0), (2.0, 3.0), (0.5, 0.3)):
        for m1, m2, s1, s2, r in cases:
            sig = math.sqrt(max(1 - r * r, 0.0))

            def f(u):
                y = a * (m2 + s2 * r * u)
                inner = erf(y / math.sqrt(1 + 2 * (a * s2 * sig) ** 2))
                return (c * erf(a * (m1 + s1 * u)) * c * inner
                        * math.exp(-u * u / 2) / math.sqrt(2 * math.pi))

            ref = integrate.quad(f, -14, 14, epsabs=1e-15, epsrel=1e-14, limit=200)[0]
            got = float(erf_pair_moment(c, a, m1, m2, s1, s2, r))
            assert abs(got - ref) <= 4e-15 * c * c, (c, a, m1, m2, s1, s2, r)


@pytest.mark.parametrize("act,c,a", [("erf", 1.0, 1.0), ("2*erf(3*x)", 2.0, 3.0)])
def test_erf_conditioned_against_sign_products(act, c, a):
    """c·erf(a z): E[Π erf(a z_i)^p_i] through signs (orthant probabilities of 2a²K + I by
    Plackett's identity, tests/test_multipoint.py; ~1e-14), every entry within the
    conditioned route's error estimate."""
    from test_multipoint import erf_reference

    rng = np.random.default_rng(29)
    fam = mpt._family(mpt.Activation.get(act))
    Ks = np.stack([(lambda X: X @ X.T / 6)(rng.standard_normal((4, 6))) for _ in range(3)])
    v, e = mpt._four_cond(fam, Ks, 1e-10)
    v3, e3 = mpt._three_cond(fam, Ks[:, :3, :3], 1e-10)
    for i, K in enumerate(Ks):
        ref = c ** 4 * erf_reference(a * a * K, [1, 1, 1, 1])
        assert abs(v[i] - ref) <= e[i] + 2e-14 * c ** 4, (act, i)
        ref = c ** 4 * erf_reference(a * a * K[:3, :3], [2, 1, 1])
        assert abs(v3[i] - ref) <= e3[i] + 2e-14 * c ** 4, (act, i)


def test_erf_four_point_route(monkeypatch):
    """four_point("erf") goes by the conditioned route (the general routes are not called);
    one entry against the sign-product reference of tests/test_multipoint.py."""
    from test_multipoint import erf_reference

    rng = np.random.default_rng(31)
    X = rng.standard_normal((5, 8))
    K = X @ X.T / 8

    def boom(*a, **k):
        raise AssertionError("general route called")

    with monkeypatch.context() as mc:
        mc.setattr(mpt, "expect_product", boom)
        T, E = four_point("erf", K, rtol=1e-10)
    idx = (0, 1, 2, 3)
    sub = K[np.ix_(idx, idx)]
    ref = erf_reference(sub, [1, 1, 1, 1])
    assert abs(T[idx] - ref) <= E[idx] + 2e-14


def test_near_zero_entries_converge_on_the_scale_floor():
    """Regression: ReLU inputs that are almost never all positive (a nearly rank-3 kernel)
    give E ~ 1e-20 of the kernel's scale; the rounding floor is measured on the scale of G's
    terms (a²(|μ_c| + s_c)(|μ_d| + s_d)), not on |G| itself, so these converge instead of
    exhausting the ladder (the nested rule raises ConvergenceError on them)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 3))
    K = X @ X.T + 10 ** rng.uniform(-8, -3) * np.eye(4)
    v, e = mpt._four_conditioned(1.0, 0.0, K[None], 1e-9)
    scale = np.sqrt(np.prod(np.diag(K)))
    assert np.isfinite(v[0]) and 0 < e[0] <= 1e-13 * scale and v[0] >= -e[0]
