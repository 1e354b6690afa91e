"""Regenerate the figures of docs/spectra.md.

Run from the repository root: ``python docs/make_spectra_figures.py`` (2–3 minutes: the
simulated histograms are explicit Jacobians of width 400, Haar matrices by QR). Every curve is
made by the same library calls as ``critheory spectrum`` (``--simulate`` for the histograms).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from critheory.io.plots import figure, save, style
from critheory.simulation.spectra import simulate_spectrum
from critheory.theory.spectra import jacobian_spectrum

OUT = Path(__file__).parent / "figures"
#: a critical point of the tanh MLP (critheory line tanh --bias-var 0.001): χ_J(q*) = 1
TANH_CRIT = (1.18918958523468, 0.001)


def mlp_isometry():
    """Critical tanh and ReLU MLPs, Gaussian against orthogonal weights, L = 16: only
    orthogonal tanh stays concentrated (PSG 1711.04735, Fig. 2)."""
    L = 16
    cases = [("tanh", *TANH_CRIT, "orthogonal"), ("tanh", *TANH_CRIT, "gaussian"),
             ("relu", 2.0, 0.0, "orthogonal"), ("relu", 2.0, 0.0, "gaussian")]
    with style():
        fig, axes = figure(2, 2, figsize=(8.0, 6.0))
        for ax, (act, sw, sb, w) in zip(axes.ravel(), cases):
            s = jacobian_spectrum(act, sw, sb, L, weights=w)
            sim = simulate_spectrum(act, sw, sb, depth=L, width=400, seeds=2, weights=w,
                                    input_var=s.fixed_point, seed=1)
            lam = sim.sq.ravel()
            lam = lam[lam > 1e-8]
            hi = s.support[1] * 1.1
            ax.hist(lam, bins=60, range=(0, hi), density=False,
                    weights=np.full(lam.size, 60 / hi / sim.sq.size), color="0.8",
                    label="simulation N = 400")
            ax.plot(s.x, s.y, "C0", label="free probability")
            ax.set_title(f"{act} {w}, L = {L}: var = {s.variance:.3g}, "
                         f"{s.isometry.verdict}", fontsize=8)
            ax.set_xlabel(r"$\lambda = \sigma^2$")
            ax.set_ylim(0, min(ax.get_ylim()[1], 4 * float(np.median(s.y[s.y > 0])) + 1))
        axes[0, 0].legend(frameon=False, fontsize=8)
        fig.tight_layout()
    save(fig, OUT / "spectra_mlp_isometry.png")


def resnet_universality():
    """ResNets: the spectrum depends on c only (Tarnowski et al.): tanh and ReLU at the same
    c = 1/4 have the same density; simulations at L = 40."""
    L = 40
    with style():
        fig, ax = figure(figsize=(5.0, 3.6))
        for i, (act, sw) in enumerate((("relu", 0.5), ("tanh", None))):
            if sw is None:   # tanh: σ_w² with c = 1/4 by fixed-point rescaling (c ∝ σ_w²
                #              up to the slow q-dependence of E[φ'²])
                sw = 0.25 / jacobian_spectrum("tanh", 1.0, 0.0, L, arch="resnet").c
                for _ in range(6):
                    sw *= 0.25 / jacobian_spectrum("tanh", sw, 0.0, L, arch="resnet").c
            s = jacobian_spectrum(act, sw, 0.0, L, arch="resnet")
            sim = simulate_spectrum(act, sw, 0.0, depth=L, width=400, seeds=2, arch="resnet",
                                    seed=2)
            lam = np.sort(sim.sq, axis=1)[:, :-1].ravel()   # the outlier of ReLU dropped
            ax.hist(lam, bins=50, density=True, histtype="step", color=f"C{i}",
                    label=f"{act} (sim, c = {s.c:.3f})")
            ax.plot(s.x, s.y, f"C{i}--", lw=1)
        ax.set_xlabel(r"$\lambda = \sigma^2$")
        ax.set_ylabel("density")
        ax.set_title("ResNet Jacobian spectra at equal c: one law", fontsize=9)
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "spectra_resnet_universality.png")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    mlp_isometry()
    resnet_universality()
