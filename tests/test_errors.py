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


# ------------------------------------------- issue 31: formula edge cases and library arguments
@pytest.mark.parametrize("formula", ["2**2**2**2**2", "10**1000000*x", "factorial(10**6)*x",
                                     "9**9**9", "factorial(10**10)", "expand((1+x)**3000)",
                                     "exp(exp(exp(x)))", "exp(exp(exp(-2 - x)))"])
def test_huge_constants_and_towers_refused_fast(formula):
    """Integer towers, factorials and nested exponentials are refused in seconds, before sympy
    or mpmath computes them (they hung, or ended in MemoryError / the integer-string limit)."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(CritheoryError):
        Activation.get(formula)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("argv", [
    ["moments", "arg(x)", "--var", "1"],
    ["moments", "tanh(pi*x)", "--param", "pi=1", "--var", "1"],
    ["moments", "tanh(E*x)", "--param", "E=1", "--var", "1"],
    ["moments", "tanh", "--var", "5e-324"],
    ["point", "1e300*x", "--weight-var", "1", "--bias-var", "0.1"],
    ["analyze", "exp(exp(exp(-2 - x)))"],
    ["moments", "2**2**2**2**2"],
    ["moments", "0.5*foo(x) + 0.5*x"],
])
def test_cli_formula_edge_cases_exit_2(argv, capsys):
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_arg_is_judged_as_the_step_it_is():
    """arg(x) = π·H(−x) on the reals: refused like ``pi*Heaviside(-x)`` (discontinuous), not
    E[φ'²] = 0 ± 0 by 'symmetry'."""
    for f in ("arg(x)", "pi*Heaviside(-x)"):
        with pytest.raises(CritheoryError, match="discontinuous"):
            expect(f, "dphi2", 1.0)


def test_polynomial_of_huge_degree_point_is_not_an_overflow():
    from critheory.theory.meanfield.fixed_points import analyze_point
    from critheory.theory.meanfield.maps import architecture

    try:
        analyze_point(architecture("mlp", "x**1000"), 1.0, 0.1)
    except CritheoryError:
        pass


@pytest.mark.parametrize("K", ["1", True, np.bool_(True), [1.0, "2"], 5e-324,
                               np.array(["1"])])
def test_variance_types_refused(K):
    with pytest.raises(InvalidVarianceError):
        expect("tanh", "phi2", K)


def test_variance_array_size_bounded():
    with pytest.raises(InvalidVarianceError, match="at most"):
        check_variance(np.ones(10 ** 7))


def test_library_arguments_raise_project_errors():
    from critheory.blocks import Residual
    from critheory.theory.meanfield.criticality import critical_line, universality
    from critheory.theory.meanfield.fixed_points import analyze_point
    from critheory.theory.meanfield.maps import architecture

    a = architecture("mlp", "tanh")
    for call in (lambda: critical_line("tanh", [0.1]), lambda: universality(None),
                 lambda: analyze_point(a, [1, 2], 0), lambda: Activation.get("tanh(a*x)", [1]),
                 lambda: Residual(None), lambda: critical_line(a, "0.1")):
        with pytest.raises(CritheoryError):
            call()
