"""The nearly-Gaussian distribution and Bayesian inference at finite width
(critheory.theory.bayes), each number against an independent route:

* the density against the Edgeworth operator (1 + κ·∂⁴/24) applied to N(z; G) symbolically
  (sympy), and its moments by quadrature;
* the conditional moments against brute-force integration of that density (scipy quad, a fine
  trapezoid grid): exactly (the exact conditional moments are linear over linear in κ) and, for
  the strict 1/n expansion with K1, a residual that falls like 1/n²;
* the sampler's covariance and fourth moments, the posterior by importance weighting of the
  scale mixture, and the representation shift, within Monte Carlo errors (normal z-scores: the
  samples are 10⁵–10⁶ independent draws, and the t law with that many degrees of freedom is
  the normal one to 10⁻⁵), Bonferroni over the components;
* the GP limit against the textbook GP posterior (cho_solve), permutation invariance, and every
  bad input as a one-line CritheoryError.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats
from scipy.linalg import cho_factor, cho_solve

from critheory.errors import CritheoryError
from critheory.theory.bayes import NearlyGaussian, posterior, representation_shift
from critheory.theory.bayes.hermite import contract4, hermite
from critheory.theory.bayes.mixture import metric_covariance, nonpsd_bound

ALPHA = 1e-3          # family-wise false-alarm rate of every Monte Carlo verdict here


def stats_of(m: int, seed: int = 0, *, v: float = 1.0, k1: float = 1.0, h: float = 0.5,
             skew: bool = False):
    """K, K1, V of a plausible network on m inputs: K well conditioned, V a valid covariance of
    the metric (a Wishart part plus a rank-one part h·H⊗H, the shape of a real network's
    vertex). ``skew``: an H not aligned with K (a Wishart V alone barely moves the posterior
    mean, as for deep linear networks)."""
    r = np.random.default_rng(seed)
    X = r.standard_normal((m, 3))
    K = 0.5 * np.eye(m) + 0.3 + X @ X.T / 3
    H = np.tanh(K) ** 2 + np.diag(np.linspace(0.5, -0.3, m)) if skew else K * K
    V = v * (np.einsum("ac,bd->abcd", K, K) + np.einsum("ad,bc->abcd", K, K)
             + h * np.einsum("ab,cd->abcd", H, H))
    K1 = k1 * (0.5 * K - 0.2 * H)
    return K, K1, V


def crit(k: int) -> float:
    """Two-sided normal critical value with Bonferroni over k comparisons."""
    return float(stats.norm.isf(ALPHA / (2 * k)))


def gauss(x, S):
    return stats.multivariate_normal(mean=np.zeros(len(S)), cov=S).pdf(x)


# ----------------------------------------------------------------------- Hermite and density
def test_hermite_tensors_are_derivatives_of_the_gaussian():
    G = np.array([[1.3, 0.4], [0.4, 0.8]])
    x1, x2 = sp.symbols("x1 x2")
    Gs = sp.Matrix([[sp.Rational(13, 10), sp.Rational(2, 5)],
                    [sp.Rational(2, 5), sp.Rational(4, 5)]])
    X = sp.Matrix([x1, x2])
    N = sp.exp(-(X.T * Gs.inv() * X)[0] / 2)
    pt = {x1: 0.7, x2: -1.1}
    y = np.linalg.solve(G, [0.7, -1.1])
    P = np.linalg.inv(G)
    n0 = float(N.subs(pt))
    for order in range(1, 5):
        He = hermite(y, P, order)
        for idx in np.ndindex(*He.shape):
            d = sp.diff(N, *[(x1, x2)[i] for i in idx])
            assert He[idx] == pytest.approx((-1) ** order * float(d.subs(pt)) / n0, rel=1e-12,
                                            abs=1e-12)


def test_pdf_is_the_edgeworth_operator_on_the_gaussian():
    K, K1, V = stats_of(2, seed=3)
    ng = NearlyGaussian(K, K1, V, width=7)
    G, kappa = ng.metric, ng.cumulant4()
    x = sp.symbols("x0 x1")
    Gs = sp.Matrix(2, 2, lambda i, j: sp.nsimplify(G[i, j], rational=True))
    X = sp.Matrix(x)
    N = sp.exp(-(X.T * Gs.inv() * X)[0] / 2) / (2 * sp.pi * sp.sqrt(Gs.det()))
    expr = N
    for idx in np.ndindex(2, 2, 2, 2):
        expr += kappa[idx] / 24 * sp.diff(N, *[x[i] for i in idx])
    for pt in ([0.0, 0.0], [0.7, -1.1], [2.5, 1.9], [-3.0, 0.4]):
        ref = float(expr.subs({x[0]: sp.Float(pt[0], 30), x[1]: sp.Float(pt[1], 30)}).evalf(30))
        assert ng.pdf(np.array(pt)) == pytest.approx(ref, rel=1e-9)
    assert contract4(kappa, np.linalg.solve(G, [0.7, -1.1]), np.linalg.inv(G)) == \
        pytest.approx(np.einsum("ijkl,ijkl", kappa, hermite(np.linalg.solve(G, [0.7, -1.1]),
                                                              np.linalg.inv(G), 4)), rel=1e-12)


def test_density_moments_by_quadrature():
    K, K1, V = stats_of(2, seed=1)
    ng = NearlyGaussian(K, K1, V, width=10)
    G = ng.metric
    L = 12 * np.sqrt(np.max(np.diag(G)))
    t = np.linspace(-L, L, 481)
    Z = np.stack(np.meshgrid(t, t, indexing="ij"), axis=-1)
    w = ng.pdf(Z) * (t[1] - t[0]) ** 2                     # trapezoid: the ends are ~0
    assert w.sum() == pytest.approx(1.0, abs=1e-10)
    mom = ng.moments()
    second = np.einsum("xy,xya,xyb->ab", w, Z, Z)
    np.testing.assert_allclose(second, mom.second, atol=1e-9)
    fourth = np.einsum("xy,xya,xyb,xyc,xyd->abcd", w, Z, Z, Z, Z)
    np.testing.assert_allclose(fourth, mom.fourth, atol=1e-8)
    # the fourth cumulant is what the κ term adds: not the Gaussian's fourth moment
    assert np.max(np.abs(mom.fourth - (mom.fourth - ng.cumulant4()))) > 0.1


def test_logpdf_and_its_refusal_where_the_expansion_is_negative():
    ng = NearlyGaussian(np.eye(1), np.zeros((1, 1)), np.full((1, 1, 1, 1), 1.0), 10)
    z = np.array([[0.3], [1.2], [-2.0]])
    np.testing.assert_allclose(ng.logpdf(z), np.log(ng.pdf(z)), rtol=1e-13)
    big = NearlyGaussian(np.eye(1), np.zeros((1, 1)), np.full((1, 1, 1, 1), 200.0), 100)
    assert big.pdf(np.array([np.sqrt(3.0)])) < 0        # 1 + κ(9 − 18 + 3)/24, κ = 6
    with pytest.raises(CritheoryError, match="density is <= 0 at 1 point"):
        big.logpdf(np.array([[np.sqrt(3.0)], [0.0]]))


# ----------------------------------------------------------------------- conditional moments
def _cond_by_quad(ng, a_idx, b_idx, a):
    """(p(a), E[b|a], E[b²|a]) of the first-order density, b one input, by quad over b."""
    m = ng.m

    def f(b, k):
        x = np.zeros(m)
        x[a_idx] = a
        x[b_idx] = b
        return ng.pdf(x) * b ** k

    L = 15 * np.sqrt(ng.metric[b_idx, b_idx])
    pa, p1, p2 = (integrate.quad(f, -L, L, args=(k,), epsabs=1e-15, epsrel=1e-13,
                                 limit=400)[0] for k in range(3))
    return pa, p1 / pa, p2 / pa


@pytest.mark.parametrize("m, train, test, targets, width", [
    (2, [0], [1], [2.6], 15),             # one train, one test
    (2, [1], [0], [-2.2], 30),
    (3, [0, 2], [1], [1.1, -0.6], 20),    # two train, one test
    (3, [2, 1], [0], [2.0, 0.5], 40),
])
def test_conditional_moments_exact_ratio(m, train, test, targets, width):
    """With K1 = 0 (G = K) the exact conditional moments of the density are
    mean = M a + Δ/(1 + h4), var = Σ + (C/2)/(1 + h4) − Δ²/(1 + h4)², where Δ = mean_nlo −
    mean_gp, C/2 = cov_nlo − cov_gp and 1 + h4 = p(a)/N(a; K_AA): the first order is exact up
    to this O(κ²) ratio, checked to quadrature precision."""
    K, _, V = stats_of(m, seed=m)
    ng = NearlyGaussian(K, np.zeros((m, m)), V, width)
    post = posterior(ng, train, test, targets, 0.0)
    pa, mean, second = _cond_by_quad(ng, train, test[0], np.array(targets))
    r = pa / gauss(np.array(targets), K[np.ix_(train, train)])   # 1 + h4
    delta = post.mean_nlo[0] - post.mean_gp[0]
    half_c = post.cov_nlo[0, 0] - post.cov_gp[0, 0]
    assert abs(delta) > 1e-3 and abs(r - 1) > 1e-3            # a visible correction
    assert mean == pytest.approx(post.mean_gp[0] + delta / r, abs=1e-11)
    var = second - mean ** 2
    assert var == pytest.approx(post.cov_gp[0, 0] + half_c / r - delta ** 2 / r ** 2, abs=1e-11)
    # and the first-order answer is off by exactly the neglected O(κ²)
    assert abs(mean - post.mean_nlo[0]) == pytest.approx(abs(delta * (1 - 1 / r)), abs=1e-11)


def test_conditional_moments_two_test_inputs_on_a_grid():
    m, train, test, targets = 4, [0, 3], [2, 1], np.array([1.3, -0.4])
    K, _, V = stats_of(m, seed=7)
    ng = NearlyGaussian(K, np.zeros((m, m)), V, 25)
    post = posterior(ng, train, test, targets, 0.0)
    L = 11 * np.sqrt(np.max(np.diag(K)))
    t = np.linspace(-L, L, 561)
    B = np.stack(np.meshgrid(t, t, indexing="ij"), axis=-1).reshape(-1, 2)
    x = np.zeros((len(B), m))
    x[:, train] = targets
    x[:, test] = B
    w = ng.pdf(x)
    pa = w.sum() * (t[1] - t[0]) ** 2
    mean = w @ B / w.sum()
    second = np.einsum("s,sa,sb->ab", w, B, B) / w.sum()
    cov = second - np.outer(mean, mean)
    r = pa / gauss(targets, K[np.ix_(train, train)])
    delta = post.mean_nlo - post.mean_gp
    half_c = post.cov_nlo - post.cov_gp
    assert np.max(np.abs(half_c)) > 1e-3
    np.testing.assert_allclose(mean, post.mean_gp + delta / r, atol=1e-10)
    np.testing.assert_allclose(cov, post.cov_gp + half_c / r - np.outer(delta, delta) / r ** 2,
                               atol=1e-10)


def test_strict_expansion_residual_falls_like_one_over_n_squared():
    """With K1 ≠ 0 the NLO linearizes G = K + K1/n as well: against the exact conditional
    moments of the density the residual must fall by 4 per doubling of n (1/n²) while the NLO
    correction itself falls by 2 (1/n)."""
    m, train, test, targets = 3, [0, 1], [2], np.array([1.2, -0.8])
    K, K1, V = stats_of(m, seed=11, k1=3.0)
    res_mean, res_var, shift = [], [], []
    widths = [100, 200, 400, 800]
    for n in widths:
        ng = NearlyGaussian(K, K1, V, n)
        post = posterior(ng, train, test, targets, 0.0)
        _, mean, second = _cond_by_quad(ng, train, test[0], targets)
        res_mean.append(mean - post.mean_nlo[0])
        res_var.append(second - mean ** 2 - post.cov_nlo[0, 0])
        shift.append(abs(post.mean_nlo[0] - post.mean_gp[0]))
    for res in (res_mean, res_var):
        ratios = np.abs(res[:-1]) / np.abs(res[1:])
        assert np.all((ratios > 3.5) & (ratios < 4.5)), ratios
    ratios = np.array(shift[:-1]) / np.array(shift[1:])
    assert np.all((ratios > 1.8) & (ratios < 2.2)), ratios
    assert abs(res_mean[0]) < 0.1 * shift[0]


def test_noise_adds_to_the_training_block_only():
    """y = z_A + ε: the density of (y, z_B) by quadrature over ε equals the first-order density
    with σ² added to G_AA and κ unchanged; the posterior with noise is that density's."""
    K, K1, V = stats_of(2, seed=5)
    s2 = 0.3
    ng = NearlyGaussian(K, K1, V, 12)
    noisy = NearlyGaussian(K + np.diag([s2, 0.0]), K1, V, 12)
    for a, b in ((0.4, -0.3), (1.9, 1.2), (-2.5, 0.8)):
        conv = integrate.quad(lambda e: ng.pdf(np.array([a - e, b])) * gauss([e], [[s2]]),
                              -12, 12, epsabs=1e-14, epsrel=1e-12)[0]
        assert noisy.pdf(np.array([a, b])) == pytest.approx(conv, rel=1e-9)
    p1 = posterior(ng, [0], [1], [1.5], s2)
    p2 = posterior(noisy, [0], [1], [1.5], 0.0)
    for f in ("mean_gp", "cov_gp", "mean_nlo", "cov_nlo"):
        np.testing.assert_allclose(getattr(p1, f), getattr(p2, f), rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------- GP limit, symmetry
@pytest.mark.parametrize("noise", [0.0, 0.05, 2.0])
def test_gp_limit_is_the_textbook_gp_posterior(noise):
    m, A, B = 6, [4, 0, 2], [1, 5, 3]
    K, _, _ = stats_of(m, seed=2)
    y = np.array([0.3, -1.2, 0.8])
    ng = NearlyGaussian(K, np.zeros((m, m)), np.zeros((m,) * 4), 50)
    post = posterior(ng, A, B, y, noise)
    c = cho_factor(K[np.ix_(A, A)] + noise * np.eye(3))
    mean = K[np.ix_(B, A)] @ cho_solve(c, y)
    cov = K[np.ix_(B, B)] - K[np.ix_(B, A)] @ cho_solve(c, K[np.ix_(A, B)])
    for mu, S in ((post.mean_gp, post.cov_gp), (post.mean_nlo, post.cov_nlo)):
        np.testing.assert_allclose(mu, mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(S, cov, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(representation_shift(ng, A, y, noise).shift, 0.0)


def test_large_noise_leaves_the_prior():
    K, K1, V = stats_of(3, seed=4)
    ng = NearlyGaussian(K, K1, V, 100)
    post = posterior(ng, [0], [1, 2], [1.0], 1e9)
    np.testing.assert_allclose(post.mean_nlo, 0.0, atol=1e-8)
    np.testing.assert_allclose(post.cov_nlo, ng.metric[1:, 1:], atol=1e-8)


def test_test_input_equal_to_a_training_input_at_zero_noise():
    """A test input that is a copy of the training input (equal rows of K, K1, V) is pinned to
    the target: mean y, covariance 0, at every order."""
    K, K1, V = stats_of(2, seed=9)
    idx = [0, 1, 0]                                        # input 2 is a copy of input 0
    ng = NearlyGaussian(K[np.ix_(idx, idx)], K1[np.ix_(idx, idx)],
                        V[np.ix_(idx, idx, idx, idx)], 30)
    post = posterior(ng, [0], [2, 1], [1.4], 0.0)
    assert post.mean_nlo[0] == pytest.approx(1.4, abs=1e-12)
    np.testing.assert_allclose(post.cov_nlo[0], 0.0, atol=1e-12)
    # training on both copies with the same target is the same as training on one
    both = posterior(ng, [0, 2], [1], [1.4, 1.4], 0.0)
    one = posterior(ng, [0], [1], [1.4], 0.0)
    assert both.train == (0,)
    np.testing.assert_allclose(both.mean_nlo, one.mean_nlo, rtol=1e-13)


@pytest.mark.parametrize("noise", [0.0, 0.4])
def test_one_train_one_test_scalar_formulas(noise):
    """The NLO for one training and one test input, written out by hand (no tensors):
    M = K10/K̃, He3 = y³/K̃³ − 3y/K̃², He2 = y²/K̃² − 1/K̃."""
    K, K1, V = stats_of(2, seed=8)
    n, y = 60, 1.7
    ng = NearlyGaussian(K, K1, V, n)
    k = ng.cumulant4()
    Kt = K[0, 0] + noise
    M = K[1, 0] / Kt
    he3 = y ** 3 / Kt ** 3 - 3 * y / Kt ** 2
    he2 = y ** 2 / Kt ** 2 - 1 / Kt
    mean = (M * y + (K1[1, 0] - M * K1[0, 0]) / Kt * y / n
            + (k[1, 0, 0, 0] - M * k[0, 0, 0, 0]) * he3 / 6)
    var = (K[1, 1] - M * K[0, 1] + (K1[1, 1] - 2 * M * K1[1, 0] + M ** 2 * K1[0, 0]) / n
           + 0.5 * (k[1, 1, 0, 0] - 2 * M * k[1, 0, 0, 0] + M ** 2 * k[0, 0, 0, 0]) * he2)
    post = posterior(ng, [0], [1], [y], noise)
    assert post.mean_gp[0] == pytest.approx(M * y, rel=1e-13)
    assert post.mean_nlo[0] == pytest.approx(mean, rel=1e-13)
    assert post.cov_nlo[0, 0] == pytest.approx(var, rel=1e-13)
    shift = representation_shift(ng, [0], [y], noise).shift
    np.testing.assert_allclose(shift, V[:, :, 0, 0] * (y ** 2 / Kt ** 2 - 1 / Kt) / (2 * n),
                               rtol=1e-13)


def test_permutation_invariance():
    m = 5
    K, K1, V = stats_of(m, seed=6)
    ng = NearlyGaussian(K, K1, V, 40)
    y = np.array([0.9, -1.3])
    ref = posterior(ng, [1, 3], [0, 4, 2], y, 0.1)
    perm = np.array([3, 0, 4, 1, 2])                       # new input i is old perm[i]
    inv = np.argsort(perm)
    png = NearlyGaussian(K[np.ix_(perm, perm)], K1[np.ix_(perm, perm)],
                         V[np.ix_(perm, perm, perm, perm)], 40)
    # train order swapped as well
    got = posterior(png, [inv[3], inv[1]], [inv[0], inv[4], inv[2]], y[::-1], 0.1)
    for f in ("mean_gp", "cov_gp", "mean_nlo", "cov_nlo"):
        np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=1e-11, atol=1e-14)
    rs, rp = representation_shift(ng, [1, 3], y, 0.1), representation_shift(png, [inv[3], inv[1]],
                                                                            y[::-1], 0.1)
    np.testing.assert_allclose(rp.shift, rs.shift[np.ix_(perm, perm)], rtol=1e-11, atol=1e-15)


# ----------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("m, width, sensitive", [(1, 75, True), (3, 200, False)])
def test_sampler_moments_within_monte_carlo_errors(m, width, sensitive):
    """Every second and fourth moment within its MC error (Bonferroni); with one input the
    excess kurtosis 3V/n = 0.1 G² is large enough that the Gaussian moments are rejected (by
    ~10σ) too (at three inputs the PSD bound admits only widths where κ is near the MC noise;
    the metric draws themselves are checked more sharply below)."""
    K, K1, V = stats_of(m, seed=0)
    ng = NearlyGaussian(K, K1, V, width)
    N = 1_000_000
    z = ng.sample(N, np.random.default_rng(20261207))
    mom = ng.moments()
    zs, zg = [], []
    for a, b in zip(*np.triu_indices(m)):
        prod = z[:, a] * z[:, b]
        zs.append((prod.mean() - mom.second[a, b]) / (prod.std(ddof=1) / np.sqrt(N)))
    gauss4 = mom.fourth - ng.cumulant4()
    for idx in {tuple(sorted(i)) for i in np.ndindex(m, m, m, m)}:
        prod = np.prod(z[:, list(idx)], axis=1)
        se = prod.std(ddof=1) / np.sqrt(N)
        zs.append((prod.mean() - mom.fourth[idx]) / se)
        zg.append((prod.mean() - gauss4[idx]) / se)
    zs = np.array(zs)
    assert np.max(np.abs(zs)) < crit(len(zs)), zs
    if sensitive:                      # the test can see κ: the Gaussian moments are rejected
        assert np.max(np.abs(zg)) > crit(len(zg)), zg


def test_metric_draws_have_mean_g_and_covariance_v_over_n():
    """The scale mixture's metric: E[Ĝ_p] = G_p and Cov(Ĝ_p, Ĝ_q) = V_pq/n over the pairs, each
    within its MC error (the covariance's error from the spread of the centred products)."""
    m, n, N = 3, 200, 200_000
    K, K1, V = stats_of(m, seed=0)
    ng = NearlyGaussian(K, K1, V, n)
    Gh = ng.sample_metric(N, np.random.default_rng(4))
    ia, ib = np.triu_indices(m)
    X = Gh[:, ia, ib]
    d = X - ng.metric[ia, ib]                       # centred at the exact mean
    zs = list(d.mean(0) / (d.std(0, ddof=1) / np.sqrt(N)))
    zv = []
    for p in range(len(ia)):
        for q in range(p, len(ia)):
            prod = d[:, p] * d[:, q]
            se = prod.std(ddof=1) / np.sqrt(N)
            zs.append((prod.mean() - V[ia[p], ib[p], ia[q], ib[q]] / n) / se)
            zv.append(prod.mean() / se)
    zs = np.array(zs)
    assert np.max(np.abs(zs)) < crit(len(zs)), zs
    assert np.min(np.abs(zv)) > 0 and np.median(np.abs(zv)) > 50     # sharp: V/n at < 2 %


def test_sampler_is_reproducible_and_checks_its_rng():
    K, K1, V = stats_of(2, seed=0)
    ng = NearlyGaussian(K, K1, V, 200)
    np.testing.assert_array_equal(ng.sample(100, np.random.default_rng(5)),
                                  ng.sample(100, np.random.default_rng(5)))
    with pytest.raises(CritheoryError, match="numpy.random.Generator"):
        ng.sample(10, 5)


def _rb_posterior(ng, A, B, y, s2, N, seed):
    """Importance weighting of scale-mixture draws, Rao–Blackwellized: given Ĝ the posterior is
    Gaussian, so each draw contributes its exact conditional mean and second moment, weighted
    by its likelihood N(y; 0, Ĝ_AA + σ²)."""
    Gh = ng.sample_metric(N, np.random.default_rng(seed))
    GA = Gh[:, A][:, :, A] + s2 * np.eye(len(A))
    GBA = Gh[:, B][:, :, A]
    sol = np.linalg.solve(GA, y[None, :, None])[..., 0]
    logw = -0.5 * np.einsum("sa,sa->s", sol, y[None]) - 0.5 * np.linalg.slogdet(GA)[1]
    w = np.exp(logw - logw.max())
    mean = np.einsum("sba,sa->sb", GBA, sol)
    cond = Gh[:, B][:, :, B] - GBA @ np.linalg.solve(GA, np.swapaxes(GBA, 1, 2))
    second = cond + np.einsum("sa,sb->sab", mean, mean)
    return w, mean, second, Gh


def _ratio(w, x):
    """Self-normalized weighted mean of x (leading axis the draws) and its delta-method error."""
    W = w.sum()
    est = np.tensordot(w, x, axes=1) / W
    dev = x - est
    se = np.sqrt(np.tensordot(w ** 2, dev ** 2, axes=1)) / W
    return est, se


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_posterior_against_importance_weighted_scale_mixture(noise):
    """The exact posterior of the scale mixture (same cumulants to O(1/n)) agrees with the NLO
    within MC errors and resolves its shift away from the GP."""
    m, A, B = 3, [0, 2], [1]
    K, K1, V = stats_of(m, seed=0, h=2.0, skew=True)
    y = np.array([-2.0, 2.5])
    ng = NearlyGaussian(K, K1, V, 800)     # the O(1/n²) residual is < 0.3 MC errors here
    post = posterior(ng, A, B, y, noise)
    w, mean, second, _ = _rb_posterior(ng, A, B, y, noise, 200_000, 7)
    ess = w.sum() ** 2 / (w ** 2).sum()
    assert ess > 0.5 * len(w)
    est, se = _ratio(w, mean)
    est2, se2 = _ratio(w, second.reshape(len(w), -1))
    z_nlo = np.r_[(est - post.mean_nlo) / se,
                  (est2 - (post.cov_nlo + np.outer(post.mean_nlo, post.mean_nlo)).ravel()) / se2]
    z_gp = np.r_[(est - post.mean_gp) / se,
                 (est2 - (post.cov_gp + np.outer(post.mean_gp, post.mean_gp)).ravel()) / se2]
    assert np.max(np.abs(z_nlo)) < crit(2), z_nlo
    assert np.all(np.abs(z_gp) > crit(2)), z_gp             # mean and second moment resolved


def test_posterior_mean_by_weighting_output_samples():
    """The plain route: weight output samples z of the mixture by N(y; z_A, σ²)."""
    m, A, B, s2 = 3, [0, 2], [1], 0.3
    K, K1, V = stats_of(m, seed=0, h=2.0, skew=True)
    y = np.array([-2.0, 2.5])
    ng = NearlyGaussian(K, K1, V, 400)
    post = posterior(ng, A, B, y, s2)
    z = ng.sample(1_000_000, np.random.default_rng(11))
    logw = -0.5 * np.sum((z[:, A] - y) ** 2, axis=1) / s2
    w = np.exp(logw - logw.max())
    est, se = _ratio(w, z[:, B])
    assert abs((est[0] - post.mean_nlo[0]) / se[0]) < crit(1)


def test_representation_shift_against_monte_carlo():
    m, A = 3, [0, 1]
    K, K1, V = stats_of(m, seed=0)
    y = np.array([1.8, -0.7])
    for noise in (0.0, 0.25):
        ng = NearlyGaussian(K, K1, V, 1600)   # the O(1/n²) residual is < 0.1 MC errors here
        rs = representation_shift(ng, A, y, noise)
        w, _, _, Gh = _rb_posterior(ng, A, [2], y, noise, 200_000, 3)
        est, se = _ratio(w, Gh.reshape(len(w), -1))
        est = est.reshape(m, m) - ng.metric
        se = se.reshape(m, m)
        iu = np.triu_indices(m)
        z = ((est - rs.shift) / se)[iu]
        z0 = (est / se)[iu]
        assert np.max(np.abs(z)) < crit(len(z)), z
        assert np.max(np.abs(z0)) > crit(len(z0)), z0          # the shift is resolved
        np.testing.assert_allclose(rs.posterior_metric, ng.metric + rs.shift)


def _mixture_exact(ng, A, B, y, s2, nodes=20):
    """E[Ĝ | y] (m×m) and E[z_B | y] of the Gaussian-metric scale mixture, deterministically:
    Gauss–Hermite over the entries of Ĝ_AA (whitened), Gaussian regression for the other
    entries of Ĝ given Ĝ_AA (the posterior mean Ĝ_BA (Ĝ_AA + σ²)⁻¹ y is linear in them)."""
    m = ng.m
    C = metric_covariance(ng.V / ng.width)
    ia, ib = np.triu_indices(m)
    pA = [k for k, (i, j) in enumerate(zip(ia, ib)) if i in A and j in A]
    lam, U = np.linalg.eigh(C[np.ix_(pA, pA)])
    reg = C[:, pA] @ U / np.sqrt(lam)                      # pairs | ξ: G + reg ξ
    x, w = np.polynomial.hermite.hermgauss(nodes)
    grids = np.meshgrid(*([x * np.sqrt(2)] * len(pA)), indexing="ij")
    xi = np.stack([g.ravel() for g in grids], axis=1)
    wt = np.prod(np.meshgrid(*([w / np.sqrt(np.pi)] * len(pA)), indexing="ij"), axis=0).ravel()
    keep = np.sum(xi ** 2, axis=1) < 64.0      # |ξ| < 8: the Gaussian mass beyond is < 1e-12
    xi, wt = xi[keep], wt[keep]
    G = ng.metric
    pairs = G[ia, ib][None, :] + xi @ reg.T                # conditional mean of every pair
    Gh = np.zeros((len(xi), m, m))
    Gh[:, ia, ib] = pairs
    Gh[:, ib, ia] = pairs
    S = Gh[:, A][:, :, A] + s2 * np.eye(len(A))
    assert np.all(np.linalg.eigvalsh(S)[:, 0] > 0)         # every node a covariance
    sol = np.linalg.solve(S, np.broadcast_to(y, (len(xi), len(A)))[..., None])[..., 0]
    lik = wt * np.exp(-0.5 * np.einsum("sa,sa->s", sol, y[None]) - 0.5 * np.linalg.slogdet(S)[1])
    mean_B = np.einsum("s,sba,sa->b", lik, Gh[:, B][:, :, A], sol) / lik.sum()
    return np.einsum("s,sab->ab", lik, Gh) / lik.sum(), mean_B


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_mixture_posterior_exact_route_residual_is_second_order(noise):
    """Against the exact posterior of the scale mixture (a Gauss–Hermite route, no sampling):
    the NLO mean and the representation shift are right to O(1/n²) — the residual falls by 4
    per doubling of n — while the corrections themselves fall by 2."""
    m, A, B = 3, [0, 2], [1]
    K, K1, V = stats_of(m, seed=0, h=2.0, skew=True)
    y = np.array([-2.0, 2.5])
    res_mean, res_rep, shift_mean, shift_rep = [], [], [], []
    for n in (800, 1600, 3200, 6400):
        ng = NearlyGaussian(K, K1, V, n)
        post = posterior(ng, A, B, y, noise)
        rs = representation_shift(ng, A, y, noise)
        EG, mean_B = _mixture_exact(ng, A, B, y, noise)
        if n == 6400:                                       # the quadrature has converged
            EG2, mean2 = _mixture_exact(ng, A, B, y, noise, nodes=26)
            assert np.max(np.abs(EG2 - EG)) < 1e-12 and abs(mean2[0] - mean_B[0]) < 1e-12
        res_mean.append(abs(mean_B[0] - post.mean_nlo[0]))
        res_rep.append(np.max(np.abs(EG - ng.metric - rs.shift)))
        shift_mean.append(abs(post.mean_nlo[0] - post.mean_gp[0]))
        shift_rep.append(np.max(np.abs(rs.shift)))
    for res in (res_mean, res_rep):
        r = np.array(res[:-1]) / np.array(res[1:])
        assert np.all((r > 3.5) & (r < 4.5)), r
    for sh in (shift_mean, shift_rep):
        r = np.array(sh[:-1]) / np.array(sh[1:])
        assert np.all((r > 1.8) & (r < 2.2)), r
    assert res_mean[0] < 0.1 * shift_mean[0] and res_rep[0] < 0.1 * shift_rep[0]


def test_nonpsd_bound_is_a_bound():
    """One input: the bound is above the exact P(Ĝ < 0) = P(N(0,1) > G/√(V/n))."""
    for var in (0.01, 0.04, 0.1):
        exact = stats.norm.sf(1.0 / np.sqrt(var))
        assert nonpsd_bound(np.eye(1), metric_covariance(np.full((1, 1, 1, 1), var))) >= exact


# ----------------------------------------------------------------------- bad input
def _prior(m=3, width=100):
    K, K1, V = stats_of(m, seed=0)
    return NearlyGaussian(K, K1, V, width)


def _bad_cases():
    K, K1, V = stats_of(3, seed=0)
    Vasym = V.copy()
    Vasym[0, 1, 2, 2] += 0.5
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    Klin = X @ X.T                                          # rank 2 on 3 inputs
    lin = NearlyGaussian(Klin, np.zeros((3, 3)), np.zeros((3,) * 4), 10)
    dup = NearlyGaussian(np.ones((2, 2)) + np.eye(2) * 0, np.zeros((2, 2)),
                         np.ones((2, 2, 2, 2)), 10)
    return {
        "singular Gram": (lambda: posterior(lin, [0, 1, 2], [], [1, 2, 3]), None),
        "singular Gram2": (lambda: posterior(lin, [0, 1, 2], [0], [1, 2, 3]), None),
        "duplicate targets": (lambda: posterior(dup, [0, 1], [0], [1.0, 2.0]), None),
        "negative noise": (lambda: posterior(_prior(), [0], [1], [1.0], -0.1), "noise"),
        "nan noise": (lambda: posterior(_prior(), [0], [1], [1.0], float("nan")), "noise"),
        "nan target": (lambda: posterior(_prior(), [0], [1], [np.nan]), "targets"),
        "inf target": (lambda: posterior(_prior(), [0], [1], [np.inf]), "targets"),
        "target count": (lambda: posterior(_prior(), [0, 1], [2], [1.0]), "targets"),
        "overlap": (lambda: posterior(_prior(), [0, 1], [1, 2], [1.0, 2.0]), "both"),
        "out of range": (lambda: posterior(_prior(), [0], [3], [1.0]), "out of range"),
        "negative index": (lambda: posterior(_prior(), [-1], [0], [1.0]), "out of range"),
        "repeated index": (lambda: posterior(_prior(), [0, 0], [1], [1.0, 1.0]), "twice"),
        "empty train": (lambda: posterior(_prior(), [], [1], []), "train"),
        "float index": (lambda: posterior(_prior(), [0.5], [1], [1.0]), "train"),
        "K nan": (lambda: NearlyGaussian(np.full((2, 2), np.nan), np.zeros((2, 2)),
                                         np.zeros((2,) * 4), 5), "non-finite"),
        "K1 inf": (lambda: NearlyGaussian(K, np.full((3, 3), np.inf), V, 5), "non-finite"),
        "V asymmetric": (lambda: NearlyGaussian(K, K1, Vasym, 5), "symmetric"),
        "K asymmetric": (lambda: NearlyGaussian(K + np.triu(np.ones((3, 3)), 1), K1, V, 5),
                         "symmetric"),
        "K not PSD": (lambda: NearlyGaussian(K - 5 * np.eye(3), K1, V, 5), "semidefinite"),
        "V shape": (lambda: NearlyGaussian(K, K1, V[:2], 5), "shape"),
        "width 0": (lambda: NearlyGaussian(K, K1, V, 0), "width"),
        "width float": (lambda: NearlyGaussian(K, K1, V, 2.5), "width"),
        "sampler V/n too large": (lambda: _prior(width=2).sample(10, np.random.default_rng(0)),
                                  "too large"),
        "sampler V not a covariance": (
            lambda: NearlyGaussian(K, K1, -V, 1000).sample(10, np.random.default_rng(0)),
            "not a covariance"),
        "sampler budget": (lambda: _prior().sample(10 ** 9, np.random.default_rng(0)),
                           "budget"),
        "pdf shape": (lambda: _prior().pdf(np.zeros(2)), "last axis"),
        "pdf far out": (lambda: _prior().pdf(np.full(3, 1e200)), "too far out"),
        "logpdf far out": (lambda: _prior().logpdf(np.full(3, 1e200)), "too far out"),
        "huge target": (lambda: posterior(_prior(), [0], [1], [1e200]), "overflows"),
        "huge target shift": (lambda: representation_shift(_prior(), [0], [1e200]), "overflows"),
    }


@pytest.mark.parametrize("case", sorted(_bad_cases()))
def test_bad_input_one_line_error(case):
    call, match = _bad_cases()[case]
    with pytest.raises(CritheoryError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg and msg
    if match:
        assert match in msg
    if case.startswith("singular"):
        assert "singular" in msg
    if case == "duplicate targets":
        assert "same input with different targets" in msg


def test_results_are_json_ready():
    import json

    ng = _prior()
    d = posterior(ng, [0, 2], [1], [0.5, -0.2], 0.1).to_dict()
    assert {"posterior_mean_gp", "posterior_mean_nlo", "posterior_cov_gp",
            "posterior_cov_nlo"} <= set(d)
    json.dumps(d, allow_nan=False)
    json.dumps(representation_shift(ng, [0], [1.0]).to_dict(), allow_nan=False)


def test_nearly_singular_but_accepted_gram_gives_finite_numbers():
    X = np.array([[1.0, 0.0], [1.0, 1e-4], [0.0, 1.0]])
    K = X @ X.T + 0.1
    ng = NearlyGaussian(K, 0.1 * K, np.einsum("ac,bd->abcd", K, K) + np.einsum("ad,bc->abcd", K, K),
                        100)
    post = posterior(ng, [0, 1], [2], [1.0, 1.0001])
    assert all(np.all(np.isfinite(getattr(post, f)))
               for f in ("mean_gp", "cov_gp", "mean_nlo", "cov_nlo"))


def test_lognormal_metric_at_any_width():
    """``method="lognormal"``: positive definite where the Gaussian metric is refused (n = 4);
    one input: E[Ĝ] = G exactly and Var Ĝ = G²(e^{A²} − 1), A² = V/(nG²) (a lognormal), each
    within its MC error at n = 4; three inputs at n = 2000 (where the O(1/n²) difference to
    the Gaussian moments is below the MC error): E[Ĝ] = G and Cov = V/n within MC errors."""
    K, K1, V = stats_of(3, seed=0)
    small = NearlyGaussian(K, K1, V, 4)
    with pytest.raises(CritheoryError, match="lognormal"):
        small.sample(10, np.random.default_rng(0))
    g = small.sample_metric(20_000, np.random.default_rng(1), method="lognormal")
    assert np.all(np.linalg.eigvalsh(g)[:, 0] > 0)
    z = small.sample(1000, np.random.default_rng(1), method="lognormal")
    assert z.shape == (1000, 3) and np.all(np.isfinite(z))
    with pytest.raises(CritheoryError, match="method"):
        small.sample(10, np.random.default_rng(0), method="wishart")

    N = 400_000
    one = NearlyGaussian(np.eye(1) * 1.3, np.zeros((1, 1)), np.full((1, 1, 1, 1), 2.0), 4)
    x = one.sample_metric(N, np.random.default_rng(2), method="lognormal")[:, 0, 0]
    G, A2 = 1.3, 2.0 / (4 * 1.3 ** 2)
    var = G * G * np.expm1(A2)
    zs = [(x.mean() - G) / np.sqrt(var / N)]
    d2 = (x - G) ** 2
    zs.append((d2.mean() - var) / (d2.std(ddof=1) / np.sqrt(N)))
    assert np.max(np.abs(zs)) < crit(2), zs

    n, N = 2000, 200_000
    ng = NearlyGaussian(K, K1, V, n)
    Gh = ng.sample_metric(N, np.random.default_rng(4), method="lognormal")
    ia, ib = np.triu_indices(3)
    d = Gh[:, ia, ib] - ng.metric[ia, ib]
    zs = list(d.mean(0) / (d.std(0, ddof=1) / np.sqrt(N)))
    for p in range(len(ia)):
        for q in range(p, len(ia)):
            prod = d[:, p] * d[:, q]
            zs.append((prod.mean() - V[ia[p], ib[p], ia[q], ib[q]] / n)
                      / (prod.std(ddof=1) / np.sqrt(N)))
    assert np.max(np.abs(zs)) < crit(len(zs)), zs
