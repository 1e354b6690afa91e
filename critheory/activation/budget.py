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

import signal
import threading
import time
from typing import Any, Callable

__all__ = ["within", "SYMBOLIC_SECONDS"]

#: seconds granted to one optional symbolic proof
SYMBOLIC_SECONDS = 1.0


class _Expired(BaseException):
    """Raised inside the budgeted function when its time is up (a BaseException, so that the
    library's own ``except Exception`` clauses do not swallow it)."""


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def within(fn: Callable[[], Any], seconds: float = SYMBOLIC_SECONDS, *,
           small: bool = True) -> tuple[bool, Any]:
    """Run ``fn()`` for at most ``seconds``: ``(True, result)``, or ``(False, None)`` when the
    time ran out (or, without an alarm clock, when ``small`` is False: the work is skipped)."""
    if not _can_alarm():
        return (True, fn()) if small else (False, None)

    def expire(signum, frame):
        raise _Expired

    prev = signal.getitimer(signal.ITIMER_REAL)
    if 0 < prev[0] <= seconds:
        # an outer timer that expires first keeps its own handler: it is the caller's limit
        return True, fn()
    old = signal.signal(signal.SIGALRM, expire)
    t0 = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return True, fn()
        except _Expired:
            return False, None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
        if prev[0] > 0:   # an outer timer: re-arm what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(prev[0] - (time.monotonic() - t0), 1e-3),
                             prev[1])
