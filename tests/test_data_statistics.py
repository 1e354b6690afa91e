"""The finite-width theory on several inputs (:mod:`critheory.theory.finitewidth.data`):
kernel, 1/n kernel shift and four-point vertex over a set of inputs.

Independent routes: the single-input theory (:func:`finite_width_curves`, its own rules and
its own Chebyshev-tabled coefficients) on each diagonal entry; the deep linear network, whose
vertex over several inputs follows from Wick's theorem layer by layer (written out here
without the rules); symmetry and permutation equivariance; Monte Carlo of real networks is in
``tests/test_bayes_theory_vs_networks.py``."""
from __future__ import annotations

import numpy as np
import pytest

import critheory as ct
from critheory.errors import CritheoryError
from critheory.theory.finitewidth.curves import finite_width_curves
from critheory.theory.finitewidth.data import data_statistics

X3 = np.array([[1.0, 0.2], [0.3, -0.9], [-0.5, 0.4]])


@pytest.mark.parametrize("act,sw,sb", [("relu", 2.0, 0.0), ("tanh", 1.0, 0.0),
                                       ("tanh", 1.5, 0.1), ("gelu", 1.7, 0.05)])
@pytest.mark.parametrize("arch", ["mlp", "residual"])
def test_each_input_is_the_single_input_theory(act, sw, sb, arch):
    net = ct.network(arch, act, mu=0.8) if arch == "residual" else ct.network(arch, act)
    s = data_statistics(net, sw, sb, X3[:2], depth=6)
    for a in range(2):
        q0 = float(X3[a] @ X3[a]) / 2
        c = finite_width_curves(net, sw, sb, 6, q0=q0)
        np.testing.assert_allclose(s.kernel[:, a, a], c.kernel, rtol=1e-13)
        np.testing.assert_allclose(s.vertex[:, a, a, a, a], c.vertex, rtol=1e-11, atol=1e-300)
        np.testing.assert_allclose(s.kernel_correction[:, a, a], c.nlo_kernel, rtol=1e-11,
                                   atol=1e-14)


def test_mean_field_kernel_is_the_two_input_recursion():
    # the off-diagonal kernel is the mean-field two-input map (expect2), layer by layer
    s = data_statistics(ct.network("mlp", "tanh"), 1.3, 0.05, X3[:2], depth=4)
    K = 0.05 + 1.3 * X3[:2] @ X3[:2].T / 2
    for l in range(1, 4):
        e = ct.expect2("tanh", "phi", "phi", K[0, 0], K[0, 1], K[1, 1]).value
        K = np.array([[0.05 + 1.3 * ct.expect("tanh", "phi2", K[0, 0]).value, 0.05 + 1.3 * e],
                      [0.05 + 1.3 * e, 0.05 + 1.3 * ct.expect("tanh", "phi2", K[1, 1]).value]])
        np.testing.assert_allclose(s.kernel[l], K, rtol=1e-12)


def test_deep_linear_network_by_wick():
    # φ(x) = x: G^{l+1} = C_b + C_W (1/n)Σ z zᵀ with z | G ~ N(0, G) i.i.d., so exactly
    # E[G^{l+1}] = K^{l+1} = C_b + C_W K^l (no 1/n shift) and
    # n Cov(G^{l+1}_ab, G^{l+1}_cd) = C_W² (K_ac K_bd + K_ad K_bc + V^l_(ab)(cd)) + O(1/n)
    sw, sb = 1.2, 0.3
    s = data_statistics(ct.network("mlp", "x"), sw, sb, X3, depth=5)
    K = sb + sw * X3 @ X3.T / 2
    V = np.zeros((3,) * 4)
    for l in range(1, 5):
        V = sw ** 2 * (np.einsum("ac,bd->abcd", K, K) + np.einsum("ad,bc->abcd", K, K) + V)
        K = sb + sw * K
        np.testing.assert_allclose(s.kernel[l], K, rtol=1e-13)
        np.testing.assert_allclose(s.vertex[l], V, rtol=1e-12, atol=1e-12 * np.abs(V).max())
        np.testing.assert_allclose(s.kernel_correction[l], 0.0, atol=1e-13)


def test_symmetries_and_permutations():
    s = data_statistics(ct.network("mlp", "tanh"), 1.0, 0.1, X3, depth=4)
    V = s.vertex[-1]
    for perm in [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)]:
        np.testing.assert_allclose(V, V.transpose(perm), rtol=1e-13, atol=1e-15)
    p = [2, 0, 1]
    t = data_statistics(ct.network("mlp", "tanh"), 1.0, 0.1, X3[p], depth=4)
    np.testing.assert_allclose(t.kernel[-1], s.kernel[-1][np.ix_(p, p)], rtol=1e-13)
    np.testing.assert_allclose(t.vertex[-1], V[np.ix_(p, p, p, p)], rtol=1e-11, atol=1e-14)


def test_duplicate_inputs_are_equal_rows():
    x = np.vstack([X3[:2], X3[:1]])
    s = data_statistics(ct.network("mlp", "relu"), 2.0, 0.1, x, depth=4)
    np.testing.assert_array_equal(s.kernel[:, 0], s.kernel[:, 2])
    np.testing.assert_array_equal(s.vertex[:, 0], s.vertex[:, 2])
    assert s.inputs.shape == (3, 2)


def test_cumulant_and_metric():
    s = data_statistics(ct.network("mlp", "tanh"), 1.0, 0.0, X3[:2], depth=3)
    k4 = s.cumulant4(16)
    assert np.isclose(k4[0, 0, 0, 0], 3 * s.vertex[-1, 0, 0, 0, 0] / 16)
    np.testing.assert_allclose(s.metric(16), s.kernel[-1] + s.kernel_correction[-1] / 16)
    assert "DataStatistics(" in repr(s) and set(s.to_dict()) >= {"kernel", "vertex"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(inputs=[[np.nan]]), "finite"),
    (dict(inputs=np.ones((17, 2))), "beyond"),
    (dict(depth=0), "depth"),
    (dict(depth=True), "integer"),
    (dict(inputs=[[0.0]], bias_var=0.0), "zero"),
    (dict(weight_var=-1.0), "weight"),
    # 8 distinct inputs: 70 four-dimensional quadratures per layer for tanh (~2 s each)
    (dict(inputs=np.random.default_rng(0).normal(size=(8, 3)), depth=9), "budget"),
])
def test_bad_input(kwargs, match):
    args = dict(arch=ct.network("mlp", "tanh"), weight_var=1.0, bias_var=0.1,
                inputs=[[1.0], [0.5]], depth=3)
    args.update(kwargs)
    with pytest.raises(CritheoryError, match=match):
        data_statistics(**args)


def test_budget_follows_the_route():
    """The closed-form route (ReLU, erf) allows far deeper runs than the general quadrature:
    8 inputs to depth 100 is refused for tanh at once and runs for ReLU (a few seconds)."""
    import time

    x = np.random.default_rng(0).normal(size=(8, 3))
    t0 = time.perf_counter()
    with pytest.raises(CritheoryError, match="budget"):
        data_statistics(ct.network("mlp", "tanh"), 1.0, 0.1, x, depth=100)
    assert time.perf_counter() - t0 < 1.0
    s = data_statistics(ct.network("mlp", "relu"), 2.0, 0.1, x, depth=12)
    assert np.all(np.isfinite(s.vertex))
    # the estimate follows the angular route's speed (0.3 ms an entry, measured 0.07-0.15 ms):
    # 16 inputs (3876 entries a layer) to depth 1000 are within the budget, tanh's 4-D ones not
    from critheory.common.limits import MAX_DATA_WORK
    from critheory.theory.finitewidth.data import seconds_per_layer

    relu, tanh = ct.network("mlp", "relu").activation, ct.network("mlp", "tanh").activation
    assert 1000 * seconds_per_layer(relu, 16) <= MAX_DATA_WORK
    assert 100 * seconds_per_layer(tanh, 8) > MAX_DATA_WORK


def test_layernorm_refused_in_one_line():
    with pytest.raises(CritheoryError, match="several inputs.*layernorm"):
        data_statistics(ct.network("pre-ln", "tanh"), 1.0, 0.1, [[1.0], [0.5]], depth=3)


def test_against_the_frozen_independent_recursion():
    """Kernel, 1/n shift and vertex over three inputs against ``tests/data/data_references.json``
    (``generate_data_references.py``: PDLT's recursion in the preactivations' derivative form,
    every expectation by one brute-force tensor Gauss–Hermite rule over all inputs, no critheory
    code). Tolerance: twice the reference's node-count difference plus the four-point rtol
    (1e-10) per layer, relative to the largest entry. Every bad entry is reported."""
    import json
    import pathlib

    refs = json.loads((pathlib.Path(__file__).parent / "data" / "data_references.json").read_text())
    bad = []
    for c in refs["cases"]:
        s = data_statistics(ct.network("mlp", c["activation"]), c["weight_var"], c["bias_var"],
                            c["inputs"], depth=c["depth"])
        for key in ("kernel", "kernel_correction", "vertex"):
            ref = np.array(c[key])
            tol = 2 * np.array(c[key + "_error"]) + 1e-10 * c["depth"] * np.abs(ref).max()
            got = getattr(s, key)
            for i in zip(*np.nonzero(np.abs(got - ref) > tol)):
                bad.append((c["activation"], key, i, got[i], ref[i]))
    assert not bad, bad[:20]
