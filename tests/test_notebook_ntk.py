"""The NTK notebook runs top to bottom in a Jupyter kernel and shows what
its text says."""

import numpy as np


def test_notebook_runs(run_notebook):
    ns = run_notebook("ntk.ipynb")
    L = ns["L"]
    # constant rates: Θ^L ≈ L/2 (p_⊥ = 1) plus the weight term; equivalence: Θ^L ≈ 1.5, of
    # order one (λ_b + λ_W/2 plus O(log L/L) corrections: 1.58 at L = 200)
    assert ns["const"].ntk[-1] > 0.4 * L and 1.4 < ns["equiv"].ntk[-1] < 1.7
    assert abs(ns["equiv"].exponents["lambda"] + 1) < 0.1
    np.testing.assert_allclose(ns["relu"].lambda_b, 1 / 50, rtol=1e-13)
    assert abs(ns["relu"].ntk[-1] - 2.0) < 1e-12
    # 7 comparisons at 4 σ plus the O(L/n) = 8/64 room the text allows: here |z| < 4.5
    assert np.all(np.abs(ns["z"]) < 4.5)
