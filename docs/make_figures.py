"""Regenerate the figures of docs/mlp.md and docs/architectures.md.

Run from the repository root: ``python docs/make_figures.py`` (about a minute). Every figure is
made by the same library calls as the command-line tools (``critheory line/phase/depth``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from critheory.theory.meanfield.criticality import critical_line, critical_points, universality
from critheory.theory.meanfield.critical_sets import everywhere_apjn
from critheory.theory.meanfield.depth import depth_curves
from critheory.theory.meanfield.maps import architecture
from critheory.io.plots import figure, plot_depth, plot_phase, plot_phase_mu, save, style
from critheory.theory.meanfield.phase import phase_grid, phase_grid_mu

OUT = Path(__file__).parent / "figures"


def lines():
    with style():
        fig, ax = figure(figsize=(4.8, 3.6))
        grid = np.linspace(0, 1, 101)
        for name in ("tanh", "erf", "sin", "gelu", "swish"):
            a = architecture("mlp", name)
            pts = [p for p in critical_line(a, grid) if p.branch == 0]
            ax.plot([p.bias_var for p in pts], [p.weight_var for p in pts], label=name)
            for c in critical_points(a):
                ax.plot([c.bias_var], [c.weight_var], "k*", ms=9)
        ax.set_xlabel(r"bias variance $\sigma_b^2$")
        ax.set_ylabel(r"weight variance $\sigma_w^2$")
        ax.set_ylim(0, 5)
        ax.legend(frameon=False)
        ax.set_title("MLP critical lines (stars: critical points)")
    save(fig, OUT / "mlp_critical_lines.png")


def phases():
    for name in ("relu", "erf", "tanh", "gelu"):
        for arch in ("mlp", "pre-ln", "post-ln"):
            a = architecture(arch, name)
            line = [p.to_dict() for p in critical_line(a, np.linspace(0, 1, 101))]
            plot_phase(phase_grid(a, n=41), OUT / f"phase_{arch}_{name}.png", line=line,
                       critical_points=[c.to_dict() for c in critical_points(a)],
                       title=f"{name} ({arch})")
    for arch in ("residual", "pre-ln-residual"):
        for name in ("tanh", "relu"):
            grid = phase_grid_mu(arch, name, mu_range=(0, 0.99), bias_var=0.1, n=41)
            plot_phase_mu(grid, OUT / f"phase_mu_{arch}_{name}.png", bias_var=0.1,
                          title=f"{name} ({arch}), $\\sigma_b^2$ = 0.1")


def depths():
    for name in ("tanh", "elu"):
        a = architecture("mlp", name)
        u = universality(a)
        c = u.critical_point
        d = depth_curves(a, c.weight_var, c.bias_var, 10000, input_correlation=None)
        plot_depth(d, OUT / f"depth_{name}.png", exponent=u.apjn, kernel_exponent=u.kernel,
                   title=f"{name} at its critical point ({c.weight_var:.6g}, {c.bias_var:g})")


def everywhere():
    fig, ax = figure(figsize=(4.8, 3.6))
    L = 2000
    l = np.arange(1, L + 1)
    for name, sw, sb in (("relu", 2.0, 0.0), ("tanh", 1.0, 0.1), ("gelu", 1.5, 0.2)):
        J, _ = everywhere_apjn(architecture("pre-ln-residual", name, 1.0), sw, sb, L)
        ax.loglog(l, J, label=f"pre-LN residual, {name}")
    d = depth_curves(architecture("residual", "tanh", 1.0), 1.0, 0.1, L, input_correlation=None)
    ax.loglog(l, d.apjn, "--", label="residual (no LN), tanh")
    ax.set_ylim(0.8, 1e4)
    ax.set_xlabel(r"depth $\ell$")
    ax.set_ylabel(r"$\mathcal{J}^{1,\ell}$")
    ax.set_title(r"$\mu = 1$: power laws with LN, stretched exponential without")
    ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "everywhere_critical.png")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    lines()
    depths()
    everywhere()
    phases()
    print("figures written to", OUT)
