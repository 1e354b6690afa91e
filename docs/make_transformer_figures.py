"""Regenerate the figures of docs/transformers.md (docs/figures/transformer_*.png).

Run from the repository root: ``python docs/make_transformer_figures.py`` (about four minutes on two cores).
The theory comes from the same library calls as ``critheory depth --arch transformer``, the
measurements from the simulator (:func:`critheory.simulation.transformer.simulate_transformer`,
fixed seeds).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from critheory.blocks.transformer import transformer
from critheory.io.plots import figure, save, style
from critheory.simulation.transformer import simulate_transformer
from critheory.theory.transformer import one_token_exponent, transformer_depth

OUT = Path(__file__).parent / "figures"


def depth_profiles():
    """Pre-LN vs post-LN, T = 4, relu at (2, 0): token correlation and APJN through depth,
    theory (lines, with the QMC error band) and n = 128 networks (points)."""
    L = 24
    with style():
        fig, (a1, a2) = figure(1, 2, figsize=(9.5, 3.7))
        for i, arch in enumerate(("transformer", "transformer-post-ln")):
            net = transformer(arch, "relu", tokens=4, heads=4, mlp_ratio=2)
            d = transformer_depth(net, 2.0, 0.0, L, corr=0.2)
            s = simulate_transformer(net, 2.0, 0.0, width=128, depth=L, seeds=24, probes=4,
                                     corr=0.2, seed=0)
            G = s.kernel_tokens
            diag = np.einsum("sltt->slt", G)
            c = G / np.sqrt(diag[..., :, None] * diag[..., None, :])
            off = ~np.eye(4, dtype=bool)
            cm = c[..., off].mean(axis=-1)
            a1.plot(d.depths, d.correlation, "-", color=f"C{i}", label=f"{arch}, theory")
            a1.errorbar(d.depths, cm.mean(0), yerr=cm.std(0, ddof=1) / np.sqrt(24), fmt="o",
                        ms=3, color=f"C{i}", label=f"{arch}, n = 128")
            a2.plot(d.depths, d.apjn, "-", color=f"C{i}", label=f"{arch}, theory")
            a2.errorbar(d.depths, s.apjn_mean, yerr=s.apjn_stderr, fmt="o", ms=3,
                        color=f"C{i}")
        a1.set_xlabel("layer l")
        a1.set_ylabel("mean token correlation $c^l$")
        a1.legend(fontsize=7)
        a2.set_xlabel("layer l")
        a2.set_ylabel("APJN $J^{1,l}$")
        a2.set_xscale("log")
        a2.set_yscale("log")
        fig.suptitle("relu, $\\sigma_w^2 = 2$, T = 4 tokens (input correlation 0.2), H = 4",
                     fontsize=9)
    return save(fig, OUT / "transformer_depth.png")


def everywhere_critical():
    """Pre-LN, tanh: J^{1,l} ~ l^ζ at every (σ_w², σ_b²); T = 1 recursion against its exponent
    and T = 3 (QMC) alongside."""
    L = 200
    with style():
        fig, ax = figure(figsize=(5.4, 3.9))
        for i, (sw, sb) in enumerate(((0.5, 0.0), (1.0, 0.1), (2.5, 0.5))):
            one = transformer("transformer", "tanh", tokens=1)
            d1 = transformer_depth(one, sw, sb, L)
            z = one_token_exponent(one, sw, sb)
            ax.plot(d1.depths, d1.apjn, "-", color=f"C{i}",
                    label=f"T = 1, ($\\sigma_w^2$, $\\sigma_b^2$) = ({sw:g}, {sb:g})")
            ax.plot(d1.depths, d1.apjn[-1] * (d1.depths / L) ** z, ":", color=f"C{i}",
                    label=f"$l^{{{z:.3f}}}$")
            d3 = transformer_depth(transformer("transformer", "tanh", tokens=3, heads=2),
                                   sw, sb, 40)
            ax.plot(d3.depths, d3.apjn, "--", color=f"C{i}", label="T = 3" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("layer l")
        ax.set_ylabel("APJN $J^{1,l}$")
        ax.legend(fontsize=6.5)
        ax.set_title("pre-LN transformer, tanh: power laws everywhere", fontsize=9)
    return save(fig, OUT / "transformer_everywhere_critical.png")


def finite_width():
    """Strong attention (C_Q C_K = 9), T = 3, relu: simulated APJN at l = 3 minus theory,
    against width (C = n/H channels per head), with standard errors."""
    net_of = {16: 2, 32: 2, 64: 4, 128: 4}
    devs, ses = [], []
    th = None
    for n, H in net_of.items():
        net = transformer("transformer", "relu", tokens=3, heads=H, mlp_ratio=1, cq=3, ck=3)
        if th is None:
            th = transformer_depth(net, 2.0, 0.0, 3, points=4096)
        s = simulate_transformer(net, 2.0, 0.0, width=n, depth=3, seeds=4096 // n * 4,
                                 probes=8, seed=1)
        devs.append(s.apjn_mean[2] - th.apjn[2])
        ses.append(s.apjn_stderr[2])
    ns = np.array(list(net_of))
    with style():
        fig, ax = figure(figsize=(5.0, 3.6))
        ax.errorbar(ns, devs, yerr=ses, fmt="o", label="simulation − theory")
        ax.plot(ns, devs[0] * ns[0] / ns, ":", label="$\\propto 1/n$")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("width n")
        ax.set_ylabel("$J^{1,3}$ simulated − infinite width")
        ax.legend(fontsize=8)
        ax.set_title("finite-width attention ($C_Q C_K = 9$, T = 3)", fontsize=9)
    return save(fig, OUT / "transformer_finite_width.png")


if __name__ == "__main__":
    for f in (depth_profiles, everywhere_critical, finite_width):
        print("wrote", f())
