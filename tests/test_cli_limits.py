"""Budgets and option parsing of the theory commands: bad or impossible input gets one line on
stderr and exit status 2 at once — never exit 3 (an internal error), a hang or a huge allocation.

The command lines below exited 3, ran away (8.9 GB for a 1e9-point grid) or silently accepted a
NaN before; the hypothesis test feeds arbitrary option strings to the parsers.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critheory.cli.main import main


def _run(capsys, argv):
    try:
        rc = main(argv)
    except SystemExit as exc:   # argparse refuses bad option values itself (status 2)
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


BAD = [
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--grid", "0"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--grid", "100000"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--weight-range", "1:a"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--bias-range", "1:0"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--weight-range", "0:1"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--arch", "residual", "--plane", "weight-mu",
     "--at-bias-var", "nan"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--arch", "residual", "--plane", "weight-mu",
     "--at-bias-var", "-1"],
    ["phase", "tanh", "--plot", "{tmp}/p.png", "--arch", "residual", "--plane", "weight-mu",
     "--mu-range", "-1:0.5"],
    ["depth", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "5", "--corr", "abc"],
    ["depth", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "5", "--corr", "1.5"],
    ["point", "tanh", "--weight-var", "1", "--bias-var", "0", "--arch", "residual", "--mu",
     "1e308"],
    ["point", "tanh", "--weight-var", "nan", "--bias-var", "0"],
    ["point", "tanh", "--weight-var", "1", "--bias-var", "inf"],
    ["line", "tanh", "--bias-var", "0:1:1000000000"],
    ["line", "tanh", "--bias-var", "nan"],
    ["analyze", "tanh", "--bias-var", "0:1:1000000000"],
    # issue 31: accepted and ignored, or unbounded
    ["point", "tanh", "--weight-var", "1", "--bias-var", "0", "--mu", "-1"],
    ["point", "tanh", "--weight-var", "1", "--bias-var", "0", "--mu", "0.5"],   # mlp: no mu
    ["analyze", "tanh", "--mu", "2"],
    ["simulate", "tanh", "--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth",
     "3", "--mu", "0.5"],
    ["analyze", "tanh", "--weight-var", "-1"],
    ["analyze", "tanh", "--ref-bias-var", "-1"],
    ["analyze", "tanh", "--verify-depth", "100000000"],
    ["ntk", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3", "--q0", "0"],
    ["point", "tanh", "--weight-var", "1", "--bias-var", "0", "--q0", "0"],
    ["depth", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3", "--q0", "0"],
    ["simulate", "tanh", "--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth",
     "3", "--n-boot", "100000000000000000000"],
    ["depth", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "10000000"],
    ["analyze", "gelu", "--arch", "transformer", "--tokens", "129"],  # beyond MAX_TOKENS
    # over the command budget: the nodes of T = 128 at 1024 points exceed the QMC cache (drawn
    # again at every block, 2e12); a causal mask takes the T³ route (3.3e11); 256 layers (5e11)
    ["analyze", "gelu", "--arch", "transformer", "--tokens", "128"],
    ["analyze", "gelu", "--arch", "transformer", "--tokens", "32", "--causal"],
    ["depth", "gelu", "--arch", "transformer", "--tokens", "64", "--weight-var", "1",
     "--bias-var", "0", "--depth", "256"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[2:]) for a in BAD])
def test_refused_with_one_line(capsys, tmp_path, argv):
    rc, out, err = _run(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
    assert not list(tmp_path.iterdir())


def test_refusals_are_fast(capsys, tmp_path):
    """Each refusal of the list comes at once (before any work)."""
    import time

    for argv in BAD:
        t = time.perf_counter()
        _run(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
        assert time.perf_counter() - t < 10, argv


def test_mu_with_a_residual_arch_still_runs(capsys):
    rc, out, err = _run(capsys, ["point", "tanh", "--weight-var", "1", "--bias-var", "0.1",
                                 "--arch", "residual", "--mu", "0.5", "--json"])
    assert rc == 0, err


def test_valid_small_phase_still_runs(capsys, tmp_path):
    rc, out, err = _run(capsys, ["phase", "tanh", "--plot", str(tmp_path / "p.png"), "--grid",
                                 "3", "--weight-range", "0.5:2", "--bias-range", "0:0.5"])
    assert rc == 0, err
    assert (tmp_path / "p.png").exists()


_TOKENS = st.sampled_from(["0", "1", "-1", "0.5", "2", "nan", "inf", "-inf", "1e308", "a", "",
                           ":", "1e-300", "400", "3"])
_SPEC = st.lists(_TOKENS, min_size=1, max_size=4).map(":".join)


@settings(max_examples=40, deadline=None)
@given(spec=_SPEC, option=st.sampled_from(["--weight-range", "--bias-range", "--grid"]))
def test_phase_option_strings(spec, option):
    """Any option string: exit 0 or 2 (never 3), and the grid stays within its budget."""
    import contextlib
    import io
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["phase", "relu", "--plot", f"{tmp}/p.png", "--grid", "3", option, spec]
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:   # argparse refusals
                rc = exc.code
        assert rc in (0, 2), (argv, err.getvalue())
        if rc == 2:
            assert len(err.getvalue().strip().splitlines()) == 1


@settings(max_examples=40, deadline=None)
@given(spec=_SPEC)
def test_line_grid_strings(spec):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            rc = main(["line", "relu", "--bias-var", spec])
        except SystemExit as exc:
            rc = exc.code
    assert rc in (0, 2), (spec, err.getvalue())


QUIET = [
    ["simulate", "exp(x)", "--weight-var", "3", "--bias-var", "0.1", "--width", "16", "--depth",
     "30", "--seeds", "2", "--no-progress"],
    ["validate", "tanh", "--weight-var", "1e300", "--bias-var", "0", "--width", "16", "--depth",
     "10", "--seeds", "3", "--no-progress"],
    ["validate", "relu", "--weight-var", "50", "--bias-var", "0", "--width", "16", "--depth",
     "200", "--seeds", "2", "--no-progress", "--json", "--plot", "{tmp}/v.png"],
    ["analyze", "exp(x)", "--arch", "pre-ln-mlp-block", "--mu", "0.7", "--verify-depth", "300"],
    ["depth", "exp(x)", "--weight-var", "1.5", "--bias-var", "0.1", "--depth", "100"],
]


@pytest.mark.parametrize("argv", QUIET, ids=[" ".join(a[:2]) for a in QUIET])
def test_expected_overflow_is_silent(capsys, tmp_path, argv):
    """The command line no longer silences numpy: runaway networks and overflowing
    expectations are handled where they arise, so no RuntimeWarning escapes (here: an error)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rc, out, err = _run(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 0, err


def test_no_verdict_over_nothing(capsys):
    """validate at σ_w² = 1e308 compared one value of 20 (the rest non-finite) and said
    'consistent'; a verdict needs every entry compared."""
    import json

    rc, out, err = _run(capsys, ["validate", "tanh", "--weight-var", "1e308", "--bias-var", "0",
                                 "--width", "16", "--depth", "10", "--seeds", "3",
                                 "--no-progress", "--json"])
    assert rc == 0, err
    d = json.loads(out)
    assert d["verdict"] == "undetermined"
    assert d["apjn_verdict"] == "undetermined" and d["kernel_verdict"] == "undetermined"


def test_verdict_rules():
    import numpy as np

    from critheory.validation.compare import _verdict

    z = np.array([0.1, -0.5])
    assert _verdict([z], 2.0) == "consistent"
    assert _verdict([np.array([0.1, np.nan])], 2.0) == "undetermined"
    assert _verdict([np.array([5.0, np.nan])], 2.0) == "inconsistent"
    assert _verdict([np.array([])], 2.0) == "undetermined"
    assert _verdict([z], float("nan")) == "undetermined"


def test_default_apjn_method_is_chosen_by_cost():
    """The default was exact up to width 256 and 8 probes from 257 on: 43 s against 0.4 s
    across one unit of width. Now the exact APJN is the default while its cost
    seeds·depth·width³ stays within a fixed budget, whatever the width."""
    from critheory.simulation import EXACT_COST_BUDGET, default_probes

    assert default_probes(256, 50, 1, 8) is None          # 6.7e9 flops: exact
    assert default_probes(257, 50, 1, 8) is None          # no cliff at 257
    assert default_probes(256, 1000, 1, 8) == 8           # 1.3e11: probes
    for w in (16, 64, 256, 1024, 4096):
        for depth in (10, 100, 1000):
            if default_probes(w, depth, 1, 8) is None:
                assert 8 * depth * w ** 3 <= EXACT_COST_BUDGET


def test_fdr_monitor_refuses_dampening_one():
    """FDRMonitor(SGD(momentum=.9, dampening=1)) divided by 1 - dampening = 0 (issue 31)."""
    torch = pytest.importorskip("torch")
    from critheory.errors import InvalidArgumentError
    from critheory.torch.fdr import FDRMonitor

    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(InvalidArgumentError, match="dampening must be < 1"):
        FDRMonitor(torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=1.0))
    FDRMonitor(torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5))
    FDRMonitor(torch.optim.SGD([p], lr=0.1, momentum=0.0, dampening=1.0))   # no buffer


@pytest.mark.parametrize("argv", [
    ["moments", "tanh", "--var", "0.5"],
    ["point", "tanh", "--weight-var", "3", "--bias-var", "0.1"],
    ["depth", "relu", "--weight-var", "2", "--bias-var", "0", "--depth", "3"],
    ["line", "tanh", "--bias-var", "0:0.1:2"],
    ["analyze", "relu", "--verify-depth", "0"],
    ["ntk", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3"],
    ["finite-width", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3"],
    ["simulate", "linear", "--weight-var", "1", "--bias-var", "0", "--width", "4", "--depth",
     "3", "--seeds", "2", "--n-boot", "0"],
    ["recipe", "relu", "--width", "8", "--depth", "3"],
])
def test_every_json_describes_itself(capsys, argv):
    """Issue 26 item 7: version, command, activation, arch and the inputs, in every JSON."""
    import json

    import critheory

    rc, out, err = _run(capsys, argv + ["--json"])
    assert rc == 0, err
    d = json.loads(out)
    assert d["critheory_version"] == critheory.__version__ and d["command"] == argv[0]
    assert d["activation"] == argv[1]
    assert "arch" in d and (argv[0] == "moments" or d["arch"] is not None)
    assert "json" not in d["inputs"] and "func" not in d["inputs"]
    for i, a in enumerate(argv[2:]):
        if a.startswith("--"):
            assert a[2:].replace("-", "_") in d["inputs"], a


def test_simulation_options_need_simulate(capsys):
    """--probes of a theory command is read only by its simulation: refused without
    --simulate (it was accepted and ignored, issue 31), checked with it."""
    from critheory.cli.main import main

    base = ["finite-width", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "5"]
    assert main(base + ["--probes", "-3"]) == 2
    assert "--probes needs --simulate" in capsys.readouterr().err
    assert main(base + ["--probes", "-3", "--simulate", "--width", "8", "--seeds", "10"]) == 2
    assert "probes" in capsys.readouterr().err


@pytest.mark.slow
def test_largest_line_grid_finishes():
    """The largest accepted grid (100 000 bias variances) ends in well under a minute (it ran
    past 420 s: a per-target Python loop over every root and one per bracket row)."""
    import time

    import numpy as np

    from critheory.theory.meanfield.criticality import MAX_LINE_POINTS, critical_line
    from critheory.theory.meanfield.maps import architecture

    t0 = time.perf_counter()
    pts = critical_line(architecture("mlp", "tanh"), np.linspace(0, 1, MAX_LINE_POINTS))
    assert time.perf_counter() - t0 < 60
    assert len(pts) == MAX_LINE_POINTS   # one branch at every σ_b² in [0, 1]


@pytest.mark.parametrize("act,y", [("softplus", "1e200"), ("softplus", "1.7e308"),
                                   ("tanh", "1e60"), ("tanh", "1e308"), ("gelu", "1e10"),
                                   ("selu", "1e-30"), ("tanh", "1e-320")])
def test_line_at_extreme_bias_variances_is_fast(capsys, act, y):
    """Issue 31: these ran for minutes (softplus) or gave an empty line where a critical point
    exists (tanh at 1e60, 1e308, 1e-320); each now ends within seconds, exit 0."""
    import time

    t0 = time.perf_counter()
    assert main(["line", act, "--bias-var", y, "--json"]) == 0
    assert time.perf_counter() - t0 < 30
    out = capsys.readouterr().out
    if act == "tanh":
        assert '"weight_var"' in out


def test_unresolved_critical_line_is_said(capsys):
    """Issue 31 item 2: GELU at σ_b² = 1e10 (K* ~ 1e22) lies where σ_b²(K*) is within its
    float64 rounding of the target; the line reports no point, and now says why (it was an
    empty line with exit 0 and nothing on stderr). A resolved target warns nothing."""
    import warnings

    from critheory.theory.meanfield.criticality import ResolutionWarning, critical_line
    from critheory.theory.meanfield.maps import architecture

    with pytest.warns(ResolutionWarning, match="1e\\+10"):
        assert critical_line(architecture("mlp", "gelu"), [1e10]) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        assert len(critical_line(architecture("mlp", "gelu"), [1e6])) == 1
        assert len(critical_line(architecture("mlp", "softplus"), [1e200])) == 0  # none exists
    rc, out, err = _run(capsys, ["line", "gelu", "--bias-var", "1e10", "--json"])
    assert rc == 0 and json.loads(out)["line"] == []
    assert len(json.loads(out)["unresolved"]) == 1
    assert err.count("critheory: warning:") == 1 and len(err.strip().splitlines()) == 1
