"""The learning-rates notebook runs top to bottom in a Jupyter kernel and
shows what its text says."""

import math

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("learning_rates.ipynb")
    # tanh tables: critical (1, 0), hidden variance 1/n, output 1/n^{1+s}; regimes as stated
    a, b, c = ns["tanh_ntk"], ns["tanh_half"], ns["tanh_mup"]
    assert a.critical_point == (1.0, 0.0) and a.group("hidden").init_variance == 1 / 256
    assert b.group("output").init_variance == 1024 ** -1.5
    assert a.interaction == 16 / 256 and a.regime == "near the infinite-width limit"
    assert b.interaction == 2.0 and b.regime.startswith("strongly")
    assert c.interaction == 64 and c.regime.startswith("strongly")
    # "bias rates fall like 1/l, weight rates stay flat" (over the last half of the layers)
    fb, fw = b.group("bias").layer_lr(), b.group("hidden").layer_lr()
    assert abs(fb[62] / fb[30] - 31 / 63) < 0.03 * 31 / 63 and abs(fw[-1] / fw[30] - 1) < 0.05
    # transformer: [DYZ] (1.110) 1/(n sqrt n) at s = 0, x n^{1/2} at s = 1 (fn. 26)
    n = 768
    assert math.isclose(ns["tr0"].group("q").lr_factor, 1 / (n * math.sqrt(n)), rel_tol=1e-14)
    assert math.isclose(ns["tr1"].group("q").lr_factor, 1 / n, rel_tol=1e-14)
    assert math.isclose(ns["tr1"].group("head").init_variance, 1 / n ** 2, rel_tol=1e-14)
    # constant rates: Θ^L ≈ L/2; equivalence: of order one (1.5 + O(log L/L): 1.63 at L = 100)
    L = len(ns["const"].ntk)
    assert abs(ns["const"].ntk[-1] / (L / 2) - 1) < 0.05
    assert 1.4 < ns["equiv"].ntk[-1] < 1.8
    # the recipe is the schedule to rounding; 7 comparisons at 4 sigma plus the O(L/n) room
    assert ns["mismatch"] < 1e-12
    assert np.all(np.abs(ns["z"]) < 4.5)
