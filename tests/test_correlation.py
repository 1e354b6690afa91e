"""c*, χ_c and ξ_c of the correlation map (Schoenholz et al. 2017, "Deep Information
Propagation", eqs. (4)-(9); issue 26 item 6), against independent routes: the two-point
expectation σ_w² E[φ'(u1)φ'(u2)] at c*, and the iterated two-input recursion of `depth`."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from critheory.cli.main import main
from critheory.expectations import expect2
from critheory.theory.meanfield.correlation import correlation_fixed_point, correlation_map
from critheory.theory.meanfield.depth import depth_curves
from critheory.theory.meanfield.maps import architecture


def _json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tanh_chaotic_issue_numbers(capsys):
    """tanh at (3, 0.1): the old correlation_length 5.98 is 1/|log χ_1|; ξ_c = 8.98."""
    r = _json(capsys, ["point", "tanh", "--weight-var", "3", "--bias-var", "0.1"])
    assert r["phase"] == "chaotic"
    assert r["jacobian_depth_scale"] == pytest.approx(5.977, abs=1e-3)
    assert r["correlation_length"] == r["jacobian_depth_scale"]         # deprecated alias
    assert "correlation_length" in r["deprecated"]
    assert r["xi_c"] == pytest.approx(8.98, abs=5e-3)
    assert 0 < r["c_star"] < 1 and r["chi_c"] < 1
    assert r["xi_c"] == pytest.approx(-1 / math.log(r["chi_c"]), rel=1e-14)
    # independent: Schoenholz eq. (6), σ_w² E[φ'(u1) φ'(u2)] at c*, from the 2-d expectation
    q, c = r["fixed_point"], r["c_star"]
    chi = 3.0 * expect2("tanh", "dphi", "dphi", q, c * q, q).value
    assert abs(chi - r["chi_c"]) <= max(r["chi_c_error"], 1e-12)
    assert abs(chi - r["chi_c"]) < 1e-9
    # c* is a fixed point of the map (to the root finder's tolerance)
    a = architecture("mlp", "tanh")
    assert float(correlation_map(a, 3.0, 0.1, q, [c])[0]) == pytest.approx(c, abs=1e-13)


@pytest.mark.slow
def test_two_input_recursion_converges_to_c_star_at_rate_chi_c():
    """The `depth` recursion of two inputs with correlation 0.9 (the layers' own map, not the
    correlation module) flows to c* with ratio (c^{l+1} - c*)/(c^l - c*) -> χ_c."""
    a = architecture("mlp", "tanh")
    sw, sb = 3.0, 0.1
    d = depth_curves(a, sw, sb, 400, q0=1.0, input_correlation=0.9)
    q = float(d.kernel[-1])
    r = correlation_fixed_point(a, sw, sb, q)
    c = np.asarray(d.correlation, dtype=float)
    assert c[-1] == pytest.approx(r.c_star, abs=1e-12)
    dev = c[150:160] - r.c_star
    np.testing.assert_allclose(dev[1:] / dev[:-1], r.chi_c, rtol=1e-5)


@pytest.mark.parametrize("act, sw, sb", [("tanh", 0.8, 0.05), ("erf", 1.0, 0.2),
                                         ("relu", 1.5, 0.1)])
def test_ordered_phase_c_star_is_one(capsys, act, sw, sb):
    r = _json(capsys, ["point", act, "--weight-var", str(sw), "--bias-var", str(sb)])
    assert r["phase"] == "ordered"
    assert r["c_star"] == 1.0 and r["chi_c"] == pytest.approx(r["chi_perp"], rel=1e-14)
    assert r["xi_c"] == pytest.approx(r["jacobian_depth_scale"], rel=1e-12)


def test_critical_xi_c_diverges_and_depth_json(capsys):
    r = _json(capsys, ["depth", "relu", "--weight-var", "2", "--bias-var", "0", "--depth", "4"])
    assert r["c_star"] == 1.0 and r["chi_c"] == pytest.approx(1.0) and r["xi_c"] is None
    r = _json(capsys, ["depth", "tanh", "--weight-var", "3", "--bias-var", "0.1", "--depth",
                       "4"])
    assert r["xi_c"] == pytest.approx(8.98, abs=5e-3) and r["q_star"] > 0
    assert main(["point", "tanh", "--weight-var", "3", "--bias-var", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "c* = 0.47753" in out and "xi_c = -1/log chi_c = 8.98" in out
    assert "Jacobian depth scale 1/|log chi_J| = 5.977" in out
