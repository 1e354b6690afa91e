"""Benchmark of ``critheory sweep``: cells per second on a LocalCluster of 1 and of 2 workers.

Workload (default): tanh MLP, a 9 × 7 grid of (σ_w², σ_b²) in [0.5, 3] × [0, 0.3], width 64,
depth 24, 16 networks per cell, 100 bootstrap replicates per fit (a cell is ~0.1–0.2 s of one
core here). For each worker count the sweep runs into a fresh zarr store on a fresh
LocalCluster of single-threaded worker processes; timed is ``compute_seconds`` (first task
submitted to last cell written; the cluster's start-up is reported separately). The scaling is
``rate(2 workers) / rate(1 worker)``; on a 2-core machine the client (which writes each cell,
~30 ms) shares the cores with the workers, so the ideal 2 is not reached. The numbers of the two
runs are compared: they must be identical (seeds derive from the cell, not the worker).
*utilization* is the workers' time inside cells over ``workers × seconds``: near 1, Dask kept
every worker busy, and a rate that does not scale means the cores were not free (a shared
machine) rather than a scheduling bottleneck.

Run ``python benchmarks/bench_sweep.py`` (``--quick``: a 5 × 4 grid, ``--workers 1 2 4``,
``--json``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

try:
    from critheory.sweep import SweepSpec
except ImportError:  # running from a checkout without installation
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from critheory.sweep import SweepSpec


def one(spec, workers: int, root: str) -> dict:
    from dask.distributed import Client, LocalCluster

    from critheory.sweep.cell import SCIENCE
    from critheory.sweep.run import run_sweep
    from critheory.sweep.store import load

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=40)
    client = Client(cluster)
    # warm the workers (imports of the simulator and the theory) outside the timing
    client.run(lambda: __import__("critheory.sweep.cell").sweep.cell.run_cell and None)
    startup = time.perf_counter() - t
    out = os.path.join(root, f"w{workers}.zarr")
    try:
        run = run_sweep(spec, out, client=client)
    finally:
        client.close()
        cluster.close()
    ds = load(out)
    return {"workers": workers, "cells": run.computed, "seconds": run.compute_seconds,
            "cells_per_second": run.cells_per_second, "startup": startup,
            "cell_seconds_median": float(np.median(ds["elapsed"].values)),
            # fraction of the workers' time spent inside cells: ~1 means the scheduler kept
            # every worker busy (then the rate is bounded by the cores, not by Dask)
            "utilization": float(np.sum(ds["elapsed"].values)) / (workers
                                                                  * run.compute_seconds),
            "science": {v: ds[v].values for v in SCIENCE}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    nw, nb = (5, 4) if a.quick else (9, 7)
    spec = SweepSpec(("tanh",), "mlp", 1.0, (0.5, 3.0, nw), (0.0, 0.3, nb), width=64, depth=24,
                     seeds=16, n_boot=100)
    root = tempfile.mkdtemp(prefix="bench_sweep_")
    try:
        rows = [one(spec, w, root) for w in a.workers]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ref = rows[0]["science"]
    same = all(np.array_equal(r["science"][v], ref[v], equal_nan=True)
               for r in rows[1:] for v in ref)
    base = rows[0]["cells_per_second"]
    for r in rows:
        r["scaling"] = r["cells_per_second"] / base
        del r["science"]
    info = {"machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
            "python": platform.python_version(), "grid": f"{nw}x{nb}", "width": 64,
            "depth": 24, "seeds": 16, "identical_results": same, "rows": rows}
    if a.json:
        print(json.dumps(info))
        return 0
    print(f"sweep benchmark: tanh MLP, {nw}x{nb} grid, width 64, depth 24, 16 networks per "
          f"cell ({os.cpu_count()} CPUs)")
    print(f"{'workers':>8} {'cells':>6} {'seconds':>8} {'cells/s':>8} {'scaling':>8} "
          f"{'cell s (median)':>16} {'utilization':>12} {'start-up s':>11}")
    for r in rows:
        print(f"{r['workers']:>8} {r['cells']:>6} {r['seconds']:>8.2f} "
              f"{r['cells_per_second']:>8.2f} {r['scaling']:>8.2f} "
              f"{r['cell_seconds_median']:>16.3f} {r['utilization']:>12.2f} "
              f"{r['startup']:>11.2f}")
    print(f"results identical across worker counts: {same}; load average at the end "
          f"{os.getloadavg()[0]:.1f} (other processes share the cores)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
