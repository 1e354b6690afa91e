"""Benchmark of ``critheory sweep``: the overhead per cell and the speed-up of 2 workers, each
against a plain in-process loop over the same cells measured in the same run.

Two workloads (tanh MLP, root seed 0):

* **tiny cells** (width 8, depth 6, 2 networks, 10 bootstrap replicates; ~20–30 ms a cell,
  most of it the theory at the cell), a 25 × 20 grid: the plain loop ``[run_cell(spec, *c)
  for c in spec.cells()]``, against ``run_sweep`` in this process (``workers=1``, no Dask) and on
  a warm LocalCluster of 2 workers (``critheory.sweep.run.local_cluster``, the one ``critheory
  sweep --workers 2`` starts), each timed as the whole call (the store's creation, the lock and
  the consolidation included; the cluster's start-up not). The *overhead* is
  ``sweep / loop − 1`` and ``(sweep − loop) / cells`` per cell; a row with one cell per task
  (``batch_size=1``) shows what batching removes.
* **0.1 s cells** (width 64, depth 24, 16 networks, 100 bootstrap replicates), a 12 × 10 grid: the
  plain loop against ``run_sweep`` on the warm 2-worker LocalCluster; the *speed-up* is
  ``loop / sweep``. Beside it the *ceiling*: two plain loops over every second cell in two
  processes at once (no scheduler, no store), ``loop / two loops``: what the 2 cores give
  right now (below 2 when they are shared, or when the VM's 2 vCPUs are not 2 free cores).

The workloads alternate within each repeat (``--repeats``, default 4; every other repeat in
the reverse order), so every ratio compares numbers measured a few seconds apart; the best, median and worst ratio over the repeats show
the spread (the development VM has 2 cores shared with other work: a ratio below the ideal
may mean the second core was busy). The *CPU ratio* — CPU seconds of everything the sweep ran
(this process: client, scheduler and store writes; the workers' processes) over the loop's —
measures the overhead as work; *outside cells* — ``workers × seconds / Σ elapsed − 1``, the
workers' time not spent inside a cell over the time inside (each cell's ``elapsed``) — measures
it within one run, so that no difference of load between two runs enters; for the 2-worker
run of 0.1 s cells the same numbers give the *utilization* ``Σ elapsed / (2 × seconds)``.
BLAS runs single-threaded everywhere (the Dask nannies set it for the workers, this script for
itself), so that the loop and each worker use one core. Every sweep's numbers are compared
with the loop's bit for bit (``identical``: seeds derive from the cell, not the batch or the
worker).

Run ``python benchmarks/bench_sweep.py`` (``--quick``: smaller grids, 2 repeats; ``--json``).
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")                  # before numpy: one core per loop/worker

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    from critheory.sweep import SweepSpec, check_spec
except ImportError:  # running from a checkout without installation
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from critheory.sweep import SweepSpec, check_spec


def _loop(spec) -> tuple[float, float, dict]:
    from critheory.sweep.cell import SCIENCE, run_cell

    t, c = time.perf_counter(), time.process_time()
    rows = [run_cell(spec, *cell) for cell in spec.cells()]
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    science = {v: np.array([r[v] for r in rows], dtype=float).reshape(spec.shape)
               for v in SCIENCE}
    return wall, cpu, science


def _half_loop(spec, part: int) -> float:
    """A plain loop over every second cell (``part`` 0 or 1); its CPU seconds."""
    from critheory.sweep.cell import run_cell

    c = time.process_time()
    for cell in list(spec.cells())[part::2]:
        run_cell(spec, *cell)
    return time.process_time() - c


def _two_loops(pool, spec) -> tuple[float, float]:
    """The ceiling of 2 cores: two plain loops over halves of the cells in two processes at
    once (no scheduler, no store); wall and CPU seconds."""
    t = time.perf_counter()
    futs = [pool.submit(_half_loop, spec, k) for k in (0, 1)]
    cpu = sum(f.result() for f in futs)
    return time.perf_counter() - t, cpu


def _workers_cpu(client) -> float:
    return float(sum(client.run(time.process_time).values())) if client is not None else 0.0


def _sweep(spec, out, client=None, **kw) -> dict:
    from critheory.sweep.cell import SCIENCE
    from critheory.sweep.run import run_sweep
    from critheory.sweep.store import load

    w0 = _workers_cpu(client)
    t, c = time.perf_counter(), time.process_time()
    run = run_sweep(spec, out, client=client, **kw) if client is not None else \
        run_sweep(spec, out, **kw)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    workers_cpu = _workers_cpu(client) - w0
    ds = load(out)
    return {"seconds": wall, "client_cpu": cpu, "workers_cpu": workers_cpu,
            "batches": run.batches, "compute_seconds": run.compute_seconds,
            "workers": run.workers, "in_cells": float(np.sum(ds["elapsed"].values)),
            "science": {v: np.asarray(ds[v].values, dtype=float) for v in SCIENCE}}


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[v], b[v], equal_nan=True) for v in a)


def _stats(x) -> dict:
    x = np.asarray(x, dtype=float)
    return {"best": float(x.min()), "median": float(np.median(x)), "worst": float(x.max())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from critheory.sweep.cell import run_cell
    from critheory.sweep.run import local_cluster

    repeats = a.repeats or (2 if a.quick else 4)
    tg = (10, 10) if a.quick else (25, 20)
    mg = (5, 4) if a.quick else (12, 10)
    tiny = check_spec(SweepSpec(("tanh",), "mlp", 1.0, (0.5, 3.0, tg[0]), (0.0, 0.3, tg[1]),
                                width=8, depth=6, seeds=2, n_boot=10))
    mid = check_spec(SweepSpec(("tanh",), "mlp", 1.0, (0.5, 3.0, mg[0]), (0.0, 0.3, mg[1]),
                               width=64, depth=24, seeds=16, n_boot=100))
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    client, cluster = local_cluster(2)              # the cluster `critheory sweep` starts
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    for f in [pool.submit(_half_loop, check_spec(SweepSpec(**{**s.__dict__, "weight_var":
                                                            (0.5, 0.5, 1), "bias_var":
                                                            (0.0, 0.0, 2)})), k)
              for s in (tiny, mid) for k in (0, 1)]:
        f.result()                                  # warm the two processes
    # warm this process and the workers (imports of the simulator and the theory, the caches)
    for s in (tiny, mid):
        run_cell(s, 0, 0, 0)
        client.run(lambda s=s: __import__("critheory.sweep.cell").sweep.cell.run_cell(
            s, 0, 0, 0) and None)
    startup = time.perf_counter() - t
    root = tempfile.mkdtemp(prefix="bench_sweep_")
    rows: dict = {k: [] for k in ("tiny_loop", "tiny_inprocess", "tiny_2workers", "mid_loop",
                                  "mid_2workers", "mid_2loops")}
    identical = True
    try:
        _sweep(tiny, os.path.join(root, "warm.zarr"), workers=1)     # xarray/zarr imports
        refs = {"tiny": _loop(tiny)[2], "mid": _loop(mid)[2]}       # the reference numbers
        for r in range(repeats):
            # ABBA: every other repeat runs its steps in the reverse order, so that a drift of
            # the machine's load within a repeat does not favour either side of a ratio
            steps = [("tiny_loop", tiny, None), ("tiny_inprocess", tiny, {"workers": 1}),
                     ("tiny_2workers", tiny, {"client": client}), ("mid_loop", mid, None),
                     ("mid_2workers", mid, {"client": client}), ("mid_2loops", mid, "pool")]
            for name, spec, kw in (steps if r % 2 == 0 else steps[::-1]):
                ref = refs["tiny" if spec is tiny else "mid"]
                if kw is None:
                    lw, lc, sci = _loop(spec)
                    identical &= _same(sci, ref)
                    rows[name].append({"seconds": lw, "client_cpu": lc})
                elif kw == "pool":
                    w2, c2 = _two_loops(pool, spec)
                    rows[name].append({"seconds": w2, "cpu": c2})
                else:
                    x = _sweep(spec, os.path.join(root, f"{name}{r}.zarr"), **kw)
                    identical &= _same(x.pop("science"), ref)
                    rows[name].append(x)
        # one cell per task (the former scheduling), once
        lw, _, ref = _loop(tiny)
        x = _sweep(tiny, os.path.join(root, "percell.zarr"), client=client, batch_size=1)
        identical &= _same(x.pop("science"), ref)
        per_cell = {**x, "loop_seconds": lw}
    finally:
        client.close()
        cluster.close()
        pool.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    n_tiny, n_mid = tiny.n_cells, mid.n_cells
    loops_t = [r["seconds"] for r in rows["tiny_loop"]]
    loops_m = [r["seconds"] for r in rows["mid_loop"]]
    res = {
        "machine": platform.machine(), "cpus": os.cpu_count(), "python":
        platform.python_version(), "load_average_start": load0,
        "load_average_end": os.getloadavg()[0], "repeats": repeats, "startup": startup,
        "tiny": {"cells": n_tiny, "cell_seconds": float(np.median(loops_t)) / n_tiny},
        "mid": {"cells": n_mid, "cell_seconds": float(np.median(loops_m)) / n_mid},
        "identical": bool(identical), "rows": rows,
    }
    cpus_t = [r["client_cpu"] for r in rows["tiny_loop"]]
    for name in ("tiny_inprocess", "tiny_2workers"):
        ratio = [x["seconds"] / lw for x, lw in zip(rows[name], loops_t)]
        over = [(x["seconds"] - lw) / n_tiny for x, lw in zip(rows[name], loops_t)]
        # CPU seconds of everything the sweep ran (this process: client, scheduler, writes;
        # the workers) over the loop's: the overhead as work, whatever else loads the cores
        cpu = [(x["client_cpu"] + x["workers_cpu"]) / lc for x, lc in zip(rows[name], cpus_t)]
        # within the run: the workers' seconds outside cells over those inside (no second run
        # to compare with, so no load difference between two runs enters)
        within = [x["workers"] * x["seconds"] / x["in_cells"] - 1 for x in rows[name]]
        res["tiny"][name] = {"ratio": _stats(ratio), "overhead_ms_per_cell":
                             {k: 1e3 * v for k, v in _stats(over).items()},
                             "cpu_ratio": _stats(cpu), "outside_cells": _stats(within),
                             "batches": rows[name][-1]["batches"]}
    res["tiny"]["2workers_batch1"] = {"ratio": per_cell["seconds"] / per_cell["loop_seconds"],
                                      "overhead_ms_per_cell": 1e3 * (
                                          per_cell["seconds"] - per_cell["loop_seconds"]) / n_tiny,
                                      "client_cpu_ms_per_cell": 1e3 * per_cell["client_cpu"]
                                      / n_tiny}
    sp = [lw / x["seconds"] for x, lw in zip(rows["mid_2workers"], loops_m)]
    res["mid"]["speedup_2workers"] = _stats(sp)
    ceil = [lw / x["seconds"] for x, lw in zip(rows["mid_2loops"], loops_m)]
    res["mid"]["speedup_2loops"] = _stats(ceil)
    res["mid"]["ceilings"] = ceil
    res["mid"]["of_ceiling"] = _stats([a / b for a, b in zip(sp, ceil)])
    # CPU seconds of the two plain loops over the one loop's: what running two processes at
    # once costs in CPU time by itself (shared caches, memory, a busy host), with no Dask
    res["mid"]["cpu_ratio_2loops"] = _stats([x["cpu"] / r["client_cpu"] for x, r in
                                             zip(rows["mid_2loops"], rows["mid_loop"])])
    res["mid"]["utilization"] = _stats([x["in_cells"] / (2 * x["seconds"])
                                        for x in rows["mid_2workers"]])
    res["mid"]["cpu_ratio"] = _stats([(x["client_cpu"] + x["workers_cpu"]) / r["client_cpu"]
                                      for x, r in zip(rows["mid_2workers"], rows["mid_loop"])])
    res["mid"]["speedups"] = sp
    res["mid"]["client_cpu_share"] = [x["client_cpu"] / x["seconds"] for x in
                                      rows["mid_2workers"]]
    if a.json:
        print(json.dumps(res))
        return 0 if identical else 1
    print(f"sweep benchmark: tanh MLP, {os.cpu_count()} CPUs, load average {load0:.1f} at the "
          f"start, {repeats} repeats (cluster start-up {startup:.1f} s, not timed)")
    print(f"tiny cells: {tg[0]}x{tg[1]} = {n_tiny} cells of "
          f"{1e3 * res['tiny']['cell_seconds']:.1f} ms (plain loop, median)")
    print(f"  {'run':<28} {'s (each repeat)':<24} {'ratio to loop best/med/worst':<30} "
          f"{'overhead ms/cell (med)':>22} {'batches':>8} {'CPU ratio (med)':>16} "
          f"{'outside cells (med)':>20}")
    print(f"  {'plain loop':<28} {' '.join(f'{v:.2f}' for v in loops_t):<24}")
    for name, label in (("tiny_inprocess", "sweep, in this process"),
                        ("tiny_2workers", "sweep, 2 workers")):
        st = res["tiny"][name]
        secs = " ".join(f"{x['seconds']:.2f}" for x in rows[name])
        rr = st["ratio"]
        print(f"  {label:<28} {secs:<24} {rr['best']:.3f} / {rr['median']:.3f} / "
              f"{rr['worst']:.3f}{'':<8} {st['overhead_ms_per_cell']['median']:>22.2f} "
              f"{st['batches']:>8} {st['cpu_ratio']['median']:>16.3f} "
              f"{st['outside_cells']['median']:>20.3f}")
    pc = res["tiny"]["2workers_batch1"]
    print(f"  {'2 workers, 1 cell per task':<28} {per_cell['seconds']:<24.2f} "
          f"{pc['ratio']:.3f} (loop {per_cell['loop_seconds']:.2f} s){'':<10} "
          f"{pc['overhead_ms_per_cell']:>22.2f} {per_cell['batches']:>8}")
    print(f"0.1 s cells: {mg[0]}x{mg[1]} = {n_mid} cells of "
          f"{res['mid']['cell_seconds']:.3f} s (plain loop, median)")
    def col(key):
        return " ".join(f"{x[key]:.2f}" for x in rows["mid_2workers"])

    print(f"  plain loop s: {' '.join(f'{v:.2f}' for v in loops_m)}")
    print(f"  2 workers  s: {col('seconds')}  (batches {rows['mid_2workers'][-1]['batches']}; "
          f"workers' CPU s {col('workers_cpu')}; client CPU s {col('client_cpu')})")
    s2 = res["mid"]["speedup_2workers"]
    two = " ".join(f"{x['seconds']:.2f}" for x in rows["mid_2loops"])
    print(f"  2 plain loops over halves in 2 processes at once s: {two}: speed-up "
          f"{' '.join(f'{v:.2f}' for v in ceil)} (the ceiling of the 2 cores now)")
    print(f"  speed-up of 2 workers over the loop: {' '.join(f'{v:.2f}' for v in sp)} "
          f"(best {s2['best']:.2f}, median {s2['median']:.2f}, worst {s2['worst']:.2f}); CPU "
          f"seconds of the sweep over the loop's {res['mid']['cpu_ratio']['median']:.3f} (of "
          f"the two plain loops {res['mid']['cpu_ratio_2loops']['median']:.3f}), "
          f"workers' time inside cells {res['mid']['utilization']['median']:.3f} (medians); "
          f"speed-up over the ceiling {res['mid']['of_ceiling']['median']:.3f} (median)")
    print(f"results identical to the loop's bit for bit: {identical}; load average at the end "
          f"{os.getloadavg()[0]:.1f}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
