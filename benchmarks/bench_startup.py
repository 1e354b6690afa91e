"""Cold-start times of the ``critheory`` command line.

Every command runs in a fresh Python process (``subprocess``); the wall time of the whole process
is measured, best of ``--repeat`` runs (the machine is shared and noisy: the minimum is the
least disturbed run). The baseline of the same run is ``python -c pass`` (interpreter start-up
alone), and every command is also reported as a ratio to it. For reference, the same is measured
for ``python -c "import numpy"``, ``import sympy`` and ``import scipy.special`` (the heavy
dependencies whose import a command may or may not need), together with the cumulative import
time that ``python -X importtime`` reports for each.

Run from the repository root with the package installed (``pip install -e .``)::

    python benchmarks/bench_startup.py                # best of 5
    python benchmarks/bench_startup.py --repeat 9 --json
    python benchmarks/bench_startup.py --modules      # also: which heavy modules each loads

A machine that never ran critheory: the child processes get an empty zoo cache folder of their
own (``CRITHEORY_CACHE_DIR`` in the temporary directory), so the first run of each command is
what a new user sees once (it derives and stores the zoo entry, ~1 s); it is reported as
*first run*, apart from the best of the later cold runs (``--cache-dir`` reuses a folder).

Commands run as ``critheory ...`` when the console script sits next to the interpreter (a
virtual environment), else as ``python -m critheory ...`` (``--entry`` chooses).

Before and after in one run: ``--baseline-tree DIR`` (a checkout of another commit, e.g.
``git archive <commit> | tar -x -C DIR``) runs every command also as ``python -m critheory``
with ``PYTHONPATH=DIR`` (and this checkout with ``PYTHONPATH`` set to it), the two
interleaved command by command, each with a zoo cache folder and bytecode folder of its own
(warmed by the untimed first run), and prints both CPU times and their ratio.

Bytecode: an installed package runs from ``.pyc`` files, but a development checkout may run with
``PYTHONDONTWRITEBYTECODE=1`` (then every module of critheory is compiled from source at every
start, ~0.1 s). By default the child processes therefore write and read their bytecode under a
private ``PYTHONPYCACHEPREFIX`` (a folder in the temporary directory, nothing is written into
the source tree), after one untimed warm-up run of each command; ``--bytecode as-is`` keeps the
environment's settings instead.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

#: (label, arguments of critheory)
COMMANDS = [
    ("--help", ["--help"]),
    ("moments tanh", ["moments", "tanh"]),
    ("moments gelu", ["moments", "gelu"]),
    ("point tanh", ["point", "tanh", "--weight-var", "1", "--bias-var", "0"]),
    ("analyze tanh", ["analyze", "tanh"]),
    ("line tanh", ["line", "tanh", "--bias-var", "0:1:11"]),
    ("depth tanh", ["depth", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "10"]),
    ("ntk tanh", ["ntk", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "10"]),
    ("finite-width tanh", ["finite-width", "tanh", "--weight-var", "1", "--bias-var", "0",
                           "--depth", "10"]),
    ("spectrum tanh", ["spectrum", "tanh", "--weight-var", "1", "--bias-var", "0",
                       "--depth", "10"]),
    ("recipe tanh", ["recipe", "tanh", "--width", "64", "--depth", "10"]),
    ("sde relu", ["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.3"]),
    ("simulate tanh (small)", ["simulate", "tanh", "--weight-var", "1", "--bias-var", "0",
                               "--width", "16", "--depth", "8", "--seeds", "2", "--n-boot", "50",
                               "--no-progress"]),
]

#: heavy dependencies, for reference
IMPORTS = ["numpy", "sympy", "scipy.special"]

_HEAVY = ("sympy", "scipy", "scipy.special", "mpmath", "matplotlib")


def _entry(kind: str) -> list[str]:
    script = pathlib.Path(sys.executable).with_name("critheory")
    if kind == "script" or (kind == "auto" and script.exists()):
        if not script.exists():
            raise SystemExit(f"no console script at {script}")
        return [str(script)]
    return [sys.executable, "-m", "critheory"]


_ENV: dict = dict(os.environ)


def _bytecode_env(mode: str) -> str:
    """Set up the environment of the child processes (see the module docstring)."""
    if mode == "as-is":
        return ("as-is (PYTHONDONTWRITEBYTECODE="
                f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")
    prefix = os.path.join(tempfile.gettempdir(), "critheory-bench-startup-pycache")
    _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    _ENV["PYTHONPYCACHEPREFIX"] = prefix
    return f"cached under {prefix}"


_FIRST: dict = {}


def wall(cmd: list[str], repeat: int, warmup: bool = True, env: dict | None = None,
         cwd: str | None = None) -> tuple[float, int, float]:
    """Best wall time of ``repeat`` cold runs of cmd (seconds), the exit status and the best CPU
    time of the child (user + system, the figure issue 32 states: less disturbed by a shared
    machine than the wall time); the untimed warm-up run's time is kept in ``_FIRST``."""
    best = best_cpu = float("inf")
    rc = 0
    env = _ENV if env is None else env
    if warmup:
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       cwd=cwd)
        _FIRST[tuple(cmd)] = time.perf_counter() - t0
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                           cwd=cwd)
        best = min(best, time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_cpu = min(best_cpu, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        rc = rc or p.returncode
    return best, rc, best_cpu


def importtime(module: str, repeat: int) -> float:
    """Best cumulative import time of ``module`` reported by ``python -X importtime`` (s)."""
    best = float("inf")
    for _ in range(repeat):
        p = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_ENV)
        for line in p.stderr.splitlines():
            parts = [s.strip() for s in line.split("|")]
            if len(parts) == 3 and parts[2] == module:
                best = min(best, int(parts[1]) * 1e-6)
    return best


def loaded_heavy(args: list[str]) -> list[str]:
    """The heavy modules a command imports (run in-process in a fresh interpreter)."""
    code = ("import sys, runpy\n"
            f"sys.argv = ['critheory'] + {args!r}\n"
            "try:\n    runpy.run_module('critheory', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(','.join(m for m in {_HEAVY!r} if m in sys.modules), file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=_ENV)
    last = p.stderr.strip().splitlines()[-1:] or [""]
    return [m for m in last[0].split(",") if m]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command (best is kept)")
    ap.add_argument("--entry", choices=("auto", "script", "module"), default="auto")
    ap.add_argument("--modules", action="store_true",
                    help="also list the heavy modules each command imports")
    ap.add_argument("--bytecode", choices=("cache", "as-is"), default="cache",
                    help="bytecode of the child processes (see the module docstring)")
    ap.add_argument("--cache-dir", default=None,
                    help="zoo cache folder of the child processes (default: a new empty one)")
    ap.add_argument("--baseline-tree", default=None, metavar="DIR",
                    help="another checkout: every command also runs from it (before/after)")
    ap.add_argument("--only", nargs="+", default=None, metavar="LABEL",
                    help="run only the commands whose label starts with one of these")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.baseline_tree:
        return _before_after(args)
    _ENV["CRITHEORY_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="critheory-bench-")
    entry = _entry(args.entry)
    env_note = os.environ.get("PYTHONPATH", "")
    bytecode = _bytecode_env(args.bytecode)

    base, _, _ = wall([sys.executable, "-c", "pass"], args.repeat)
    rows = []
    for mod in IMPORTS:
        t, rc, cpu = wall([sys.executable, "-c", f"import {mod}"], args.repeat)
        rows.append({"what": f"import {mod}", "kind": "import", "wall_s": t, "cpu_s": cpu,
                     "rc": rc,
                     "importtime_s": importtime(mod, args.repeat)})
    for label, cargs in COMMANDS:
        t, rc, cpu = wall(entry + cargs, args.repeat)
        row = {"what": f"critheory {label}", "kind": "command", "wall_s": t, "cpu_s": cpu,
               "rc": rc,
               "first_run_s": _FIRST.get(tuple(entry + cargs))}
        if args.modules:
            row["heavy_modules"] = loaded_heavy(cargs)
        rows.append(row)

    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "entry": entry, "repeat": args.repeat,
                          "bytecode": bytecode, "pythonpath": env_note, "baseline_s": base,
                          "rows": rows}, indent=2))
        return 0
    print(f"cold-process wall time, best of {args.repeat}; entry: {' '.join(entry)}"
          + (f"; PYTHONPATH={env_note}" if env_note else "") + f"\nbytecode: {bytecode}")
    print(f"baseline `python -c pass`: {base * 1e3:.0f} ms\n")
    print(f"{'':34} {'wall':>8} {'x base':>7} {'CPU':>8} {'-X importtime':>14} {'first run':>10}")
    for r in rows:
        it = f"{r['importtime_s'] * 1e3:11.0f} ms" if "importtime_s" in r else ""
        if r.get("first_run_s") is not None:
            it = f"{it:>14} {r['first_run_s'] * 1e3:7.0f} ms"
        bad = "" if r["rc"] == 0 else f"   exit {r['rc']}"
        mods = (f"   [{', '.join(r['heavy_modules']) or '-'}]" if "heavy_modules" in r else "")
        print(f"{r['what']:34} {r['wall_s'] * 1e3:6.0f} ms {r['wall_s'] / base:6.1f}x "
              f"{r['cpu_s'] * 1e3:5.0f} ms {it:>14}"
              f"{bad}{mods}")
    return 0


def _tree_env(tree: str, tag: str) -> dict:
    """The environment of the child processes running critheory from ``tree``: its own zoo
    cache and bytecode folders (in the temporary directory)."""
    env = dict(_ENV)
    env["PYTHONPATH"] = os.path.abspath(tree)
    env["CRITHEORY_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"critheory-bench-{tag}-")
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(),
                                              f"critheory-bench-startup-pycache-{tag}")
    return env


def _before_after(args) -> int:
    """Every command from ``--baseline-tree`` (before) and from this checkout (after),
    interleaved, best CPU of ``--repeat`` each."""
    _bytecode_env(args.bytecode)
    _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    here = str(pathlib.Path(__file__).resolve().parent.parent)
    envs = {"before": _tree_env(args.baseline_tree, "before"), "after": _tree_env(here, "after")}
    cmds = [(label, a) for label, a in COMMANDS
            if not args.only or any(label.startswith(o) for o in args.only)]
    rows = []
    for label, cargs in cmds:
        row = {"what": f"critheory {label}"}
        for tag, env in envs.items():
            # from a neutral folder: `python -m` puts the working folder first on sys.path
            _, rc, cpu = wall([sys.executable, "-m", "critheory", *cargs], args.repeat, env=env,
                              cwd=tempfile.gettempdir())
            row[f"{tag}_cpu_s"], row[f"{tag}_rc"] = cpu, rc
        rows.append(row)
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "repeat": args.repeat,
                          "baseline_tree": args.baseline_tree, "load": load, "rows": rows},
                         indent=2))
        return 0
    print(f"CPU seconds (user + system) of a fresh process, best of {args.repeat}; before: "
          f"{args.baseline_tree}, after: {here}; load {load}")
    print(f"{'':34} {'before':>8} {'after':>8} {'after/before':>13}")
    for r in rows:
        bad = "" if r["before_rc"] == 0 and r["after_rc"] == 0 else \
            f"   exit {r['before_rc']}/{r['after_rc']}"
        print(f"{r['what']:34} {r['before_cpu_s']:8.3f} {r['after_cpu_s']:8.3f} "
              f"{r['after_cpu_s'] / r['before_cpu_s']:13.2f}{bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
