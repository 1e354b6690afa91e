"""Regenerate the figures of docs/finitewidth.md.

Run from the repository root: ``python docs/make_finitewidth_figures.py`` (about half a minute).
The theory comes from the same library calls as ``critheory finite-width``, the measurements
from the simulator (:func:`critheory.simulation.finitewidth.measure_finite_width`, fixed seeds).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from critheory.io.plots import figure, save, style
from critheory.simulation.finitewidth import measure_finite_width
from critheory.theory.finitewidth import exact_scale_invariant, finite_width_curves
from critheory.theory.finitewidth.aspect import (information_coefficients,
                                                 optimal_aspect_ratio, student_t_information)
from critheory.theory.meanfield.maps import architecture

OUT = Path(__file__).parent / "figures"


def kurtosis_tanh():
    """tanh at its critical point (1, 0): predicted 3V/(nK²) and measured kurtosis."""
    L = 30
    c = finite_width_curves(architecture("mlp", "tanh"), 1.0, 0.0, L)
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for i, n in enumerate((32, 64, 128)):
            ax.plot(c.depths, 3 * c.vertex_normalized / n, "-", color=f"C{i}",
                    label=f"theory, n = {n}")
            m = measure_finite_width("tanh", 1.0, 0.0, width=n, depth=L, seeds=2 ** 21 // n,
                                     apjn=False, seed=n)
            ax.errorbar(m.depths, m.kurtosis_mean, yerr=m.kurtosis_stderr, fmt="o", ms=3,
                        color=f"C{i}", label=f"simulation, n = {n}")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel("excess kurtosis of one preactivation")
        ax.set_title(r"tanh at criticality ($\sigma_w^2 = 1$, $\sigma_b^2 = 0$)")
        ax.legend(frameon=False, fontsize=8, ncol=2)
    save(fig, OUT / "finitewidth_kurtosis_tanh.png")


def relu_exact():
    """ReLU at n = 32: the leading order, the exact finite-width kurtosis, the simulation."""
    L, n = 20, 32
    c = finite_width_curves(architecture("mlp", "relu"), 2.0, 0.0, L, width=n)
    ex = exact_scale_invariant("relu", 2.0, 0.0, L, n)
    m = measure_finite_width("relu", 2.0, 0.0, width=n, depth=L, seeds=20000, apjn=False,
                             seed=5)
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        ax.semilogy(c.depths[1:], c.kurtosis[1:], "-", label=r"leading order $3V/(nK^2)$")
        ax.semilogy(ex.depths[1:], ex.kurtosis[1:], "--", label="exact at n = 32")
        ax.errorbar(m.depths[1:], m.kurtosis_mean[1:], yerr=m.kurtosis_stderr[1:], fmt="o",
                    ms=3, color="C3", label="simulation (mean ± s.e.)")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel("excess kurtosis")
        ax.set_title(r"ReLU, n = 32: where depth/width stops being small")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "finitewidth_relu_exact.png")


def nu_approach():
    """V^l/((K^l)² l) through depth 10⁴: exact (ReLU), slow (tanh), numeric (GELU)."""
    L = 10000
    cases = [("relu", 2.0, 0.0, "ReLU (exact: 5 (l-1)/l)"),
             ("tanh", 1.0, 0.0, "tanh (-> 2/3, slowly)"),
             ("gelu", 1.98305826, 0.17292239, "GELU at its critical point (numeric)")]
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for act, sw, sb, label in cases:
            c = finite_width_curves(architecture("mlp", act), sw, sb, L)
            ax.semilogx(c.depths[1:], c.vertex_normalized[1:] / c.depths[1:], label=label)
            if c.nu.value is not None:
                ax.axhline(c.nu.value, color="gray", lw=0.7, ls=":")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel(r"$V^\ell / ((K^\ell)^2 \ell)$")
        ax.set_yscale("log")
        ax.set_title(r"$V/K^2 \approx \nu \ell$: how fast the asymptote is reached")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "finitewidth_nu.png")


def aspect_information():
    """The mutual information between two groups of outputs against ε = V/(nK²) ≈ ν L/n: its
    third-order expansion (the quantity the optimal-aspect-ratio argument maximizes) and the
    exact information of one scale mixture (Student t)."""
    eps = np.linspace(1e-3, 0.35, 120)
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for (na, nb), color in (((1, 1), "C0"), ((1, 7), "C1")):
            c2, c3 = information_coefficients(na, nb)
            e_star = optimal_aspect_ratio(1.0, na + nb).epsilon
            ax.plot(eps, c2 * eps ** 2 + c3 * eps ** 3, color=color,
                    label=f"$n_L$ = {na + nb}: expansion to $\\epsilon^3$")
            ax.plot(eps, [student_t_information(e, na, nb) for e in eps], color=color, ls="--",
                    label=f"$n_L$ = {na + nb}: exact (Student t mixture)")
            ax.axvline(e_star, color=color, lw=0.7, ls=":")
        ax.set_ylim(0, None)
        ax.set_xlabel(r"$\epsilon = V/(nK^2) \approx \nu L/n$")
        ax.set_ylabel(r"$I(A;B)$ [nats]")
        ax.set_title(r"optimal aspect ratio: $\epsilon^* = 4/(20 + 3 n_L)$ (dotted)")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "finitewidth_aspect.png")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    with np.errstate(all="ignore"):
        kurtosis_tanh()
        relu_exact()
        nu_approach()
        aspect_information()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("finitewidth_*.png"))))
