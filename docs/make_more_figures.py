"""Regenerate the figures of docs/shaped.md, docs/torch.md and docs/recipes.md.

Run from the repository root: ``python docs/make_more_figures.py`` (about a minute; the torch
figure needs ``critheory[torch]``). The SDE figure is the one ``critheory sde ... --plot``
writes; the PyTorch figure sets ``critheory.torch.apjn`` on real modules beside
``critheory.torch.predict``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from critheory.cli.main import main
from critheory.io.plots import figure, save, style

OUT = Path(__file__).parent / "figures"


def shaped_relu():
    """Shaped ReLU (c₊ = 0, c₋ = −1) at T = d/n = 1 from ρ₀ = 0.5: the SDE's paths and the
    density of the final correlation beside shaped and unshaped networks of width 64 (the
    figure of ``critheory sde relu --shape relu --T 1 --rho0 0.5 --simulate --width 64 --seeds 200 --plot``)."""
    rc = main(["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.5", "--simulate",
               "--width", "64", "--seeds", "200", "--plot", str(OUT / "shaped_relu.png")])
    assert rc == 0


def torch_apjn():
    """The APJN J^(1,l) of a tanh MLP in PyTorch (width 256, 12 layers) measured by
    ``critheory.torch.apjn`` after PyTorch's default initialization and after
    ``init_critical_``, beside critheory's prediction for each (``predict``)."""
    try:
        import torch
    except ImportError:       # the docs build without the [torch] extra keeps the committed one
        print("critheory-docs: kept torch_apjn.png (needs critheory[torch])", flush=True)
        return None

    from critheory.torch import apjn, init_critical_, predict

    def mlp(seed):
        torch.manual_seed(seed)
        layers = [torch.nn.Linear(256, 256)]
        for _ in range(11):
            layers += [torch.nn.Tanh(), torch.nn.Linear(256, 256)]
        return torch.nn.Sequential(*layers).double()

    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for i, (label, init) in enumerate((("PyTorch default init", None),
                                           ("critheory.torch.init_critical_", 0))):
            m = mlp(i)
            if init is not None:
                init_critical_(m, seed=init)
            r = apjn(m, x, seed=1, probes=16)
            p = predict(m, x)
            depth = np.arange(1, len(r.mean) + 1)
            ax.errorbar(depth, r.mean, yerr=r.stderr, fmt="o", ms=3, color=f"C{i}",
                        label=f"{label}: measured")
            ax.plot(np.arange(1, len(p.apjn) + 1), p.apjn, "-", color=f"C{i}",
                    label=f"{label}: predicted")
        ax.set_yscale("log")
        ax.set_xlabel(r"layer $\ell$")
        ax.set_ylabel(r"APJN $\mathcal{J}^{1,\ell}$")
        ax.set_title("a tanh MLP in PyTorch (width 256)")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "torch_apjn.png")




def ntk_fluctuations():
    """The relative variance of one neuron's NTK, Var Θ̂_ii / Θ², against depth at two widths:
    the order-1/n theory (``ntk_curves(..., width=n).ntk_variance``) and finite tanh networks
    at criticality (``measure_ntk``, all tracked neurons of every network; ± the standard error
    of a variance from the networks alone, conservative). The recipe's interaction strength
    r = L/n is this quantity's scale."""
    import critheory as ct

    L, S = 16, 256
    with style():
        fig, ax = figure(figsize=(5.2, 3.8))
        for i, n in enumerate((32, 128)):
            c = ct.ntk_curves("mlp", "tanh", 1.0, 0.0, L, width=n)
            ax.plot(c.depths / n, c.ntk_variance / c.ntk ** 2, "-", color=f"C{i}",
                    label=f"theory, n = {n}")
            m = ct.measure_ntk("tanh", 1.0, 0.0, width=n, depth=L, seeds=S, seed=i)
            t = m.ntk_per_neuron                                    # (S, L, neurons)
            v = t.reshape(S, L, -1).transpose(1, 0, 2).reshape(L, -1).var(axis=1, ddof=1)
            rel = v / m.ntk_mean ** 2
            ax.errorbar(m.depths / n, rel, yerr=rel * np.sqrt(2.0 / (S - 1)), fmt="o", ms=3,
                        color=f"C{i}", label=f"{S} networks, n = {n}")
        ax.set_xlabel(r"depth / width $\ell/n$")
        ax.set_ylabel(r"$\mathrm{Var}\,\hat\Theta_{ii} / \Theta^2$")
        ax.set_title("NTK fluctuations grow like L/n (tanh at criticality)")
        ax.legend(frameon=False, fontsize=8)
    save(fig, OUT / "recipes_ntk_fluctuations.png")


if __name__ == "__main__":
    shaped_relu()
    torch_apjn()
    ntk_fluctuations()
