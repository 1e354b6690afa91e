"""Float64 overflows of intermediates are repaired for whole arrays at once (issue 31: a
fixed-point scan of a steep swish repaired millions of quadrature nodes one by one in mpmath and
ran for 3 min 45 s), and the repaired values are the function's values.

References are mpmath at 50 digits of the same expression (an independent evaluation: no float64
anywhere). Tolerances follow from float64 evaluation of the expression: each rounded argument u
of an ``exp`` carries a relative error of at most eps·|u| into its value, and a few roundings
more of eps each.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import time

import mpmath
import numpy as np
import pytest

from critheory.activation import numeric, wide
from critheory.activation.expressions import X, sp
from critheory.activation.symbolic import Activation
from critheory.errors import ConvergenceError

EPS = np.finfo(float).eps
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEEP_SWISH = "swish(1*x + 100*0.561*(x - -1))"


def _mp_values(expr, xs, dps=50):
    f = sp.lambdify(X, expr, modules=["mpmath"])
    with mpmath.workdps(dps):
        return np.array([float(f(mpmath.mpf(float(t)))) for t in xs])


# ---------------------------------------------------------------------- Wide arithmetic
def test_wide_is_float64_where_float64_is_normal():
    """Wherever float64 gives a normal number, every Wide operation gives that very number."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(2000) * 10.0 ** rng.uniform(-5, 5, 2000)
    b = rng.standard_normal(2000) * 10.0 ** rng.uniform(-5, 5, 2000)
    wa, wb = wide.Wide.of(a), wide.Wide.of(b)
    for got, want in [((wa + wb).float(), a + b), ((wa - wb).float(), a - b),
                      ((wa * wb).float(), a * b), ((wa / wb).float(), a / b),
                      ((wa ** 3).float(), a ** 3), ((abs(wa) ** 0.7).float(), np.abs(a) ** 0.7),
                      (wide.exp(wa / 1e4).float(), np.exp(a / 1e4)),
                      (wide.log(abs(wa)).float(), np.log(np.abs(a))),
                      (wide.sqrt(abs(wa)).float(), np.sqrt(np.abs(a)))]:
        normal = np.isfinite(want) & (np.abs(want) >= np.finfo(float).tiny)
        assert np.array_equal(got[normal], want[normal])


def test_wide_extends_the_exponent():
    """exp(1000)·exp(-999) = e, (e^800)^2 / e^1599 = e, log(e^1000) = 1000: each within the
    float64 roundings of the operations (exp's argument reduction adds |u|·2^-64)."""
    w = wide.exp(1000.0) * wide.exp(-999.0)
    assert abs(w.float() / np.e - 1) <= 4 * EPS
    w = wide.exp(800.0) ** 2 / wide.exp(1599.0)
    assert abs(w.float() / np.e - 1) <= 8 * EPS
    assert abs(wide.log(wide.exp(1000.0)).float() - 1000.0) <= 4 * EPS * 1000
    assert wide.exp(1e6).float() == np.inf and wide.exp(-1e6).float() == 0.0
    # a function float64 cannot take beyond its range is left undecided (NaN), not guessed
    y = wide.evaluate(lambda x: sin(exp(x)), np.array([1.0, 1000.0]), {"sin": np.sin,
                                                                      "exp": np.exp})
    assert y[0] == np.sin(np.e) and np.isnan(y[1])


# ---------------------------------------------------------------------- the repaired evaluators
@pytest.mark.parametrize("n", [1, 2])
def test_steep_swish_repaired_against_mpmath(n):
    """φ' and φ'' of the issue's steep swish, where float64 (and long double) overflow in an
    intermediate on either side, against mpmath at 50 digits."""
    act = Activation.get(STEEP_SWISH)
    expr = act.derivative(n)
    x = np.concatenate([-np.logspace(0, 7, 40), np.logspace(0, 7, 40)])
    with np.errstate(all="ignore"):
        plain = numeric.np_lambdify(expr)(x)
    rep = ~np.isfinite(plain)                       # the entries float64 cannot evaluate
    assert rep.sum() >= 20
    got = act.numpy_func(n)(x)
    assert np.all(np.isfinite(got))
    # where float64 works its value is kept as is (its cancellation noise is the noise model's
    # business); the repaired entries against mpmath
    ref = _mp_values(expr, x[rep])
    cond = 4 * EPS * (1 + 4 * 57.1 * np.abs(x[rep]))   # exp(±57.1 x) ... exp(±228.4 x)
    err = np.abs(got[rep] - ref)
    assert np.all(err <= cond * np.abs(ref) + 1e-300), np.max(err / np.abs(ref) / cond)


def test_chi_integrand_repaired_against_mpmath():
    """φ'² (the χ_∥ integrand of the fixed-point scan) through the evaluator the quadrature
    uses, on the nodes of a wide Gaussian (std 1e4), in one vectorized call."""
    act = Activation.get(STEEP_SWISH)
    expr = act.derivative(1) ** 2
    f = act.sympy_numpy(expr)
    x = np.linspace(-4e4, 4e4, 200_001)
    t0 = time.perf_counter()
    y = f(x)
    elapsed = time.perf_counter() - t0
    assert np.all(np.isfinite(y))
    with np.errstate(all="ignore"):
        rep = np.flatnonzero(~np.isfinite(numeric.np_lambdify(expr)(x)))
    assert rep.size > 10_000
    idx = rep[np.linspace(0, rep.size - 1, 60).astype(int)]
    ref = _mp_values(expr, x[idx])
    cond = 4 * EPS * (1 + 4 * 57.1 * np.abs(x[idx]))
    assert np.all(np.abs(y[idx] - ref) <= cond * np.abs(ref) + 1e-300)
    # ~100k repaired entries: one mpmath evaluation each took ~10 s; vectorized, well under
    assert elapsed < numeric.REPAIR_SECONDS


def test_sigmoid_derivative_subnormal_tail():
    """exp(-x)/(1 + exp(-x))² at x beyond -709 (inf/inf in float64): e^x to the last subnormal."""
    expr = sp.exp(-X) / (1 + sp.exp(-X)) ** 2
    f = numeric.wrap_numpy(numeric.np_lambdify(expr), lambda: numeric.mp_lambdify(expr))
    x = -np.array([700.0, 709.5, 720.0, 740.0, 744.0, 746.0, 1e3, 1e5, 1e300])
    got = f(x)
    ref = _mp_values(expr, x)
    assert np.all(np.abs(got - ref) <= 4 * EPS * (1 + np.abs(x)) * np.abs(ref) + 5e-324)


def test_mpmath_repair_is_bounded(monkeypatch):
    """What the vectorized stages leave goes to mpmath one entry at a time, under
    REPAIR_SECONDS: beyond it a one-line ConvergenceError, not minutes of work."""
    monkeypatch.setattr(numeric, "REPAIR_SECONDS", 0.05)

    def slow(t):
        time.sleep(1e-3)
        return mpmath.mpf(1)

    f = numeric.wrap_numpy(lambda x: x * np.nan, lambda: slow)
    assert f(np.array([1.0, 2.0])).tolist() == [1.0, 1.0]
    t0 = time.perf_counter()
    with pytest.raises(ConvergenceError, match="arbitrary precision"):
        f(np.linspace(1, 2, 100_000))
    assert time.perf_counter() - t0 < 2.0


def test_issue31_point_at_subnormal_variances_finishes(tmp_path):
    """The reproducer of issue 31 (3 min 45 s before): a result in seconds."""
    env = {**os.environ, "PYTHONPATH": ROOT, "CRITHEORY_CACHE_DIR": str(tmp_path)}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "critheory", "point", STEEP_SWISH,
                        "--weight-var", "1e-320", "--bias-var", "1e-320", "--json"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert p.returncode in (0, 2), p.stderr
    if p.returncode == 2:
        assert len(p.stderr.strip().splitlines()) == 1
    assert time.perf_counter() - t0 < 120


# ---------------------------------------------------------------------- the cache digest
def test_zoo_cache_digest_covers_every_deriving_activation_module():
    """Every module of critheory.activation that a hashed source imports is hashed itself, so
    an edit of any of them gives the zoo cache a new folder."""
    from critheory.activation import cache

    pkg = os.path.join(ROOT, "critheory")
    hashed = set(cache.HASHED_SOURCES)
    todo = list(hashed)
    seen = set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        with open(os.path.join(pkg, *rel.split("/")), encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            for m in mods:
                if m.startswith("critheory.activation."):
                    dep = "activation/" + m.split(".")[2] + ".py"
                    if os.path.exists(os.path.join(pkg, *dep.split("/"))):
                        assert dep in hashed, f"{rel} imports {m}: {dep} is not hashed"
                        todo.append(dep)


# ------------------------------------------------------- exact argument reduction of exp
def test_ln2_constant_against_mpmath():
    import mpmath

    from critheory.activation import wide

    with mpmath.workprec(wide._LN2_BITS + 20):
        ref = int(mpmath.floor(mpmath.log(2) * mpmath.mpf(2) ** wide._LN2_BITS))
    assert wide._LN2_INT == ref


@pytest.mark.parametrize("x", [800.0, 1e5, 1e10, 2.5e13])
def test_wide_exp_is_correctly_reduced(x):
    """exp(2x)/(exp(x) + 1)² = 1/(1 + e^-x)² is 1 to float64 at these x: the long-double
    reduction of the argument left 1e-9 there at x = 1e10 (softplus' E[φ'²] at K = 1e20 was
    then off by 1.5e-11 against an error estimate of 4e-11, and its critical-line scan found a
    spurious root at K* = 2.4e21)."""
    import mpmath

    from critheory.activation.wide import evaluate

    f = lambda v: exp(2 * v) / (exp(v) + 1) ** 2          # noqa: E731
    got = evaluate(f, np.array([x]), {"exp": np.exp})
    assert abs(got[0] - 1.0) <= 4 * 2.0 ** -53
    g = evaluate(lambda v: exp(v) / exp(v - 0.5), np.array([x]), {"exp": np.exp})
    with mpmath.workdps(30):
        assert abs(g[0] - float(mpmath.exp(0.5))) <= 4 * 2.0 ** -53 * g[0]


def test_softplus_large_variance_expectation_against_asymptotics():
    """E_K[σ(h)²] = 1/2 − 1/√(2πK) + O(K^-3/2) for softplus' φ' = σ (the O term is 1e-30 at
    K = 1e20): an independent route to the quadrature at the scales the repair reaches."""
    from critheory.activation import Activation
    from critheory.expectations import expect

    K = np.array([1e16, 1e20, 3e21])
    e = expect(Activation.get("softplus"), "dphi2", K)
    ref = 0.5 - 1.0 / np.sqrt(2 * np.pi * K)
    assert np.all(np.abs(e.value - ref) <= np.maximum(e.error, 1e-16))
    assert np.all(np.abs(e.value - ref) <= 1e-15)
