"""Benchmark: the ensemble trainer (:func:`critheory.train_ensemble`) against a plain torch loop
that trains the same networks one by one (issue 29).

Both train S tanh MLPs (depth 3, width n, 3 training inputs in 2-D) by full-batch gradient
descent on MSE for T steps with the project's parameterization (rates λ_b per bias and λ_W/n_in
per weight, global step η). The baseline is what a user would write: one ``torch.nn`` MLP per
network, ``loss.backward()``, a manual SGD update with the per-parameter rates, in float64 on
the CPU, one network after another. Figure: network-steps per second and their ratio, both timed
in this run (best of ``--repeat``). torch is optional: without it only the trainer is timed.
A GPU is not used (none is lent to this project's sessions by default; the trainer is numpy).

Run: ``python benchmarks/bench_train.py [--quick] [--width 64] [--networks 200] [--steps 100]``.
"""
from __future__ import annotations

import argparse

import numpy as np

import critheory as ct

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path

X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-0.5, 0.5]])
Y = np.array([0.5, -0.3, 0.2])
SW, SB, L = 1.0, 0.05, 3


def torch_loop(width: int, networks: int, steps: int, eta: float) -> None:
    import torch

    torch.manual_seed(0)
    x = torch.tensor(X[:3], dtype=torch.float64)
    y = torch.tensor(Y, dtype=torch.float64)
    dims = [X.shape[1]] + [width] * (L - 1) + [1]
    for _ in range(networks):
        layers = []
        for i in range(L):
            lin = torch.nn.Linear(dims[i], dims[i + 1], dtype=torch.float64)
            torch.nn.init.normal_(lin.weight, std=(SW / dims[i]) ** 0.5)
            torch.nn.init.normal_(lin.bias, std=SB ** 0.5)
            layers.append(lin)
        rates = [(eta / lin.in_features, eta) for lin in layers]    # λ_W/n_in, λ_b (= 1)
        for _ in range(steps):
            h = x
            for i, lin in enumerate(layers):
                h = lin(h if i == 0 else torch.tanh(h))
            loss = 0.5 * ((h[:, 0] - y) ** 2).sum()
            for lin in layers:
                lin.weight.grad = lin.bias.grad = None
            loss.backward()
            with torch.no_grad():
                for lin, (rw, rb) in zip(layers, rates):
                    lin.weight -= rw * lin.weight.grad
                    lin.bias -= rb * lin.bias.grad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--networks", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="50 networks, 50 steps, one repeat")
    args = ap.parse_args(argv)
    S, T, rep = (50, 50, 1) if args.quick else (args.networks, args.steps, args.repeat)
    net = ct.network("mlp", "tanh")
    eta = 0.5 * ct.trained_prediction(net, SW, SB, X, Y, depth=L).eta_max
    ours = best_of(lambda: ct.train_ensemble(net, SW, SB, X, Y, L, args.width, S, eta=eta,
                                             steps=T, seed=0), rep)
    print(f"tanh MLP depth {L}, width {args.width}, {S} networks x {T} steps; best of {rep}")
    print(f"train_ensemble   {ours:8.3f} s  {S * T / ours:10.0f} network-steps/s")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: no baseline")
        return
    base = best_of(lambda: torch_loop(args.width, S, T, eta), rep)
    print(f"torch loop       {base:8.3f} s  {S * T / base:10.0f} network-steps/s")
    print(f"ratio (torch loop / train_ensemble): {base / ours:.1f}x")


if __name__ == "__main__":
    main()
