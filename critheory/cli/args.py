"""The argument helpers every command shares: argparse types, the common options, output
formatting and the network a command's arguments name.

Every command family (``cli/theory.py``, ``cli/simulation.py``, ...) imports its parsers and
helpers from here and nothing private from another module; this module imports no other module
of :mod:`critheory.cli` (the import graph of the command line is acyclic, see
``tests/test_cli_shape.py``). Like the parser, it imports nothing heavy at import time: numpy
is imported inside the functions that need it.

Examples
--------
>>> from critheory.cli.args import params, parse_grid
>>> params(["a=0.5"])
{'a': 0.5}
>>> parse_grid("0:1:3").tolist()
[0.0, 0.5, 1.0]
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from critheory.common.limits import MAX_LINE_POINTS, MAX_PHASE_GRID_CLI
from critheory.errors import CritheoryError, InvalidArgumentError

__all__ = ["params", "parse_grid", "bounded_int", "finite", "bounded_float", "positive",
           "nonnegative", "unit_interval", "value_range", "grid_size", "correlation",
           "probes", "window", "progress_enabled", "fmt", "fmt_number", "dump", "rows",
           "common_arguments", "progress_arguments", "backend_arguments", "preflight",
           "SIMULATION_ONLY", "SEED", "ACTIVATION_HELP", "takes_tokens"]

#: help of the activation argument of every command
ACTIVATION_HELP = "zoo name (relu, tanh, gelu, ...) or a formula in x"


# ------------------------------------------------------------------ argparse types
def params(items) -> dict:
    """``--param NAME=VALUE`` items → ``{NAME: float(VALUE)}`` (one-line error otherwise)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise CritheoryError(f"--param expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise CritheoryError(f"--param {k}: {v!r} is not a number") from None
    return out


def parse_grid(spec: str):
    """``"START:STOP:NUM"`` → ``numpy.linspace(START, STOP, NUM)``; a single number is allowed
    (at most :data:`~critheory.common.limits.MAX_LINE_POINTS` points).

    >>> parse_grid("0:1:3").tolist()
    [0.0, 0.5, 1.0]
    """
    import numpy as np

    parts = str(spec).split(":")
    try:
        if len(parts) == 1:
            a = float(parts[0])
            if not np.isfinite(a):
                raise InvalidArgumentError(f"grid value must be finite, got {spec!r}")
            return np.array([a])
        if len(parts) != 3:
            raise ValueError
        a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise InvalidArgumentError(f"grid must be START:STOP:NUM, got {spec!r}") from None
    if n < 1:
        raise InvalidArgumentError(f"grid {spec!r} is empty (NUM must be >= 1)")
    if n > MAX_LINE_POINTS:
        raise InvalidArgumentError(f"grid {spec!r} has {n} points; at most {MAX_LINE_POINTS} "
                                   "per command (split the range)")
    if not (np.isfinite(a) and np.isfinite(b)):
        raise InvalidArgumentError(f"grid {spec!r} has non-finite ends")
    return np.linspace(a, b, n)


def bounded_int(lo: int, hi: int, what: str = "value", why: str = ""):
    """argparse type: an integer in [lo, hi] (``why``: what the upper limit protects)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{what} must be >= {lo}, got {v}")
        if v > hi:
            raise argparse.ArgumentTypeError(f"{what} must be <= {hi:.6g}, got {v}"
                                             + (f" ({why})" if why else ""))
        return v
    return parse


def finite(text: str) -> float:
    """argparse type: a finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def bounded_float(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """argparse type: a finite number in ``[lo, hi]`` (``(lo, hi]`` where ``lo_open``)."""
    def parse(text: str) -> float:
        v = finite(text)
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise argparse.ArgumentTypeError(
                f"expected a number {'>' if lo_open else '>='} {lo:g}, got {text!r}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"expected a number <= {hi:g}, got {text!r}")
        return v
    return parse


#: argparse types: a finite number > 0, >= 0, in [0, 1]
positive = bounded_float(0.0, lo_open=True)
nonnegative = bounded_float(0.0)
unit_interval = bounded_float(0.0, 1.0)
#: argparse type of a root seed
SEED = bounded_int(0, 2 ** 63 - 1, "seed")


def value_range(text: str) -> tuple[float, float]:
    """argparse type: ``LO:HI``, two finite numbers with LO < HI."""
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"expected finite LO < HI, got {text!r}")
    return lo, hi


def grid_size(text: str) -> int:
    """argparse type: points per axis of a phase diagram, 2..MAX_PHASE_GRID_CLI."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 2 <= n <= MAX_PHASE_GRID_CLI:
        raise argparse.ArgumentTypeError(f"must be between 2 and {MAX_PHASE_GRID_CLI}, got {n}")
    return n


def correlation(text: str) -> float | None:
    """argparse type: a correlation in [-1, 1], or ``none``."""
    if str(text).strip().lower() == "none":
        return None
    v = finite(text)
    if not -1.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"a correlation must lie in [-1, 1], got {text!r}")
    return v


def probes(spec):
    """``--probes P|exact`` → None (not given), ``"exact"`` or a positive integer."""
    if spec is None:
        return None
    s = str(spec).strip().lower()
    if s == "exact":
        return "exact"
    try:
        v = int(s)
    except ValueError:
        raise InvalidArgumentError(f"--probes must be a positive integer or 'exact', got "
                                   f"{spec!r}") from None
    if v < 1:
        raise InvalidArgumentError(f"--probes must be >= 1, got {v}")
    return v


def window(spec, empty=None):
    """``--window LO:HI`` → ``(LO, HI)`` (two integers); ``empty`` when not given."""
    if spec is None:
        return empty
    parts = str(spec).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = int(parts[0]), int(parts[1])
    except ValueError:
        raise InvalidArgumentError(f"--window must be LO:HI (two integers), got {spec!r}") \
            from None
    return lo, hi


def progress_enabled(args) -> bool:
    """``--progress`` / ``--no-progress``, by default a progress bar when stderr is a terminal."""
    if args.progress is not None:
        return args.progress
    return sys.stderr.isatty()


# ------------------------------------------------------------------ output
def fmt(x, spec=".10g") -> str:
    """A number for the text tables (``-`` for None; strings as they are)."""
    return "-" if x is None else format(x, spec) if isinstance(x, (int, float)) else str(x)


def fmt_number(x, spec=".6g") -> str:
    """A number for the simulation tables: ``-`` for None and non-finite values."""
    if x is None:
        return "-"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return format(v, spec) if math.isfinite(v) else "-"


def dump(obj) -> None:
    """Print an object as JSON (numpy arrays and scalars converted; no NaN)."""
    from critheory.common.jsonable import jsonable

    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))


def rows(depth: int, l0: int, n: int = 15) -> list[int]:
    """The layers a text table shows: about ``n`` geometrically spaced, with ``l0`` and the
    last."""
    import numpy as np

    pts = np.unique(np.round(np.geomspace(1, depth, min(depth, n))).astype(int))
    return sorted(set(pts.tolist()) | {l0, depth})


# ------------------------------------------------------------------ common options
def common_arguments(p, plot: bool = True, tokens: bool = False) -> None:
    """The activation, --param, --arch, --mu (and --plot) of every theory command; ``tokens``:
    the command also takes the token architectures of the registry (``names(tokens=None)``)."""
    from critheory.blocks.registry import names

    p.add_argument("activation", help=ACTIVATION_HELP)
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="value of a parameter of the activation (repeatable)")
    p.add_argument("--arch", default="mlp", choices=names(tokens=None if tokens else False),
                   help="architecture (default mlp)")
    p.add_argument("--mu", type=finite, default=None,
                   help="residual strength mu (default 1; residual architectures only)")
    if plot:
        p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")


def progress_arguments(p) -> None:
    """``--progress | --no-progress`` (default: a progress bar when stderr is a terminal)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")


def backend_arguments(p) -> None:
    """``--backend numpy|torch[:cuda]`` and ``--dtype float64|float32`` (simulate, validate,
    sweep; :mod:`critheory.simulation.backend`)."""
    p.add_argument("--backend", default="numpy", metavar="numpy|torch[:cuda]",
                   help="array backend of the simulator: numpy (default), torch (CPU), "
                        "torch:cuda (GPU); the random numbers are numpy's whatever the backend")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="floating-point type of the simulation (default float64)")


#: options of a theory command that only the simulation reads (default None): given without
#: ``--simulate`` they are refused, not ignored
SIMULATION_ONLY = ("probes",)


def preflight(args, budget=None) -> None:
    """Refuse before any work what a command cannot do: ``--simulate`` without ``--width``,
    simulation options without ``--simulate``, a simulation over its budget (``budget()``
    raises), a ``--plot`` file that cannot be written."""
    if hasattr(args, "simulate") and not args.simulate:
        for opt in SIMULATION_ONLY:
            if getattr(args, opt, None) is not None:
                raise InvalidArgumentError(f"--{opt} needs --simulate")
    if getattr(args, "simulate", False):
        if args.width is None:
            raise InvalidArgumentError("--simulate needs --width")
        if budget is not None:
            budget()
    if getattr(args, "plot", None):
        from critheory.io.plots import check_path

        check_path(args.plot)


# ------------------------------------------------------------------ networks
def takes_tokens(net) -> bool:
    """Whether a network acts on several tokens or mixes them (attention): the commands send
    it to their token route (:mod:`critheory.cli.transformer`). The one test of the route,
    asked of the network, not of its name."""
    return net.tokens > 1 or net.capabilities.mixes_tokens
