"""Figures of the commands (finite width, NTK, shaped SDE, transformer depth curves). Drawing
only, like :mod:`critheory.io.plots` (whose style, :func:`~critheory.io.plots.figure` and
:func:`~critheory.io.plots.save` they use): every function takes computed results and a path,
computes nothing and returns the path written. matplotlib is imported on first use.
"""
from __future__ import annotations

import numpy as np

from critheory.io.plots import figure, save, style

__all__ = ["plot_finite_width", "plot_ntk", "plot_sde", "plot_token_depth", "plot_bayes"]


def plot_finite_width(curves: dict, path, *, title: str = "", measured: dict | None = None,
                      extra_widths=()) -> str:
    """Two panels: V^l/(K^l)² with νl, and the predicted (and measured) excess kurtosis per
    depth at the width of ``curves`` and at ``extra_widths`` (drawing only)."""
    with style():
        fig, axes = figure(1, 2, figsize=(8.5, 3.4))
        l = np.asarray(curves["depths"], dtype=float)
        vn = np.array([np.nan if v is None else v for v in curves["vertex_normalized"]])
        ax = axes[0]
        ax.plot(l, vn, "-", label=r"$V^\ell/(K^\ell)^2$ (recursion)")
        nu = curves["nu"]["value"]
        if nu is not None:
            ax.plot(l, nu * l, "--", color="gray", label=rf"$\nu\ell$, $\nu$ = {nu:.4g}")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel(r"$V^\ell/(K^\ell)^2$")
        ax = axes[1]
        widths = ([curves["width"]] if curves.get("width") else []) + list(extra_widths)
        for i, n in enumerate(widths):
            ax.plot(l, 3 * vn / n, "-", color=f"C{i}", label=rf"theory $3V/(nK^2)$, n = {n}")
        ex = curves.get("kurtosis_exact")
        if ex is not None:
            ax.plot(l, [np.nan if v is None else v for v in ex], "--", color="C0",
                    label=f"exact at n = {curves['width']}")
        if measured is not None:
            ax.errorbar(measured["depths"], measured["kurtosis_mean"],
                        yerr=measured["kurtosis_stderr"], fmt="o", ms=3, color="C0",
                        label=f"simulation, n = {curves['width']} (mean ± s.e.)")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel("excess kurtosis of one preactivation")
        for a in axes:
            a.legend(frameon=False, fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        return save(fig, path)


def plot_ntk(out: dict, path, title: str = "") -> str:
    """Two panels: the NTK over depth (and the measured one, ``out["simulation"]``) and the
    learning rates per layer, from the JSON dict of the ``ntk`` command (drawing only)."""
    def arr(key, src=out):
        return np.array([np.nan if v is None else v for v in src[key]], dtype=float)

    with style():
        fig, axes = figure(1, 2, figsize=(8.5, 3.4))
        l = np.asarray(out["depths"], dtype=float)
        ax = axes[0]
        ax.plot(l, arr("ntk"), "-", label=r"$\Theta^\ell$ (recursion)")
        sim = out.get("simulation")
        if sim is not None:
            ax.errorbar(l, arr("ntk_mean", sim), yerr=arr("ntk_stderr", sim), fmt="o", ms=3,
                        label=f"simulation, n = {sim['width']}")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel(r"NTK $\Theta^\ell$")
        ax.legend(frameon=False, fontsize=8)
        ax = axes[1]
        ax.plot(l, arr("lambda_b"), "-", label=r"$\lambda_b^\ell$")
        ax.plot(l, arr("lambda_w"), "--", label=r"$\lambda_W^\ell$")
        ax.set_xlabel(r"depth $\ell$")
        ax.set_ylabel("learning rate per layer")
        ax.legend(frameon=False, fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        return save(fig, path)


def plot_sde(res, path, *, shaped=None, unshaped=None, title: str = "") -> str:
    """Sample paths of ρ_t and the density of ρ_T, shaped vs unshaped (drawing only)."""
    with style():
        fig, axes = figure(1, 2, figsize=(9, 3.4))
        ax = axes[0]
        p = res.solution
        if res.method == "em" and p.rho_paths.size:
            ax.plot(p.times, p.rho_paths, color="C0", lw=0.6, alpha=0.6)
            ax.plot([], [], color="C0", label="SDE paths (shaped)")
        if shaped is not None and shaped.rho_paths.size:
            ax.plot(shaped.times, shaped.rho_paths, color="C2", lw=0.6, alpha=0.6)
            ax.plot([], [], color="C2", label=f"shaped network, n = {shaped.width}")
        if unshaped is not None and unshaped.rho_paths.size:
            ax.plot(unshaped.times, unshaped.rho_paths, color="C3", lw=0.6, alpha=0.6)
            ax.plot([], [], color="C3", label=f"unshaped network, n = {unshaped.width}")
        ax.set_xlabel("t = layer / width")
        ax.set_ylabel(r"correlation $\rho_t$")
        ax.set_ylim(-1.02, 1.02)
        ax = axes[1]
        bins = np.linspace(-1, 1, 61)
        if res.method == "pde":
            ax.plot(p.rho, p.density, color="C0", label="SDE (Fokker-Planck)")
        else:
            ax.hist(p.rho, bins=bins, density=True, histtype="step", color="C0",
                    label="SDE (Euler-Maruyama)")
        if shaped is not None:
            ax.hist(shaped.rho, bins=bins, density=True, histtype="step", color="C2",
                    label=f"shaped, n = {shaped.width}")
        if unshaped is not None:
            ax.hist(unshaped.rho, bins=bins, density=True, histtype="stepfilled", alpha=0.3,
                    color="C3", label=f"unshaped, n = {unshaped.width}")
        top = (np.max(p.density) if res.method == "pde"
               else np.max(np.histogram(p.rho, bins=bins, density=True)[0]))
        ax.set_ylim(0, 1.3 * top)   # the unshaped spike at ρ = 1 is clipped
        ax.axvline(res.rho_ode, color="gray", ls="--", label="ODE limit (infinite width)")
        ax.set_xlabel(r"$\rho_T$")
        ax.set_ylabel("density")
        ax.set_xlim(-1, 1)
        for a in axes:
            a.legend(frameon=False, fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
        return save(fig, path)


def plot_token_depth(theory, sim, path, title: str = "") -> str:
    """Two panels: the token kernel G^l_ts and the APJN over depth, theory (a
    :class:`~critheory.theory.transformer.depth.TransformerCurves`) and, where given, a
    transformer simulation (drawing only)."""
    with style():
        fig, (a1, a2) = figure(1, 2, figsize=(9, 3.6))
        l = theory.depths
        T = theory.tokens
        for t in range(T):
            for s in range(t, T):
                lab = f"G[{t},{s}]" if T <= 3 else None
                a1.plot(l, theory.kernel_tokens[:, t, s], "-", lw=1, label=lab)
                if sim is not None:
                    a1.errorbar(l, sim.kernel_tokens_mean[:, t, s],
                                yerr=sim.kernel_tokens_stderr[:, t, s], fmt=".", ms=3,
                                color="k", alpha=0.6)
        a1.set_xlabel("layer l")
        a1.set_ylabel("token kernel $G^l_{ts}$")
        if T <= 3:
            a1.legend(fontsize=8)
        a2.plot(l, theory.apjn, "-", label="theory (infinite width)")
        if sim is not None:
            a2.errorbar(l, sim.apjn_mean, yerr=sim.apjn_stderr, fmt="o", ms=3,
                        label=f"simulation (n = {sim.width})")
        a2.set_xlabel("layer l")
        a2.set_ylabel("APJN $J^{l_0,l}$")
        a2.legend(fontsize=8)
        fig.suptitle(title, fontsize=9)
    return save(fig, path)


def plot_bayes(out: dict, path, *, title: str = "") -> str:
    """Two panels from the JSON dict of the ``bayes`` command: the posterior mean and the
    posterior standard deviation on each test input, Gaussian process (n = ∞) beside the
    1/n-corrected answer and, where simulated, the exact posterior of finite networks (mean ±
    standard error). Drawing only."""
    test = np.asarray(out["test"])
    x = np.arange(test.size, dtype=float)
    with style():
        fig, axes = figure(1, 2, figsize=(8.5, 3.4))
        ax = axes[0]
        ax.plot(x - 0.1, out["posterior_mean_gp"], "s", color="C0", label="GP (n = ∞)")
        ax.plot(x + 0.1, out["posterior_mean_nlo"], "o", color="C1",
                label=f"1/n-corrected (n = {out['width']})")
        if "measured_posterior_mean" in out:
            ax.errorbar(x, out["measured_posterior_mean"], yerr=out["measured_posterior_stderr"],
                        fmt="k.", capsize=3,
                        label="finite networks (mean ± s.e.)")
        ax.set_ylabel("posterior mean")
        ax = axes[1]
        sd = {k: np.sqrt(np.clip(np.diag(np.asarray(out[k], dtype=float)), 0.0, None))
              for k in ("posterior_cov_gp", "posterior_cov_nlo")}
        ax.plot(x - 0.1, sd["posterior_cov_gp"], "s", color="C0", label="GP (n = ∞)")
        ax.plot(x + 0.1, sd["posterior_cov_nlo"], "o", color="C1", label="1/n-corrected")
        if "measured_posterior_cov" in out:
            c = np.asarray(out["measured_posterior_cov"], dtype=float)
            ce = np.asarray(out["measured_posterior_cov_stderr"], dtype=float)
            s = np.sqrt(np.clip(np.diag(c), 0.0, None))
            with np.errstate(divide="ignore", invalid="ignore"):
                se = np.where(s > 0, np.diag(ce) / (2 * s), np.nan)   # delta method
            ax.errorbar(x, s, yerr=se, fmt="k.", capsize=3, label="finite networks")
        ax.set_ylabel("posterior standard deviation")
        for a in axes:
            a.set_xticks(x)
            a.set_xticklabels([f"input {t}" for t in test])
            a.legend(frameon=False, fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        return save(fig, path)
