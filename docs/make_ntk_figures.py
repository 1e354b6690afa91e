"""Regenerate the figures of docs/ntk.md, docs/dntk.md and docs/expectations.md.

Run from the repository root: ``python docs/make_ntk_figures.py`` (about a minute). The theory
comes from the same library calls as ``critheory ntk --width`` and ``critheory moments``, the
measurements from the simulator (:func:`critheory.measure_ntk`, :func:`critheory.measure_dntk`,
fixed seeds) and the references from mpmath at 30 digits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import critheory as ct
from critheory.io.plots import figure, save, style

OUT = Path(__file__).parent / "figures"
POINTS = {"relu": (2.0, 0.0), "tanh": (1.0, 0.0)}


def ntk_depth():
    """Θ^l/l at criticality: the infinite-width recursion, its mean at width n to order 1/n
    (``Θ + Θ1/n``) and the empirical NTK of finite networks (one input, λ_b = λ_W = 1)."""
    L, n, S = 16, 128, 384
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for i, (act, (sw, sb)) in enumerate(POINTS.items()):
            c = ct.ntk_curves("mlp", act, sw, sb, L, width=n)
            ax.plot(c.depths, c.ntk / c.depths, "-", color=f"C{i}", label=f"{act}: theory")
            ax.plot(c.depths, c.ntk_mean_nlo / c.depths, "--", color=f"C{i}",
                    label=f"{act}: with its 1/n shift at n = {n}")
            m = ct.measure_ntk(act, sw, sb, width=n, depth=L, seeds=S, seed=i)
            ax.errorbar(m.depths, m.ntk_mean / m.depths, yerr=m.ntk_stderr / m.depths, fmt="o",
                        ms=3, color=f"C{i}", label=f"{act}: {S} networks, n = {n}")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel(r"$\Theta^{\ell} / \ell$")
        ax.set_title(r"NTK at criticality (ReLU (2, 0), tanh (1, 0))")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "ntk_depth.png")


def dntk_depth():
    """n·dntk = (P + 2Q)/Θ² over depth at criticality (the vectorized route to 10³ layers) and
    measured at shallow depths by exact Taylor-mode derivatives of finite networks."""
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for i, (act, (sw, sb)) in enumerate(POINTS.items()):
            c = ct.dntk_curves("mlp", act, sw, sb, 1000)
            ax.plot(c.depths, c.dntk_coefficient, "-", color=f"C{i}", label=f"{act}: theory")
            n = 32
            m = ct.measure_dntk(act, sw, sb, width=n, depth=4, networks=2000, seed=i)
            y = n * (m.mean("p") + 2 * m.mean("q")) / m.mean("ntk") ** 2
            se = n * np.hypot(m.stderr("p"), 2 * m.stderr("q")) / m.mean("ntk") ** 2
            ax.errorbar(np.asarray(m.layers), y, yerr=se, fmt="o", ms=3, color=f"C{i}",
                        label=f"{act}: 2000 networks, n = {n}")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel(r"$n \cdot$ dntk $= (P + 2Q)/\Theta^2$")
        ax.set_title("the dNTK grows like L/n at criticality")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "dntk_depth.png")


def expectation_errors():
    """Reported error bars against the true errors (30-digit mpmath references) of E_K[φ²]
    and E_K[φ'²] over K for a few activations and a composite formula: every point must lie
    below the diagonal."""
    Ks = np.logspace(-4, 3, 15)
    with style():
        fig, ax = figure(figsize=(5.0, 4.0))
        for i, f in enumerate(("tanh", "gelu", "swish", "tanh(sin(x))")):
            for g, mk in (("phi2", "o"), ("dphi2", "s")):
                r = ct.expect(f, g, Ks)
                ref = np.array([float(ct.expect(f, g, K, method="mpmath", dps=30).value)
                                for K in Ks])
                true = np.maximum(np.abs(r.value - ref), 1e-300)
                ax.loglog(r.error / np.abs(ref), true / np.abs(ref), mk, ms=3, color=f"C{i}",
                          label=f"{f}, {g}" if g == "phi2" else None)
        lim = [1e-19, 1e-12]
        ax.plot(lim, lim, "k--", lw=0.8, label="true = reported")
        ax.set_xlim(lim)
        ax.set_ylim(1e-20, 1e-12)
        ax.set_xlabel("reported relative error")
        ax.set_ylabel("true relative error (vs mpmath)")
        ax.set_title(r"error bars of $E_K[\phi^2]$ (o), $E_K[\phi'^2]$ (s), $K = 10^{-4} \ldots 10^3$",
                     fontsize=9)
        ax.legend(frameon=False, fontsize=7)
    save(fig, OUT / "expectations_errors.png")


if __name__ == "__main__":
    ntk_depth()
    dntk_depth()
    expectation_errors()
