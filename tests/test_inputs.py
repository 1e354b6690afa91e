"""The point of the critical line that stays critical for inputs of a given scale
(:mod:`critheory.theory.meanfield.inputs`, issue 26.5), checked against mpmath quadrature (an
independent route to the Gaussian expectations), and its use by ``recipe`` and ``analyze``."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from critheory.activation import Activation
from critheory.errors import InvalidArgumentError


@pytest.mark.parametrize("name", ["gelu", "silu", "x/(1 + exp(-1.702*x))"])
def test_point_for_inputs_against_mpmath(name):
    import mpmath as mp

    from critheory.theory.meanfield.inputs import critical_point_for_inputs

    p = critical_point_for_inputs(name, 1.0, depth=64)
    act = Activation.get(name)
    f = lambda z: act.numpy(np.array([float(z)]))[0]                 # noqa: E731
    h = 1e-6

    def gauss(g, K):
        return mp.quad(lambda z: g(mp.sqrt(K) * z) * mp.exp(-z * z / 2), [-mp.inf, 0, mp.inf]) \
            / mp.sqrt(2 * mp.pi)
    mp.mp.dps = 20
    K = p.fixed_point
    phi2 = float(gauss(lambda u: f(u) ** 2, K))
    dphi2 = float(gauss(lambda u: ((f(u + h) - f(u - h)) / (2 * h)) ** 2, K))
    # the critical line at K*: χ_J = σ_w² E[φ'²] = 1 and K* = σ_b² + σ_w² E[φ²]; the derivative
    # by central differences (error ~h² ~ 1e-12, rounding ~1e-10)
    assert p.weight_var * dphi2 == pytest.approx(1.0, abs=1e-7)
    assert p.bias_var + p.weight_var * phi2 == pytest.approx(K, rel=1e-7)
    assert p.bias_var >= 0 and p.chi_parallel <= 1 + 1e-9
    assert p.critical_reached is False and p.depth_lost is not None and p.depth_lost < 64
    assert p.apjn_max_log < math.log(1.2)
    assert p.weight_std(256) == pytest.approx(math.sqrt(p.weight_var / 256))




def _mp_kernel_map(name, sw, sb):
    import mpmath as mp

    act = Activation.get(name)
    f = lambda z: act.numpy(np.array([float(z)]))[0]                 # noqa: E731

    def step(K):
        e = mp.quad(lambda z: f(mp.sqrt(K) * z) ** 2 * mp.exp(-z * z / 2),
                    [-mp.inf, 0, mp.inf]) / mp.sqrt(2 * mp.pi)
        return sb + sw * float(e)
    return step


def test_reached_point_is_reached_by_the_inputs():
    """GELU from q0 = 1: the chosen fixed point is where the kernel map (by mpmath) goes."""
    import mpmath as mp

    from critheory.theory.meanfield.inputs import critical_point_for_inputs

    mp.mp.dps = 15
    p = critical_point_for_inputs("gelu", 1.0, depth=64)
    assert p.rule == "reached"
    step = _mp_kernel_map("gelu", p.weight_var, p.bias_var)
    K = p.bias_var + p.weight_var * 1.0
    assert K == pytest.approx(p.input_kernel, rel=1e-12)
    gap0 = abs(K - p.fixed_point)
    for _ in range(200):
        K = step(K)
    assert abs(K - p.fixed_point) < 0.1 * gap0


def test_rules_of_the_classes():
    from critheory.theory.meanfield.inputs import critical_point_for_inputs

    relu = critical_point_for_inputs("relu", 1.0, depth=32)       # scale-invariant: K* = K1
    assert relu.rule == "K*=K1" and relu.weight_var == pytest.approx(2.0, rel=1e-12)
    assert relu.bias_var == pytest.approx(0.0, abs=1e-12)
    tanh = critical_point_for_inputs("tanh", 1.0, depth=32)       # K*=0 class attracts all
    assert tanh.rule == "critical" and (tanh.weight_var, tanh.bias_var) == (1.0, 0.0)
    with pytest.raises(InvalidArgumentError):
        critical_point_for_inputs("gelu", 0.0)


def test_recipe_warns_at_a_half_stable_point_and_takes_q0():
    from critheory.theory.meanfield.inputs import CriticalityWarning, critical_point_for_inputs
    from critheory.theory.recipes import recipe

    with pytest.warns(CriticalityWarning, match="half-stable"):
        r = recipe("gelu", width=256, depth=16)
    assert r.warnings and "q0" in r.warnings[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CriticalityWarning)
        r1 = recipe("gelu", width=256, depth=16, q0=1.0)
        rt = recipe("tanh", width=256, depth=16)                 # K*=0: nothing to warn
    p = critical_point_for_inputs("gelu", 1.0, depth=16)
    assert r1.critical_point == (p.weight_var, p.bias_var) and not r1.warnings
    assert r1.to_dict()["input_point"]["rule"] == p.rule and not rt.warnings
    with pytest.raises(InvalidArgumentError, match="not both"):
        recipe("gelu", width=256, depth=16, q0=1.0, weight_var=2.0)


def test_analyze_says_what_to_set(capsys):
    from critheory.cli.main import main

    assert main(["analyze", "gelu", "--verify-depth", "0", "--json"]) == 0
    init = json.loads(capsys.readouterr().out)["initialization"]
    assert init["rule"] == "reached" and init["q0"] == 1.0 and init["warnings"]
    assert init["bias_std"] == pytest.approx(math.sqrt(init["bias_var"]))
    assert main(["analyze", "tanh", "--verify-depth", "0"]) == 0
    out = capsys.readouterr().out
    assert "what to set in an MLP" in out and "std = sqrt(1/fan_in)" in out
    assert main(["analyze", "tanh", "--arch", "pre-ln", "--q0", "2"]) == 2
