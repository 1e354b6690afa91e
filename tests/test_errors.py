"""Bad input raises a CritheoryError subclass in the library, and gives exactly one line on
stderr, a nonzero exit status and no traceback on the command line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import critheory
from critheory import errors
from critheory.activation.symbolic import Activation
from critheory.cli.main import main
from critheory.errors import (ActivationParseError, CritheoryError, DomainError, FreeSymbolError,
                              GrowthError, InvalidArgumentError, InvalidVarianceError)
from critheory.expectations.gaussian import check_variance, expect, expect2, moments


def test_hierarchy():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, CritheoryError), name
        assert getattr(critheory, name) is cls
    assert issubclass(InvalidVarianceError, ValueError)
    assert issubclass(ActivationParseError, errors.ActivationError)


# ---------------------------------------------------------------------- library
BAD_ACTIVATIONS = [
    ("x**", ActivationParseError),
    ("tanh((", ActivationParseError),
    ("", ActivationParseError),
    ("x +* 2", ActivationParseError),
    ("tanh(a*x)", FreeSymbolError),
    ("log(x)", DomainError),
    ("sqrt(x)", DomainError),
    ("1/x", DomainError),
    ("x**0.5", DomainError),
    ("log(x**2)", DomainError),
    ("nan*x", DomainError),
    ("exp(x**2)", GrowthError),
    ("exp(x**2/100)", GrowthError),
    ("cosh(x)**x", GrowthError),
    # formulas are evaluated by sympy's parser: code that is not arithmetic is refused
    ("__import__('os').system('true')", ActivationParseError),
    ("x.func", ActivationParseError),
    ("open", ActivationParseError),
    ("lambda: x", ActivationParseError),
    ("x if x > 0 else 0", ActivationParseError),
]


@pytest.mark.parametrize("formula, exc", BAD_ACTIVATIONS)
def test_bad_activation(formula, exc):
    with pytest.raises(exc):
        Activation.get(formula)
    with pytest.raises(exc):
        expect(formula, "phi2", 1.0)


def test_free_symbol_with_value_works():
    act = Activation.get("tanh(a*x)", {"a": 2})
    assert float(act(0.25)) == pytest.approx(np.tanh(0.5), rel=1e-15)
    assert expect(act, "phi2", 1.0).value == pytest.approx(
        expect("tanh(2*x)", "phi2", 1.0).value, rel=1e-14)


@pytest.mark.parametrize("K", [0.0, -1.0, -1e-300, float("nan"), float("inf"), -float("inf"),
                               [1.0, 0.0], [1.0, float("nan")], [], "abc", None])
def test_bad_variance(K):
    with pytest.raises(InvalidVarianceError):
        expect("tanh", "phi2", K)
    with pytest.raises(InvalidVarianceError):
        check_variance(K)
    with pytest.raises(InvalidVarianceError):
        moments("relu", K)


@pytest.mark.parametrize("K11, K12, K22", [
    (1.0, 1.5, 1.0),               # |K12| > sqrt(K11 K22)
    (1.0, -1.0001, 1.0),
    (2.0, 0.0, -1.0),              # negative variance
    (0.0, 0.0, 1.0),
    (1.0, float("nan"), 1.0),
    (1.0, float("inf"), 1.0),
    (float("inf"), 0.0, 1.0),
    ([1.0, 1.0], [0.5, 2.0], [1.0, 1.0]),
])
def test_bad_covariance(K11, K12, K22):
    with pytest.raises(InvalidVarianceError):
        expect2("tanh", "phi", "phi", K11, K12, K22)


def test_other_bad_arguments():
    with pytest.raises(InvalidArgumentError):
        expect("tanh", "no_such_integrand", 1.0)
    with pytest.raises(InvalidArgumentError):
        expect("tanh", "phi2", 1.0, method="simpson")
    with pytest.raises(InvalidArgumentError):
        expect2("hardtanh", "phi_d2phi", "phi", 1.0, 0.5, 1.0)   # point masses in 2-D
    with pytest.raises(DomainError):
        expect("Heaviside(x)", "dphi2", 1.0)                # φ' has a delta
    with pytest.raises(CritheoryError):
        expect("Abs(x)**0.5", "dphi2", 1.0)                 # E[1/(4|h|)] diverges
    assert expect("Heaviside(x)", "phi2", 1.0).value == pytest.approx(0.5, rel=1e-13)


# ---------------------------------------------------------------------- command line
CLI_BAD = [
    ["moments", "x**"],
    ["moments", "tanh(("],
    ["moments", "tanh(a*x)"],
    ["moments", "log(x)"],
    ["moments", "sqrt(x)"],
    ["moments", "1/x"],
    ["moments", "exp(x**2)"],
    ["moments", "Heaviside(x)"],
    ["moments", "tanh", "--var", "0"],
    ["moments", "tanh", "--var", "-1"],
    ["moments", "tanh", "--var", "nan"],
    ["moments", "tanh", "--var", "inf"],
    ["moments", "tanh(a*x)", "--param", "a"],
    ["moments", "tanh(a*x)", "--param", "a=abc"],
    ["moments", "tanh(a*x)", "--param", "b=1"],
    ["moments", "__import__('os').system('true')"],
]


@pytest.mark.parametrize("argv", CLI_BAD, ids=[" ".join(a[1:]) for a in CLI_BAD])
def test_cli_bad_input_one_line(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("critheory: error: ")
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["moments"], ["moments", "tanh", "--var", "abc"],
                                  ["no-such-command"]])
def test_cli_usage_errors_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["x**"], pytest.param(["tanh", "--var", "-1"],
                                                         marks=pytest.mark.slow)])
def test_cli_subprocess_bad_input(args):
    """The installed entry point (python -m critheory): status 2, one line, no traceback."""
    p = subprocess.run([sys.executable, "-m", "critheory", "moments", *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "Traceback" not in p.stderr


# ---------------------------------------------------------------- issue 13: raw errors from inside
@pytest.mark.parametrize("formula", ["floor(x)", "DiracDelta(x)", "Integral(x, x)",
                                     "Derivative(tanh(x), x)", "ceiling(x) + x", "frac(x)"])
def test_unsupported_formulas_are_activation_errors(formula):
    from critheory.errors import ActivationError

    with pytest.raises(ActivationError):
        Activation.from_string(formula)


def test_compatibility_characters_are_normalized():
    assert Activation.from_string("ｔａｎｈ(x)").expr == Activation.from_string("tanh(x)").expr


def test_huge_polynomial_degree_is_a_growth_error():
    from critheory.errors import GrowthError
    from critheory.expectations import moments

    with pytest.raises(GrowthError):
        moments(Activation.from_string("x**1000"), 1.0)


@pytest.mark.parametrize("call", [
    lambda: __import__("critheory.expectations", fromlist=["expect"]).expect(
        "tanh", "phi2", 1.0, rtol="a"),
    lambda: __import__("critheory.expectations", fromlist=["expect"]).expect(
        "tanh", "phi2", 1.0, method="mpmath", dps=-5),
    lambda: __import__("critheory.expectations", fromlist=["expect2"]).expect2(
        "tanh", "phi", "phi", [1, 2], [0.1, 0.2, 0.3], [1, 2]),
    lambda: __import__("critheory.theory.meanfield.depth", fromlist=["x"]).depth_curves(
        __import__("critheory.theory.meanfield.maps", fromlist=["x"]).architecture("mlp", "tanh"),
        1.0, 0.0, float("inf")),
    lambda: __import__("critheory.theory.meanfield.depth", fromlist=["x"]).fit_power_law([], []),
    lambda: __import__("critheory.theory.meanfield.maps", fromlist=["x"]).architecture(
        "residual", "tanh", mu="abc"),
    lambda: __import__("critheory.theory.meanfield.criticality", fromlist=["x"]).critical_line(
        __import__("critheory.theory.meanfield.maps", fromlist=["x"]).architecture("mlp", "tanh"),
        "0:1:3"),
], ids=["rtol", "dps", "expect2-shapes", "depth-inf", "fit-empty", "mu-str", "line-str"])
def test_library_boundary_raises_critheory_errors(call):
    """Bad arguments at the public boundary: a CritheoryError, not a TypeError/ValueError/
    OverflowError/IndexError from inside numpy (these were found by the adversarial pass)."""
    from critheory.errors import CritheoryError

    with pytest.raises(CritheoryError):
        call()
