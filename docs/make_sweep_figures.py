"""Measured phase diagrams of docs/sweeps.md: tanh, ReLU and GELU, MLP and pre-LN.

Each figure is one sweep (:mod:`critheory.sweep`) on a local Dask cluster: a 13 × 9 grid of
(σ_w², σ_b²) per activation, width 64, depth 24, 16 networks per cell, χ_J fitted over
l = 13..24 (the last half), 200 bootstrap replicates; the stores are written to a temporary
directory (``--keep DIR`` keeps them). About 3–5 minutes on 2 cores.

    python docs/make_sweep_figures.py [--workers K] [--keep DIR]

Writes ``docs/figures/sweep_mlp.png`` and ``docs/figures/sweep_pre-ln.png`` and prints the
agreement of each sweep with the theory.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from critheory.sweep import SweepSpec  # noqa: E402

SWEEPS = {
    # σ_w² range so that each critical line (χ_J = 1) crosses the grid
    "mlp": dict(weight_var=(0.25, 4.0, 13), bias_var=(0.0, 0.5, 9)),
    "pre-ln": dict(weight_var=(0.25, 8.0, 13), bias_var=(0.0, 0.5, 9)),
}
SETTINGS = dict(width=64, depth=24, seeds=16, n_boot=200, root_seed=0)
# the site build runs the figure scripts side by side, one per core: this one in its own
# process (the cells' numbers do not depend on the workers: their seeds derive from the cell)
BUILD_ARGS = ["--workers", "1"]


def main(argv=None) -> int:
    from critheory.sweep.plot import agreement, plot_sweep
    from critheory.sweep.run import run_sweep
    from critheory.sweep.store import load

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--keep", metavar="DIR", help="keep the zarr stores in DIR")
    a = p.parse_args(argv)
    root = a.keep or tempfile.mkdtemp(prefix="sweep_figures_")
    os.makedirs(root, exist_ok=True)
    try:
        for arch, grid in SWEEPS.items():
            spec = SweepSpec(("tanh", "relu", "gelu"), arch, 1.0, **grid, **SETTINGS)
            out = os.path.join(root, f"sweep_{arch}.zarr")
            if os.path.exists(out):
                shutil.rmtree(out)
            run = run_sweep(spec, out, workers=a.workers, progress=True)
            ds = load(out)
            agr = agreement(ds)
            path = plot_sweep(ds, os.path.join(HERE, "figures", f"sweep_{arch}.png"))
            print(f"{arch}: {run.computed} cells in {run.elapsed:.0f} s on {run.workers} "
                  f"workers; {agr['compared']} compared, {agr['disagree']} beyond |z| = "
                  f"{agr['z_crit']:.2f}, largest |z| = {agr['max_abs_z']:.2f}; wrote {path}")
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
