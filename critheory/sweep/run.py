"""Run a sweep on Dask: one task per missing cell, results written by the client as they come.

The task graph is plain ``dask.distributed``: :func:`run_sweep` submits
:func:`critheory.sweep.cell.run_cell` for every cell whose ``done`` flag is not set and iterates
over ``as_completed``; each finished cell is written to the store by the client
(:func:`critheory.sweep.store.write_cell`) before the next is taken. The cluster is

* a ``LocalCluster`` of ``workers`` single-threaded worker processes (default: the machine's
  cores; ``processes=False`` runs the workers as threads of this process), or
* an existing cluster given by its scheduler address (``tcp://host:8786``), used unchanged
  (its workers need critheory, and the backend asked for, installed), or
* a ``Client`` passed in (tests, notebooks).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from critheory.common.jsonable import jsonable
from critheory.common.progress import Progress
from critheory.errors import CritheoryError, InvalidArgumentError
from .cell import run_cell
from .spec import SweepSpec, check_spec
from . import store
from critheory.common.reprs import short_repr

__all__ = ["run_sweep", "SweepRun", "CellError", "check_scheduler", "max_workers"]


class CellError(CritheoryError):
    """A cell's task failed on its worker (the message names the cell and the error)."""


@dataclass(frozen=True)
class SweepRun:
    """What one run of a sweep did.

    Attributes
    ----------
    path : str
        The zarr store.
    run : int
        Number of this run (1: first; each ``--resume`` adds one).
    cells, computed, skipped : int
        Cells of the grid, cells computed by this run, cells already done before it.
    workers : int
        Workers of the cluster when the run started.
    scheduler : str
        Scheduler address.
    elapsed : float
        Wall-clock seconds of the run (cluster start-up included).
    compute_seconds : float
        Seconds from the first submitted task to the last written cell.
    """

    __repr__ = short_repr

    path: str
    run: int
    cells: int
    computed: int
    skipped: int
    workers: int
    scheduler: str
    elapsed: float
    compute_seconds: float

    @property
    def cells_per_second(self) -> float:
        """Computed cells per second of :attr:`compute_seconds` (NaN when nothing ran)."""
        return self.computed / self.compute_seconds if self.computed and \
            self.compute_seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        return jsonable({"path": self.path, "run": self.run, "cells": self.cells,
                         "computed": self.computed, "skipped": self.skipped,
                         "workers": self.workers, "scheduler": self.scheduler,
                         "elapsed": self.elapsed, "compute_seconds": self.compute_seconds,
                         "cells_per_second": self.cells_per_second})


#: Schemes of a Dask scheduler address.
_SCHEMES = ("tcp", "tls", "ucx", "inproc", "ws", "wss")


def max_workers() -> int:
    """Most workers of a local cluster: twice the machine's cores, at least 4 (each worker is a
    process of a few hundred MB)."""
    return max(4, 2 * (os.cpu_count() or 1))


def check_scheduler(address) -> str:
    """A Dask scheduler address ``[SCHEME://]HOST:PORT`` (scheme one of tcp, tls, ucx, inproc,
    ws, wss; port 1..65535), stripped; :class:`InvalidArgumentError` otherwise."""
    a = str(address).strip()
    rest = a
    if "://" in a:
        scheme, rest = a.split("://", 1)
        if scheme.lower() not in _SCHEMES:
            raise InvalidArgumentError(f"--scheduler {address!r}: not a Dask scheduler address "
                                       f"(scheme {scheme!r}; expected one of "
                                       f"{', '.join(_SCHEMES)}, e.g. tcp://host:8786)")
    host, sep, port = rest.rpartition(":")
    ok = bool(sep) and bool(host.strip("[]")) and port.isdigit() and 1 <= int(port) <= 65535 \
        and "/" not in host and " " not in host
    if not ok:
        raise InvalidArgumentError(f"--scheduler {address!r}: expected [tcp://]HOST:PORT "
                                   "(e.g. tcp://127.0.0.1:8786)")
    return a


def _client(scheduler, workers, processes):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise InvalidArgumentError(f"cannot reach the Dask scheduler at {scheduler}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else exc}") \
                from None
        except Exception as exc:  # noqa: BLE001 - a peer that is not a Dask scheduler
            # (e.g. a MemoryError from a length prefix read off a non-Dask server)
            raise InvalidArgumentError(
                f"{scheduler} did not answer as a Dask scheduler ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    n = workers if workers is not None else min(os.cpu_count() or 1, max_workers())
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                           dashboard_address=":0", silence_logs=40)
    return Client(cluster), cluster


def run_sweep(spec: SweepSpec, out, *, resume: bool = False, scheduler: str | None = None,
              workers: int | None = None, client=None, processes: bool = True,
              progress: bool = False, max_cells: int | None = None) -> SweepRun:
    """Compute every missing cell of ``spec`` on Dask and write it to the zarr store ``out``.

    Parameters
    ----------
    spec : SweepSpec
        The sweep (checked by :func:`~critheory.sweep.spec.check_spec`: over-budget sweeps are
        refused before anything starts).
    out : path
        The zarr store; it must not exist unless ``resume``.
    resume : bool
        Continue the sweep stored at ``out`` (same settings, else refused): only cells whose
        ``done`` flag is unset are computed.
    scheduler : str, optional
        Address of an existing Dask scheduler (used unchanged).
    workers : int, optional
        Workers of the LocalCluster (default: the machine's cores).
    client : dask.distributed.Client, optional
        Use this client (neither ``scheduler`` nor ``workers`` then).
    processes : bool
        LocalCluster workers as processes (default) or threads.
    progress : bool
        Progress bar on stderr.
    max_cells : int, optional
        Stop after writing this many cells (the rest stay missing, for a later ``resume``).

    Returns
    -------
    SweepRun
    """
    t0 = time.perf_counter()
    spec = check_spec(spec)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or not 1 <= workers <= max_workers()):
        raise InvalidArgumentError(f"workers must be an integer in [1, {max_workers()}] (twice "
                                   f"the machine's cores), got {workers!r}")
    if scheduler is not None:
        scheduler = check_scheduler(scheduler)
    if scheduler is None and client is None:
        # a local cluster runs on this machine: a backend it lacks (torch, CUDA) is refused now
        from critheory.simulation.backend import get_backend

        get_backend(spec.backend, spec.dtype)
    # refusals first (a store in use, an existing --out without resume, a --out that cannot
    # be written, a resume with other settings), then the cluster, then the store: a sweep that
    # cannot start leaves nothing behind (but the unlocked lock file)
    held = store.lock(out)
    try:
        return _run_locked(spec, out, resume, scheduler, workers, client, processes, progress,
                           max_cells, t0)
    finally:
        held.release()


def _run_locked(spec, out, resume, scheduler, workers, client, processes, progress, max_cells,
                t0) -> SweepRun:
    if resume:
        g = store.open_for_resume(out, spec)
        todo = [c for c, d in zip(spec.cells(), store.todo_mask(g).ravel()) if d]
    else:
        store.check_new(out)
        g = None
        todo = list(spec.cells())
    n_skip = spec.n_cells - len(todo)
    if max_cells is not None:
        todo = todo[:max(0, int(max_cells))]
    computed, compute_s, n_workers, address = 0, 0.0, 0, scheduler or ""
    own = client is None and bool(todo)
    cluster = None
    if own:
        client, cluster = _client(scheduler, workers, processes)
    try:
        if g is None:
            store.create(out, spec)
            g = store.open_store_group(out)
        run_no = store.begin_run(g)
        if todo:
            from dask.distributed import as_completed

            info = client.scheduler_info()
            n_workers = len(info.get("workers", {}))
            address = client.scheduler.address or address
            bar = Progress(len(todo), progress, unit="cells")
            writer = store.CellWriter(g, run_no)
            t1 = time.perf_counter()
            futures = [client.submit(run_cell, spec, *c, pure=False) for c in todo]
            try:
                for fut in as_completed(futures):
                    if fut.status == "error":
                        exc = fut.exception()
                        a, i, j = todo[futures.index(fut)]
                        raise CellError(
                            f"cell ({spec.activations[a]}, weight_var = "
                            f"{spec.weight_vars[i]:g}, bias_var = {spec.bias_vars[j]:g}) "
                            f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc)}")
                    writer.write(fut.result())
                    fut.release()
                    computed += 1
                    bar.update()
            finally:
                for f in futures:
                    if not f.done():
                        f.cancel()
                store.consolidate(out)          # readers see this run's metadata at once
            compute_s = time.perf_counter() - t1
        else:
            store.consolidate(out)
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return SweepRun(os.fspath(out), run_no, spec.n_cells, computed, n_skip, n_workers,
                    str(address), time.perf_counter() - t0, compute_s)
