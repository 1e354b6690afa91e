"""Timing helper shared by the benchmark scripts (run from the repository root as
``python benchmarks/bench_*.py``: this folder is then first on ``sys.path``)."""
from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The shortest wall time of ``repeat`` calls of ``fn()`` (seconds): the least disturbed
    run on a shared machine."""
    best = float("inf")
    for _ in range(max(int(repeat), 1)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
