"""The Bayesian-inference notebook runs top to bottom and shows what its text says."""

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("bayes.ipynb")
    # the sampler's kurtosis against 3V/(nK²) = 0.10 at n = 256: 400 000 samples, standard
    # error √(24/N) ~ 0.008 (the estimator's, for a near-Gaussian law): 5 standard errors
    assert abs(ns["k4"] - ns["k4_theory"]) < 5 * np.sqrt(24 / 400_000)
    w = list(ns["widths"])
    trusted = [w.index(64), w.index(128), w.index(256)]
    # where νL/n <= 0.25 the first-order answer describes the finite networks (|z| < 4: 6
    # comparisons, false alarm ~4e-4) and the Gaussian process does not (somewhere |z| > 4)
    assert np.all(np.abs(ns["z_nlo"][trusted]) < 4)
    assert np.any(np.abs(ns["z_gp"][trusted]) > 4)
