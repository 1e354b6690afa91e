"""``critheory moments ACTIVATION --var K [--param NAME=VALUE] [--json]``."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from critheory.cli.main import main
from critheory.expectations.gaussian import moments

KEYS = {"phi", "phi2", "dphi2", "phi_d2phi"}


def test_json_subprocess():
    p = subprocess.run([sys.executable, "-m", "critheory", "moments", "tanh", "--var", "1",
                        "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    data = json.loads(p.stdout)
    assert data["activation"] == "tanh" and data["var"] == 1.0
    assert set(data["moments"]) == KEYS
    ref = moments("tanh", 1.0)
    for k, m in data["moments"].items():
        assert set(m) >= {"value", "error", "method"}
        assert isinstance(m["value"], float) and isinstance(m["error"], float)
        assert m["error"] >= 0 and m["method"]
        assert m["value"] == ref[k].value          # JSON round-trips float64 exactly
    assert data["moments"]["phi"]["value"] == 0.0
    assert data["moments"]["phi2"]["value"] == pytest.approx(0.39429449039784, rel=1e-12)


def test_json_in_process(capsys):
    assert main(["moments", "relu", "--var", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    m = data["moments"]
    assert m["phi2"]["value"] == 1.0 and m["dphi2"]["value"] == 0.5
    assert m["phi_d2phi"]["value"] == 0.0
    assert m["phi"]["value"] == pytest.approx(1 / math.sqrt(math.pi), rel=1e-15)
    assert m["phi2"]["method"] == "closed_form"


def test_text_output(capsys):
    assert main(["moments", "erf", "--var", "0.5"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 5 and "erf" in lines[0]
    for label, line in zip(("E[phi]", "E[phi^2]", "E[phi'^2]", "E[phi phi'']"), lines[1:]):
        assert line.split()[0] == label.split()[0]
    # E[erf(h)^2] = (2/π) arcsin(2K/(1+2K)) = (2/π) arcsin(1/2) = 1/3 at K = 1/2
    assert float(lines[2].split()[1]) == pytest.approx(1 / 3, rel=1e-15)


def test_param_and_formula(capsys):
    assert main(["moments", "tanh(a*x)", "--param", "a=2", "--var", "0.25", "--json"]) == 0
    a = json.loads(capsys.readouterr().out)["moments"]
    assert main(["moments", "tanh", "--var", "1", "--json"]) == 0
    b = json.loads(capsys.readouterr().out)["moments"]
    # tanh(2h) with K = 1/4 is tanh(h') with K = 1; φ' picks up a factor 2, φ'' a factor 4
    assert a["phi2"]["value"] == pytest.approx(b["phi2"]["value"], rel=1e-12)
    assert a["dphi2"]["value"] == pytest.approx(4 * b["dphi2"]["value"], rel=1e-12)
    assert a["phi_d2phi"]["value"] == pytest.approx(4 * b["phi_d2phi"]["value"], rel=1e-12)


def test_zoo_parameter(capsys):
    assert main(["moments", "leaky_relu", "--param", "slope=0.2", "--var", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["activation"] == "leaky_relu(slope=0.2)"
    assert data["moments"]["phi2"]["value"] == pytest.approx(1.04 * 3 / 2, rel=1e-14)
