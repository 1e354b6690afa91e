"""The shared base package critheory.common: argument checks, the JSON cleaner, the power-law core."""
from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critheory.common.checks import (check_bias_var, check_hyper, check_int, check_layers,
                                     check_nonnegative, check_real, check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.powerlaw import fit_line, local_slope, ols, tail_window, window_mask
from critheory.errors import InvalidArgumentError, InvalidVarianceError

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


# =============================================================================== checks
# ------------------------------------------------------------------ check_hyper (arrays)
@pytest.mark.parametrize("sw, sb", [(1.0, 0.0), (2, 1), ([0.5, 1.0], 0.3), (1e-300, [0.0, 1e300]),
                                    (np.float32(1.5), np.int64(0))])
def test_check_hyper_accepts(sw, sb):
    w, b = check_hyper(sw, sb)
    assert w.dtype == float and b.dtype == float
    np.testing.assert_array_equal(w, np.asarray(sw, dtype=float))
    np.testing.assert_array_equal(b, np.asarray(sb, dtype=float))


@pytest.mark.parametrize("sw, sb, error, message", [
    (0.0, 0.0, InvalidVarianceError, "weight variance must be > 0 (got 0)"),
    (-1.0, 0.0, InvalidVarianceError, "weight variance must be > 0 (got -1)"),
    ([1.0, -2.5], 0.0, InvalidVarianceError, "weight variance must be > 0 (got -2.5)"),
    (1.0, -0.5, InvalidVarianceError, "bias variance must be >= 0 (got -0.5)"),
    (-1.0, -0.5, InvalidVarianceError, "bias variance must be >= 0 (got -0.5)"),  # bias first
    (math.nan, 0.0, InvalidVarianceError, "weight and bias variances must be finite"),
    (1.0, math.inf, InvalidVarianceError, "weight and bias variances must be finite"),
    ("abc", 0.0, InvalidVarianceError, "weight and bias variances must be numbers"),
    (None, 0.0, InvalidVarianceError, "weight and bias variances must be finite"),  # NaN
    ([], 0.0, InvalidArgumentError, "empty array of weight or bias variances"),
])
def test_check_hyper_refuses_with_the_theory_messages(sw, sb, error, message):
    with pytest.raises(error) as exc:
        check_hyper(sw, sb)
    assert str(exc.value) == message


def test_check_hyper_allow_zero_weight():
    w, _ = check_hyper([0.0, 1.0], 0.0, allow_zero_weight=True)
    assert w.tolist() == [0.0, 1.0]
    with pytest.raises(InvalidVarianceError, match=r"weight variance must be >= 0 \(got -1\)"):
        check_hyper(-1.0, 0.0, allow_zero_weight=True)


# ------------------------------------------------------------------ scalar variances
@pytest.mark.parametrize("value", [1.0, 3, np.float64(0.25), np.int32(2), Fraction(1, 3), 1e-300])
def test_check_weight_var_accepts(value):
    assert check_weight_var(value) == float(value)
    assert isinstance(check_weight_var(value), float)


@pytest.mark.parametrize("value", [0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, True,
                                   np.bool_(True), "1.0", None, [1.0], np.array([1.0]),
                                   object()])
def test_check_weight_var_refuses(value):
    with pytest.raises(InvalidVarianceError) as exc:
        check_weight_var(value)
    msg = str(exc.value)
    assert msg.startswith("weight_var must be a finite number > 0") and "got" in msg


def test_scalar_checks_name_the_argument():
    with pytest.raises(InvalidVarianceError, match="^sigma_w must be a finite number > 0"):
        check_weight_var(-1, "sigma_w")
    with pytest.raises(InvalidVarianceError, match="^bias_var must be a finite number >= 0 "
                                                   r"\(the bias variance sigma_b\^2\), got -0.1$"):
        check_bias_var(-0.1)
    assert check_weight_var(0, allow_zero_weight=True) == 0.0
    with pytest.raises(InvalidVarianceError, match=">= 0"):
        check_weight_var(-1, allow_zero_weight=True)


@pytest.mark.parametrize("value", [0, 0.0, 2.5, np.float32(1e-3)])
def test_check_bias_var_accepts(value):
    assert check_bias_var(value) == float(value)


@pytest.mark.parametrize("value", [-1e-300, math.nan, math.inf, False, "0", None, (0.0,)])
def test_check_bias_var_refuses(value):
    with pytest.raises(InvalidVarianceError):
        check_bias_var(value)


@settings(max_examples=300, deadline=None)
@given(ANY_FLOAT, ANY_FLOAT)
def test_one_rule_for_arrays_and_scalars(sw, sb):
    """check_hyper accepts a pair exactly when the scalar checks accept both numbers."""
    def ok(f, *a):
        try:
            f(*a)
            return True
        except InvalidVarianceError:
            return False

    vector = ok(check_hyper, sw, sb)
    assert vector == (ok(check_weight_var, sw) and ok(check_bias_var, sb))
    assert vector == (math.isfinite(sw) and math.isfinite(sb) and sw > 0 and sb >= 0)
    assert ok(check_hyper, [sw, 1.0], [0.0, sb]) == vector


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=5e-324, allow_infinity=False),
       st.floats(min_value=0.0, allow_infinity=False))
def test_valid_variances_round_trip(sw, sb):
    assert check_weight_var(sw) == sw and check_bias_var(sb) == sb
    w, b = check_hyper(sw, sb)
    assert float(w) == sw and float(b) == sb


def test_check_nonnegative():
    assert check_nonnegative("q0", 0) == 0.0 and check_nonnegative("q0", 2.5) == 2.5
    with pytest.raises(InvalidArgumentError, match="^q0 must be a finite number >= 0, got -1"):
        check_nonnegative("q0", -1)
    with pytest.raises(InvalidVarianceError, match="^ln_eps"):
        check_nonnegative("ln_eps", math.nan, error=InvalidVarianceError)
    with pytest.raises(InvalidVarianceError):
        check_nonnegative("ln_eps", "1e-5", error=InvalidVarianceError)


# ------------------------------------------------------------------ integers, reals, layers
@pytest.mark.parametrize("value, minimum, expected", [(3, 1, 3), (3.0, 1, 3), (np.int64(0), 0, 0),
                                                      (np.float64(7.0), 2, 7)])
def test_check_int_accepts(value, minimum, expected):
    got = check_int("n", value, minimum)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value, minimum", [(True, 0), (np.bool_(False), 0), (2.5, 1), ("3", 1),
                                            (None, 0), (math.nan, 0), (math.inf, 0), (0, 1),
                                            (-1, 0), ([1], 0)])
def test_check_int_refuses(value, minimum):
    with pytest.raises(InvalidArgumentError, match=f"^seeds must be a whole number >= {minimum}"):
        check_int("seeds", value, minimum)


@given(st.integers(min_value=-10 ** 6, max_value=10 ** 6), st.integers(-5, 5))
def test_check_int_property(value, minimum):
    if value >= minimum:
        assert check_int("n", value, minimum) == value
        assert check_int("n", float(value), minimum) == value
    else:
        with pytest.raises(InvalidArgumentError):
            check_int("n", value, minimum)


@pytest.mark.parametrize("value", [0, -2.5, np.float32(0.5), Fraction(1, 4), np.int8(3)])
def test_check_real_accepts(value):
    assert check_real("mu", value) == float(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.5", None, [0.5],
                                   np.array([0.5]), 1j])
def test_check_real_refuses(value):
    with pytest.raises(InvalidArgumentError, match="^mu must be a finite number, got "):
        check_real("mu", value)


@given(ANY_FLOAT)
def test_check_real_property(value):
    if math.isfinite(value):
        assert check_real("x", value) == value
    else:
        with pytest.raises(InvalidArgumentError):
            check_real("x", value)


def test_check_layers():
    assert check_layers(8, 4, 1) == (8, 4, 1)
    assert check_layers(8.0, 4, 4) == (8, 4, 4)
    for width, depth, l0, name in [(0, 4, 1, "width"), (8, 0, 1, "depth"), (8, 4, 0, "l0"),
                                   (8, 4, 5, "l0"), (True, 4, 1, "width")]:
        with pytest.raises(InvalidArgumentError, match=f"^{name} must be"):
            check_layers(width, depth, l0)


# =============================================================================== jsonable
def test_jsonable_converts():
    obj = {"a": np.array([[1.0, np.nan], [np.inf, -np.inf]]), 3: (np.int64(2), np.float32(0.5)),
           "b": [np.bool_(True), False, None, "s", math.nan], "c": {1.5: np.float64(-0.0)},
           "d": np.array(7), "e": Fraction(1, 2)}
    out = jsonable(obj)
    assert out == {"a": [[1.0, None], [None, None]], "3": [2, 0.5],
                   "b": [True, False, None, "s", None], "c": {"1.5": -0.0}, "d": 7, "e": 0.5}
    assert type(out["3"][0]) is int and type(out["3"][1]) is float
    assert type(out["b"][0]) is bool and type(out["d"]) is int
    json.dumps(out, allow_nan=False)


def test_jsonable_leaves_other_objects_and_input_alone():
    marker = object()
    assert jsonable(marker) is marker
    a = np.array([np.nan])
    jsonable({"a": a})
    assert np.isnan(a[0])


def test_one_jsonable_everywhere():
    import importlib

    report, engine, fits, compare = (importlib.import_module(f"critheory.{m}") for m in (
        "io.report", "simulation.engine", "simulation.fits", "validation.compare"))

    assert report.jsonable is jsonable and not hasattr(report, "clean")
    assert engine.jsonable is jsonable and fits.jsonable is jsonable
    assert compare.jsonable is jsonable


_LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | ANY_FLOAT | st.text(max_size=5)
           | st.floats(width=32).map(np.float32) | st.integers(-2 ** 31, 2 ** 31).map(np.int64))
_TREES = st.recursive(
    _LEAVES,
    lambda kids: (st.lists(kids, max_size=4) | st.lists(kids, max_size=4).map(tuple)
                  | st.dictionaries(st.text(max_size=3) | st.integers(), kids, max_size=4)),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(_TREES)
def test_jsonable_is_strict_json_and_idempotent(tree):
    out = jsonable(tree)
    text = json.dumps(out, allow_nan=False)
    assert jsonable(out) == out
    assert json.loads(text) == out


@given(st.lists(ANY_FLOAT, max_size=10))
def test_jsonable_arrays(values):
    out = jsonable(np.array(values, dtype=float))
    assert out == [v if math.isfinite(v) else None for v in values]


# =============================================================================== power law
def test_window_mask():
    d = np.arange(0, 10)
    v = np.array([1, 1, 0, np.nan, 1, -1, 1, np.inf, 1, 1], dtype=float)
    assert window_mask(d).tolist() == [False] + [True] * 9
    assert window_mask(d, positive=False).all()
    assert np.flatnonzero(window_mask(d, (3, 7))).tolist() == [3, 4, 5, 6, 7]
    assert np.flatnonzero(window_mask(d, (None, 2))).tolist() == [1, 2]
    assert np.flatnonzero(window_mask(d, (8, None))).tolist() == [8, 9]
    assert np.flatnonzero(window_mask(d, values=v)).tolist() == [1, 4, 6, 8, 9]


def test_tail_window():
    assert tail_window(np.arange(1, 1501)) == (150, 1500)
    assert tail_window(np.arange(1, 9)) == (1, 8)
    assert tail_window(np.arange(5, 60)) == (5, 59)


@pytest.mark.parametrize("slope, amp", [(-1.0, 1.0), (-1.5, 3.0), (0.5, 0.2), (2.0, 7.0),
                                        (0.0, 4.0)])
def test_exact_power_law(slope, amp):
    l = np.arange(1, 301, dtype=float)
    f = fit_line(l, amp * l ** slope, window=(20, 280))
    assert f.slope == pytest.approx(slope, abs=1e-12)
    assert math.exp(f.intercept) == pytest.approx(amp, rel=1e-11)
    assert f.local_slope == pytest.approx(slope, abs=1e-10)
    assert f.n_points == 261 and f.rms_residual < 1e-12
    assert f.mask.sum() == 261 and f.x[0] == math.log(20) and f.x[-1] == math.log(280)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(3, 200), st.floats(-3, 3), st.floats(0.01, 2))
def test_against_polyfit(seed, n, slope, noise):
    rng = np.random.default_rng(seed)
    l = np.sort(rng.choice(np.arange(1, 10 * n + 1), size=n, replace=False)).astype(float)
    y = np.exp(0.3 + slope * np.log(l) + noise * rng.standard_normal(n))
    f = fit_line(l, y)
    p = np.polyfit(np.log(l), np.log(y), 1)
    scale = 1 + abs(p[0]) + abs(p[1])
    assert f.slope == pytest.approx(p[0], abs=1e-9 * scale)
    assert f.intercept == pytest.approx(p[1], abs=1e-9 * scale)
    k = max(3, n // 10)
    assert f.local_slope == pytest.approx(np.polyfit(np.log(l)[-k:], np.log(y)[-k:], 1)[0],
                                          abs=1e-8 * (1 + abs(f.local_slope)))
    # residual about the polyfit line
    r = np.log(y) - np.polyval(p, np.log(l))
    assert f.rms_residual == pytest.approx(np.sqrt(np.mean(r ** 2)), rel=1e-7, abs=1e-12)


def test_ols_is_vectorized():
    rng = np.random.default_rng(3)
    x = np.log(np.arange(2, 40, dtype=float))
    y = rng.standard_normal((4, 5, x.size))
    slope, icpt, sxx = ols(x, y)
    assert slope.shape == icpt.shape == (4, 5)
    assert sxx == pytest.approx(np.sum((x - x.mean()) ** 2))
    for i in range(4):
        for j in range(5):
            s1, i1, _ = ols(x, y[i, j])
            assert s1 == pytest.approx(slope[i, j], rel=1e-13)
            assert i1 == pytest.approx(icpt[i, j], rel=1e-13, abs=1e-15)
            assert s1 == pytest.approx(np.polyfit(x, y[i, j], 1)[0], abs=1e-12)
    assert local_slope(x, 2 * x + 1) == pytest.approx(2.0)


def test_fit_line_skips_bad_points_and_refuses_too_few():
    l = np.arange(1, 11, dtype=float)
    y = l ** -2.0
    y[[2, 5]] = [np.nan, 0.0]
    f = fit_line(l, y)
    assert f.n_points == 8 and f.slope == pytest.approx(-2.0, abs=1e-13)
    with pytest.raises(InvalidArgumentError, match="at least 3"):
        fit_line(l, y, window=(9, 20), min_points=3)
    with pytest.raises(InvalidArgumentError):
        fit_line(l, y, window=(3, 3))
    with pytest.raises(InvalidArgumentError):
        fit_line(l, y[:5])


def test_theory_and_simulation_fits_share_the_core():
    """depth.fit_power_law and simulation.fit_power_law on one exact power law: same slope."""
    from critheory.simulation.fits import fit_power_law as sim_fit
    from critheory.theory.meanfield.depth import fit_power_law as theory_fit

    l = np.arange(1, 201)
    y = 2.5 * l ** -0.75
    t = theory_fit(l, y, window=(10, 200))
    s = sim_fit(l, y, window=(10, 200), n_boot=0)
    core = fit_line(l, y, window=(10, 200))
    assert t.slope == core.slope == s.slope
    assert t.local_slope == core.local_slope
    assert t.amplitude == pytest.approx(2.5, rel=1e-12) and s.amplitude == pytest.approx(2.5)
    assert t.window == s.window == (10, 200)
    assert s.exponent == 0.0 - s.slope == pytest.approx(0.75)   # decay convention
