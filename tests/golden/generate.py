"""Freeze the outputs of the golden command lines into ``tests/data/golden.json``.

Run from the repository root: ``python tests/golden/generate.py``. Each entry holds the command
line, its exit status and its standard output (parsed JSON where the command printed JSON).
``python tests/golden/generate.py --only "moments tanh --var 0.7"`` re-freezes only the entries
whose command line starts with one of the given prefixes and keeps every other entry as it is
(an intentional change, listed with its reason in CHANGES.md).
"""
from __future__ import annotations

import contextlib
import io
import json
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from commands import commands  # noqa: E402

OUT = HERE.parent / "data" / "golden.json"
TMP_TOKEN = "{tmp}"


def run(argv: list[str], tmp: str) -> dict:
    from critheory.cli.main import main

    args = [a.replace(TMP_TOKEN, tmp) for a in argv]
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = main(args)
    text = buf.getvalue().replace(tmp, TMP_TOKEN)
    try:
        out = json.loads(text)
    except ValueError:
        out = text
    return {"argv": argv, "rc": rc, "out": out, "stderr": err.getvalue()}


def main(only: list[str] | None = None) -> None:
    old = {}
    source = "critheory CLI before the block redesign (issue 12)"
    if only:
        data = json.loads(OUT.read_text())
        source = data["source"]
        old = {" ".join(e["argv"]): e for e in data["entries"]}
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for argv in commands():
            line = " ".join(argv)
            if only and not any(line.startswith(p) for p in only):
                entries.append(old[line])
                continue
            entries.append(run(argv, tmp))
            del entries[-1]["stderr"]  # progress and warnings: not part of the contract
            print(line, "->", entries[-1]["rc"], file=sys.stderr)
    OUT.write_text(json.dumps({"source": source, "entries": entries}, indent=1,
                              sort_keys=True) + "\n")
    print(f"wrote {len(entries)} entries to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[args.index("--only") + 1:] if "--only" in args else None)
