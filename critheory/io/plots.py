"""Figures (matplotlib, non-interactive Agg backend): critical lines, phase diagrams, depth curves.

Each function writes one file (format from the extension: .png, .pdf, .svg) and returns its path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from critheory.errors import InvalidArgumentError

__all__ = ["plot_line", "plot_phase", "plot_depth", "phase_grid", "phase_grid_mu", "attractors", "plot_phase_mu"]


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


def attractors(arch, sw, sb, q0: float = 1.0) -> np.ndarray:
    """The fixed point K* each (σ_w², σ_b²) entry flows to from ``K^1 = σ_b² + σ_w² q0``,
    vectorized (inf where K runs away, 0 where it collapses onto K* = 0).

    Scans ``f(K) - K`` on a log grid of K for every entry at once, brackets the first sign change
    in the direction of the flow, and refines all brackets together.
    """
    from critheory.theory.roots import refine_brackets

    sw, sb = np.broadcast_arrays(np.asarray(sw, dtype=float), np.asarray(sb, dtype=float))
    sw, sb = sw.ravel(), sb.ravel()
    n = sw.size
    K1 = np.asarray(arch.input_kernel(q0, sw, sb), dtype=float)
    if not arch.has_fixed_point:
        return np.full(n, np.inf)
    from critheory.theory.meanfield.architectures import MLP

    if not isinstance(arch, MLP):  # affine maps: K' = μ²K + c
        mu2 = arch.mu2
        c = np.asarray(arch.kernel_map(np.ones(n), sw, sb), dtype=float) - mu2
        return c / (1.0 - mu2)
    G = np.logspace(-8, 8, 97)
    F = np.asarray(arch.kernel_map(G[None, :], sw[:, None], sb[:, None]), dtype=float) - G
    F1 = np.asarray(arch.kernel_map(K1, sw, sb), dtype=float) - K1
    out = np.full(n, np.nan)
    lo, hi, flo, fhi, ids = [], [], [], [], []
    for i in range(n):
        if F1[i] == 0:
            out[i] = K1[i]
            continue
        if F1[i] > 0:
            j = np.flatnonzero((G > K1[i]) & (F[i] <= 0))
            if not j.size:
                out[i] = np.inf
                continue
            j = j[0]
            a = max(K1[i], G[j - 1]) if j > 0 and G[j - 1] > K1[i] else K1[i]
            fa = F[i, j - 1] if a != K1[i] else F1[i]
            lo.append(a); hi.append(G[j]); flo.append(fa); fhi.append(F[i, j]); ids.append(i)
        else:
            j = np.flatnonzero((G < K1[i]) & (F[i] >= 0))
            if not j.size:
                out[i] = 0.0
                continue
            j = j[-1]
            b = G[j + 1] if j + 1 < G.size and G[j + 1] < K1[i] else K1[i]
            fb = F[i, j + 1] if b != K1[i] else F1[i]
            lo.append(G[j]); hi.append(b); flo.append(F[i, j]); fhi.append(fb); ids.append(i)
    if ids:
        ids = np.array(ids)
        r = refine_brackets(lambda x, k: np.asarray(arch.kernel_map(x, sw[k], sb[k])) - x,
                            np.array(lo), np.array(hi), np.array(flo), np.array(fhi), ids,
                            xtol=1e-12)
        out[ids] = r
    return out


def phase_grid(arch, sw_range=(0.25, 4.0), sb_range=(0.0, 1.0), n: int = 41, q0: float = 1.0):
    """log χ_J on an n×n grid of (σ_w², σ_b²) at the fixed point the input flows to
    (:func:`attractors`); a runaway kernel is evaluated at K = 1e8."""
    sws = np.linspace(*sw_range, n)
    sbs = np.linspace(*sb_range, n)
    W, B = np.meshgrid(sws, sbs)
    w, b = W.ravel(), B.ravel()
    K = attractors(arch, w, b, q0)
    K = np.where(np.isfinite(K), K, 1e8)
    chi = np.full(K.shape, np.nan)
    pos = K > 0
    chi[pos] = np.asarray(arch.chi_jacobian(K[pos], w[pos], b[pos]), dtype=float)
    if np.any(~pos):  # K* = 0: χ_J = μ² + σ_w² φ'(0)² where defined
        from critheory.theory.meanfield.fixed_points import _make

        for i in np.flatnonzero(~pos):
            chi[i] = _make(arch, 0.0, w[i], b[i]).chi_jacobian
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


def _row(arch, sws, bias_var):
    K = attractors(arch, sws, np.full(sws.shape, bias_var))
    K = np.where(np.isfinite(K), K, 1e8)
    chi = np.full(K.shape, np.nan)
    pos = K > 0
    b = np.full(sws.shape, bias_var)
    chi[pos] = np.asarray(arch.chi_jacobian(K[pos], sws[pos], b[pos]), dtype=float)
    if np.any(~pos):
        from critheory.theory.meanfield.fixed_points import _make

        for i in np.flatnonzero(~pos):
            chi[i] = _make(arch, 0.0, sws[i], bias_var).chi_jacobian
    with np.errstate(all="ignore"):
        return sws, None, np.where(chi > 0, np.log(chi), np.nan)


def phase_grid_mu(arch_name: str, activation, sw_range=(0.25, 4.0), mu_range=(0.0, 1.0),
                  bias_var: float = 0.0, n: int = 41):
    """log χ_J on an n×n grid of (σ_w², μ) at fixed σ_b² (each μ row vectorized over σ_w²)."""
    from critheory.theory.meanfield.architectures import architecture

    sws = np.linspace(*sw_range, n)
    mus = np.linspace(*mu_range, n)
    Z = np.full((n, n), np.nan)
    for i, mu in enumerate(mus):
        arch = architecture(arch_name, activation, mu)
        sws_, _, z = _row(arch, sws, bias_var)
        Z[i] = z
    return sws, mus, Z


def plot_phase_mu(arch_name: str, activation, path, *, sw_range=(0.25, 4.0),
                  mu_range=(0.0, 1.0), bias_var: float = 0.0, n: int = 31,
                  title: str = "") -> str:
    """Phase diagram in the (σ_w², μ) plane at fixed σ_b²: colour = log χ_J at the attractor,
    with the contour χ_J = 1."""
    plt = _plt()
    sws, mus, Z = phase_grid_mu(arch_name, activation, sw_range, mu_range, bias_var, n)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    lim = min(np.nanmax(np.abs(Z)) if np.any(np.isfinite(Z)) else 1.0, 1.0) or 1.0
    m = ax.pcolormesh(sws, mus, np.clip(Z, -lim, lim), cmap="RdBu_r", vmin=-lim, vmax=lim,
                      shading="nearest")
    fig.colorbar(m, ax=ax, label=r"$\log \chi_J$")
    if np.nanmin(Z) < 0 < np.nanmax(Z):
        ax.contour(sws, mus, Z, levels=[0.0], colors="k", linewidths=1.5)
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"residual strength $\mu$")
    ax.set_title(title or rf"$\sigma_b^2$ = {bias_var:g}")
    return _save(fig, path)
