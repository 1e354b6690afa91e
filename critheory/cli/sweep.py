"""Sub-command ``sweep``: measured phase diagrams over (activation, σ_w², σ_b²) grids on Dask.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory sweep ACT[,ACT...] --arch A --weight-var LO:HI:N --bias-var LO:HI:N --width N
        --depth L --seeds S [--observable apjn|kernel|kurtosis|ntk] [--mu M] [--probes P]
        [--window LO:HI] [--seed SEED] [--n-boot B] [--scheduler ADDRESS | --workers K]
        [--batch-size N] --out PATH [--resume] [--plot FILE] [--json]
        [--progress | --no-progress] [--backend numpy|torch[:cuda]] [--dtype float64|float32]

Every cell is one simulation (:mod:`critheory.sweep`); cells run in batches (one task each,
0.5–2 s of work) and each finished batch goes to the zarr store ``--out`` at once, so that
``--resume`` computes only the missing cells. Needs the ``critheory[sweep]`` extra
(dask[distributed], xarray, zarr); without xarray or zarr the command says so in one line
(exit 2); without dask it runs in this process (``--workers 1``, the same numbers), and refuses
``--workers K > 1`` and ``--scheduler`` in one line.

JSON output (``--json``): ``run`` (``path``, ``run``, ``cells``, ``computed``, ``skipped``,
``workers``, ``scheduler``, ``elapsed``, ``compute_seconds``, ``batches``,
``cells_per_second``),
``agreement`` (``compared``, ``disagree``, ``z_crit``, ``max_abs_z``, ``alpha``), ``plot``.
"""
from __future__ import annotations

import importlib
import json
import sys

from critheory.cli.args import (SEED, backend_arguments, bounded_int, finite, positive,
                                progress_arguments, progress_enabled, window)
from critheory.common.limits import (MAX_DEPTH_SWEEP_CLI, MAX_N_BOOT_SWEEP_CLI, MAX_SEEDS_CLI,
                                     MAX_WIDTH_CLI)
from critheory.errors import InvalidArgumentError

__all__ = ["register"]

_MISSING = "the sweep command needs the sweep extra: pip install 'critheory[sweep]'"


def _importable(*names) -> bool:
    try:
        for name in names:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def _need_extras(args) -> None:
    """The store needs xarray and zarr; workers and schedulers need dask.distributed (without
    it, and with no --workers given, the sweep runs in this process, with a note)."""
    if not _importable("xarray", "zarr"):
        raise InvalidArgumentError(_MISSING)
    if _importable("dask", "dask.distributed"):
        return
    if args.scheduler is not None or (args.workers or 1) > 1:
        what = "--scheduler" if args.scheduler is not None else f"--workers {args.workers}"
        raise InvalidArgumentError(f"{what} needs dask.distributed: pip install "
                                   "'critheory[sweep]' (or --workers 1: in this process)")
    if args.workers is None:
        args.workers = 1
        print("critheory: note: dask is not installed: the sweep runs in this process "
              "(pip install 'critheory[sweep]' for workers)", file=sys.stderr, flush=True)


def _spec(args):
    from critheory.sweep.spec import SweepSpec, check_spec, parse_range

    acts = tuple(a.strip() for a in args.activations.split(","))
    probes = None
    if args.probes is not None:
        if str(args.probes).strip().lower() != "exact":
            try:
                probes = int(args.probes)
            except ValueError:
                raise InvalidArgumentError(f"--probes must be a positive integer, got "
                                           f"{args.probes!r}") from None
    spec = SweepSpec(
        activations=acts, arch=args.arch, mu=args.mu,
        weight_var=parse_range("--weight-var", args.weight_var, low=0.0, strict=True),
        bias_var=parse_range("--bias-var", args.bias_var, low=0.0, strict=False),
        width=args.width, depth=args.depth, seeds=args.seeds, observable=args.observable,
        root_seed=args.seed, probes=probes, window=window(args.window, ()), n_boot=args.n_boot,
        q0=args.q0, backend=args.backend, dtype=args.dtype)
    return check_spec(spec)


def _cmd_sweep(args) -> int:
    spec = _spec(args)                    # argument and budget errors before any import
    if args.plot:
        from critheory.io.plots import check_path

        check_path(args.plot)
    _need_extras(args)
    from critheory.sweep.run import check_scheduler, max_workers
    from critheory.sweep.store import check_out

    if args.scheduler is not None:
        check_scheduler(args.scheduler)
    if args.workers is not None and args.workers > max_workers():
        raise InvalidArgumentError(f"--workers must be <= {max_workers()} (twice the "
                                   f"machine's cores), got {args.workers}")
    check_out(args.out)
    from critheory.sweep.plot import agreement, plot_sweep
    from critheory.sweep.run import IN_PROCESS, run_sweep
    from critheory.sweep.store import load

    run = run_sweep(spec, args.out, resume=args.resume, scheduler=args.scheduler,
                    workers=args.workers, progress=progress_enabled(args),
                    batch_size=args.batch_size)
    ds = load(args.out)
    agr = agreement(ds)
    plot = plot_sweep(ds, args.plot) if args.plot else None
    if args.json:
        from critheory.common.jsonable import jsonable

        a = {k: v for k, v in agr.items() if k != "mask"}
        print(json.dumps(jsonable({"run": run.to_dict(), "agreement": a, "plot": plot}),
                         indent=2, allow_nan=False))
        return 0
    resumed = f", {run.skipped} were already done" if run.skipped else ""
    print(f"sweep of {run.cells} cells ({len(spec.activations)} activations x "
          f"{spec.shape[1]} weight variances x {spec.shape[2]} bias variances), {spec.arch}, "
          f"width {spec.width}, depth {spec.depth}, {spec.seeds} networks per cell, "
          f"{spec.backend} {spec.dtype}")
    where = ("in this process" if run.scheduler == IN_PROCESS else
             f"on {run.workers} workers ({run.scheduler})")
    print(f"run {run.run}: computed {run.computed} cells{resumed} in {run.batches} batches "
          f"{where} in {run.elapsed:.1f} s"
          + (f", {run.cells_per_second:.2f} cells/s" if run.computed else ""))
    print(f"chi_J vs theory: {agr['compared']} cells compared, {agr['disagree']} disagree "
          f"(|z| > {agr['z_crit']:.2f}, Bonferroni at alpha = {agr['alpha']:g}); largest |z| "
          f"= {agr['max_abs_z']:.2f}")
    print(f"wrote {run.path}")
    if plot:
        print(f"wrote {plot}")
    return 0


def register(sub) -> None:
    """Add ``sweep`` to an argparse sub-parser collection."""
    p = sub.add_parser("sweep", help="measured phase diagram: simulate a grid of (activation, "
                                     "weight_var, bias_var) on Dask, results in a zarr store")
    p.add_argument("activations", metavar="ACT[,ACT...]",
                   help="comma-separated activations (zoo names or formulas)")
    from critheory.blocks.registry import names

    p.add_argument("--arch", default="mlp", choices=names(), help="architecture (default mlp)")
    p.add_argument("--mu", type=finite, default=None,
                   help="residual strength mu (default 1; residual architectures only)")
    p.add_argument("--weight-var", required=True, metavar="LO:HI:N",
                   help="grid of sigma_w^2: N points from LO to HI")
    p.add_argument("--bias-var", required=True, metavar="LO:HI:N",
                   help="grid of sigma_b^2: N points from LO to HI")
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_CLI, "width"), required=True)
    p.add_argument("--depth", type=bounded_int(3, MAX_DEPTH_SWEEP_CLI, "depth"), required=True)
    p.add_argument("--seeds", type=bounded_int(2, MAX_SEEDS_CLI, "seeds"), required=True,
                   help="networks per cell")
    p.add_argument("--observable", default="apjn",
                   choices=("apjn", "kernel", "kurtosis", "ntk"),
                   help="recorded besides chi_J at the last layer (default apjn: chi_J only)")
    p.add_argument("--probes", default=None, metavar="P|exact",
                   help="Hutchinson probes per network (default: as simulate)")
    p.add_argument("--window", metavar="LO:HI",
                   help="depth window of the fits (default: the last half of the depths)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="root seed; each cell derives its own from it (default 0)")
    p.add_argument("--n-boot", type=bounded_int(0, MAX_N_BOOT_SWEEP_CLI, "n-boot"), default=200,
                   help="bootstrap replicates of each cell's fits (default 200)")
    p.add_argument("--q0", type=positive, default=1.0, help="input norm |x|^2/N (default 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of an existing Dask scheduler (tcp://host:8786)")
    g.add_argument("--workers", type=bounded_int(1, 4096, "workers"), default=None,
                   help="workers of the local cluster (default: the machine's cores; at most "
                        "twice the cores; 1: in this process, no cluster)")
    # at most one 64 x 64 tile (critheory.sweep.run.MAX_BATCH; not imported here: cold start)
    p.add_argument("--batch-size", type=bounded_int(1, 4096, "batch-size"), default=None,
                   metavar="N", help="cells per task (default: ~2 s of work, from the cells' "
                                     "measured cost; the numbers do not depend on it)")
    p.add_argument("--out", required=True, metavar="PATH", help="zarr store of the results")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep stored at --out (same settings)")
    p.add_argument("--plot", metavar="FILE", help="measured phase diagram (.png, .pdf, .svg)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    backend_arguments(p)
    progress_arguments(p)
    p.set_defaults(func=_cmd_sweep)
