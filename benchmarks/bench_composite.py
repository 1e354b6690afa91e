"""Benchmark: Gaussian expectations of composite formulas (issue 32: >= 100x quad).

For a few formulas of the kind the fuzz suite generates (compositions that oscillate across a
wide Gaussian, kinked compositions), E_K[φ²] on a log-spaced grid of K in [1e-4, 1e2]
(``--nK`` values) by one vectorized ``expect`` call against ``scipy.integrate.quad`` of
``φ(h)² exp(-h²/2K)/√(2πK)`` over the real line in a Python loop (default tolerances, φ by sympy
``lambdify`` to numpy): CPU seconds per K point of each (``time.process_time``, so that a
loaded machine does not tilt the ratio), their ratio, and the largest relative difference
between the two (quad's default tolerance is 1.5e-8; critheory's 1e-13).

Run: ``python benchmarks/bench_composite.py [--nK 51] [--repeat 20]``.
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import sympy as sp
from scipy.integrate import quad

from critheory.activation.symbolic import X, Activation
from critheory.expectations.gaussian import expect

FORMULAS = ("tanh(sin(x))", "sin(erf(sin(x + 0.3)))", "x*tanh(cos(x))",
            "tanh(Max(0, x)) + 0.1*Min(0, x)", "Max(0.5*x, tanh(2*x - 1))")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nK", type=int, default=51)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--formulas", nargs="+", default=list(FORMULAS))
    a = ap.parse_args(argv)
    Ks = np.logspace(-4, 2, a.nK)
    print(f"{'formula':40s} {'critheory us/pt':>15} {'quad us/pt':>10} {'ratio':>6} "
          f"{'max rel diff':>12}")
    for f in a.formulas:
        act = Activation.get(f)
        expect(act, "phi2", Ks)                                   # set-up, untimed
        t = time.process_time()
        for _ in range(a.repeat):
            r = expect(act, "phi2", Ks)
        tc = (time.process_time() - t) / a.repeat / Ks.size
        g = sp.lambdify(X, act.expr ** 2, "numpy")
        t = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = [quad(lambda h: g(h) * math.exp(-h * h / (2 * K)) / math.sqrt(2 * math.pi * K),
                      -np.inf, np.inf)[0] for K in Ks]
        tq = (time.process_time() - t) / Ks.size
        rel = float(np.max(np.abs(np.array(q) - r.value) / np.abs(r.value)))
        print(f"{f:40s} {tc * 1e6:15.1f} {tq * 1e6:10.1f} {tq / tc:6.1f} {rel:12.1e}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
