"""The double-exponential trapezoidal rules of critheory.expectations.de_quadrature (centred Gaussians).

Independent routes: closed forms (arc-cosine family, erf, sin/cos, Wick) of
critheory.expectations.closed_forms; the composite Gauss–Legendre / Gauss–Hermite rules of
critheory.expectations.quadrature (``de=False``), which share nothing with the DE rules but the integrand;
mpmath at 30 digits. Tolerances: 1e-13 relative (the rules' rtol) plus the two methods' own
error estimates; an estimate must bound the actual error up to the factor 10 used in
tests/test_gaussian.py (``_estimate_ok``).
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

from critheory.activation.symbolic import Activation
from critheory.expectations.closed_forms import closed_form_1d
from critheory.expectations.de_quadrature import expect_centered
from critheory.expectations.gaussian import expect, expect2
from critheory.expectations.integrands import integrand
from critheory.expectations.quadrature import expect_1d

EPS = np.finfo(float).eps
K_GRID = np.logspace(-4, 2, 13)


def _de(name, g, K):
    itg = integrand(Activation.get(name), g)
    return expect_centered(itg.numpy, np.sqrt(K), breakpoints=itg.breakpoints,
                           noise=itg.float64_noise, even=itg.even)


@pytest.mark.parametrize("name,g", [(n, g) for n in ("relu", "leaky_relu", "abs", "erf", "sin",
                                                     "cos", "linear", "hardtanh", "relu6")
                                    for g in ("phi2", "dphi2")])
def test_against_closed_forms(name, g):
    itg = integrand(Activation.get(name), g)
    cf = closed_form_1d(itg, K_GRID)
    assert cf is not None
    want, want_err = cf
    v, err, ok = _de(name, g, K_GRID)
    # the rule may decline to certify an entry (sin² at K = 100 oscillates ~35 times across the
    # window; hardtanh at K = 0.01 is a narrow Gaussian inside a tanh-sinh piece whose nodes
    # crowd at its ends): the composite rule takes those (test_expect_matches_closed_forms);
    # every certified entry keeps its promise
    assert ok.mean() >= 0.75
    diff = np.abs(v - want)[ok]
    want, want_err, err = want[ok], want_err[ok], err[ok]
    assert np.all(diff <= 1e-13 * np.abs(want) + want_err + 1e-300), (K_GRID, diff / np.abs(want))
    assert np.all(diff <= err + want_err + 4 * EPS * np.abs(want) + 1e-300)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu", "gelu_tanh", "swish",
                                  "mish", "softsign", "elu", "selu", "celu",
                                  "Piecewise((x, x > 0), (exp(x) - 1, True))", "x*erf(x)"])
@pytest.mark.parametrize("g", ["phi2", "dphi2", "phi_d2phi", "phi4"])
def test_against_classical_rules(name, g):
    """Same integrand, two unrelated rules: sinh/exp-exp/tanh-sinh trapezoids vs Gauss–Hermite
    and graded composite Gauss–Legendre."""
    itg = integrand(Activation.get(name), g)
    sd = np.sqrt(K_GRID)
    v, err, ok = _de(name, g, K_GRID)
    ref = expect_1d(itg.numpy, 0.0, sd, breakpoints=itg.breakpoints, growth=itg.growth,
                    de=False)
    assert ok.mean() >= 0.75   # declined entries go to the composite rule (see above)
    diff = np.abs(v - ref.value)[ok]
    scale = np.abs(ref.value)[ok]
    err = err[ok]
    ref = type(ref)(ref.value[ok], ref.error[ok], ref.method[ok])
    assert np.all(diff <= 1e-13 * scale + 10 * ref.error + 1e-300), diff / scale
    assert np.all(diff <= err + ref.error + 4 * EPS * scale + 1e-300)


@pytest.mark.parametrize("name", ["sin", "cos", "hardtanh", "relu6", "erf"])
@pytest.mark.parametrize("g", ["phi2", "dphi2"])
def test_expect_matches_closed_forms(name, g):
    """Through expect's quadrature (closed forms off), every entry the DE rule declines is
    taken by the composite rule, within the error bars of both routes."""
    itg = integrand(Activation.get(name), g)
    want, want_err = closed_form_1d(itg, K_GRID)
    r = expect_1d(itg.numpy, 0.0, np.sqrt(K_GRID), breakpoints=itg.breakpoints,
                  growth=itg.growth, noise=itg.float64_noise, even=itg.even)
    diff = np.abs(r.value - want)
    assert np.all(diff <= r.error + want_err + 4 * EPS * np.abs(want)), diff / r.error


def test_kink_off_zero_never_sampled():
    """Breakpoints split the line and no node lies on one: g is NaN exactly at its kink."""
    a = 1.0
    g = lambda x: np.where(x == a, np.nan, np.abs(x - a))  # noqa: E731
    sd = np.array([0.05, 0.2, 0.5, 3.0, 30.0])
    v, err, ok = expect_centered(g, sd, breakpoints=(a,))
    assert ok.all()
    # E|h - a| = σ √(2/π) e^{-a²/2σ²} + a (2Φ(a/σ) - 1), in mpmath
    want = [float(s * mpmath.sqrt(2 / mpmath.pi) * mpmath.exp(-a * a / (2 * s * s))
                  + a * mpmath.erf(a / (s * mpmath.sqrt(2)))) for s in sd]
    assert np.allclose(v, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("even", [False, True])
def test_shared_nodes_cost(even):
    """σ >= 1/4 share one set of nodes (g evaluated once for all of them); σ < 1/4 take the
    47-node plain trapezoid in z (step 0.4, |z| <= 9.5). Both node sets are symmetric: they are
    evaluated as the 24 (sinh: n) nodes z >= 0 (u >= 0) and their mirror images, which are
    skipped when g is declared even (else h and -h go to g in one call per pass). Count g's
    evaluations for tanh² on 20 variances."""
    n_eval = []

    def g(x):
        n_eval.append(np.size(x))
        return np.tanh(x) ** 2

    sd = np.sqrt(np.logspace(-4, 2, 20))
    v, err, ok = expect_centered(g, sd, even=even)
    assert ok.all()
    small = int(np.sum(sd < 0.25))
    # pass 0 only: nodes 0, 0.4, ..., 9.2 per small entry; one shared sinh grid
    # (0 <= u <= asinh(11σ_max) + 0.1, step 0.1) for the others
    umax = round(float(np.arcsinh(11 * sd.max())), 1) + 0.1
    shared = int(np.floor(umax / 0.1 + 1e-9)) + 1
    # pass 1 adds the odd multiples of the halved step: 0.2, 0.6, ..., 9.4 (24) and of 0.05
    odd = len([j for j in range(1, int(umax / 0.05 + 1e-9) + 1, 2)])
    # two passes each: the difference of levels τ/2 and τ/4 certifies tanh² at every σ (the
    # difference of the first two levels is its error estimate, see _accept)
    trap = [24 * small, 24 * small]
    sinh = [shared, odd]
    per_side = (trap + sinh) if even else [2 * n for n in trap + sinh]
    assert n_eval == per_side
    assert sum(n_eval) / sd.size < (30 if even else 60)     # evaluations of g per variance
    want = expect_centered(lambda x: np.tanh(x) ** 2, sd, even=not even)[0]
    assert np.allclose(v, want, rtol=4 * EPS, atol=0)


def test_close_singularity_falls_back(ref):
    """tanh(30x) has poles at ±iπ/60: the trapezoid would need tiny steps, so the composite rule
    takes over (and is right)."""
    r = expect("tanh(30*x)", "phi2", [0.01, 1.0, 100.0])
    assert set(r.methods) == {"gauss_legendre_composite"}
    want = float(ref("tanh(30*x)", "phi2", 1.0))   # expect(..., method="mpmath", dps=30), frozen
    assert abs(r.value[1] - want) <= 1e-12 * want


def test_float64_noise_model():
    """φφ'' of mish loses digits to cancellation for x > 3; the measured noise model bounds
    the actual float64 error at points it did not sample."""
    itg = integrand(Activation.get("mish"), "phi_d2phi")
    x = np.array([-9.3, -2.2, 0.37, 3.3, 7.3, 10.1, 15.5, 19.0])
    got = itg.numpy(x)
    with mpmath.workdps(30):
        exact = np.array([float(itg.mpmath(mpmath.mpf(t))) for t in x])
    bound = itg.float64_noise(x)
    assert np.all(np.abs(got - exact) <= bound)
    assert np.all(bound[x > 3] > 1e-15)   # cancellation: far above eps·|g|


def test_noise_in_error_estimate(ref):
    """E[mish·mish''] at K = 100 is limited by the float64 integrand (relative error ~1e-13,
    both rules); the estimate must say so, not 1e-16."""
    r = expect("mish", "phi_d2phi", 100.0)
    want = float(ref("mish", "phi_d2phi", 100.0))
    assert abs(r.value - want) <= 1e-12 * abs(want)
    assert abs(r.value - want) <= 10 * r.error + 4 * EPS * abs(want)


def test_two_point_tiny_correlation():
    """Regression: E[tanh(h1) tanh(h2)] at ρ = 2.1e-11 raised ConvergenceError (relative
    accuracy asked of a value 1e-11 of the integrand's size). To first order in ρ it is
    ρ E[tanh'(h)]², accurate to 1e-14 of the Cauchy–Schwarz scale E[tanh²]."""
    rho = 2.1244250406195955e-11
    r = expect2("tanh", "phi", "phi", 1.0, rho, 1.0)
    d = expect("tanh", "dphi", 1.0).value
    cs = expect("tanh", "phi2", 1.0).value
    assert abs(r.value - rho * d * d) <= 1e-14 * cs


@pytest.mark.parametrize("name,g,even", [
    ("tanh", "phi2", True), ("softsign", "phi2", True), ("erf", "phi_d2phi", True),
    ("sigmoid", "dphi2", True),          # exp(-x)/(1 + exp(-x))**2: even after simplify
    ("softsign", "phi_d2phi", True),
    ("sigmoid", "phi2", False), ("relu", "phi2", False), ("gelu", "dphi2", False),
    ("tanh(x)**2 + 1e-20*x**3", "phi", False),   # numerically even on sample points, not even
])
def test_even_is_proven(name, g, even):
    """``Integrand.even`` (which lets the rules skip the nodes -h) is claimed only when sympy
    proves g(-x) = g(x)."""
    itg = integrand(Activation.get(name), g)
    assert itg.even is even
    if even:
        x = np.linspace(0.03, 30.0, 50)
        assert np.allclose(itg.numpy(-x), itg.numpy(x), rtol=1e-13, atol=1e-300)


def test_odd_is_proven():
    """E[g] = 0 by symmetry only for a proven odd g: tanh(x) + 1e-20 is odd to 1e-14 on every
    sample point of the numerical check, and its mean is 1e-20, not 0."""
    assert integrand(Activation.get("tanh"), "phi").parity == "odd"
    itg = integrand(Activation.get("tanh(x) + 1e-20"), "phi")
    assert itg.parity == "none"
    r = expect("tanh(x) + 1e-20", "phi", [0.5, 2.0])
    assert "symmetry" not in r.method
    assert np.all(np.abs(r.value - 1e-20) <= r.error)


def test_even_fold_against_both_sides():
    """Folding with even=True equals evaluating both mirror nodes, on every layout (z rule,
    shared sinh nodes, exp-exp at a kink at 0)."""
    sd = np.sqrt(np.logspace(-4, 2, 25))
    for name in ("tanh", "softsign"):
        itg = integrand(Activation.get(name), "phi2")
        a = expect_centered(itg.numpy, sd, breakpoints=itg.breakpoints, even=True)
        b = expect_centered(itg.numpy, sd, breakpoints=itg.breakpoints, even=False)
        assert a[2].all() and b[2].all()
        assert np.allclose(a[0], b[0], rtol=8 * EPS, atol=0)


def test_gaussian_average_of_noise_model():
    """``Float64Noise.gaussian(σ)`` (exact per-octave sums, tabulated on σ = 2^(j/4)) against a
    fine trapezoidal average of the pointwise model: an upper estimate, within the change of
    the average over a quarter octave of σ."""
    itg = integrand(Activation.get("mish"), "phi_d2phi")
    nz = itg.float64_noise
    z = np.linspace(-12.0, 12.0, 240001)
    w = np.exp(-0.5 * z * z) * (z[1] - z[0]) / np.sqrt(2 * np.pi)
    sd = np.array([1e-3, 0.05, 0.3, 1.0, 2.7, 10.0, 100.0])
    got = nz.gaussian(sd)
    direct = np.array([nz(s * z) @ w for s in sd])
    quarter = np.array([[nz(s * f * z) @ w for f in (2 ** -0.25, 2 ** 0.25)] for s in sd])
    assert np.all(got >= direct * (1 - 1e-3))
    assert np.all(got <= np.maximum(direct, quarter.max(axis=1)) * (1 + 1e-3))


def test_pointwise_noise_callable():
    """A plain noise(x) callable (no ``gaussian``) is averaged by a z trapezoid and bounds the
    reported error from below."""
    v, err, ok = expect_centered(np.tanh, np.array([0.1, 1.0, 10.0]),
                                 noise=lambda x: np.full(np.shape(x), 1e-10))
    assert ok.all()
    assert np.allclose(err, 1e-10, rtol=1e-6)


# --------------------------------------------------------------- the uniform trapezoidal rule
# issue 32: a formula that oscillates across a wide Gaussian (tanh(sin x) at K >= 3) failed
# the sinh rule (its nodes spread as τ|h|) and went to the composite Gauss–Legendre rule, whose
# cost grows with the window; the plain trapezoidal rule with shared nodes takes those entries.
_OSC = ["tanh(sin(x))", "sin(erf(sin(x + 0.3)))", "x*tanh(cos(x))", "cos(3*x)*exp(-x**2/50)",
        "sin(0.561*x)**3 + 0.2*x"]


def _mp_ref(formula: str, g: str, K: float) -> float:
    return float(expect(formula, g, K, method="mpmath", dps=30).value)


@pytest.mark.parametrize("formula", _OSC)
def test_uniform_rule_bounds_its_error(formula):
    """The rule alone (every entry it accepts), against 30-digit mpmath references: the
    reported error bounds the true one."""
    from critheory.expectations import de_quadrature as DQ

    act = Activation.get(formula)
    sd = np.array([1.0, 1.7, 3.0, 5.5, 10.0])
    for g in ("phi2", "dphi2", "phi"):
        f = integrand(act, g).numpy
        v, e, ok = DQ._uniform(f, np.zeros(sd.size), sd, 1e-13, False)
        assert ok[sd >= 3.0].all(), (formula, g, ok)
        for s, val, err in zip(sd[ok], v[ok], e[ok]):
            ref = _mp_ref(formula, g, s * s)
            assert abs(val - ref) <= err + 1e-300, (formula, g, s, val, ref, err)


def test_uniform_rule_refuses_a_kink_it_cannot_see():
    """A kink not declared (|x| written as sqrt(x²) is smooth to sympy but not analytic):
    the levels disagree at every step down to the finest, so the rule does not accept — the
    composite rule with its panels takes over."""
    from critheory.expectations import de_quadrature as DQ

    v, e, ok = DQ._uniform(lambda x: np.abs(np.sin(x)), np.zeros(2), np.array([3.0, 10.0]),
                           1e-13, True)
    assert not ok.any()


def test_oscillating_composites_take_the_uniform_rule():
    """tanh(sin x)² on a wide grid of K: every entry of the centred rules converges (no
    composite Gauss–Legendre fallback), each within its error of mpmath at a few K."""
    Ks = np.logspace(-4, 2, 25)
    r = expect("tanh(sin(x))", "phi2", Ks)
    assert set(r.methods.tolist()) == {"double_exponential"}
    for i in (14, 20, 24):
        ref = _mp_ref("tanh(sin(x))", "phi2", Ks[i])
        assert abs(r.value[i] - ref) <= r.error[i]


# ------------------------------------------- issue 32: oscillating formulas routed to the uniform rule
@pytest.mark.parametrize("formula,osc", [
    ("tanh(sin(x))", True), ("sin(erf(sin(x + 0.3)))", True), ("x*tanh(cos(x))", True),
    ("sin(0.1*x)", True),            # one period over |x| <= 63, but a wide Gaussian sweeps it
    ("sin(erf(x))", False), ("cos(1/(1 + x**2))", False), ("tanh", False), ("gelu", False),
    ("Max(0.5*x, tanh(2*x - 1))", False),
])
def test_features_say_which_formulas_oscillate(formula, osc):
    """Features.oscillates: a periodic function of an argument that sweeps more than a period
    (an unbounded polynomial, or a range > 2π on |x| <= 8); bounded arguments do not count.
    It survives the zoo cache's round trip (to_data)."""
    from critheory.activation.features import Features, features

    f = features(Activation.get(formula).expr)
    assert f.oscillates is osc
    assert Features(*f.to_data()) == f
    assert Features(*f.to_data()[:3]).oscillates is False      # an older cache entry


_OSC_SD = np.array([0.25, 0.3, 0.45, 0.7, 0.99, 1.4, 4.0, 10.0])


@pytest.mark.parametrize("formula", ["tanh(sin(x))", "sin(erf(sin(x + 0.3)))",
                                     "x*tanh(cos(x))", "sin(0.561*x)**3 + 0.2*x"])
def test_oscillating_route_bounds_its_error(formula, monkeypatch):
    """With ``oscillating=True`` every σ >= 1/4 goes to the uniform rule first — down to
    σ = 1/4, where the Gaussian itself is resolved only from τ = 0.1 on (its trapezoid error
    ~e^{-2π²(σ/τ)²} is 4e-14 at τ = 0.2). Each reported error must bound the distance to
    30-digit mpmath, and the sinh rule must not have been tried for those entries."""
    from critheory.expectations import de_quadrature as DQ

    itg_act = Activation.get(formula)
    seen = []
    orig = DQ._group
    monkeypatch.setattr(DQ, "_group", lambda g, qn, sd, *a: seen.append(sd.copy())
                        or orig(g, qn, sd, *a))
    for g in ("phi2", "dphi2", "phi"):
        itg = integrand(itg_act, g)
        if itg.parity == "odd":
            continue
        seen.clear()
        v, e, ok = expect_centered(itg.numpy, _OSC_SD, breakpoints=itg.breakpoints,
                                   noise=itg.float64_noise, even=itg.even, oscillating=True)
        assert ok.all(), (formula, g)
        assert not seen, (formula, g, seen)           # no sinh pass for these σ
        for s, val, err in zip(_OSC_SD, v, e):
            ref = _mp_ref(formula, g, s * s)
            assert abs(val - ref) <= err + 1e-300, (formula, g, s, val, ref, err)
            assert err <= 1e-12 * max(abs(ref), 1e-300) + 1e-14


def test_expect_routes_by_the_feature():
    """expect() passes the activation's Features.oscillates to the centred rules: tanh(sin x)
    at σ in [1/4, 1) takes the uniform rule (as many g evaluations as its nodes, shared by the
    entries), tanh does not."""
    from critheory.expectations import de_quadrature as DQ

    calls = []
    orig = DQ._uniform

    def spy(*a):
        calls.append(a[2].size)
        return orig(*a)

    DQ._uniform, saved = spy, DQ._uniform
    try:
        Ks = np.array([0.09, 0.25, 0.6])
        expect("tanh(sin(x))", "phi2", Ks)
        assert calls == [3]
        calls.clear()
        expect("tanh", "phi2", Ks)
        assert calls == []
    finally:
        DQ._uniform = saved


def test_uniform_weight_blocks_cover_every_window():
    """The uniform rule's weight matrix in row blocks: the blocks partition the rows, each as
    wide as the widest window of its rows (no node inside a window is left out), and a spread
    of σ over two decades gives several blocks (so the test below exercises them)."""
    from critheory.expectations import de_quadrature as DQ

    sd = np.sort(np.geomspace(0.25, 30.0, 40))[::-1]
    H = np.arange(0, int(11 * sd[0] / 0.1) + 1) * 0.1
    ncol = np.searchsorted(H, 11 * sd, side="right")
    blocks = DQ._weight_blocks(ncol)
    assert len(blocks) >= 3
    assert blocks[0][0] == 0 and blocks[-1][1] == sd.size
    for (a0, a1, c), (b0, _, _) in zip(blocks, blocks[1:] + [[sd.size, 0, 0]]):
        assert a1 == b0 and c >= ncol[a0:a1].max()


def test_uniform_rule_with_blocks_against_mpmath():
    """Entries σ = 1/4 … 30 (several weight blocks, the small σ far below the widest window)
    against 30-digit mpmath: the columns a block leaves out (beyond its rows' windows) must
    not bias any entry beyond its reported error."""
    from critheory.expectations import de_quadrature as DQ

    formula = "tanh(sin(x))"
    sd = np.array([0.25, 0.6, 1.5, 4.0, 11.0, 30.0])
    f = integrand(Activation.get(formula), "dphi2").numpy
    v, e, ok = DQ._uniform(f, np.zeros(sd.size), sd, 1e-13, True)
    assert ok.all()
    for s, val, err in zip(sd, v, e):
        ref = _mp_ref(formula, "dphi2", s * s)
        assert abs(val - ref) <= err + 1e-300, (s, val, ref, err)


def test_one_call_of_g_per_pass_across_pieces():
    """Three breakpoints (Max(0.5x, tanh(2x - 1)): kinks where the branches cross, found
    numerically): the four pieces of a pass go to g in one call, and every entry — small σ
    with some breakpoints out of its window, wide σ with all — stays within its error of
    30-digit mpmath."""
    formula = "Max(0.5*x, tanh(2*x - 1))"
    itg = integrand(Activation.get(formula), "phi2")
    assert len(itg.breakpoints) == 3
    calls = []

    def g(x):
        calls.append(np.shape(x))
        return itg.numpy(x)

    sd = np.array([0.3, 1.0, 3.0])
    v, e, ok = expect_centered(g, sd, breakpoints=itg.breakpoints, noise=itg.float64_noise)
    assert ok.all()
    assert all(len(c) == 1 for c in calls) and len(calls) <= 3      # one per pass
    Ks = np.array([0.002, 0.03, 0.09, 0.5, 2.0, 30.0])
    r = expect(formula, "phi2", Ks)
    assert set(r.methods.tolist()) == {"double_exponential"}
    for K, val, err in zip(Ks, r.value, r.error):
        ref = _mp_ref(formula, "phi2", K)
        assert abs(val - ref) <= err + 1e-300, (K, val, ref, err)


def test_uniform_rule_under_its_node_budget():
    """σ = 548 … 1000 (K = 3e5 … 1e6): the finest level of the uniform rule's first pass
    (step 0.1) would exceed its node budget, so that pass takes the coarser levels only, which
    converge there (the Gaussian averages the oscillation out). A 2π-periodic g has
    E_K[g] = its mean over a period up to Fourier terms ~e^{-K/2}: 30-digit mpmath on one
    period is the reference."""
    with mpmath.workdps(30):
        mean = mpmath.quad(lambda t: mpmath.tanh(mpmath.sin(t)) ** 2,
                           [0, mpmath.pi / 2, mpmath.pi, 3 * mpmath.pi / 2, 2 * mpmath.pi])
        ref = float(mean / (2 * mpmath.pi))
    r = expect("tanh(sin(x))", "phi2", [3e5, 5e5, 1e6])
    assert set(r.methods.tolist()) == {"double_exponential"}
    assert np.all(np.abs(r.value - ref) <= r.error)
    assert np.all(r.error < 1e-13 * ref)


@pytest.mark.parametrize("formula", ["Min(1, Max(-1, 3*x - 0.2))", "Max(0.5*x, tanh(2*x - 1))",
                                     "Abs(x - 0.05)*tanh(x)"])
def test_small_sigma_kinks_off_zero_share_a_scale(formula, monkeypatch):
    """σ < 1/4 with breakpoints off 0 in the window: the entries share the scale s = their
    smallest σ within a factor 4 (nodes shared, g evaluated once per pass for the group)
    instead of per-entry nodes σ·t(u). s <= σ keeps the nodes as fine relative to each
    Gaussian; every entry (σ = 0.012 … 0.24, several shared-scale groups) stays within its
    reported error of 30-digit mpmath."""
    from critheory.expectations import de_quadrature as DQ

    scales = []
    orig = DQ._group
    monkeypatch.setattr(DQ, "_group", lambda g, qn, sd, bps, rtol, even, scale=None:
                        scales.append((sd.min(), sd.max(), scale))
                        or orig(g, qn, sd, bps, rtol, even, scale))
    Ks = np.geomspace(1.5e-4, 0.058, 9)
    for g in ("phi2", "dphi2"):
        scales.clear()
        r = expect(formula, g, Ks, method="quadrature")     # (no closed form taken)
        assert set(r.methods.tolist()) == {"double_exponential"}, (formula, g, r.methods)
        shared = [(lo, hi, s) for lo, hi, s in scales if s is not None]
        assert all(s == lo and hi <= 4 * lo for lo, hi, s in shared)
        for K, val, err in zip(Ks, r.value, r.error):
            ref = _mp_ref(formula, g, K)
            assert abs(val - ref) <= err + 1e-300, (formula, g, K, val, ref, err)
    assert shared, "no shared-scale group was formed"
