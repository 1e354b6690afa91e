"""The outputs stored in the committed notebooks are honest: every code cell was executed (in
order, by ``python docs/notebook_tools.py``) from the source it has now, no cell stored an
error, and a notebook that draws shows its figures inline. The documentation site renders these
stored outputs; the test_notebook_* files execute the notebooks again in a kernel."""
from __future__ import annotations

import pathlib
import re

import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
PAGES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
REFRESH = "run `python docs/notebook_tools.py {stem}`"
# a cell that draws: a pyplot figure, or a Figure made by hand
DRAWS = re.compile(r"plt\.(subplots?|figure|plot)\(|Figure\(")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.parametrize("name", PAGES)
def test_outputs_are_from_the_current_source(name, notebook_tools):
    nb = _read(name)
    nbformat.validate(nb)
    fix = REFRESH.format(stem=pathlib.Path(name).stem)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for i, cell in enumerate(code, 1):
        stored = cell.metadata.get(notebook_tools.KEY, {}).get("source_sha256")
        assert stored == notebook_tools.source_hash(cell.source), (
            f"{name}, code cell {i}: its stored outputs are not from its current source: {fix}")
        assert cell.execution_count == i, f"{name}: cells not executed top to bottom: {fix}"
        assert not [o for o in cell.outputs if o.output_type == "error"], f"{name}, cell {i}"


@pytest.mark.parametrize("name", PAGES)
def test_figures_are_shown_inline(name):
    nb = _read(name)
    for i, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        if DRAWS.search(cell.source):
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), (
                f"{name}, code cell {i} draws a figure but shows none (plt.show() or end the "
                f"cell with the figure; no savefig to a temporary file, no Agg switch)")
        assert 'matplotlib.use("Agg")' not in cell.source


@pytest.mark.parametrize("source, draws", [
    ("fig, ax = plt.subplots()\n", True), ("fig = Figure(figsize=(3, 2))\n", True),
    ("plt.plot(x, y)\n", True), ("print(r.table())\n", False)])
def test_draws_pattern(source, draws):
    assert bool(DRAWS.search(source)) == draws
