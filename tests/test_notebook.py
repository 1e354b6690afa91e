"""The tour notebook runs top to bottom in a Jupyter kernel."""


def test_notebook_runs(run_notebook):
    ns = run_notebook("criticality_tour.ipynb")
    assert abs(ns["ct"].fit_power_law(ns["d"].depths, ns["d"].apjn).slope + ns["u"].apjn) < 0.02
