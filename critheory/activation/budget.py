"""A wall-clock budget for symbolic work that may not terminate in reasonable time.

``sympy.simplify`` and friends are exact but unbounded: simplifying the parity difference of
``Max(pi, x, Abs(x))**3`` distributes a boolean expression whose size grows exponentially, and
ran for minutes. Proofs that critheory only *tries* (a parity, a closed-form simplification) run
under :func:`within`, which gives up after a few seconds; the caller then proceeds without the
proof (a slower but correct route), never with a guess.

The budget uses ``SIGALRM`` and so works in the main thread of a Unix process (the command line,
notebooks, most scripts); elsewhere :func:`within` runs the function only when the caller's
size heuristic allows it.

Examples
--------
>>> within(lambda: 1 + 1, 1.0)
(True, 2)
"""
from __future__ import annotations

import gc
import signal
import threading
import time
import weakref
from typing import Any, Callable

__all__ = ["within", "SYMBOLIC_SECONDS"]

#: seconds granted to one optional symbolic proof
SYMBOLIC_SECONDS = 1.0
#: interval of the repeated alarm once the budget is spent (until fn() has stopped)
_REPEAT = 0.05


class _Expired(BaseException):
    """Raised inside the budgeted function when its time is up (a BaseException, so that the
    library's own ``except Exception`` clauses do not swallow it)."""


def _in_finalizer(frame) -> bool:
    """Whether the interrupted code runs inside a finalizer or a garbage-collector callback,
    where Python would only print an exception ("Exception ignored in ...") and a test runner
    may count it as a failure of whatever test is running."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    callbacks.add(weakref.finalize.__call__.__code__)     # weakref.finalize callbacks
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code in callbacks:
            return True
        frame = frame.f_back
    return False


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def within(fn: Callable[[], Any], seconds: float = SYMBOLIC_SECONDS, *,
           small: bool = True) -> tuple[bool, Any]:
    """Run ``fn()`` for at most ``seconds``: ``(True, result)``, or ``(False, None)`` when the
    time ran out (or, without an alarm clock, when ``small`` is False: the work is skipped)."""
    if not _can_alarm():
        return (True, fn()) if small else (False, None)

    done = [False]

    def expire(signum, frame):
        # not inside a finalizer: the exception would be discarded there; the repeated alarm
        # tries again _REPEAT seconds later
        if not done[0] and not _in_finalizer(frame):
            raise _Expired

    prev = signal.getitimer(signal.ITIMER_REAL)
    if 0 < prev[0] <= seconds:
        # an outer timer that expires first keeps its own handler: it is the caller's limit
        return True, fn()
    old = signal.signal(signal.SIGALRM, expire)
    t0 = time.monotonic()
    # no automatic garbage collection meanwhile: its callbacks (other libraries register them,
    # e.g. hypothesis) are places where the alarm could not raise
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # after the first alarm, one every _REPEAT seconds: Python ignores an exception raised
        # while it runs a garbage-collector callback or a finalizer ("Exception ignored in"),
        # and a single alarm landing there would leave fn() running without a limit
        try:
            # armed inside the try: a budget shorter than the next few bytecodes expires here
            signal.setitimer(signal.ITIMER_REAL, seconds, _REPEAT)
            return True, fn()
        except _Expired:
            done[0] = True
            return False, None
        finally:
            done[0] = True
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
        if gc_was_enabled:
            gc.enable()
        if prev[0] > 0:   # an outer timer: re-arm what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(prev[0] - (time.monotonic() - t0), 1e-3),
                             prev[1])
