"""The optimal aspect ratio r* = 4/((20 + 3 n_L) ν) (issue 28 item 5;
critheory/theory/finitewidth/aspect.py, docs/finitewidth.md "Optimal aspect ratio").

The premise is checked by routes independent of the closed form:

* the coefficients of the mutual information I(A; B) = c2 ε² + c3 ε³ + O(ε⁴) between two groups
  of outputs of a Gaussian scale mixture (the exact single-input law of a finite network's
  outputs given its last hidden layer) are extracted from (i) the closed-form exact mutual
  information of the multivariate Student t (inverse-gamma variance, third cumulant 4ε²/(1−ε);
  ``aspect.student_t_information``, from its differential entropies), in 50-digit
  arithmetic, and (ii) a two-dimensional quadrature of the log-normal mixture (third cumulant
  (3 + ε)ε²), and compared with c2 = n_A n_B/8, c3 = −n_A n_B (20 + 3 n_L)/48;
* the truncated information built from the *measured* coefficients is scanned over r = L/n and
  its maximum is where the formula says, within the scan step;
* the exact information does not peak (it grows with r): the optimum is a property of the
  expansion, which is what the docs say.

Tolerances: each fitted coefficient is compared within 10× the change between a polynomial fit
of degree d and d − 1 (the truncation error of the fit) plus the float64 floor of the fit.
"""
from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from scipy.special import gammaln

import critheory as ct
from critheory.errors import InvalidArgumentError
from critheory.theory.finitewidth.aspect import (aspect_ratio_from_curves,
                                                 information_coefficients,
                                                 network_optimal_aspect_ratio,
                                                 optimal_aspect_ratio, student_t_information,
                                                 truncated_information)

SPLITS = [(1, 1), (1, 3), (2, 2), (3, 5)]


# ----------------------------------------------------------------------------- routes
def lognormal_information(eps: float, n_a: int, n_b: int, h: float = 0.05,
                          nodes: int = 60) -> float:
    """I(A; B) of the log-normal scale mixture with Var(Ĝ)/E[Ĝ]² = ε by quadrature: the groups
    enter through a = log|z_A|², b = log|z_B|² (the directions are independent of everything),
    a = s + log χ²_{n_A}, b = s + log χ²_{n_B}, s ~ N(·, log(1 + ε)); the s-integral by
    Gauss–Hermite, the (a, b) plane by the trapezoid rule (the log-chi-square densities are
    analytic and decay like e^{n a/2} and e^{−e^a/2}: spectral convergence)."""
    sd = math.sqrt(math.log1p(eps))
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    s = sd * x
    a = np.arange(-80.0 - 8 * sd, 6.5 + 8 * sd, h)

    def dens(n):
        xi = a[:, None] - s[None, :]
        return np.exp(xi * n / 2 - np.exp(xi) / 2 - (n / 2) * math.log(2.0) - gammaln(n / 2))
    fa, fb = dens(n_a), dens(n_b)
    joint = (fa * w) @ fb.T
    q = np.outer(fa @ w, fb @ w)
    m = joint > 0
    return float(h * h * np.sum(joint[m] * np.log(joint[m] / q[m])))


def fitted_coefficients(values, eps, degree):
    """(c2, c3) and their error bound from I/ε² = c2 + c3 ε + ...: fits of degree d and d − 1."""
    y = np.asarray(values, dtype=float) / eps ** 2
    hi = np.polynomial.polynomial.polyfit(eps, y, degree)[:2]
    lo = np.polynomial.polynomial.polyfit(eps, y, degree - 1)[:2]
    floor = 1e-13 * np.abs(y).max() / eps.min() * np.array([eps.min(), 1.0])
    return hi, 10 * np.abs(hi - lo) + floor


# ----------------------------------------------------------------------------- closed form
def test_formula_values():
    for nu, n_out, want in [(5.0, 2, 4 / 130), (2 / 3, 2, 6 / 26), (5.0, 4, 4 / 160),
                            (2.0, 10, 4 / 100), (5.0, 100, 4 / 1600)]:
        a = optimal_aspect_ratio(nu, n_out)
        assert a.value == pytest.approx(want, rel=1e-15)
        assert a.epsilon == pytest.approx(4 / (20 + 3 * n_out), rel=1e-15)
        assert a.nu == nu and a.n_out == n_out and a.reason is None
    assert ct.optimal_aspect_ratio is optimal_aspect_ratio
    d = optimal_aspect_ratio(5.0).to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d


@pytest.mark.parametrize("n_a,n_b", SPLITS)
def test_formula_is_the_stationary_point_of_the_expansion(n_a, n_b):
    """(B) is where (A) is stationary: a centred difference of the module's own (A) at r*."""
    r = optimal_aspect_ratio(5.0, n_a + n_b).value
    dr = 1e-6 * r
    slope = (truncated_information(r + dr, 5.0, n_a, n_b)
             - truncated_information(r - dr, 5.0, n_a, n_b)) / (2 * dr)
    scale = float(truncated_information(r, 5.0, n_a, n_b)) / r
    assert abs(slope) <= 1e-6 * scale


# ----------------------------------------------------------------------------- independent
@pytest.mark.parametrize("n_a,n_b", SPLITS)
def test_coefficients_against_the_exact_student_t_information(n_a, n_b):
    eps = np.arange(1, 9) * 1e-3
    vals = [student_t_information(e, n_a, n_b) for e in eps]
    got, err = fitted_coefficients(vals, eps, 5)
    want = information_coefficients(n_a, n_b)
    assert want == (n_a * n_b / 8, -n_a * n_b * (20 + 3 * (n_a + n_b)) / 48)
    assert np.all(err < 1e-4 * np.abs(want)), err          # the fit resolves both
    assert abs(got[0] - want[0]) <= err[0]
    assert abs(got[1] - want[1]) <= err[1]


@pytest.mark.parametrize("n_a,n_b", [(1, 1), (2, 2)])
def test_coefficients_against_lognormal_quadrature(n_a, n_b):
    """Another mixing law (third cumulant 3ε² instead of 4ε²): the same c2, c3, so the result
    depends on ν only, as the formula claims (the six-point vertex drops out)."""
    # the quadrature itself against the exact Student t law is not possible (other law); its
    # accuracy: halving the step changes the value by ~1e-12 relative (the float64 rounding of
    # the sum of ~10^6 terms), which moves the fitted c3 by ~1e-8 relative
    e0 = 0.02
    a, b = lognormal_information(e0, n_a, n_b), lognormal_information(e0, n_a, n_b, h=0.025)
    assert abs(a - b) <= 1e-10 * abs(a)
    eps = np.arange(1, 9) * 0.005
    vals = [lognormal_information(e, n_a, n_b) for e in eps]
    got, err = fitted_coefficients(vals, eps, 5)
    want = information_coefficients(n_a, n_b)
    assert np.all(err < 2e-2 * np.abs(want)), err
    assert abs(got[0] - want[0]) <= err[0]
    assert abs(got[1] - want[1]) <= err[1]


@pytest.mark.parametrize("nu", [5.0, 2 / 3])
@pytest.mark.parametrize("n_a,n_b", [(1, 1), (2, 2), (1, 3)])
def test_scan_of_the_information_peaks_at_the_formula(nu, n_a, n_b):
    """The truncated information with coefficients measured from the exact Student t route,
    scanned over r = L/n on a fixed grid: its maximum is within one step of r*."""
    eps = np.arange(1, 9) * 1e-3
    (c2, c3), _ = fitted_coefficients(
        [student_t_information(e, n_a, n_b) for e in eps], eps, 5)
    step = 1e-4
    r = np.arange(0.0, 1.0, step)
    info = c2 * (nu * r) ** 2 + c3 * (nu * r) ** 3
    peak = r[int(np.argmax(info))]
    assert abs(peak - optimal_aspect_ratio(nu, n_a + n_b).value) <= step


def test_exact_information_has_no_peak():
    """What the number does not mean: the exact information of the scale mixture keeps growing
    with the depth-to-width ratio (the optimum is that of the expansion), and at r* the
    expansion is off by tens of percent."""
    eps = np.linspace(0.01, 2.0, 40)
    exact = np.array([student_t_information(e, 1, 1) for e in eps])
    assert np.all(np.diff(exact) > 0)
    e = optimal_aspect_ratio(1.0, 2).epsilon
    c2, c3 = information_coefficients(1, 1)
    trunc = c2 * e ** 2 + c3 * e ** 3
    assert 0.2 < 1 - trunc / student_t_information(e, 1, 1) < 0.6


# ----------------------------------------------------------------------------- networks
def test_networks_relu_tanh_residual():
    relu = network_optimal_aspect_ratio(ct.architecture("mlp", "relu"), 2.0, 0.0, depth=10)
    assert relu.nu == 5.0 and relu.value == pytest.approx(4 / 130, rel=1e-15)
    assert relu.regime.startswith("exact nu")
    tanh = network_optimal_aspect_ratio(ct.architecture("mlp", "tanh"), 1.0, 0.0, depth=50)
    assert tanh.nu == pytest.approx(2 / 3, rel=1e-15)
    assert tanh.value == pytest.approx(6 / 26, rel=1e-14) and "slowly" in tanh.regime
    # residual z' = ξ z + W φ(z) at criticality: ν(ξ) of theory.md §7, r* grows without bound
    # as ξ -> 1 (the book: residual connections push the optimal scale to arbitrary depth)
    last = 0.0
    for xi in (0.0, 0.5, 0.9, 0.99, 0.999):
        sw = 2.0 * (1 - xi * xi)
        a = network_optimal_aspect_ratio(ct.architecture("residual", "relu", xi), sw, 0.0,
                                         depth=10)
        nu = (1 - xi ** 2) * ((1 - xi ** 2) * 5 + 4 * xi ** 2)
        assert a.nu == pytest.approx(nu, rel=1e-12)
        assert a.value == pytest.approx(4 / (26 * nu), rel=1e-12) and a.value > last
        last = a.value
    assert last > 10.0
    t = network_optimal_aspect_ratio(ct.architecture("residual", "tanh", 0.5), 0.75, 0.0,
                                     depth=30, n_out=4)
    assert t.nu == pytest.approx(2 / 3 * (1 - 0.5 ** 4), rel=1e-12)
    assert t.value == pytest.approx(4 / (32 * t.nu), rel=1e-12)


def test_width_gives_the_depths():
    arch = ct.architecture("mlp", "tanh")
    c = ct.finite_width_curves(arch, 1.0, 0.0, depth=60, width=64)
    a = aspect_ratio_from_curves(c, 2)
    assert a.width == 64 and a.depth_estimate == pytest.approx(64 * a.value, rel=1e-15)
    first = next(l for l, v in zip(c.depths, c.vertex_normalized) if v / 64 >= a.epsilon)
    assert a.depth_reached == first
    # the K*=0 class reaches ν l slowly: the real depth lies beyond r* n
    assert a.depth_reached > a.depth_estimate
    short = aspect_ratio_from_curves(ct.finite_width_curves(arch, 1.0, 0.0, depth=5, width=64))
    assert short.depth_reached is None and short.value is not None


def test_refusals_and_nulls():
    for bad in (0, 1, True, 2.5, "2", 10 ** 400):
        with pytest.raises(InvalidArgumentError, match="n_out"):
            optimal_aspect_ratio(5.0, bad)
    with pytest.raises(InvalidArgumentError, match="one output has no pair"):
        optimal_aspect_ratio(5.0, 1)
    assert optimal_aspect_ratio(5.0, 10 ** 6).value == pytest.approx(4 / (5 * (20 + 3e6)))
    for bad in (0.0, -1.0, float("nan"), float("inf"), "x", None):
        with pytest.raises(InvalidArgumentError, match="nu"):
            optimal_aspect_ratio(bad)
    # off criticality the flow ends at a stable fixed point: ν = 0, no optimum, a reason
    off = network_optimal_aspect_ratio(ct.architecture("residual", "tanh", 0.5), 1.3, 0.1,
                                       depth=12)
    assert off.value is None and off.nu == 0.0 and "nu = 0" in off.reason
    assert off.depth_reached is None
    # no fixed point in reach (tanh below criticality collapses to K = 0): not critical
    col = network_optimal_aspect_ratio(ct.architecture("mlp", "tanh"), 0.5, 0.0, depth=40)
    assert col.value is None and "not critical" in col.reason
    # a transformer: ν is not defined without a finite-width rule for attention
    with pytest.raises(InvalidArgumentError, match="no rule for a 'attention' block"):
        network_optimal_aspect_ratio(ct.network("transformer", "tanh", tokens=1), 1.0, 0.0, 4)
    with pytest.raises(InvalidArgumentError, match="eps"):
        student_t_information(0.0, 1, 1)
    with pytest.raises(InvalidArgumentError, match="digits"):
        student_t_information(0.1, 1, 1, digits=10 ** 6)
    # tiny ε: the working precision grows with the cancellation, so I/ε² -> n_A n_B/8 holds
    assert student_t_information(1e-30, 2, 3) / 1e-60 == pytest.approx(6 / 8, rel=1e-12)
    with pytest.raises(InvalidArgumentError, match="n_out"):
        network_optimal_aspect_ratio(ct.architecture("mlp", "relu"), 2.0, 0.0, 4, n_out=1)


# ----------------------------------------------------------------------------- CLI
def _cli(argv):
    from critheory.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:        # argparse refusals
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def test_cli_json_key_matches_the_api():
    rc, out, _ = _cli(["finite-width", "tanh", "--weight-var", "1", "--bias-var", "0",
                       "--depth", "40", "--width", "64", "--outputs", "3", "--json"])
    assert rc == 0
    got = json.loads(out)["optimal_aspect_ratio"]
    c = ct.finite_width_curves(ct.architecture("mlp", "tanh"), 1.0, 0.0, 40, width=64)
    assert got == aspect_ratio_from_curves(c, 3).to_dict()
    assert got["value"] == pytest.approx(4 / (29 * 2 / 3), rel=1e-14)
    rc, out, _ = _cli(["finite-width", "relu", "--weight-var", "2", "--bias-var", "0",
                       "--depth", "8", "--json"])
    assert json.loads(out)["optimal_aspect_ratio"]["n_out"] == 2
    rc, out, _ = _cli(["finite-width", "relu", "--weight-var", "2", "--bias-var", "0",
                       "--depth", "8"])
    assert rc == 0 and "optimal aspect ratio (n_L = 2 outputs): L/n ~ 0.0307692" in out
    rc, out, err = _cli(["finite-width", "relu", "--weight-var", "2", "--bias-var", "0",
                         "--depth", "8", "--outputs", "1"])
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_symbolic_derivation_of_the_expansion():
    """Eq. (3) of docs/finitewidth.md derived symbolically (~1.5 min): the density ratio (2)
    expanded in δ to sixth order, averaged with cumulants ε, κ₃ = c ε², κ₄ = d ε³ (t² = ε),
    the logarithm expanded, the χ² moments integrated; κ₃ and κ₄ drop out."""
    import sympy as sp

    u, w, t, c, d, na, nb, dl, s = sp.symbols("u w t c d n_A n_B delta s")
    kap = {1: 0, 2: t ** 2, 3: c * t ** 4, 4: d * t ** 6}
    gen = sp.series(sp.exp(sum(k * s ** j / sp.factorial(j) for j, k in kap.items())), s, 0,
                    7).removeO()
    mom = {j: sp.expand(gen.coeff(s, j) * sp.factorial(j)) for j in range(7)}

    def trunc(e):
        e = sp.expand(e)
        return sum(e.coeff(t, j) * t ** j for j in range(7))

    def ratio(m, x):
        ser = sp.series((1 + dl) ** (-m / 2) * sp.exp(x / 2 * (1 - 1 / (1 + dl))), dl, 0,
                        7).removeO()
        return trunc(sum(ser.coeff(dl, j) * mom[j] for j in range(7)))

    def log(e):
        return trunc(sp.series(sp.log(e), t, 0, 7).removeO())

    joint, ra, rb = ratio(na + nb, u + w), ratio(na, u), ratio(nb, w)
    integrand = trunc(joint * (log(joint) - log(ra) - log(rb)))

    def chi2(n, k):
        return sp.prod([n + 2 * j for j in range(k)])
    total = sum(cf * chi2(na, i) * chi2(nb, j)
                for (i, j), cf in sp.Poly(integrand, u, w).terms())
    total = sp.expand(total)
    assert sp.simplify(total.coeff(t, 4) - na * nb / 8) == 0
    assert sp.simplify(total.coeff(t, 6) + na * nb * (20 + 3 * (na + nb)) / 48) == 0
    assert total.coeff(t, 0) == 0 and total.coeff(t, 2) == 0


def test_cli_outputs_bound_is_the_theory_bound():
    from critheory.theory.finitewidth.aspect import MAX_OUTPUTS

    base = ["finite-width", "relu", "--weight-var", "2", "--bias-var", "0", "--depth", "3",
            "--json", "--outputs"]
    rc, out, _ = _cli(base + [str(MAX_OUTPUTS)])
    assert rc == 0 and json.loads(out)["optimal_aspect_ratio"]["n_out"] == MAX_OUTPUTS
    rc, out, err = _cli(base + [str(MAX_OUTPUTS + 1)])
    assert rc == 2 and out == "" and "outputs must be <=" in err
