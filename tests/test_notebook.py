"""The tour notebook runs top to bottom (its code cells executed in one namespace)."""
import json
from pathlib import Path

NB = Path(__file__).resolve().parents[1] / "notebooks" / "criticality_tour.ipynb"


def test_notebook_runs():
    nb = json.loads(NB.read_text())
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NB), "exec"), ns)  # noqa: S102
    assert abs(ns["fit_power_law"](ns["d"].depths, ns["d"].apjn).slope + ns["u"].apjn) < 0.02
