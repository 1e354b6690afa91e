"""The figure of docs/ntk.md §10.4: n × (measured − infinite-width) trained mean against L/n,
beside the predicted order-1/n coefficient (tanh at (1, 0), depths 2 and 3, convergence at
η = η_max/2; inputs (1, 0.3), (−0.4, 1) → 0.6, −0.4, test input (0.7, 0.6)).

Run from the repository root (about 1–3 min of CPU)::

    PYTHONPATH=. python docs/make_train_nlo_figures.py [--networks S] [--plot-only]

Writes ``docs/figures/train_nlo.json`` (every measured point) and ``docs/figures/train_nlo.png``;
with ``--plot-only`` (what the site build runs) it redraws the figure from the frozen
measurements in the JSON with the prediction of the code at hand.
The estimator is the one of ``tests/test_train_nlo.py`` (control variates: the network's own
frozen-NTK linear model and its infinite-width model, both built from its initial outputs).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

X = np.array([[1.0, 0.3], [-0.4, 1.0], [0.7, 0.6]])
Y = np.array([0.6, -0.4])
RUNS = {2: (8, 16, 32, 64, 128), 3: (16, 32, 64)}
HERE = os.path.dirname(os.path.abspath(__file__))


# the site build redraws the figure from the frozen measurement with this commit's theory
BUILD_ARGS = ["--plot-only"]


def predict(L: int, n: int):
    """The step size (η_max/2) and the order-1/n trained prediction at depth L, width n."""
    import critheory as ct

    net = ct.network("mlp", "tanh")
    eta = 0.5 * ct.trained_prediction(net, 1.0, 0.0, X, Y, L).eta_max
    return eta, ct.trained_prediction(net, 1.0, 0.0, X, Y, L, eta=eta, width=n)


def predicted(p) -> dict:
    return dict(predicted=float(p.nlo_coefficient[0]),
                predicted_dynamical=float(p.nlo_terms["dntk"][0] + p.nlo_terms["ddntk"][0]))


def measure(L: int, n: int, S: int) -> dict:
    import critheory as ct
    from critheory.simulation.train import train_ensemble

    net = ct.network("mlp", "tanh")
    eta, p = predict(L, n)
    e = train_ensemble(net, 1.0, 0.0, X, Y, L, n, S, eta=eta, max_steps=300, seed=7 * n + L)
    z0 = e.initial_outputs
    lin = np.empty(S)
    for s in range(S):
        T = e.ntk[s]
        lam, V = np.linalg.eigh(T[:2, :2])
        lin[s] = z0[s, 2] - T[2, :2] @ (V / lam) @ V.T @ (z0[s, :2] - Y)
    inf = z0[:, 2] - (z0[:, :2] - Y) @ p.response[0]
    out = dict(depth=L, width=n, networks=S, converged=float(e.converged.mean()),
               **predicted(p))
    for k, d in (("total", e.outputs[:, 0] - inf), ("dynamical", e.outputs[:, 0] - lin)):
        out[k] = [float(n * d.mean()), float(n * d.std(ddof=1) / np.sqrt(S))]
    return out


def plot(points: list, path: str) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, key, title in ((axes[0], "total", "total shift"),
                           (axes[1], "dynamical", "dNTK + ddNTK part")):
        for L, mk in ((2, "o"), (3, "s")):
            pts = [p for p in points if p["depth"] == L]
            if not pts:
                continue
            r = np.array([L / p["width"] for p in pts])
            m = np.array([p[key][0] for p in pts])
            se = np.array([p[key][1] for p in pts])
            line = ax.errorbar(r, m, yerr=se, fmt=mk, capsize=3, label=f"measured, L = {L}")
            pred = pts[0]["predicted" if key == "total" else "predicted_dynamical"]
            ax.axhline(pred, ls="--", color=line[0].get_color(), label=f"predicted, L = {L}")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([0.02, 0.05, 0.1, 0.2])
        ax.set_xticklabels(["0.02", "0.05", "0.1", "0.2"])
        ax.set_xlabel("L / n")
        ax.set_ylabel("n × (E[z] − M y)")
        ax.set_title(f"tanh, trained to convergence: {title}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=6000)
    ap.add_argument("--plot-only", action="store_true")
    a = ap.parse_args()
    data = os.path.join(HERE, "figures", "train_nlo.json")
    if not a.plot_only:
        from critheory.common.limits import MAX_TRAIN_WORK
        from critheory.simulation.train import network_ops, parameter_count, train_work

        import critheory as ct

        points = []
        for L, widths in RUNS.items():
            for n in widths:
                P = parameter_count(network_ops(ct.network("mlp", "tanh"), L, n, 2))
                S = a.networks
                while train_work(S, 300, P, 3, 2) > MAX_TRAIN_WORK:
                    S //= 2
                points.append(measure(L, n, S))
                print(json.dumps(points[-1]), flush=True)
        with open(data, "w") as f:
            json.dump(points, f, indent=1)
    with open(data) as f:
        points = json.load(f)
    if a.plot_only:     # the measurement is frozen; the prediction is this code's
        # (n × the shift does not depend on n: one prediction per depth, at its first width)
        coef = {}
        for pt in points:
            if pt["depth"] not in coef:
                coef[pt["depth"]] = predicted(predict(pt["depth"], pt["width"])[1])
            pt.update(coef[pt["depth"]])
    plot(points, os.path.join(HERE, "figures", "train_nlo.png"))


if __name__ == "__main__":
    main()
