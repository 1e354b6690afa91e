"""The zarr store of a sweep, written batch by batch in tiles.

Layout: one zarr group (format 3) holding the xarray Dataset with dims ``(activation,
weight_var, bias_var)``, coordinates the activation names and the two grids, and the variables
of :data:`critheory.sweep.cell.VARIABLES`, chunked in tiles of at most 64 × 64 grid points of one
activation (:data:`TILE`). The
sweep's settings (:class:`~critheory.sweep.spec.SweepSpec` as JSON) are the group attribute
``sweep_spec``; ``runs`` counts the runs that wrote to it.

:func:`create` writes the whole Dataset with fill values (NaN, ``done = False``) before any cell
is computed; :class:`BatchWriter` then writes each finished batch of cells (a batch lies in one
tile) as one region write: the tile's chunk of every variable, then its ``done`` chunk, from the
client only (one writer, so no two writes race on a tile; and no two batches in flight share a
write, since each write is one whole chunk). zarr's local store replaces a chunk file atomically
(written to a temporary file, then renamed), so a write interrupted at any moment leaves every
tile either as it was or with the new batch in it. A sweep killed at any moment therefore loses
at most the batches being computed or written (and, on workers, those finished within the last
second, which :mod:`critheory.sweep.run` writes together with the next): a cell whose flag is
not set is computed again on ``--resume``. (On other stores, such as object stores, a chunk write is a single put,
likewise all or nothing.)

Creation is atomic: :func:`create` builds the store in a hidden temporary folder next to
``path`` and renames it into place when complete, so a kill during creation leaves either no
store (a fresh run starts) or a complete one (``--resume`` works); a leftover temporary folder
is ignored. One writer at a time: :func:`lock` takes an exclusive ``fcntl`` lock on the file
``.NAME.lock`` next to the store for the whole run; a second run on the same store is refused
(exit 2) with the holder's process id, host and start time. On resume, a cell marked done whose
always-set variables (``computed_at``, ``elapsed``, ``phase``, ``run``) are not valid is
computed again (:func:`todo_mask`).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from critheory.errors import InvalidArgumentError
from .cell import PHASE_FILL, VARIABLES
from .spec import SweepSpec

__all__ = ["open_store_group", "check_new", "check_out", "create", "open_for_resume",
           "BatchWriter", "tile_for", "tile_shape", "tile_of", "load", "done_mask", "todo_mask",
           "begin_run", "lock", "StoreLock", "TILE"]

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


#: Folders no store may be written under (kernel interfaces, not files).
_FORBIDDEN = ("/proc", "/sys", "/dev")


def check_out(path) -> Path:
    """Refuse, before any work, an ``--out`` whose folder cannot hold a store: a parent that
    is missing or not a folder (a path under a regular file), not writable, or under
    ``/proc``, ``/sys`` or ``/dev``. Returns the resolved path."""
    p = Path(os.path.abspath(os.fspath(path)))
    real = os.path.realpath(p)
    for f in _FORBIDDEN:
        if real == f or real.startswith(f + os.sep):
            raise InvalidArgumentError(f"--out {path}: cannot write a store under {f}")
    parent = p.parent
    anc = parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise InvalidArgumentError(f"--out {path}: {anc} is not a folder")
    if not parent.is_dir():
        raise InvalidArgumentError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"--out {path}: the folder {parent} is not writable")
    if p.exists() and not p.is_dir():
        raise InvalidArgumentError(f"--out {path} exists and is not a store")
    return p


def check_new(path) -> None:
    """Refuse a ``path`` that exists (a sweep never overwrites a store), or whose folder cannot
    hold one (:func:`check_out`)."""
    check_out(path)
    if Path(path).exists():
        raise InvalidArgumentError(f"{path} exists: pass --resume to continue that sweep, or "
                                   "choose another --out (a sweep never overwrites a store)")


def create(path, spec: SweepSpec) -> None:
    """Initialize the store at ``path`` (which must not exist) with fill values, atomically:
    built in a temporary folder beside it, then renamed into place."""
    check_new(path)
    p = Path(os.path.abspath(os.fspath(path)))
    ds = _dataset(spec)
    enc = {v: {"chunks": tile_for(spec), "compressors": None} for v in VARIABLES}
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.creating-", dir=p.parent))
    try:
        ds.to_zarr(os.fspath(tmp / "store"), mode="w-", encoding=enc, consolidated=False,
                   zarr_format=3)
        try:
            os.rename(tmp / "store", p)      # atomic; fails if p appeared meanwhile
        except OSError:
            raise InvalidArgumentError(f"{path} appeared while the store was being created "
                                       "(another sweep?)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class StoreLock:
    """An exclusive lock on a store (see :func:`lock`); a context manager, released on
    :meth:`release` or exit (and by the kernel when the process dies)."""

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock(path) -> StoreLock:
    """Take the exclusive writer lock of the store ``path`` (the file ``.NAME.lock`` in its
    folder, created if needed; it stays there, unlocked, after the run).

    Raises
    ------
    InvalidArgumentError
        Another process holds it (named: pid, host, since when), or the folder cannot hold the
        lock file.
    """
    import fcntl

    p = check_out(path)
    lp = p.parent / f".{p.name}.lock"
    try:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InvalidArgumentError(f"--out {path}: cannot create the lock file {lp}: "
                                   f"{exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            holder = {}
        os.close(fd)
        who = (f"process {holder.get('pid', '?')} on {holder.get('host', '?')} since "
               f"{holder.get('since', '?')}") if holder else "another process"
        raise InvalidArgumentError(f"the sweep store {path} is in use by {who} (one writer "
                                   "at a time: wait for it, or stop it)") from None
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)
    return StoreLock(fd, lp)


def open_store_group(path, mode: str = "r+"):
    """The zarr (format 3) group of a sweep store."""
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
        g = open_store_group(p)
        stored = g.attrs["sweep_spec"]
    except Exception:  # noqa: BLE001 - anything that is not our store
        raise InvalidArgumentError(f"--resume: {path} is not a critheory sweep store") from None
    try:
        missing = [v for v in VARIABLES if v not in g]
    except Exception:  # noqa: BLE001 - an unreadable group
        missing = list(VARIABLES)
    if missing:
        raise InvalidArgumentError(
            f"--resume: {path} is an incomplete sweep store (its creation was interrupted, "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} missing): remove it "
            "and start the sweep again")
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


def todo_mask(g) -> np.ndarray:
    """Cells to compute on resume: not done, or marked done with an invalid always-set
    variable (``computed_at``/``elapsed`` not finite, ``phase`` at its fill value, ``run`` 0):
    a cell a lost write left marked done without its values."""
    done = done_mask(g)
    bad = ~np.isfinite(np.asarray(g["computed_at"][...], dtype=float))
    bad |= ~np.isfinite(np.asarray(g["elapsed"][...], dtype=float))
    bad |= np.asarray(g["phase"][...]) == PHASE_FILL
    bad |= np.asarray(g["run"][...]) <= 0
    return ~done | bad


def tile_for(spec: SweepSpec) -> tuple[int, int, int]:
    """The tile (chunk shape) :func:`create` gives a new store of ``spec``: up to
    :data:`TILE` × :data:`TILE` grid points of one activation.

    >>> tile_for(SweepSpec(("tanh", "relu"), "mlp", 1.0, (1.0, 2.0, 100), (0.0, 0.1, 9), 8, 6, 2))
    (1, 64, 9)
    """
    return 1, min(TILE, spec.shape[1]), min(TILE, spec.shape[2])


def tile_shape(g) -> tuple[int, int, int]:
    """The store's tile: the chunk shape of its arrays (``(1, ti, tj)``), read from the store
    (so a store keeps the layout it was created with)."""
    return tuple(int(c) for c in g["done"].chunks)


def tile_of(cell, tile) -> tuple[int, int, int]:
    """The tile (chunk index) holding ``cell``.

    >>> tile_of((1, 70, 3), (1, 64, 64))
    (1, 1, 0)
    """
    return tuple(int(c) // int(t) for c, t in zip(cell, tile))


class BatchWriter:
    """Writes finished batches into the store, one region write per batch (the client only).

    The writer keeps the store's arrays in memory (read once; a sweep of the largest size,
    1e5 cells, is ~12 MB) and, for a finished batch, sets its cells there and writes the whole
    tile holding them: every variable's chunk of that tile concurrently (each a complete chunk,
    so zarr writes it without reading it first), then the tile's ``done`` chunk. A batch lies
    in one tile (:mod:`critheory.sweep.run` never lets one straddle two), so its write is one
    chunk put per variable and its flags one put: all or nothing on a local store, whose puts
    are atomic (temporary file, then rename). Cells of the tile written earlier are rewritten
    with the values they have (one writer holds the store's lock, so memory and store agree).
    """

    def __init__(self, g, run: int):
        self.run = run
        self.arrays = {name: g[name] for name in VARIABLES}
        self.names = [n for n in VARIABLES if n != "done"]
        self.tile = tile_shape(g)
        self.shape = tuple(int(n) for n in g["done"].shape)
        self.memory = {n: np.asarray(a[...]) for n, a in self.arrays.items()}

    def _region(self, t) -> tuple:
        return tuple(slice(k * n, min((k + 1) * n, m)) for k, n, m in zip(t, self.tile,
                                                                           self.shape))

    def write(self, batch: dict) -> int:
        """Write ``batch`` (from :func:`~critheory.sweep.cell.run_batch`); returns its number
        of cells."""
        import asyncio

        from zarr.core.sync import sync

        cells = np.asarray(batch["cells"], dtype=np.int64).reshape(-1, 3)
        if not len(cells):
            return 0
        idx = tuple(cells.T)
        for n in self.names:
            self.memory[n][idx] = self.run if n == "run" else batch[n]
        regions = [self._region(t) for t in sorted({tile_of(c, self.tile) for c in cells})]

        async def _write(names):
            await asyncio.gather(*(self.arrays[n]._async_array.setitem(r, self.memory[n][r])
                                   for n in names for r in regions))

        sync(_write(self.names))
        self.memory["done"][idx] = True
        sync(_write(("done",)))                             # last: the cells are complete
        return len(cells)


def consolidate(path) -> None:
    """Write the store's consolidated metadata (one read gives every array's metadata and the
    attributes, ``runs`` included), after each run; :func:`load` and
    ``xarray.open_zarr(path)`` read it."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        # zarr 3: consolidated metadata is an extension of the v3 format that zarr-python and
        # xarray read (and say so in a warning): what the consolidated stores of zarr v2 were
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(os.fspath(path))


def load(path):
    """The store as an in-memory :class:`xarray.Dataset`."""
    import xarray as xr

    # chunks=None: plain zarr reads (each array at once), not a dask graph of one task per
    # one-cell chunk
    try:
        with xr.open_dataset(os.fspath(path), engine="zarr", chunks=None,
                             consolidated=True) as ds:
            return ds.load()
    except (KeyError, ValueError, OSError):
        # a store being written by its first run: consolidated at the end of the run
        with xr.open_dataset(os.fspath(path), engine="zarr", chunks=None,
                             consolidated=False) as ds:
            return ds.load()
