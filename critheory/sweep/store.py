"""The zarr store of a sweep, written cell by cell.

Layout: one zarr group (format 3) holding the xarray Dataset with dims ``(activation,
weight_var, bias_var)``, coordinates the activation names and the two grids, and the variables
of :data:`critheory.sweep.cell.VARIABLES`, chunked in tiles of at most 64 × 64 grid points of one
activation (:data:`TILE`). The
sweep's settings (:class:`~critheory.sweep.spec.SweepSpec` as JSON) are the group attribute
``sweep_spec``; ``runs`` counts the runs that wrote to it.

:func:`create` writes the whole Dataset with fill values (NaN, ``done = False``) before any cell
is computed; :class:`CellWriter` then writes the variables of one finished cell, the ``done``
flag last, from the client only (one writer, so no two writes race on a tile). zarr's local
store replaces a chunk file atomically (written to a temporary file, then renamed), so a write
interrupted at any moment leaves every tile either as it was or with the new cell in it. A
sweep killed at any moment therefore loses at most the cells being computed or written: a cell
whose flag is not set is computed again on ``--resume``. (On other stores, such as object
stores, a chunk write is a single put, likewise all or nothing.)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from critheory.errors import InvalidArgumentError
from .cell import VARIABLES
from .spec import SweepSpec

__all__ = ["check_new", "create", "open_for_resume", "write_cell", "CellWriter", "load", "done_mask", "begin_run"]

_DIMS = ("activation", "weight_var", "bias_var")
#: Largest tile (grid points of one activation) of a chunk: a cell's write rewrites its tiles
#: (~32 KiB each), and a store of 1e5 cells has ~25 chunks per variable instead of 1e5 files.
TILE = 64


def _dataset(spec: SweepSpec):
    import xarray as xr

    shape = spec.shape
    data = {}
    for name, (dtype, fill, desc) in VARIABLES.items():
        data[name] = (_DIMS, np.full(shape, fill, dtype=dtype), {"description": desc})
    ds = xr.Dataset(data, coords={
        "activation": np.array(spec.activations, dtype=object),
        "weight_var": ("weight_var", spec.weight_vars, {"long_name": "sigma_w^2"}),
        "bias_var": ("bias_var", spec.bias_vars, {"long_name": "sigma_b^2"})})
    ds["phase"].attrs.update(flag_values=[-1, 0, 1, 2],
                             flag_meanings="ordered critical chaotic unknown")
    ds.attrs.update(sweep_spec=spec.to_json(), runs=0, created_by="critheory sweep")
    return ds


def check_new(path) -> None:
    """Refuse a ``path`` that exists (a sweep never overwrites a store)."""
    if Path(path).exists():
        raise InvalidArgumentError(f"{path} exists: pass --resume to continue that sweep, or "
                                   "choose another --out (a sweep never overwrites a store)")


def create(path, spec: SweepSpec) -> None:
    """Initialize the store at ``path`` (which must not exist) with fill values."""
    check_new(path)
    p = Path(path)
    ds = _dataset(spec)
    chunks = (1, min(TILE, spec.shape[1]), min(TILE, spec.shape[2]))
    enc = {v: {"chunks": chunks, "compressors": None} for v in VARIABLES}
    ds.to_zarr(os.fspath(p), mode="w-", encoding=enc, consolidated=False, zarr_format=3)


def _group(path, mode: str = "r+"):
    import zarr

    return zarr.open_group(os.fspath(path), mode=mode, zarr_format=3)


def open_for_resume(path, spec: SweepSpec):
    """Check that ``path`` holds a sweep with exactly ``spec``'s settings; return its group.

    Raises
    ------
    InvalidArgumentError
        No store there, not a sweep store, or settings that differ (each difference named).
    """
    p = Path(path)
    if not p.exists():
        raise InvalidArgumentError(f"--resume: {path} does not exist")
    try:
        g = _group(p)
        stored = g.attrs["sweep_spec"]
    except Exception:  # noqa: BLE001 - anything that is not our store
        raise InvalidArgumentError(f"--resume: {path} is not a critheory sweep store") from None
    old = SweepSpec.from_json(stored)
    diff = old.differences(spec)
    if diff:
        raise InvalidArgumentError("--resume: the stored sweep has different settings: "
                                   + "; ".join(diff))
    return g


def begin_run(g) -> int:
    """Count a new run in the store's attributes; returns its number (1 for the first)."""
    n = int(g.attrs.get("runs", 0)) + 1
    g.attrs["runs"] = n
    return n


def done_mask(g) -> np.ndarray:
    """The ``done`` flags, shape (activations, σ_w² points, σ_b² points)."""
    return np.asarray(g["done"][...], dtype=bool)


class CellWriter:
    """Writes finished cells into the store's chunks (the arrays opened once)."""

    def __init__(self, g, run: int):
        self.run = run
        self.arrays = {name: g[name] for name in VARIABLES}
        self.names = [n for n in VARIABLES if n != "done"]

    def write(self, result: dict) -> None:
        """Write one cell (``result`` from :func:`~critheory.sweep.cell.run_cell`): its
        variables concurrently (different arrays, so different chunk files), then its ``done``
        flag."""
        import asyncio

        from zarr.core.sync import sync

        a, i, j = result["cell"]
        values = {n: (self.run if n == "run" else result[n]) for n in self.names}

        async def _write():
            await asyncio.gather(*(self.arrays[n]._async_array.setitem((a, i, j), v)
                                   for n, v in values.items()))

        sync(_write())
        self.arrays["done"][a, i, j] = True                 # last: the cell is complete


def write_cell(g, result: dict, run: int) -> None:
    """Write one finished cell (see :class:`CellWriter`, which keeps the arrays open)."""
    CellWriter(g, run).write(result)


def load(path):
    """The store as an in-memory :class:`xarray.Dataset`."""
    import xarray as xr

    # chunks=None: plain zarr reads (each array at once), not a dask graph of one task per
    # one-cell chunk
    with xr.open_dataset(os.fspath(path), engine="zarr", chunks=None,
                         consolidated=False) as ds:
        return ds.load()
