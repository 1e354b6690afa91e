"""One progress indicator for every long run: simulations, sweeps, PyTorch measurements.

``Progress(total, enabled)`` counts units of work. ``enabled`` is True (a bar on standard error
with the count, elapsed time, rate and ETA, redrawn at most five times a second), a callable
``fn(done, total)`` (called at every update: notebooks, GUIs, tests), or False/None (nothing).
The command line turns the bar on by default when standard error is a terminal
(``--progress``/``--no-progress``).

Examples
--------
>>> seen = []
>>> p = Progress(3, lambda done, total: seen.append((done, total)))
>>> for _ in range(3):
...     p.update()
>>> seen
[(1, 3), (2, 3), (3, 3)]
>>> _line(5, 10, 2.0, "cells")
'[###############...............]  50.0%  5/10 cells  2.0 s elapsed, 2.5/s, ETA 2.0 s'
"""
from __future__ import annotations

import sys
import time
from typing import Callable

__all__ = ["Progress"]

_WIDTH = 30
_REDRAW = 0.2


def _clock(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _line(done: int, total: int, elapsed: float, unit: str) -> str:
    frac = done / total if total else 1.0
    fill = int(round(frac * _WIDTH))
    rate = done / elapsed if elapsed > 0 else 0.0
    text = (f"[{'#' * fill}{'.' * (_WIDTH - fill)}] {100 * frac:5.1f}%  {done}/{total}"
            + (f" {unit}" if unit else "") + f"  {_clock(elapsed)} elapsed")
    if 0 < done < total and rate > 0:
        text += f", {rate:.3g}/s, ETA {_clock((total - done) / rate)}"
    return text


class Progress:
    """Units of work done out of ``total`` (module docstring)."""

    def __init__(self, total: int, enabled: bool | Callable[[int, int], None] | None = True,
                 unit: str = ""):
        self.total = max(int(total), 1)
        self.done = 0
        self.unit = unit
        self.callback = enabled if callable(enabled) else None
        self.bar = bool(enabled) and not callable(enabled)
        self._t0 = time.perf_counter()
        self._last = -1.0

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)
        if self.bar:
            now = time.perf_counter()
            if now - self._last >= _REDRAW or self.done >= self.total:
                self._last = now
                sys.stderr.write("\r" + _line(self.done, self.total, now - self._t0, self.unit))
                if self.done >= self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()
