"""Every architecture's recursion against independent routes, and two published claims.

(a) **The layer's own Jacobian.** For each architecture the one-layer map and its Jacobian are
    written out *in this file* with numpy (activations and their derivatives included, LayerNorm
    ``y = (h - mean h)/s``, ``s² = mean((h - mean h)²)``, with its Jacobian
    ``(I - 11ᵀ/N - yyᵀ/N)/s``; checked against finite differences). Drawing ``h ~ N(0, K I_N)``
    and fresh weights, the Monte-Carlo averages of ``‖J‖_F²/N`` and of ``mean(h'²)`` estimate
    the theory's ``χ_J(K)`` and kernel map ``K'(K)``
    (:meth:`critheory.theory.meanfield.maps.LayerMaps.chi_jacobian`, ``kernel_map``).
(b) **The finite-width simulator** (:func:`critheory.simulation.simulate`) against the
    infinite-width depth curves (:func:`critheory.theory.meanfield.depth.depth_curves`): mean APJN ``J^{l0,l}`` and
    mean kernel over networks within a few standard errors, width >= 256, 10–12 layers.
(c) **Published claims** [DHG = Doshi, He, Gromov, arXiv:2111.12143]: ReLU's pre-LN critical line
    is ``σ_b² = 0``; the pre-LN residual ReLU network at ``μ = 1``, ``σ_b = 0`` has
    ``J^{l0,l} = K^l / K^{l0}``.

Tolerances
----------
One-layer Monte-Carlo estimates (N = 512, 16 draws) are compared at ``4.5·(standard error)``
(the standard error is estimated from 16 samples: ``P(|t_15| > 4.5) ≈ 4e-4`` per comparison)
plus, where the finite-N mean is not exactly the infinite-width value, an allowance for its
known ``O(1/N)`` bias:

* ``mlp``, ``residual``: none. With ``h`` i.i.d. Gaussian and ``W`` independent,
  ``E‖W D‖_F²/N = σ_w² E[φ'²]`` and ``E[h'²] = σ_b² + σ_w² E[φ²]`` exactly (the cross terms
  ``2μ tr(W D)/N`` and ``2μ h·(Wφ + b)/N`` have mean zero).
* pre-LN layers (``pre-ln``, ``pre-ln-residual``, ``pre-ln-mlp-block``): ``4/N`` relative. The
  direction of ``h - mean h`` is independent of ``s`` and ``E[1/s²] = N/((N-3)K)`` (``N s²/K`` is
  ``χ²_{N-1}``); the LN Jacobian is a rank ``N-2`` projector over ``s``, so
  ``E‖W D P‖_F²/(N s²) = σ_w² E[Σ φ'(y_i)² (1 - 1/N - y_i²/N)]/N · E[1/s²]``: relative bias
  ``(3 - 1 - E[φ'² y²]/E[φ'²])/N + O(1/N)`` from the non-Gaussian law of ``y`` (``|y|² = N``
  exactly), below ``3/N`` here. (For the MLP block the branch is exact up to the factor
  ``(N-2)/(N-3)``: ``u = W₁y + b₁`` is exactly ``N(0, σ_w² + σ_b²)`` and independent of ``W₁P``.)
* ``post-ln``: ``10/N`` relative for ``χ_J``: ``E[1/s²]`` of the sample variance of ``φ(h)`` is
  ``(1 + (κ - 1)/N + ...)/Var[φ]`` with the kurtosis ``κ`` of ``φ(h)`` (5.4 for ReLU). Its kernel
  map is exact: ``mean(LN(·)²) = 1`` identically.

For (b), the simulated means carry ``O(l/N)`` corrections; at ``l <= 12`` and ``N = 512`` they are
``<~ 2 %``, below the standard errors used (measured: largest ``|z|`` 2.7 over a sweep of 22
points at ``N = 1024``, 128 networks, 12 layers; the ``slow`` test repeats 16 of them), so no
allowance is added and the threshold is ``|z| <= 4.5`` (the test file passed for 20 values of
``CRITHEORY_TEST_SEED``, which offsets every seed).
"""
from __future__ import annotations

import math
import os
import zlib

import numpy as np
import pytest
from scipy import integrate
from scipy.special import erf

from critheory.theory.meanfield.critical_sets import everywhere_apjn, everywhere_constants
from critheory.theory.meanfield.criticality import critical_line
from critheory.theory.meanfield.depth import depth_curves
from critheory.theory.meanfield.maps import architecture
from critheory.simulation import simulate

# --------------------------------------------------------------------------- activations
_SQ2PI = math.sqrt(2.0 * math.pi)
ACTS = {  # φ and φ' written out here, independent of critheory.activation.symbolic
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "erf": (erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x)),
    "gelu": (lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
             lambda x: 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * np.exp(-x * x / 2) / _SQ2PI),
}
RESIDUAL = ("residual", "pre-ln-residual", "pre-ln-mlp-block")
#: Offset of every random seed in this file (fixed; vary it to re-draw every test's samples).
SEED = int(os.environ.get("CRITHEORY_TEST_SEED", "0"))


def ln(h):
    """LayerNorm without affine parameters (biased variance, eps = 0)."""
    c = h - h.mean()
    s = math.sqrt(float(np.mean(c * c)))
    return c / s, s


def ln_jacobian(h):
    """∂LN(h)/∂h = (I - 11ᵀ/N - yyᵀ/N)/s."""
    y, s = ln(h)
    n = h.size
    return (np.eye(n) - 1.0 / n - np.outer(y, y) / n) / s


def draw_layer(name, act, mu, sw, sb, n, rng):
    """Fresh weights of one layer: a function h -> (h', explicit N×N Jacobian ∂h'/∂h)."""
    phi, dphi = ACTS[act]
    W = rng.standard_normal((n, n)) * math.sqrt(sw / n)
    b = rng.standard_normal(n) * math.sqrt(sb)
    W2 = rng.standard_normal((n, n)) * math.sqrt(sw / n)
    b2 = rng.standard_normal(n) * math.sqrt(sb)

    def f(h):
        if name in ("mlp", "residual"):              # h' = W φ(h) + b
            out, J = W @ phi(h) + b, W * dphi(h)[None, :]
        elif name in ("pre-ln", "pre-ln-residual"):  # h' = W φ(LN h) + b
            y, _ = ln(h)
            out, J = W @ phi(y) + b, (W * dphi(y)[None, :]) @ ln_jacobian(h)
        elif name == "post-ln":                      # h' = W LN(φ(h)) + b
            a = phi(h)
            z, _ = ln(a)
            out, J = W @ z + b, (W @ ln_jacobian(a)) * dphi(h)[None, :]
        else:                                        # h' = W₂ φ(W LN h + b) + b₂
            y, _ = ln(h)
            u = W @ y + b
            out, J = W2 @ phi(u) + b2, ((W2 * dphi(u)[None, :]) @ W) @ ln_jacobian(h)
        if name in RESIDUAL:                         # + μ h
            out, J = out + mu * h, J + mu * np.eye(n)
        return out, J

    return f


def finite_n_allowance(name: str, quantity: str) -> float:
    """Relative O(1/N) bias allowance (× 1/N) of the one-layer Monte Carlo (module docstring)."""
    if name in ("mlp", "residual"):
        return 0.0
    if name == "post-ln":
        return 10.0 if quantity == "chi" else 0.0
    return 4.0


# --------------------------------------------------------------------------- (a) one layer
def test_layernorm_jacobian_by_finite_differences():
    rng = np.random.default_rng(3)
    h = rng.standard_normal(10) * 1.7 + 0.3
    eps = 1e-6
    fd = np.empty((10, 10))
    for j in range(10):
        e = np.zeros(10)
        e[j] = eps
        fd[:, j] = (ln(h + e)[0] - ln(h - e)[0]) / (2 * eps)
    np.testing.assert_allclose(ln_jacobian(h), fd, atol=1e-8)


@pytest.mark.parametrize("name", ["mlp", "residual", "pre-ln", "post-ln", "pre-ln-residual",
                                  "pre-ln-mlp-block"])
@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_layer_jacobians_by_finite_differences(name, act):
    """The Jacobians written out above are the derivatives of the layer maps written out above."""
    rng = np.random.default_rng(11)
    n = 12
    f = draw_layer(name, act, 0.7, 1.5, 0.2, n, rng)
    h = rng.standard_normal(n) * 1.3
    _, J = f(h)
    eps = 1e-6
    fd = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        fd[:, j] = (f(h + e)[0] - f(h - e)[0]) / (2 * eps)
    np.testing.assert_allclose(J, fd, atol=1e-7)


ONE_LAYER = [
    # (architecture, activation, mu, K, sw, sb)
    ("mlp", "relu", 1.0, 1.3, 1.7, 0.2),
    ("mlp", "tanh", 1.0, 1.3, 1.7, 0.2),
    ("mlp", "erf", 1.0, 0.6, 1.2, 0.1),
    ("mlp", "gelu", 1.0, 2.0, 1.983, 0.173),
    ("residual", "relu", 0.7, 1.3, 1.0, 0.1),
    ("residual", "tanh", 0.8, 2.5, 0.6, 0.05),
    ("residual", "gelu", 1.0, 0.8, 0.3, 0.0),
    ("pre-ln", "relu", 1.0, 0.5, 2.0, 0.3),     # χ_J = B/K: two values of K
    ("pre-ln", "relu", 1.0, 3.0, 2.0, 0.3),
    ("pre-ln", "tanh", 1.0, 1.3, 1.5, 0.1),
    ("pre-ln", "erf", 1.0, 2.0, 1.0, 0.0),
    ("pre-ln", "gelu", 1.0, 1.3, 2.0, 0.05),
    ("post-ln", "relu", 1.0, 1.3, 2.0, 0.1),
    ("post-ln", "tanh", 1.0, 0.7, 1.2, 0.1),
    ("post-ln", "gelu", 1.0, 2.0, 1.5, 0.05),
    ("pre-ln-residual", "relu", 1.0, 4.0, 2.0, 0.0),
    ("pre-ln-residual", "tanh", 0.8, 1.3, 1.0, 0.1),
    ("pre-ln-residual", "gelu", 1.0, 2.0, 1.0, 0.2),
    ("pre-ln-mlp-block", "relu", 1.0, 2.0, 1.0, 0.0),
    ("pre-ln-mlp-block", "tanh", 0.9, 1.3, 1.0, 0.1),
    ("pre-ln-mlp-block", "gelu", 1.0, 0.7, 1.5, 0.05),
]


@pytest.mark.parametrize("name, act, mu, K, sw, sb", ONE_LAYER,
                         ids=[f"{c[0]}-{c[1]}-K{c[3]}" for c in ONE_LAYER])
def test_one_layer_against_explicit_jacobian(name, act, mu, K, sw, sb):
    n, draws = 512, 16
    rng = np.random.default_rng([zlib.crc32(f"{name}/{act}/{K}".encode()), SEED])
    chi, kern = [], []
    for _ in range(draws):
        h = rng.standard_normal(n) * math.sqrt(K)
        out, J = draw_layer(name, act, mu, sw, sb, n, rng)(h)
        chi.append(float(np.sum(J * J)) / n)
        kern.append(float(np.mean(out * out)))
    arch = architecture(name, act, mu)
    for quantity, samples, theory in (
            ("chi", chi, float(arch.chi_jacobian(K, sw, sb))),
            ("kernel", kern, float(arch.kernel_map(K, sw, sb)))):
        m = float(np.mean(samples))
        se = float(np.std(samples, ddof=1)) / math.sqrt(draws)
        tol = 4.5 * se + finite_n_allowance(name, quantity) / n * abs(theory)
        assert abs(m - theory) <= tol, (quantity, m, theory, se, tol)
        assert se < 0.05 * abs(theory)  # the check has teeth: a few percent


def test_unit_gaussian_moments_of_relu():
    """The ReLU constants used in (c): E_1[φ²] = E_1[φ'²] = 1/2, by quadrature here."""
    g = lambda f: integrate.quad(lambda z: f(z) * math.exp(-z * z / 2) / _SQ2PI, 0, np.inf)[0]
    assert g(lambda z: z * z) == pytest.approx(0.5, abs=1e-12)
    assert g(lambda z: 1.0) == pytest.approx(0.5, abs=1e-12)
    A, B = everywhere_constants(architecture("pre-ln-residual", "relu", 1.0), 2.0, 0.3)
    assert float(A) == pytest.approx(0.3 + 2.0 * 0.5, rel=1e-13)
    assert float(B) == pytest.approx(2.0 * 0.5, rel=1e-13)


# --------------------------------------------------------------------------- (b) simulator
def _z(mean, se, theory):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(mean) - np.asarray(theory)) / np.asarray(se)


DEPTH_CASES = [
    # (architecture, activation, mu, sw, sb)
    ("mlp", "relu", 1.0, 1.6, 0.3),
    ("mlp", "tanh", 1.0, 1.0, 0.0),          # K*=0 critical point
    ("mlp", "erf", 1.0, 1.0, 0.05),
    ("mlp", "gelu", 1.0, 1.983, 0.173),      # near the half-stable critical point
    ("residual", "relu", 0.7, 1.0, 0.1),
    ("residual", "tanh", 0.8, 0.6, 0.05),
    ("residual", "gelu", 1.0, 0.3, 0.0),
    ("pre-ln", "relu", 1.0, 2.0, 0.3),
    ("pre-ln", "tanh", 1.0, 1.5, 0.1),
    ("post-ln", "relu", 1.0, 2.0, 0.1),
    ("post-ln", "tanh", 1.0, 1.2, 0.1),
    ("pre-ln-residual", "tanh", 0.9, 1.0, 0.1),
    ("pre-ln-residual", "gelu", 1.0, 1.0, 0.2),
    ("pre-ln-mlp-block", "relu", 1.0, 1.0, 0.0),
    ("pre-ln-mlp-block", "tanh", 0.8, 1.0, 0.1),
    ("pre-ln-mlp-block", "gelu", 1.0, 1.0, 0.05),
]


def _check_depth(name, act, mu, sw, sb, *, width, depth, seeds, probes, l0=1, zmax=4.5):
    """|z| <= zmax at every depth for the mean APJN and the mean kernel."""
    sim = simulate(act, sw, sb, width=width, depth=depth, seeds=seeds, arch=name, mu=mu,
                   probes=probes, l0=l0, seed=2024 + SEED)
    th = depth_curves(architecture(name, act, mu), sw, sb, depth, l0=l0,
                      input_correlation=None)
    zj = _z(sim.apjn_mean, sim.apjn_stderr, th.apjn[l0 - 1:])
    zk = _z(sim.kernel_mean, sim.kernel_stderr, th.kernel)
    if probes == "exact":  # J^{l0,l0} = 1 exactly: no spread, compare the rest
        assert np.allclose(sim.apjn[:, 0], 1.0, rtol=1e-12)
        zj = zj[1:]
    assert np.all(np.isfinite(zj)) and np.all(np.isfinite(zk))
    assert np.max(np.abs(zj)) <= zmax, (zj, sim.apjn_mean, th.apjn)
    assert np.max(np.abs(zk)) <= zmax, (zk, sim.kernel_mean, th.kernel)
    # the standard errors are small enough for this to be a test of the theory
    assert np.max(sim.apjn_stderr / th.apjn[l0 - 1:]) < 0.1
    return sim, th


@pytest.mark.parametrize("name, act, mu, sw, sb", DEPTH_CASES,
                         ids=[f"{c[0]}-{c[1]}-mu{c[2]}" for c in DEPTH_CASES])
def test_depth_curves_against_simulation(name, act, mu, sw, sb):
    # Hutchinson probes (unbiased; their noise is in the standard error): width 512, 12 layers
    _check_depth(name, act, mu, sw, sb, width=512, depth=12, seeds=48, probes=16)


@pytest.mark.parametrize("name, act, mu, sw, sb", [("mlp", "tanh", 1.0, 2.0, 0.1),
                                                    ("pre-ln-mlp-block", "tanh", 0.8, 1.0, 0.1)])
def test_depth_curves_against_exact_simulation(name, act, mu, sw, sb):
    # exact APJN (identity tangent, dense weights) at width 256, and l0 > 1. Only 16 networks
    # (dense N×N tangents are slow): the standard error is estimated from few samples and
    # |z| follows a t-distribution with 15 degrees of freedom, hence the threshold 5.
    _check_depth(name, act, mu, sw, sb, width=256, depth=7, seeds=16, probes="exact", l0=3,
                 zmax=5.0)


@pytest.mark.parametrize("name, act, mu, sw, sb", [
    ("mlp", "tanh", 1.0, 1.5, 0.1), ("residual", "relu", 0.7, 1.0, 0.1),
    ("pre-ln", "tanh", 1.0, 1.5, 0.1), ("post-ln", "relu", 1.0, 2.0, 0.1),
    ("pre-ln-residual", "relu", 0.9, 1.0, 0.1), ("pre-ln-mlp-block", "tanh", 0.8, 1.0, 0.1)])
def test_covariance_map_against_simulation(name, act, mu, sw, sb):
    """Two inputs of correlation 0.3: the simulated covariance (1/N) h(x₁)·h(x₂) against the
    theory's covariance map iterated by depth_curves (K^l_{12} = c^l K^l)."""
    depth, c0 = 8, 0.3
    sim = simulate(act, sw, sb, width=512, depth=depth, seeds=32, arch=name, mu=mu, probes=1,
                   second_input_corr=c0, seed=7 + SEED)
    th = depth_curves(architecture(name, act, mu), sw, sb, depth, input_correlation=c0)
    z = _z(sim.covariance_mean, sim.covariance_stderr, th.correlation * th.kernel)
    assert np.max(np.abs(z)) <= 4.5, z


@pytest.mark.slow
@pytest.mark.parametrize("name, act, mu, sw, sb", DEPTH_CASES,
                         ids=[f"{c[0]}-{c[1]}-mu{c[2]}" for c in DEPTH_CASES])
def test_depth_curves_against_simulation_wide(name, act, mu, sw, sb):
    _check_depth(name, act, mu, sw, sb, width=1024, depth=12, seeds=128, probes=16, zmax=4.0)


# --------------------------------------------------------------------------- (c) claims
def test_relu_pre_ln_critical_line_is_zero_bias():
    """[DHG §3] ReLU's pre-LN critical line is σ_b² = 0 (every σ_w²)."""
    arch = architecture("pre-ln", "relu")
    pts = critical_line(arch, [0.0, 0.3])
    assert len(pts) == 1
    assert pts[0].bias_var == 0.0 and pts[0].weight_var is None
    # independent: K' = A = σ_b² + σ_w²/2 and χ_J(K) = B/K, B = σ_w²/2 (E_1[φ²] = E_1[φ'²] = 1/2)
    for sw in (0.5, 1.0, 2.0, 7.0):
        for sb in (0.0, 0.1, 0.3):
            kstar = float(arch.kernel_map(123.0, sw, sb))
            assert kstar == pytest.approx(sb + sw / 2, rel=1e-13)
            chi = float(arch.chi_jacobian(kstar, sw, sb))
            assert chi == pytest.approx((sw / 2) / (sb + sw / 2), rel=1e-13)
            assert (chi == pytest.approx(1.0, abs=1e-14)) == (sb == 0.0)


@pytest.mark.parametrize("sb", [0.0, 0.3])
def test_relu_pre_ln_critical_line_simulated(sb):
    """From layer 2 on, K^l = A and J^{2,l} = (B/A)^{l-2}: 1 at σ_b² = 0, a decay otherwise."""
    sw, depth = 2.0, 12
    sim = simulate("relu", sw, sb, width=512, depth=depth, seeds=48, arch="pre-ln", probes=16,
                   l0=2, seed=5 + SEED)
    pred = ((sw / 2) / (sb + sw / 2)) ** (sim.depths - 2)
    z = _z(sim.apjn_mean, sim.apjn_stderr, pred)
    assert np.max(np.abs(z)) <= 4.5, z
    th = depth_curves(architecture("pre-ln", "relu"), sw, sb, depth, l0=2, input_correlation=None)
    np.testing.assert_allclose(th.apjn[1:], pred, rtol=1e-12)


@pytest.mark.parametrize("sw, q0, l0, depth", [(2.0, 1.0, 1, 50), (0.7, 2.5, 3, 50),
                                               (1.3, 1.0, 5, 300)])
def test_pre_ln_residual_relu_apjn_is_kernel_ratio(sw, q0, l0, depth):
    """[DHG §4] μ = 1, σ_b = 0, ReLU: J^{l0,l} = K^l/K^{l0}.

    Derivation: A = B = σ_w²/2, so K^{l+1} = K^l + B and χ_J(K^l) = 1 + B/K^l = K^{l+1}/K^l;
    the product telescopes. (depth 300 goes through the tabulated maps of depth_curves.)
    """
    arch = architecture("pre-ln-residual", "relu", 1.0)
    J, K = everywhere_apjn(arch, sw, 0.0, depth, l0=l0, q0=q0)
    np.testing.assert_allclose(J, K / K[0], rtol=1e-12)
    np.testing.assert_allclose(K, sw * q0 + (sw / 2) * np.arange(l0 - 1, depth), rtol=1e-13)
    d = depth_curves(arch, sw, 0.0, depth, l0=l0, q0=q0, input_correlation=None)
    np.testing.assert_allclose(d.apjn[l0 - 1:], d.kernel[l0 - 1:] / d.kernel[l0 - 1],
                               rtol=1e-12)
    np.testing.assert_allclose(d.kernel[l0 - 1:], K, rtol=1e-12)


@pytest.mark.parametrize("l0", [1, 4])
def test_pre_ln_residual_relu_apjn_is_kernel_ratio_simulated(l0):
    sw, depth = 2.0, 12
    sim = simulate("relu", sw, 0.0, width=512, depth=depth, seeds=48, arch="pre-ln-residual",
                   mu=1.0, probes=16, l0=l0, seed=9 + SEED)
    K = sw + (sw / 2) * np.arange(depth)      # K^l = K^1 + A (l - 1), K^1 = σ_w² q0
    pred = K[l0 - 1:] / K[l0 - 1]
    assert np.max(np.abs(_z(sim.apjn_mean, sim.apjn_stderr, pred))) <= 4.5
    assert np.max(np.abs(_z(sim.kernel_mean, sim.kernel_stderr, K))) <= 4.5
