"""The ``simulate`` and ``validate`` sub-commands (critheory.cli.simulation) and critheory.validation.compare.

Everything runs through ``critheory.cli.main([...])`` at small sizes (width <= 64, depth <= 12):
JSON output parses without NaN/Infinity tokens and carries the documented keys, bad input gives
one line on stderr and exit status 2, and ``--plot`` writes a figure.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from critheory.cli.main import main
from critheory.errors import InvalidArgumentError, InvalidVarianceError
from critheory.validation.compare import (
    bonferroni_threshold,
    compare,
    default_window,
    theory_exponent,
    theory_slope,
    z_scores,
)
from critheory.theory.meanfield.maps import architecture

CONTRACT = ("depths", "apjn_mean", "apjn_stderr", "apjn_theory", "kernel_mean", "kernel_theory",
            "fit", "theory_exponent")
VALIDATE = ("apjn_z", "kernel_z", "verdict", "z_crit", "n_compared", "alpha", "layers",
            "kernel_stderr", "apjn_median", "log_apjn_std", "settings", "theory_window_slope")


def _strict(text: str):
    def bad(token):
        raise AssertionError(f"non-JSON constant {token} in output")

    return json.loads(text, parse_constant=bad)


def _run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


BASE = ["--weight-var", "1.0", "--bias-var", "0.0", "--width", "32", "--depth", "10",
        "--seeds", "4"]


# ------------------------------------------------------------------ JSON contract
@pytest.mark.parametrize("cmd", ["simulate", "validate"])
def test_json_keys_and_no_nan(capsys, cmd):
    rc, out, err = _run(capsys, [cmd, "tanh", *BASE, "--json"])
    assert rc == 0, err
    d = _strict(out)
    for k in CONTRACT + VALIDATE:
        assert k in d, k
    L = 10
    assert d["depths"] == list(range(1, L + 1))
    assert d["layers"] == list(range(1, L + 1))
    for k in ("apjn_mean", "apjn_stderr", "apjn_theory", "apjn_z"):
        assert len(d[k]) == L, k
    for k in ("kernel_mean", "kernel_theory", "kernel_stderr", "kernel_z"):
        assert len(d[k]) == L, k
    f = d["fit"]
    for k in ("exponent", "stderr", "ci_low", "ci_high", "window"):
        assert k in f
    assert f["window"] == [6, 10]  # last half of l = 2..10
    # tanh at (1, 0) is the K*=0 critical point: J ~ l^-1, exponent 1 in J ~ l^(-exponent)
    # (the convention of `critheory analyze`'s exponents.apjn); the signed slope is -1
    assert d["theory_exponent"] == pytest.approx(1.0) and d["theory_slope"] == pytest.approx(-1.0)
    assert f["exponent"] == pytest.approx(-f["slope"])
    assert f["ci_low"] == pytest.approx(-f["slope_ci"][1])
    assert f["ci_high"] == pytest.approx(-f["slope_ci"][0])
    assert f["ci_low"] <= f["exponent"] <= f["ci_high"]
    assert d["verdict"] in ("consistent", "inconsistent")
    # values agree with a direct call of the library
    c = compare("tanh", 1.0, 0.0, width=32, depth=10, seeds=4)
    np.testing.assert_allclose(d["apjn_mean"], c.apjn_mean)
    np.testing.assert_allclose(d["kernel_theory"], c.kernel_theory)
    # the Python objects use the JSON's convention (exponent: decay, slope: signed)
    assert (c.theory_exponent, c.theory_slope) == (d["theory_exponent"], d["theory_slope"])
    assert (c.fit.exponent, c.fit.slope) == (f["exponent"], f["slope"])
    assert list(c.fit.exponent_ci) == [f["ci_low"], f["ci_high"]]
    assert [c.fit.ci_low, c.fit.ci_high] == f["slope_ci"]
    assert d["apjn_theory"][0] == 1.0 and d["apjn_mean"][0] == pytest.approx(1.0)


def test_json_l0_and_probes(capsys):
    rc, out, err = _run(capsys, ["simulate", "relu", "--arch", "pre-ln-residual", "--mu", "1",
                                 "--weight-var", "2", "--bias-var", "0", "--width", "64",
                                 "--depth", "12", "--seeds", "3", "--l0", "3", "--probes", "4",
                                 "--window", "5:12", "--seed", "7", "--q0", "2", "--json"])
    assert rc == 0, err
    d = _strict(out)
    assert d["depths"] == list(range(3, 13))
    assert len(d["kernel_mean"]) == 12
    assert d["fit"]["window"] == [5, 12]
    assert d["settings"]["probes"] == 4 and d["settings"]["seed"] == 7
    assert d["theory_exponent"] == pytest.approx(-1.0)  # J ~ l^(B/A), B/A = 1 for ReLU
    # infinite width: K^l = K^1 + A (l - 1), K^1 = sw q0 = 4, A = sw/2 = 1
    np.testing.assert_allclose(d["kernel_theory"], 4.0 + np.arange(12), rtol=1e-12)


def test_json_single_network_is_null_not_nan(capsys):
    rc, out, err = _run(capsys, ["validate", "relu", "--weight-var", "2", "--bias-var", "0.1",
                                 "--width", "16", "--depth", "5", "--seeds", "1", "--json"])
    assert rc == 0, err
    d = _strict(out)
    assert d["verdict"] == "undetermined"
    assert all(v is None for v in d["apjn_stderr"])
    assert all(v is None for v in d["apjn_z"])
    assert d["fit"]["stderr"] is None
    assert d["theory_exponent"] == 0.0  # scale-invariant at sw = 2: chi_J = 1 at any sb


def test_json_runaway_kernel_is_null(capsys):
    # chaotic ReLU: the theory kernel passes 1e150 near l = 850 (NaN -> null)
    rc, out, err = _run(capsys, ["simulate", "relu", "--weight-var", "3", "--bias-var", "0",
                                 "--width", "4", "--depth", "900", "--seeds", "2", "--json",
                                 "--n-boot", "10"])
    assert rc == 0, err
    d = _strict(out)
    assert d["kernel_theory"][-1] is None
    assert d["theory_exponent"] is None


def test_no_power_law_fit_when_too_shallow(capsys):
    rc, out, err = _run(capsys, ["simulate", "tanh", "--weight-var", "1", "--bias-var", "0",
                                 "--width", "8", "--depth", "2", "--seeds", "2", "--json"])
    assert rc == 0, err
    d = _strict(out)
    assert d["fit"] is None and len(d["depths"]) == 2


# ------------------------------------------------------------------ text output
def test_text_tables(capsys):
    rc, out, err = _run(capsys, ["simulate", "tanh", *BASE])
    assert rc == 0, err
    assert "J theory" in out and "K theory" in out and "power-law fit" in out
    rows = [ln for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()]
    assert 3 <= len(rows) <= 17
    rc, out, err = _run(capsys, ["validate", "tanh", *BASE])
    assert rc == 0, err
    assert "verdict:" in out and "z_crit" in out


def test_text_long_table_is_compact(capsys):
    rc, out, err = _run(capsys, ["simulate", "relu", "--weight-var", "2", "--bias-var", "0",
                                 "--width", "8", "--depth", "200", "--seeds", "2",
                                 "--probes", "2", "--n-boot", "10"])
    assert rc == 0, err
    rows = [ln for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()]
    assert 10 <= len(rows) <= 17
    assert rows[-1].split()[0] == "200"


def test_progress_bar_on_stderr(capsys):
    rc, out, err = _run(capsys, ["simulate", "relu", "--weight-var", "2", "--bias-var", "0",
                                 "--width", "8", "--depth", "5", "--seeds", "2", "--json",
                                 "--progress"])
    assert rc == 0
    _strict(out)  # the bar never reaches stdout
    assert "100.0%" in err


# ------------------------------------------------------------------ plots
@pytest.mark.parametrize("cmd", ["simulate", "validate"])
def test_plot_written(capsys, tmp_path, cmd):
    path = tmp_path / f"{cmd}.png"
    rc, out, err = _run(capsys, [cmd, "tanh", *BASE, "--plot", str(path)])
    assert rc == 0, err
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["x.txt", "missing/x.png"])
def test_plot_bad_path_fails_before_simulating(capsys, tmp_path, name):
    # refused up front: a huge run would be wasted otherwise
    rc, out, err = _run(capsys, ["validate", "tanh", "--weight-var", "1", "--bias-var", "0",
                                 "--width", "100000", "--depth", "100000", "--seeds", "1000",
                                 "--plot", str(tmp_path / name)])
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "error" in err
    assert not (tmp_path / name).exists()


# ------------------------------------------------------------------ bad input
BAD = [
    ["--weight-var", "1", "--bias-var", "0", "--width", "0", "--depth", "3"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "0"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--l0", "4"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--l0", "0"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--seeds", "0"],
    ["--weight-var", "-1", "--bias-var", "0", "--width", "4", "--depth", "3"],
    ["--weight-var", "0", "--bias-var", "0", "--width", "4", "--depth", "3"],
    ["--weight-var", "1", "--bias-var", "-0.1", "--width", "4", "--depth", "3"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--probes", "0"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--probes", "x"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--window", "2"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--window",
     "2:9"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--q0", "0"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--mu", "-1",
     "--arch", "residual"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--alpha", "2"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "1", "--depth", "3", "--arch",
     "pre-ln"],
    ["--weight-var", "nan", "--bias-var", "0", "--width", "4", "--depth", "3"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4.5", "--depth", "3"],  # argparse
    ["--bias-var", "0", "--width", "4", "--depth", "3"],  # missing --weight-var (argparse)
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--arch", "cnn"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--n-boot", "-1"],
    ["--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth", "3", "--seed", "-1"],
]


@pytest.mark.parametrize("cmd", ["simulate", "validate"])
@pytest.mark.parametrize("argv", BAD, ids=range(len(BAD)))
def test_bad_input_exit_2(capsys, cmd, argv):
    with pytest.raises(SystemExit) as exc:  # argparse errors exit; ours return 2
        raise SystemExit(main([cmd, "tanh", *argv]))
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert out == ""
    assert err.count("\n") == 1 and "error" in err, err


def test_bad_activation_exit_2(capsys):
    rc, out, err = _run(capsys, ["simulate", "tanh(", *BASE])
    assert rc == 2 and err.count("\n") == 1


# ------------------------------------------------------------------ library
def test_compare_errors_before_simulating():
    calls = []
    with pytest.raises(InvalidVarianceError):
        compare("tanh", -1.0, 0.0, width=4, depth=3, seeds=2, progress=lambda *a: calls.append(a))
    with pytest.raises(InvalidArgumentError):
        compare("tanh", 1.0, 0.0, width=4, depth=3, seeds=2, l0=4)
    with pytest.raises(InvalidArgumentError):
        compare("tanh", 1.0, 0.0, width=4, depth=3, seeds=2, window=(3, 2))
    assert calls == []


def test_helpers():
    assert bonferroni_threshold(1, 0.05) == pytest.approx(1.959963984540054)
    # Bonferroni: P(|Z| > z_crit) = alpha/m
    from scipy.special import ndtr

    for m in (1, 10, 200):
        z = bonferroni_threshold(m, 0.01)
        assert 2 * (1 - ndtr(z)) == pytest.approx(0.01 / m, rel=1e-9)
    assert default_window(100) == (51, 100)
    assert default_window(11, 1) == (7, 11)      # l = 2..11: the last 5
    assert default_window(3, 2) is None
    z = z_scores([1.0, 2.0, 1.0 + 1e-17, np.nan], [0.5, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    assert z[0] == 0.0 and z[1] > 1e6 and abs(z[2]) < 1 and math.isnan(z[3])


@pytest.mark.parametrize("name, act, mu, sw, sb, expected", [
    ("mlp", "tanh", 1.0, 1.0, 0.0, 1.0),               # K*=0 class, J ~ l^-1
    ("mlp", "erf", 1.0, math.pi / 4, 0.0, 1.0),        # sigma_1 = 2/sqrt(pi)
    ("mlp", "relu", 1.0, 2.0, 0.3, 0.0),               # scale-invariant
    ("mlp", "relu", 1.0, 2.5, 0.0, None),              # chaotic
    ("mlp", "tanh", 1.0, 1.3, 0.0, None),              # off the critical point
    ("residual", "relu", 0.6, 2.0 * 0.64, 0.0, 0.0),   # scale-invariant, sw = 2 (1 - mu^2)
    ("residual", "tanh", 1.0, 1.0, 0.0, None),         # mu = 1 without LN: faster than l^p
    ("pre-ln-residual", "relu", 1.0, 2.0, 0.0, -1.0),  # J ~ l^(B/A), B/A = 1
    ("pre-ln-residual", "relu", 1.0, 2.0, 1.0, -0.5),  # B/A = 1/(1 + 1)
    ("pre-ln", "relu", 1.0, 2.0, 0.0, 0.0),            # critical line sb = 0: J -> const
    ("pre-ln", "relu", 1.0, 2.0, 0.3, None),           # ordered
])
def test_theory_exponent(name, act, mu, sw, sb, expected):
    # decay convention J ~ l^(-exponent); theory_slope is the signed d log J / d log l
    p, why = theory_exponent(architecture(name, act, mu), sw, sb)
    assert why
    slope, why_slope = theory_slope(architecture(name, act, mu), sw, sb)
    assert why_slope == why
    if expected is None:
        assert p is None and slope is None
    else:
        assert p == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert slope == 0.0 - p



def test_costly_exact_apjn_is_announced_in_one_stderr_line(capsys, monkeypatch):
    """An exact APJN estimated past ANNOUNCE_SECONDS prints one note on stderr, before the run
    (the threshold is lowered here so that the run stays small); a cheap one prints none."""
    from critheory.simulation import cost

    argv = ["simulate", "tanh", "--weight-var", "1", "--bias-var", "0", "--width", "8",
            "--depth", "4", "--seeds", "2", "--probes", "exact", "--no-progress", "--json",
            "--n-boot", "10"]
    assert main(argv) == 0
    assert "note" not in capsys.readouterr().err
    monkeypatch.setattr(cost, "ANNOUNCE_SECONDS", 0.0)
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("critheory: note: the exact APJN (width 8")
    monkeypatch.undo()
    assert main(argv[:-6] + argv[-4:]) == 0      # the default (no --probes): no note
    assert "note" not in capsys.readouterr().err
