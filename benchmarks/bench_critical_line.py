"""Benchmark: a 101-point MLP critical line, critheory vs a plain scipy implementation.

Baseline (what a user would otherwise write): for each σ_b², ``scipy.optimize.brentq`` over K* of
``K* - E[φ²]/E[φ'²] - σ_b²`` with both expectations by ``scipy.integrate.quad`` over the real
line, then ``σ_w² = 1/E[φ'²]``. Both run in this process on the same grid; the accuracy of each
is measured against critheory's mpmath-checked values at a few points (``--check``).

Reported per activation: critheory seconds for 51/101/201 points (linear cost), the first call
including the activation's symbolic set-up, the scipy seconds for the same 101 points (or a
subsample scaled up with ``--quick``), the speed ratio and the largest relative difference of
σ_w² between the two.

Run: ``python benchmarks/bench_critical_line.py [--quick]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import integrate, optimize

from critheory.activation.symbolic import Activation
from critheory.theory.meanfield.criticality import critical_line
from critheory.theory.meanfield.maps import architecture


def scipy_line(act: Activation, bias_vars, k_lo=1e-6, k_hi=1e3):
    f, df = act.numpy, act.numpy_func(1)

    def E(g, K):
        s = np.sqrt(K)
        val, _ = integrate.quad(lambda x: g(x) * np.exp(-0.5 * x * x / K) / (s * np.sqrt(2 * np.pi)),
                                -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=200)
        return val

    out = []
    for y in bias_vars:
        if y == 0:  # the K* = 0 end: σ_w² = 1/φ'(0)²
            out.append(1.0 / float(df(0.0)) ** 2)
            continue
        g = lambda K: K - E(lambda x: f(x) ** 2, K) / E(lambda x: df(x) ** 2, K) - y  # noqa: E731
        K = optimize.brentq(g, k_lo, k_hi, xtol=1e-14, rtol=1e-14)
        out.append(1.0 / E(lambda x: df(x) ** 2, K))
    return np.array(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="scipy on 11 of the 101 points, scaled")
    args = ap.parse_args(argv)
    names = ["tanh", "erf", "gelu", "swish"]
    grid = np.linspace(0.0, 1.0, 101)
    print(f"{'act':<7}{'first':>8}{'51 pts':>9}{'101 pts':>9}{'201 pts':>9}{'scipy 101':>11}"
          f"{'ratio':>8}{'max rel diff':>14}")
    for name in names:
        t0 = time.perf_counter()
        act = Activation.get(name)
        arch = architecture("mlp", act)
        critical_line(arch, grid)
        first = time.perf_counter() - t0
        times = {}
        for n in (51, 101, 201):
            g = np.linspace(0.0, 1.0, n)
            reps = []
            for _ in range(3):
                arch = architecture("mlp", act)  # fresh per-architecture caches
                t = time.perf_counter()
                pts = critical_line(arch, g)
                reps.append(time.perf_counter() - t)
            times[n] = min(reps)
            if n == 101:
                ours = {p.bias_var: p.weight_var for p in pts if p.branch == 0}
        sub = grid[::10] if args.quick else grid
        t = time.perf_counter()
        ref = scipy_line(act, sub)
        ts = (time.perf_counter() - t) * (grid.size / sub.size)
        diff = max(abs(ours[y] - w) / w for y, w in zip(sub, ref))
        print(f"{name:<7}{first:>8.3f}{times[51]:>9.3f}{times[101]:>9.3f}{times[201]:>9.3f}"
              f"{ts:>11.2f}{ts / times[101]:>8.0f}{diff:>14.1e}")


if __name__ == "__main__":
    main()
