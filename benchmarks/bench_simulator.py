"""Benchmark of the finite-width simulator.

Workload (default): tanh MLP at (σ_w², σ_b²) = (1, 0), width 1024, depth 256, 16 networks,
8 Hutchinson probes: kernels and APJN J^{1,l} for every layer. Timed:

* ``simulate(method="auto")`` (the projected sampler here: ``W X`` drawn as ``G R``);
* ``simulate(method="dense")`` on a subset of networks, scaled per network-layer;
* the naive computation of the same APJN: explicit per-layer Jacobians multiplied as N×N
  matrices (``explicit_jacobian_chain``, exact), on a few layers, scaled per network-layer;
* "matmul only": per network-layer, drawing one N×N Gaussian matrix and one
  (N×N) @ (N×(P+1)) product — the floor of any dense simulation.

Run ``python benchmarks/bench_simulator.py`` (``--quick`` for a small size, ``--json`` for a
machine-readable line).

``--smooth`` (issue 32, item 5) times instead, in one run (~2 min on 2 shared cores):

* the default method across the old cut-over (seeds·depth·width³ = 2e10: exact below, 8 probes
  above) at depth 100 with 8 networks (the old cut between widths 292 and 293): the new
  default at every 4th width from 264 to 324 and at the two widths of the old cut, and the old
  default at those two; the largest ratio between neighbouring rows, before and after;
* the time against the number of probes, 1..64, at width 256, depth 100, 16 networks: with the
  small products kept on one BLAS thread (now) and with plain ``@`` and the old ``auto`` rule
  (projected only while ``4k <= N``: before); the largest neighbour ratio of each.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

try:
    from critheory.simulation import explicit_jacobian_chain, simulate
except ImportError:  # running from a checkout without installation
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from critheory.simulation import explicit_jacobian_chain, simulate


def _time(fn, repeat: int = 1) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_only(width: int, probes: int, layers: int, seed: int = 0) -> float:
    """Seconds for ``layers`` × (draw an N×N Gaussian matrix, multiply an N×(P+1) block)."""
    rng = np.random.Generator(np.random.SFC64(seed))
    x = rng.standard_normal((width, probes + 1))
    scale = math.sqrt(1.0 / width)
    t = time.perf_counter()
    for _ in range(layers):
        w = rng.standard_normal((width, width))
        w *= scale
        x = w @ x
        x /= np.linalg.norm(x, axis=0)
    return time.perf_counter() - t


def run(width: int, depth: int, seeds: int, probes: int, dense_seeds: int,
        naive_layers: int, matmul_layers: int) -> dict:
    total = seeds * depth                       # network-layers of the workload
    kw = dict(width=width, depth=depth, probes=probes)
    simulate("tanh", 1.0, 0.0, width=64, depth=4, seeds=2, probes=2)   # warm-up (lambdify)

    t_sim = _time(lambda: simulate("tanh", 1.0, 0.0, seeds=seeds, seed=0, **kw))
    method = simulate("tanh", 1.0, 0.0, width=width, depth=2, probes=probes).method

    t_dense_part = _time(lambda: simulate("tanh", 1.0, 0.0, seeds=dense_seeds, seed=0,
                                          method="dense", **kw))
    t_dense = t_dense_part * total / (dense_seeds * depth)

    t_naive_part = _time(lambda: explicit_jacobian_chain("tanh", 1.0, 0.0, width=width,
                                                         depth=naive_layers + 1, seed=0))
    # the first layer has no Jacobian product; naive_layers N×N×N products were done
    t_naive = t_naive_part * total / naive_layers

    t_mm_part = matmul_only(width, probes, matmul_layers)
    t_mm = t_mm_part * total / matmul_layers

    return {
        "workload": {"activation": "tanh", "weight_var": 1.0, "bias_var": 0.0, "arch": "mlp",
                     "width": width, "depth": depth, "seeds": seeds, "probes": probes},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__},
        "simulator_method": method,
        "simulator_s": t_sim,
        "dense_simulator_s_scaled": t_dense,
        "naive_chain_s_scaled": t_naive,
        "matmul_only_s_scaled": t_mm,
        "speedup_vs_naive": t_naive / t_sim,
        "speedup_dense_vs_naive": t_naive / t_dense,
        "simulator_over_matmul": t_sim / t_mm,
        "dense_over_matmul": t_dense / t_mm,
        "scaled_from": {"dense_seeds": dense_seeds, "naive_layers": naive_layers,
                        "matmul_layers": matmul_layers},
    }


def _max_ratio(times: list[float]) -> float:
    return max(max(a / b, b / a) for a, b in zip(times, times[1:]))


def smoothness(depth: int = 100, seeds: int = 8, probe_width: int = 256,
               probe_seeds: int = 16) -> dict:
    """The cut-over and probe-count rows of issue 32 (module notes)."""
    from critheory.simulation import sampling
    from critheory.simulation.cost import estimate_seconds
    from critheory.simulation.engine import default_probes

    simulate("tanh", 1.0, 0.0, width=64, depth=4, seeds=2, probes=2)   # warm-up
    old_cut = int((2e10 / (seeds * depth)) ** (1 / 3))
    while seeds * depth * (old_cut + 1) ** 3 <= 2e10:
        old_cut += 1
    widths = sorted(set(range(old_cut - 28, old_cut + 33, 4)) | {old_cut, old_cut + 1})
    rows = []
    for w in widths:
        p = default_probes(w, depth, 1, seeds)
        t = _time(lambda: simulate("tanh", 1.0, 0.0, width=w, depth=depth, seeds=seeds))
        rows.append({"width": w, "probes": p, "seconds": t,
                     "estimate": estimate_seconds(w, depth, seeds, p)})
    old = [_time(lambda: simulate("tanh", 1.0, 0.0, width=w, depth=depth, seeds=seeds,
                                  probes=p)) for w, p in ((old_cut, "exact"), (old_cut + 1, 8))]
    probe_counts = sorted(set(range(4, 65, 4)) | {1, 2, 30, 31, 32, 33, 63})
    curves = {}
    plain = sampling.small_matmul
    for label in ("before", "after"):
        times = []
        for p in probe_counts:
            kw = {}
            if label == "before":
                sampling.small_matmul = lambda a, b: a @ b
                kw["method"] = "projected" if 4 * (1 + p) <= probe_width else "dense"
            try:
                times.append(_time(lambda: simulate("tanh", 1.0, 0.0, width=probe_width,
                                                    depth=depth, seeds=probe_seeds, probes=p,
                                                    **kw)))
            finally:
                sampling.small_matmul = plain
        curves[label] = times
    return {
        "cutover": {"depth": depth, "seeds": seeds, "old_cut": [old_cut, old_cut + 1],
                    "rows": rows, "old_seconds": old,
                    "old_ratio": max(old) / min(old),
                    "new_max_neighbour_ratio": _max_ratio([r["seconds"] for r in rows])},
        "probes": {"width": probe_width, "depth": depth, "seeds": probe_seeds,
                   "counts": probe_counts, "before": curves["before"],
                   "after": curves["after"],
                   "before_max_neighbour_ratio": _max_ratio(curves["before"]),
                   "after_max_neighbour_ratio": _max_ratio(curves["after"])},
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()[0],
                    "numpy": np.__version__},
    }


def _print_smoothness(res: dict) -> None:
    c = res["cutover"]
    print(f"default method across the old cut-over: tanh MLP (1, 0), depth {c['depth']}, "
          f"{c['seeds']} networks  [{res['machine']['cpus']} cpus, load "
          f"{res['machine']['load']:.1f}]")
    print(f"{'width':>6} {'probes':>7} {'seconds':>8} {'estimate':>9}")
    for r in c["rows"]:
        p = "exact" if r["probes"] is None else r["probes"]
        print(f"{r['width']:>6} {p!s:>7} {r['seconds']:>8.3f} {r['estimate']:>9.3f}")
    a, b = c["old_cut"]
    print(f"old default: width {a} exact {c['old_seconds'][0]:.2f} s, width {b} 8 probes "
          f"{c['old_seconds'][1]:.2f} s -> jump {c['old_ratio']:.0f}x; new largest neighbour "
          f"ratio {c['new_max_neighbour_ratio']:.2f}x")
    q = res["probes"]
    print(f"\ntime against probes: width {q['width']}, depth {q['depth']}, {q['seeds']} networks")
    print(f"{'probes':>7} {'before':>8} {'after':>8}")
    for p, t0, t1 in zip(q["counts"], q["before"], q["after"]):
        print(f"{p:>7} {t0:>8.3f} {t1:>8.3f}")
    print(f"largest neighbour ratio: before {q['before_max_neighbour_ratio']:.2f}x, after "
          f"{q['after_max_neighbour_ratio']:.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="width 256, depth 64, 4 networks")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--smooth", action="store_true",
                   help="the default's time across the old cut-over and against the probes")
    args = p.parse_args(argv)
    if args.smooth:
        res = smoothness()
        if args.json:
            print(json.dumps(res))
        else:
            _print_smoothness(res)
        return 0
    if args.quick:
        cfg = dict(width=256, depth=64, seeds=4, probes=8, dense_seeds=2, naive_layers=8,
                   matmul_layers=128)
    else:
        cfg = dict(width=1024, depth=256, seeds=16, probes=8, dense_seeds=1, naive_layers=3,
                   matmul_layers=128)
    res = run(**cfg)
    if args.json:
        print(json.dumps(res))
        return 0
    w = res["workload"]
    print(f"tanh MLP (1, 0): width {w['width']}, depth {w['depth']}, {w['seeds']} networks, "
          f"{w['probes']} probes  [{res['machine']['cpus']} cpus, numpy {np.__version__}]")
    rows = [
        (f"simulate (auto -> {res['simulator_method']})", res["simulator_s"], "measured"),
        ("simulate (dense)", res["dense_simulator_s_scaled"],
         f"scaled from {cfg['dense_seeds']} network(s)"),
        ("naive N×N Jacobian chain (exact)", res["naive_chain_s_scaled"],
         f"scaled from {cfg['naive_layers']} layers"),
        ("matmul only (draw W, W @ N×(P+1))", res["matmul_only_s_scaled"],
         f"scaled from {cfg['matmul_layers']} layers"),
    ]
    print(f"{'computation':<38}{'seconds':>10}   note")
    for name, sec, note in rows:
        print(f"{name:<38}{sec:>10.2f}   {note}")
    print(f"speed-up of simulate over naive chain : {res['speedup_vs_naive']:8.1f}x")
    print(f"speed-up of dense simulate over naive : {res['speedup_dense_vs_naive']:8.1f}x")
    print(f"simulate / matmul-only                : {res['simulator_over_matmul']:8.3f}")
    print(f"dense simulate / matmul-only          : {res['dense_over_matmul']:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
