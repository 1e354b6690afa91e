"""What a trained network predicts: the infinite-width theory (critheory.theory.ntk.trained),
the ensemble trainer (critheory.simulation.train) and the two side by side
(critheory.validation.train). docs/ntk.md §8.

Tolerances: deterministic identities to rounding (1e-12 relative); the trainer's step against
torch autograd to rounding and against central differences to the O(h²) truncation; ensembles
by the common validation room (Student-t with S − 1 degrees of freedom, Bonferroni at a
family-wise 1 %: |t| <= ~3.1 for 5 entries). The infinite-width answer is off by O(L/n) at width n:
measured at depth 2, n = 64, 8000 networks (largest entries), the trained test outputs' mean
moves by n·Δm/sd = −2.6 ± 0.7 (tanh) and −1.9 ± 0.7 (ReLU) and the variance by
n·ΔVar/Var = −3.5 ± 1.0 (tanh) and −4.1 ± 1.0 (ReLU) (resolved there: |t| up to 4.2). At n = 512
with 1000 networks, even at two errors above these, the shift is 4/512 = 0.008 sd against a
standard error of 1/√1000 = 0.032 sd for the mean, and 6/512 = 1.2 % against √(2/1000) = 4.5 %
for the variance: about a quarter of a standard error, so the infinite-width theory must pass
there (docs/ntk.md §8.3 has the table).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import critheory as ct
from critheory.errors import CritheoryError
from critheory.simulation.train import (empirical_ntk, forward, gd_step, init_params,
                                        network_ops, train_ensemble)
from critheory.theory.ntk.trained import linear_response, trained_prediction
from critheory.validation.train import compare_trained

X5 = np.array([[1.0, 0.0], [0.0, 1.0], [-0.8, -0.6], [0.6, 0.8], [-0.6, 0.8]])
Y3 = [0.5, -0.4, 0.3]


# ---------------------------------------------------------------------------- (a) theory
def _linear_kernels(x, sw, sb, lb, lw, L):
    """Deep linear network by hand: K¹ = σ_b² + σ_w² q, Θ¹ = λ_b + λ_W q,
    K' = σ_b² + σ_w² K, Θ' = λ_b + λ_W K + σ_w² Θ (E[φ'φ'] = 1, E[φφ] = K)."""
    q = x @ x.T / x.shape[1]
    K, T = sb + sw * q, lb + lw * q
    for _ in range(L - 1):
        K, T = sb + sw * K, lb + lw * K + sw * T
    return K, T


def test_deep_linear_kernels_closed_form():
    # critical deep linear net (σ_w² = 1): K^L = Lσ_b² + q, Θ^L = Lλ_b + λ_W (L q + σ_b² L(L−1)/2)
    sb, lb, lw, L = 0.3, 0.7, 1.3, 4
    p = trained_prediction(ct.network("mlp", "linear"), 1.0, sb, X5, Y3, L, lambda_b=lb,
                           lambda_w=lw)
    q = X5 @ X5.T / 2
    np.testing.assert_allclose(p.kernel, L * sb + q, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p.ntk, L * lb + lw * (L * q + sb * L * (L - 1) / 2), rtol=1e-12)
    # and off criticality, with per-layer rates, against the recursion by hand
    K, T = _linear_kernels(X5, 1.7, 0.2, 0.4, 0.9, 3)
    p = trained_prediction(ct.network("mlp", "linear"), 1.7, 0.2, X5, Y3, 3, lambda_b=0.4,
                           lambda_w=0.9)
    np.testing.assert_allclose(p.kernel, K, rtol=1e-12)
    np.testing.assert_allclose(p.ntk, T, rtol=1e-12)


def _iterate(K, T, y, a, eta, steps):
    """The linearized dynamics iterated step by step, exactly in law: z(t) = C z(0) + d with
    z(0) ~ N(0, K): mean d, covariance C K Cᵀ (no closed form, no eigendecomposition)."""
    m = K.shape[0]
    C, d = np.eye(m), np.zeros(m)
    for _ in range(steps):
        # z ← z − η Θ_{·A} (z_A − y)
        C, d = C - eta * T[:, :a] @ C[:a], d - eta * T[:, :a] @ (d[:a] - y)
    return d[a:], (C @ K @ C.T)[a:, a:]


@pytest.mark.parametrize("act, sw, sb", [("linear", 1.0, 0.5), ("tanh", 1.0, 0.1),
                                         ("relu", 2.0, 0.0)])
def test_finite_steps_against_iterated_dynamics(act, sw, sb):
    y = np.array(Y3)
    p0 = trained_prediction(ct.network("mlp", act), sw, sb, X5, y, 3)
    for frac, steps in ((0.3, 7), (0.9, 40), (1.7, 25)):
        eta = frac * p0.eta_max / 2
        p = trained_prediction(ct.network("mlp", act), sw, sb, X5, y, 3, eta=eta, steps=steps)
        mean, cov = _iterate(p.kernel, p.ntk, y, 3, eta, steps)
        np.testing.assert_allclose(p.mean, mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(p.covariance, cov, rtol=1e-10, atol=1e-12)
    # convergence: the limit of the iteration, the kernel-regression mean Θ_BA Θ_AA⁻¹ y
    mean, cov = _iterate(p0.kernel, p0.ntk, y, 3, 0.5 * p0.eta_max, 3000)
    np.testing.assert_allclose(p0.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p0.covariance, cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p0.mean, p0.ntk[3:, :3] @ np.linalg.solve(p0.ntk[:3, :3], y),
                               rtol=1e-12)


def test_kernel_is_the_data_theory_kernel():
    net = ct.network("mlp", "relu")
    p = trained_prediction(net, 2.0, 0.1, X5[:3], Y3[:2], 3)
    s = ct.data_statistics(net, 2.0, 0.1, X5[:3], depth=3)
    np.testing.assert_allclose(p.kernel, s.kernel[-1], rtol=1e-12)


def test_one_layer_is_the_gp_posterior():
    # one layer: Θ = λ_b + λ_W q = K at σ² = λ: the trained answer is the noiseless GP posterior
    p = trained_prediction(ct.network("mlp", "tanh"), 1.0, 1.0, X5, Y3, 1)
    K = p.kernel
    gp_mean = K[3:, :3] @ np.linalg.solve(K[:3, :3], Y3)
    gp_cov = K[3:, 3:] - K[3:, :3] @ np.linalg.solve(K[:3, :3], K[:3, 3:])
    np.testing.assert_allclose(p.mean, gp_mean, rtol=1e-12)
    np.testing.assert_allclose(p.covariance, gp_cov, atol=1e-12)


# ---------------------------------------------------------------------------- (b) trainer
def _small(act="tanh", depth=3, width=5, n0=2, B=2, seed=0):
    net = ct.network("mlp", act)
    ops = network_ops(net, depth, width, n0)
    rng = np.random.default_rng(seed)

    class S:
        b = B

        def _normals(self, tail):
            return rng.standard_normal((B,) + tail)

        def bias(self, n, var):
            return rng.standard_normal((B, n, 1)) * math.sqrt(var)

    params = init_params(ops, S(), 1.3, 0.2)
    a = net.activation
    return ops, params, a.numpy_func(0), a.numpy_func(1)


def _flat(params):
    return [arr for p in params if p is not None for arr in p]


def test_gd_step_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    ops, params, phi, dphi = _small()
    x = np.random.default_rng(1).standard_normal((2, 2, 3))
    y = np.array([0.3, -0.2, 0.1])
    lb, lw, eta = np.array([0.5, 1.0, 2.0]), np.array([1.5, 0.7, 1.1]), 0.3
    tp = [torch.tensor(a, requires_grad=True) for a in _flat(params)]
    h = torch.tensor(x)
    i = 0
    for op in ops:
        if op[0] == "phi":
            h = torch.tanh(h)
        else:
            h = tp[i] @ h + tp[i + 1]
            i += 2
    loss = 0.5 * ((h[:, 0, :] - torch.tensor(y)) ** 2).sum()
    loss.backward()
    expected = []
    i = 0
    for op in ops:
        if op[0] == "dense":
            layer, n_in = op[4], op[2]
            expected.append(tp[i].detach().numpy() - eta * lw[layer] / n_in * tp[i].grad.numpy())
            expected.append(tp[i + 1].detach().numpy() - eta * lb[layer] * tp[i + 1].grad.numpy())
            i += 2
    gd_step(ops, params, phi, dphi, x, y, eta, lb, lw)
    for got, want in zip(_flat(params), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_gradient_and_ntk_against_finite_differences():
    ops, params, phi, dphi = _small("tanh", depth=3, width=4)
    x = np.random.default_rng(2).standard_normal((2, 2, 3))
    y = np.array([0.3, -0.2, 0.1])
    lb, lw = np.array([0.5, 1.0, 2.0]), np.array([1.5, 0.7, 1.1])
    rates = []
    for op in ops:
        if op[0] == "dense":
            rates += [lw[op[4]] / op[2], lb[op[4]]]
    flat = _flat(params)
    h = 1e-6
    # finite-difference Jacobian of the outputs in every parameter, times the rates
    J = []                                            # per parameter: (B, k)
    w8 = []
    for arr, rate in zip(flat, rates):
        for idx in np.ndindex(arr.shape[1:]):
            d = []
            for s in (1, -1):
                arr[(slice(None),) + idx] += s * h
                d.append(forward(ops, params, phi, x)[:, 0, :])
                arr[(slice(None),) + idx] -= s * h
            J.append((d[0] - d[1]) / (2 * h))
            w8.append(rate)
    J = np.array(J)                                   # (P, B, k)
    T_fd = np.einsum("p,pba,pbc->bac", np.array(w8), J, J)
    z, T = empirical_ntk(ops, params, phi, dphi, x, lb, lw)
    np.testing.assert_allclose(T, T_fd, rtol=1e-7, atol=1e-9)
    # one step of size η moves the parameters by −η rate ∂L/∂θ = −η rate Σ_a J_a r_a
    before = [a.copy() for a in flat]
    eta = 1e-3
    r = gd_step(ops, params, phi, dphi, x, y, eta, lb, lw)
    np.testing.assert_allclose(r, z - y, rtol=1e-12)
    moved = np.concatenate([(a - b).reshape(2, -1) for a, b in zip(_flat(params), before)],
                           axis=1)                    # (B, P)
    want = -eta * np.array(w8)[None, :] * np.einsum("pba,ba->bp", J, r)
    np.testing.assert_allclose(moved, want, rtol=1e-7, atol=1e-12)


def test_seeds_and_chunks():
    net = ct.network("mlp", "relu")
    kw = dict(eta=0.1, steps=5, seed=7)
    a = train_ensemble(net, 2.0, 0.0, X5, Y3, 2, 16, 40, chunk=16, **kw)
    b = train_ensemble(net, 2.0, 0.0, X5, Y3, 2, 16, 40, **kw)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    np.testing.assert_array_equal(a.ntk, b.ntk)
    assert a.seed == 7 and a.steps == 5


def test_one_layer_ensemble_is_exact():
    # depth 1 is a linear model with a deterministic NTK and Gaussian z(0) at any width: the
    # trained ensemble has exactly the theory's law (no finite-width shift at all)
    # (two training inputs: three would fix the three parameters w1, w2, b and the test outputs)
    net = ct.network("mlp", "tanh")
    p = trained_prediction(net, 1.0, 0.5, X5, Y3[:2], 1)
    e = train_ensemble(net, 1.0, 0.5, X5, Y3[:2], 1, 4, 4000, eta=0.5 * p.eta_max, steps=None,
                       max_steps=500, seed=2)
    assert e.converged.all() and e.steps < 500
    np.testing.assert_allclose(e.ntk, np.broadcast_to(p.ntk, e.ntk.shape), rtol=1e-12)
    c = compare_trained(p, e)
    assert c.verdict == "consistent", (c.mean_z, c.cov_z)


def test_determined_outputs_are_not_rounding_noise():
    # regression: three training inputs fix the three parameters of one layer, so the test
    # outputs are the same in every network (variance 0): the scores must not divide rounding
    # noise by rounding noise
    net = ct.network("mlp", "tanh")
    p = trained_prediction(net, 1.0, 0.5, X5, Y3, 1)
    e = train_ensemble(net, 1.0, 0.5, X5, Y3, 1, 4, 200, eta=0.5 * p.eta_max, steps=None,
                       max_steps=500, seed=2)
    assert np.all(np.abs(np.diag(p.covariance)) < 1e-12)
    assert compare_trained(p, e).verdict == "consistent"


# ---------------------------------------------------------------------------- (c) ensembles
@pytest.mark.parametrize("act, sw, sb, steps", [("tanh", 1.0, 0.0, 100),
                                                ("relu", 2.0, 0.0, None)])
def test_trained_ensemble_matches_infinite_width(act, sw, sb, steps):
    """Depth 2, width 512, 1000 networks: the O(L/n) shift is below 0.25 standard errors
    (module docstring), so the infinite-width theory must pass; tanh after 100 steps (finite-t
    formula), ReLU at convergence (tol 1e-6)."""
    net = ct.network("mlp", act)
    p0 = trained_prediction(net, sw, sb, X5, Y3, 2)
    eta = 0.5 * p0.eta_max
    p = p0 if steps is None else trained_prediction(net, sw, sb, X5, Y3, 2, eta=eta,
                                                    steps=steps)
    e = train_ensemble(net, sw, sb, X5, Y3, 2, 512, 1000, eta=eta, steps=steps, max_steps=400,
                       seed=11)
    c = compare_trained(p, e)
    assert c.verdict == "consistent", (c.mean_z, c.cov_z)
    assert c.ntk_verdict == "consistent", c.ntk_z
    assert np.all(np.abs(c.ntk_variance_z) <= c.z_crit), c.ntk_variance_z
    if steps is None:
        assert e.converged.all()


# ---------------------------------------------------------------------------- bad input
def test_refusals():
    net = ct.network("mlp", "tanh")
    p = trained_prediction(net, 1.0, 0.0, X5, Y3, 2)
    with pytest.raises(CritheoryError, match="stable range"):
        trained_prediction(net, 1.0, 0.0, X5, Y3, 2, eta=1.01 * p.eta_max, steps=3)
    with pytest.raises(CritheoryError, match="stable range"):
        trained_prediction(net, 1.0, 0.0, X5, Y3, 2, eta=1.01 * p.eta_max)
    with pytest.raises(CritheoryError, match="singular"):
        trained_prediction(net, 1.0, 0.0, X5[[0, 0, 1, 2]], Y3, 2)
    with pytest.raises(CritheoryError, match="steps needs"):
        trained_prediction(net, 1.0, 0.0, X5, Y3, 2, steps=3)
    with pytest.raises(CritheoryError, match="test input"):
        trained_prediction(net, 1.0, 0.0, X5[:3], Y3, 2)
    with pytest.raises(CritheoryError, match="'layernorm' block"):
        train_ensemble(ct.network("pre-ln", "tanh"), 1.0, 0.0, X5, Y3, 2, 8, 4, eta=0.1,
                       steps=1)
    with pytest.raises(CritheoryError, match="'residual' block"):
        train_ensemble(ct.network("residual", "tanh"), 1.0, 0.0, X5, Y3, 2, 8, 4, eta=0.1,
                       steps=1)
    with pytest.raises(CritheoryError, match="budget"):
        train_ensemble(net, 1.0, 0.0, X5, Y3, 3, 4096, 10 ** 4, eta=0.1, steps=1000)
    with pytest.raises(CritheoryError, match="left float64"):
        train_ensemble(net, 1.0, 0.0, X5, Y3, 2, 8, 4, eta=50 * p.eta_max, steps=2000)
    with pytest.raises(CritheoryError, match="singular"):
        linear_response([[1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]])


def test_compare_refuses_mismatched_settings():
    net = ct.network("mlp", "relu")
    p = trained_prediction(net, 2.0, 0.0, X5, Y3, 2, eta=0.1, steps=5)
    e = train_ensemble(net, 2.0, 0.0, X5, Y3, 2, 8, 4, eta=0.1, steps=6)
    with pytest.raises(CritheoryError, match="steps"):
        compare_trained(p, e)
    e = train_ensemble(net, 2.0, 0.0, X5, Y3, 2, 8, 4, eta=0.1, steps=2)
    with pytest.raises(CritheoryError, match="not converged"):
        compare_trained(trained_prediction(net, 2.0, 0.0, X5, Y3, 2), e)


def test_repr_and_dict():
    p = trained_prediction(ct.network("mlp", "relu"), 2.0, 0.0, X5, Y3, 2)
    assert repr(p) == "TrainedPrediction(mlp, relu, L=2, 3 train, 2 test, convergence)"
    d = p.to_dict()
    assert d["prediction_kernel"] == pytest.approx(list(p.mean))
    assert d["prediction_variance"] == pytest.approx(list(np.diag(p.covariance)))
    e = train_ensemble(ct.network("mlp", "relu"), 2.0, 0.0, X5, Y3, 2, 8, 4, eta=0.1, steps=2)
    assert len(repr(e)) < 2000
    assert set(e.to_dict()) >= {"measured_prediction_mean", "measured_prediction_stderr",
                                "converged"}


@pytest.mark.slow
@pytest.mark.parametrize("act, sw, sb", [("tanh", 1.0, 0.0), ("relu", 2.0, 0.0)])
def test_trained_ensemble_depth3(act, sw, sb):
    """Depth 3, width 256, 800 networks, 100 steps (1–2 min each on a shared 2-core machine)."""
    net = ct.network("mlp", act)
    p0 = trained_prediction(net, sw, sb, X5, Y3, 3)
    eta = 0.5 * p0.eta_max
    p = trained_prediction(net, sw, sb, X5, Y3, 3, eta=eta, steps=100)
    e = train_ensemble(net, sw, sb, X5, Y3, 3, 256, 800, eta=eta, steps=100, seed=5)
    c = compare_trained(p, e)
    assert c.verdict == "consistent", (c.mean_z, c.cov_z)
    assert c.ntk_verdict == "consistent", c.ntk_z


# ---------------------------------------------------------------------------- command line
_ARGV = ["train", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "2", "--inputs",
         "1,0;0,1;-0.8,-0.6;0.6,0.8;-0.6,0.8", "--train-targets", "0.5,-0.4,0.3"]


def test_cli_json(capsys):
    import json

    from critheory.cli.main import main

    assert main(_ARGV + ["--steps", "20", "--simulate", "--width", "16", "--seeds", "64",
                         "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    p = trained_prediction(ct.network("mlp", "tanh"), 1.0, 0.0, X5, Y3, 2,
                           eta=out["eta"], steps=20)
    assert out["prediction_kernel"] == pytest.approx(list(p.mean), rel=1e-12)
    assert out["prediction_variance"] == pytest.approx(list(np.diag(p.covariance)), rel=1e-12)
    assert out["eta"] == pytest.approx(0.5 * p.eta_max)
    for k in ("measured_prediction_mean", "measured_prediction_stderr", "converged"):
        assert k in out
    assert out["simulation"]["comparison"]["verdict"] in ("consistent", "inconsistent")


@pytest.mark.parametrize("extra, msg", [(["--lr", "5"], "stable range"),
                                        (["--tol", "1e-3"], "needs --simulate"),
                                        (["--arch", "pre-ln", "--simulate", "--width", "8"],
                                         "'layernorm' block"),
                                        (["--simulate", "--width", "4096", "--seeds", "100000"],
                                         "budget")])
def test_cli_refusals(capsys, extra, msg):
    from critheory.cli.main import main

    assert main(_ARGV + extra) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err
