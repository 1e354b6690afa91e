"""Gradient and Hessian of E[φ(h_a)φ(h_b)] in (K_aa, K_ab, K_bb)
(:mod:`critheory.expectations.kernel_derivatives`) against independent routes: sympy's exact
derivatives of the closed forms (ReLU's arc-cosine kernel, Cho & Saul 2009; erf's arcsine
kernel, Williams 1998), and central differences of the two-point expectation itself for
activations without a closed form. Every bad point is reported."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from critheory.errors import CritheoryError
from critheory.expectations import expect2
from critheory.expectations.kernel_derivatives import pair_derivatives

A, B, C = sp.symbols("a b c", positive=True)


def _relu_kernel():
    th = sp.acos(B / sp.sqrt(A * C))
    return sp.sqrt(A * C) / (2 * sp.pi) * (sp.sin(th) + (sp.pi - th) * sp.cos(th))


def _erf_kernel():
    return 2 / sp.pi * sp.asin(2 * B / sp.sqrt((1 + 2 * A) * (1 + 2 * C)))


def _erf23_kernel():
    # 2·erf(3x): c² (2/π) arcsin(2a² K_ab/√((1 + 2a² K_aa)(1 + 2a² K_bb))), c = 2, a = 3
    return 8 / sp.pi * sp.asin(18 * B / sp.sqrt((1 + 18 * A) * (1 + 18 * C)))


POINTS = [(1.0, 0.3, 1.0), (1.3, 0.6, 0.9), (0.2, -0.1, 2.5), (4.0, 3.5, 3.5), (1.0, -0.9, 1.0)]


@pytest.mark.parametrize("name,kernel", [("relu", _relu_kernel), ("erf", _erf_kernel),
                                         ("2*erf(3*x)", _erf23_kernel)])
def test_against_sympy_closed_forms(name, kernel):
    e = kernel()
    p = (A, B, C)
    grad = [sp.lambdify(p, sp.diff(e, v), "mpmath") for v in p]
    hess = [[sp.lambdify(p, sp.diff(e, u, v), "mpmath") for v in p] for u in p]
    k = np.array(POINTS)
    d = pair_derivatives(name, k[:, 0], k[:, 1], k[:, 2])
    bad = []
    for i, pt in enumerate(POINTS):
        g = np.array([float(f(*pt)) for f in grad])
        h = np.array([[float(f(*pt)) for f in row] for row in hess])
        ge = np.abs(d.grad[i] - g)
        he = np.abs(d.hess[i] - h)
        # the reported error bounds the true one (with a floor at float64 round-off)
        if np.any(ge > d.grad_error[i] + 1e-13 * np.abs(g).max()) or \
                np.any(he > d.hess_error[i] + 1e-12 * np.abs(h).max()):
            bad.append((pt, ge.max(), d.grad_error[i].max(), he.max(), d.hess_error[i].max()))
    assert not bad, bad


@pytest.mark.parametrize("name", ["tanh", "gelu", "leaky_relu", "softplus"])
def test_against_central_differences(name):
    k = np.array([1.3, 0.6, 0.9])
    d = pair_derivatives(name, *k)

    def E(kk):
        return float(expect2(name, "phi", "phi", *kk, rtol=1e-13).value)

    h = 1e-3
    bad = []
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        # fourth-order central difference: truncation ~h^4 |E'''''| ~ 1e-12
        fd = (-E(k + 2 * e) + 8 * E(k + e) - 8 * E(k - e) + E(k - 2 * e)) / (12 * h)
        if abs(fd - d.grad[i]) > 1e-9:
            bad.append(("grad", i, fd, d.grad[i]))
        gp = pair_derivatives(name, *(k + e)).grad
        gm = pair_derivatives(name, *(k - e)).grad
        gp2 = pair_derivatives(name, *(k + 2 * e)).grad
        gm2 = pair_derivatives(name, *(k - 2 * e)).grad
        fdh = (-gp2 + 8 * gp - 8 * gm + gm2) / (12 * h)
        if np.any(np.abs(fdh - d.hess[i]) > 1e-7):
            bad.append(("hess", i, fdh, d.hess[i]))
    assert not bad, bad


def test_hessian_symmetric_and_vectorized():
    k11 = np.array([1.0, 2.0])
    d = pair_derivatives("tanh", k11, np.array([0.2, -0.4]), np.array([0.5, 1.0]))
    assert d.grad.shape == (2, 3) and d.hess.shape == (2, 3, 3)
    assert np.array_equal(d.hess, np.swapaxes(d.hess, -1, -2))
    one = pair_derivatives("tanh", 2.0, -0.4, 1.0)
    assert np.allclose(one.hess, d.hess[1], rtol=1e-13, atol=0)


def test_bad_covariances():
    with pytest.raises(CritheoryError, match="rho"):
        pair_derivatives("relu", 1.0, 1.0, 1.0)        # kinked φ at |ρ| = 1: singular
    with pytest.raises(CritheoryError):
        pair_derivatives("tanh", 1.0, 0.1, -1.0)
    with pytest.raises(CritheoryError):
        pair_derivatives("tanh", np.nan, 0.1, 1.0)
    smooth = pair_derivatives("tanh", 1.0, 1.0, 1.0)    # smooth φ: fine at ρ = 1
    assert np.all(np.isfinite(smooth.hess))
