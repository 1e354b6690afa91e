"""The PyTorch notebook ("check your own model's criticality") runs top to bottom and shows what
its text says."""
import numpy as np
import pytest

pytest.importorskip("torch")

from critheory.validation.compare import bonferroni_threshold  # noqa: E402


def test_notebook_runs(run_notebook):
    ns = run_notebook("torch_criticality.ipynb")
    # default PyTorch init of tanh: ordered, exponential collapse, theory beside it
    pred, meas = ns["pred"], ns["meas"]
    assert pred.phase == "ordered" and pred.chi_jacobian_fixed_point < 0.5
    assert meas.mean[-1] < 1e-3
    l = np.arange(1, len(meas.mean) + 1)
    zc = bonferroni_threshold(len(l) - 1, 0.01)
    # one network of width 128: the probes' error plus the O(l/n) finite-width correction
    assert np.all(np.abs(meas.mean - pred.apjn) <= zc * meas.stderr + (l / 128) * pred.apjn)
    # critical tanh: agrees with the simulator (same width), within O(l/n) of infinite width
    assert ns["point"] == (1.0, 0.0)
    assert np.all(np.abs(ns["z_sim"]) < bonferroni_threshold(9, 0.01))
    mean, se, theory = ns["mean"], ns["se"], ns["theory"]
    depth, width = ns["depth"], ns["width"]
    ll = np.arange(1, depth + 1)
    assert np.all(np.abs(mean - theory) <= bonferroni_threshold(9, 0.01) * se
                  + (ll / width) * theory)
    # data-driven tuning converged; the theory at the tuned weights: χ_J within 10 % of 1
    rep = ns["report"]
    assert rep.all_converged
    assert all(abs(c - 1) <= max(rep.tol, 2 * s) for c, s in zip(rep.chi, rep.chi_stderr))
    assert np.all(np.abs(ns["tuned"].chi_jacobian[1:] - 1) < 0.1)
    # regularizer: unbiased within its error; FDR: stationary, ratio within its error of 1
    assert abs(ns["pen_z"]) < bonferroni_threshold(1, 0.01)
    fdr = ns["fdr"]
    assert fdr.verdict == "stationary" and abs(fdr.ratio - 1) <= 3 * fdr.ratio_stderr
