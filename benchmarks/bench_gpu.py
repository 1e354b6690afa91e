"""Benchmark of the simulator's torch:cuda backend against numpy and against the device's
matmul peak (measured in the same run).

Skips cleanly (exit 0, one line) when torch or CUDA is not available.

Workload (default): tanh MLP at (σ_w², σ_b²) = (1, 0), width 2048, depth 32, 4 networks, the
exact APJN (``probes="exact"``: the tangent block has N columns, so each layer is an
``N × N`` by ``N × (N + 1)`` product, ``2 N² (N + 1)`` flops — the case a GPU is for). Timed:

* ``simulate(backend="numpy")`` (float64) — the reference, on the host's cores;
* ``simulate(backend="torch:cuda")`` in float64 and float32 (first call untimed: CUDA start-up);
* the device's matmul peak: ``torch.matmul`` of two ``N × N`` matrices in float64 and float32,
  best of several, synchronized.

Reported: network-layers per second, the speed-up over numpy, the simulation's achieved
flop rate (``2 N² (N + 1)`` per network-layer) and its fraction of the measured matmul peak in
the same dtype, and the agreement of the results with numpy's (float64: ~1e-12 relative). The
random numbers are drawn by numpy on the host (``O(N²)`` normals per layer) and copied to the
device: that, not the device, bounds the fraction of peak for small N.

``python benchmarks/bench_gpu.py [--quick] [--width N --depth L --seeds S] [--device cuda:0]
[--json]``; ``--device cpu`` runs the same measurement on torch's CPU backend (a check of the
script on machines without a GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

try:
    from critheory.simulation import simulate
except ImportError:  # running from a checkout without installation
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from critheory.simulation import simulate


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def matmul_peak(torch, device: str, n: int, dtype: str, repeat: int = 5) -> float:
    """Best flop rate (flop/s) of an ``n × n`` by ``n × n`` product on ``device``."""
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, dtype=dt, device=device)
    b = torch.randn(n, n, dtype=dt, device=device)
    c = a @ b
    _sync(torch, device)
    best = float("inf")
    reps = 10 if device.startswith("cuda") else 2
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        _sync(torch, device)
        best = min(best, (time.perf_counter() - t) / reps)
    del c
    return 2.0 * n ** 3 / best


def timed_sim(backend: str, dtype: str, kw: dict):
    t = time.perf_counter()
    r = simulate(backend=backend, dtype=dtype, **kw)
    return time.perf_counter() - t, r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="width 512, depth 16")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--device", default="cuda", help="cuda, cuda:i, or cpu (script check)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_gpu: skipped (torch is not installed: pip install 'critheory[torch]')")
        return 0
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: skipped (CUDA is not available on this machine)")
        return 0
    width = a.width or (512 if a.quick else 2048)
    depth = a.depth or (16 if a.quick else 32)
    kw = dict(activation="tanh", weight_var=1.0, bias_var=0.0, width=width, depth=depth,
              seeds=a.seeds, seed=0, probes="exact")
    backend = f"torch:{a.device}"
    layers = a.seeds * depth
    flops = 2.0 * width * width * (width + 1) * layers
    simulate(backend=backend, dtype="float32",
             **{**kw, "width": 64, "depth": 2, "seeds": 1})            # start-up, untimed
    t_np, ref = timed_sim("numpy", "float64", kw)
    rows = [{"backend": "numpy", "dtype": "float64", "seconds": t_np, "rel_diff": 0.0}]
    for dtype in ("float64", "float32"):
        t, r = timed_sim(backend, dtype, kw)
        rel = float(np.max(np.abs(r.kernel - ref.kernel) / np.abs(ref.kernel)))
        rows.append({"backend": backend, "dtype": dtype, "seconds": t, "rel_diff": rel})
    peaks = {dt: matmul_peak(torch, a.device, width, dt) for dt in ("float64", "float32")}
    for r in rows:
        r["layers_per_second"] = layers / r["seconds"]
        r["speedup_vs_numpy"] = t_np / r["seconds"]
        r["gflops"] = flops / r["seconds"] / 1e9
        r["fraction_of_peak"] = (flops / r["seconds"] / peaks[r["dtype"]]
                                 if r["backend"] != "numpy" else None)
    name = (torch.cuda.get_device_name(a.device) if a.device.startswith("cuda")
            else platform.processor() or platform.machine())
    info = {"device": name, "width": width, "depth": depth, "seeds": a.seeds,
            "matmul_peak_gflops": {k: v / 1e9 for k, v in peaks.items()}, "rows": rows}
    if a.json:
        print(json.dumps(info))
        return 0
    print(f"simulator backends: tanh MLP, width {width}, depth {depth}, {a.seeds} networks, "
          f"exact APJN; device {name}")
    print(f"matmul peak on {a.device} ({width}x{width}): float64 "
          f"{peaks['float64'] / 1e9:.0f} GFLOP/s, float32 {peaks['float32'] / 1e9:.0f} GFLOP/s")
    print(f"{'backend':>12} {'dtype':>8} {'seconds':>8} {'layers/s':>9} {'x numpy':>8} "
          f"{'GFLOP/s':>8} {'of peak':>8} {'max rel diff K':>15}")
    for r in rows:
        frac = "-" if r["fraction_of_peak"] is None else f"{100 * r['fraction_of_peak']:.1f}%"
        print(f"{r['backend']:>12} {r['dtype']:>8} {r['seconds']:>8.2f} "
              f"{r['layers_per_second']:>9.1f} {r['speedup_vs_numpy']:>8.2f} "
              f"{r['gflops']:>8.1f} {frac:>8} {r['rel_diff']:>15.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
