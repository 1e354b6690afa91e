"""Benchmark: the finite-width curves (vertex V^l and 1/n kernel K^{(1),l}) to depth 10⁴ against
the infinite-width depth curves of the same activation (target: at most 3×).

Both are timed in this process, best of ``--repeat`` runs, after one untimed call that does the
activation's symbolic set-up (derivatives of the integrands, noise models of the quadrature);
that first call is reported separately (*setup*). The infinite-width baseline is what
``critheory depth`` computes (:func:`critheory.theory.meanfield.depth.depth_curves`, one input);
the finite-width run is :func:`critheory.theory.finitewidth.finite_width_curves`, which includes
that same baseline (its kernel) plus one vectorized pass of the block rules and the scalar
recursion, and ν.

Run: ``python benchmarks/bench_finitewidth.py [--quick] [--depth L]``.
"""
from __future__ import annotations

import argparse
import time

from critheory.theory.finitewidth import finite_width_curves
from critheory.theory.meanfield.depth import depth_curves
from critheory.theory.meanfield.maps import architecture

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path

CASES = [("relu", "mlp", 1.0, 2.0, 0.0), ("tanh", "mlp", 1.0, 1.0, 0.0),
         ("erf", "mlp", 1.0, 0.7853981633974483, 0.0),
         ("gelu", "mlp", 1.0, 1.98305826, 0.17292239),
         ("swish", "mlp", 1.0, 1.98800468, 0.55514317),
         ("elu", "mlp", 1.0, 1.0, 0.0),
         ("tanh", "residual", 0.5, 0.75, 0.0),
         ("gelu", "pre-ln-mlp-block", 0.9, 1.5, 0.1)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depth", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="three activations, one repeat")
    args = ap.parse_args(argv)
    cases = CASES[:3] if args.quick else CASES
    repeat = 1 if args.quick else args.repeat
    L = args.depth
    print(f"depth {L}; seconds, best of {repeat}")
    print(f"{'activation':<10} {'arch':<18} {'setup':>7} {'mean-field':>11} {'finite-w.':>10} "
          f"{'ratio':>6}")
    worst = 0.0
    for act, arch, mu, sw, sb in cases:
        a = architecture(arch, act, mu)
        t = time.perf_counter()
        finite_width_curves(a, sw, sb, L, width=128)
        setup = time.perf_counter() - t
        mf = best_of(lambda: depth_curves(a, sw, sb, L, input_correlation=None), repeat)
        fw = best_of(lambda: finite_width_curves(a, sw, sb, L, width=128), repeat)
        worst = max(worst, fw / mf)
        print(f"{act:<10} {arch:<18} {setup:>7.2f} {mf:>11.3f} {fw:>10.3f} {fw / mf:>6.2f}")
    print(f"largest ratio {worst:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
