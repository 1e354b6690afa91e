"""The shaped-SDE notebook runs top to bottom in a Jupyter kernel and
shows what its text says."""

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("shaped_sde.ipynb")
    law, paths = ns["law"], ns["paths"]
    assert law.error < 1e-4 and abs(law.rho_mean - 0.4805) < 1e-3
    # EM and the Fokker-Planck law agree within EM's error (4σ)
    assert abs(paths.rho_mean - law.rho_mean) < 4 * paths.error + law.error
    # finite shaped networks agree with the SDE (|z| < 4), the unshaped one collapses
    assert all(abs(v) < 4 for v in ns["z"].values())
    assert ns["unshaped"].rho.mean() > 0.98
    assert "V_ab" in ns["tanh_drift"]
    assert np.isfinite(ns["ct"].rho_ode(ns["s"], 0.5, 1.0))
