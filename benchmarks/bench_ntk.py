"""Benchmark: the infinite-width NTK over depth against the mean-field depth curves.

``ntk_curves`` (kernel, NTK coefficients B_l, W_l, c_l and Θ^l) against ``depth_curves`` (kernel,
χ_J and the APJN, one input) for the same MLP at the same depth, in one run: both iterate a
recursion of the kernel layer by layer from verified Chebyshev tables
(:class:`critheory.theory.meanfield.tabulated.PiecewiseChebyshev`, relative error <= 1e-12).
The per-layer route the NTK used before (``tabulate=False``: two scalar quadratures per layer)
is timed too at a smaller depth (``--old-depth``, scaled linearly: its cost per layer is
constant) and its values are compared with the tabulated ones at that depth (largest relative
difference of Θ^l).

Reported per activation: seconds of ``depth_curves`` and ``ntk_curves`` (best of ``--repeat``),
their ratio (goal <= 2), the per-layer route's seconds per 10^4 layers, its ratio to
``depth_curves`` at ``--depth`` (the ratio before the tables) and to ``ntk_curves``, and the
largest relative difference of Θ^l between the two routes.

The NTK's order-1/n statistics (``ntk_curves(..., width=--width)``: the mean shift and
``n Var(Θ̂)``, :func:`critheory.theory.ntk.finite.tabulated_fields`) at ``--depth`` in the same
run: their seconds, the ratio to ``ntk_curves`` without a width (goal <= 10, issue 29), and the
per-layer route (``tabulate=False``, the only route before the tables, refused beyond 1000
layers) at ``--old-finite-depth`` layers scaled to ``--depth``.

The dNTK and ddNTK (``dntk_curves``, issue 29: "the NTK-variance and dNTK recursions to depth
10^4 cost no more than 10x the infinite-width NTK curve"): their seconds at ``--depth``
(:func:`critheory.theory.ntk.dntk.vectorized_fields`: one vectorized fold of the rules over all
layers), the ratio to ``ntk_curves`` and the layer-by-layer fold (``dntk_fields``, the only
route before, depth <= 1000) at ``--old-dntk-depth`` layers scaled to ``--depth``.

Run: ``python benchmarks/bench_ntk.py [--depth 10000] [--old-depth 2000] [--width 64]
[--old-finite-depth 200] [--old-dntk-depth 100]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from critheory.theory.meanfield.depth import depth_curves
from critheory.theory.meanfield.inputs import critical_point_for_inputs
from critheory.theory.meanfield.maps import architecture
from critheory.theory.ntk import ntk_curves
from critheory.theory.ntk.dntk import dntk_curves, dntk_fields

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path

ACTS = ("relu", "tanh", "gelu", "swish")


def _point(act: str) -> tuple[float, float]:
    if act == "relu":
        return 2.0, 0.0
    if act == "tanh":
        return 1.0, 0.0
    p = critical_point_for_inputs(act, 1.0)
    return float(p.weight_var), float(p.bias_var)


def c_net(act: str):
    from critheory.blocks.registry import network

    return network("mlp", act)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=10_000)
    ap.add_argument("--old-depth", type=int, default=2000,
                    help="depth of the per-layer route (0: skip it)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--acts", nargs="+", default=list(ACTS))
    ap.add_argument("--width", type=int, default=64,
                    help="width of the order-1/n NTK statistics (0: skip them)")
    ap.add_argument("--old-finite-depth", type=int, default=200,
                    help="depth of their per-layer route (0: skip it)")
    ap.add_argument("--old-dntk-depth", type=int, default=100,
                    help="depth of the dNTK's layer-by-layer fold (0: skip it)")
    a = ap.parse_args(argv)
    print(f"{'act':>6} {'sw':>7} {'sb':>7} {'depth_curves s':>14} {'ntk_curves s':>12} "
          f"{'ratio':>6} {'per-layer s/1e4':>15} {'ratio before':>12} {'speed-up':>8} "
          f"{'max rel dΘ':>10} {'width s':>8} {'width ratio':>11} {'width before':>12} "
          f"{'dNTK s':>7} {'dNTK ratio':>10} {'dNTK before':>11}")
    for act in a.acts:
        sw, sb = _point(act)
        arch = architecture("mlp", act)
        ntk_curves("mlp", act, sw, sb, 100)            # set-up (symbolic analysis, caches)
        td = best_of(lambda: depth_curves(arch, sw, sb, a.depth, input_correlation=None),
                   a.repeat)
        tn = best_of(lambda: ntk_curves("mlp", act, sw, sb, a.depth), a.repeat)
        old = diff = float("nan")
        if a.old_depth > 0:
            new = ntk_curves("mlp", act, sw, sb, a.old_depth).ntk
            t = time.perf_counter()
            ref = ntk_curves("mlp", act, sw, sb, a.old_depth, tabulate=False).ntk
            old = (time.perf_counter() - t) * 1e4 / a.old_depth
            with np.errstate(invalid="ignore", divide="ignore"):
                diff = float(np.nanmax(np.abs(new / ref - 1)))
        tw = wold = float("nan")
        if a.width > 0:
            ntk_curves("mlp", act, sw, sb, 100, width=a.width)      # set-up of the finite rules
            tw = best_of(lambda: ntk_curves("mlp", act, sw, sb, a.depth, width=a.width),
                         a.repeat)
            if a.old_finite_depth > 0:
                t = time.perf_counter()
                ntk_curves("mlp", act, sw, sb, a.old_finite_depth, width=a.width,
                           tabulate=False)
                wold = (time.perf_counter() - t) * a.depth / a.old_finite_depth
        dntk_curves("mlp", act, sw, sb, 100)                        # set-up of the dNTK rules
        tk = best_of(lambda: dntk_curves("mlp", act, sw, sb, a.depth), a.repeat)
        kold = float("nan")
        if a.old_dntk_depth > 0:
            c = ntk_curves("mlp", act, sw, sb, a.old_dntk_depth)
            t = time.perf_counter()
            dntk_fields(c_net(act), sw, sb, c.lambda_b, c.lambda_w)
            kold = (time.perf_counter() - t) * a.depth / a.old_dntk_depth
        print(f"{act:>6} {sw:7.4f} {sb:7.4f} {td:14.3f} {tn:12.3f} {tn / td:6.2f} "
              f"{old:15.2f} {old * a.depth / 1e4 / td:12.1f} {old * a.depth / 1e4 / tn:8.1f} "
              f"{diff:10.1e} {tw:8.3f} {tw / tn:11.2f} {wold / tn:12.0f} {tk:7.3f} "
              f"{tk / tn:10.2f} {kold / tn:11.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
