"""The derived named integrands ``OP:name`` (issue 32's cold start: what the K-derivatives of
E[φ²], E[φ'²], E[hφφ'] integrate, named so that the zoo cache holds them) are the very
expressions the former sympy route built: same values and error bars as the expression route,
their point masses scaled by b^k, bad names refused in one line."""
from __future__ import annotations

import numpy as np
import pytest

from critheory.activation.symbolic import X, Activation
from critheory.errors import InvalidArgumentError
from critheory.expectations.derivatives import dexpect
from critheory.expectations.gaussian import expect
from critheory.expectations.integrands import integrand

K = np.array([1e-3, 0.3, 1.0, 7.0, 1e3])


@pytest.mark.parametrize("name,base", [("tanh", "phi2"), ("gelu", "dphi2"),
                                       ("swish", "h_phi_dphi"), ("elu", "phi2"),
                                       ("softplus", "dphi2")])
def test_named_equals_the_expression_route(name, base):
    import sympy as sp

    act = Activation.get(name)
    b = integrand(act, base)
    smooth = not b.breakpoints and not b.point_masses
    ops = {"dx2": lambda e: sp.diff(e, X, 2), "dx4": lambda e: sp.diff(e, X, 4),
           "x2": lambda e: e * X ** 2, "x4": lambda e: e * X ** 4}
    for op, make in ops.items():
        if op.startswith("dx") and not smooth:
            with pytest.raises(InvalidArgumentError, match="smooth"):
                integrand(act, f"{op}:{base}")
            continue
        named = expect(act, f"{op}:{base}", K)
        expr = expect(act, make(b.expr), K)
        assert np.array_equal(named.value, expr.value), (name, op)
        assert np.array_equal(named.error, expr.error), (name, op)


@pytest.mark.slow     # ~10 s; tests/test_finitewidth.py checks the derivatives against mpmath
def test_derivatives_against_mpmath():
    """d/dK and d²/dK² of E[φ'²] for GELU (heat route through dx2/dx4) and of E[φ²] for ELU
    (Stein route through x2/x4) within their error bars of the 20-digit reference."""
    for name, g, method in (("gelu", "dphi2", "heat"), ("elu", "phi2", "stein")):
        for order in (1, 2):
            r = dexpect(name, g, 0.7, order)
            ref = dexpect(name, g, 0.7, order, method="mpmath", dps=20)
            assert r.method == method
            assert np.all(np.abs(r.value - ref.value) <= r.error + ref.error), (name, order)


def test_point_masses_scale_and_bad_names():
    act = Activation.get("hardtanh")           # φφ'' has masses at the kinks x = ±1
    base = integrand(act, "phi_d2phi")
    assert base.point_masses
    for k in (2, 4):
        d = dict(integrand(act, f"x{k}:phi_d2phi").point_masses)
        assert d == {b: b ** k * c for b, c in base.point_masses}
    for bad in ("dx3:phi2", "x2:nope", "dx2:", "phi2:dx2"):
        with pytest.raises(InvalidArgumentError, match="unknown integrand"):
            integrand(act, bad)
