"""The command lines and code blocks on the documentation pages run as written.

Every fenced ``bash``/``console`` block of ``docs/*.md`` is read: its ``critheory ...`` command
lines (``$ critheory ...`` in a console block; ``\\`` continuations joined, trailing ``#``
comments dropped) run in a fresh interpreter (``python -m critheory``) in one temporary folder
per page, in page order, and must exit 0. A ``python`` block whose first line is
``# NAME.py`` is a file the commands use: it is written into that folder first. Installation
and infrastructure lines (``pip``, ``dask``, ``sphinx-build``) are not run. A block the page
marks with ``<!-- example: not run (REASON) -->`` on the line before its fence is not run
(a cluster's address, a GPU), and ``<!-- example: slow -->`` runs it in the slow run only.
Python blocks with ``>>>`` are doctests (``tests/test_docstrings.py``); every other python
block must be a file (above), or the page is reported.

Every failing command of a page is reported, not only the first.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*example:\s*(not run|slow)\b\s*(?:\((.*?)\))?\s*-->\s*$")
NOT_RUN = ("pip", "dask", "sphinx-build", "python", "git")
TIMEOUT = 600
# commands that need an extra (without it they exit 2 with the install hint, as they should)
NEEDS = {"sweep": ("dask.distributed", "xarray", "zarr")}


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    body: str
    mark: str | None            # None, "not run" or "slow"
    reason: str


def blocks(page: pathlib.Path) -> list[Block]:
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mk = MARK.search(before)
        out.append(Block(page.name, line, m.group(1), m.group(2),
                         mk.group(1) if mk else None, (mk.group(2) or "") if mk else ""))
    return out


def commands(block: Block) -> list[str]:
    """The critheory command lines of a bash/console block."""
    lines, cur = [], ""
    for raw in block.body.splitlines():
        if block.lang == "console":
            if raw.startswith("$ "):
                raw = raw[2:]
            elif not cur:
                continue                    # output shown on the page
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1].strip() + " "
            continue
        line, cur = cur + raw.strip(), ""
        words = shlex.split(line, comments=True)
        if words and words[0] == "critheory":
            lines.append(shlex.join(words))
        elif words and words[0] not in NOT_RUN:
            raise AssertionError(f"{block.page}:{block.line}: a command the test does not "
                                 f"know how to run: {line!r}")
    return lines


def page_files(page: pathlib.Path) -> dict[str, str]:
    files = {}
    for b in blocks(page):
        if b.lang == "python" and ">>>" not in b.body:
            first = b.body.splitlines()[0].strip()
            m = re.fullmatch(r"#\s*([\w.-]+\.py)", first)
            if m:
                files[m.group(1)] = b.body
    return files


PAGES = sorted(DOCS.glob("*.md"))


def _cases():
    for page in PAGES:
        for slow in (False, True):
            todo = [b for b in blocks(page) if b.lang in ("bash", "console")
                    and (b.mark == "slow") == slow and b.mark != "not run" and commands(b)]
            if todo:
                marks = [pytest.mark.slow] if slow else []
                yield pytest.param(page, todo, id=f"{page.stem}{'-slow' if slow else ''}",
                                   marks=marks)


@pytest.mark.parametrize("page, todo", list(_cases()))
def test_page_commands_run(page, todo, tmp_path):
    for name, body in page_files(page).items():
        (tmp_path / name).write_text(body)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
        MPLBACKEND="Agg")
    failed = []
    for b in todo:
        for cmd in commands(b):
            words = shlex.split(cmd)
            if any("torch" in w for w in words):
                pytest.importorskip("torch")        # the page's PyTorch commands
            for module in NEEDS.get(words[1], ()):
                pytest.importorskip(module)         # the extras a command needs
            proc = subprocess.run([sys.executable, "-m", *words], cwd=tmp_path, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=TIMEOUT)
            if proc.returncode != 0:
                failed.append(f"{page.name}:{b.line}: {cmd} -> exit {proc.returncode}: "
                              f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    assert not failed, "\n".join(failed)


def test_every_code_block_is_run_or_marked():
    """No code block on a page escapes: python blocks are doctests or files the commands use,
    shell blocks hold commands this test runs, install lines, or a mark with its reason."""
    bad = []
    for page in PAGES:
        files = page_files(page)
        for b in blocks(page):
            if b.lang == "python" and ">>>" not in b.body and \
                    b.body.splitlines()[0].strip().lstrip("# ") not in files:
                bad.append(f"{b.page}:{b.line}: a python block that is neither a doctest nor "
                           "a file ('# NAME.py' first)")
            if b.mark == "not run" and not b.reason:
                bad.append(f"{b.page}:{b.line}: 'not run' needs its reason")
            if b.lang in ("bash", "console"):
                commands(b)             # raises on a command it cannot run
    assert not bad, "\n".join(bad)


def test_block_parser(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("x\n<!-- example: not run (needs a cluster) -->\n```bash\ncritheory sweep\n```\n"
                    "```console\n$ critheory analyze tanh \\\n    --json   # note\noutput line\n"
                    "$ pip install x\n```\n```python\n# m.py\nimport os\n```\n")
    a, b, c = blocks(page)
    assert (a.mark, a.reason, a.line) == ("not run", "needs a cluster", 3)
    assert commands(b) == ["critheory analyze tanh --json"] and b.mark is None
    assert page_files(page) == {"m.py": "# m.py\nimport os\n"}
