"""Run the docstring examples of the library modules. Values in them are checked independently
in the docstrings' comments (closed forms, mpmath solves); the simulator's and the validation
module's examples are run by tests/test_simulator.py and tests/test_cli_sim.py."""
import doctest
import importlib

import pytest

MODULES = ["errors", "activation", "zoo", "integrands", "de_quadrature", "quadrature",
           "closed_forms", "reference", "gaussian", "cli", "layers", "roots", "fixed_points",
           "criticality", "critical_sets", "tabulated", "depth", "report", "plots", "cli_theory"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    mod = importlib.import_module(f"critheory.{module}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          verbose=False)
    assert res.failed == 0, f"{res.failed} docstring example(s) of critheory.{module} failed"


@pytest.mark.parametrize("page", ["docs/expectations.md"])
def test_docs_examples(page):
    """The examples on the documentation pages run and print what the page says."""
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / page
    res = doctest.testfile(str(path), module_relative=False,
                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} example(s) of {page} failed"
