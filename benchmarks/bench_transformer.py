"""Benchmark: the transformer token-kernel recursion (``analyze --arch transformer``'s theory),
this tree against a baseline revision of critheory, in one run.

Workload (what ``critheory analyze ACT --arch transformer --tokens T`` runs): the pre-LN
transformer recursion over 32 layers at ``σ_w² = 1, σ_b² = 0``, token correlation 0.5, 1024
scrambled-Sobol points x 8 randomizations. The baseline is the same function from
``--baseline`` (default ``e3d1588``, before the vectorized attention products, the reused QMC
nodes and the MLP block's correlation tables), extracted with ``git archive`` into a temporary
folder; each side runs in its own process, after a small warm-up call (imports, zoo cache,
symbolic set-up) that is not timed.

Reported per T: seconds of each side (or why it did not run), their ratio, and the agreement of
the values: the largest ``|new − old| / √(err_new² + err_old²)`` over the token kernels and
the APJN (both are randomized-QMC estimates with independent nodes beyond the first
attention block: values of order 1 are agreement; ``exact`` where both are deterministic).
``--profile`` prints where this tree's time goes (cProfile, top functions).

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

CHILD = r"""
import json, sys, time
import numpy as np
from critheory.blocks.transformer import transformer
from critheory.theory.transformer.depth import transformer_depth
act, T, depth, profile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
transformer_depth(transformer("transformer", act, tokens=2), 1.0, 0.0, 2, points=64)
net = transformer("transformer", act, tokens=T)
run = lambda: transformer_depth(net, 1.0, 0.0, depth, corr=0.5, points=1024, replicas=8)
t = time.perf_counter()
if profile:
    import cProfile, pstats
    pr = cProfile.Profile(); d = pr.runcall(run); pr.disable()
    pstats.Stats(pr, stream=sys.stderr).sort_stats("tottime").print_stats(8)
else:
    d = run()
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "G": d.kernel_tokens.tolist(), "Ge": d.kernel_tokens_error.tolist(),
                  "J": d.apjn.tolist(), "Je": d.apjn_error.tolist(), "exact": d.exact}))
"""


def _side(path: str, act: str, T: int, depth: int, timeout: float, profile=False) -> dict:
    env = dict(os.environ, PYTHONPATH=path)
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


def _agreement(a: dict, b: dict) -> str:
    import numpy as np

    if a.get("exact") and b.get("exact"):
        return "exact"
    z = 0.0
    for v, e in (("G", "Ge"), ("J", "Je")):
        x, y = np.array(a[v], dtype=float), np.array(b[v], dtype=float)
        s = np.hypot(np.array(a[e], dtype=float), np.array(b[e], dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(x - y) / (s + 1e-12 * np.abs(y))
        z = max(z, float(np.nanmax(r)))
    return f"{z:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--act", default="tanh")
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--baseline", default="e3d1588", help="git revision of the baseline")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per side and T")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "-C", ROOT, "archive", a.baseline, "critheory"],
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=arch, check=True)
        print(f"{'T':>4} {'new s':>9} {'baseline s':>11} {'speed-up':>8} {'agreement':>9}")
        for T in a.tokens:
            new = _side(ROOT, a.act, T, a.depth, a.timeout, a.profile)
            old = _side(tmp, a.act, T, a.depth, a.timeout)
            ns = f"{new['seconds']:9.2f}" if "seconds" in new else f"{'-':>9}"
            os_ = f"{old['seconds']:11.2f}" if "seconds" in old else f"{'-':>11}"
            ratio = (f"{old['seconds'] / new['seconds']:8.1f}"
                     if "seconds" in new and "seconds" in old else f"{'-':>8}")
            agree = _agreement(new, old) if "seconds" in new and "seconds" in old else "-"
            print(f"{T:>4} {ns} {os_} {ratio} {agree:>9}", flush=True)
            for side, r in (("new", new), ("baseline", old)):
                if "why" in r:
                    print(f"      {side}: {r['why']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
