"""Regenerate the figures of docs/bayes.md.

Run from the repository root: ``python docs/make_bayes_figures.py`` (about a minute). The theory
comes from the same library calls as ``critheory bayes``; the exact posterior of finite networks
from the simulator (:func:`critheory.output_laws`, :func:`critheory.exact_posterior`, fixed
seeds), which shares only the activation and the blocks with the theory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import critheory as ct
from critheory.io.plots import figure, save, style

OUT = Path(__file__).parent / "figures"
X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-0.5, 0.5]])
Y, NOISE, L = [0.5, -0.3], 0.01, 3


def posterior_vs_width(networks: int = 200_000):
    """ReLU at (2, 0.05), depth 3: posterior mean and variance on two test inputs against 1/n —
    the GP answer, the first-order answer, the exact finite-network posterior (± s.e.)."""
    net = ct.network("mlp", "relu")
    widths = [16, 32, 64, 128, 256, 512]
    rows = []
    for n in widths:
        b = ct.bayes_posterior(net, 2.0, 0.05, X, Y, depth=L, width=n, noise=NOISE)
        m = ct.exact_posterior(ct.output_laws(net, 2.0, 0.05, X, L, n, networks, seed=n),
                               b.train, b.test, Y, NOISE)
        rows.append((b.posterior, m))
    inv = 1.0 / np.array(widths)
    with style():
        fig, axes = figure(1, 3, figsize=(11, 3.4))
        for j in range(2):
            ax = axes[j]
            ax.axhline(rows[0][0].mean_gp[j], color="C0", label=r"Gaussian process ($n=\infty$)")
            ax.plot(inv, [p.mean_nlo[j] for p, _ in rows], "-", color="C1",
                    label="first order in 1/n")
            ax.errorbar(inv, [m.mean[j] for _, m in rows], yerr=[m.mean_stderr[j] for _, m in rows],
                        fmt="ko", ms=3, capsize=3, label="finite networks (exact posterior)")
            ax.set_xlabel("1/n")
            ax.set_ylabel(f"posterior mean, test input {2 + j}")
        ax = axes[2]
        ax.axhline(rows[0][0].cov_gp[0, 0], color="C0")
        ax.plot(inv, [p.cov_nlo[0, 0] for p, _ in rows], "-", color="C1")
        ax.errorbar(inv, [m.cov[0, 0] for _, m in rows], yerr=[m.cov_stderr[0, 0] for _, m in rows],
                    fmt="ko", ms=3, capsize=3)
        ax.set_xlabel("1/n")
        ax.set_ylabel("posterior variance, test input 2")
        axes[0].legend(frameon=False, fontsize=8)
        fig.tight_layout()
        return save(fig, OUT / "bayes_posterior_width.png")


if __name__ == "__main__":
    print(posterior_vs_width())
