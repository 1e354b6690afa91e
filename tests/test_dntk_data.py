"""The dNTK on several inputs (``critheory/theory/ntk/dntk_data.py``, ``docs/dntk.md`` §8)
against independent routes:

* one input: the one-input theory ``critheory/theory/ntk/dntk.py`` exactly, and the several-input
  estimator the one-input one (same networks, same numbers);
* the index structure: ``P`` symmetric in δ1 ↔ δ2, ``Y`` in α ↔ γ, both equivariant under a
  permutation of the inputs;
* the leading order is exact at layer 2 (as at one input): ensembles of width-4 networks on
  two inputs agree with it entry by entry (Student-t, Bonferroni at 1 %);
* deeper, the measured ``n × mean`` at two widths extrapolated in 1/n agrees with it;
* refusals: a kinked activation on several inputs, a block without a rule (named).
"""
from __future__ import annotations

import numpy as np
import pytest

from critheory.blocks.registry import network
from critheory.errors import CritheoryError
from critheory.simulation.dntk import measure_dntk
from critheory.simulation.dntk_data import measure_dntk_data
from critheory.theory.ntk.dntk import dntk_fields
from critheory.theory.ntk.dntk_data import dntk_data_statistics
from critheory.validation.dntk_data import compare_dntk_data

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

X2 = [[1.0, 0.0], [0.6, 0.8]]


@pytest.mark.parametrize("act, sw, sb", [("tanh", 1.0, 0.0), ("gelu", 1.7, 0.1),
                                         ("relu", 2.0, 0.0), ("linear", 1.0, 0.3)])
def test_one_input_is_the_one_input_theory(act, sw, sb):
    L, lb, lw = 5, 0.7, 1.2
    s = dntk_data_statistics("mlp", act, sw, sb, [[1.3]], depth=L, lambda_b=lb, lambda_w=lw)
    f = dntk_fields(network("mlp", act), sw, sb, np.full(L, lb), np.full(L, lw), q0=1.69)
    for k in ("P", "Q") + (("R", "S", "T", "U") if act != "relu" else ()):
        sc = np.max(np.abs(f[k])) + 1.0
        assert np.max(np.abs(getattr(s, k)[:, 0, 0, 0, 0] - f[k])) < 1e-13 * sc, k
    if act == "relu":
        assert np.all(np.isnan(s.S)) and np.all(np.isnan(f["S"]))
    assert np.all(s.P[0] == 0.0) and np.all(s.Q[0] == 0.0)          # layer 1


def test_index_symmetries_and_input_permutation():
    s = dntk_data_statistics("mlp", "tanh", 1.0, 0.1, X2, depth=3, lambda_b=0.8, lambda_w=1.1)
    assert np.allclose(s.P, s.P.transpose(0, 1, 3, 2, 4), rtol=0, atol=1e-14)
    assert np.allclose(s.Y, s.Y.transpose(0, 3, 2, 1, 4), rtol=0, atol=1e-14)
    r = dntk_data_statistics("mlp", "tanh", 1.0, 0.1, X2[::-1], depth=3, lambda_b=0.8,
                             lambda_w=1.1)
    perm = np.array([1, 0])
    assert np.allclose(s.S, s.S.transpose(0, 2, 1, 4, 3), rtol=1e-12, atol=1e-14)  # i↔j, a↔b
    assert np.allclose(s.T, s.T.transpose(0, 2, 1, 4, 3), rtol=1e-12, atol=1e-14)
    assert np.allclose(s.R, s.R.transpose(0, 1, 2, 4, 3), rtol=1e-12, atol=1e-14)  # δ2 ↔ δ3
    for k in ("P", "Q", "X", "Y", "R", "S", "T", "U"):
        a, b = getattr(s, k), getattr(r, k)
        assert np.allclose(a, b[np.ix_(np.arange(3), perm, perm, perm, perm)], rtol=1e-9,
                           atol=1e-12), k
    # the diagonal entries are the one-input numbers at each input's own norm
    for al, x in enumerate(X2):
        o = dntk_data_statistics("mlp", "tanh", 1.0, 0.1, [x], depth=3, lambda_b=0.8,
                                 lambda_w=1.1)
        assert np.allclose(s.P[:, al, al, al, al], o.P[:, 0, 0, 0, 0], rtol=1e-12, atol=0)


def test_estimator_at_one_input_is_the_one_input_estimator():
    a = measure_dntk_data("tanh", 1.0, 0.0, [[1.0]], width=6, depth=3, networks=40, seed=3)
    b = measure_dntk("tanh", 1.0, 0.0, width=6, depth=3, networks=40, seed=3, layers=(3,))
    for k in "pqrstu":
        assert np.allclose(a.samples[k][:, 0, 0, 0, 0], b.samples[k][:, 0], rtol=0,
                           atol=1e-13), k


@pytest.mark.parametrize("act, sw, sb", [("tanh", 1.0, 0.1), ("gelu", 1.7, 0.2)])
def test_layer_two_is_exact_at_width_four_on_two_inputs(act, sw, sb):
    c = compare_dntk_data(act, sw, sb, X2, widths=(4,), depth=2, networks=8000, lambda_b=0.8,
                          lambda_w=1.2, seed=17)
    assert c.decision(0.01).verdict == "consistent", c.to_dict()
    assert set(c.t) == {"P", "Q", "R", "S", "T", "U"}
    assert min(np.max(np.abs(c.predicted[k])) for k in ("P", "Q")) > 0.05      # not trivial


def test_depth_three_extrapolated_on_two_inputs():
    """tanh at criticality with a small bias, layer 3 at n = 16, 32 extrapolated in 1/n: P, Q
    and R, S, T, U (whose phi rules first read the layer-2 B, F, X, Y and R … U here)."""
    c = compare_dntk_data("tanh", 1.0, 0.1, X2, widths=(16, 32), depth=3, networks=2000,
                          seed=100)
    assert c.decision(0.01).verdict == "consistent", c.to_dict()


def test_refusals():
    with pytest.raises(CritheoryError, match="smooth activation"):
        dntk_data_statistics("mlp", "relu", 2.0, 0.0, X2, depth=3)
    with pytest.raises(CritheoryError, match="(?i)layernorm|layer_norm"):
        dntk_data_statistics(network("pre-ln", "tanh"), weight_var=1.0, inputs=X2, depth=3)
    with pytest.raises(CritheoryError):
        dntk_data_statistics("mlp", "tanh", 1.0, 0.0, [[np.nan]], depth=2)


def test_coinciding_inputs_are_one_input():
    """Two copies of one input: every entry of every tensor is the one-input number (the
    multipoint expectations at coinciding inputs and the Stein contractions collapse onto the
    one-input moments)."""
    s = dntk_data_statistics("mlp", "tanh", 1.0, 0.1, [[1.0, 0.0], [1.0, 0.0]], depth=3)
    o = dntk_data_statistics("mlp", "tanh", 1.0, 0.1, [[1.0, 0.0]], depth=3)
    for k in ("P", "Q", "R", "S", "T", "U"):
        a, b = getattr(s, k)[-1], getattr(o, k)[-1][0, 0, 0, 0]
        assert np.allclose(a, b, rtol=1e-12, atol=0), k
