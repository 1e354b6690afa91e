"""Run the figure scripts of the docs (``docs/make_*figures.py``): what the site build and
``python docs/refresh_figures.py`` both call, so the figures of the site are made by the code of
the commit that builds it (no stale PNGs).

Conventions of a figure script (read from its source, not by importing it):

* it writes its figures into ``docs/figures/`` and exits 0; any other exit is a failure;
* ``BUILD_ARGS = [...]`` (optional, a literal list of strings): the arguments the site build
  passes, for a script whose full run re-measures an expensive frozen reference (the build
  then redraws the figure from the frozen measurement with the theory of this commit);
* a figure that needs something not installed (an extra such as ``critheory[torch]``) is kept
  as committed and the script prints one line ``critheory-docs: kept NAME (REASON)``.

The scripts run in parallel (one process per core, each single-threaded: BLAS and OpenMP
threads set to 1, matplotlib's Agg backend), each under a time limit.
"""
from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import os
import pathlib
import subprocess
import sys
import time

DOCS = pathlib.Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
KEPT = "critheory-docs: kept "
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TIME_LIMIT = 900.0


@dataclasses.dataclass(frozen=True)
class ScriptRun:
    """What one figure script did: its exit status, wall seconds, the figures it kept as
    committed (name → reason) and the tail of its output (for a failure's message)."""

    script: str
    returncode: int
    seconds: float
    kept: dict
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def scripts() -> list[pathlib.Path]:
    """The figure scripts, in name order."""
    return sorted(DOCS.glob("make_*figures.py"))


def build_args(script: pathlib.Path) -> list[str]:
    """The script's ``BUILD_ARGS`` literal (empty where it has none)."""
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "BUILD_ARGS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ValueError(f"{script.name}: BUILD_ARGS must be a list of strings")
            return value
    return []


def parse_kept(output: str) -> dict:
    """``{figure: reason}`` from the script's ``critheory-docs: kept NAME (REASON)`` lines."""
    kept = {}
    for line in output.splitlines():
        if line.startswith(KEPT):
            rest = line[len(KEPT):].strip()
            name, _, reason = rest.partition(" ")
            kept[name] = reason.strip().strip("()") or "not regenerated"
    return kept


def run_script(script: pathlib.Path, args: list[str], time_limit: float = TIME_LIMIT
               ) -> ScriptRun:
    """Run one script from the repository root in a fresh interpreter."""
    env = dict(os.environ)
    env.update({v: "1" for v in THREAD_VARS})
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=time_limit)
        code, out = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code, out = -1, out + f"\n(stopped after the {time_limit:.0f} s limit)"
    return ScriptRun(script.name, code, time.perf_counter() - t0, parse_kept(out),
                     "\n".join(out.splitlines()[-15:]))


def run_all(selected: list[pathlib.Path] | None = None, *, full: bool = False,
            workers: int | None = None, progress=None) -> list[ScriptRun]:
    """Run the figure scripts in parallel; ``full`` ignores ``BUILD_ARGS`` (re-measure)."""
    todo = scripts() if selected is None else list(selected)
    workers = workers or max(1, min(len(todo), os.cpu_count() or 1))
    # the larger scripts first: a rough guess at the longest, so the pool ends together
    todo.sort(key=lambda p: -p.stat().st_size)
    runs = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(run_script, s, [] if full else build_args(s)): s for s in todo}
        for fut in concurrent.futures.as_completed(futures):
            run = fut.result()
            runs.append(run)
            if progress is not None:
                progress(run)
    return sorted(runs, key=lambda r: r.script)
