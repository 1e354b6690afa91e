"""Benchmark of ``critheory.torch.apjn`` against the naive full Jacobian.

Workload (default): a tanh MLP (``nn.Sequential`` of ``nn.Linear``/``nn.Tanh``) of width 1024 and
depth 64 at its critical initialization (σ_w², σ_b²) = (1, 0) (``init_critical_``), one input.

* **critheory**: ``apjn(model, x, probes=8)`` — forward-mode probes from the first layer,
  ``J^{1,l}`` for **every** layer l = 1..64 at once (8 forward passes with tangents);
* **naive**: ``torch.autograd.functional.jacobian`` of the map ``h¹ -> h^64`` (the layers after
  the first), the full 1024×1024 Jacobian, then ``‖J‖_F²/N`` — one layer only
  (``vectorize=True``, batched backward passes: the fast form of the naive route; the default
  loop over output rows is slower still).

The naive Jacobian also gives the exact ``J^{1,64}``, which checks the probes' estimate
(its standard error over probes is printed beside it).

Run ``python benchmarks/bench_torch_apjn.py`` (``--quick``: width 256, depth 16;
``--dtype float64``; ``--json`` for one machine-readable line).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    print("this benchmark needs PyTorch: pip install 'critheory[torch]'", file=sys.stderr)
    raise SystemExit(2)

try:
    from critheory.torch import apjn, init_critical_
except ImportError:  # running from a checkout without installation
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from critheory.torch import apjn, init_critical_


def _model(width: int, depth: int, dtype) -> nn.Sequential:
    mods = [nn.Linear(width, width)]
    for _ in range(depth - 1):
        mods += [nn.Tanh(), nn.Linear(width, width)]
    m = nn.Sequential(*mods).to(dtype)
    init_critical_(m, seed=0)
    return m


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run(width: int, depth: int, probes: int, dtype, repeat: int) -> dict:
    torch.manual_seed(0)
    model = _model(width, depth, dtype)
    x = torch.randn(1, width, dtype=dtype)
    layers = [str(2 * i) for i in range(depth)]
    apjn(model, x, source="0", targets=layers[:2], probes=1)        # warm-up (imports)
    t_ours, res = _best(lambda: apjn(model, x, source="0", targets=layers, probes=probes,
                                     seed=1), repeat)
    with torch.no_grad():
        h1 = model[0](x)
    rest = model[1:]

    def naive():
        jac = torch.autograd.functional.jacobian(rest, h1, vectorize=True)
        return float(jac.double().pow(2).sum()) / width

    t_naive, exact = _best(naive, 1)
    return {
        "workload": {"activation": "tanh", "weight_var": 1.0, "bias_var": 0.0, "width": width,
                     "depth": depth, "probes": probes, "dtype": str(dtype).replace("torch.", "")},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "critheory_s": t_ours, "naive_jacobian_s": t_naive, "ratio": t_naive / t_ours,
        "layers_critheory": len(layers), "layers_naive": 1,
        "apjn_last_probes": float(res.mean[-1]), "apjn_last_stderr": float(res.stderr[-1]),
        "apjn_last_exact": exact,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="width 256, depth 16")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeat", type=int, default=3, help="best of this many critheory runs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    width, depth = (256, 16) if args.quick else (1024, 64)
    res = run(width, depth, 8, getattr(torch, args.dtype), max(1, args.repeat))
    if args.json:
        print(json.dumps(res))
        return 0
    w, m = res["workload"], res["machine"]
    print(f"tanh MLP at (1, 0): width {w['width']}, depth {w['depth']}, {w['probes']} probes, "
          f"{w['dtype']}  [{m['cpus']} cpus, {m['threads']} torch threads, torch {m['torch']}]")
    print(f"{'computation':<52}{'seconds':>10}")
    print(f"{'critheory.torch.apjn: J^(1,l), all ' + str(depth) + ' layers':<52}"
          f"{res['critheory_s']:>10.3f}")
    print(f"{'autograd.functional.jacobian: J^(1,L) only':<52}{res['naive_jacobian_s']:>10.3f}")
    print(f"ratio naive / critheory: {res['ratio']:.0f}x (naive: one layer; critheory: every "
          "layer)")
    print(f"J^(1,{depth}): probes {res['apjn_last_probes']:.6g} ± "
          f"{res['apjn_last_stderr']:.2g}, exact {res['apjn_last_exact']:.6g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
