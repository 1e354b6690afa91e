"""The tabulated NTK route (``ntk_curves`` beyond 64 layers on one input: verified Chebyshev
tables of one layer, :func:`critheory.theory.ntk.depth.layer_table`) against the per-layer
quadrature route (``tabulate=False``) and mpmath, within the sum of the routes' own error
estimates.

Error estimates. The per-layer route evaluates ``K_next = σ_b² + σ_w² E_K[φ²]``, ``B = 1``,
``W = E_K[φ²]``, ``c = σ_w² E_K[φ'²]`` (the MLP unit, :mod:`critheory.theory.ntk.rules`) by
quadratures whose absolute error estimates :func:`critheory.expectations.expect` reports; a row
of an accepted table piece is within ``TABLE_RTOL`` relative of those quadrature values (the
table's check), so the table's estimate is ``TABLE_RTOL |row|`` plus the quadrature error of its
nodes. Over depth the per-layer estimates are carried through the recursion to first order
(``δK^{l+1} = |f'(K^l)| δK^l + τ_K``, ``δΘ^l = λ_b δB + λ_W δW + |Θ^{l−1}| δc + |c| δΘ^{l−1}``
with ``δB = |∂_K B| δK^{l−1} + τ_B`` etc.; the derivatives by central differences of the exact
layer map, whose own error is far below the bound), which is the bound the two curves must
meet; the neglected second-order terms are of order (1e-10)².
"""
from __future__ import annotations

import numpy as np
import pytest

from critheory.expectations import expect
from critheory.expectations.reference import mp_expect
from critheory.theory.meanfield.maps import architecture
from critheory.theory.ntk import ntk_curves
from critheory.theory.ntk.depth import (TABLE_RTOL, layer_map, layer_table,
                                        tabulated_layer)

EPS = np.finfo(float).eps
#: (activation, σ_w², σ_b²): tanh and GELU at criticality (tanh's K^l → 0 like 1/l; GELU's
#: critical point of critical_point_for_inputs(gelu, 1)), ReLU with a bias (K^l grows linearly,
#: so the rows are not the exact constants of σ_b = 0)
POINTS = [("tanh", 1.0, 0.0), ("gelu", 1.9568811551161576, 0.3878470596372985),
          ("relu", 2.0, 0.1)]
LAMBDA_B, LAMBDA_W = 0.7, 1.3


def _quad_error(act: str, sw: float, K) -> np.ndarray:
    """Absolute error estimate of the per-layer route's rows ``K_next, B, W, c`` at ``K``: the
    quadratures' estimates plus four roundings of each row."""
    K = np.atleast_1d(np.asarray(K, dtype=float))
    e2, d2 = expect(act, "phi2", K), expect(act, "dphi2", K)
    err = np.vstack([sw * e2.error, np.zeros_like(K), e2.error, sw * d2.error])
    rows = np.vstack([np.abs(sw * e2.value), np.ones_like(K), np.abs(e2.value),
                      np.abs(sw * d2.value)])
    return err + 4 * EPS * rows


def _table_rows(table, arch, sw, sb, K) -> tuple[np.ndarray, np.ndarray]:
    """Rows from the table at every ``K`` and whether each came from an accepted piece."""
    out = [tabulated_layer(table, arch, sw, sb, float(k)) for k in K]
    return np.array([v for v, _ in out]).T, np.array([t for _, t in out])


@pytest.mark.parametrize("act,sw,sb", POINTS)
def test_table_rows_agree_with_quadrature_within_both_estimates(act, sw, sb):
    """At 200 kernels over 16 decades (and the deep kernels of the curve) every row of the
    table is within TABLE_RTOL |row| + 2 × the quadrature estimate of the exact layer map."""
    arch = architecture("mlp", act)
    table = layer_table(arch, sw, sb)
    K = np.concatenate([np.logspace(-8, 8, 200),
                        ntk_curves("mlp", act, sw, sb, 2000).kernel[::50]])
    got, tab = _table_rows(table, arch, sw, sb, K)
    ref = layer_map(arch, sw, sb, K)
    bound = TABLE_RTOL * np.abs(ref) + 2 * _quad_error(act, sw, K)
    assert tab.mean() > 0.9                           # the table, not the fallback, is tested
    excess = np.abs(got - ref) - bound
    assert np.all(excess <= 0), (K[np.argmax(excess.max(axis=0))], excess.max())
    # the exact map where a piece is not tabulated: identical values
    assert np.array_equal(got[:, ~tab], ref[:, ~tab])


def _propagated_bound(act, sw, sb, curve, L):
    """First-order bound on |Θ_tab − Θ_quad| and |K_tab − K_quad| per layer (module doc)."""
    arch = architecture("mlp", act)
    K = curve.kernel
    rows = layer_map(arch, sw, sb, K[:-1])                   # rows of layers 2..L
    h = 1e-5 * K[:-1]
    deriv = np.abs(layer_map(arch, sw, sb, K[:-1] + h)
                   - layer_map(arch, sw, sb, K[:-1] - h)) / (2 * h)
    tau = TABLE_RTOL * np.abs(rows) + 2 * _quad_error(act, sw, K[:-1])
    eK, eT = np.zeros(L), np.zeros(L)
    T = curve.ntk
    for i in range(1, L):
        d, t, r = deriv[:, i - 1], tau[:, i - 1], rows[:, i - 1]
        eK[i] = d[0] * eK[i - 1] + t[0]
        eB, eW, ec = (d[1:] * eK[i - 1] + t[1:])
        eT[i] = (LAMBDA_B * eB + LAMBDA_W * eW + abs(T[i - 1]) * ec + abs(r[3]) * eT[i - 1]
                 + 4 * EPS * (LAMBDA_B * abs(r[1]) + LAMBDA_W * abs(r[2])
                              + abs(r[3] * T[i - 1])))
    return eK, eT


@pytest.mark.parametrize("act,sw,sb", POINTS)
def test_tabulated_curves_within_propagated_estimates(act, sw, sb):
    """Θ^l and K^l of the two routes over 400 layers differ by no more than the per-layer
    estimates carried through the recursion; the bound is not vacuous (below 1e-8 relative)."""
    L = 400
    kw = dict(lambda_b=LAMBDA_B, lambda_w=LAMBDA_W)
    new = ntk_curves("mlp", act, sw, sb, L, **kw)
    old = ntk_curves("mlp", act, sw, sb, L, tabulate=False, **kw)
    eK, eT = _propagated_bound(act, sw, sb, old, L)
    assert np.all(np.abs(new.kernel - old.kernel) <= eK)
    assert np.all(np.abs(new.ntk - old.ntk) <= eT)
    assert np.all(eT <= 1e-8 * np.abs(old.ntk)) and np.all(eK <= 1e-8 * old.kernel)


@pytest.mark.parametrize("act,sw,sb", POINTS[:2])
def test_table_error_estimate_bounds_the_mpmath_difference(act, sw, sb):
    """At the kernels of layers 2 and 1000 the table's rows differ from mpmath's (20 digits) by
    at most the table's estimate TABLE_RTOL |row| + the quadrature estimate."""
    arch = architecture("mlp", act)
    table = layer_table(arch, sw, sb)
    K = ntk_curves("mlp", act, sw, sb, 1000).kernel[[0, 998]]
    got, tab = _table_rows(table, arch, sw, sb, K)
    assert tab.all()
    e2 = np.array([float(mp_expect(act, "phi2", k, dps=20)) for k in K])
    d2 = np.array([float(mp_expect(act, "dphi2", k, dps=20)) for k in K])
    ref = np.vstack([sb + sw * e2, np.ones_like(K), e2, sw * d2])
    bound = TABLE_RTOL * np.abs(ref) + _quad_error(act, sw, K)
    assert np.all(np.abs(got - ref) <= bound), (np.abs(got - ref) / bound).max()


def test_scalar_evaluation_has_the_digits_of_chebval():
    """PiecewiseChebyshev.values (the per-layer evaluator of both depth routes) returns exactly
    numpy's chebval of the accepted piece, at 500 points over 12 decades of K."""
    from numpy.polynomial import chebyshev as C

    table = layer_table(architecture("mlp", "gelu"), *POINTS[1][1:])
    for x in np.random.default_rng(1).uniform(-6.0, 6.0, 500):
        a, b, c = table.piece(x)
        assert table.values(x) == C.chebval(2.0 * (x - a) / (b - a) - 1.0, c).tolist()
