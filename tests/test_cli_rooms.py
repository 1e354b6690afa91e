"""Statistics and figures out of the CLI (issue 27 item 5): the NTK and SDE comparisons are
validation results with ``to_dict()``, the figures live in :mod:`critheory.io.figures`, and the
command line prints exactly what they return."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from critheory.cli.main import main


def _json(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_ntk_comparison_is_what_the_cli_prints(capsys):
    from critheory.validation.ntk import NTKVerdict, compare_ntk

    c = compare_ntk("tanh", "mlp", 1.0, 0.0, width=16, depth=4, seeds=40, seed=3)
    d = _json(capsys, "simulate", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth",
              "4", "--width", "16", "--seeds", "40", "--seed", "3", "--ntk", "--json",
              "--no-progress")
    for k, v in c.to_dict().items():
        assert d[k] == v, k
    v = c.verdict(0.01)
    assert isinstance(v, NTKVerdict) and v.n_compared == 3         # layer 1: deterministic
    d = _json(capsys, "validate", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth",
              "4", "--width", "16", "--seeds", "40", "--seed", "3", "--ntk", "--json",
              "--no-progress")
    assert {k: d[k] for k in v.to_dict()} == v.to_dict()
    n = _json(capsys, "ntk", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "4",
              "--simulate", "--width", "16", "--seeds", "40", "--seed", "3", "--json")
    assert n["simulation"] == json.loads(json.dumps(c.simulation_dict()))


def test_ntk_verdict_sees_a_wrong_theory():
    """The same networks against the recursion at another weight variance: the z-scores grow
    like sqrt(seeds) and the verdict turns; against the right one it holds (alpha = 0.01)."""
    from critheory.theory.meanfield.maps import architecture
    from critheory.theory.ntk.depth import ntk_curves
    from critheory.validation.ntk import compare_ntk

    arch = architecture("mlp", "tanh")
    right = compare_ntk("tanh", arch, 1.0, 0.0, width=64, depth=4, seeds=200, seed=1)
    assert right.verdict(0.01).verdict == "consistent"
    wrong = ntk_curves(arch, arch.activation, 1.2, 0.0, 4)
    bad = compare_ntk("tanh", arch, 1.0, 0.0, width=64, depth=4, seeds=200, seed=1,
                      curves=wrong)
    assert bad.verdict(0.01).verdict == "inconsistent"
    no = compare_ntk("tanh", arch, 1.0, 0.0, width=8, depth=1, seeds=5, seed=1).verdict(0.01)
    assert no.to_dict() == {"ntk_verdict": "not compared", "ntk_z_crit": None,
                            "ntk_n_compared": 0}


def test_sd_stderr_against_the_gaussian_closed_form():
    """Gaussian samples: the standard error of the sample standard deviation is
    sigma/sqrt(2(n-1)) to O(1/n); the delta-method estimate carries a relative error
    ~ sqrt(kurtosis terms / n) ~ 1/sqrt(n) = 0.3 % at n = 1e5 (5 sigma: 1.6 %)."""
    from critheory.validation.shaped import sd_stderr

    x = 2.5 * np.random.default_rng(7).standard_normal(100_000)
    assert sd_stderr(x) == pytest.approx(2.5 / math.sqrt(2 * (x.size - 1)), rel=0.016)


def test_sde_comparison_is_what_the_cli_prints(capsys):
    from critheory.validation.shaped import ShapedComparison

    d = _json(capsys, "sde", "relu", "--shape", "relu", "--T", "0.5", "--rho0", "0.3",
              "--method", "pde", "--simulate", "--width", "16", "--seeds", "50",
              "--json")["simulation"]
    assert set(d) == set(ShapedComparison.__dataclass_fields__)
    assert d["networks"] == 50 and d["width"] == 16 and 0 <= d["ks_pvalue"] <= 1


def test_sde_comparison_statistics():
    """Networks drawn from the SDE's own law: z-scores of order 1 and a KS p-value that is not
    small; shifted by 5 standard errors: |z| >= 4 and the KS test rejects."""
    from types import SimpleNamespace

    from critheory.validation.shaped import compare_sde

    rng = np.random.default_rng(11)
    law = rng.normal(0.3, 0.1, 200_000)
    res = SimpleNamespace(method="em", solution=SimpleNamespace(rho=law), rho_mean=0.3,
                          rho_std=0.1, error=0.0, details={"std_step_bias": 0.0})

    def meas(r):
        return SimpleNamespace(rho=r, width=16, depth=8, T=0.5, seed=0, elapsed=0.0,
                               log_norm=np.zeros(r.size))

    r = rng.normal(0.3, 0.1, 4000)
    c = compare_sde(res, meas(r))
    se = np.std(r, ddof=1) / math.sqrt(r.size)
    assert c.z_mean == pytest.approx((r.mean() - 0.3) / math.hypot(se, 0.0), rel=1e-12)
    assert abs(c.z_mean) < 4 and abs(c.z_std) < 4 and c.ks_pvalue > 1e-4
    assert "unshaped_rho_mean" not in c.to_dict()
    shifted = compare_sde(res, meas(r + 5 * 0.1 / math.sqrt(r.size) + 0.01), meas(r))
    assert shifted.z_mean >= 4 and shifted.ks_pvalue < 1e-3
    assert shifted.to_dict()["unshaped_rho_mean"] == pytest.approx(r.mean())


@pytest.mark.parametrize("cmd", [
    ["ntk", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3", "--simulate",
     "--width", "8", "--seeds", "4"],
    ["finite-width", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3",
     "--simulate", "--width", "8", "--seeds", "20"],
    ["sde", "tanh", "--shape", "smooth", "--T", "0.2", "--rho0", "0.5", "--paths", "500"],
    ["depth", "relu", "--arch", "transformer", "--tokens", "2", "--weight-var", "2",
     "--bias-var", "0", "--depth", "3", "--points", "64"],
])
def test_figures_come_from_io(cmd, tmp_path, capsys, monkeypatch):
    """Every command figure is drawn by critheory.io.figures (the CLI only calls it)."""
    import critheory.io.figures as figures

    called = []
    for name in figures.__all__:
        real = getattr(figures, name)

        def spy(*a, _real=real, _name=name, **k):
            called.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(figures, name, spy)
    f = tmp_path / "f.png"
    assert main(cmd + ["--plot", str(f)]) == 0
    capsys.readouterr()
    assert f.stat().st_size > 1000 and len(called) == 1
