"""The finite-width notebook runs top to bottom (its code cells executed in one namespace) and
shows what its text says."""
import json
from pathlib import Path

import numpy as np

NB = Path(__file__).resolve().parents[1] / "notebooks" / "finite_width.ipynb"


def test_notebook_runs():
    nb = json.loads(NB.read_text())
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NB), "exec"), ns)  # noqa: S102
    assert ns["relu"].nu.value == 5.0 and ns["tanh"].nu.exact == "2/3"
    # at n = 64 the leading order describes the measurement: |z| < 4 at every depth (4σ: 12
    # comparisons, false alarm ~1e-3)
    assert np.all(np.abs(ns["z"]) < 4)
    assert ns["exact"].kurtosis[-1] > 3 * ns["lead"].kurtosis[-1]
