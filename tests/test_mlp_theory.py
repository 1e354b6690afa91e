"""MLP criticality engine: layer maps, fixed points, critical lines/points, classes, exponents.

Independent routes used here:
* mpmath at 25-30 digits with the activations written directly in mpmath (not critheory's
  lambdified expressions) for the critical line and the GELU/SWISH critical points;
* closed forms (erf: E[erf²] = (2/π) arcsin(2K/(1+2K)), E[erf'²] = 4/(π√(1+4K)); ReLU);
* a Gauss–Hermite recursion written in this file for depth curves;
* published values: PDLT §5.3 (tanh a_1 = b_1 = -2; erf critical point (π/4, 0); GELU
  (1.98305826, 0.17292239) and SWISH (1.98800468, 0.55514317), quoted to 8 decimals).
"""
from __future__ import annotations

import math
import time

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from critheory.cli.theory import parse_grid
from critheory.theory.meanfield.criticality import critical_line, critical_points, universality
from critheory.theory.meanfield.depth import depth_curves, fit_power_law
from critheory.errors import CritheoryError, InvalidArgumentError, InvalidVarianceError
from critheory.theory.meanfield.fixed_points import FixedPointStability, analyze_point, fixed_points
from critheory.theory.meanfield.maps import architecture
from critheory.io.report import analyze
from critheory.theory.meanfield.tabulated import TabulatedMap

# --------------------------------------------------------------------------- mpmath reference
# (the default run reads these values frozen: tests/data/generate_references.py calls them)
_MP = {
    "tanh": (mp.tanh, lambda x: 1 / mp.cosh(x) ** 2),
    "erf": (mp.erf, lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)),
    "gelu": (lambda x: x * mp.ncdf(x), lambda x: mp.ncdf(x) + x * mp.npdf(x)),
    "swish": (lambda x: x / (1 + mp.exp(-x)),
              lambda x: 1 / (1 + mp.exp(-x)) + x * mp.exp(-x) / (1 + mp.exp(-x)) ** 2),
}


def _mp_E(g, K):
    K = mp.mpf(K)
    s = mp.sqrt(K)
    return mp.quad(lambda z: g(s * z) * mp.npdf(z), [-mp.inf, -4, 0, 4, mp.inf])


def _mp_line_point(name, y, K0):
    """σ_w² on the MLP critical line at σ_b² = y: solve K - E[φ²]/E[φ'²] = y for K (mpmath)."""
    f, df = _MP[name]
    with mp.workdps(25):
        K = mp.findroot(lambda K: K - _mp_E(lambda x: f(x) ** 2, K)
                        / _mp_E(lambda x: df(x) ** 2, K) - y, mp.mpf(K0))
        return float(1 / _mp_E(lambda x: df(x) ** 2, K)), float(K)


def _mp_critical_point(name, K0):
    """K* with χ_∥ = χ_⊥ on the line: E[hφφ']/K = E[φ'²] (mpmath); returns (σ_w², σ_b², K*)."""
    f, df = _MP[name]
    with mp.workdps(25):
        K = mp.findroot(lambda K: _mp_E(lambda x: x * f(x) * df(x), K) / K
                        - _mp_E(lambda x: df(x) ** 2, K), mp.mpf(K0))
        sw = 1 / _mp_E(lambda x: df(x) ** 2, K)
        sb = K - sw * _mp_E(lambda x: f(x) ** 2, K)
        return float(sw), float(sb), float(K)


# --------------------------------------------------------------------------- layer maps
def test_mlp_maps_relu_closed_form():
    a = architecture("mlp", "relu")
    K = np.array([0.3, 1.0, 7.0])
    assert np.allclose(a.kernel_map(K, 1.5, 0.2), 0.2 + 1.5 * K / 2, rtol=1e-14)
    assert np.allclose(a.chi_parallel(K, 1.5, 0.2), 0.75, rtol=1e-13)
    assert np.allclose(a.chi_jacobian(K, 1.5, 0.2), 0.75, rtol=1e-14)
    # two-input map: arc-cosine kernel sqrt(K11 K22)(sin θ + (π - θ) cos θ)/(2π)
    k11, k12, k22 = 1.0, 0.3, 2.0
    th = math.acos(k12 / math.sqrt(k11 * k22))
    e = math.sqrt(k11 * k22) * (math.sin(th) + (math.pi - th) * math.cos(th)) / (2 * math.pi)
    _, c12, _ = a.covariance_map(k11, k12, k22, 2.0, 0.1)
    assert abs(float(c12) - (0.1 + 2.0 * e)) < 1e-13


def test_chi_parallel_is_derivative_of_kernel_map():
    # χ_∥ = dK'/dK, checked by a central difference (truncation ~ h² f''' ~ 1e-10)
    for name in ("tanh", "gelu", "elu", "softplus"):
        a = architecture("mlp", name)
        for K in (0.2, 1.0, 3.0):
            h = 1e-5 * K
            fd = (a.kernel_map(K + h, 1.7, 0.1) - a.kernel_map(K - h, 1.7, 0.1)) / (2 * h)
            assert abs(float(a.chi_parallel(K, 1.7, 0.1)) - float(fd)) < 1e-8, (name, K)


def test_chi_perp_is_slope_of_covariance_map():
    # χ_⊥ = ∂K'_12/∂K_12 at coincident inputs: one-sided difference from just below c = 1
    for name in ("tanh", "erf"):
        a = architecture("mlp", name)
        K, h = 0.8, 1e-6
        _, c1, _ = a.covariance_map(K, K - h, K, 1.3, 0.05)
        _, c2, _ = a.covariance_map(K, K - 2 * h, K, 1.3, 0.05)
        slope = float(c1 - c2) / h
        assert abs(slope - float(a.chi_perp(K, 1.3, 0.05))) < 1e-5


# --------------------------------------------------------------------------- fixed points
def test_fixed_point_matches_direct_iteration():
    # erf at (1, 0.1): iterate K' = σ_b² + σ_w² (2/π) arcsin(2K/(1+2K)) (closed form) to convergence
    K = 1.1
    for _ in range(2000):
        K = 0.1 + (2 / math.pi) * math.asin(2 * K / (1 + 2 * K))
    p = analyze_point(architecture("mlp", "erf"), 1.0, 0.1)
    assert p.attractor is not None and abs(p.attractor.K - K) < 1e-12 * K
    assert p.attractor.stable and p.phase == "ordered"
    chi = 4 / (math.pi * math.sqrt(1 + 4 * K))
    assert abs(p.chi_jacobian - chi) < 1e-13
    assert abs(p.correlation_length - 1 / abs(math.log(chi))) < 1e-9


def test_relu_runaway_and_marginal():
    a = architecture("mlp", "relu")
    p = analyze_point(a, 3.0, 0.0)
    assert p.runaway == "exponential" and p.attractor is None and p.phase == "chaotic"
    assert p.chi_jacobian == 1.5
    p = analyze_point(a, 2.0, 0.5)  # χ_J = 1 exactly while K grows linearly
    assert p.runaway == "linear" and p.phase == "critical"
    p = analyze_point(a, 1.0, 0.5)  # K* = σ_b²/(1 - σ_w²/2) = 1
    assert abs(p.attractor.K - 1.0) < 1e-14 and p.phase == "ordered"
    assert fixed_points(a, 2.0, 0.0)[0].marginal


def test_multiple_fixed_points_gelu():
    # at GELU's critical point the half-stable K* = 3.56 coexists with a stable one below it
    cp = [c for c in critical_points(architecture("mlp", "gelu")) if c.half_stable][0]
    fps = fixed_points(architecture("mlp", "gelu"), cp.weight_var, cp.bias_var)
    Ks = [f.K for f in fps]
    assert any(abs(k - cp.fixed_point) < 1e-6 * cp.fixed_point for k in Ks)
    a = architecture("mlp", "gelu")
    for f in fps:  # every reported root is a root
        assert abs(float(a.kernel_map(f.K, cp.weight_var, cp.bias_var)) - f.K) < 1e-9 * f.K


def test_tanh_zero_fixed_point_is_stable():
    fps = fixed_points(architecture("mlp", "tanh"), 1.0, 0.0)
    assert fps[0].K == 0.0 and fps[0].stable
    fps = fixed_points(architecture("mlp", "gelu"), 4.0, 0.0)
    assert fps[0].K == 0.0 and fps[0].stability is FixedPointStability.UNSTABLE


# --------------------------------------------------------------------------- critical line
def test_erf_line_against_closed_form():
    # explicit parametrization by K*: σ_w² = π√(1+4K)/4, σ_b² = K - σ_w² (2/π) arcsin(2K/(1+2K))
    Ks = np.array([0.05, 0.3, 1.0, 2.5, 7.0])
    sw = np.pi * np.sqrt(1 + 4 * Ks) / 4
    sb = Ks - sw * (2 / np.pi) * np.arcsin(2 * Ks / (1 + 2 * Ks))
    pts = critical_line(architecture("mlp", "erf"), sb)
    assert len(pts) == len(Ks)
    for p, w, k in zip(pts, sw, Ks):
        assert abs(p.weight_var - w) <= 1e-12 * w
        assert abs(p.fixed_point - k) <= 1e-10 * k


def test_exponential_activation_line_and_report():
    # φ = e^x: E[φ²] = E[φ'²] = e^{2K}, so χ_⊥ = σ_w² e^{2K} = 1 and K* = 1 + σ_b²: the line is
    # σ_w² = exp(-2(1 + σ_b²)). The report scans K up to 1e6, where e^{2K} overflows float64:
    # those points must be treated as "beyond the range", not as errors or NaN.
    sb = np.array([0.0, 0.5, 3.0])
    pts = critical_line(architecture("mlp", "exp(x)"), sb)
    for p, y in zip(pts, sb):
        assert abs(p.weight_var - math.exp(-2 * (1 + y))) <= 1e-12 * p.weight_var
        assert abs(p.fixed_point - (1 + y)) <= 1e-12 * (1 + y)
    rep = analyze("exp(x)")
    assert rep["universality_class"] == "none" and rep["critical_points"] == []


@pytest.mark.parametrize("name,y,K0", [("tanh", 0.3, 1.46), ("gelu", 0.05, 0.86),
                                       ("swish", 0.8, 20.0)])
def test_line_against_mpmath(name, y, K0, reference):
    sw_ref, K_ref = reference("mp_line_point", name, y, K0)   # _mp_line_point(name, y, K0)
    pts = critical_line(architecture("mlp", name), [y])
    near = [p for p in pts if abs(p.fixed_point - K_ref) < 1e-3 * K_ref]
    assert near, pts
    assert abs(near[0].weight_var - sw_ref) <= 1e-10 * sw_ref
    assert abs(near[0].fixed_point - K_ref) <= 1e-9 * K_ref


def test_line_zero_bias_ends():
    assert critical_line(architecture("mlp", "tanh"), [0.0])[0].weight_var == 1.0
    p = critical_line(architecture("mlp", "erf"), [0.0])[0]
    assert abs(p.weight_var - math.pi / 4) < 1e-15
    # ELU: φ'(0) = 1 continuous, so the line ends at (1, 0) with K* = 0
    assert critical_line(architecture("mlp", "elu"), [0.0])[0].weight_var == 1.0


def test_relu_line_is_vertical():
    pts = critical_line(architecture("mlp", "relu"), [0.0, 0.5, 1.0])
    assert [p.weight_var for p in pts] == [2.0, 2.0, 2.0]
    pts = critical_line(architecture("mlp", "leaky_relu"), [0.3])
    assert abs(pts[0].weight_var - 2 / (1 + 0.01 ** 2)) < 1e-14


def test_line_every_branch():
    # cos: σ_b²(K*) = K* - E[cos²]/E[sin²] is not monotone: a σ_b² can have several σ_w²;
    # check every reported point solves the defining equations and none is missed on a grid
    a = architecture("mlp", "sin")
    Ks = np.logspace(-3, 1.5, 4000)
    sw, sb, _ = a.critical_curve(Ks)
    y = 0.2
    crossings = np.sum(np.sign(sb[:-1] - y) != np.sign(sb[1:] - y))
    pts = critical_line(a, [y])
    assert len(pts) == crossings >= 1
    for p in pts:
        w, s, _ = a.critical_curve(np.array([p.fixed_point]))
        assert abs(s[0] - y) < 1e-12 and abs(w[0] - p.weight_var) < 1e-12 * w[0]


def test_line_cost_is_linear_and_grid_errors():
    with pytest.raises(InvalidArgumentError):
        parse_grid("1:0:0")
    with pytest.raises(InvalidArgumentError):
        parse_grid("a:b:c")
    with pytest.raises(InvalidArgumentError):
        critical_line(architecture("mlp", "tanh"), [])
    with pytest.raises(InvalidArgumentError):
        critical_line(architecture("mlp", "tanh"), [-0.1])
    assert np.allclose(parse_grid("0:1:3"), [0, 0.5, 1])


def test_no_critical_line_is_a_result():
    assert critical_line(architecture("mlp", "softplus"), [0.0, 0.5]) == []
    assert critical_points(architecture("mlp", "sigmoid")) == []
    assert universality(architecture("mlp", "sigmoid")).name == "none"


# --------------------------------------------------------------------------- critical points
def test_gelu_swish_critical_points_published_and_mpmath(reference):
    for name, pub, K0 in (("gelu", (1.98305826, 0.17292239), 3.5),
                          ("swish", (1.98800468, 0.55514317), 14.0)):
        cps = [c for c in critical_points(architecture("mlp", name)) if c.half_stable]
        assert len(cps) == 1
        c = cps[0]
        # PDLT quotes 8 decimals: agreement to half a unit in the last place
        assert abs(c.weight_var - pub[0]) <= 5e-9 and abs(c.bias_var - pub[1]) <= 5e-9
        sw, sb, K = reference("mp_critical_point", name, K0)   # _mp_critical_point(name, K0)
        assert abs(c.weight_var - sw) <= 1e-9 * sw
        assert abs(c.bias_var - sb) <= 1e-9 * sb
        assert abs(c.fixed_point - K) <= 1e-9 * K


def test_point_at_half_stable_critical_point_is_critical():
    # At SWISH's critical point χ_∥ - 1 touches zero twice within 1.3% in K (the tangent root
    # and a transversal root just above it): both fixed points must be found. The half-stable
    # K* attracts from below for SWISH (f(K) - K >= 0 below it) and from above for GELU, so an
    # input on the attracting side flows to it, where χ_J = 1.
    for name, q0 in (("swish", 1.0), ("gelu", 10.0)):
        arch = architecture("mlp", name)
        c = [c for c in critical_points(arch) if c.half_stable][0]
        p = analyze_point(arch, c.weight_var, c.bias_var, q0=q0)
        assert p.phase == "critical", name
        assert p.attractor.stability is FixedPointStability.HALF_STABLE
        assert abs(p.attractor.K - c.fixed_point) <= 1e-7 * c.fixed_point
        # independent check: iterating the map from K^1 approaches K* monotonically from the
        # attracting side and never crosses it (the approach is algebraic, hence slow)
        K = [p.input_kernel]
        for _ in range(2000):
            K.append(float(arch.kernel_map(K[-1], c.weight_var, c.bias_var)))
        d = np.sign(c.fixed_point - K[0])
        assert np.all(d * np.diff(K) >= 0)
        assert np.all(d * (c.fixed_point * (1 + d * 1e-9) - np.array(K)) > 0)


def test_gelu_critical_point_has_a_stable_fixed_point_below():
    # At GELU's critical point f(K) - K changes sign near K = 3.035 (mpmath quadrature of
    # f(K) - K: +4.8e-7 at K = 3.03, -4.6e-7 at K = 3.04), so inputs with K^1 below it flow to
    # an ordered stable fixed point, not to the half-stable K* = 3.5616.
    arch = architecture("mlp", "gelu")
    c = [c for c in critical_points(arch) if c.half_stable][0]
    sw, sb = mp.mpf(c.weight_var), mp.mpf(c.bias_var)

    def F(K):
        phi = lambda x: x * (1 + mp.erf(x / mp.sqrt(2))) / 2  # noqa: E731
        g = lambda z: phi(mp.sqrt(K) * z) ** 2 * mp.npdf(z)  # noqa: E731
        return sw * mp.quad(g, [-mp.inf, 0, mp.inf]) + sb - K

    with mp.workdps(30):
        assert F(mp.mpf("3.03")) > 0 > F(mp.mpf("3.04"))
    fps = fixed_points(arch, c.weight_var, c.bias_var)
    assert [fp.stability.value for fp in fps] == ["stable", "half-stable"]
    assert 3.03 < fps[0].K < 3.04
    p = analyze_point(arch, c.weight_var, c.bias_var)  # q0 = 1: K^1 = 2.156 < 3.035
    assert p.phase == "ordered" and p.attractor == fps[0]


def test_k0_class_critical_points():
    assert [(c.weight_var, c.bias_var) for c in critical_points(architecture("mlp", "tanh"))] \
        == [(1.0, 0.0)]
    c = critical_points(architecture("mlp", "erf"))[0]
    assert abs(c.weight_var - math.pi / 4) < 1e-15 and c.bias_var == 0.0


# --------------------------------------------------------------------------- classes, exponents
def test_universality_classes_exact():
    u = universality(architecture("mlp", "tanh"))
    assert (u.name, u.a1, u.b1, u.apjn_exact, u.kernel_exact) == ("K*=0", -2, -2, 1, 1)
    u = universality(architecture("mlp", "sin"))
    assert (u.a1, u.b1) == (-1, -1)
    u = universality(architecture("mlp", "erf"))
    assert (u.a1, u.b1) == (-2, -2)
    # φ = tanh(x) + x²/10: σ_2/σ_1 = 1/5, so a_1 = -2 + 3/100, b_1 = -2 + 1/25 (PDLT (5.88))
    u = universality(architecture("mlp", "tanh(x) + x**2/10"))
    assert u.a1 == sp.Rational(-197, 100) and u.b1 == sp.Rational(-49, 25)
    assert u.apjn_exact == sp.Rational(196, 197)
    assert universality(architecture("mlp", "relu")).name == "scale-invariant"
    assert universality(architecture("mlp", "gelu")).name == "half-stable"
    assert universality(architecture("mlp", "swish")).name == "half-stable"
    assert universality(architecture("mlp", "elu")).name == "K*=0 (kinked)"


def test_half_stable_exponent_from_finite_differences():
    # p = 2 χ_⊥'(K*)/χ_∥'(K*): recompute the derivatives by central differences of the maps
    a = architecture("mlp", "gelu")
    u = universality(a)
    c = u.critical_point
    h = 1e-4 * c.fixed_point
    K = c.fixed_point
    dpar = (a.chi_parallel(K + h, c.weight_var, c.bias_var)
            - a.chi_parallel(K - h, c.weight_var, c.bias_var)) / (2 * h)
    dperp = (a.chi_perp(K + h, c.weight_var, c.bias_var)
             - a.chi_perp(K - h, c.weight_var, c.bias_var)) / (2 * h)
    assert abs(u.apjn - 2 * float(dperp) / float(dpar)) < 1e-5 * abs(u.apjn)


@pytest.mark.parametrize("name,kernel,apjn", [("tanh", 1, 1), ("erf", 1, 1), ("sin", 1, 1),
                                              ("elu", 2, 2), ("softsign", 2, 2)])
def test_depth_laws_by_iteration(name, kernel, apjn):
    # iterate to l = 10^4 and fit over [10^3, 10^4]; the corrections to K ≈ 1/((-a_1) l) are
    # O(log l / l) ~ 1e-3 there, so the fitted slopes must agree to 1 %
    a = architecture("mlp", name)
    u = universality(a)
    c = u.critical_point
    d = depth_curves(a, c.weight_var, c.bias_var, 10000, input_correlation=None)
    kf = fit_power_law(d.depths, d.kernel)
    jf = fit_power_law(d.depths, d.apjn)
    assert abs(-kf.slope - kernel) < 0.01 and abs(-jf.slope - apjn) < 0.01
    assert u.kernel == kernel and u.apjn == apjn


def test_kernel_amplitude_tanh():
    # K^l ≈ 1/((-a_1) l) = 1/(2l): l·K^l → 1/2 (corrections O(log l/l))
    d = depth_curves(architecture("mlp", "tanh"), 1.0, 0.0, 20000, input_correlation=None)
    assert abs(d.kernel[-1] * 20000 - 0.5) < 5e-3


# --------------------------------------------------------------------------- depth curves
def _gh_recursion(f, df, sw, sb, L, n=200):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    K = sb + sw
    Ks, chis = [], []
    for _ in range(L):
        Ks.append(K)
        h = np.sqrt(K) * z
        chis.append(sw * np.sum(w * df(h) ** 2))
        K = sb + sw * np.sum(w * f(h) ** 2)
    return np.array(Ks), np.array(chis)


def test_depth_curves_against_independent_recursion():
    f, df = np.tanh, lambda x: 1 / np.cosh(x) ** 2
    Ks, chis = _gh_recursion(f, df, 1.5, 0.05, 300)
    d = depth_curves(architecture("mlp", "tanh"), 1.5, 0.05, 300, l0=3, input_correlation=None)
    assert np.allclose(d.kernel, Ks, rtol=1e-11, atol=0)
    J = np.concatenate([[np.nan, np.nan, 1.0], np.cumprod(chis[2:-1])])
    assert np.allclose(d.apjn[2:], J[2:], rtol=1e-10)
    assert np.all(np.isnan(d.apjn[:2]))


def test_depth_correlation_relu_closed_form():
    # ReLU at (2, 0): K constant; c-map c' = (sqrt(1-c²) + (π - arccos c) c)/π
    d = depth_curves(architecture("mlp", "relu"), 2.0, 0.0, 20, input_correlation=0.3)
    c = 0.3
    for l in range(20):
        assert abs(d.correlation[l] - c) < 1e-12
        c = (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
    assert np.all(d.apjn == 1.0)


def test_tabulated_map_accuracy():
    a = architecture("mlp", "gelu")
    t = TabulatedMap(a, 1.9, 0.2)
    for K in np.geomspace(1e-5, 1e4, 37):
        f, g = t.both(K)
        assert abs(f - float(a.kernel_map(K, 1.9, 0.2))) <= 2e-12 * abs(f)
        assert abs(g - float(a.chi_jacobian(K, 1.9, 0.2))) <= 2e-12 * abs(g)


def test_runaway_depth_is_reported():
    d = depth_curves(architecture("mlp", "relu"), 100.0, 0.0, 400, input_correlation=None)
    assert d.runaway_depth is not None
    out = d.to_dict()
    assert None in out["kernel"]  # no inf/NaN in the serialized form


# --------------------------------------------------------------------------- bad input
def test_bad_hyperparameters():
    a = architecture("mlp", "tanh")
    with pytest.raises(InvalidVarianceError):
        analyze_point(a, -1.0, 0.0)
    with pytest.raises(InvalidVarianceError):
        analyze_point(a, 1.0, -0.1)
    with pytest.raises(InvalidVarianceError):
        analyze_point(a, float("nan"), 0.0)
    with pytest.raises(InvalidArgumentError):
        depth_curves(a, 1.0, 0.0, 0)
    with pytest.raises(InvalidArgumentError):
        depth_curves(a, 1.0, 0.0, 10, l0=11)
    with pytest.raises(InvalidArgumentError, match="beyond the supported"):
        depth_curves(a, 1.0, 0.0, 10 ** 9)  # impossible depth: refused at once, no allocation
    with pytest.raises(InvalidArgumentError):
        architecture("transformer", "tanh")
    with pytest.raises(CritheoryError):
        architecture("residual", "tanh", mu=-1)


def test_selu_self_normalizing_fixed_point():
    # Klambauer et al. (2017), eqs. (4)-(5): λ, α are chosen so that E[selu(z)] = 0 and
    # E[selu(z)²] = 1 for z ~ N(0, 1): at (σ_w², σ_b²) = (1, 0) K* = 1 is a fixed point.
    # χ_J(1) = E[selu'(z)²] = λ²/2 + λ²α² e² Φ(-2) in closed form; K = 0 is a fixed point too,
    # with the slopes λ, λα of the kink at 0: χ = (λ² + λ²α²)/2.
    lam = mp.mpf("1.0507009873554804934193349852946")
    alpha = mp.mpf("1.6732632423543772848170429916717")
    fps = fixed_points(architecture("mlp", "selu"), 1.0, 0.0)
    assert [fp.stability.value for fp in fps] == ["unstable", "stable"]
    assert fps[0].K == 0.0
    assert fps[0].chi_jacobian == pytest.approx(float((lam**2 + (lam * alpha) ** 2) / 2), rel=1e-14)
    assert abs(fps[1].K - 1.0) <= 1e-9  # λ, α are given to 30 digits; float64 map
    chi = lam**2 / 2 + (lam * alpha) ** 2 * mp.e**2 * mp.ncdf(-2)
    assert fps[1].chi_jacobian == pytest.approx(float(chi), rel=1e-10)


@pytest.mark.parametrize("v", [1e20, 1e40, 1e100, 1e250])
def test_critical_line_far_out_is_not_dropped(v):
    """The critical line at huge bias variances was silently empty (the scan of K* stopped at
    ~1e18, and a target on the last grid point was taken for noise). erf closed forms:
    E_K[φ'²] = (4/π)/√(1 + 4K), E_K[φ²] = (2/π) asin(2K/(1 + 2K)), so on the line
    σ_w² = π√(1 + 4K*)/4 and K* = σ_b² + σ_w² E_K*[φ²]. The line is refined in u = log K*, which
    resolves K* to ulp(u) ≈ 2.2e-16·|log K*| relative (1.3e-13 at 1e250): that is the tolerance."""
    a = architecture("mlp", "erf")
    (p,) = critical_line(a, [v])
    k = p.fixed_point
    tol = 4.4e-16 * abs(math.log(k)) + 1e-15
    assert p.weight_var == pytest.approx(math.pi * math.sqrt(1 + 4 * k) / 4, rel=tol)
    e2 = (2 / math.pi) * math.asin(2 * k / (1 + 2 * k))
    assert k == pytest.approx(v + p.weight_var * e2, rel=tol)
    assert float(a.chi_jacobian(k, p.weight_var, v)) == pytest.approx(1.0, abs=tol)


# ------------------------------------------------- critical line over the whole float64 range
def _independent_crossings(name: str, ys: np.ndarray):
    """Critical points by the independent parametrization of issue 31: on a grid of K (4 per
    decade, 1e-110 .. 1e308), ``σ_w² = 1/E_K[φ'²]``, ``σ_b² = K − σ_w² E_K[φ²]`` from plain
    ``expect`` (no block rules, no Poincaré gap), with the rounding bound of that difference
    (``1e-12 (K + |σ_b²|)``, the resolution the line scan claims). Returns, per target,
    the K-intervals where σ_b²(K) − y changes sign beyond that bound at both ends."""
    from critheory.expectations.gaussian import expect

    K = np.minimum(np.logspace(-110, np.log10(np.finfo(float).max), 1673), np.finfo(float).max)
    D, S = np.full(K.shape, np.nan), np.full(K.shape, np.nan)
    for c in range(0, K.size, 64):   # blocks; a block that overflows float64 point by point
        sl = slice(c, c + 64)
        try:
            D[sl] = expect(name, "dphi2", K[sl]).value
            S[sl] = expect(name, "phi2", K[sl]).value
        except CritheoryError:
            for i in range(c, min(c + 64, K.size)):
                try:
                    D[i] = float(expect(name, "dphi2", K[i]).value)
                    S[i] = float(expect(name, "phi2", K[i]).value)
                except CritheoryError:
                    D[i] = S[i] = np.nan
    with np.errstate(all="ignore"):
        sb = K - S / D
    ok = np.isfinite(sb) & (D > 0)
    noise = 1e-12 * K + 1e-12 * np.abs(np.where(ok, sb, 0.0))
    out = []
    for y in ys:
        d = sb - y
        signed = ok & (np.abs(d) > noise)
        idx = np.flatnonzero(signed)
        # resolved crossings only: signed ends at most one grid step apart (a longer run
        # within rounding of y locates no root, and the line then reports none either)
        iv = [(K[a], K[b]) for a, b in zip(idx[:-1], idx[1:])
              if np.sign(d[a]) != np.sign(d[b]) and b - a <= 2 and np.all(ok[a:b + 1])]
        out.append(iv)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(__import__("critheory.activation.zoo",
                                                  fromlist=["ZOO"]).ZOO))
def test_line_finds_every_independent_branch(name):
    """Issue 31 item 2: at σ_b² = 10^e over the documented range (every 4th e from −320 to
    308, plus 1e-320 subnormal), each crossing of the independent parametrization holds a
    point of ``critical_line`` (K* inside the crossing's K interval), and that point's σ_w²
    agrees with 1/E_{K*}[φ'²] to 1e-10."""
    from critheory.expectations.gaussian import expect

    ys = np.concatenate([[1e-320], 10.0 ** np.arange(-320, 309, 4)])
    arch = architecture("mlp", name)
    t0 = time.perf_counter()
    pts = critical_line(arch, ys)
    # every decade is scanned here (the targets span them all): sigmoid's expectations at
    # K* ~ 1e300 cost ~20 ms each; generous for a machine shared by several processes
    assert time.perf_counter() - t0 < 400
    found = {}
    for p in pts:
        found.setdefault(p.bias_var, []).append(p)
    missing = []
    for y, ivs in zip(ys, _independent_crossings(name, ys)):
        for lo, hi in ivs:
            hit = [p for p in found.get(float(y), [])
                   if np.isfinite(p.fixed_point) and lo * (1 - 1e-12) <= p.fixed_point
                   <= hi * (1 + 1e-12)]
            if not hit:
                missing.append((y, lo, hi))
                continue
            k = hit[0].fixed_point
            d = float(expect(name, "dphi2", k).value)
            assert hit[0].weight_var == pytest.approx(1 / d, rel=1e-10), (y, k)
    assert not missing, missing[:10]


# ---------------------------------------------------------------- per-block variances (issue 27)
def _own(unit):
    from critheory.activation import Activation
    from critheory.blocks import Network

    return architecture(Network("own", Activation.get("tanh"), unit))


def test_dense_blocks_carrying_the_networks_values_are_the_plain_network():
    """A unit whose dense blocks carry the network's own σ_w², σ_b² maps exactly as the plain
    one (identical floats), at a grid of (K, σ_w², σ_b²)."""
    from critheory.blocks import Dense, LayerNorm, Phi, Residual

    K, sw, sb = np.array([0.3, 1.0, 4.0]), 1.4, 0.2
    for plain, own in [
            ((Phi(), Dense()), (Phi(), Dense(weight_var=sw, bias_var=sb))),
            ((Residual((LayerNorm(), Dense(), Phi(), Dense()), 0.9),),
             (Residual((LayerNorm(), Dense(weight_var=sw), Phi(), Dense(bias_var=sb)), 0.9),))]:
        a, b = _own(plain), _own(own)
        for f in ("kernel_map", "chi_jacobian", "chi_parallel", "chi_perp"):
            assert np.array_equal(getattr(a, f)(K, sw, sb), getattr(b, f)(K, sw, sb)), f
        assert b.caps.own_variances and not b.caps.single_dense


def test_dense_blocks_with_their_own_variances_against_a_hand_computation():
    """LN, Dense(a, network σ_b²), φ, Dense(b, c) inside a skip of strength μ: K' = μ²K + c +
    b E_q[φ²] and χ_J = μ² + a b E_q[φ'²]/K with q = a + σ_b² (LN output K = 1), the
    expectations by mpmath quadrature (an independent route)."""
    from critheory.blocks import Dense, LayerNorm, Phi, Residual
    from critheory.expectations.reference import mp_expect

    a_, b_, c_, mu, sb = 1.7, 0.6, 0.25, 0.8, 0.1
    maps = _own((Residual((LayerNorm(), Dense(weight_var=a_), Phi(),
                           Dense(weight_var=b_, bias_var=c_)), mu),))
    q = a_ + sb
    e2 = float(mp_expect(maps.activation, "phi2", q, dps=30))
    d2 = float(mp_expect(maps.activation, "dphi2", q, dps=30))
    K = np.array([0.5, 2.0])
    np.testing.assert_allclose(maps.kernel_map(K, 9.0, sb), mu ** 2 * K + c_ + b_ * e2,
                               rtol=1e-13)
    np.testing.assert_allclose(maps.chi_jacobian(K, 9.0, sb), mu ** 2 + a_ * b_ * d2 / K,
                               rtol=1e-13)


def test_mean_field_ignores_the_width_and_refuses_tokens():
    """Infinite width: a hidden layer of width M n maps as width n; T > 1 tokens and an
    attention block are refused in one line naming them."""
    from critheory.activation import Activation
    from critheory.blocks import Dense, Network, Phi, network

    act = Activation.get("tanh")
    wide = architecture(Network("w", act, (Phi(), Dense(width=3.0), Phi(), Dense())))
    plain = architecture(Network("p", act, (Phi(), Dense(), Phi(), Dense())))
    K = np.array([0.4, 1.5])
    for w, p in zip(wide.kernel_and_chi(K, 1.3, 0.1), plain.kernel_and_chi(K, 1.3, 0.1)):
        assert np.array_equal(w, p)
    with pytest.raises(InvalidArgumentError, match="mean-field theory follows one token.*T = 4"):
        architecture(network("mlp", "tanh", tokens=4))
    with pytest.raises(InvalidArgumentError,
                       match="mean-field theory has no rule for a 'attention' block"):
        architecture(network("transformer", "tanh", tokens=1))
