"""Sweeps at scale: measured phase diagrams over (activation, σ_w², σ_b²) grids on Dask.

Modules
-------
``spec``   :class:`~critheory.sweep.spec.SweepSpec` (the settings), per-cell seeds, the budget
``cell``   :func:`~critheory.sweep.cell.run_cell`: one simulation, its fits and the theory
``store``  the zarr store written cell by cell (xarray Dataset, ``done`` mask, resume)
``run``    :func:`~critheory.sweep.run.run_sweep`: the Dask client loop (``as_completed``)
``plot``   the measured phase diagram with the theory's critical line

dask, xarray and zarr (the ``critheory[sweep]`` extra) are imported by ``store``, ``run`` and
``plot`` inside their functions only; this package imports without them.
"""
from .cell import PHASES, VARIABLES, run_cell
from .run import SweepRun, run_sweep
from .spec import SweepSpec, cell_seed, check_spec, parse_range

__all__ = ["SweepSpec", "SweepRun", "run_sweep", "cell_seed", "check_spec", "parse_range",
           "run_cell", "PHASES", "VARIABLES"]
