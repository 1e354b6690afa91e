"""Sphinx extension of critheory's docs: pages generated from the code at every build.

* ``_generated/api.rst``: the API reference, one entry per name of ``critheory.__all__`` and
  ``critheory.torch.__all__`` (autodoc reads the numpy-style docstrings), grouped by module;
* ``_generated/cli.md``: the CLI reference, the ``--help`` of ``critheory`` and of every
  sub-command as ``critheory.cli.main.build_parser`` prints them;
* the figures: every ``docs/make_*figures.py`` runs before the pages are read
  (``figure_runner``; ``CRITHEORY_DOCS_FIGURES=committed`` skips them for a quick preview);
* ``_generated/gallery.md``: every figure of docs/figures under the script that makes it, with
  its command and code and whether this build made it (a figure no script writes, or a script
  that fails, fails the build under ``-W``);
* ``_generated/notebooks/*.ipynb``: copies of ``notebooks/`` (myst-nb renders their stored
  outputs); links ``../notebooks/X.ipynb`` in the pages and ``../docs/X.md`` in the
  notebooks are pointed at the rendered copies.

The generated pages are not committed (docs/_generated is ignored by git), so none of them can
drift; the figures are (the markdown pages show them on GitHub), and each build remakes them.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import os
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import figure_runner  # noqa: E402

DOCS = pathlib.Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
OUT = DOCS / "_generated"
CLI_COLUMNS = "100"
# critheory.torch's modules import torch; where it is not installed autodoc reads them with
# torch mocked (their signatures and docstrings do not need it)
TORCH_MOCKED = ["torch"]
# "build" (default): the build runs the figure scripts; "committed": it shows the committed PNGs
FIGURES_ENV = "CRITHEORY_DOCS_FIGURES"


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


def _commands(script: pathlib.Path) -> str:
    """The command that makes a script's figures (and what the site build runs, where the
    script declares ``BUILD_ARGS``)."""
    args = figure_runner.build_args(script)
    if not args:
        return f"```bash\npython docs/{script.name}\n```\n\n"
    return (f"```bash\npython docs/{script.name}                 # the full run\n"
            f"python docs/{script.name} {' '.join(args)}    # what the site build runs\n```\n\n")


def _build_note(runs: dict | None) -> str:
    if runs is None:
        return ("This build did not run them (`CRITHEORY_DOCS_FIGURES=committed`): the figures "
                "below are the committed PNGs.")
    total = sum(r.seconds for r in runs.values())
    return (f"This build ran {len(runs)} scripts ({total:.0f} s of script time, in "
            "parallel); a figure a script could not make here (an extra not installed) is "
            "the committed PNG and says so.")


def _figure_note(script: str, figure: str, runs: dict | None) -> str:
    if runs is None or script not in runs:
        return "the committed PNG"
    run = runs[script]
    if figure in run.kept:
        return f"the committed PNG, not regenerated in this build: {run.kept[figure]}"
    return f"made by this build ({run.seconds:.0f} s for the script)"


def gallery_page(logger=None, runs: dict | None = None) -> str:
    """Every figure of docs/figures under the script that makes it, with the command, the
    script's code and whether this build made it (``runs``: script name → its
    :class:`figure_runner.ScriptRun`; None where the scripts did not run); a figure no script
    writes is reported (a warning: -W fails the build)."""
    figures = sorted(p.name for p in (DOCS / "figures").glob("*.png"))
    pages = {p.stem: p.read_text() for p in sorted(DOCS.glob("*.md"))}
    claimed: set[str] = set()
    text = ["# Gallery\n\n",
            "The figures of these pages, each under the script in `docs/` that makes it (the "
            "library calls in the script's code below). The site build runs every script "
            "before it renders the pages, so the figures here are made by the code of this "
            "build; `python docs/refresh_figures.py` does the same for the committed PNGs "
            "(what the pages show on GitHub), `python docs/make_X.py` for one script. "
            f"{_build_note(runs)}\n\n"]
    for script in sorted(DOCS.glob("make_*figures.py")):
        pats = figure_patterns(script)
        mine = [f for f in figures if any(p.fullmatch(f) for p in pats)]
        claimed.update(mine)
        doc = (ast.get_docstring(ast.parse(script.read_text())) or "").split("\n\n")[0]
        text += [f"## `{script.name}`\n\n", doc.replace("\n", " ") + "\n\n",
                 _commands(script)]
        for f in mine:
            used = [f"[{name}](../{name}.md)" for name, src in pages.items()
                    if re.search(r"(?<![\w.-])" + re.escape(f), src)]
            where = f" (on {', '.join(used)})" if used else ""
            text += [f"### {f}\n\n", f"![{f}](../figures/{f})\n\n",
                     f"`docs/figures/{f}`{where}: {_figure_note(script.name, f, runs)}\n\n"]
        text += [f"### The code of `{script.name}`\n\n",
                 f"```{{literalinclude}} ../{script.name}\n:language: python\n```\n\n"]
    orphans = [f for f in figures if f not in claimed]
    if orphans and logger is not None:
        logger.warning(f"docs/figures: no docs/make_*figures.py writes {', '.join(orphans)}")
    return "".join(text)


def run_figures(logger) -> dict | None:
    """Run every figure script (``figure_runner``) unless ``CRITHEORY_DOCS_FIGURES=committed``;
    a script that fails is a warning (``-W`` fails the build)."""
    mode = os.environ.get(FIGURES_ENV, "build")
    if mode == "committed":
        logger.info(f"{FIGURES_ENV}=committed: the figure scripts are not run")
        return None
    if mode != "build":
        logger.warning(f"{FIGURES_ENV} must be 'build' or 'committed', not {mode!r}")
        return None
    def report(run):
        kept = "".join(f"; kept {k} ({v})" for k, v in run.kept.items())
        logger.info(f"figures: {run.script} {'ok' if run.ok else 'FAILED'} in "
                    f"{run.seconds:.1f} s{kept}")

    runs = figure_runner.run_all(progress=report)
    for run in runs:
        if not run.ok:
            logger.warning(f"docs/{run.script} failed (exit {run.returncode}):\n"
                           f"{run.output_tail}")
    return {r.script: r for r in runs}


def _write(path: pathlib.Path, text: str) -> None:
    # rewrite only on change: Sphinx then rebuilds only what changed
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate(app) -> None:
    OUT.mkdir(exist_ok=True)
    _write(OUT / "api.rst", api_page())
    _write(OUT / "cli.md", cli_page())
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    _write(OUT / "gallery.md", gallery_page(logger, run_figures(logger)))
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


def _lookup(dotted: str):
    """The object a dotted path names (a module, or attributes of one), else None."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


_PUBLIC: dict | None = None


def _public_names() -> dict:
    """``id(object) → documented name`` for every name of ``critheory.__all__`` and
    ``critheory.torch.__all__``, built once per process (ids are not kept in Sphinx's pickled
    environment: they mean nothing in the next build's process)."""
    global _PUBLIC
    if _PUBLIC is not None:
        return _PUBLIC
    import contextlib

    import critheory
    import critheory.torch

    try:                    # as the API page: critheory.torch read with torch mocked
        from sphinx.ext.autodoc.mock import mock
        context = mock(TORCH_MOCKED)
    except ImportError:     # (the tests without the [docs] extra: critheory's names only)
        context = contextlib.nullcontext()
    names = {}
    with context:
        for ns, mod in (("critheory", critheory), ("critheory.torch", critheory.torch)):
            for name in mod.__all__:
                if name in ("__version__", "torch"):
                    continue
                try:
                    obj = getattr(mod, name)
                except ImportError:
                    continue
                names.setdefault(id(obj), f"{ns}.{name}")
    _PUBLIC = names
    return names


def _documented_objects(node) -> list:
    """The objects whose entries (autodoc's ``desc`` nodes) enclose ``node``, innermost first."""
    from sphinx import addnodes

    out = []
    parent = node.parent
    while parent is not None:
        if isinstance(parent, addnodes.desc):
            for sig in parent.children:
                if isinstance(sig, addnodes.desc_signature) and sig.get("ids"):
                    obj = _lookup(sig["ids"][0])
                    if obj is not None:
                        out.append(obj)
                    break
        parent = parent.parent
    return out


def _row_objects(node) -> list:
    """In an autosummary table, the object of the row that holds ``node``."""
    from docutils import nodes

    parent = node.parent
    while parent is not None and not isinstance(parent, nodes.row):
        parent = parent.parent
    if parent is None or not parent.children:
        return []
    name = parent.children[0].astext().split("(")[0].strip()
    obj = _lookup(name) if name.startswith("critheory") else None
    return [] if obj is None else [obj]


_DEFINED: dict | None = None


def _defined_names() -> dict:
    """``name → [dotted paths]`` of the classes, functions and constants defined (not
    imported) in the modules of critheory."""
    global _DEFINED
    if _DEFINED is None:
        import importlib
        import pkgutil
        import sys

        import critheory

        index: dict[str, list[str]] = {}
        for info in pkgutil.walk_packages(critheory.__path__, "critheory."):
            if info.name.endswith("__main__") or (
                    ".torch" in info.name and "torch" not in sys.modules):
                continue
            try:
                mod = importlib.import_module(info.name)
            except Exception:
                continue
            for name, obj in vars(mod).items():
                if name.startswith("__"):
                    continue
                home = getattr(obj, "__module__", None)
                if home == info.name or (home is None and name.isupper()):
                    index.setdefault(name, []).append(f"{info.name}.{name}")
        _DEFINED = index
    return _DEFINED


def resolve_reference(app, env, node, contnode):
    """Cross-references into critheory's code that Sphinx cannot resolve by name: a dotted path
    to the defining module of a public object (``critheory.theory.ntk.depth.ntk_curves``)
    links to its entry (``critheory.ntk_curves``); a path to an object that exists but is not
    in the reference (an internal module, constant or result field) is shown as code without a
    link. A path that names nothing stays unresolved (a warning: the -W build fails), so a
    renamed or misspelt reference in a docstring is caught."""
    if node.get("refdomain") != "py" or node.get("reftype") not in (
            "func", "class", "meth", "data", "mod", "attr", "obj", "exc", "const"):
        return None
    target = node["reftarget"].lstrip("~.")
    mod, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if cls:
        candidates.append(f"{mod}.{cls}.{target}" if mod else f"{cls}.{target}")
    if mod:
        candidates.append(f"{mod}.{target}")
    candidates.append(f"critheory.{target}")
    # a short name in a docstring is looked up where the documented object is defined
    for documented in _documented_objects(node):
        home = getattr(documented, "__module__", None)
        if home:
            owner = getattr(documented, "__qualname__", "").rpartition(".")[0]
            candidates += [f"{home}.{owner}.{target}" if owner else None, f"{home}.{target}"]
            if isinstance(documented, type):
                candidates.append(f"{home}.{documented.__qualname__}.{target}")
    for documented in _row_objects(node):
        home = getattr(documented, "__module__", None)
        if home:
            candidates.append(f"{home}.{target}")
    # last, a name defined in exactly one module of critheory
    defined = _defined_names().get(target.partition(".")[0], [])
    if len(defined) == 1:
        rest = target.partition(".")[2]
        candidates.append(f"{defined[0]}.{rest}" if rest else defined[0])
    public = _public_names()
    domain = env.get_domain("py")
    for path in candidates:
        if not path or not path.startswith("critheory"):
            continue
        obj = _lookup(path)
        if obj is None:
            continue
        name = public.get(id(obj))
        if name is not None and name != path:
            ref = node.deepcopy()
            ref["reftarget"] = name
            found = domain.resolve_xref(env, node["refdoc"], app.builder, "obj", name, ref,
                                        contnode)
            if found is not None:
                return found
        return contnode                 # exists, not in the reference: code, no link
    return None


def setup(app):
    app.connect("builder-inited", generate)
    app.connect("source-read", relink)
    app.connect("missing-reference", resolve_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
