"""The notebooks use only the public Python API (issue 27): ``import critheory as ct`` and the
names of ``ct.__all__`` (``ct.torch.<name>`` for the PyTorch integration: the names of
``critheory.torch.__all__``). Their code cells are parsed, not run (the other test_notebook*
files run them)."""
from __future__ import annotations

import ast
import json
import pathlib

import pytest

import critheory
import critheory.torch

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
PAGES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
SURFACE = {"": set(critheory.__all__), "torch": set(critheory.torch.__all__)}


def non_public_uses(source: str) -> list[str]:
    """What a code cell takes from critheory beyond the public surface: an import of a
    submodule (``import critheory.x``, ``from critheory.x import y``), a ``from critheory import
    y`` of a name outside ``__all__``, and ``ct.y`` / ``ct.torch.y`` with ``y`` outside the
    public names, ``ct`` being any name bound to ``critheory``."""
    tree = ast.parse(source)
    aliases: set[str] = set()
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "critheory":
                    aliases.add(a.asname or "critheory")
                elif a.name.startswith("critheory."):
                    bad.append(f"import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "critheory":
                bad += [f"from critheory import {a.name}" for a in node.names
                        if a.name not in SURFACE[""]]
                aliases.update(a.asname or a.name for a in node.names if a.name == "torch")
            elif node.module.startswith("critheory."):
                bad.append(f"from {node.module} import ...")
    torch_aliases = {a for a in aliases if a == "torch"} - {"critheory"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        v = node.value
        if isinstance(v, ast.Name) and v.id in aliases and v.id not in torch_aliases:
            if node.attr not in SURFACE[""]:
                bad.append(f"{v.id}.{node.attr}")
        elif (isinstance(v, ast.Attribute) and v.attr == "torch" and isinstance(v.value, ast.Name)
              and v.value.id in aliases and node.attr not in SURFACE["torch"]):
            bad.append(f"{v.value.id}.torch.{node.attr}")
    return bad


def _cells(name: str) -> list[str]:
    nb = json.loads((NOTEBOOKS / name).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("name", PAGES)
def test_notebook_uses_only_the_public_api(name):
    cells = _cells(name)
    # the cells share one namespace: an import in one cell binds the name for the later ones
    bad = non_public_uses("\n".join(cells))
    assert not bad, f"{name} reaches past the public API: {bad}"
    assert any("import critheory as ct" in src for src in cells)


def test_notebooks_found():
    assert len(PAGES) >= 8 and "criticality_tour.ipynb" in PAGES


@pytest.mark.parametrize("source, expected", [
    ("import critheory as ct\nct.simulate\nct.torch.apjn\n", []),
    ("from critheory.theory.meanfield.depth import depth_curves\n",
     ["from critheory.theory.meanfield.depth import ..."]),
    ("import critheory.simulation\n", ["import critheory.simulation"]),
    ("from critheory import simulate, _PUBLIC\n", ["from critheory import _PUBLIC"]),
    ("import critheory as ct\nct.theory.meanfield\n", ["ct.theory"]),
    ("import critheory\ncritheory.io.plots.save\n", ["critheory.io"]),
    ("import critheory as ct\nct.torch.measure._graph\n", ["ct.torch.measure"]),
    ("import numpy as ct2\nct2.theory\n", []),
])
def test_non_public_uses_seen(source, expected):
    assert non_public_uses(source) == expected
