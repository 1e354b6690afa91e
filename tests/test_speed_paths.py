"""The fast paths of the NTK and transformer theories against the routes they replace.

* :class:`~critheory.theory.meanfield.tabulated.PiecewiseChebyshev` against its function;
* ``ntk_curves`` beyond 64 layers (verified Chebyshev tables of one layer) against the per-layer
  rule evaluation, including the float64 edges (overflow, underflow onto K* = 0) and a fixed
  point that must not drift;
* the attention block's moments (one matrix product over all points) against the per-point
  formula with :func:`~critheory.theory.transformer.softmax.trace_pp` on the same nodes;
* the MLP block's correlation tables against per-pair ``expect2``; the reused QMC nodes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import critheory.theory.ntk.depth as ntk_depth
import critheory.theory.transformer.rules as rules
from critheory.blocks.transformer import transformer
from critheory.theory.meanfield.tabulated import PiecewiseChebyshev
from critheory.theory.ntk import ntk_curves
from critheory.theory.transformer.depth import transformer_depth
from critheory.theory.transformer.softmax import (SoftmaxSampler, _softmax, softmax_moments,
                                                  sqrt_psd, trace_pp)


def _per_layer(monkeypatch, *args, **kw):
    with monkeypatch.context() as m:
        m.setattr(ntk_depth, "_TABLE_DEPTH", 10 ** 9)
        return ntk_curves(*args, **kw)


def test_piecewise_chebyshev_meets_its_contract():
    """Smooth outputs to rtol relative; a kinked output (|x − 0.3|) fails the check on the
    pieces that hold the kink and is evaluated exactly there; constants stay exact."""
    f = lambda x: np.stack([np.exp(np.sin(3 * x)), np.abs(x - 0.3), np.full_like(x, 0.7)])
    t = PiecewiseChebyshev(f, 1.0, rtol=1e-12, lo=-1.0, hi=2.0)
    x = np.concatenate([np.random.default_rng(0).uniform(-1, 2, 2000), [-1.0, 0.3, 2.0]])
    got, ref = t(x), f(x)
    assert got.shape == (3, x.size)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=0)
    # the kinked output: relative to max(|f|, 1e-300), so pieces next to x = 0.3 go exact
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-300)
    assert np.all(got[2] == 0.7)
    assert all(abs(t.at(v)[0] - ref[0][i]) <= 1e-12 * ref[0][i] for i, v in enumerate(x[:50]))


@pytest.mark.parametrize("arch,act,sw,sb", [("mlp", "tanh", 1.0, 0.0),
                                            ("mlp", "gelu", 1.9634, 0.5525),
                                            ("mlp", "swish", 1.98, 2.6668),
                                            ("pre-ln", "tanh", 1.2, 0.1),
                                            ("residual", "erf", 0.7, 0.05)])
def test_ntk_tables_match_per_layer_route(monkeypatch, arch, act, sw, sb):
    """Every coefficient of every layer is within 1e-12 relative of the exact layer map (the
    table's check), so over L layers Θ^l and K^l may differ by at most ~L·1e-12 relative."""
    L = 300
    new = ntk_curves(arch, act, sw, sb, L, lambda_b=0.7, lambda_w=1.3, scaling="equivalence")
    old = _per_layer(monkeypatch, arch, act, sw, sb, L, lambda_b=0.7, lambda_w=1.3,
                     scaling="equivalence")
    for f in ("kernel", "ntk", "bias_coef", "weight_coef", "transfer", "lambda_b", "lambda_w"):
        np.testing.assert_allclose(getattr(new, f), getattr(old, f), rtol=L * 1e-12, atol=0,
                                   err_msg=f)


def test_ntk_tables_keep_a_fixed_point_and_the_float64_edges(monkeypatch):
    # ReLU at (2, 0): K^l = K^1 exactly, layer after layer (no drift of the table's digits)
    c = ntk_curves("mlp", "relu", 2.0, 0.0, 3000, q0=2.0)
    assert np.all(c.kernel == 4.0) and np.all(c.transfer[1:] == 1.0)
    np.testing.assert_allclose(c.ntk, 3.0 * np.arange(1, 3001), rtol=1e-13)
    # overflow (ReLU residual doubles K) and underflow onto K* = 0 (GELU at σ_w² = 1): the
    # same layers are finite, NaN and infinite as on the per-layer route
    for args in [("residual", "relu", 2.0, 0.0, 1100), ("mlp", "gelu", 1.0, 0.0, 700)]:
        new, old = ntk_curves(*args), _per_layer(monkeypatch, *args)
        for f in ("kernel", "ntk"):
            a, b = getattr(new, f), getattr(old, f)
            assert np.array_equal(np.isfinite(a), np.isfinite(b)), f
            assert np.array_equal(np.isnan(a), np.isnan(b)), f
            ok = np.isfinite(b) & (np.abs(b) > 1e-280)
            np.testing.assert_allclose(a[ok], b[ok], rtol=args[-1] * 1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_moments_equal_per_point_formula(causal):
    """The batched products against the per-point route on the same nodes (deterministic:
    only rounding differs)."""
    rng = np.random.default_rng(4)
    R, T, K, lv = 3, 5, 2, 1.3
    B = rng.normal(size=(R, T, T))
    F = B @ np.swapaxes(B, -1, -2) / T + np.eye(T)
    C = rng.normal(size=(R, K, T, T))
    Th = C @ np.swapaxes(C, -1, -2) / T
    s = SoftmaxSampler(128, R, seed=9)
    afa, ata, logit = softmax_moments(F, Th, lv, causal, s)
    Lf = lv ** 0.25 * sqrt_psd(F)
    ref = [np.zeros_like(F), np.zeros_like(Th), np.zeros_like(F), np.zeros_like(Th)]
    for xi in s.draws(T):
        A = _softmax(Lf[:, None] @ xi @ np.swapaxes(Lf, -1, -2)[:, None], causal)
        At = np.swapaxes(A, -1, -2)
        ref[0] += (A @ F[:, None] @ At).sum(1)
        ref[1] += (A[:, None] @ Th[:, :, None] @ At[:, None]).sum(2)
        ref[2] += trace_pp(A, F[:, None], F[:, None]).sum(1)
        ref[3] += trace_pp(A[:, None], Th[:, :, None], F[:, None, None]).sum(2)
    n = s.points
    lg = lv * (Th * (ref[2] / n)[:, None] + F[:, None] * ref[3] / n)
    for got, want in [(afa, ref[0] / n), (ata, ref[1] / n), (logit, lg)]:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_sampler_reuses_its_nodes_per_replica():
    s = SoftmaxSampler(64, 3, seed=1)
    a = np.concatenate(list(s.draws(4)), axis=1)
    b = np.concatenate(list(s.draws(4)), axis=1)
    assert np.array_equal(a, b)
    assert not np.allclose(a[0], a[1])               # replicas are independent scramblings
    assert np.array_equal(np.concatenate(list(SoftmaxSampler(64, 3, seed=1).draws(4)), 1), a)


@pytest.mark.parametrize("act", ["tanh", "relu", "gelu"])
def test_mlp_correlation_table_vs_per_pair_expect2(act):
    """The MLP rule from the correlation table against per-pair expect2 on the same input:
    both within 1e-10 × E[φ²] (the table's check and expect2's rtol)."""
    rng = np.random.default_rng(2)
    R, T = 4, 6
    X = rng.normal(size=(T, T + 2))
    G0 = X @ X.T
    d = np.sqrt(np.diag(G0))
    G0 = G0 / np.outer(d, d)                          # unit diagonal: a LayerNorm output
    G = np.stack([G0 + 1e-6 * (r - 1.5) * (1 - np.eye(T)) for r in range(R)])
    Th = np.broadcast_to(np.eye(T), (R, 1, T, T)).copy()
    ctx = rules.context(act, 1.3, 0.2)
    block = transformer("transformer", act, tokens=T).blocks[1].branch[-1]
    assert block.kind == "mlp"
    Gt, Tt = rules.apply_blocks((block,), G, Th, ctx)
    assert ctx.tables                                  # the table route ran
    ref = rules.context(act, 1.3, 0.2)
    rules_same = rules._SAME_VARIANCE
    try:
        rules._SAME_VARIANCE = -1.0
        Gp, Tp = rules.apply_blocks((block,), G, Th, ref)
    finally:
        rules._SAME_VARIANCE = rules_same
    assert not ref.tables
    np.testing.assert_allclose(Gt, Gp, rtol=0, atol=3e-10 * np.abs(Gp).max())
    np.testing.assert_allclose(Tt, Tp, rtol=0, atol=3e-10 * np.abs(Tp).max())


@pytest.mark.slow
def test_transformer_one_token_exact_route_unchanged():
    """T = 1 is deterministic: the tabulated MLP block against the closed form of K^l for the
    one-token pre-LN stack (every layer adds C_U C_V + σ_w² E[φ²] + σ_b² at variance σ_w²+σ_b²)."""
    from critheory.expectations.gaussian import expect

    net = transformer("transformer", "tanh", tokens=1, cv=1.0, cu=1.0)
    sw, sb = 1.4, 0.1
    d = transformer_depth(net, sw, sb, depth=80)
    a = 1.0 + sw * float(expect("tanh", "phi2", sw + sb).value) + sb
    np.testing.assert_allclose(np.diff(d.kernel), a, rtol=1e-10)
