"""The finite-width notebook runs top to bottom in a Jupyter kernel and
shows what its text says."""

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("finite_width.ipynb")
    assert ns["relu"].nu.value == 5.0 and ns["tanh"].nu.exact == "2/3"
    # at n = 64 the leading order describes the measurement: |z| < 4 at every depth (4σ: 12
    # comparisons, false alarm ~1e-3)
    assert np.all(np.abs(ns["z"]) < 4)
    assert ns["exact"].kurtosis[-1] > 3 * ns["lead"].kurtosis[-1]
