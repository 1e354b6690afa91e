"""Run the docstring examples of the theory modules (values in them are checked independently
in the docstring comments: closed forms or mpmath solves)."""
import doctest
import importlib

import pytest

THEORY_MODULES = ["layers", "roots", "fixed_points", "criticality", "critical_sets", "tabulated",
                  "depth", "report", "plots", "cli_theory"]


@pytest.mark.parametrize("module", THEORY_MODULES)
def test_theory_docstring_examples(module):
    mod = importlib.import_module(f"critheory.{module}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          verbose=False)
    assert res.failed == 0, f"{res.failed} docstring example(s) of critheory.{module} failed"
