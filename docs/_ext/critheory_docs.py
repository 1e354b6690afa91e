"""Sphinx extension of critheory's docs: pages generated from the code at every build.

* ``_generated/api.rst``: the API reference, one entry per name of ``critheory.__all__`` and
  ``critheory.torch.__all__`` (autodoc reads the numpy-style docstrings), grouped by module;
* ``_generated/cli.md``: the CLI reference, the ``--help`` of ``critheory`` and of every
  sub-command as ``critheory.cli.main.build_parser`` prints them;
* ``_generated/gallery.md``: every figure of docs/figures under the script that makes it, with
  its command and code (a figure no script writes fails the build under ``-W``);
* ``_generated/notebooks/*.ipynb``: copies of ``notebooks/`` (myst-nb renders their stored
  outputs); links ``../notebooks/X.ipynb`` in the pages and ``../docs/X.md`` in the
  notebooks are pointed at the rendered copies.

Nothing here is committed (docs/_generated is ignored by git), so none of it can drift.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import os
import pathlib
import re

DOCS = pathlib.Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
OUT = DOCS / "_generated"
CLI_COLUMNS = "100"
# critheory.torch's modules import torch; where it is not installed autodoc reads them with
# torch mocked (their signatures and docstrings do not need it)
TORCH_MOCKED = ["torch"]


def _section(title: str, char: str) -> str:
    return f"{title}\n{char * len(title)}\n\n"


def api_page() -> str:
    import critheory
    import critheory.torch
    from sphinx.ext.autodoc.mock import mock

    with mock(TORCH_MOCKED):        # the docs build without PyTorch (conf.autodoc_mock_imports)
        return _api_page(critheory, critheory.torch)


def _api_page(critheory, torch_api) -> str:

    groups: dict[str, list[tuple[str, str]]] = {}
    for ns, names in (("critheory", critheory.__all__),
                      ("critheory.torch", torch_api.__all__)):
        mod = critheory if ns == "critheory" else torch_api
        for name in names:
            if name in ("__version__", "torch"):
                continue
            obj = getattr(mod, name)
            where = getattr(obj, "__module__", None) or ns
            where = ".".join(where.split(".")[:3]) if ns == "critheory" else ns
            kind = "autoclass" if inspect.isclass(obj) else "autofunction"
            groups.setdefault(where, []).append((f"{ns}.{name}", kind))
    text = [_section("API reference", "="),
            "Generated at each build from the docstrings of the public API: every name of "
            "``critheory.__all__`` (``import critheory as ct``; ``ct.__version__`` is "
            f"``{critheory.__version__}``) and of ``critheory.torch.__all__`` (needs "
            "``critheory[torch]``), grouped by the module that defines it. Each docstring "
            "carries a runnable example (pytest collects them as doctests).\n\n",
            ".. autosummary::\n\n"]
    for where in sorted(groups):
        text += [f"   {qual}\n" for qual, _ in groups[where]]
    text.append("\n")
    for where in sorted(groups):
        text.append(_section(f"``{where}``", "-"))
        for qual, kind in groups[where]:
            text.append(f".. {kind}:: {qual}\n")
            if kind == "autoclass":
                text.append("   :members:\n   :undoc-members: false\n")
            text.append("\n")
    return "".join(text)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_page() -> str:
    from critheory.cli.main import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = CLI_COLUMNS            # argparse wraps at the terminal's width
    try:
        parser = build_parser()
        text = ["# Command-line reference\n\n",
                "Generated at each build from the argument parser of `critheory` "
                "(`critheory.cli.main.build_parser`): what `critheory --help` and "
                "`critheory COMMAND --help` print. What the commands compute is described on the "
                "theory pages ([MLP](../mlp.md) first); their JSON keys in the README.\n\n",
                "```text\n", parser.format_help(), "```\n\n"]
        for name, sub in _subparsers(parser).items():
            text += [f"## `critheory {name}`\n\n", "```text\n", sub.format_help(), "```\n\n"]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "".join(text)


def figure_patterns(script: pathlib.Path) -> list[re.Pattern]:
    """The PNG names a docs script writes: its string literals ending in ``.png`` (an f-string's
    fields match any name part)."""
    out = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.endswith(".png") and "*" not in text and " " not in text:
                out.append(re.compile(re.escape(text)))
        elif isinstance(node, ast.JoinedStr):
            parts = [re.escape(v.value) if isinstance(v, ast.Constant) else "[^/]+"
                     for v in node.values]
            if parts and isinstance(node.values[-1], ast.Constant) and \
                    node.values[-1].value.endswith(".png"):
                out.append(re.compile("".join(parts)))
    return out


def gallery_page(logger=None) -> str:
    """Every figure of docs/figures under the script that makes it, with the command and the
    script's code; a figure no script writes is reported (a warning: -W fails the build)."""
    figures = sorted(p.name for p in (DOCS / "figures").glob("*.png"))
    pages = {p.stem: p.read_text() for p in sorted(DOCS.glob("*.md"))}
    claimed: set[str] = set()
    text = ["# Gallery\n\n",
            "The figures of these pages, each under the script in `docs/` that makes it (the "
            "library calls in the script's code below). `python docs/make_X.py` regenerates "
            "a script's figures from the repository root; the build shows the committed PNGs "
            "(the scripts take minutes: they are not run at build time).\n\n"]
    for script in sorted(DOCS.glob("make_*figures.py")):
        pats = figure_patterns(script)
        mine = [f for f in figures if any(p.fullmatch(f) for p in pats)]
        claimed.update(mine)
        doc = (ast.get_docstring(ast.parse(script.read_text())) or "").split("\n\n")[0]
        text += [f"## `{script.name}`\n\n", doc.replace("\n", " ") + "\n\n",
                 f"```bash\npython docs/{script.name}\n```\n\n"]
        for f in mine:
            used = [f"[{name}](../{name}.md)" for name, src in pages.items()
                    if re.search(r"(?<![\w.-])" + re.escape(f), src)]
            where = f" (on {', '.join(used)})" if used else ""
            text += [f"### {f}\n\n", f"![{f}](../figures/{f})\n\n",
                     f"`docs/figures/{f}`{where}\n\n"]
        text += [f"### The code of `{script.name}`\n\n",
                 f"```{{literalinclude}} ../{script.name}\n:language: python\n```\n\n"]
    orphans = [f for f in figures if f not in claimed]
    if orphans and logger is not None:
        logger.warning(f"docs/figures: no docs/make_*figures.py writes {', '.join(orphans)}")
    return "".join(text)


def _write(path: pathlib.Path, text: str) -> None:
    # rewrite only on change: Sphinx then rebuilds only what changed
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(app) -> None:
    OUT.mkdir(exist_ok=True)
    _write(OUT / "api.rst", api_page())
    _write(OUT / "cli.md", cli_page())
    from sphinx.util import logging

    _write(OUT / "gallery.md", gallery_page(logging.getLogger(__name__)))
    nbdir = OUT / "notebooks"
    nbdir.mkdir(exist_ok=True)
    keep = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        keep.add(nb.name)
        # links to ../docs/X.md (right on GitHub) point at the pages, two folders up
        text = nb.read_text().replace("](../docs/", "](../../")
        _write(nbdir / nb.name, text)
    for old in nbdir.glob("*.ipynb"):
        if old.name not in keep:
            old.unlink()


_NOTEBOOK_LINK = re.compile(r"\]\(\.\./notebooks/([\w.-]+\.ipynb)\)")


def relink(app, docname: str, source: list[str]) -> None:
    """Links from a page in docs/ to ``../notebooks/X.ipynb`` (right on GitHub) point at the
    rendered copy in the site, and those to ``../benchmarks/README.md`` at its page."""
    if "/" not in docname:
        text = _NOTEBOOK_LINK.sub(r"](_generated/notebooks/\1)", source[0])
        source[0] = text.replace("](../benchmarks/README.md)", "](benchmarks.md)")


def setup(app):
    app.connect("builder-inited", generate)
    app.connect("source-read", relink)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
