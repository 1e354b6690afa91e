"""Regenerate the figures of the docs (``docs/figures``) from their scripts.

    python docs/refresh_figures.py                   # every docs/make_*figures.py, in parallel
    python docs/refresh_figures.py make_ntk_figures  # some of them (names without .py)
    python docs/refresh_figures.py --full            # also re-measure frozen references

The site build (``sphinx-build ... docs ...``) runs the same scripts the same way before it
renders the pages (``docs/_ext/figure_runner.py``), so the site always shows the figures of the
code that builds it; this command refreshes the committed PNGs that the markdown pages show on
GitHub. A script's ``BUILD_ARGS`` (``make_train_nlo_figures.py``: ``--plot-only``, the trained
ensembles are minutes of CPU) are used unless ``--full`` is given. Exit status 1 when a script
failed.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "_ext"))

import figure_runner  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scripts", nargs="*", help="script names without .py (default: all)")
    ap.add_argument("--full", action="store_true",
                    help="ignore the scripts' BUILD_ARGS (re-measure frozen references)")
    a = ap.parse_args(argv)
    known = {p.stem: p for p in figure_runner.scripts()}
    unknown = [s for s in a.scripts if s not in known]
    if unknown:
        ap.error(f"no docs/{unknown[0]}.py (known: {', '.join(known)})")
    selected = [known[s] for s in a.scripts] or None

    def report(run):
        kept = "".join(f"; kept {k} ({v})" for k, v in run.kept.items())
        print(f"{run.script}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.1f} s{kept}",
              flush=True)
        if not run.ok:
            print(run.output_tail, flush=True)

    runs = figure_runner.run_all(selected, full=a.full, progress=report)
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
