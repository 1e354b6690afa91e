"""The neural covariance SDE of shaped networks [LNR, arXiv:2206.02768]: drift against exact
two-point expectations, Itô's formula, exact ODE solutions, Euler–Maruyama against the
Fokker–Planck solver (and its weak convergence), and the theory against finite shaped networks.

Tolerances come from sample sizes: z-scores with the Monte Carlo standard errors (|z| < 4, a
false alarm ~6e-5 per comparison) and KS tests at p > 1e-3."""
import json
import math

import numpy as np
import pytest
import sympy as sp

from critheory.activation import Activation
from critheory.cli.main import main
from critheory.errors import ActivationError, InvalidArgumentError
from critheory.expectations.gaussian import expect, expect2
from critheory.simulation.shaped import simulate_shaped
from critheory.theory.shaped import (drift, drift_symbolic, fokker_planck, integrate, norm_ode,
                                     nu, rho_diffusion, rho_drift, rho_ode, shape_relu,
                                     shape_smooth, solve_sde, stability, start_matrix)

Z = 4.0


# ---------------------------------------------------------------- drift and diffusion
@pytest.mark.parametrize("cp,cm", [(0.0, -1.0), (0.5, -0.7)])
def test_relu_drift_is_limit_of_exact_kernel_map(cp, cm):
    """n (c E[φ_s φ_s] − V_ab) → b_ab, with an O(1/√n) gap (exact quadrature at n = 1e4, 1e6)."""
    s = shape_relu(cp, cm)
    V = np.array([[1.3, 0.4], [0.4, 0.8]])
    gaps = []
    for n in (1e4, 1e6):
        sp_, sm = s.slopes(n)
        act = f"{sp_!r}*Max(x,0) + {sm!r}*Min(x,0)"
        c = 1 / expect(act, "phi2", 1.0).value
        e = expect2(act, "phi", "phi", V[0, 0], V[0, 1], V[1, 1]).value
        gaps.append(abs(n * (c * e - V[0, 1]) - drift(s, V)[0, 1]))
    assert gaps[1] < 0.2 * gaps[0] and gaps[1] < 2e-3 * abs(drift(s, V)[0, 1])


@pytest.mark.parametrize("act", ["tanh", "sin(x)", "x + x**2/2 - x**3/3", "x*exp(-x**2/10)"])
def test_smooth_drift_is_limit_of_exact_kernel_map(act):
    s = shape_smooth(act, a=0.7)
    V = np.array([[1.3, 0.4], [0.4, 0.8]])
    b = drift(s, V)
    for (i, j) in ((0, 1), (0, 0), (1, 1)):
        gaps = []
        for n in (1e4, 1e6):
            sc = s.scale(n)
            (x,) = s.activation.expr.free_symbols
            a = Activation.from_expr(sc * s.activation.expr.subs(x, x / sc))
            c = 1 / expect(a, "phi2", 1.0).value
            e = expect2(a, "phi", "phi", V[i, i], V[i, j], V[j, j]).value
            gaps.append(abs(n * (c * e - V[i, j]) - b[i, j]))
        assert gaps[1] < 1e-3 * max(1.0, abs(b[i, j])), (i, j, gaps)


@pytest.mark.parametrize("act", ["tanh", "sin(x)", "x + x**2", "x*exp(-x**2/10)"])
def test_symbolic_drift_matches_closed_form(act):
    s = shape_smooth(act, 1.0)
    Vaa, Vbb, Vab, a = sp.symbols("Vaa Vbb Vab a")
    s2, s3 = sp.sympify(s.sigma2_exact), sp.sympify(s.sigma3_exact)
    ref = s2 ** 2 / (4 * a ** 2) * (Vaa * Vbb + Vab * (2 * Vab - 3)) \
        + s3 / (2 * a ** 2) * Vab * (Vaa + Vbb - 2)
    assert sp.simplify(drift_symbolic(s) - ref) == 0


def test_correlation_sde_is_ito_of_covariance_sde():
    """Drift and diffusion of ρ = V12/√(V11 V22) by Itô's formula, with numerical derivatives."""
    s = shape_relu(0.3, -0.9)
    for rho in (-0.8, -0.1, 0.4, 0.95):
        v = np.array([1.0, rho, 1.0])  # V11, V12, V22

        def f(v):
            return v[1] / math.sqrt(v[0] * v[2])
        h = 1e-4
        grad = np.zeros(3)
        hess = np.zeros((3, 3))
        for i in range(3):
            e = np.eye(3)[i] * h
            grad[i] = (f(v + e) - f(v - e)) / (2 * h)
            for j in range(3):
                e2 = np.eye(3)[j] * h
                hess[i, j] = (f(v + e + e2) - f(v + e - e2) - f(v - e + e2) + f(v - e - e2)) \
                    / (4 * h * h)
        V = np.array([[1.0, rho], [rho, 1.0]])
        idx = [(0, 0), (0, 1), (1, 1)]
        cov = np.array([[V[a, c] * V[b, d] + V[a, d] * V[b, c] for (c, d) in idx]
                        for (a, b) in idx])
        bv = drift(s, V)
        b = np.array([bv[0, 0], bv[0, 1], bv[1, 1]])
        mu = grad @ b + 0.5 * np.sum(hess * cov)
        var = grad @ cov @ grad
        assert abs(mu - rho_drift(s, rho)) < 1e-6
        assert abs(math.sqrt(var) - rho_diffusion(rho)) < 1e-6


def test_nu_values():
    s = shape_relu(1.0, -1.0)   # k = 4
    assert abs(nu(s, -1.0) - 4 * math.pi / (2 * math.pi)) < 1e-14
    assert nu(s, 1.0) == 0.0
    r = 1 - 1e-6   # ν ~ k (2√2/3)(1 − ρ)^{3/2}/(2π): no cancellation
    assert abs(nu(s, r) / (4 * 2 * math.sqrt(2) / 3 * 1e-9 / (2 * math.pi)) - 1) < 1e-5


def test_stability_verdicts():
    assert stability(shape_smooth("tanh", 1.0)).B == -2.0
    assert stability(shape_smooth("tanh", 1.0)).verdict == "stable"
    assert stability(shape_smooth("sin(x)", 1.0)).B == -1.0
    st = stability(shape_smooth("x + x**2", 1.0))
    assert (st.B, st.verdict) == (3.0, "blows_up")
    assert stability(shape_relu(0, -1)).verdict == "stable"


def test_normalization_offered_and_refused():
    with pytest.raises(ActivationError, match="φ\\(0\\) = 0"):
        shape_smooth("sigmoid", 1.0)
    s = shape_smooth("sigmoid", 1.0, normalize=True)
    assert s.note and float(s.activation(0.0)) == 0.0
    with pytest.raises(ActivationError):
        shape_smooth("relu", 1.0)          # kink at 0
    with pytest.raises(ActivationError):
        shape_relu(0, -1, activation=Activation.get("tanh"))


# ---------------------------------------------------------------- exact solutions
def test_rho_ode_exact_against_rk4():
    s = shape_relu(0.5, -1.5)
    for rho0, T in ((0.5, 1.0), (-0.9, 0.3), (0.0, 2.0)):
        r, n = rho0, 4000
        h = T / n
        for _ in range(n):
            k1 = nu(s, r)
            k2 = nu(s, r + h / 2 * k1)
            k3 = nu(s, r + h / 2 * k2)
            k4 = nu(s, r + h * k3)
            r = r + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        assert abs(rho_ode(s, rho0, T) - r) < 1e-9


def test_norm_ode_exact_and_blowup():
    s = shape_smooth("tanh", 0.8)
    V, n, T = 2.0, 4000, 1.0
    h = T / n
    for _ in range(n):
        V = V + h * (s.B / s.a ** 2) * V * (V - 1)   # Euler, O(h)
    assert abs(norm_ode(s, 2.0, T) - V) < 1e-3
    b = shape_smooth("x + x**2", 1.0)   # B = 3: V0 = 2 blows up at t* = log 2 / 3
    assert math.isinf(norm_ode(b, 2.0, 0.25))
    assert math.isfinite(norm_ode(b, 2.0, 0.2))


def test_log_norm_is_geometric_brownian_motion():
    """ReLU shaping: log V11 ~ N(−T, 2T) exactly; the EM and finite networks agree."""
    s = shape_relu(0, -1)
    p = integrate(s, 0.5, start_matrix(0.5), paths=20000, steps=200, seed=3)
    lv = np.log(p.V[:, 0, 0])
    se_m = math.sqrt(1.0 / lv.size)
    assert abs(lv.mean() + 0.5) < Z * se_m + 2e-3   # + the EM bias (~dt)
    assert abs(lv.var() - 1.0) < Z * math.sqrt(2.0 / lv.size) * 1.0 + 1e-2


# ---------------------------------------------------------------- EM vs PDE
def test_fokker_planck_converges():
    s = shape_relu(0, -1)
    a = fokker_planck(s, 1.0, 0.5, cells=600, steps=200)
    b = fokker_planck(s, 1.0, 0.5, cells=2400, steps=800)
    assert abs(a.rho_mean - b.rho_mean) <= 3 * a.error + 1e-9
    assert b.error < 1e-5
    assert abs(float(b.cdf(1.0 - 1e-15)) - 1) < 1e-12


@pytest.mark.parametrize("cp,cm,rho0,T", [(0, -1, 0.5, 1.0), (1.0, -1.0, -0.3, 0.5)])
def test_em_agrees_with_fokker_planck(cp, cm, rho0, T):
    s = shape_relu(cp, cm)
    law = fokker_planck(s, T, rho0)
    p = integrate(s, T, start_matrix(rho0), paths=40000, steps=200, seed=1)
    assert abs(p.rho_mean - law.rho_mean) < Z * p.error + law.error
    sd = np.std(p.rho, ddof=1)
    se_sd = sd / math.sqrt(2 * p.rho.size)
    bias_sd = abs(np.std(p.rho_coarse, ddof=1) - sd)
    assert abs(sd - law.rho_std) < Z * se_sd + 2 * bias_sd
    from scipy import stats

    # the KS test needs the step bias to be below its resolution: dt = T/200 (checked)
    assert stats.kstest(p.rho, law.cdf).pvalue > 1e-3 or bias_sd > 1e-3


def test_em_weak_convergence_in_step_size():
    """The step-bias estimate (coarse − fine on the same paths) halves with dt (weak order 1),
    and the error bar of a coarse run covers its actual error against Fokker–Planck."""
    s = shape_relu(0, -1)
    law = fokker_planck(s, 2.0, 0.3)
    diffs = []
    for steps in (10, 20, 40):
        p = integrate(s, 2.0, start_matrix(0.3), paths=30000, steps=steps, seed=5)
        diffs.append(float(np.mean(p.rho_coarse) - p.rho_mean))
        assert abs(p.rho_mean - law.rho_mean) <= 3 * p.error + law.error
    assert diffs[0] > diffs[1] > diffs[2] > 0
    assert 1.4 < diffs[0] / diffs[1] < 3.2 and 1.4 < diffs[1] / diffs[2] < 3.2


@pytest.mark.parametrize("T", [10.0, 30.0, 100.0])
def test_em_agrees_with_fokker_planck_at_large_T(T):
    """Regression (issue 31): EM collapsed at large T (200 steps whatever T, norms as a
    geometric Brownian motion taken negative by the additive step: ρ_T = 0 ± 0 at T = 100).
    The steps are now chosen from the problem, the step is multiplicative, and the reported
    errors cover the difference from the PDE."""
    s = shape_relu(0, -1)
    pde = solve_sde(s, T, 0.3, method="pde")
    em = solve_sde(s, T, 0.3, paths=3000, seed=3)
    assert em.details["step_bias_ok"] and em.details["steps"] >= T / 0.05
    assert abs(em.rho_mean - pde.rho_mean) <= 3 * em.error + pde.error
    assert em.details["projected_fraction"] == 0.0 and not em.warnings
    for q, v in pde.rho_quantiles.items():
        assert abs(em.rho_quantiles[q] - v) <= 3 * em.quantile_errors[q] + pde.quantile_errors[q] + 1e-12


def test_em_step_bias_flags_a_too_coarse_step():
    """A deliberately coarse given step: the Richardson estimate fails the tolerance, says so,
    and the error bar (dominated by it) still covers the PDE value; the automatic choice
    refines until it passes."""
    s = shape_relu(0, -1)
    pde = solve_sde(s, 10.0, 0.3, method="pde")
    # dt = 0.25: in the weak-order regime, the estimate is large and fails the tolerance
    bad = solve_sde(s, 10.0, 0.3, paths=3000, steps=40, seed=1)
    assert not bad.details["step_bias_ok"] and bad.details["step_bias"] > 0.01
    assert any("step bias" in w for w in bad.warnings)
    assert abs(bad.rho_mean - pde.rho_mean) <= 3 * bad.error
    # dt = 1: both runs saturate (their difference is small), which the regime check catches
    worse = solve_sde(s, 10.0, 0.3, paths=3000, steps=10, seed=1)
    assert not worse.details["step_bias_ok"]
    assert any("outside the range" in w for w in worse.warnings)
    good = solve_sde(s, 10.0, 0.3, paths=3000, seed=1)
    assert good.details["step_bias_ok"] and good.details["steps"] > 10


def test_em_quantile_error_bars_cover():
    """Order-statistic error bars of the EM quantiles cover the Fokker–Planck quantiles."""
    s = shape_relu(0, -1)
    pde = solve_sde(s, 1.0, 0.5, method="pde")
    em = solve_sde(s, 1.0, 0.5, paths=4000, seed=2)
    for q, v in pde.rho_quantiles.items():
        e = em.quantile_errors[q]
        assert 0 < e < 0.05
        assert abs(em.rho_quantiles[q] - v) <= 3 * e + pde.quantile_errors[q]


def test_em_warns_on_psd_projections():
    """Smooth shaping at a coarse given step: the PSD projection of the explicit drift is
    needed for a material fraction of steps, and that is a warning (text and JSON)."""
    r = solve_sde(shape_smooth("tanh", 1.0), 2.0, 0.3, paths=2000, steps=10, seed=0)
    assert r.details["projected_fraction"] > 0.01
    assert any("positive semidefinite" in w for w in r.to_dict()["warnings"])
    auto = solve_sde(shape_smooth("tanh", 1.0), 2.0, 0.3, paths=2000, seed=0)
    assert auto.details["projected_fraction"] <= 1e-3 or auto.warnings


@pytest.mark.parametrize("flag", ["--c-plus=1e300", "--c-plus=1e308", "--c-minus=-1e300",
                                  "--c-minus=1e308"])
def test_sde_refuses_huge_shaping_constants(flag, capsys):
    """Regression (issue 31): --c-plus 1e300 overflowed (exit 3)."""
    assert main(["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.3", flag]) == 2
    assert "beyond" in capsys.readouterr().err


def test_sde_refuses_beyond_the_step_budget(capsys):
    """A problem whose chosen steps exceed the budget is refused before any work."""
    assert main(["sde", "relu", "--shape", "relu", "--T", "1e4", "--rho0", "0.3"]) == 2
    assert "budget" in capsys.readouterr().err


def test_em_many_inputs_positive_semidefinite():
    s = shape_smooth("tanh", 1.0)
    p = integrate(s, 0.5, start_matrix(0.2, 3), paths=2000, steps=50, seed=0)
    assert np.all(np.linalg.eigvalsh(p.V) >= -1e-12)
    assert p.V.shape == (2000, 3, 3)


def test_sde_collapses_to_ode_without_noise_limit():
    """Small T: (E[ρ_T] − ρ_ode(T))/T → −ρ0(1 − ρ0²)/2 (the Itô term), with an O(T) gap."""
    s = shape_relu(0, -1)
    slope_ito = -0.5 * 0.5 * (1 - 0.25)
    gaps = []
    for T in (0.025, 0.05, 0.1):
        law = fokker_planck(s, T, 0.5)
        gaps.append(abs((law.rho_mean - rho_ode(s, 0.5, T)) / T - slope_ito))
        assert gaps[-1] < 0.5 * T
    assert gaps[0] < gaps[1] < gaps[2]


def test_inputs_refused():
    s = shape_relu(0, -1)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidArgumentError):
            solve_sde(s, bad, 0.5)
    with pytest.raises(InvalidArgumentError):
        solve_sde(s, 1.0, 1.5)
    with pytest.raises(InvalidArgumentError):
        solve_sde(shape_smooth("tanh", 1.0), 1.0, 0.5, method="pde")
    with pytest.raises(InvalidArgumentError):
        start_matrix(-0.9, 3)
    with pytest.raises(InvalidArgumentError):
        integrate(s, 1.0, start_matrix(0.5), paths=10 ** 9, steps=100)


# ---------------------------------------------------------------- finite networks
def _z_checks(meas, law_mean, law_std, law_err, law_cdf=None, samples=None):
    from scipy import stats

    r = meas.rho
    se = np.std(r, ddof=1) / math.sqrt(r.size)
    se_sd = np.std(r, ddof=1) / math.sqrt(2 * r.size) * 1.5   # ρ is not Gaussian: margin 1.5
    z_mean = (r.mean() - law_mean) / math.hypot(se, law_err)
    z_sd = (np.std(r, ddof=1) - law_std) / se_sd
    p = stats.kstest(r, law_cdf).pvalue if law_cdf is not None else \
        stats.ks_2samp(r, samples).pvalue
    return z_mean, z_sd, p


@pytest.mark.parametrize("width", [32, 64])
def test_shaped_relu_networks_follow_the_sde(width):
    s = shape_relu(0, -1)
    law = fokker_planck(s, 1.0, 0.5)
    m = simulate_shaped("relu", width=width, T=1.0, rho0=0.5, c_plus=0, c_minus=-1,
                        networks=3000, seed=width)
    z_mean, z_sd, p = _z_checks(m, law.rho_mean, law.rho_std, law.error, law_cdf=law.cdf)
    assert abs(z_mean) < Z and abs(z_sd) < Z and p > 1e-3, (z_mean, z_sd, p)
    lv = m.log_norm   # log V11 → N(−T, 2T)
    assert abs(lv.mean() + 1.0) < Z * math.sqrt(2.0 / lv.size) + 0.5 / math.sqrt(width)


@pytest.mark.slow
def test_shaped_relu_networks_width_128():
    s = shape_relu(0.5, -0.5)
    law = fokker_planck(s, 1.0, 0.2)
    m = simulate_shaped("relu", width=128, T=1.0, rho0=0.2, c_plus=0.5, c_minus=-0.5,
                        networks=6000, seed=7)
    z_mean, z_sd, p = _z_checks(m, law.rho_mean, law.rho_std, law.error, law_cdf=law.cdf)
    assert abs(z_mean) < Z and abs(z_sd) < Z and p > 1e-3


def test_smooth_tanh_networks_follow_the_sde():
    s = shape_smooth("tanh", 1.0)
    res = solve_sde(s, 1.0, 0.3, paths=20000, steps=200, seed=2)
    m = simulate_shaped("tanh", width=64, T=1.0, rho0=0.3, a=1.0, networks=3000, seed=11)
    z_mean, z_sd, p = _z_checks(m, res.rho_mean, res.rho_std, res.error,
                                samples=res.solution.rho)
    assert abs(z_mean) < Z and abs(z_sd) < Z and p > 1e-3, (z_mean, z_sd, p)


def test_dense_weights_and_row_sampler_agree():
    from scipy import stats

    kw = dict(width=16, T=1.0, rho0=0.5, c_plus=0, c_minus=-1, networks=1500)
    a = simulate_shaped("relu", seed=1, **kw)
    b = simulate_shaped("relu", seed=2, dense=True, **kw)
    assert stats.ks_2samp(a.rho, b.rho).pvalue > 1e-3
    assert stats.ks_2samp(a.log_norm, b.log_norm).pvalue > 1e-3


@pytest.mark.parametrize("dense", [False, True])
def test_shaped_layers_run_through_the_one_interpreter(monkeypatch, dense):
    """Issue 27: the shaped MLP is stated as blocks (``Phi -> Dense(σ_w² = c, no bias)``) and
    each layer runs through the simulator's one interpreter (every step counted), with the
    random streams of a direct loop: the inputs from ``default_rng(seed)``, then per layer one
    full W (``dense``) or one n×m Gaussian matrix of the row sampler. The dense path is checked
    bit for bit against that loop written out here."""
    from critheory.blocks import Dense, Phi
    from critheory.simulation import interpreter
    from critheory.simulation.shaped import shaped_unit

    calls = {"phi": 0, "dense": 0}
    for kind in calls:
        def counted(*a, _step=interpreter.STEPS[kind], _kind=kind, **k):
            calls[_kind] += 1
            return _step(*a, **k)
        monkeypatch.setitem(interpreter.STEPS, kind, counted)
    n, B, rho0, seed = 12, 5, 0.4, 7
    m = simulate_shaped("tanh", width=n, T=0.5, rho0=rho0, a=1.5, networks=B, seed=seed,
                        dense=dense)
    assert calls == {"phi": m.depth, "dense": m.depth}
    s = 1.5 * math.sqrt(n)
    x, w = np.polynomial.hermite_e.hermegauss(160)
    c = 1.0 / float(np.sum(w * (s * np.tanh(x / s)) ** 2) / math.sqrt(2 * math.pi))
    assert shaped_unit(c) == (Phi(), Dense(weight_var=c, bias_var=0.0))
    if not dense:
        return
    rng = np.random.default_rng(seed)
    V0 = np.array([[1.0, rho0], [rho0, 1.0]])
    ev, U = np.linalg.eigh(V0)
    Q, _ = np.linalg.qr(rng.standard_normal((B, n, 2)))
    h = math.sqrt(n) * Q @ (U * np.sqrt(ev)).T
    for _ in range(m.depth):
        h = math.sqrt(c / n) * (rng.standard_normal((B, n, n)) @ (s * np.tanh(h / s)))
    np.testing.assert_array_equal(m.V, np.einsum("pna,pnb->pab", h, h) / n)


def test_unshaped_network_collapses():
    m = simulate_shaped("relu", width=64, T=1.0, rho0=0.5, networks=300, seed=0)
    assert m.rho.mean() > 0.98
    s = simulate_shaped("relu", width=64, T=1.0, rho0=0.5, c_plus=0, c_minus=-1, networks=300,
                        seed=0)
    assert s.rho.mean() < 0.7


def test_simulation_budget_refused_before_work():
    with pytest.raises(InvalidArgumentError, match="budget"):
        simulate_shaped("relu", width=4096, T=100.0, rho0=0.5, c_plus=0, c_minus=-1,
                        networks=10 ** 5)


# ---------------------------------------------------------------- command line
def test_cli_json_keys(capsys):
    assert main(["sde", "relu", "--shape", "relu", "--c-plus", "0", "--c-minus", "-1",
                 "--T", "1", "--rho0", "0.5", "--method", "pde", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("T", "rho0", "rho_mean", "rho_std", "rho_quantiles", "rho_ode", "drift",
              "stability", "method", "error"):
        assert k in out
    assert set(out["rho_quantiles"]) == {"0.1", "0.5", "0.9"}
    assert out["stability"] == {"B": 0.0, "verdict": "stable"}
    assert abs(out["rho_mean"] - 0.48054) < 1e-4 and out["error"] < 1e-4


def test_cli_smooth_simulate_and_plot(capsys, tmp_path):
    f = tmp_path / "sde.png"
    assert main(["sde", "tanh", "--shape", "smooth", "--a", "1", "--T", "0.5", "--rho0", "0.3",
                 "--paths", "4000", "--steps", "100", "--simulate", "--width", "32", "--seeds",
                 "500", "--json", "--plot", str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stability"] == {"B": -2.0, "verdict": "stable"}
    assert "V_ab" in out["drift"] and f.exists()
    sim = out["simulation"]
    assert abs(sim["z_mean"]) < Z and abs(sim["z_std"]) < Z and "unshaped_rho_mean" in sim


@pytest.mark.parametrize("argv,msg", [
    (["sde", "sigmoid", "--shape", "smooth", "--T", "1", "--rho0", "0.5"], "φ(0) = 0"),
    (["sde", "relu", "--shape", "relu", "--T", "0", "--rho0", "0.5"], "--T"),
    (["sde", "relu", "--shape", "relu", "--T", "-1", "--rho0", "0.5"], "--T"),
    (["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "1.5"], "--rho0"),
    (["sde", "tanh", "--shape", "smooth", "--T", "1", "--rho0", "0.5", "--method", "pde"], "pde"),
    (["sde", "tanh", "--shape", "relu", "--T", "1", "--rho0", "0.5"], "homogeneous"),
    (["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.5", "--simulate"], "--width"),
    (["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.5", "--a", "1"], "--a"),
    (["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.5", "--paths", "10000000"],
     "paths"),
    (["sde", "relu", "--shape", "relu", "--T", "1e6", "--rho0", "0.5", "--simulate",
      "--width", "4096", "--seeds", "100000"], "budget"),
    (["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.5", "--plot", "x.gif"], "plot"),
])
def test_cli_errors_one_line_exit_2(argv, msg, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and msg in err, err


def test_three_inputs_marginal_is_the_two_input_law():
    """b_ab and Σ_{ab,ab} involve only inputs a, b: ρ₁₂ of the 3-input SDE has the 2-input law."""
    s = shape_relu(0, -1)
    law = fokker_planck(s, 0.5, 0.4)
    p = integrate(s, 0.5, start_matrix(0.4, 3), paths=3000, steps=50, seed=4)
    assert abs(p.rho_mean - law.rho_mean) < Z * p.error + law.error


def test_blow_up_reported_without_nan_in_json(capsys):
    p = integrate(shape_smooth("x + x**2", 1.0), 2.0, start_matrix(0.3), paths=2000, steps=100,
                  seed=0)
    assert 0.1 < p.blown_up < 0.95 and math.isfinite(p.rho_mean)
    q = integrate(shape_smooth("tanh", 1.0), 2.0, start_matrix(0.3), paths=2000, steps=100,
                  seed=0)
    assert q.blown_up == 0.0
    assert main(["sde", "x + x**2", "--shape", "smooth", "--T", "2", "--rho0", "0.3", "--paths",
                 "1000", "--steps", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)   # json.loads accepts NaN: check it is absent
    assert "NaN" not in json.dumps(out) and out["stability"]["verdict"] == "blows_up"
    assert out["details"]["blown_up_fraction"] > 0.1
