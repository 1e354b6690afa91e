"""The transformer notebook runs top to bottom in a Jupyter kernel and
shows what its text says."""

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("transformers.ipynb")
    # one token, C_V = 0: the pre-LN MLP block exactly (both float64 recursions of expectations
    # with relative errors <= 1e-10); C_U C_V = 2: the attention adds exactly 2 per layer
    assert ns["rel_one_token"] < 1e-9
    np.testing.assert_allclose(ns["increments"], 2.0, rtol=1e-12)
    # QMC vs plain Monte Carlo: 6 entries, 4 combined standard errors
    assert np.abs(ns["z_qmc_mc"]).max() < 4.0
    # everywhere-critical: the log-slope between l = 400 and 800 approaches ζ (O(1/l) away)
    assert ns["zeta_gap"] < 5e-3
    assert abs(ns["pre"].chi_jacobian[-1] - 1) < 0.1            # pre-LN χ -> 1
    assert ns["post"].chi_jacobian[-1] < 0.7                     # post-LN: constant χ* < 1
    # finite width: consistent at moderate logits; visible 1/C effect that shrinks with n
    assert ns["ok"].verdict == "consistent"
    d16, z16, v16 = ns["strong"][16]
    d64, _, _ = ns["strong"][64]
    assert z16 > 3 and v16 == "inconsistent" and abs(d64) < 0.5 * abs(d16)
