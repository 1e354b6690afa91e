"""The measured phase diagram of a sweep, with the theory's critical line and the disagreements.

A cell *disagrees* with the theory when ``|chi_j_z| > z_crit``, with ``z_crit`` the two-sided
Bonferroni threshold at family-wise level ``alpha`` (default 0.01) over the cells compared
(:func:`critheory.validation.compare.bonferroni_threshold`): if the theory is right and the
errors are as estimated, the chance that *any* cell of the sweep is marked is at most ``alpha``.
``chi_j_z`` compares with the infinite-width curve over the same window and allows ``1/N`` for
the finite-width correction (:mod:`critheory.sweep.cell`). Cells are compared where both numbers
exist (the theory has a finite APJN over the window, the measurement a finite fit).
"""
from __future__ import annotations

import json

import numpy as np

__all__ = ["agreement", "plot_sweep"]


def agreement(ds, alpha: float = 0.01) -> dict:
    """Counts of compared and disagreeing cells, ``z_crit`` and the largest ``|z|``.

    Returns
    -------
    dict
        ``{"compared", "disagree", "z_crit", "max_abs_z", "alpha", "mask"}`` (``mask``: bool
        array of the disagreeing cells, shape of the grid).
    """
    from critheory.validation.compare import bonferroni_threshold

    z = np.asarray(ds["chi_j_z"].values, dtype=float)
    done = np.asarray(ds["done"].values, dtype=bool)
    ok = done & np.isfinite(z)
    m = int(ok.sum())
    zc = bonferroni_threshold(m, alpha) if m else float("nan")
    mask = ok & (np.abs(np.where(ok, z, 0.0)) > zc)
    return {"compared": m, "disagree": int(mask.sum()), "z_crit": zc,
            "max_abs_z": float(np.max(np.abs(z[ok]))) if m else float("nan"),
            "alpha": alpha, "mask": mask}


def plot_sweep(ds, path, *, alpha: float = 0.01, title: str | None = None) -> str:
    """One panel per activation: log χ_J measured (colour, σ_w² across, σ_b² up), the theory's
    critical line χ_J = 1 (black), disagreeing cells (black crosses), cells not yet computed
    blank.
    """
    from critheory.io.plots import style

    with style():
        return _draw(ds, path, alpha, title)


def _draw(ds, path, alpha, title) -> str:
    from critheory.activation.symbolic import Activation
    from critheory.io.plots import figure, save
    from critheory.theory.meanfield.criticality import critical_line
    from critheory.theory.meanfield.maps import architecture

    spec = json.loads(ds.attrs["sweep_spec"])
    acts = [str(a) for a in ds["activation"].values]
    sws = np.asarray(ds["weight_var"].values, dtype=float)
    sbs = np.asarray(ds["bias_var"].values, dtype=float)
    chi = np.asarray(ds["chi_j"].values, dtype=float)
    with np.errstate(all="ignore"):
        logchi = np.where(chi > 0, np.log(chi), np.nan)
    lim = float(np.nanmax(np.abs(logchi))) if np.any(np.isfinite(logchi)) else 1.0
    lim = min(lim, 1.0) or 1.0
    dis = agreement(ds, alpha)
    n = len(acts)
    fig, axes = figure(1, n, figsize=(4.2 * n + 0.8, 3.6), squeeze=False)
    mesh = None
    for k, (ax, name) in enumerate(zip(axes[0], acts)):
        mesh = ax.pcolormesh(sws, sbs, np.clip(logchi[k].T, -lim, lim), cmap="RdBu_r",
                             vmin=-lim, vmax=lim, shading="nearest")
        try:
            arch = architecture(spec["arch"], Activation.get(name), spec["mu"])
            grid = np.linspace(sbs[0], sbs[-1], 101) if sbs[-1] > sbs[0] else sbs
            line = [p.to_dict() for p in critical_line(arch, grid)]
        except Exception:  # noqa: BLE001 - a line the theory cannot give is left out
            line = []
        for b in sorted({p.get("branch", 0) for p in line}):
            pts = [p for p in line if p.get("branch", 0) == b and p["weight_var"] is not None]
            ax.plot([p["weight_var"] for p in pts], [p["bias_var"] for p in pts], "k-", lw=1.5,
                    label="theory $\\chi_J = 1$" if b == 0 else None)
        ii, jj = np.nonzero(dis["mask"][k])
        if ii.size:
            ax.plot(sws[ii], sbs[jj], "x", color="k", ms=7, mew=1.5,
                    label=f"|z| > {dis['z_crit']:.2f}")
        dx = (sws[-1] - sws[0]) / max(1, sws.size - 1) / 2 or 0.5
        dy = (sbs[-1] - sbs[0]) / max(1, sbs.size - 1) / 2 or 0.5
        ax.set_xlim(sws[0] - dx, sws[-1] + dx)
        ax.set_ylim(sbs[0] - dy, sbs[-1] + dy)
        ax.set_xlabel(r"weight variance $\sigma_w^2$")
        if k == 0:
            ax.set_ylabel(r"bias variance $\sigma_b^2$")
        ax.set_title(f"{name} ({spec['arch']})")
        if line or ii.size:
            ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    fig.colorbar(mesh, ax=list(axes[0]), label=r"measured $\log \chi_J$")
    fig.suptitle(title or (f"measured at width {spec['width']}, depth {spec['depth']}, "
                           f"{spec['seeds']} networks per cell; fit window l = "
                           f"{spec['window'][0]}..{spec['window'][1]}"), fontsize=9)
    return save(fig, path)
