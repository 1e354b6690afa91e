"""The training notebook runs top to bottom and shows what its text says."""

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("train.ipynb")
    # wide networks (n = 256, 500 of them) agree with the infinite-width prediction: the
    # comparison's own Bonferroni verdict at alpha = 0.01
    assert ns["cmp_wide"].verdict == "consistent"
    # the narrow ones do not: mean or variance departs by more than 3.5 standard errors at n = 16
    assert max(np.max(np.abs(ns["zmean"][0])), np.max(np.abs(ns["zvar"][0]))) > 3.5
    # a 1/n effect: n x (difference) at n = 16 and 32 agree within 3 combined standard errors
    for d, se in ((ns["dmean"], ns["dmean_se"]), (ns["dvar"], ns["dvar_se"])):
        assert np.all(np.abs(d[0] - d[1]) < 3 * np.hypot(se[0], se[1]))
    # the curve over steps ends at the converged answer
    assert np.allclose(ns["mean_t"][-1], ns["at_convergence"].mean, atol=1e-6)
