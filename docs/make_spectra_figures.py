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
        for ax, (act, sw, sb, wn) in zip(axes.ravel(), cases):
            s = jacobian_spectrum(act, sw, sb, L, weights=wn)
            sim = simulate_spectrum(act, sw, sb, depth=L, width=400, seeds=2, weights=wn,
                                    input_var=s.fixed_point, seed=1)
            lam = sim.sq.ravel()
            lam = lam[lam > 1e-8]          # ReLU: the atom of mass 1/2 at 0 is left out
            # a logarithmic axis: on a linear one the Gaussian and ReLU spectra (var 16-32)
            # are a spike at 0; plotted is the density per decade, ln(10) λ ρ(λ)
            hi = s.support[1] * 1.5
            lo = max(s.support[0], 1e-6 * hi) / 1.5
            bins = np.geomspace(lo, hi, 31)
            w = np.full(lam.size, 1.0 / sim.sq.size)
            cnt, _ = np.histogram(lam, bins=bins, weights=w)
            ax.stairs(cnt / np.diff(np.log10(bins)), bins, fill=True, color="0.8",
                      label="simulation N = 400")
            ax.plot(s.x, np.log(10) * s.x * s.y, "C0", label="free probability")
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            ax.set_title(f"{act} {wn}, L = {L}: var = {s.variance:.3g}, "
                         f"{s.isometry.verdict}", fontsize=8)
            ax.set_xlabel(r"$\lambda = \sigma^2$ (log scale)")
            ax.set_ylabel(r"density per decade, $\ln 10\,\lambda\rho(\lambda)$", fontsize=8)
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
                sw = 0.25 / jacobian_spectrum("tanh", 1.0, 0.0, L, arch="tarnowski-resnet").c
                for _ in range(6):
                    sw *= 0.25 / jacobian_spectrum("tanh", sw, 0.0, L, arch="tarnowski-resnet").c
            s = jacobian_spectrum(act, sw, 0.0, L, arch="tarnowski-resnet")
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
