"""Figures: critical lines, phase diagrams, depth curves. Drawing only: every function takes
the numbers it shows (computed by the theory or the simulator) and writes one file (format from
the extension: .png, .pdf, .svg, .jpg, .eps), returning its path.

Matplotlib is used without pyplot: figures are :class:`matplotlib.figure.Figure` objects drawn
under a local style (:func:`style`), so importing or calling this module changes neither the
backend nor ``rcParams`` of the user's session.
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np

from critheory.errors import InvalidArgumentError

__all__ = ["plot_line", "plot_phase", "plot_depth", "plot_phase_mu", "figure", "save", "style"]

#: the house style, applied only inside :func:`style`
STYLE = {"font.size": 10, "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 120,
         "savefig.bbox": "tight"}
_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".eps")


@contextlib.contextmanager
def style():
    """The house style for the figures drawn (and saved) inside the block, nothing outside
    (and no numpy overflow warnings from matplotlib's autoscaling of huge values)."""
    import matplotlib

    # matplotlib's autoscaling overflows on values near 1e308 (a runaway APJN): harmless there
    with matplotlib.rc_context(STYLE), np.errstate(over="ignore", invalid="ignore"):
        yield


def _styled(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            return fn(*args, **kwargs)
    return wrapper


def figure(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(fig, axes)`` like ``pyplot.subplots`` but without pyplot's global figure manager."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def check_path(path) -> Path:
    """The figure path, refused (one clear line) unless its format and directory are valid."""
    path = Path(path)
    if path.suffix.lower() not in _FORMATS:
        raise InvalidArgumentError(f"plot file must end in .png, .pdf, .svg, .jpg or .eps: {path}")
    if path.parent and not path.parent.exists():
        raise InvalidArgumentError(f"directory {path.parent} does not exist")
    return path


def save(fig, path) -> str:
    """Write the figure (under the house style) and return the path."""
    path = check_path(path)
    with style():
        fig.savefig(path)
    return str(path)


@_styled
def plot_line(points: list[dict], path, *, title: str = "", critical_points=()) -> str:
    """Critical line σ_w²(σ_b²), one marker colour per branch, critical points as stars."""
    fig, ax = figure(figsize=(4.5, 3.5))
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
    return save(fig, path)


@_styled
def plot_phase(grid, path, *, line: list[dict] | None = None, critical_points=(),
               title: str = "") -> str:
    """Phase diagram from ``grid = (σ_w² values, σ_b² values, log χ_J)`` (as returned by
    :func:`critheory.theory.meanfield.phase.phase_grid`): blue ordered, red chaotic, with the
    critical line and critical points overlaid."""
    sws, sbs, Z = grid
    fig, ax = figure(figsize=(4.8, 3.8))
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
    ax.set_xlim(sws[0], sws[-1])
    ax.set_ylim(sbs[0], sbs[-1])
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"bias variance $\sigma_b^2$")
    ax.set_title(title or "ordered (blue) / chaotic (red)")
    return save(fig, path)


@_styled
def plot_depth(curves, path, *, exponent: float | None = None,
               kernel_exponent: float | None = None, title: str = "",
               simulated: dict | None = None) -> str:
    """K^l and J^{l0,l} on log–log axes, with the predicted power law ``l^{-exponent}`` overlaid
    (anchored at the last depth) and optional simulation means with error bars."""
    fig, axes = figure(1, 2, figsize=(8.5, 3.4))
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
    return save(fig, path)


@_styled
def plot_phase_mu(grid, path, *, bias_var: float = 0.0, title: str = "") -> str:
    """Phase diagram in the (σ_w², μ) plane from ``grid = (σ_w² values, μ values, log χ_J)``
    (:func:`critheory.theory.meanfield.phase.phase_grid_mu`) at bias variance ``bias_var``,
    with the contour χ_J = 1."""
    sws, mus, Z = grid
    fig, ax = figure(figsize=(4.8, 3.8))
    lim = min(np.nanmax(np.abs(Z)) if np.any(np.isfinite(Z)) else 1.0, 1.0) or 1.0
    m = ax.pcolormesh(sws, mus, np.clip(Z, -lim, lim), cmap="RdBu_r", vmin=-lim, vmax=lim,
                      shading="nearest")
    fig.colorbar(m, ax=ax, label=r"$\log \chi_J$")
    if np.nanmin(Z) < 0 < np.nanmax(Z):
        ax.contour(sws, mus, Z, levels=[0.0], colors="k", linewidths=1.5)
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"residual strength $\mu$")
    ax.set_title(title or rf"$\sigma_b^2$ = {bias_var:g}")
    return save(fig, path)
