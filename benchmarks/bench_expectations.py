"""Benchmark: Gaussian expectations E_K[φ²], E_K[φ'²] over the activation zoo.

For every activation and a log-spaced grid of variances K in [1e-4, 1e2] (191 values for the
timings; accuracy on the 20 of them that the mpmath references are computed for), compare

* **critheory**: one vectorized call ``expect(act, g, K_grid)`` (after a first, untimed call
  that builds the caches: sympy analysis, lambdify, closed-form detection, the float64 noise
  model of the integrand — reported separately as "setup"), time per K point; the time of a
  call with a single K ("1-pt call") is reported too: it is the fixed cost of a call;
* **quad**: what a user would write without critheory — ``scipy.integrate.quad`` of
  ``g(h) · exp(-h²/2K)/√(2πK)`` over (-inf, inf) with default tolerances, in a Python loop over
  K, with φ and φ' as numpy functions (sympy ``lambdify`` to numpy, like hand-written
  ``np.tanh``). Its time per point is the headline baseline. A second, faster variant with
  ``math``-module scalar functions (``quad[math]``) is timed too, to show the ratio against the
  cheapest integrand a user could reasonably write;
* **reference**: ``critheory.expectations.reference.mp_expect`` at 30 digits (mpmath tanh-sinh), against
  which the accuracy of both is measured (max relative error over the K grid).

Timings are best-of: ``--rounds`` (3) rounds that each time critheory (best of ``--repeat``
calls), then quad, then quad[math]; each method keeps its best round, so that a slow spell
of a shared machine does not fall on one side of a ratio only.

Usage::

    python benchmarks/bench_expectations.py            # whole zoo, 191 (20) K values
    python benchmarks/bench_expectations.py --quick    # 6 activations, 51 (6) K values
    python benchmarks/bench_expectations.py --jobs 2   # references in 2 processes
    python benchmarks/bench_expectations.py --cache /tmp/refs.json   # reuse the references

The target is a per-point speed-up >= 100x over quad at equal or better accuracy; the summary
says where it is not met.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy.special
import sympy as sp
from scipy.integrate import quad

from critheory.activation import zoo
from critheory.activation.symbolic import X, Activation
from critheory.expectations.gaussian import expect
from critheory.expectations.reference import mp_expect

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path

QUICK_ACTS = ["relu", "tanh", "erf", "gelu", "mish", "softsign"]
INTEGRANDS = ("phi2", "dphi2")


def _reference(job):
    name, g, K = job
    return name, g, [float(mp_expect(name, g, k, dps=30)) for k in K]


def _scalar_funcs(act: Activation, module: str):
    """φ and φ' as scalar functions of a Python float (what a user would hand to quad)."""
    mods = [{"erf": scipy.special.erf}, "numpy"] if module == "numpy" else ["math", "mpmath"]
    phi = sp.lambdify(X, act.expr, modules=mods)
    dphi = sp.lambdify(X, act.derivative(1), modules=mods)
    if module == "math":
        # math.exp raises OverflowError where numpy returns inf: fall back to numpy there
        phi_np, dphi_np = _scalar_funcs(act, "numpy")

        def guard(f, f_np):
            def h(x):
                try:
                    return float(f(x))
                except (OverflowError, ValueError, ZeroDivisionError):
                    return float(f_np(x))
            return h

        return guard(phi, phi_np), guard(dphi, dphi_np)
    return phi, dphi


def _quad_loop(act, g, K, module):
    phi, dphi = _scalar_funcs(act, module)
    f = phi if g == "phi2" else dphi
    out = np.empty(len(K))
    exp = math.exp if module == "math" else np.exp
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for i, k in enumerate(K):
            c = 1.0 / math.sqrt(2.0 * math.pi * k)
            out[i] = quad(lambda h: f(h) ** 2 * exp(-h * h / (2.0 * k)) * c, -np.inf, np.inf)[0]
        dt = time.perf_counter() - t0
    return out, dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 activations, 6 reference K values (51 timed)")
    ap.add_argument("--nK", type=int, default=None,
                    help="number of K values with mpmath references (default 20)")
    ap.add_argument("--every", type=int, default=10,
                    help="timing grid: (nK - 1)·every + 1 values, the reference grid every"
                         " `every`-th of them (default 10)")
    ap.add_argument("--acts", nargs="*", default=None, help="activations (default: whole zoo)")
    ap.add_argument("--jobs", type=int, default=1, help="processes for the mpmath references")
    ap.add_argument("--repeat", type=int, default=5,
                    help="repeats of the critheory timing per round (best kept)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of critheory and quad timings, alternating (best kept)")
    ap.add_argument("--cache", default=None,
                    help="JSON file of mpmath references: read if present, updated after")
    args = ap.parse_args(argv)

    acts = args.acts or (QUICK_ACTS if args.quick else zoo.names())
    nK = args.nK or (6 if args.quick else 20)
    nT = (nK - 1) * args.every + 1
    Kt = np.logspace(-4, 2, nT)          # timing grid
    K = Kt[::args.every]                 # reference grid (a subset: same float values)

    t0 = time.perf_counter()
    cache = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as fh:
            cache = json.load(fh)
    key = lambda a, g: f"{a}|{g}|{nK}"  # noqa: E731
    jobs = [(a, g, K) for a in acts for g in INTEGRANDS if key(a, g) not in cache]
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            done = list(ex.map(_reference, jobs))
    else:
        done = list(map(_reference, jobs))
    for a, g, v in done:
        cache[key(a, g)] = v
    refs = {(a, g): np.array(cache[key(a, g)]) for a in acts for g in INTEGRANDS}
    if args.cache:
        with open(args.cache, "w") as fh:
            json.dump(cache, fh)
    print(f"# mpmath references (30 digits): {len(jobs) * nK} values computed in"
          f" {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"# python {platform.python_version()}, numpy {np.__version__},"
          f" scipy {__import__('scipy').__version__}, {os.cpu_count()} cpu(s),"
          f" {platform.machine()}")

    hdr = (f"{'activation':<11} {'g':<6} {'method':<26} {'setup ms':>8} {'1-pt us':>8}"
           f" {'crit us/pt':>10}"
           f" {'quad us/pt':>10} {'ratio':>7} {'quad[math]':>10} {'ratio':>6}"
           f" {'crit maxrel':>11} {'quad maxrel':>11}")
    print(f"K: {nT} values log-spaced in [1e-4, 1e2] for the times (per K point), {nK} of them"
          " for the errors; ratio = quad time / critheory time")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for name in acts:
        for g in INTEGRANDS:
            ref = refs[(name, g)]
            t_setup = time.perf_counter()
            act = Activation.get(name)
            r = expect(act, g, Kt)            # cold: builds caches
            t_setup = time.perf_counter() - t_setup
            # rounds alternate the methods, and each keeps its best time: a slow spell of a
            # shared machine then hits both or neither, not one side of a ratio
            t_crit = t_one = t_quad = t_quadm = math.inf
            for _ in range(args.rounds):
                t_crit = min(t_crit, best_of(lambda: expect(act, g, Kt), args.repeat) / nT)
                t_one = min(t_one, best_of(lambda: expect(act, g, 1.0), args.repeat))
                qv, dt = _quad_loop(act, g, Kt, "numpy")
                t_quad = min(t_quad, dt / nT)
                qm, dt = _quad_loop(act, g, Kt, "math")
                t_quadm = min(t_quadm, dt / nT)
            scale = np.maximum(np.abs(ref), 1e-300)
            e_crit = float(np.max(np.abs(r.value[::args.every] - ref) / scale))
            e_quad = float(np.max(np.abs(qv[::args.every] - ref) / scale))
            rows.append((name, g, t_crit, t_quad, t_quadm, e_crit, e_quad))
            print(f"{name:<11} {g:<6} {r.method[:26]:<26} {t_setup * 1e3:8.1f} {t_one * 1e6:8.0f}"
                  f" {t_crit * 1e6:10.1f} {t_quad * 1e6:10.1f} {t_quad / t_crit:7.0f}"
                  f" {t_quadm * 1e6:10.1f} {t_quadm / t_crit:6.0f}"
                  f" {e_crit:11.1e} {e_quad:11.1e}", flush=True)

    ratios = [q / c for _, _, c, q, _, _, _ in rows]
    ratios_m = [q / c for _, _, c, _, q, _, _ in rows]
    print()
    print(f"speed ratio quad/critheory: median {statistics.median(ratios):.0f}x,"
          f" min {min(ratios):.0f}x (quad[math]: median {statistics.median(ratios_m):.0f}x,"
          f" min {min(ratios_m):.0f}x)")
    eq = np.array([r[6] for r in rows])
    nan_rows = [f"{r[0]}/{r[1]}" for r in rows if not np.isfinite(r[6])]
    print(f"max relative error: critheory {max(r[5] for r in rows):.1e},"
          f" quad {np.nanmax(eq) if np.isfinite(eq).any() else float('nan'):.1e} where finite")
    if nan_rows:
        print("quad returned nan (the naive numpy integrand overflows to inf/inf far out,"
              " e.g. exp(-x)/(1 + exp(-x))**2 at x = -1e3): " + ", ".join(nan_rows))
    below = [(n, g, q / c) for n, g, c, q, _, ec, eq in rows if q / c < 100]
    worse = [(n, g, ec, eq) for n, g, c, q, _, ec, eq in rows if ec > max(eq, 1e-14)]
    if below:
        print("below the 100x target: " + ", ".join(f"{n}/{g} ({x:.0f}x)" for n, g, x in below))
    else:
        print("all activations >= 100x faster than quad")
    if worse:
        print("less accurate than quad: " + ", ".join(f"{n}/{g} ({a:.1e} vs {b:.1e})"
                                                     for n, g, a, b in worse))
    return 0


if __name__ == "__main__":
    sys.exit(main())
