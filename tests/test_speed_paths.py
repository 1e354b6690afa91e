"""The fast paths of the NTK and transformer theories against the routes they replace.

* :class:`~critheory.theory.meanfield.tabulated.PiecewiseChebyshev` against its function;
* ``ntk_curves`` beyond 64 layers (verified Chebyshev tables of one layer) against the per-layer
  rule evaluation, including the float64 edges (overflow, underflow onto K* = 0) and a fixed
  point that must not drift;
* the attention block's moments (one matrix product over all points) against the per-point
  formula with :func:`~critheory.theory.transformer.softmax.trace_pp` on the same nodes;
* the MLP block's correlation tables against per-pair ``expect2``; the reused QMC nodes;
* the exchangeable attention route (O(T²) per point) against the per-point formulas on the same
  logits, its logits' law against dense matrices, and against the general route (independent
  nodes) at random kernels, one block and whole recursions, within the combined errors.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import critheory.theory.ntk.depth as ntk_depth
import critheory.theory.transformer.rules as rules
import critheory.theory.transformer.softmax as softmax
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


def _accumulate(ref: list, A, F, Th) -> None:
    """Add one batch of softmax matrices A's per-point sums to ``ref`` (A F Aᵀ, A Θ Aᵀ and the
    two traces of the logit term), as the reference of the batched attention moments."""
    At = np.swapaxes(A, -1, -2)
    ref[0] += (A @ F[:, None] @ At).sum(1)
    ref[1] += (A[:, None] @ Th[:, :, None] @ At[:, None]).sum(2)
    ref[2] += trace_pp(A, F[:, None], F[:, None]).sum(1)
    ref[3] += trace_pp(A[:, None], Th[:, :, None], F[:, None, None]).sum(2)


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
        _accumulate(ref, A, F, Th)
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


# ------------------------------------------------------------------ exchangeable attention route
def _helmert(T: int) -> np.ndarray:
    """The Helmert basis of 1⊥ as a dense T x (T − 1) matrix, from its definition."""
    U = np.zeros((T, T - 1))
    for k in range(1, T):
        U[:k, k - 1] = 1.0
        U[k, k - 1] = -k
        U[:, k - 1] /= math.sqrt(k * (k + 1))
    return U


def _random_exchangeable(rng, R: int, T: int, scale: float = 1.0):
    """(d, o) per replica for ``o 11ᵀ + (d − o) I``, PSD, with o from −d/(T − 1) (the most
    anti-correlated tokens) to d (a rank-one kernel)."""
    d = scale * rng.uniform(0.3, 2.0, R)
    c = rng.uniform(-1.0 / (T - 1), 1.0, R)
    c[0] = 1.0 if R > 2 else c[0]                    # the rank-one edge
    return d, c * d


def _exch(d, o, T):
    return (np.asarray(o)[..., None, None] * np.ones((T, T))
            + np.asarray(d - o)[..., None, None] * np.eye(T))


def _proj(X):
    """Mean diagonal and mean off-diagonal entry of the trailing T x T axes, as a matrix."""
    T = X.shape[-1]
    d = np.einsum("...tt->...", X) / T
    return _exch(d, (X.sum(axis=(-1, -2)) - T * d) / (T * (T - 1)), T)


def test_exchangeable_nodes_are_the_logits_law():
    """The packed nodes equal ``U Y₁ Uᵀ`` and ``U y₀`` built with a dense Helmert matrix, and the
    logits they make, ``√σ² p [q e, p U] Y Uᵀ``, have the law of ``√σ² √F ξ √F`` along the rows:
    ``[q e, p U]`` is a square root of F, U an orthonormal basis of 1⊥."""
    rng = np.random.default_rng(11)
    for T in (2, 3, 5, 9):
        U = _helmert(T)
        np.testing.assert_allclose(U.T @ U, np.eye(T - 1), atol=1e-14)
        np.testing.assert_allclose(U @ U.T, np.eye(T) - 1.0 / T, atol=1e-14)
        xi = rng.normal(size=(4, 7, T, T))
        V = softmax._exchangeable_nodes(xi)
        Y = xi.reshape(4, 7, T * T)[..., :T * (T - 1)].reshape(4, 7, T, T - 1)
        W = U @ Y[..., 1:, :] @ U.T
        bad = [(T, "W", i) for i in np.argwhere(~np.isclose(V[..., :T - 1, :], W[..., :T - 1, :],
                                                            rtol=0, atol=1e-13))]
        bad += [(T, "u", i) for i in np.argwhere(~np.isclose(V[..., T - 1, :], Y[..., 0, :] @ U.T,
                                                             rtol=0, atol=1e-13))]
        assert not bad, bad[:20]
        for d, o in zip(*_random_exchangeable(rng, 3, T)):
            F = _exch(d, o, T)
            g1, q = d - o, math.sqrt(max(d - o + T * o, 0.0))
            Lrow = np.column_stack([np.full(T, q / math.sqrt(T)), math.sqrt(g1) * U])
            np.testing.assert_allclose(Lrow @ Lrow.T, F, atol=1e-13 * d)


@pytest.mark.parametrize("T", [2, 3, 5, 9])
def test_exchangeable_moments_equal_per_point_formula(T):
    """The exchangeable route's statistics against the general per-point formulas (A F Aᵀ,
    A Θ Aᵀ, :func:`trace_pp`) on the same logits, averaged over token pairs: rounding only.
    Random kernels from the most anti-correlated tokens to rank one; every bad entry listed."""
    rng = np.random.default_rng(100 + T)
    R, K, lv = 4, 2, 1.7
    d, o = _random_exchangeable(rng, R, T)
    F = _exch(d, o, T)
    td, to = (x.reshape(R, K) for x in _random_exchangeable(rng, R * K, T, scale=1.5))
    Th = _exch(td, to, T)
    s = SoftmaxSampler(64, R, seed=5)
    afa, ata, logit = softmax_moments(F, Th, lv, False, s)
    U = _helmert(T)
    g1 = d - o
    beta = np.sqrt(lv * g1 * np.clip(g1 + T * o, 0, None) / T)
    ref = [np.zeros_like(F), np.zeros_like(Th), np.zeros_like(F), np.zeros_like(Th)]
    for xi in s.draws(T):
        n = xi.shape[1]
        Y = xi.reshape(R, n, T * T)[..., :T * (T - 1)].reshape(R, n, T, T - 1)
        Z = (math.sqrt(lv) * g1[:, None, None, None] * (U @ Y[..., 1:, :] @ U.T)
             + beta[:, None, None, None] * (Y[..., :1, :] @ U.T))
        A = _softmax(Z, False)
        _accumulate(ref, A, F, Th)
    n = s.points
    lg = lv * (Th * (ref[2] / n)[:, None] + F[:, None] * ref[3] / n)
    bad = []
    for name, got, want in [("afa", afa, ref[0] / n), ("ata", ata, ref[1] / n),
                            ("logit", logit, lg)]:
        want = _proj(want)
        tol = 1e-12 * np.abs(want).max()
        bad += [(name, tuple(i), got[tuple(i)], want[tuple(i)])
                for i in np.argwhere(np.abs(got - want) > tol)]
    assert not bad, bad[:20]


def _zscores(a, ea, b, eb):
    s = np.hypot(ea, eb) + 1e-13 * np.abs(b)
    return np.abs(a - b) / s


def test_exchangeable_route_vs_general_route_at_random_kernels(monkeypatch):
    """Both routes are unbiased randomized-QMC estimates of the same expectations with
    independent errors (different nodes): at 8 random kernels (T = 2..8, logit variances
    0.3..4, tokens from anti-correlated to rank one) every entry of E[A F Aᵀ], E[A Θ Aᵀ] and
    the logit path must agree within their combined errors. With 16 randomizations each the
    ratio is close to Student-t with ~30 degrees of freedom: every one below 5 (P ~ 2e-5 per
    entry), every one above listed; and the errors are honest in size, the pooled median ratio
    between 0.3 and 1.5 (0.68 for exact errors)."""
    R, K = 16, 2
    cases = []
    for case in range(8):
        rng = np.random.default_rng(1000 + case)
        T = int(rng.integers(2, 9))
        lv = float(rng.uniform(0.3, 4.0))
        d, o = _random_exchangeable(rng, 1, T)
        F = np.broadcast_to(_exch(d, o, T), (R, T, T)).copy()
        td, to = _random_exchangeable(rng, K, T, scale=1.5)
        Th = np.broadcast_to(_exch(td, to, T), (R, K, T, T)).copy()
        cases.append((T, lv, F, Th))

    def run(T, lv, F, Th, seed):
        out = softmax_moments(F, Th, lv, False, SoftmaxSampler(512, R, seed=seed))
        return [(x.mean(0), x.std(0, ddof=1) / math.sqrt(R)) for x in out]

    fast = [run(*c, seed=1) for c in cases]
    monkeypatch.setattr(softmax, "EXCHANGEABLE_RTOL", -1.0)     # the general route
    general = [run(*c, seed=2) for c in cases]
    bad, zs = [], []
    for (T, lv, _, _), f, g in zip(cases, fast, general):
        for name, (v, e), (w, u) in zip(("afa", "ata", "logit"), f, g):
            z = _zscores(v, e, w, u)
            zs.extend(z.ravel())
            bad += [(T, lv, name, tuple(i), v[tuple(i)], w[tuple(i)], z[tuple(i)])
                    for i in np.argwhere(z > 5.0)]
    assert not bad, bad
    assert 0.3 < np.median(zs) < 1.5, np.median(zs)


@pytest.mark.parametrize("arch,act,T", [("transformer", "tanh", 2),
                                        ("transformer", "relu", 4),
                                        ("transformer-post-ln", "gelu", 3)])
def test_exchangeable_recursion_vs_general_route(monkeypatch, arch, act, T):
    """The whole recursion: token kernels, APJN and one-layer APJN of both routes within their
    combined errors at every layer (each layer's numbers are correlated with the layers before,
    so fewer than all entries are independent; limit 5 as above), every bad entry listed; and
    the exchangeable route's errors no larger than the general route's beyond noise (the median
    ratio of the errors below 1.5)."""
    net = transformer(arch, act, tokens=T, cq=1.5)
    kw = dict(depth=8, corr=0.3, points=512, replicas=16)
    new = transformer_depth(net, 1.0, 0.1, seed=1, **kw)
    monkeypatch.setattr(softmax, "EXCHANGEABLE_RTOL", -1.0)
    old = transformer_depth(net, 1.0, 0.1, seed=2, **kw)
    bad, ratios = [], []
    for v, e in (("kernel_tokens", "kernel_tokens_error"), ("apjn", "apjn_error"),
                 ("chi_jacobian", "chi_jacobian_error")):
        a, ea, b, eb = (np.asarray(getattr(x, k)) for x in (new, old) for k in (v, e))
        z = _zscores(a, ea, b, eb)
        bad += [(v, tuple(i), a[tuple(i)], b[tuple(i)], z[tuple(i)])
                for i in np.argwhere(np.nan_to_num(z) > 5.0)]
        live = (eb > 1e-12 * np.abs(b)) & np.isfinite(eb)
        ratios.extend((ea[live] / eb[live]).ravel())
    assert not bad, bad
    assert np.median(ratios) < 1.5, np.median(ratios)


def test_kernel_error_of_equal_entries_is_their_error():
    """Exchangeable kernels: every diagonal entry of a replica is the same number, so the error
    of their mean is the error of one of them (not that over √T, as for independent entries)."""
    net = transformer("transformer", "tanh", tokens=6)
    d = transformer_depth(net, 1.0, 0.0, depth=4, points=128)
    diag = np.einsum("ltt->lt", d.kernel_tokens_error)
    assert np.all(diag[1:] > 0)
    np.testing.assert_allclose(d.kernel_error, diag[:, 0], rtol=1e-9)


def test_mlp_correlation_table_serves_variances_equal_up_to_rounding():
    """One table for LayerNorm outputs whose variances differ by rounding (each layer and
    replica), a new one for another variance."""
    ctx = rules.context("relu", 1.3, 0.2)
    T = 3
    G = np.broadcast_to(0.4 + 0.6 * np.eye(T), (2, T, T)).copy()
    Th = np.broadcast_to(np.eye(T), (2, 1, T, T)).copy()
    block = transformer("transformer", "relu", tokens=T).blocks[1].branch[-1]
    for scale in (1.0, 1.0 + 2 ** -50, 1.0 - 2 ** -51):
        rules.apply_blocks((block,), G * scale, Th, ctx)
    assert len(ctx.tables) == 1
    rules.apply_blocks((block,), G * 1.5, Th, ctx)
    assert len(ctx.tables) == 2
