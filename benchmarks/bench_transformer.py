"""Benchmark: the transformer token-kernel recursion (``analyze --arch transformer``'s theory),
this tree against a baseline revision of critheory, in one run.

Workload (what ``critheory analyze ACT --arch transformer --tokens T`` runs): the pre-LN
transformer recursion over 32 layers at ``σ_w² = 1, σ_b² = 0``, token correlation 0.5, 1024
scrambled-Sobol points x 8 randomizations. The baseline is the same function from
``--baseline`` (default ``25d66e1``: before the exchangeable attention route, with the reused QMC
nodes and the MLP block's correlation tables of the first round; ``e3d1588`` is the code before
either), extracted with ``git archive`` into a temporary folder; each side runs in its own
process, after a small warm-up call (imports, zoo cache, symbolic set-up) that is not timed,
with the library's work budgets lifted (the baseline refuses T = 64 at once).

The baseline first runs ``--probe-depth`` layers and two layers more; its 32-layer time is
extrapolated as ``t(d) + (32 − d) (t(d + 2) − t(d))/2`` (each layer costs the same: one
attention and one MLP block; the one-off costs, QMC nodes and tables, are in ``t(d)``), and only
where that is below ``--full-limit`` seconds (wall and CPU) are the 32 layers run; otherwise
the table shows the extrapolation, marked ``~``. Both sides run with one BLAS thread
(``--threads``; 0 keeps the library's default): on a shared machine the baseline's threaded
products spin on busy cores, which would inflate its CPU time and the ratio.

Reported per T: wall and CPU seconds of each side (CPU: the process' own time, all its threads,
steadier on a shared machine), the speed-up (baseline / new, CPU), and the agreement of the
values over the layers both ran: of ``z = |new − old| / √(err_new² + err_old²)`` over every
token-kernel and APJN entry, the share above 3 and the largest (independent randomized-QMC
estimates whose errors come from 8 randomizations each: z is close to Student-t with ~10
degrees of freedom, ~1 % above 3, and its largest value grows with the number of entries, to
~8 among the 10⁵ of T = 64; ``exact`` where both are deterministic). ``--profile`` prints
where this tree's time goes (cProfile, top functions).

Run: ``python benchmarks/bench_transformer.py [--tokens 4 16 64] [--act tanh]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = 32

CHILD = r"""
import importlib, json, sys, time
import numpy as np
from critheory.blocks.transformer import transformer
from critheory.theory.transformer.depth import transformer_depth
# the budgets are the thing measured here: the baseline refuses T = 64 (4.7e10 a block)
for mod, name in (("softmax", "MAX_WORK"), ("depth", "MAX_RECURSION_WORK")):
    setattr(importlib.import_module("critheory.theory.transformer." + mod), name, float("inf"))
act, T, depth, profile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
transformer_depth(transformer("transformer", act, tokens=2), 1.0, 0.0, 2, points=64)
net = transformer("transformer", act, tokens=T)
run = lambda: transformer_depth(net, 1.0, 0.0, depth, corr=0.5, points=1024, replicas=8)
t, c = time.perf_counter(), time.process_time()
if profile:
    import cProfile, pstats
    pr = cProfile.Profile(); d = pr.runcall(run); pr.disable()
    pstats.Stats(pr, stream=sys.stderr).sort_stats("tottime").print_stats(10)
else:
    d = run()
dt, dc = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"seconds": dt, "cpu": dc, "G": d.kernel_tokens.tolist(),
                  "Ge": d.kernel_tokens_error.tolist(), "J": d.apjn.tolist(),
                  "Je": d.apjn_error.tolist(), "exact": d.exact}))
"""


def _side(path: str, act: str, T: int, depth: int, timeout: float, profile=False,
          threads: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=path)
    if threads:
        env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", CHILD, act, str(T), str(depth),
                            "1" if profile else "0"], env=env, capture_output=True, text=True,
                           timeout=timeout, cwd=path)
    except subprocess.TimeoutExpired:
        return {"why": f"> {timeout:.0f} s"}
    if p.returncode != 0:
        line = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"why": line[:90], "wall": time.perf_counter() - t}
    if profile:
        print(p.stderr, file=sys.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def _baseline(path: str, act: str, T: int, timeout: float, full_limit: float,
              probe: int, threads: int) -> dict:
    """The baseline's 32 layers, measured or extrapolated from ``probe`` and ``probe + 2``."""
    a = _side(path, act, T, probe, timeout, threads=threads)
    if "seconds" not in a:
        return a
    b = _side(path, act, T, probe + 2, timeout, threads=threads)
    if "seconds" not in b:
        return b
    est = {k: a[k] + (LAYERS - probe) * max(b[k] - a[k], 0.0) / 2 for k in ("seconds", "cpu")}
    if max(est.values()) <= full_limit:
        full = _side(path, act, T, LAYERS, timeout, threads=threads)
        if "seconds" in full:
            return full
    return dict(b, **est, extrapolated=True)


def _agreement(a: dict, b: dict) -> str:
    """``share of |z| > 3 / largest |z|`` over the token-kernel and APJN entries of the layers
    both sides ran, ``z = (new − old)/√(err_new² + err_old²)``."""
    import numpy as np

    if a.get("exact") and b.get("exact"):
        return "exact"
    zs = []
    for v, e in (("G", "Ge"), ("J", "Je")):
        n = min(len(a[v]), len(b[v]))               # the layers both sides ran
        x, y = np.array(a[v][:n], dtype=float), np.array(b[v][:n], dtype=float)
        s = np.hypot(np.array(a[e][:n], dtype=float), np.array(b[e][:n], dtype=float))
        live = s > 1e-13 * np.abs(y)                 # not the exact first layer
        zs.append((np.abs(x - y)[live] / s[live]).ravel())
    z = np.concatenate(zs)
    return f"{np.mean(z > 3):.1%} / {z.max():.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--act", default="tanh")
    ap.add_argument("--baseline", default="25d66e1", help="git revision of the baseline")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per process")
    ap.add_argument("--full-limit", type=float, default=200.0,
                    help="run the baseline's 32 layers only if estimated below this (s)")
    ap.add_argument("--probe-depth", type=int, default=3,
                    help="layers of the baseline's probe runs where it is extrapolated")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads of both sides (0: the library's default)")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "-C", ROOT, "archive", a.baseline, "critheory"],
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=arch, check=True)
        print(f"{a.act}, {LAYERS} layers, 1024 points x 8 randomizations; baseline "
              f"{a.baseline}; BLAS threads {a.threads or 'default'}; ~ = extrapolated from "
              f"layers {a.probe_depth}, {a.probe_depth + 2}")
        print(f"{'T':>4} {'new wall':>9} {'new cpu':>8} {'base wall':>10} {'base cpu':>9} "
              f"{'speed-up':>8} {'z>3 / max z':>13}")
        for T in a.tokens:
            new = _side(ROOT, a.act, T, LAYERS, a.timeout, a.profile, a.threads)
            old = _baseline(tmp, a.act, T, a.timeout, a.full_limit, a.probe_depth, a.threads)
            mark = "~" if old.get("extrapolated") else " "

            def col(r, k, w, m=" "):
                return f"{m}{r[k]:{w - 1}.2f}" if k in r else f"{'-':>{w}}"

            ratio = (f"{old['cpu'] / new['cpu']:7.1f}x" if "cpu" in new and "cpu" in old
                     else f"{'-':>8}")
            agree = _agreement(new, old) if "G" in new and "G" in old else "-"
            print(f"{T:>4} {col(new, 'seconds', 9)} {col(new, 'cpu', 8)} "
                  f"{col(old, 'seconds', 10, mark)} {col(old, 'cpu', 9, mark)} {ratio} "
                  f"{agree:>13}", flush=True)
            for side, r in (("new", new), ("baseline", old)):
                if "why" in r:
                    print(f"      {side}: {r['why']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
