"""The dNTK and ddNTK at leading order 1/n (``critheory/theory/ntk/dntk.py``, ``docs/dntk.md``)
against independent routes:

* the simulator's exact derivatives (Taylor-mode arithmetic, ``critheory/simulation/dntk.py``)
  against torch's nested autograd and against central differences of the outputs;
* the leading order is exact at layer 2 (every sum over layer 1 is exact): ensembles of
  networks as narrow as n = 4 must agree with it (Student-t, Bonferroni);
* beyond layer 2 the measured ``n × mean`` at two widths, extrapolated linearly in 1/n, must
  agree with it; the remainder shrinks like 1/n;
* closed forms: the scale-invariant class at criticality (``P = λ_W r q0 θ (L³ − L)/3``) and the
  deep linear network's ddNTK sums; exact zeros (biases only in a linear network, layer 1, the
  mean of the odd dNTK);
* the K* = 0 asymptotics ``n·dntk → −l/5`` and ``n·ddntk → −13l/105`` (tanh, derived in the
  docs);
* the meta-principled family: the ddNTK's mean grows like ``n^{s}`` relative to ``s = 0``;
* the CLI keys of ``ntk --width``.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import critheory as ct
from critheory.blocks.registry import network
from critheory.cli.main import main
from critheory.errors import CritheoryError
from critheory.simulation import dntk as SD
from critheory.simulation.bayes import StreamSampler
from critheory.simulation.train import forward, init_params, network_ops
from critheory.theory.fold import Ctx
from critheory.theory.ntk import dntk as D
from critheory.validation.dntk import compare_dntk, extrapolate

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# ------------------------------------------------------------------ the exact derivatives
def _tiny(act="tanh", n=5, L=3, sw=1.3, sb=0.2, seed=1):
    net = network("mlp", act)
    ops = network_ops(net, L, n, 1)
    ops[-1] = ops[-1][:3] + (2,) + ops[-1][4:]
    rng = np.random.SeedSequence(seed).spawn(1)
    sampler = StreamSampler([np.random.Generator(np.random.SFC64(rng[0]))], [1])
    params = init_params(ops, sampler, sw, sb)
    fs = [net.activation.numpy_func(k) for k in range(4)]
    x = np.array([[[0.7]]])
    lb, lw = np.array([0.6, 1.1, 0.8])[:L], np.array([1.5, 0.7, 1.2])[:L]
    return ops, params, fs, x, lb, lw


def test_jets_match_torch_nested_autograd():
    torch = pytest.importorskip("torch")
    ops, params, fs, x, lb, lw = _tiny()
    j = SD.jets(ops, params, fs, x, lb, lw)
    tp, lam = [], []
    for op, p in zip(ops, params):
        if op[0] == "dense":
            W, b = torch.tensor(p[0][0]), torch.tensor(p[1][0])
            tp += [W, b]
            lam += [torch.full_like(W, lw[op[4]] / op[2]), torch.full_like(b, lb[op[4]])]
    sizes = [t.numel() for t in tp]
    theta0 = torch.cat([t.reshape(-1) for t in tp])
    lamv = torch.cat([t.reshape(-1) for t in lam])

    def f(theta):
        it = iter(torch.split(theta, sizes))
        h = torch.tensor(x[0])
        for op in ops:
            if op[0] == "phi":
                h = torch.tanh(h)
            else:
                h = next(it).reshape(op[3], op[2]) @ h + next(it).reshape(op[3], 1)
        return h[:, 0]

    AF = torch.autograd.functional

    def ntk(theta):
        J = AF.jacobian(f, theta, create_graph=True)
        return (J * lamv) @ J.T

    J = AF.jacobian(f, theta0)
    g = [(lamv * J[a]).detach() for a in range(2)]
    assert np.allclose(ntk(theta0).detach().numpy(), j["ntk"][0], rtol=1e-13, atol=1e-14)
    for a in range(2):
        _, dH = AF.jvp(ntk, theta0, g[a])
        assert np.allclose(dH.numpy(), j["dntk"][0, a], rtol=1e-12, atol=1e-14)
    H = [AF.hessian(lambda t, i=i: f(t)[i], theta0, create_graph=True) for i in range(2)]
    for i in range(2):
        for k in range(2):
            for a in range(2):
                for b in range(2):
                    nu = (H[i] @ g[a]) @ (lamv * (H[k] @ g[b]))
                    assert nu.item() == pytest.approx(j["nu"][0, i, k, a, b], rel=1e-12,
                                                      abs=1e-14)
                    tau = g[a] @ (H[i] @ g[b])
                    assert tau.item() == pytest.approx(j["tau"][0, a, i, b], rel=1e-12,
                                                       abs=1e-14)

    def third(i, u, v, w):
        _, out = AF.jvp(lambda t: v @ AF.hessian(lambda s: f(s)[i], t, create_graph=True)
                        @ w, theta0, u)
        return out.item()

    assert third(0, g[0], g[1], g[1]) == pytest.approx(j["omega0011"][0], rel=1e-11)
    assert third(1, g[1], g[0], g[0]) == pytest.approx(j["omega1100"][0], rel=1e-11)
    assert third(0, g[0], g[0], g[0]) == pytest.approx(j["omega0000"][0], rel=1e-11)


def test_jets_match_central_differences():
    """A route without autograd: gradients, the NTK and its first and second derivatives along
    the update direction by central differences of the plain forward pass."""
    ops, params, fs, x, lb, lw = _tiny("gelu", n=4, L=3)
    j = SD.jets(ops, params, fs, x, lb, lw)
    flat = [(i, k) for i, op in enumerate(ops) if op[0] == "dense" for k in (0, 1)]
    lam = []
    for i, k in flat:
        op = ops[i]
        lam.append(np.full(params[i][k].size, lw[op[4]] / op[2] if k == 0 else lb[op[4]]))
    lam = np.concatenate(lam)
    theta0 = np.concatenate([params[i][k].ravel() for i, k in flat])
    phi = fs[0]

    def z(theta):
        ps, o = list(params), 0
        for i, k in flat:
            a = params[i][k]
            new = theta[o:o + a.size].reshape(a.shape)
            ps[i] = (new, ps[i][1]) if k == 0 else (ps[i][0], new)
            o += a.size
        return forward(ops, ps, phi, x)[0, :, 0]

    def grads(theta, h=1e-5):
        G = np.empty((2, theta.size))
        for p in range(theta.size):
            e = np.zeros(theta.size)
            e[p] = h
            G[:, p] = (z(theta + e) - z(theta - e)) / (2 * h)
        return G

    def ntk(theta):
        G = grads(theta)
        return (G * lam) @ G.T

    G0 = grads(theta0)
    assert np.allclose(ntk(theta0), j["ntk"][0], rtol=1e-8)
    g1 = lam * G0[1]
    h = 1e-3
    dH = (ntk(theta0 + h * g1) - ntk(theta0 - h * g1)) / (2 * h)
    assert np.allclose(dH, j["dntk"][0, 1], rtol=1e-5, atol=1e-8)
    g0 = lam * G0[0]
    h = 1e-2
    d2 = (ntk(theta0 + h * g0)[0, 0] - 2 * ntk(theta0)[0, 0] + ntk(theta0 - h * g0)[0, 0]) / h ** 2
    ddh = 2 * j["omega0000"][0] + 2 * j["nu"][0, 0, 0, 0, 0]
    assert d2 == pytest.approx(ddh, rel=1e-3)


# ------------------------------------------------------------------ leading order vs networks
@pytest.mark.parametrize("act, sw, sb", [("tanh", 1.0, 0.0), ("gelu", 1.7, 0.3),
                                         ("relu", 2.0, 0.0), ("swish", 1.9, 0.2),
                                         ("elu", 1.3, 0.2)])
def test_layer_two_is_exact_at_width_four(act, sw, sb):
    c = compare_dntk(act, sw, sb, widths=(4,), depth=2, networks=6000, lambda_b=0.8,
                     lambda_w=1.2, seed=11)
    d = c.decision(0.01)
    assert d.verdict == "consistent", c.to_dict()
    assert set(c.t) == ({"P", "Q"} if act in ("relu", "elu")
                        else {"P", "Q", "R", "S", "T", "U"})


@pytest.mark.parametrize("act, sw", [("tanh", 1.0), ("relu", 2.0)])
def test_depth_three_extrapolated_in_one_over_n(act, sw):
    """At criticality: n × mean at n = 32, 64 extrapolated in 1/n against P … U of layers
    2, 3 (Bonferroni at 1 %)."""
    c = compare_dntk(act, sw, 0.0, widths=(32, 64), depth=3, networks=3000, seed=5)
    assert c.decision(0.01).verdict == "consistent", c.to_dict()


@pytest.mark.slow
def test_depth_four_gelu_remainder_shrinks():
    """GELU (σ_w², σ_b²) = (1.7, 0.3), depth 3 at n = 64, 128 extrapolated; and the
    remainder of the one-width estimate shrinks from n = 64 to 256."""
    c = compare_dntk("gelu", 1.7, 0.3, widths=(64, 128), depth=3, networks=3000, seed=7)
    assert c.decision(0.01).verdict == "consistent", c.to_dict()


def test_dntk_is_odd_and_vanishes_at_layer_one():
    m = ct.measure_dntk("gelu", 1.7, 0.3, width=16, depth=3, networks=2000, seed=4)
    assert np.all(m.samples["p"][:, 0] == 0) and np.all(m.samples["r"][:, 0] == 0)
    t = m.mean("dh")[1:] / m.stderr("dh")[1:]
    assert np.all(np.abs(t) < 3.5), t
    # the two estimators of one neuron: E[dĤ_000 z_0] = (P + 2Q)/n
    t = (m.mean("pq") - m.mean("p") - 2 * m.mean("q"))[1:]
    assert np.all(np.abs(t) < 4 * (m.stderr("pq") + m.stderr("p") + 2 * m.stderr("q"))[1:])


def test_linear_network_exact_zeros():
    """A linear network trained through its biases only is affine in them: every derivative
    beyond the first vanishes exactly; with weights trained R, U vanish at leading order (the
    measured n·R falls like 1/n)."""
    m = ct.measure_dntk("linear", 1.0, 0.3, width=8, depth=3, networks=64, lambda_w=0.0)
    for k in ("p", "q", "r", "s", "t", "u", "ddh"):
        assert np.abs(m.samples[k]).max() < 1e-12, k
    f = D.dntk_fields(network("mlp", "linear"), 1.0, 0.3, np.ones(3), np.zeros(3))
    assert np.all(f["P"] == 0) and np.all(f["T"] == 0)
    g = D.dntk_fields(network("mlp", "linear"), 1.0, 0.3, np.ones(4), np.ones(4))
    assert np.all(g["R"] == 0) and np.all(g["U"] == 0) and np.all(g["P"][1:] > 0)
    r = []
    for n in (16, 64):
        mm = ct.measure_dntk("linear", 1.0, 0.3, width=n, depth=3, networks=1500, seed=n,
                             layers=(3,))
        r.append((mm.mean("r")[0] * n, mm.stderr("r")[0] * n))
    # n·R(16)/n·R(64) = 4 for an O(1/n²) mean
    ratio = r[0][0] / r[1][0]
    err = ratio * math.hypot(r[0][1] / r[0][0], r[1][1] / r[1][0])
    assert abs(ratio - 4.0) < 4 * err + 0.4, (ratio, err)


# ------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("act, r", [("relu", 2.0), ("linear", 1.0), ("leaky_relu", None)])
def test_scale_invariant_closed_form(act, r):
    a = ct.Activation.get(act)
    slopes = [1.0, 1.0] if act == "linear" else ([1.0, 0.0] if act == "relu" else None)
    if slopes is None:
        from critheory.theory.meanfield.criticality import universality

        cp = universality(ct.architecture("mlp", a)).critical_point
        A2 = 1.0 / cp.weight_var
        # leaky ReLU's slopes: 1 and the negative slope a, A2 = (1 + a²)/2
        neg = math.sqrt(2 * A2 - 1)
        slopes = [1.0, neg]
    A2 = (slopes[0] ** 2 + slopes[1] ** 2) / 2
    A4 = (slopes[0] ** 4 + slopes[1] ** 4) / 2
    r = A4 / A2 ** 2
    lb, lw, q0, L = 0.7, 1.3, 1.5, 7
    f = D.dntk_fields(network("mlp", a), 1.0 / A2, 0.0, np.full(L, lb), np.full(L, lw), q0)
    l = np.arange(1, L + 1)
    theta = lb + lw * q0
    P = lw * r * q0 * theta * (l ** 3 - l) / 3
    assert f["P"] == pytest.approx(P, rel=1e-10)
    assert f["Q"] == pytest.approx(P / 2, rel=1e-10)
    assert f["dntk"][1:] == pytest.approx((2 * r / 3) * (lw * q0 / theta)
                                          * (l - 1 / l)[1:], rel=1e-10)


def test_linear_ddntk_sums():
    lb, lw, q0, L = 0.4, 1.1, 0.8, 6
    f = D.dntk_fields(network("mlp", "linear"), 1.0, 0.0, np.full(L, lb), np.full(L, lw), q0)
    th = lb + lw * q0
    S = [0.0]
    T = [0.0]
    for l in range(1, L):
        B = th * th * (l - 1) * l * (2 * l - 1) / 6
        F = q0 * th * l * (l - 1) / 2
        X = lw * q0 * th * (l ** 3 - l) / 6
        S.append(S[-1] + lw * (l * l * th * th + B))
        T.append(T[-1] + lw * lw * (q0 * th * l + F) + 2 * lw * X)
    assert f["S"] == pytest.approx(S, rel=1e-10)
    assert f["T"] == pytest.approx(T, rel=1e-10)
    assert np.all(f["R"] == 0) and np.all(f["U"] == 0)


def test_k0_class_asymptotics():
    """tanh at (1, 0), constant rates: n·dntk/l → −1/5, n·ddntk/l → −13/105 (docs/dntk.md §4;
    the corrections are O(log l/l))."""
    c = ct.dntk_curves("mlp", "tanh", 1.0, 0.0, 200)
    assert c.dntk_coefficient[-1] / 200 == pytest.approx(-0.2, rel=0.015)
    assert c.ddntk_coefficient[-1] / 200 == pytest.approx(-13 / 105, rel=0.005)
    assert c.exponents["dntk"] == pytest.approx(1.0, abs=0.02)
    assert c.exponents["ddntk"] == pytest.approx(1.0, abs=0.02)
    # the leading powers of the coefficients: R ≈ c l⁵/56, T ≈ −c l⁵/140, U ≈ −3c l³/20
    cc = -1.0 / 3.0
    assert c.R[-1] == pytest.approx(cc * 200 ** 5 / 56, rel=0.05)
    assert c.T[-1] == pytest.approx(-cc * 200 ** 5 / 140, rel=0.05)
    assert c.U[-1] == pytest.approx(-3 * cc * 200 ** 3 / 20, rel=0.05)


# ------------------------------------------------------------------ the family
def test_family_exponents_and_the_measured_ddntk():
    assert D.family_exponents(0.5) == {"ntk": 0.0, "output": -0.25, "dntk": -0.75,
                                       "dntk_cross": -1.0, "ddntk": -0.5}
    with pytest.raises(CritheoryError):
        D.family_exponents(1.5)
    f = D.dntk_fields(network("mlp", "tanh"), 1.0, 0.0, np.ones(2), np.ones(2))
    dd = 6 * f["R"][-1] + 2 * (f["S"][-1] + f["T"][-1] + f["U"][-1])
    pq = f["P"][-1] + 2 * f["Q"][-1]
    for s in (0.0, 1.0):
        spread = []
        for n in (8, 32):
            m = ct.measure_dntk("tanh", 1.0, 0.0, width=n, depth=2, networks=3000, family=s,
                                seed=n, layers=(2,))
            # layer 2 is exact: E[ddĤ] n^{1−s} and E[z dĤ] n do not depend on n
            t = (m.mean("ddh")[0] * n ** (1 - s) - dd) / (m.stderr("ddh")[0] * n ** (1 - s))
            assert abs(t) < 3.5, (s, n, t)
            t = (m.mean("pq")[0] * n - pq) / (m.stderr("pq")[0] * n)
            assert abs(t) < 3.5, (s, n, t)
            assert m.mean("ntk")[0] == pytest.approx(f["theta"][-1], rel=0.05)
            spread.append(m.samples["dh"][:, 0].std() * n ** (1 - s / 2))
        # the typical dNTK is of size n^{s/2 − 1}
        assert spread[0] == pytest.approx(spread[1], rel=0.15)


# ------------------------------------------------------------------ rules, refusals
def test_fold_rules_and_refusals():
    net = network("mlp", "tanh")
    s = D.start(1.0, weight_var=1.0, lambda_b=1.0, lambda_w=1.0)
    s = D.apply(net, s, Ctx(net.activation, 1.0, 0.0, lambda_b=1.0, lambda_w=1.0))
    f = D.dntk_fields(net, 1.0, 0.0, np.ones(2), np.ones(2))
    assert float(s.dntk_p) == f["P"][1] and float(s.ddntk_u) == f["U"][1]
    assert s.dntk_sums is None                      # read by a dense block only
    for arch, word in (("preln", "layernorm"), ("residual", "residual")):
        with pytest.raises(CritheoryError, match=word):
            D.check_network(ct.architecture(arch, "linear").network)
    with pytest.raises(CritheoryError, match="kink at -1"):
        D.dntk_fields(network("mlp", "hardtanh"), 1.0, 0.0, np.ones(3), np.ones(3))
    relu = D.dntk_fields(network("mlp", "relu"), 2.0, 0.0, np.ones(3), np.ones(3))
    assert np.all(np.isnan(relu["R"])) and np.all(np.isfinite(relu["P"]))
    assert "infinite" in D.ddntk_refusal(ct.Activation.get("relu"))
    assert "point mass" in D.ddntk_refusal(ct.Activation.get("elu"))   # φ' continuous
    with pytest.raises(CritheoryError, match="beyond"):
        ct.dntk_curves("mlp", "tanh", 1.0, 0.0, 200_000)
    with pytest.raises(CritheoryError, match="vectorized route"):      # no curves given
        D.curves_at_rates(network("mlp", "tanh"), 1.0, 0.0, np.ones(2000), np.ones(2000))


# ------------------------------------------------------------------ CLI
def test_cli_width_adds_dntk_keys(capsys):
    base = ["ntk", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "6", "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "dntk" not in plain
    assert main(base + ["--width", "64", "--lambda-w", "0.5"]) == 0
    wide = json.loads(capsys.readouterr().out)
    c = ct.dntk_curves("mlp", "tanh", 1.0, 0.0, 6, lambda_w=0.5, width=64)
    assert wide["dntk"] == pytest.approx(c.dntk.tolist(), rel=1e-14)
    assert wide["ddntk"] == pytest.approx(c.ddntk.tolist(), rel=1e-14)
    assert wide["dntk_fields"]["P"] == pytest.approx(c.P.tolist(), rel=1e-14)
    assert set(wide["dntk_fields"]) == {"P", "Q", "R", "S", "T", "U", "dntk_coefficient",
                                        "ddntk_coefficient"}
    assert wide["exponents"]["dntk"] == pytest.approx(c.exponents["dntk"])
    assert "dntk_note" not in wide
    # ReLU: the ddNTK is null with the reason; a residual network: both null
    assert main(["ntk", "relu", "--weight-var", "2", "--bias-var", "0", "--depth", "3",
                 "--width", "32", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["ddntk"] == [None] * 3 and r["dntk"][2] == pytest.approx(2 * (3 - 1 / 3) / 3 / 32)
    assert "not defined" in r["dntk_note"]
    assert main(["ntk", "linear", "--arch", "residual", "--mu", "0.7", "--weight-var", "0.51",
                 "--bias-var", "0", "--depth", "3", "--width", "32", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["dntk"] is None and "residual" in r["dntk_note"]
    assert main(base[:-1] + ["--width", "64"]) == 0
    assert "dNTK" in capsys.readouterr().out
    # deep (the vectorized route): ReLU at (2, 0) has K = 2, Θ^l = 2l (λ = 1, q0 = 1) and
    # n·dntk = (P + 2Q)/Θ² with P = 2Q: the closed form 2(L − 1/L)/3 of the line above
    assert main(["ntk", "relu", "--weight-var", "2", "--bias-var", "0", "--depth", "1500",
                 "--width", "32", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    L = np.arange(1, 1501)
    assert r["dntk"] == pytest.approx((2 * (L - 1 / L) / 3 / 32).tolist(), rel=1e-12)
    assert len(r["ntk_variance"]) == 1500 and "dntk_note" in r     # the ddNTK's note


@pytest.mark.parametrize("act,sw,sb", [("tanh", 1.0, 0.0), ("gelu", 1.98, 0.1),
                                       ("relu", 2.0, 0.0), ("linear", 1.0, 0.1)])
def test_vectorized_route_equals_the_layer_by_layer_fold(act, sw, sb):
    """One vectorized fold (complex-step probes of the affine layer map, the expectations at
    all kernels in one call) against the fold layer by layer: the same rules, so the same
    numbers to rounding (the kernels come from verified tables: 1e-12)."""
    L = 120
    c = ct.ntk_curves("mlp", act, sw, sb, L, width=10)
    net = network("mlp", act)
    a = D.dntk_fields(net, sw, sb, c.lambda_b, c.lambda_w)
    b = D.vectorized_fields(net, sw, sb, c.kernel, c.ntk, c.finite["F"], c.finite["B"],
                            c.lambda_b, c.lambda_w)
    for k in D.DNTK_FIELDS:
        assert np.isnan(a[k]).tolist() == np.isnan(b[k]).tolist(), k
        ok = np.isfinite(a[k])
        np.testing.assert_allclose(b[k][ok], a[k][ok], rtol=1e-11, atol=0, err_msg=k)
    # the public route: deeper than VECTORIZED_DEPTH, dntk_curves takes it
    d = ct.dntk_curves("mlp", act, sw, sb, L, width=10)
    np.testing.assert_allclose(d.P[1:], a["P"][1:], rtol=1e-11)


def test_vectorized_route_goes_to_depth_ten_thousand():
    """tanh at (1, 0): n·dntk → −l/5 (docs/dntk.md §4) at depth 10⁴, in the time budget of
    the NTK curves (benchmarks/bench_ntk.py)."""
    c = ct.dntk_curves("mlp", "tanh", 1.0, 0.0, 10_000)
    assert c.dntk_coefficient[-1] / 10_000 == pytest.approx(-0.2, rel=0.02)
    assert c.exponents["dntk"] == pytest.approx(1.0, abs=0.02)


def test_extrapolate_refuses_bad_widths():
    with pytest.raises(CritheoryError):
        extrapolate(1.0, 0.1, 20, 1.0, 0.1, 10)
    with pytest.raises(CritheoryError):
        compare_dntk("tanh", 1.0, 0.0, widths=(8, 8), depth=2, networks=10)
