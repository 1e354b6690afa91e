"""The symbolic wall-clock budget (:mod:`critheory.activation.budget`) never raises where Python
would discard the exception (finalizers, garbage-collector callbacks), and still ends the work."""
from __future__ import annotations

import gc
import sys
import time

import pytest

from critheory.activation import budget

pytestmark = pytest.mark.skipif(not budget._can_alarm(), reason="needs SIGALRM (Unix main thread)")


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class _SlowFinalizer:
    def __del__(self):
        _spin(0.03)


def test_alarm_is_not_raised_inside_a_finalizer(monkeypatch):
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: ignored.append(u))

    def work():
        while True:          # half of the time inside a finalizer
            _SlowFinalizer()
            _spin(0.03)

    t0 = time.monotonic()
    done, result = budget.within(work, 0.1)
    assert (done, result) == (False, None)
    assert time.monotonic() - t0 < 2.0
    assert not ignored, [repr(u.exc_value) for u in ignored]


def test_alarm_is_not_raised_inside_a_gc_callback(monkeypatch):
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: ignored.append(u))

    def slow_callback(phase, info):
        _spin(0.015)

    gc.callbacks.append(slow_callback)
    try:
        def work():
            while True:
                gc.collect()  # an explicit collection still runs the callbacks
                _spin(0.03)

        done, _ = budget.within(work, 0.1)
    finally:
        gc.callbacks.remove(slow_callback)
    assert not done
    assert not ignored, [repr(u.exc_value) for u in ignored]


def test_automatic_collection_is_restored():
    assert gc.isenabled()
    budget.within(lambda: None, 0.5)
    assert gc.isenabled()
    gc.disable()
    try:
        budget.within(lambda: None, 0.5)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_alarm_is_not_raised_inside_a_weakref_finalizer(monkeypatch):
    """A ``weakref.finalize`` callback run by an explicit collection is a place where Python
    only prints an exception (seen once under load in the full suite)."""
    import weakref

    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: ignored.append(u))

    class Box:
        pass

    def work():
        while True:
            b = Box()
            b.self = b                                  # a cycle: freed by gc.collect()
            weakref.finalize(b, _spin, 0.02)
            del b
            gc.collect()
            _spin(0.005)

    done, _ = budget.within(work, 0.1)
    assert not done
    assert not ignored, [repr(u.exc_value) for u in ignored]


# ---------------------------------------------------------------- building an activation
# issue 31: sympy's continuous_domain ran for minutes (softplus(Max(celu(2x), 0.1(x - 2.5))):
# 134 s of set algebra); the symbolic domain now has a budget with a numeric search behind it,
# and the whole analysis of a new formula one overall budget


@pytest.mark.parametrize("formula,where", [("tanh(x) + 1/(x - 0.3)", "0.3"),
                                           ("x + log((x - 0.3)**2)", "0.3"),
                                           ("sqrt(x - 2)", None)])
def test_domain_without_sympy_finds_poles_numerically(monkeypatch, formula, where):
    from critheory.activation import analysis
    from critheory.activation.symbolic import Activation
    from critheory.errors import DomainError

    monkeypatch.setattr(analysis, "DOMAIN_SYMBOLIC_SECONDS", 1e-6)
    with pytest.raises(DomainError) as exc:
        Activation.from_string(formula)
    if where is not None:
        assert f"x = {where}" in str(exc.value)


def test_domain_without_sympy_accepts_defined_formulas(monkeypatch):
    from critheory.activation import analysis
    from critheory.activation.symbolic import Activation

    monkeypatch.setattr(analysis, "DOMAIN_SYMBOLIC_SECONDS", 1e-6)
    for formula in ("tanh(x) + 1/(1 + x**2)", "log(1 + exp(x - 0.3))", "sqrt(1 + x**2)"):
        assert Activation.from_string(formula).name == formula


def test_analysis_of_a_formula_has_an_overall_budget(monkeypatch):
    from critheory.activation import symbolic
    from critheory.errors import ActivationError

    monkeypatch.setattr(symbolic, "VALIDATE_SECONDS", 1e-3)
    with pytest.raises(ActivationError, match="did not finish within"):
        symbolic.Activation.from_string("softplus(Max(celu(2*x), 0.1*(x - 2.5)))")


def test_a_tiny_inner_budget_never_expires_the_outer_one():
    """The alarm was armed before the try that catches it: an inner budget shorter than a few
    bytecodes expired outside its own within() and ended the outer one instead."""
    for _ in range(300):
        ok, inner = budget.within(lambda: budget.within(lambda: sum(range(2000)), 1e-7), 5.0)
        assert ok and inner[0] in (True, False)


def test_taylor_coefficients_stay_exact_without_simplify(monkeypatch):
    """sympy's simplify of φ^{(4)}(0) ran for minutes on gelu_tanh(100x + 0.3)·tanh(...):
    under a budget; an unsimplified coefficient is still exact, so the universality class and
    its exponents are those of the simplified ones (a1 = -97/50 for tanh(x) + x³/100)."""
    import critheory as ct
    from critheory.activation import symbolic

    monkeypatch.setattr(symbolic, "TAYLOR_SECONDS", 1e-6)
    a = symbolic.Activation.from_string("tanh(1.0*x) + x**3/100")
    assert a.taylor.available and a.taylor_float[1] == (True, False, True, False, True)
    u = ct.universality(ct.architecture("mlp", a))
    assert u.kind.value == "K*=0" and str(u.a1) == "-97/50"
