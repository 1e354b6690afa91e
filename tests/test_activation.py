"""Activations: construction, zoo, derivatives, breakpoints/jumps, structure."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from critheory.activation import zoo
from critheory.activation.symbolic import X, Activation
from critheory.errors import CritheoryError, InvalidArgumentError

ZOO = zoo.names()


# ---------------------------------------------------------------------- zoo and construction
@pytest.mark.parametrize("name", ZOO)
def test_zoo_builds_and_evaluates(name):
    act = Activation.get(name)
    assert act.name == name
    x = np.linspace(-5.0, 5.0, 101)
    y = act(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    # float64 evaluator agrees with the mpmath one
    f = act.mpmath_func(0)
    for t in (-3.7, -1.0, -0.2, 0.0, 0.3, 2.0, 6.5):
        assert float(act(t)) == pytest.approx(float(f(mpmath.mpf(t))), rel=1e-14, abs=1e-300)


def test_zoo_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0, 7.0])
    exact = {
        "linear": x,
        "relu": np.maximum(x, 0),
        "leaky_relu": np.where(x > 0, x, 0.01 * x),
        "abs": np.abs(x),
        "hardtanh": np.clip(x, -1, 1),
        "relu6": np.clip(x, 0, 6),
        "tanh": np.tanh(x),
        "sigmoid": 1 / (1 + np.exp(-x)),
        "softplus": np.log1p(np.exp(x)),
        "swish": x / (1 + np.exp(-x)),
        "softsign": x / (1 + np.abs(x)),
        "elu": np.where(x > 0, x, np.expm1(x)),
        "sin": np.sin(x),
        "cos": np.cos(x),
    }
    for name, y in exact.items():
        np.testing.assert_allclose(Activation.get(name)(x), y, rtol=1e-15, atol=1e-16,
                                   err_msg=name)


def test_get_variants():
    a = Activation.get("tanh")
    assert Activation.get(a) is a
    assert Activation.get("  TANH ") == a                      # zoo lookup is case-insensitive
    assert Activation.get(sp.tanh(X)) == a                      # sympy expression
    assert Activation.get(sp.tanh(sp.Symbol("x"))) == a         # plain (non-real) x accepted
    b = Activation.get("tanh(a*x)", {"a": 2})
    assert float(b(0.5)) == pytest.approx(math.tanh(1.0), rel=1e-15)
    assert Activation.get("x*erf(x)").is_smooth
    with pytest.raises(InvalidArgumentError):
        Activation.get(a, {"a": 1})


def test_zoo_parameters():
    leaky = Activation.get("leaky_relu", {"slope": 0.2})
    assert leaky.name == "leaky_relu(slope=0.2)"
    assert float(leaky(-1.0)) == pytest.approx(-0.2)
    assert zoo.make("elu", {"alpha": 0.5}).name == "elu(alpha=0.5)"
    assert float(Activation.get("swish", {"beta": 2.0})(1.0)) == pytest.approx(1 / (1 + math.exp(-2)))
    with pytest.raises(InvalidArgumentError):
        zoo.make("relu", {"slope": 1.0})          # relu has no parameters
    with pytest.raises(InvalidArgumentError):
        zoo.make("no_such_activation")
    with pytest.raises(InvalidArgumentError):
        Activation.get("tanh(a*x)", {"b": 1.0})   # parameter not in the formula
    with pytest.raises(InvalidArgumentError):
        Activation.get("tanh(a*x)", {"a": float("nan")})
    with pytest.raises(InvalidArgumentError):
        Activation.get("tanh(a*x)", {"x": 1.0})
    with pytest.raises(CritheoryError):
        Activation.get(3.5)


def test_equality_and_hash():
    assert Activation.get("relu") == Activation.get("Max(0, x)")
    assert hash(Activation.get("relu")) == hash(Activation.get("Max(0, x)"))
    assert Activation.get("relu") != Activation.get("abs")
    assert "relu" in repr(Activation.get("relu"))


# ---------------------------------------------------------------------- derivatives
@pytest.mark.parametrize("name", ZOO)
def test_derivatives_match_finite_differences(name):
    """φ' and φ'' (almost everywhere) against central differences in mpmath, away from kinks."""
    act = Activation.get(name)
    f = act.mpmath_func(0)
    d1, d2 = act.numpy_func(1), act.numpy_func(2)
    with mpmath.workdps(40):
        for t in (-4.3, -1.7, -0.6, 0.35, 1.3, 3.1, 7.9):
            if any(abs(t - b) < 0.05 for b in act.breakpoints):
                continue
            h = mpmath.mpf(10) ** -12
            x = mpmath.mpf(t)
            fd1 = (f(x + h) - f(x - h)) / (2 * h)
            fd2 = (f(x + h) - 2 * f(x) + f(x - h)) / h ** 2
            assert float(d1(t)) == pytest.approx(float(fd1), rel=1e-12, abs=1e-14)
            assert float(d2(t)) == pytest.approx(float(fd2), rel=1e-6, abs=1e-8)


def test_derivative_expressions():
    tanh = Activation.get("tanh")
    assert sp.simplify(tanh.derivative(1) - (1 - sp.tanh(X) ** 2)) == 0
    assert tanh.derivative(0) == tanh.expr
    relu = Activation.get("relu")
    assert not relu.derivative(2).has(sp.DiracDelta)          # delta terms dropped
    with pytest.raises(InvalidArgumentError):
        tanh.derivative(-1)


# ---------------------------------------------------------------------- kinks
@pytest.mark.parametrize("name, bps", [
    ("linear", ()), ("relu", (0.0,)), ("leaky_relu", (0.0,)), ("abs", (0.0,)),
    ("hardtanh", (-1.0, 1.0)), ("relu6", (0.0, 6.0)), ("tanh", ()), ("gelu", ()),
    ("elu", (0.0,)), ("selu", (0.0,)), ("celu", (0.0,)), ("softsign", (0.0,)), ("sin", ()),
])
def test_breakpoints(name, bps):
    assert Activation.get(name).breakpoints == bps


def test_breakpoints_of_formulas():
    assert Activation.get("Max(0, x - 1.5)").breakpoints == (1.5,)
    assert Activation.get("Abs(x**2 - 4)").breakpoints == (-2.0, 2.0)
    assert Activation.get("Piecewise((x, x > 0.5), (0.5, True))").breakpoints == (0.5,)


def test_no_breakpoint_where_a_switch_only_rounds_to_zero():
    """Max(x, log(eˣ + 1)) is softplus: its switch x − log(eˣ + 1) = −log(1 + e⁻ˣ) is below
    30 digits of x from x ≈ 69 on, which made a breakpoint at 69.5 (the fuzz suite's
    ``Max(celu(log(1 + exp(x))), x)``) and then a 'closed form' of the branch x on both sides:
    E[φ] = 0, E[φ'²] = 0 with zero error bars. The switch is now 0 only if it is 0 at 1000
    digits too; a switch that vanishes exactly on an interval keeps its ends."""
    import critheory as ct

    act = Activation.get("Max(celu(log(1 + exp(x))), x)")
    assert act.breakpoints == ()
    for g in ("phi", "dphi2"):
        r = ct.expect(act, g, 0.01)
        ref = float(ct.expect(act, g, 0.01, method="mpmath", dps=30).value)
        assert r.method != "closed_form"
        assert abs(float(r.value) - ref) <= float(r.error), (g, r, ref)
    assert Activation.get("Abs(x) - x + tanh(x)").breakpoints == (0.0,)


@pytest.mark.parametrize("name, jumps", [
    ("relu", ((0.0, 0.0, 1.0),)),
    ("leaky_relu", ((0.0, 0.0, 0.99),)),
    ("abs", ((0.0, 0.0, 2.0),)),
    ("hardtanh", ((-1.0, -1.0, 1.0), (1.0, 1.0, -1.0))),
    ("relu6", ((0.0, 0.0, 1.0), (6.0, 6.0, -1.0))),
    ("elu", ((0.0, 0.0, 0.0),)),      # ELU with alpha = 1 is C^1
    ("softsign", ((0.0, 0.0, 0.0),)),
])
def test_jumps(name, jumps):
    got = Activation.get(name).jumps
    assert len(got) == len(jumps)
    for (b, v, d), (b2, v2, d2) in zip(got, jumps):
        assert b == b2
        assert v == pytest.approx(v2, abs=1e-15)
        assert d == pytest.approx(d2, rel=1e-14, abs=1e-15)


def test_selu_jump():
    (b, v, d), = Activation.get("selu").jumps
    scale, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    assert (b, v) == (0.0, 0.0)
    assert d == pytest.approx(scale * (1 - alpha), rel=1e-14)


def test_discontinuity_detected():
    step = Activation.get("Heaviside(x)")
    assert step.discontinuities == (0.0,)
    assert Activation.get("relu").discontinuities == ()
    Activation.get("relu").check_continuous()


# ---------------------------------------------------------------------- structure
@pytest.mark.parametrize("name, parity", [
    ("linear", "odd"), ("tanh", "odd"), ("erf", "odd"), ("sin", "odd"), ("softsign", "odd"),
    ("hardtanh", "odd"), ("abs", "even"), ("cos", "even"), ("relu", "none"), ("gelu", "none"),
    ("sigmoid", "none"), ("elu", "none"),
])
def test_parity(name, parity):
    assert Activation.get(name).parity == parity


@pytest.mark.parametrize("name, slopes", [
    ("linear", (1.0, 1.0)), ("relu", (1.0, 0.0)), ("leaky_relu", (1.0, 0.01)),
    ("abs", (1.0, -1.0)), ("tanh", None), ("relu6", None), ("hardtanh", None), ("elu", None),
])
def test_homogeneous_slopes(name, slopes):
    assert Activation.get(name).homogeneous_slopes == slopes


@pytest.mark.parametrize("formula, rates", [
    ("tanh(x)", (0.0, 0.0)), ("Max(0, x)", (0.0, 0.0)), ("log(1 + exp(x))", (0.0, 0.0)),
    ("exp(x)", (0.0, 1.0)), ("cosh(2*x)", (2.0, 2.0)), ("x**3", (0.0, 0.0)),
])
def test_growth_rate(formula, rates):
    got = Activation.get(formula).growth_rate
    assert got == pytest.approx(rates, abs=1e-2)


def test_taylor():
    t = Activation.get("tanh").taylor
    assert t.available and t.derivatives == (0, 1, 0, -2, 0)
    s = Activation.get("sigmoid").taylor
    assert s.derivatives[:2] == (sp.Rational(1, 2), sp.Rational(1, 4))
    r = Activation.get("relu").taylor
    assert not r.available and "kink" in r.reason


# ---------------------------------------------------------------------- float64 overflow repair
def test_overflow_repair_keeps_finite_values_and_marks_genuine_overflow():
    # log(1 + e^x) overflows in an intermediate beyond x ~ 11356 (long double exp) but equals
    # x there to 1e-4900; e^x itself overflows float64 beyond log(DBL_MAX) = 709.78.
    sp_ = Activation.get("log(1 + exp(x))").numpy
    x = np.array([800.0, 1.2e4, 1e5, 2e5, -1e5])
    np.testing.assert_array_equal(sp_(x), [800.0, 1.2e4, 1e5, 2e5, 0.0])
    ex = Activation.get("exp(x)").numpy
    # ask twice: the second call uses the remembered overflow threshold
    for _ in range(2):
        y = ex(np.array([709.0, 710.0, 1e5, -1e5, -710.0]))
        assert y[0] == math.exp(709.0) and np.all(np.isposinf(y[1:3])) and y[3] == 0.0
        assert y[4] == math.exp(-710.0)
    # a cancelling intermediate still gets its finite value back: e^x/(1 + e^x)^2 at -2e4
    d = Activation.get("exp(x)/(1 + exp(x))**2").numpy(np.array([-2e4, 2e4]))
    assert np.all(d == 0.0)
    s = Activation.get("exp(-x)/(1 + exp(-x))**2").numpy(np.array([-1e3]))
    assert s[0] == pytest.approx(float(mpmath.exp(-1000)), rel=1e-14)


def test_formula_activations_are_cached():
    """A formula string is parsed and analysed once; parameters are part of the key."""
    a = Activation.get("tanh(a*x) + 0.25*x", {"a": 2})
    assert Activation.get("tanh(a*x) + 0.25*x", {"a": 2.0}) is a
    b = Activation.get("tanh(a*x) + 0.25*x", {"a": 3})
    assert b is not a and float(b.numpy(1.0)) == pytest.approx(np.tanh(3.0) + 0.25, rel=1e-15)


@pytest.mark.parametrize("n", [-9, -4, -3, -2, 3, 4, 5, 8, 13])
def test_integer_powers_by_squaring(n):
    """Integer powers are evaluated by repeated squaring (``ipow``); against np.power, within
    the rounding of ~2 log2|n| products (and one division for n < 0)."""
    from critheory.activation.numeric import ipow

    x = np.random.default_rng(7).uniform(-3.0, 3.0, 1000)
    x = x[np.abs(x) > 0.05]
    want = np.power(x, float(n))
    got = ipow(x, n)
    ulps = 2 * math.log2(abs(n)) + 2
    assert np.all(np.abs(got - want) <= ulps * np.finfo(float).eps * np.abs(want))
    act = Activation.get(f"x**{n} * exp(-x**2)" if n > 0 else f"exp(-x**2) / (1 + x**2)**{-n}")
    f = act.numpy
    assert np.allclose(f(x), [float(act.mpmath_func(0)(t)) for t in x], rtol=1e-14, atol=0)


# ------------------------------------------------- issue 26 item 4: zoo names inside formulas
@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_zoo_name_inside_formula(name):
    """``0.5*NAME(x) + 0.5*x`` is the zoo activation's expression substituted: its moments
    follow from the plain zoo activation's, E[φ²] = E[f²]/4 + E[x f]/2 + K/4 with
    E[x f] = K E[f'] (Gaussian integration by parts), and E[φ'²] = E[f'²]/4 + E[f']/2 + 1/4."""
    from critheory.expectations.gaussian import expect

    K = 0.7
    act = Activation.get(f"0.5*{name}(x) + 0.5*x")
    f2, df2, df = (expect(name, g, K) for g in ("phi2", "dphi2", "dphi"))
    want_phi2 = f2.value / 4 + K * df.value / 2 + K / 4
    want_dphi2 = df2.value / 4 + df.value / 2 + 0.25
    got_phi2, got_dphi2 = expect(act, "phi2", K), expect(act, "dphi2", K)
    tol = lambda *e: sum(x.error for x in e) + 1e-14   # noqa: E731
    assert abs(got_phi2.value - want_phi2) <= tol(got_phi2, f2, df), name
    assert abs(got_dphi2.value - want_dphi2) <= tol(got_dphi2, df2, df), name


def test_zoo_name_with_scaled_argument_and_parameters():
    """``x*sigmoid(1.702*x)`` is QuickGELU: the same function as ``x/(1 + exp(-1.702*x))``;
    a zoo parameter given by the user replaces the zoo default (``swish(x)`` with beta=2)."""
    a = Activation.get("x*sigmoid(1.702*x)")
    b = Activation.get("x/(1 + exp(-1.702*x))")
    xs = np.linspace(-6, 6, 25)
    assert np.allclose(a.numpy(xs), b.numpy(xs), rtol=1e-15, atol=0)
    s = Activation.get("swish(x)", {"beta": 2})
    assert np.allclose(s.numpy(xs), xs / (1 + np.exp(-2 * xs)), rtol=1e-15, atol=0)
    selu = Activation.get("selu(x)")
    assert np.allclose(selu.numpy(xs), zoo.make("selu").numpy(xs), rtol=1e-15, atol=0)


@pytest.mark.parametrize("formula", ["foo(x)", "expand((1+x)**3000)", "x*simplify(x)",
                                     "integrate(x, x)", "a(x)"])
def test_unknown_function_is_a_parse_error(formula):
    from critheory.errors import ActivationParseError

    with pytest.raises(ActivationParseError, match="unknown function|called as a function"):
        Activation.get(formula, {"a": 1} if formula == "a(x)" else None)
