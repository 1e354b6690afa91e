"""Figures (matplotlib, non-interactive Agg backend): critical lines, phase diagrams, depth curves.

Each function writes one file (format from the extension: .png, .pdf, .svg) and returns its path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["plot_line", "plot_phase", "plot_depth", "phase_grid"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.grid": True, "grid.alpha": 0.3,
                         "figure.dpi": 120, "savefig.bbox": "tight"})
    return plt


def _save(fig, path) -> str:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".eps"):
        raise InvalidArgumentError(f"plot file must end in .png, .pdf, .svg, .jpg or .eps: {path}")
    if path.parent and not path.parent.exists():
        raise InvalidArgumentError(f"directory {path.parent} does not exist")
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def plot_line(points: list[dict], path, *, title: str = "", critical_points=()) -> str:
    """Critical line σ_w²(σ_b²), one marker colour per branch, critical points as stars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    branches = sorted({p.get("branch", 0) for p in points})
    for b in branches:
        pts = [p for p in points if p.get("branch", 0) == b and p["weight_var"] is not None]
        if pts:
            ax.plot([p["bias_var"] for p in pts], [p["weight_var"] for p in pts], "-",
                    lw=1.5, label=f"branch {b}" if len(branches) > 1 else "critical line")
    for c in critical_points:
        if c.get("weight_var") is not None:
            ax.plot([c["bias_var"]], [c["weight_var"]], "*", ms=11, color="C3",
                    label="critical point")
    ax.set_xlabel(r"bias variance $\sigma_b^2$")
    ax.set_ylabel(r"weight variance $\sigma_w^2$")
    ax.set_title(title)
    h, lab = ax.get_legend_handles_labels()
    if h:
        uniq = dict(zip(lab, h))
        ax.legend(uniq.values(), uniq.keys(), frameon=False)
    return _save(fig, path)


def phase_grid(arch, sw_range=(0.25, 4.0), sb_range=(0.0, 1.0), n: int = 41,
               iterations: int = 400, q0: float = 1.0):
    """log χ_J on an n×n grid of (σ_w², σ_b²), at the kernel reached after ``iterations`` layers
    from an input with ``|x|²/N_0 = q0`` (all grid points iterated at once, vectorized; a kernel
    that runs away is stopped at 1e8, where χ_J is evaluated).
    """
    sws = np.linspace(*sw_range, n)
    sbs = np.linspace(*sb_range, n)
    W, B = np.meshgrid(sws, sbs)
    w, b = W.ravel(), B.ravel()
    K = np.asarray(arch.input_kernel(q0, w, b), dtype=float)
    for _ in range(iterations):
        Kn = np.asarray(arch.kernel_map(np.clip(K, 1e-12, 1e8), w, b), dtype=float)
        if np.allclose(Kn, K, rtol=1e-12, atol=0):
            K = Kn
            break
        K = Kn
    K = np.clip(K, 1e-12, 1e8)
    chi = np.asarray(arch.chi_jacobian(K, w, b), dtype=float)
    with np.errstate(all="ignore"):
        Z = np.where(chi > 0, np.log(chi), np.nan)
    return sws, sbs, Z.reshape(n, n)


def plot_phase(arch, path, *, sw_range=(0.25, 4.0), sb_range=(0.0, 1.0), n: int = 31,
               line: list[dict] | None = None, critical_points=(), title: str = "") -> str:
    """Phase diagram: colour = log χ_J at the fixed point the input flows to (blue ordered,
    red chaotic), with the critical line and critical points overlaid."""
    plt = _plt()
    sws, sbs, Z = phase_grid(arch, sw_range, sb_range, n)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    lim = np.nanmax(np.abs(Z)) if np.any(np.isfinite(Z)) else 1.0
    lim = min(lim, 1.0) or 1.0
    m = ax.pcolormesh(sws, sbs, np.clip(Z, -lim, lim), cmap="RdBu_r", vmin=-lim, vmax=lim,
                      shading="nearest")
    fig.colorbar(m, ax=ax, label=r"$\log \chi_J$")
    if line:
        for b in sorted({p.get("branch", 0) for p in line}):
            pts = [p for p in line if p.get("branch", 0) == b and p["weight_var"] is not None]
            ax.plot([p["weight_var"] for p in pts], [p["bias_var"] for p in pts], "k-", lw=1.5)
    for c in critical_points:
        if c.get("weight_var") is not None:
            ax.plot([c["weight_var"]], [c["bias_var"]], "*", ms=12, color="gold", mec="k")
    ax.set_xlim(*sw_range)
    ax.set_ylim(*sb_range)
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"bias variance $\sigma_b^2$")
    ax.set_title(title or "ordered (blue) / chaotic (red)")
    return _save(fig, path)


def plot_depth(curves, path, *, exponent: float | None = None,
               kernel_exponent: float | None = None, title: str = "",
               simulated: dict | None = None) -> str:
    """K^l and J^{l0,l} on log–log axes, with the predicted power law ``l^{-exponent}`` overlaid
    (anchored at the last depth) and optional simulation means with error bars."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
    l = curves.depths
    ax = axes[0]
    ax.loglog(l, np.abs(curves.kernel), "-", label=r"$K^\ell$ (theory)")
    if kernel_exponent is not None and np.all(np.isfinite(curves.kernel)) and kernel_exponent > 0:
        k = np.abs(curves.kernel)
        ax.loglog(l, k[-1] * (l / l[-1]) ** (-kernel_exponent), "--", color="gray",
                  label=rf"predicted $\propto \ell^{{-{kernel_exponent:g}}}$")
    ax.set_xlabel(r"depth $\ell$")
    ax.set_ylabel(r"$K^\ell$")
    ax = axes[1]
    m = np.isfinite(curves.apjn) & (curves.apjn > 0)
    ax.loglog(l[m], curves.apjn[m], "-", label=r"$\mathcal{J}^{\ell_0,\ell}$ (theory)")
    if exponent is not None and m.sum() > 1:
        lm, jm = l[m], curves.apjn[m]
        ax.loglog(lm, jm[-1] * (lm / lm[-1]) ** (-exponent), "--", color="gray",
                  label=rf"predicted $\propto \ell^{{-{exponent:g}}}$")
    if simulated is not None:
        d = np.asarray(simulated["depths"])
        ax.errorbar(d, simulated["apjn_mean"], yerr=simulated.get("apjn_stderr"), fmt="o",
                    ms=3, color="C3", label="simulation (mean ± s.e.)")
    ax.set_xlabel(r"depth $\ell$")
    ax.set_ylabel(rf"APJN $\mathcal{{J}}^{{{curves.l0},\ell}}$")
    for a in axes:
        a.legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
