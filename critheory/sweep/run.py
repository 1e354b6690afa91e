"""Run a sweep: batches of cells as tasks, finished batches written to the store in tiles.

The missing cells are grouped by the store's tiles (its chunks, :func:`store.tile_shape`) and
handed out in *batches*: consecutive cells (C order) of one tile, never straddling two, so that
a batch's results are one region write (:class:`~critheory.sweep.store.BatchWriter`: one chunk
put per variable, the ``done`` flags last). A batch is one task: one call of
:func:`critheory.sweep.cell.run_batch`, which runs :func:`~critheory.sweep.cell.run_cell` on
each of its cells with the cell's own seed, so the numbers do not depend on the batching.

Batch size (:class:`BatchSizer`, unless ``batch_size`` is given): as many cells as take
:data:`BATCH_SECONDS` (2 s), from the measured seconds per cell of the batches finished so far
(their workers' own clocks), or before the first one from a cheap estimate
(:func:`estimate_cell_seconds`: the simulator's cost model plus the theory and the fits; the
first batches aim at half the target, 1 s, so that a wrong estimate costs little). With several
workers, a batch also takes at most ``1/(2·workers)`` of the cells left, but not less than a
quarter of the target, 0.5 s (guided self-scheduling): the last batches shrink so that the
workers finish together, without a tail of one-cell tasks. A task therefore lasts 0.5–2 s
(unless one cell takes longer), and the per-task cost in the client's process — the
scheduler's handling and the store's write, ~20–35 ms of CPU measured — is 1–5 % of it.
Every worker (thread) has :data:`IN_FLIGHT` batches submitted (one running, one waiting), so
the round trip of a finished batch never leaves it idle; the client submits the next batch,
then writes the finished one (progress per write). On workers, a batch that finishes less than
:data:`WRITE_SECONDS` (1 s) after the last write waits for the next one to finish and is
written with it (one region write per tile they lie in): on a machine whose cores all run
workers, the client's CPU — about half of it the store's writes, ~8.5 ms a tile — is taken
from a worker (issue 32: 0.52 s of client CPU against 7.9 s in two workers, 14 batches).

Where it runs:

* in this process, batch after batch, with no Dask at all: ``workers=1`` (no cluster to
  start, nothing to serialize), or no ``dask.distributed`` installed and no workers asked for;
* a ``LocalCluster`` of ``workers`` single-threaded worker processes (default: the machine's
  cores; ``processes=False`` runs the workers as threads of this process);
* an existing cluster given by its scheduler address (``tcp://host:8786``), used unchanged
  (its workers need critheory, and the backend asked for, installed);
* a ``Client`` passed in (tests, notebooks).

Resume: a batch is written whole or not at all (one tile, flags last), so an interrupted run
leaves finished batches done and the batches in flight missing (after an exception or Ctrl-C
the finished batches still waiting are written first; a killed process loses them too, at most
about a second of finished work); ``resume`` computes the
missing cells, batched afresh (a batch found partly done, which only a lost or edited write can
leave, has its missing cells computed; its finished cells keep their values and times).
"""
from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.progress import Progress
from critheory.errors import CritheoryError, InvalidArgumentError
from .cell import run_batch
from .spec import SweepSpec, check_spec
from . import store
from critheory.common.reprs import short_repr

__all__ = ["run_sweep", "SweepRun", "CellError", "check_scheduler", "max_workers",
           "estimate_cell_seconds", "BatchSizer", "BatchPlan", "BATCH_SECONDS", "MAX_BATCH",
           "IN_FLIGHT", "IN_PROCESS", "WRITE_SECONDS", "local_cluster", "LOCAL_CLUSTER_CONFIG"]

#: Seconds of work a batch aims at (module notes).
BATCH_SECONDS = 2.0
#: Most cells in one batch (one tile of 64 × 64).
MAX_BATCH = store.TILE * store.TILE
#: Batches submitted per worker at a time (one running, one waiting).
IN_FLIGHT = 2
#: Least seconds between two writes of a run on workers: the batches that finish meanwhile
#: wait and are written together (a tile write of the 15 variables costs the client ~8.5 ms of
#: CPU, which on a machine whose cores all run workers is taken from a worker).
WRITE_SECONDS = 1.0
#: The ``scheduler`` of a run computed in this process.
IN_PROCESS = "in-process"
#: Seconds of a cell besides its simulation: the theory at the cell (fixed point, depth curves)
#: and the two fits; measured 20–50 ms on the development VM (tanh MLP, widths 8–64).
CELL_FIXED_SECONDS = 0.03


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
    batches : int
        Batches (tasks) computed by this run.
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
    batches: int = 0

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
                         "batches": self.batches, "cells_per_second": self.cells_per_second})


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


def estimate_cell_seconds(spec: SweepSpec) -> float:
    """A cheap estimate of one cell's seconds: the simulator's cost model
    (:func:`critheory.simulation.cost.estimate_seconds`, the APJN method the cell will use; twice
    that with ``observable="ntk"``) plus :data:`CELL_FIXED_SECONDS` for the theory and the fits.
    Used to size the first batches only (then the measured seconds take over).

    >>> from critheory.sweep.spec import SweepSpec
    >>> s = SweepSpec(("tanh",), "mlp", 1.0, (1.0, 2.0, 2), (0.0, 0.1, 2), 8, 6, 2)
    >>> 0.03 < estimate_cell_seconds(s) < 0.04
    True
    """
    from critheory.simulation.cost import estimate_seconds
    from critheory.simulation.engine import default_probes

    w, d, n = int(spec.width), int(spec.depth), int(spec.seeds)
    probes = default_probes(w, d, 1, n) if spec.probes is None else int(spec.probes)
    sim = estimate_seconds(w, d, n, probes)
    return (2.0 if spec.observable == "ntk" else 1.0) * sim + CELL_FIXED_SECONDS


class BatchSizer:
    """Cells per batch: ``batch_size`` if given, else as many as take :data:`BATCH_SECONDS` at
    the measured seconds per cell (before any measurement: half the target at ``estimate``
    seconds per cell); with ``workers > 1``, at most ``1/(2·workers)`` of the cells left, but
    not under a quarter of the target (module notes).

    >>> z = BatchSizer(0.1, workers=2)
    >>> z.size(1000)                          # unmeasured: 1 s at 0.1 s/cell
    10
    >>> z.observe(np.full(10, 0.02)); z.size(1000), z.size(200), z.size(20)  # 2 s at 0.02 s
    (100, 50, 25)
    >>> BatchSizer(0.1, workers=2, batch_size=7).size(3)
    7
    """

    def __init__(self, estimate: float, workers: int = 1, batch_size: int | None = None):
        self.estimate = float(estimate)
        self.workers = max(1, int(workers))
        self.batch_size = batch_size
        self.seconds = 0.0
        self.cells = 0

    def observe(self, elapsed) -> None:
        """Record the seconds of the cells of a finished batch (their ``elapsed``)."""
        e = np.asarray(elapsed, dtype=float)
        e = e[np.isfinite(e)]
        self.seconds += float(e.sum())
        self.cells += int(e.size)

    def size(self, left: int) -> int:
        """Cells of the next batch, with ``left`` cells not yet handed out."""
        if self.batch_size is not None:
            return int(self.batch_size)
        if self.cells:
            per = max(self.seconds / self.cells, 1e-6)
            n = BATCH_SECONDS / per
        else:
            per = max(self.estimate, 1e-6)
            n = 0.5 * BATCH_SECONDS / per
        if self.workers > 1:
            floor = 0.25 * BATCH_SECONDS / per
            n = min(n, max(floor, math.ceil(left / (IN_FLIGHT * self.workers))))
        return max(1, min(int(n), MAX_BATCH))


class BatchPlan:
    """The cells ``cells`` (C order) grouped by tile ``tile`` and handed out in batches that
    never straddle a tile (:meth:`take`).

    >>> b = BatchPlan([(0, i, j) for i in range(3) for j in range(3)], (1, 2, 2))
    >>> b.take(3), b.take(3), b.left
    ([(0, 0, 0), (0, 0, 1), (0, 1, 0)], [(0, 1, 1)], 5)
    """

    def __init__(self, cells, tile):
        groups: dict = {}
        for c in cells:
            groups.setdefault(store.tile_of(c, tile), []).append(tuple(int(x) for x in c))
        self.tiles = deque(groups[k] for k in sorted(groups))
        self.left = sum(len(g) for g in self.tiles)

    def take(self, n: int) -> list:
        """The next batch: at most ``n`` cells, all of one tile ([] when none are left)."""
        if not self.tiles:
            return []
        t = self.tiles[0]
        out, t[:] = t[:max(1, int(n))], t[max(1, int(n)):]
        if not t:
            self.tiles.popleft()
        self.left -= len(out)
        return out


def _cell_name(spec: SweepSpec, cell) -> str:
    a, i, j = cell
    return (f"cell ({spec.activations[a]}, weight_var = {spec.weight_vars[i]:g}, bias_var = "
            f"{spec.bias_vars[j]:g})")


def _client(scheduler, workers, processes):
    from dask.distributed import Client

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
    return local_cluster(workers, processes)


#: Dask settings of the sweep's own LocalCluster: no statistical profiler in the workers
#: (a stack sample every 10 ms), a slower system monitor (dashboard statistics only; the
#: workers' memory limits have their own monitor) and event-loop tick (a check for a blocked
#: loop). Idle, they cut Dask's own CPU from ~4.5 % to ~1.3 % of a core in the client's process
#: and from ~7 % to ~1.1 % in two workers (measured on the development VM; with the monitor at
#: 1 s and the tick at 100 ms: 1.8 % and 1.25 %): on a 2-core machine that is CPU the cells get.
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False,
                        "distributed.admin.system-monitor.interval": "5s",
                        "distributed.admin.tick.interval": "1s"}


def local_cluster(workers: int, processes: bool = True):
    """``(client, cluster)``: the LocalCluster a sweep starts, ``workers`` single-threaded
    workers (processes, or threads of this process) with :data:`LOCAL_CLUSTER_CONFIG`.

    Examples
    --------
    >>> client, cluster = local_cluster(1, processes=False)
    >>> list(client.nthreads().values())
    [1]
    >>> client.close(); cluster.close()
    """
    import dask
    from dask.distributed import Client, LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=":0", silence_logs=40)
        return Client(cluster), cluster


def _have_dask() -> bool:
    import importlib

    try:
        importlib.import_module("dask.distributed")
    except ImportError:
        return False
    return True


def run_sweep(spec: SweepSpec, out, *, resume: bool = False, scheduler: str | None = None,
              workers: int | None = None, client=None, processes: bool = True,
              progress: bool = False, max_cells: int | None = None,
              batch_size: int | None = None) -> SweepRun:
    """Compute every missing cell of ``spec`` in batches and write them to the zarr store ``out``.

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
        Workers of the LocalCluster (default: the machine's cores); 1 computes in this process
        (no Dask), as does the default where ``dask.distributed`` is not installed.
    client : dask.distributed.Client, optional
        Use this client (neither ``scheduler`` nor ``workers`` then).
    processes : bool
        LocalCluster workers as processes (default) or threads.
    progress : bool or callable
        Progress bar on stderr, updated per finished batch (or ``fn(done, total)``).
    max_cells : int, optional
        Stop after writing this many cells (the rest stay missing, for a later ``resume``).
    batch_size : int, optional
        Cells per batch (task); default: chosen from the cells' cost (module notes). The
        numbers do not depend on it.

    Returns
    -------
    SweepRun

    Examples
    --------
    >>> import tempfile, os
    >>> spec = SweepSpec(("relu",), "mlp", 1.0, (1.0, 3.0, 3), (0.0, 0.1, 2), width=8,
    ...                  depth=6, seeds=2, n_boot=10)
    >>> out = os.path.join(tempfile.mkdtemp(), "relu.zarr")
    >>> r = run_sweep(spec, out, workers=1)             # in this process
    >>> r.computed, r.scheduler, run_sweep(spec, out, resume=True, workers=1).computed
    (6, 'in-process', 0)
    """
    t0 = time.perf_counter()
    spec = check_spec(spec)
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or not 1 <= workers <= max_workers()):
        raise InvalidArgumentError(f"workers must be an integer in [1, {max_workers()}] (twice "
                                   f"the machine's cores), got {workers!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(
            batch_size, bool) or not 1 <= batch_size <= MAX_BATCH):
        raise InvalidArgumentError(f"batch_size must be an integer in [1, {MAX_BATCH}] (cells "
                                   f"of one tile), got {batch_size!r}")
    if scheduler is not None:
        scheduler = check_scheduler(scheduler)
    local = scheduler is None and client is None
    if local and workers is None:
        workers = min(os.cpu_count() or 1, max_workers()) if _have_dask() else 1
    in_process = local and workers == 1
    if not in_process and client is None and not _have_dask():
        raise InvalidArgumentError("workers and schedulers need dask.distributed: pip install "
                                   "'critheory[sweep]' (or workers=1: in this process)")
    if local:
        # a local cluster runs on this machine: a backend it lacks (torch, CUDA) is refused now
        from critheory.simulation.backend import get_backend

        get_backend(spec.backend, spec.dtype)
    # refusals first (a store in use, an existing --out without resume, a --out that cannot
    # be written, a resume with other settings), then the cluster, then the store: a sweep that
    # cannot start leaves nothing behind (but the unlocked lock file)
    held = store.lock(out)
    try:
        return _run_locked(spec, out, resume, scheduler, workers, client, processes, progress,
                           max_cells, batch_size, in_process, t0)
    finally:
        held.release()


class _Loop:
    """The client's side of a run: hands out batches, writes finished ones, counts.
    ``open_writer()`` gives the store's :class:`~critheory.sweep.store.BatchWriter` (creating a
    new store): called once the first batches are submitted, so that the workers start while
    the store is made."""

    def __init__(self, spec, plan, sizer, open_writer, bar, write_every: float = 0.0):
        self.spec, self.plan, self.sizer, self.bar = spec, plan, sizer, bar
        self.open_writer, self.writer = open_writer, None
        self.computed = self.batches = 0
        self.pending: list = []                 # finished batches not yet written
        self.write_every, self.last_write = float(write_every), -math.inf

    def next_batch(self) -> list:
        return self.plan.take(self.sizer.size(self.plan.left)) if self.plan.left else []

    def finished(self, res: dict) -> None:
        """Take a finished batch (its times already observed by the sizer): written at once, or
        with the ones finishing after it when the last write is less than ``write_every``
        seconds old; raise :class:`CellError` if one of its cells failed (after writing the
        cells it finished and every batch waiting to be written)."""
        self.batches += 1
        self.pending.append(res)
        if res["error"] is not None or time.monotonic() - self.last_write >= self.write_every:
            self.flush()
        if res["error"] is not None:
            cell, msg = res["error"]
            raise CellError(f"{_cell_name(self.spec, cell)} failed: {msg}")

    def flush(self) -> None:
        """Write the finished batches not yet written, as one write (one region write per tile
        they lie in, flags last: :class:`~critheory.sweep.store.BatchWriter`)."""
        if not self.pending:
            return
        rs, self.pending = self.pending, []
        batch = rs[0] if len(rs) == 1 else {
            k: (None if k == "error" else np.concatenate([r[k] for r in rs])) for k in rs[0]}
        n = self.writer.write(batch)
        self.last_write = time.monotonic()
        self.computed += n
        if n:
            self.bar.update(n)

    def in_process(self) -> None:
        self.writer = self.open_writer()
        while True:
            cells = self.next_batch()
            if not cells:
                return
            res = run_batch(self.spec, cells)
            self.sizer.observe(res["elapsed"])
            self.finished(res)

    def on_dask(self, client, slots: int) -> None:
        """Keep :data:`IN_FLIGHT` batches per worker thread (``slots``, re-read from the
        scheduler every few seconds: workers may join an existing cluster) submitted."""
        from dask.distributed import as_completed

        pending: dict = {}
        # the sweep's own client's event loop: as_completed() without futures and without a
        # loop tracks them on the loop of dask's *default* client, which is whichever client
        # was created last and not closed (another test's, a notebook's, one that failed to
        # connect): where that loop does not run, no future is ever reported done and the
        # loop below waits forever
        done = as_completed(loop=client.loop)
        seen = time.monotonic()

        def fill():
            while len(pending) < IN_FLIGHT * max(1, slots):
                cells = self.next_batch()
                if not cells:
                    return
                fut = client.submit(run_batch, self.spec, cells, pure=False)
                pending[fut] = cells
                done.add(fut)

        try:
            fill()
            self.writer = self.open_writer()
            for fut in done:
                cells = pending.pop(fut)
                if fut.status == "error":
                    exc = fut.exception()
                    where = _cell_name(self.spec, cells[0]) + (
                        f" and {len(cells) - 1} more of its batch" if len(cells) > 1 else "")
                    raise CellError(f"{where} failed: "
                                    f"{str(exc).splitlines()[0] if str(exc) else type(exc)}")
                res = fut.result()
                fut.release()
                self.sizer.observe(res["elapsed"])
                if time.monotonic() - seen > _RECOUNT_SECONDS:
                    slots, seen = max(slots, _slots(client)), time.monotonic()
                    self.sizer.workers = max(1, slots)
                fill()                          # the next ones before the write: no idle worker
                self.finished(res)
            self.flush()
        finally:
            for f in pending:
                f.cancel()
            if self.pending and self.writer is not None:
                # interrupted (an exception is propagating): keep the finished batches
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - the exception in flight is the one to report
                    pass


#: Seconds between two counts of the cluster's worker threads during a run.
_RECOUNT_SECONDS = 5.0


def _slots(client) -> int:
    """Worker threads of the cluster (the batches it runs at once)."""
    return int(sum(client.nthreads().values()))


def _run_locked(spec, out, resume, scheduler, workers, client, processes, progress, max_cells,
                batch_size, in_process, t0) -> SweepRun:
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
    compute_s, n_workers, address = 0.0, 0, scheduler or ""
    own = client is None and bool(todo) and not in_process
    cluster = None
    if own:
        client, cluster = _client(scheduler, workers, processes)
    loop, run_no = None, 0

    def open_store():
        nonlocal g, run_no
        if g is None:
            store.create(out, spec)
            g = store.open_store_group(out)
        run_no = store.begin_run(g)
        return g

    def open_writer():
        opened = open_store()
        return store.BatchWriter(opened, run_no)

    try:
        if todo:
            if in_process:
                n_workers, address, slots = 1, IN_PROCESS, 1
            else:
                n_workers = len(client.scheduler_info().get("workers", {}))
                address = client.scheduler.address or address
                slots = _slots(client)
            sizer = BatchSizer(estimate_cell_seconds(spec), max(1, slots), batch_size)
            tile = store.tile_for(spec) if g is None else store.tile_shape(g)
            loop = _Loop(spec, BatchPlan(todo, tile), sizer, open_writer,
                         Progress(len(todo), progress, unit="cells"),
                         0.0 if in_process else WRITE_SECONDS)
            t1 = time.perf_counter()
            try:
                if in_process:
                    loop.in_process()
                else:
                    loop.on_dask(client, slots)
            finally:
                if g is not None:
                    store.consolidate(out)      # readers see this run's metadata at once
            compute_s = time.perf_counter() - t1
        else:
            open_store()
            store.consolidate(out)
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return SweepRun(os.fspath(out), run_no, spec.n_cells, loop.computed if loop else 0, n_skip,
                    n_workers, str(address), time.perf_counter() - t0, compute_s,
                    loop.batches if loop else 0)
