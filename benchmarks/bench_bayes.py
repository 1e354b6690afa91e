"""Benchmark: the importance-weighted exact posterior of finite networks
(:mod:`critheory.simulation.bayes`).

1. **Networks per second**: :func:`output_laws` + :func:`exact_posterior` (vectorized over
   networks, the last dense block integrated exactly) against a plain numpy loop over the
   networks one by one (the same forward pass with explicit weight matrices, the same
   Rao–Blackwellized metric and a per-network ``np.linalg.solve``), both timed in this run
   (best of ``--repeat``); the ratio is the headline.
2. **Networks needed for a 5σ resolution of the 1/n shift** of the posterior mean at n = 16: a
   pilot run at n = 16 and a reference run at n = 1024 (whose own shift is 64 times smaller);
   shift = measured(16) − measured(1024), and since the standard error of the n = 16 posterior
   falls as 1/√S, the networks needed are ``S_pilot (5 se_16 / |shift|)²`` (for the best-resolved
   test input; every test input is printed).

Run: ``python benchmarks/bench_bayes.py [--quick] [--json]``.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from critheory.blocks.registry import network
from critheory.simulation.bayes import exact_posterior, output_laws

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path

ACT, CW, CB, DEPTH, NOISE = "relu", 2.0, 0.05, 4, 0.01
TRAIN, TEST = [0, 1, 2, 3], [4, 5]


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(2024)
    x = rng.standard_normal((6, 3))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(3)


def _targets(x: np.ndarray) -> np.ndarray:
    return np.sin(x[TRAIN] @ np.array([1.0, -0.5, 0.3]))


def vectorized(x, y, width, networks, seed=0):
    net = network("mlp", ACT)
    laws = output_laws(net, CW, CB, x, DEPTH, width, networks, seed)
    return exact_posterior(laws, TRAIN, TEST, y, NOISE, min_ess=1)


def plain_loop(x, y, width, networks, seed=0):
    """The same estimator written as a user would: one network at a time."""
    rng = np.random.default_rng(seed)
    X = x.T                                                    # (n0, m)
    logw = np.empty(networks)
    ms = np.empty((networks, len(TEST)))
    for s in range(networks):
        h = rng.standard_normal((width, X.shape[0])) * math.sqrt(CW / X.shape[0]) @ X
        h += rng.standard_normal((width, 1)) * math.sqrt(CB)
        for _ in range(DEPTH - 2):
            a = np.maximum(h, 0.0)
            h = rng.standard_normal((width, width)) * math.sqrt(CW / width) @ a
            h += rng.standard_normal((width, 1)) * math.sqrt(CB)
        a = np.maximum(h, 0.0)
        G = CB + CW * (a.T @ a) / width
        M = G[np.ix_(TRAIN, TRAIN)] + NOISE * np.eye(len(TRAIN))
        alpha = np.linalg.solve(M, y)
        _, logdet = np.linalg.slogdet(M)
        logw[s] = -0.5 * y @ alpha - 0.5 * logdet
        ms[s] = G[np.ix_(TEST, TRAIN)] @ alpha
    w = np.exp(logw - logw.max())
    return (w / w.sum()) @ ms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer networks, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    x = _inputs()
    y = _targets(x)
    out = {"setting": {"activation": ACT, "weight_var": CW, "bias_var": CB, "depth": DEPTH,
                       "noise": NOISE, "inputs": 6, "train": len(TRAIN), "test": len(TEST)}}

    # 1. throughput at n = 16 and n = 128
    rows = []
    for width, nv, nl in ((16, 40000 if not args.quick else 8000, 2000),
                          (128, 8000 if not args.quick else 2000, 500)):
        vectorized(x, y, width, 64)                            # warm-up (activation set-up)
        tv = best_of(lambda: vectorized(x, y, width, nv), repeat)
        tl = best_of(lambda: plain_loop(x, y, width, nl), repeat)
        rows.append({"width": width, "vectorized_per_s": nv / tv, "loop_per_s": nl / tl,
                     "ratio": (nv / tv) / (nl / tl)})
    out["throughput"] = rows

    # 2. networks for a 5-sigma resolution of the 1/n shift at n = 16
    s_pilot = 20000 if args.quick else 100000
    s_ref = 4000 if args.quick else 20000
    t0 = time.perf_counter()
    p16 = vectorized(x, y, 16, s_pilot, seed=1)
    p1k = vectorized(x, y, 1024, s_ref, seed=2)
    shift = p16.mean - p1k.mean
    se = np.sqrt(p16.mean_stderr ** 2 + p1k.mean_stderr ** 2)
    need = s_pilot * (5.0 * p16.mean_stderr / np.abs(shift)) ** 2
    out["resolution"] = {"pilot_networks": s_pilot, "reference_networks": s_ref,
                         "ess_16": p16.ess, "ess_1024": p1k.ess,
                         "mean_16": p16.mean.tolist(), "mean_1024": p1k.mean.tolist(),
                         "shift": shift.tolist(), "shift_stderr": se.tolist(),
                         "shift_z": (shift / se).tolist(),
                         "networks_for_5sigma": need.tolist(),
                         "networks_for_5sigma_best": float(need.min()),
                         "seconds": time.perf_counter() - t0}
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{ACT} (C_W, C_b) = ({CW}, {CB}), depth {DEPTH}, 6 inputs in 3 dimensions "
          f"({len(TRAIN)} train, {len(TEST)} test), noise variance {NOISE}")
    print(f"{'width':>6} {'vectorized/s':>13} {'loop/s':>9} {'ratio':>7}")
    for r in rows:
        print(f"{r['width']:>6} {r['vectorized_per_s']:>13.0f} {r['loop_per_s']:>9.0f} "
              f"{r['ratio']:>7.1f}")
    res = out["resolution"]
    print(f"1/n shift at n = 16 (pilot {s_pilot} networks, ESS {res['ess_16']:.0f}; reference "
          f"n = 1024, {s_ref} networks):")
    for i, t in enumerate(TEST):
        print(f"  test input {t}: shift {shift[i]:+.5f} +- {se[i]:.5f} "
              f"(z = {shift[i] / se[i]:+.1f}); networks for 5 sigma: {need[i]:.3g}")
    print(f"networks for a 5-sigma resolution (best test input): {need.min():.3g}  "
          f"[{res['seconds']:.1f} s]")


if __name__ == "__main__":
    main()
