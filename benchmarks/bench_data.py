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
fewer dimensions. The 322 entries with several inputs go in two vectorized batches per layer
(252 φ²φφ, 70 φφφφ), each by conditioning on a pair with the radial integral in closed form:
one angle left per entry (``multipoint._angular``).

Run: ``python benchmarks/bench_data.py [--quick] [--depth L] [--inputs M]``.
"""
from __future__ import annotations

import argparse

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
    args = ap.parse_args(argv)
    cases = CASES[:1] if args.quick else CASES
    repeat = 1 if args.quick else args.repeat
    L = 20 if args.quick else args.depth
    x = np.random.default_rng(0).normal(size=(args.inputs, 4))
    print(f"{args.inputs} inputs, depth {L}; seconds, best of {repeat}")
    print(f"{'activation':<10} {'one input':>10} {'m inputs':>10} {'ratio':>7}")
    worst = 0.0
    for act, sw, sb in cases:
        net = ct.network("mlp", act)
        ct.data_statistics(net, sw, sb, x[:3], 3)
        ct.finite_width_curves(net, sw, sb, 3)
        one = best_of(lambda: ct.finite_width_curves(net, sw, sb, L), repeat)
        many = best_of(lambda: ct.data_statistics(net, sw, sb, x, L), repeat)
        worst = max(worst, many / one)
        print(f"{act:<10} {one:>10.3f} {many:>10.2f} {many / one:>7.1f}")
    print(f"largest ratio {worst:.1f} (target <= 20)")


if __name__ == "__main__":
    main()
