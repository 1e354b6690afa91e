"""The scalar root finder (:func:`critheory.theory.roots.brent`) against scipy's ``brentq``
(an independent implementation of the same method) and against known roots: each root lies
within the promised bracket width 2(xtol + rtol|x|) of the true one and of scipy's, and bad
brackets are refused."""
from __future__ import annotations

import math

import pytest

from critheory.errors import ConvergenceError
from critheory.theory.roots import brent

CASES = [   # (f, a, b, true root or None)
    (lambda x: x ** 3 - 2 * x - 5, 2.0, 3.0, 2.0945514815423265),
    (math.cos, 0.0, 3.0, math.pi / 2),
    (lambda x: math.exp(x) - 1e-10, -40.0, 1.0, math.log(1e-10)),
    (lambda x: math.tanh(50 * (x - 0.3)), -1.0, 1.0, 0.3),
    (lambda x: x - 1e-300, -1.0, 1.0, 1e-300),
    (lambda x: math.atan(x) - 1e-12, -1e3, 1e3, math.tan(1e-12)),
    (lambda x: (x - 1) ** 3, 0.0, 3.0, 1.0),         # a triple root: slow for interpolation
    (lambda x: 1 / (x - 0.5) if x != 0.5 else 1.0, 0.0, 1.0, 0.5),   # a pole, not a root
]


@pytest.mark.parametrize("xtol,rtol", [(1e-15, 1e-15), (2e-12, 8.9e-16)])
def test_brent_roots_within_the_promised_width(xtol, rtol):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    bad = []
    for i, (f, a, b, root) in enumerate(CASES):
        x = brent(f, a, b, xtol=xtol, rtol=rtol)
        width = 2 * (xtol + rtol * abs(x))
        try:
            ref = scipy_optimize.brentq(f, a, b, xtol=xtol, rtol=rtol, maxiter=200)
        except RuntimeError:        # scipy's 200 iterations do not end the triple root
            ref = root
        tol = width + 4 * math.ulp(root)
        if abs(x - root) > tol or abs(x - ref) > tol + 2 * (xtol + rtol * abs(ref)):
            bad.append((i, x, root, ref))
    assert not bad, bad


def test_brent_refuses_a_bracket_without_a_sign_change():
    with pytest.raises(ConvergenceError):
        brent(lambda x: x * x + 1.0, -1.0, 1.0)
    with pytest.raises(ConvergenceError):
        brent(lambda x: float("nan"), -1.0, 1.0)


def test_brent_endpoints_and_counts():
    assert brent(lambda x: x, 0.0, 1.0) == 0.0
    assert brent(lambda x: x - 1.0, 0.0, 1.0) == 1.0
    calls = []

    def f(x):
        calls.append(x)
        return x ** 3 - 2 * x - 5

    brent(f, 2.0, 3.0, xtol=1e-15, rtol=1e-15)
    assert len(calls) <= 12          # superlinear: scipy's brentq takes 8 calls here
