"""The lecture notebook ("signal propagation in deep networks, in 20 minutes") runs top to
bottom in a Jupyter kernel and shows what its text says, each simulation against the theory
beside it."""
import numpy as np

import critheory as ct
from critheory.validation.compare import bonferroni_threshold


def test_notebook_runs(run_notebook):
    ns = run_notebook("lecture.ipynb")
    W = ns["WIDTH"]
    # 1. order/chaos: c* = 1 in the ordered phase, < 1 in the chaotic one; the networks' last
    # layer within 4 standard errors plus the O(l/n) room of a finite width (relative to 1 - c)
    for name, (theory, mean, se) in ns["corr"].items():
        room = (len(theory) / W) * (1 - theory[-1])
        assert abs(mean[-1] - theory[-1]) <= 4 * se[-1] + room, name
    assert ns["corr"]["ordered"][0][-1] > 0.999 and ns["corr"]["chaotic"][0][-1] < 0.5
    # 2. the critical line at sigma_b^2 = 0.05: chi_J(K*) = 1 (an independent route)
    sw = ns["sw_crit"]
    assert abs(ct.analyze_point(ct.architecture("mlp", "tanh"), sw, 0.05).chi_jacobian - 1) < 1e-9
    zc = bonferroni_threshold(3 * 29, 0.01)
    for name, (theory, mean, se) in ns["apjn"].items():
        l = np.arange(1, len(theory) + 1)
        if name != "chaotic":       # the chaotic mean grows past the theory by O(l/n) per layer
            assert np.all(np.abs(mean - theory) <= zc * se + (l / W) * theory), name
    assert ns["apjn"]["ordered"][1][-1] < 1e-3 < 1 < ns["apjn"]["chaotic"][1][-1]
    # 3. classes: tanh and erf share K*=0 and its 1/l kernel, ReLU's kernel stays put
    k = ns["kern"]
    assert (k["tanh"][0], k["erf"][0], k["relu"][0]) == ("K*=0", "K*=0", "scale-invariant")
    assert abs(k["tanh"][2] + 1) < 0.01 and abs(k["erf"][2] + 1) < 0.01
    assert np.allclose(k["relu"][1], 2.0, rtol=1e-12)
    zk = bonferroni_threshold(3 * 20, 0.01)
    for act, (_, theory, _, mean, se) in k.items():
        l = np.arange(1, len(mean) + 1)
        assert np.all(np.abs(mean - theory[:len(mean)]) <= zk * se + (l / W) * theory[:len(mean)]), act
    # 4. APJN power laws: the networks' fitted slope within 4 of its standard errors of theory
    for act, (theory_slope, fit) in ns["slopes"].items():
        assert abs(fit.slope - theory_slope) < 4 * fit.stderr, act
    assert abs(ns["slopes"]["tanh"][0] + 1) < 0.1 and abs(ns["slopes"]["relu"][0]) < 1e-9
    # 5. finite width: at n = 64 the leading order describes the kurtosis (12 layers, |z| < 4,
    # as in the finite-width notebook); it grows with depth at every width
    pred, mean, se = ns["kurt"][64]
    assert np.all(np.abs(mean - pred) < 4 * np.maximum(se, 1e-12) + 1e-12)
    for n, (pred, mean, se) in ns["kurt"].items():
        assert mean[-1] > mean[len(mean) // 2] + 3 * np.hypot(se[-1], se[len(mean) // 2]), n
