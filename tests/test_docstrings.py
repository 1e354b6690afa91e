"""The examples on the documentation pages run and print what the page says.

Docstring examples of the library are collected by pytest itself (``--doctest-modules`` over the
``critheory`` package, see ``pyproject.toml``): no module list to keep by hand.
"""
import doctest
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
               if ">>> " in p.read_text())


@pytest.mark.parametrize("page", PAGES)
def test_docs_examples(page):
    if ">>> import torch" in (ROOT / page).read_text():
        pytest.importorskip("torch")            # docs/torch.md: with the [torch] extra
    res = doctest.testfile(str(ROOT / page), module_relative=False,
                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} example(s) of {page} failed"


def test_docs_pages_found():
    assert "docs/expectations.md" in PAGES
