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
