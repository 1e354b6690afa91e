"""The shaped-SDE integrator's inner kernels (issue 32, cold start of ``critheory sde``).

ν(ρ) is evaluated as ``√((1 − ρ)(1 + ρ)) − ρ arccos ρ`` (series below θ = 0.05) instead of
``sin θ − θ cos θ``: checked against mpmath at 40 digits, to about one ulp of ν, over the whole
range and at both ends. The step kernel computes into caller-given arrays (no allocation in the
integrator's loop): the allocating and the in-place calls must agree bit for bit, and the
in-place call must return the arrays it was given. The integrator's statistics are checked
against the Fokker–Planck solver and the exact ODE limit in ``tests/test_shaped.py``.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from critheory.theory.shaped import shape_relu, shape_smooth
from critheory.theory.shaped.sde import (GEO2_SCRATCH, drift_pair, geo_step2, nu,
                                         sin_minus_theta_cos)
from critheory.theory.shaped.solve import _project2

ULP = 2.0 ** -52


@pytest.mark.parametrize("cp,cm", [(0.0, -1.0), (1.0, -1.0), (0.3, -2.5)])
def test_nu_against_mpmath(cp, cm):
    s = shape_relu(cp, cm)
    rng = np.random.default_rng(11)
    rho = np.concatenate([rng.uniform(-1, 1, 400), 1 - np.logspace(-16, 0, 120),
                          -1 + np.logspace(-16, 0, 120), [-1.0, 0.0, 1.0]])
    with mp.workdps(40):
        ref = np.array([float(s.k * (mp.sqrt(1 - mp.mpf(r) ** 2) - mp.mpf(r) * mp.acos(mp.mpf(r)))
                              / (2 * mp.pi)) for r in rho])
    v = nu(s, rho)
    # ν ≤ k/2; each of the few operations rounds once and arccos is correctly rounded to an
    # ulp: a few ulps of k/2 absolutely (the cancellation near ρ = 1, where ν ~ θ³, is
    # handled by the series, relative there)
    assert np.max(np.abs(v - ref)) <= 8 * ULP * s.k / 2
    near = rho > np.cos(0.05)
    assert np.all(np.abs(v[near] - ref[near]) <= 1e-13 * np.abs(ref[near]) + 1e-300)
    # the same function as the sin/cos form, to rounding
    theta = np.arccos(rho)
    assert np.allclose(v, s.k * sin_minus_theta_cos(theta) / (2 * np.pi), rtol=0,
                       atol=8 * ULP * s.k / 2)


def test_nu_and_drift_on_scalars_and_broadcast():
    s = shape_relu(0.0, -1.0)
    assert isinstance(nu(s, 0.3), np.floating) and nu(s, 1.0) == 0.0
    assert nu(s, 2.0) == 0.0 and nu(s, -3.0) == nu(s, -1.0)          # clipped
    x = np.array([0.2, 0.7])
    assert np.array_equal(nu(s, x), [nu(s, 0.2), nu(s, 0.7)])
    assert x.tolist() == [0.2, 0.7]                                     # input not touched
    # b_ab = ν(ρ)√(V_aa V_bb); a zero norm gives 0 (ρ taken as 1), a negative one is clipped
    assert drift_pair(s, 2.0, 0.5, 0.3) == nu(s, 0.3) * 1.0
    assert drift_pair(s, 0.0, 1.0, 0.0) == 0.0 and drift_pair(s, -1.0, 1.0, 0.0) == 0.0
    d = np.array([1.0, 4.0])
    b = drift_pair(s, d[:, None], d[None, :], np.array([[1.0, 0.5], [0.5, 4.0]]))
    assert b.shape == (2, 2) and b[0, 0] == 0.0 and b[0, 1] == b[1, 0] == nu(s, 0.25) * 2.0


@pytest.mark.parametrize("shaping", [shape_relu(0.0, -1.0), shape_smooth("tanh", 1.0),
                                     shape_smooth("x + x**2", 0.7)],
                         ids=["relu", "tanh", "quadratic"])
def test_geo_step2_in_place_equals_allocating(shaping):
    rng = np.random.default_rng(5)
    n = 1000
    a, c = np.exp(rng.normal(0, 1, n)), np.exp(rng.normal(0, 1, n))
    b = rng.uniform(-1, 1, n) * np.sqrt(a * c)
    b[:5] = np.sqrt(a[:5] * c[:5])          # singular
    a[5] = 0.0
    g = rng.standard_normal((4, n))
    g[:, 7] = 0.0                           # d = 0: the series branch of sinh(d)/d
    args = [v.copy() for v in (a, b, c)]
    ref = geo_step2(shaping, a, b, c, g, 0.02)
    out = tuple(np.full(n, np.nan) for _ in range(3))
    work = [np.full(n, np.nan) for _ in range(GEO2_SCRATCH)]
    for _ in range(2):                      # scratch holding the last call's values
        got = geo_step2(shaping, a, b, c, g, 0.02, out=out, work=work)
        assert all(x is y for x, y in zip(got, out))
        assert all(np.array_equal(x, y) for x, y in zip(got, ref))
    assert all(np.array_equal(x, y) for x, y in zip(args, (a, b, c)))   # inputs not touched
    assert all(np.all(np.isfinite(x)) for x in ref)
    if shaping.homogeneous:      # no drift of the norms: the multiplicative step keeps them >= 0
        assert np.all(ref[0] >= 0) and np.all(ref[2] >= 0)


def test_project2_in_place_equals_copy():
    rng = np.random.default_rng(2)
    a, c = rng.uniform(0.1, 1, 200), rng.uniform(0.1, 1, 200)
    b = rng.uniform(-1.5, 1.5, 200) * np.sqrt(a * c)       # some outside the cone
    (pa, pb, pc), n1 = _project2(a, b, c)
    assert n1 > 0 and np.all(pa * pc - pb * pb >= -1e-12 * (pa + pc) ** 2)
    v = [a.copy(), b.copy(), c.copy()]
    (qa, qb, qc), n2 = _project2(*v, inplace=True)
    assert n2 == n1 and qa is v[0] and qb is v[1] and qc is v[2]
    assert all(np.array_equal(x, y) for x, y in zip((pa, pb, pc), (qa, qb, qc)))
