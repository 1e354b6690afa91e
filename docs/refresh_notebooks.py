"""Execute the notebooks in a Jupyter kernel and store their outputs (figures inline).

    python docs/refresh_notebooks.py                # every notebook in notebooks/
    python docs/refresh_notebooks.py bayes train    # some of them (names without .ipynb)

Each notebook runs top to bottom in a fresh ``python3`` kernel (nbclient + ipykernel) with its
folder as the working directory; the outputs replace the stored ones, and every code cell gets
``metadata.critheory.source_sha256``, the SHA-256 of its source at that run.
``tests/test_notebook_outputs.py`` fails when a code cell's source no longer matches its hash
(outputs stale: rerun this command) or a notebook that draws shows no figure. The documentation
site renders the stored outputs (it executes nothing).

Figures: the kernel's matplotlib backend is the inline one (Agg drawing, PNG into the notebook);
``plt.show()`` or a cell ending with a figure displays it. Seeds are fixed in the notebooks, so
a refresh reproduces the numbers; the PNGs may differ by a byte with the matplotlib version.

The tests import :func:`execute` and :func:`namespace` from here (one way to run a notebook).
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import pathlib
import pickle
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KEY = "critheory"
CELL_TIMEOUT = 600

def kernel_dump(namespace: dict, path: str) -> None:
    """Pickle a notebook's global names into ``path`` (run inside the kernel by ``namespace``:
    its source is sent there, so it imports what it needs itself).

    Modules go by name. A value that does not pickle (e.g. it holds an activation's compiled
    closures) goes as a ``types.SimpleNamespace`` of its dataclass fields, recursively (three
    levels), fields that still do not pickle left out; other such values are left out."""
    import dataclasses
    import pickle
    import types

    skip = object()

    def portable(v, depth=0):
        try:
            pickle.dumps(v)
            return v
        except Exception:
            pass
        if depth < 3 and dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: portable(getattr(v, f.name), depth + 1)
                      for f in dataclasses.fields(v)}
            return types.SimpleNamespace(**{k: x for k, x in fields.items() if x is not skip})
        if depth < 3 and isinstance(v, (list, tuple)):
            items = [x for x in (portable(x, depth + 1) for x in v) if x is not skip]
            return items if isinstance(v, list) else tuple(items)
        if depth < 3 and isinstance(v, dict):
            items = {k: portable(x, depth + 1) for k, x in v.items()}
            return {k: x for k, x in items.items() if x is not skip}
        return skip

    out = {}
    for k, v in list(namespace.items()):
        if k.startswith("_") or k in ("In", "Out", "get_ipython", "exit", "quit"):
            continue
        if isinstance(v, types.ModuleType):
            out[k] = ("module", v.__name__)
            continue
        v = portable(v)
        if v is not skip:
            out[k] = ("value", pickle.dumps(v))
    with open(path, "wb") as f:
        pickle.dump(out, f)


def source_hash(source: str) -> str:
    """SHA-256 (hex) of a code cell's source, as stored at refresh time."""
    return hashlib.sha256(source.encode()).hexdigest()


def execute(nb: nbformat.NotebookNode, cwd: pathlib.Path) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh python3 kernel (in place); an error in a cell raises
    ``nbclient.exceptions.CellExecutionError`` naming the cell."""
    NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def namespace(path: pathlib.Path) -> dict:
    """Execute the notebook at ``path`` in a kernel and return its global names: what a reader
    who ran all cells has (as :func:`kernel_dump` carries them out; modules re-imported)."""
    nb = nbformat.read(path, as_version=4)
    fd, dump = tempfile.mkstemp(suffix=".pkl")
    os.close(fd)
    try:
        nb.cells.append(nbformat.v4.new_code_cell(
            inspect.getsource(kernel_dump) + f"\nkernel_dump(globals(), {dump!r})\n"))
        execute(nb, path.parent)
        raw = pickle.loads(pathlib.Path(dump).read_bytes())
    finally:
        os.unlink(dump)
    ns = {}
    for k, (kind, v) in raw.items():
        if kind == "module":
            ns[k] = importlib.import_module(v)
        else:
            try:
                ns[k] = pickle.loads(v)
            except Exception:       # e.g. a class defined in the notebook itself
                pass
    return ns


def refresh(path: pathlib.Path) -> float:
    """Execute one notebook and write it back with its outputs and source hashes; seconds."""
    nb = nbformat.read(path, as_version=4)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)         # cell ids
    for cell in nb.cells:
        cell.setdefault("id", nbformat.v4.nbbase.random_cell_id())
    t0 = time.perf_counter()
    execute(nb, path.parent)
    elapsed = time.perf_counter() - t0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
            cell.metadata[KEY] = {"source_sha256": source_hash(cell.source)}
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    slow = []
    for name in names:
        path = NOTEBOOKS / f"{pathlib.Path(name).stem}.ipynb"
        elapsed = refresh(path)
        print(f"{path.relative_to(ROOT)}: executed in {elapsed:.1f} s")
        if elapsed > 60:
            slow.append(path.name)
    if slow:
        print(f"over a minute: {', '.join(slow)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
