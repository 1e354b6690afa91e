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

Second part (``--part methods``; both parts by default): the routes of ``apjn`` against what a
user would write instead with ``torch.func`` — ``torch.func.jvp`` of the map ``h¹ -> (h^l)_l``
(forward hooks), batched over the probes by ``torch.func.vmap`` — on a ResNet-18
(torchvision's ``resnet18`` where torchvision is installed, else the same architecture built
here: BasicBlocks [2, 2, 2, 2], BatchNorm in eval mode, in-place ReLU, 1×3×224×224 input) and on
the tanh MLP above, 8 probes, every Conv/Linear layer from the first. Each route and the
baseline draw the same probes (the ``"probes"`` stream of ``seed_generator(1)``), so their
per-probe estimates must agree to rounding (printed). Timed in rounds, the order rotating each
round; the least CPU seconds (``time.process_time``) and wall seconds of each are printed with
the ratio of the default to the baseline (≤ 1: the default is at least as fast).

Run ``python benchmarks/bench_torch_apjn.py`` (``--quick``: width 256, depth 16, 64×64 images;
``--dtype float64``; ``--part naive|methods``; ``--json`` for one machine-readable line).
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
from critheory.torch import layers_of_type, seed_generator  # noqa: E402


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


# ----------------------------------------------------------------------------- routes
class _Block(nn.Module):
    """torchvision's BasicBlock: two 3×3 convolutions, BatchNorm, in-place ReLU, the shortcut
    added in place."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class _ResNet18(nn.Module):
    """torchvision's ``resnet18`` architecture (BasicBlocks [2, 2, 2, 2], widths 64…512)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for k, c in enumerate((64, 128, 256, 512)):
            stages.append(nn.Sequential(_Block(cin, c, 1 if k == 0 else 2), _Block(c, c, 1)))
            cin = c
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(dtype) -> tuple[nn.Module, str]:
    """torchvision's resnet18 if installed, else :class:`_ResNet18`; eval mode, seeded."""
    torch.manual_seed(0)
    try:
        import torchvision
        model, origin = torchvision.models.resnet18(weights=None), "torchvision"
    except ImportError:
        model, origin = _ResNet18(), "built here (torchvision not installed)"
    return model.to(dtype).eval(), origin


def jvp_vmap_baseline(model: nn.Module, x, source: str, targets: list, probes: int,
                      seed: int):
    """The per-probe ``‖J v‖² / numel`` of every target, written directly with torch.func:
    ``torch.func.jvp`` of ``h^{source} -> (h^l)_l`` (forward hooks replace the source's output
    and record the targets'), ``torch.func.vmap`` over the probes. Returns a (P, T) tensor."""
    mods = dict(model.named_modules())

    def keep(store, key):                # a copy, before any in-place operation; returns None
        def hook(m, a, o):
            store.setdefault(key, o.clone())
        return hook

    got = {}
    hook = mods[source].register_forward_hook(keep(got, "h0"))
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    h0 = got["h0"].detach()
    gen = seed_generator(seed, "probes")
    vs = torch.stack([torch.randn(h0.shape, generator=gen, dtype=torch.float64).to(h0.dtype)
                      for _ in range(probes)])

    def f(h):
        outs = {}
        handles = [mods[source].register_forward_hook(lambda m, a, o: h)]
        for t in targets:
            handles.append(mods[t].register_forward_hook(keep(outs, t)))
        try:
            model(x)
        finally:
            for hd in handles:
                hd.remove()
        return tuple(outs[t] for t in targets)

    def squares(v):
        _, jvs = torch.func.jvp(f, (h0,), (v,))
        return torch.stack([jv.double().pow(2).sum() / jv.numel() for jv in jvs])

    with torch.no_grad():
        return torch.func.vmap(squares)(vs)


def run_methods(workload: str, quick: bool, dtype, rounds: int, methods) -> dict:
    """Times ``apjn``'s default (auto) and its explicit routes against
    :func:`jvp_vmap_baseline` on one workload, in ``rounds`` rounds (order rotating)."""
    probes, seed = 8, 1
    if workload == "resnet18":
        model, origin = resnet18(dtype)
        side = 64 if quick else 224
        x = torch.randn(1, 3, side, side, dtype=dtype, generator=torch.Generator().manual_seed(0))
        desc = f"ResNet-18 ({origin}), eval mode, input 1x3x{side}x{side}"
    else:
        width, depth = (256, 16) if quick else (1024, 64)
        model = _model(width, depth, dtype)
        x = torch.randn(1, width, dtype=dtype, generator=torch.Generator().manual_seed(0))
        desc = f"tanh MLP width {width}, depth {depth}, one input"
    layers = layers_of_type(model, x)
    source = layers[0]
    fns = {"default": lambda: apjn(model, x, probes=probes, seed=seed),
           "jvp+vmap": lambda: jvp_vmap_baseline(model, x, source, layers, probes, seed)}
    for m in methods:
        fns[m] = (lambda m=m: apjn(model, x, probes=probes, seed=seed, method=m))
    out = {name: fn() for name, fn in fns.items()}            # warm-up, and the estimates
    cpu = {name: math.inf for name in fns}
    wall = {name: math.inf for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            c, w = time.process_time(), time.perf_counter()
            fns[name]()
            cpu[name] = min(cpu[name], time.process_time() - c)
            wall[name] = min(wall[name], time.perf_counter() - w)
    base = out["jvp+vmap"].numpy()[:, 1:]      # J^{1,1} = 1 exactly in apjn: left out
    agree = {}
    for name, res in out.items():
        if name != "jvp+vmap" and getattr(res, "method", None) != "vjp":
            agree[name] = float(abs(res.samples[:, 1:] - base).max() / abs(base).max())
    return {"workload": workload, "description": desc, "probes": probes,
            "layers": len(layers), "dtype": str(dtype).replace("torch.", ""),
            "default_method": out["default"].method, "cpu_s": cpu, "wall_s": wall,
            "ratio_cpu_default_over_baseline": cpu["default"] / cpu["jvp+vmap"],
            "ratio_wall_default_over_baseline": wall["default"] / wall["jvp+vmap"],
            "max_rel_diff_to_baseline": agree}


def _print_methods(res: dict) -> None:
    print(f"\n{res['description']}: {res['probes']} probes, {res['layers']} layers, "
          f"{res['dtype']}; default = {res['default_method']}")
    print(f"{'route':<26}{'CPU s':>9}{'wall s':>9}{'CPU / jvp+vmap':>16}{'max rel diff':>14}")
    for name in res["cpu_s"]:
        diff = res["max_rel_diff_to_baseline"].get(name)
        print(f"{name:<26}{res['cpu_s'][name]:>9.3f}{res['wall_s'][name]:>9.3f}"
              f"{res['cpu_s'][name] / res['cpu_s']['jvp+vmap']:>16.2f}"
              f"{'' if diff is None else format(diff, '.1e'):>14}")
    print(f"ratio default / jvp+vmap: CPU {res['ratio_cpu_default_over_baseline']:.2f}, "
          f"wall {res['ratio_wall_default_over_baseline']:.2f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="width 256, depth 16")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeat", type=int, default=3, help="best of this many critheory runs")
    p.add_argument("--part", choices=("all", "naive", "methods"), default="all",
                   help="naive: against the full Jacobian; methods: the routes against "
                        "torch.func jvp+vmap (default both)")
    p.add_argument("--rounds", type=int, default=3, help="timing rounds of the methods part")
    p.add_argument("--all-methods", action="store_true",
                   help="time the vjp route too (slow: one backward pass per probe and layer)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    width, depth = (256, 16) if args.quick else (1024, 64)
    dtype = getattr(torch, args.dtype)
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "load": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}}
    if args.part in ("all", "methods"):
        methods = ("jvp", "forward") + (("vjp",) if args.all_methods else ())
        out["methods"] = [run_methods(w, args.quick, dtype, max(1, args.rounds), methods)
                          for w in ("resnet18", "mlp")]
    if args.part in ("all", "naive"):
        out["naive"] = run(width, depth, 8, dtype, max(1, args.repeat))
    if args.json:
        print(json.dumps(out))
        return 0
    m = out["machine"]
    print(f"[{m['cpus']} cpus, {m['threads']} torch threads, torch {m['torch']}, load "
          f"{m['load']}]")
    for r in out.get("methods", []):
        _print_methods(r)
    if "naive" not in out:
        return 0
    res = out["naive"]
    print()
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
