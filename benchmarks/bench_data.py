"""Benchmark: the finite-width statistics on several inputs (kernel, 1/n kernel, four-point
vertex over m = 8 inputs) to depth 100 against the single-input vertex of the same network to
the same depth (issue 28's target: at most 20×).

The several-input run is :func:`critheory.data_statistics`; the baseline is
:func:`critheory.finite_width_curves` (one input, the vertex V^l and K^{(1),l}), both in this
process, best of ``--repeat`` after one untimed call of each (the activation's set-up: the
single-input theory builds its verified tables on its first call, ~0.3 s, then runs a layer in
~0.2 ms). How the symmetry is used: the vertex is stored as an (m, m, m, m) tensor but computed
on pairs of unordered pairs (m(m+1)/2 squared entries: 1296 for m = 8 instead of 4096); the
rules touch, for each pair, only the three kernel entries it depends on (gradient and Hessian in
3 variables, one vectorized call for all pairs); the four-point functions are computed once per
index multiset (C(m+3, 4) = 330 for m = 8 instead of 4096), merged coordinates as φ², φ³, φ⁴ on
fewer dimensions. The 322 entries with several inputs: for a positively homogeneous φ the 252
φ²φφ (φ²φ², φ³φ) in closed form (orthant moments, ``truncated_normal.homogeneous_moment4``),
the 70 φφφφ (and erf's 322) in vectorized batches by conditioning on a pair with the radial
integral in closed form: one angle left per entry (``multipoint._angular``).

``--cold``: also both first calls, each in a fresh process with an empty cache directory (the
single-input theory then builds its tables, the several-input one has nothing to build). Times are wall clock (best of
``--repeat``) and the process's CPU time (best of ``--repeat``: steadier on a loaded machine).

Run: ``python benchmarks/bench_data.py [--quick] [--depth L] [--inputs M]``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

import critheory as ct

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path

#: activations with the closed-form conditioned four-point route (tanh, GELU and other
#: activations take the general 4-D quadrature, 2-200 s per layer at m = 8, and are refused by
#: the work budget at this depth)
CASES = [("relu", 2.0, 0.05), ("erf", 0.7853981633974483, 0.05), ("leaky_relu", 1.9, 0.05)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--inputs", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="two activations, depth 20, one repeat")
    ap.add_argument("--cold", action="store_true",
                    help="also the first calls, each in a fresh process")
    args = ap.parse_args(argv)
    cases = CASES[:1] if args.quick else CASES
    repeat = 1 if args.quick else args.repeat
    L = 20 if args.quick else args.depth
    x = np.random.default_rng(0).normal(size=(args.inputs, 4))
    print(f"{args.inputs} inputs, depth {L}; seconds, best of {repeat} (wall | CPU)")
    print(f"{'activation':<10} {'one input':>16} {'m inputs':>14} {'ratio':>13}"
          + (f" {'cold: one':>10} {'m inputs':>9} {'ratio':>6}" if args.cold else ""))
    worst = 0.0
    for act, sw, sb in cases:
        net = ct.network("mlp", act)
        ct.data_statistics(net, sw, sb, x[:3], 3)
        ct.finite_width_curves(net, sw, sb, 3)
        one = best_of(lambda: ct.finite_width_curves(net, sw, sb, L), repeat)
        one_c = _best_cpu(lambda: ct.finite_width_curves(net, sw, sb, L), repeat)
        many = best_of(lambda: ct.data_statistics(net, sw, sb, x, L), repeat)
        many_c = _best_cpu(lambda: ct.data_statistics(net, sw, sb, x, L), repeat)
        worst = max(worst, many / one)
        line = (f"{act:<10} {one:>7.4f} | {one_c:<6.4f} {many:>5.2f} | {many_c:<5.2f} "
                f"{many / one:>5.0f} | {many_c / one_c:<5.0f}")
        if args.cold:
            c1 = _cold(f"ct.finite_width_curves(ct.network('mlp', {act!r}), {sw!r}, {sb!r}, {L})")
            cm = _cold(f"ct.data_statistics(ct.network('mlp', {act!r}), {sw!r}, {sb!r}, "
                       f"np.random.default_rng(0).normal(size=({args.inputs}, 4)), {L})")
            line += f" {c1:>10.3f} {cm:>9.2f} {cm / c1:>6.1f}"
        print(line)
    print(f"largest ratio (wall) {worst:.1f} (target <= 20)")


def _best_cpu(fn, repeat: int) -> float:
    """The smallest CPU time (time.process_time) of ``repeat`` calls of ``fn()``."""
    best = float("inf")
    for _ in range(max(int(repeat), 1)):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def _cold(stmt: str) -> float:
    """Wall time of the first call ``stmt`` in a fresh Python process with an empty cache
    directory (critheory imported before the clock starts)."""
    import os
    import tempfile

    code = ("import time, numpy as np, critheory as ct\n"
            f"t = time.perf_counter()\n{stmt}\nprint(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "CRITHEORY_CACHE_DIR": tmp})
    return float(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
