"""The NTK at order 1/n on several inputs (``critheory/theory/ntk/finite_data.py``,
``docs/ntk.md`` §9) and the one-input recursion to depth 10⁴ (``finite.tabulated_fields``,
§7.6), against independent routes:

* one input: the one-input theory (:mod:`critheory.theory.ntk.finite`), to rounding;
* the deep linear network on two inputs, exactly: a closed linear recursion of O(n)-invariant
  moments in rational arithmetic (written out here, independently of the rules);
* subsets of inputs and the tensors' symmetries;
* E[φ'φ'] and its kernel derivatives: Price's theorem (the Hessian row of E[φφ]) and finite
  differences;
* ensembles of finite networks (:func:`critheory.train_ensemble` at step 0: the empirical NTK and
  outputs on the inputs): the mean shift, n Cov(Θ̂, Θ̂) and n Cov(Θ̂, zz), tanh and ReLU at
  criticality;
* depth: the tabulated route against the per-layer route, ReLU's closed forms and tanh's
  asymptote at depth 10⁴.
"""
from __future__ import annotations

import math
from fractions import Fraction as Fr
from itertools import product

import numpy as np
import pytest

import critheory as ct
from critheory.blocks.registry import network
from critheory.errors import CritheoryError
from critheory.expectations import expect2
from critheory.expectations.kernel_derivatives import dphi_pair_derivatives, pair_derivatives
from critheory.theory.fold import Ctx
from critheory.theory.ntk import finite as F
from critheory.theory.ntk import finite_data as FD

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

X3 = np.array([[1.0, 0.0, 0.2], [0.6, 0.8, -0.1], [-0.8, 0.5, 0.4]])
FIELDS = ("theta", "theta1", "theta_a", "theta_b", "theta_d", "theta_f", "K1", "V")


# ------------------------------------------------------------------ one input
@pytest.mark.parametrize("arch,act,sw,sb,mu", [("mlp", "tanh", 1.0, 0.1, None),
                                               ("mlp", "relu", 2.0, 0.0, None),
                                               ("mlp", "gelu", 1.3, 0.1, None),
                                               ("residual", "linear", 0.51, 0.0, 0.7)])
def test_one_input_is_the_one_input_theory(arch, act, sw, sb, mu):
    net = network(arch, act, **({"mu": mu} if mu else {}))
    ctx = Ctx(net.activation, sw, sb, lambda_b=0.7, lambda_w=1.3)
    one = F.start(0.8, weight_var=sw, bias_var=sb, lambda_b=0.7, lambda_w=1.3)
    many = FD.start([[0.8]], weight_var=sw, bias_var=sb, lambda_b=0.7, lambda_w=1.3)
    for _ in range(4):
        one, many = F.apply(net, one, ctx), FD.apply(net, many, ctx)
        for k in FIELDS:
            a, b = float(getattr(one, k)), float(getattr(many, k).ravel()[0])
            assert b == pytest.approx(a, rel=1e-12, abs=1e-14), k
        assert float(FD.variance(many).ravel()[0]) == pytest.approx(float(F.variance(one)),
                                                                    rel=1e-12)
        assert float(FD.cross(many).ravel()[0]) == pytest.approx(float(F.cross(one)),
                                                                 rel=1e-12, abs=1e-14)


# ------------------------------------------------------------------ deep linear network, exact
def exact_linear(n: int, L: int, cw: Fr, lb: Fr, lw: Fr, G0) -> list[dict]:
    """Exact mean NTK and A, B, D, F (scaled by n, the tensors' index conventions) of the linear
    network ``z' = W z`` at width n on m inputs with Gram matrix ``G0`` (``W ~ N(0, cw/n)``, no
    biases) at layers 1..L.

    The law of ``(Z, Θ̂)`` (``Z`` the n × m preactivations, ``Θ̂_{αβ}`` n × n) is invariant under
    ``Z → OZ, Θ̂_{αβ} → OΘ̂_{αβ}Oᵀ``, so its second moments follow from the expectations of
    ``P_αβ = Z_α·Z_β``, ``T_αβ = tr Θ̂_αβ`` and ``E[P P]``, ``E[P T]``, ``E[T T]``,
    ``E[tr Θ̂_αβ Θ̂_γδᵀ]``, ``E[Z_γᵀ Θ̂_αβ Z_δ]``; with ``a_αβ = λ_b + λ_W P_αβ/n``, ``Z' = WZ``
    and ``Θ̂' = aI + WΘ̂Wᵀ`` they map linearly by the Wick moments of W (``c = cw/n``):
    ``E[(uᵀWᵀWv)(xᵀWᵀWy)] = c²[n²(u·v)(x·y) + n((u·x)(v·y) + (u·y)(v·x))]``,
    ``E[(uᵀWᵀWv) tr WAWᵀ] = c²[n²(u·v) trA + n(uᵀAv + vᵀAu)]``,
    ``E[tr WAWᵀ tr WBWᵀ] = c²[n² trA trB + n(tr AB + tr ABᵀ)]``,
    ``E[tr WAWᵀ(WBWᵀ)ᵀ] = c²[n² tr ABᵀ + n(trA trB + tr AB)]``,
    ``E[uᵀWᵀWAWᵀWv] = c²[n² uᵀAv + n((u·v) trA + vᵀAu)]``. An isotropic expectation
    ``E[Θ̂_{ij;1}Θ̂_{kl;2}] = P δ_ij δ_kl + Q δ_ik δ_jl + R δ_il δ_jk`` is then read off three
    traces."""
    m = len(G0)
    R = range(m)
    I4 = list(product(R, R, R, R))
    n, c = Fr(n), Fr(cw) / n
    K = [[Fr(cw) * G0[a][b] for b in R] for a in R]
    T1 = [[lb + lw * G0[a][b] for b in R] for a in R]
    mo = dict(p={(a, b): n * K[a][b] for a in R for b in R},
              t={(a, b): n * T1[a][b] for a in R for b in R},
              pp={(a, b, g, d): n * n * K[a][b] * K[g][d] + n * (K[a][g] * K[b][d]
                                                                 + K[a][d] * K[b][g])
                  for a, b, g, d in I4},
              pt={(a, b, g, d): n * n * K[a][b] * T1[g][d] for a, b, g, d in I4},
              tt={(a, b, g, d): n * n * T1[a][b] * T1[g][d] for a, b, g, d in I4},
              tr={(a, b, g, d): n * T1[a][b] * T1[g][d] for a, b, g, d in I4},
              zt={(a, b, g, d): n * T1[a][b] * K[g][d] for a, b, g, d in I4})
    layers = [mo]
    for _ in range(1, L):
        p, t, pp, pt, tt, tr, zt = (mo[k] for k in ("p", "t", "pp", "pt", "tt", "tr", "zt"))
        Ea = {k: lb + lw * p[k] / n for k in p}
        Eaa = {(a, b, g, d): lb * lb + lb * lw * (p[a, b] + p[g, d]) / n
               + lw * lw * pp[a, b, g, d] / (n * n) for a, b, g, d in I4}
        EaT = {(a, b, g, d): lb * t[g, d] + lw * pt[a, b, g, d] / n for a, b, g, d in I4}
        EaP = {(a, b, g, d): lb * p[g, d] + lw * pp[a, b, g, d] / n for a, b, g, d in I4}
        mo = dict(
            p={k: n * c * p[k] for k in p},
            t={k: n * Ea[k] + n * c * t[k] for k in t},
            pp={(a, b, g, d): c * c * (n * n * pp[a, b, g, d] + n * (pp[a, g, b, d]
                                                                     + pp[a, d, b, g]))
                for a, b, g, d in I4},
            pt={(a, b, g, d): n * n * c * EaP[g, d, a, b]
                + c * c * (n * n * pt[a, b, g, d] + n * (zt[g, d, a, b] + zt[g, d, b, a]))
                for a, b, g, d in I4},
            tt={(a, b, g, d): n * n * Eaa[a, b, g, d]
                + n * n * c * (EaT[a, b, g, d] + EaT[g, d, a, b])
                + c * c * (n * n * tt[a, b, g, d] + n * (tr[a, b, d, g] + tr[a, b, g, d]))
                for a, b, g, d in I4},
            tr={(a, b, g, d): n * Eaa[a, b, g, d] + n * c * (EaT[a, b, g, d] + EaT[g, d, a, b])
                + c * c * (n * n * tr[a, b, g, d] + n * (tt[a, b, g, d] + tr[a, b, d, g]))
                for a, b, g, d in I4},
            zt={(a, b, g, d): n * c * EaP[a, b, g, d]
                + c * c * (n * n * zt[a, b, g, d] + n * (pt[g, d, a, b] + zt[a, b, d, g]))
                for a, b, g, d in I4})
        layers.append(mo)

    def isotropic(x0, x1, x2):
        # n²P + nQ + nR = x0, nP + n²Q + nR = x1, nP + nQ + n²R = x2: (P, Q)
        s = (x0 + x1 + x2) / (n * n + 2 * n)
        return (x0 - n * s) / (n * n - n), (x1 - n * s) / (n * n - n)

    out = []
    for mo in layers:
        mean = {k: mo["t"][k] / n for k in mo["t"]}
        r = dict(mean=mean, A={}, B={}, D={}, F={})
        for a, b, g, d in I4:
            P, Q = isotropic(mo["tt"][a, b, g, d], mo["tr"][a, b, g, d], mo["tr"][a, b, d, g])
            r["A"][a, b, g, d] = n * (P - mean[a, b] * mean[g, d])
            r["B"][a, g, b, d] = n * Q
            P, Q = isotropic(mo["pt"][g, d, a, b], mo["zt"][a, b, g, d], mo["zt"][a, b, d, g])
            r["D"][a, b, g, d] = n * (P - mean[a, b] * mo["p"][g, d] / n)
            r["F"][a, g, b, d] = n * Q
        out.append(r)
    return out


@pytest.mark.parametrize("cw", [Fr(1), Fr(11, 10)])
def test_linear_network_exact(cw):
    L, lb, lw = 4, Fr(7, 10), Fr(13, 10)
    G0 = [[Fr(6, 5), Fr(3, 10)], [Fr(3, 10), Fr(4, 5)]]
    x = np.linalg.cholesky(np.array(G0, dtype=float)) * math.sqrt(2.0)   # x xᵀ/2 = G0
    s = ct.ntk_data_statistics("mlp", float(cw), 0.0, x, L, activation="linear",
                               lambda_b=float(lb), lambda_w=float(lw))
    # Θ1 = 0 (to the rounding of the kernel's 1/n shift K1 ~ 1e-17: E[φ_aφ_b] = K_ab exactly)
    assert np.abs(s.ntk_correction).max() < 1e-14 * np.abs(s.ntk).max()
    diffs = []
    for n in (10 ** 3, 10 ** 4, 10 ** 5):
        r = exact_linear(n, L, cw, lb, lw, G0)
        for i in range(L):
            # the linear network's mean NTK is exact at every width, on every pair of inputs
            for key, v in r[i]["mean"].items():
                assert float(v) == pytest.approx(s.ntk[i][key], rel=1e-13)
        diffs.append(np.array([[float(r[i][k][key]) - getattr(s, k)[i][key]
                                for k in "ABDF" for key in r[i][k]] for i in range(L)]))
    scale = max(np.abs(getattr(s, k)[-1]).max() for k in "ABDF")
    assert np.all(np.abs(diffs[0]) < 0.05 * scale)
    # n × (exact − leading) is O(1/n): 10 per decade wherever resolved (or faster)
    big = np.abs(diffs[1]) > 1e-9 * scale
    assert big.sum() >= 100
    ratio = diffs[1][big] / diffs[2][big]
    assert np.all((np.abs(ratio - 10.0) < 0.2) | (ratio > 99.0)), ratio
    assert np.all(np.abs(diffs[2]) < 1e-4 * scale)


# ------------------------------------------------------------------ subsets and symmetries
def test_subsets_and_symmetries():
    x = X3
    G = x @ x.T / 3
    net = network("mlp", "tanh")
    ctx = Ctx(net.activation, 1.0, 0.05, lambda_b=0.7, lambda_w=1.3)
    s3 = FD.start(G, weight_var=1.0, bias_var=0.05, lambda_b=0.7, lambda_w=1.3)
    s2 = FD.start(G[1:, 1:], weight_var=1.0, bias_var=0.05, lambda_b=0.7, lambda_w=1.3)
    s1 = F.start(G[0, 0], weight_var=1.0, bias_var=0.05, lambda_b=0.7, lambda_w=1.3)
    for _ in range(2):
        s3, s2, s1 = FD.apply(net, s3, ctx), FD.apply(net, s2, ctx), F.apply(net, s1, ctx)
    sub = [1, 2]
    for k in FIELDS:
        a3, a2 = getattr(s3, k), getattr(s2, k)
        part = a3[np.ix_(*[sub] * a3.ndim)]
        assert np.allclose(part, a2, rtol=1e-12, atol=1e-13 * np.abs(a2).max()), k
        assert float(a3[(0,) * a3.ndim]) == pytest.approx(float(getattr(s1, k)), rel=1e-12), k
    A, B, D, Fm = s3.theta_a, s3.theta_b, s3.theta_d, s3.theta_f
    for T, perms in ((A, ("bacd", "abdc", "cdab")),      # A: within each pair, pair swap
                     (D, ("bacd", "abdc")),              # D: within each pair
                     (B, ("cdab", "badc")),              # B: the factors, the neurons
                     (Fm, ("cdab",))):                   # F: the neurons (Θ̂_ij = Θ̂_ji^T)
        for p in perms:
            assert np.allclose(np.einsum(f"{p}->abcd", T), T, rtol=1e-12, atol=1e-14), p
    V = FD.variance(s3)
    assert np.allclose(V, V.transpose(2, 3, 0, 1), rtol=1e-12)
    assert np.allclose(V, V.transpose(1, 0, 2, 3), rtol=1e-12)
    C = FD.cross(s3)
    assert np.allclose(C, C.transpose(1, 0, 3, 2), rtol=1e-12)


# ------------------------------------------------------------------ E[φ'φ'] and its derivatives
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "gelu", "linear"])
def test_dphi_pair_derivatives(act):
    k = (1.3, 0.4, 0.9)
    d = dphi_pair_derivatives(act, *k)
    assert float(d.value) == pytest.approx(float(expect2(act, "dphi", "dphi", *k).value),
                                           rel=1e-10, abs=1e-14)
    # Price: ∂E[φφ]/∂K_ab = E[φ'φ'], so the gradient of E[φ'φ'] is that Hessian's middle row
    assert np.allclose(d.grad, pair_derivatives(act, *k).hess[1], rtol=1e-8, atol=1e-12)
    h, H = 1e-5, np.zeros((3, 3))
    for i in range(3):
        up, dn = list(k), list(k)
        up[i] += h
        dn[i] -= h
        H[i] = (dphi_pair_derivatives(act, *up).grad - dphi_pair_derivatives(act, *dn).grad) \
            / (2 * h)
    # central differences: O(h²) ≈ 1e-10 plus the rounding of the gradient over h
    assert np.allclose(d.hess, H, atol=1e-7 * max(1.0, np.abs(H).max())), (d.hess, H)


def test_dphi_refusals():
    with pytest.raises(CritheoryError, match="correlation"):
        dphi_pair_derivatives("relu", 1.0, 2.0, 4.0)
    with pytest.raises(CritheoryError, match="derivative jumps"):
        ct.ntk_data_statistics("mlp", 1.0, 0.0, X3[:2], 2, activation="hardtanh")
    # one input of hard tanh is the one-input theory's (no derivative of E[φ'_a φ'_b] needed)
    ct.ntk_data_statistics("mlp", 1.0, 0.0, X3[:1], 2, activation="hardtanh")


# ------------------------------------------------------------------ refusals and interface
@pytest.mark.parametrize("arch,act,needle", [("pre-ln", "tanh", "'layernorm' block"),
                                             ("residual", "tanh", "linear activation only"),
                                             ("residual", "relu", "linear activation only")])
def test_refusals(arch, act, needle):
    with pytest.raises(CritheoryError, match=needle) as e:
        ct.ntk_data_statistics(arch, 1.0, 0.0, X3[:2], 3, activation=act)
    assert "\n" not in str(e.value)


def test_refused_before_work_and_inputs():
    with pytest.raises(CritheoryError, match="budget"):
        ct.ntk_data_statistics("mlp", 1.0, 0.0, np.eye(12), 50, activation="tanh")
    with pytest.raises(CritheoryError, match="correlation"):     # ReLU, inputs x and 2x
        ct.ntk_data_statistics("mlp", 2.0, 0.0, [[1.0, 0.0], [2.0, 0.0]], 3)
    # equal inputs are computed once and expanded
    s = ct.ntk_data_statistics("mlp", 2.0, 0.0, X3[[0, 1, 0]], 3)
    r = ct.ntk_data_statistics("mlp", 2.0, 0.0, X3[:2], 3)
    idx = np.ix_([0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0])
    assert np.array_equal(s.A[-1], r.A[-1][idx]) and np.array_equal(s.ntk, r.ntk[:, [0, 1, 0]][
        :, :, [0, 1, 0]])
    d = s.to_dict()
    assert d["A"][-1][0][1][0][1] == s.A[-1, 0, 1, 0, 1]


# ------------------------------------------------------------------ finite networks
def _ensemble(act, sw, L, n, S, x, seed, lb=1.0, lw=1.0):
    e = ct.train_ensemble(network("mlp", act), sw, 0.0, x, [0.0], depth=L, width=n, networks=S,
                          eta=1.0, steps=0, seed=seed, lambda_b=lb, lambda_w=lw)
    return e.initial_outputs, e.ntk


def _ncov(X, Y, n):
    """n Cov(X, Y) over independent networks and its standard error (the spread of the
    centred products, the delta method's to order 1/S)."""
    prod = (X - X.mean()) * (Y - Y.mean())
    return n * prod.sum() / (X.size - 1), n * prod.std(ddof=1) / math.sqrt(X.size)


def _scores(s, z, T, n):
    """(kind, indices, measured, error, predicted) of every distinct entry of n Cov(Θ̂, Θ̂) and
    n Cov(Θ̂, zz) of the output neuron."""
    m = T.shape[1]
    V, C = s.variance(), s.cross()
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    rows = []
    for i, (a, b) in enumerate(pairs):
        for j, (c, d) in enumerate(pairs):
            if j >= i:
                rows.append(("var", (a, b, c, d)) + _ncov(T[:, a, b], T[:, c, d], n)
                            + (V[a, b, c, d],))
            rows.append(("cross", (a, b, c, d)) + _ncov(T[:, a, b], z[:, c] * z[:, d], n)
                        + (C[a, b, c, d],))
    return rows


@pytest.mark.parametrize("act,sw,n,S", [("tanh", 1.0, 64, 4000), ("relu", 2.0, 128, 8000)])
def test_variance_and_cross_against_networks(act, sw, n, S):
    """Two inputs, depth 3: every distinct entry of n Cov(Θ̂_{α1α2}, Θ̂_{α3α4}) and
    n Cov(Θ̂_{α1α2}, z_α3 z_α4) of one neuron within 3 standard errors (measured: max |z| 0.9
    for tanh at n = 64, 2.3 for ReLU at n = 128, where the O(L/n) remainder of ReLU is ~2 %)."""
    L, x = 3, X3[:2]
    s = ct.ntk_data_statistics("mlp", sw, 0.0, x, L, activation=act)
    z, T = _ensemble(act, sw, L, n, S, x, seed=1 + n)
    rows = _scores(s, z, T, n)
    assert len(rows) == 15
    zs = [(r[2] - r[4]) / r[3] for r in rows]
    assert max(abs(v) for v in zs) < 3.0, rows


@pytest.mark.parametrize("act,sw,L,n,lb,seed", [("tanh", 1.0, 8, 16, 0.0, 5),
                                                 ("relu", 2.0, 4, 32, 1.0, 5)])
def test_mean_shift_against_networks(act, sw, L, n, lb, seed):
    """The 1/n shift of the mean NTK on two inputs, resolved by 20000 networks: tanh (weight
    rate only, depth 8, n = 16) lies 16-20 standard errors below Θ on every entry; ReLU's
    diagonal is exact at any width (Θ1 = 0) but its off-diagonal entry lies 6 standard errors
    above Θ (depth 4, n = 32). The order-1/n mean accounts for each within 3."""
    x, S = X3[:2], 20000
    s = ct.ntk_data_statistics("mlp", sw, 0.0, x, L, activation=act, lambda_b=lb)
    _, T = _ensemble(act, sw, L, n, S, x, seed=seed, lb=lb)
    mean, se = T.mean(axis=0), T.std(axis=0, ddof=1) / math.sqrt(S)
    z_nlo = (mean - s.ntk_mean(n)) / se
    z_inf = (mean - s.ntk[-1]) / se
    assert np.all(np.abs(z_nlo) < 3.0), (z_nlo, mean, s.ntk_mean(n))
    assert abs(z_inf[0, 1]) > 5.0, z_inf
    if act == "relu":
        assert s.ntk_correction[-1, 0, 0] == 0.0 and s.ntk_correction[-1, 0, 1] > 0


def _extrapolated(ns, vals, errs):
    """Intercept of ``v = a + b/n`` (weighted least squares) and its standard error."""
    X = np.vstack([np.ones(len(ns)), 1.0 / np.asarray(ns, dtype=float)]).T
    w = 1.0 / np.asarray(errs) ** 2
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    a, _ = cov @ (X.T @ (w * np.asarray(vals)))
    return float(a), float(math.sqrt(cov[0, 0]))


@pytest.mark.slow
@pytest.mark.parametrize("act,sw", [("tanh", 1.0), ("relu", 2.0)])
def test_three_inputs_three_widths(act, sw):
    """Three inputs, depth 4, n = 64, 128, 256 (8000 networks each; 57 distinct entries): the
    widest within 3 standard errors, and the extrapolation ``a + b/n`` of every entry within 3
    of the prediction (measured: max |z| 1.9 and 1.8 for tanh, 2.1 and 2.8 for ReLU)."""
    L, x, ns = 4, X3, (64, 128, 256)
    s = ct.ntk_data_statistics("mlp", sw, 0.0, x, L, activation=act)
    runs = [_scores(s, *_ensemble(act, sw, L, n, 8000, x, seed=100 + n), n) for n in ns]
    widest = [(r[2] - r[4]) / r[3] for r in runs[-1]]
    assert max(abs(v) for v in widest) < 3.0
    for j, row in enumerate(runs[0]):
        a, ea = _extrapolated(ns, [r[j][2] for r in runs], [r[j][3] for r in runs])
        assert abs(a - row[4]) < 3.0 * ea, (row[:2], a, ea, row[4])


# ------------------------------------------------------------------ depth 10⁴: the tables
@pytest.mark.parametrize("arch,act,sw,sb,lb,mu", [("mlp", "tanh", 1.0, 0.0, 1.0, None),
                                                   ("mlp", "tanh", 1.0, 0.0, 0.0, None),
                                                   ("mlp", "tanh", 1.5, 0.3, 1.0, None),
                                                   ("mlp", "swish", 1.9, 0.0, 1.0, None),
                                                   ("mlp", "relu", 2.0, 0.0, 1.0, None),
                                                   ("mlp", "relu", 2.2, 0.5, 0.5, None),
                                                   ("residual", "linear", 0.3, 0.1, 0.5, 0.9)])
def test_tabulated_route_against_per_layer_route(arch, act, sw, sb, lb, mu):
    """Depth 300 (swish in its ordered phase: 120): every field within 1e-10 of the largest
    value it took so far (a field that decays is compared with its scale, not with its last
    digits). ReLU at (2.2, 0.5) and the residual network at μ² + σ_w² = 1.11 run away to
    K ~ 1e13: the probes' units (powers of K) keep the coefficients' digits there."""
    kw = dict(lambda_b=lb, lambda_w=1.0, width=32, mu=mu)
    L = 120 if act == "swish" else 300
    ref = ct.ntk_curves(arch, act, sw, sb, L, tabulate=False, **kw).finite
    tab = ct.ntk_curves(arch, act, sw, sb, L, **kw).finite
    for k in ("theta1", "A", "B", "D", "F"):
        scale = np.maximum.accumulate(np.abs(ref[k])) + 1e-300
        assert np.nanmax(np.abs(tab[k] - ref[k]) / scale) < 1e-10, k


def test_depth_ten_thousand():
    """ReLU's closed forms (``docs/ntk.md`` §7.3) and tanh's ``n Var(Θ̂)/Θ² → 7l/15`` at
    depth 10⁴, by the tabulated route; the per-layer route is refused there before any work."""
    L = 10 ** 4
    c = ct.ntk_curves("mlp", "relu", 2.0, 0.0, L, lambda_b=0.6, lambda_w=1.7, q0=0.8, width=7)
    r, nu, K, w = 2.0, 5.0, 1.6, 1.7 * 0.8
    th = 0.6 + w
    s1, s2, s3 = L * (L - 1) / 2, (L - 1) * L * (2 * L - 1) / 6, L * (L - 1) * (L - 2) / 6
    want = dict(F=r * K * th * s1, B=r * th * th * s2, D=K * (nu * w + (r - 1) * th) * s1,
                A=(nu * w * w + 2 * (r - 1) * w * th) * s1 + (r - 1) * th * th * s2
                + 2 * w * (nu * w + (r - 1) * th) * s3)
    for k, v in want.items():
        assert c.finite[k][-1] == pytest.approx(v, rel=1e-9), k
    t = ct.ntk_curves("mlp", "tanh", 1.0, 0.0, L, width=64)
    rel = t.finite["variance"] / t.ntk ** 2 / t.depths
    dev = [abs(rel[l - 1] / (7 / 15) - 1) for l in (1000, 4000, 10000)]
    assert dev == sorted(dev, reverse=True) and dev[-1] < 1e-3, dev
    with pytest.raises(CritheoryError, match="tabulated route"):
        ct.ntk_curves("mlp", "tanh", 1.0, 0.0, L, width=64, tabulate=False)


def test_table_groups_check():
    """A table whose rows are the terms of one sum, one crossing zero and one far below the
    others: accepted on one piece by the check relative to the largest term of their group."""
    from critheory.theory.meanfield.tabulated import PiecewiseChebyshev

    def f(x):
        return np.vstack([np.ones_like(x), np.sin(3 * x - 1.5), 1e-9 * np.cos(x)])

    group = PiecewiseChebyshev(f, 1.0, groups=[0, 0, 0])
    x = np.linspace(0.0, 0.99, 7)
    assert group.piece(0.1)[:2] == (0.0, 1.0) and group.piece(0.9)[:2] == (0.0, 1.0)
    assert np.allclose(group(x), f(x), rtol=0, atol=1e-12)
