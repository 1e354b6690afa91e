"""The ten-minute tutorial notebook runs top to bottom in a Jupyter kernel and shows what its
text says."""
import numpy as np
import pytest

pytest.importorskip("torch")

from critheory.validation.compare import bonferroni_threshold  # noqa: E402


def test_notebook_runs(run_notebook):
    ns = run_notebook("tutorial.ipynb")
    # tanh(x) + 0.1 x: class K*=0, critical point (1/φ'(0)², 0) = (1/1.21, 0)
    assert ns["u"].name == "K*=0" and ns["u"].apjn_exact == 1
    assert len(ns["points"]) == 1
    assert abs(ns["points"][0].weight_var - 1 / 1.21) < 1e-12 and ns["points"][0].bias_var == 0
    # PyTorch's default init is ordered; after init_critical_ the model sits at that point
    assert tuple(ns["report"]) == pytest.approx((1 / 1.21, 0.0), abs=1e-12)
    assert ns["pred"].phase == "critical"
    # measured J^{1,l} against the prediction: the probes' error (Bonferroni over the layers
    # after the first, alpha = 0.01) plus the O(l/n) finite-width correction the text names
    meas, pred, width = ns["meas"], ns["pred"], ns["width"]
    l = np.arange(1, len(meas.mean) + 1)
    zc = bonferroni_threshold(len(l) - 1, 0.01)
    assert np.all(np.abs(meas.mean - pred.apjn) <= zc * meas.stderr + (l / width) * pred.apjn)
