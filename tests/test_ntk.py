"""The NTK room (critheory.theory.ntk), its simulator and the ``ntk`` command, each checked
against a route that shares no code with it: closed forms of the scale-invariant class, the
arc-cosine (ReLU) and arcsine (erf) kernels in a two-input recursion written here from scratch,
mpmath quadrature, and the empirical NTK of finite networks."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import mpmath
import numpy as np
import pytest

from critheory.blocks.blocks import Block, Dense, Phi, Residual
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.simulation.ntk import measure_ntk
from critheory.theory.ntk import ntk_curves
from critheory.theory.ntk.depth import learning_rates
from critheory.theory.fold import Ctx, fold
from critheory.theory.ntk.rules import THEORY
from critheory.theory.state import State


# ----------------------------------------------------------------- closed forms (one input)
@pytest.mark.parametrize("sw", [1.5, 2.0, 2.6])
@pytest.mark.parametrize("lb,lw", [(1.0, 0.0), (0.0, 1.0), (0.3, 2.0)])
def test_relu_closed_form(sw, lb, lw):
    # ReLU, σ_b = 0: K^l = r^{l-1} σ_w² q0, χ_⊥ = r = σ_w²/2, E[φ²] = K/2, so
    # Θ^l = λ_b (1 − r^l)/(1 − r) + λ_W q0 l r^{l−1} (r = 1: λ_b l + λ_W q0 l)  [PDLT §8.1]
    q0, L = 1.3, 12
    c = ntk_curves("mlp", "relu", sw, 0.0, L, lambda_b=lb, lambda_w=lw, q0=q0)
    r = sw / 2
    l = np.arange(1, L + 1)
    geo = l if r == 1 else (1 - r ** l) / (1 - r)
    np.testing.assert_allclose(c.ntk, lb * geo + lw * q0 * l * r ** (l - 1), rtol=1e-13)


def test_linear_with_bias_closed_form():
    # linear net: K^{l+1} = σ_b² + σ_w² K^l, Θ^{l+1} = λ_b + λ_W K^l + σ_w² Θ^l; at σ_w² = 1:
    # K^l = q0 + l σ_b², Θ^l = l λ_b + λ_W (l q0 + σ_b² l(l−1)/2)
    sb, q0, L = 0.2, 0.7, 20
    c = ntk_curves("mlp", "linear", 1.0, sb, L, lambda_b=0.4, lambda_w=1.1, q0=q0)
    l = np.arange(1, L + 1)
    np.testing.assert_allclose(c.kernel, q0 + l * sb, rtol=1e-13)
    np.testing.assert_allclose(c.ntk, 0.4 * l + 1.1 * (l * q0 + sb * l * (l - 1) / 2),
                               rtol=1e-12)


def test_leaky_relu_critical_grows_linearly():
    # scale-invariant class at criticality (σ_w² = 1/A₂, σ_b = 0): Θ^L = L (λ_b + λ_W A₂ K*)
    from critheory.activation import Activation

    act = Activation.get("leaky_relu", {"slope": 0.2})
    a2 = (1 + 0.04) / 2
    c = ntk_curves("mlp", act, 1 / a2, 0.0, 50, lambda_b=0.5, lambda_w=2.0, q0=1.0)
    np.testing.assert_allclose(c.ntk, np.arange(1, 51) * (0.5 + 2.0 * 1.0), rtol=1e-12)
    assert c.exponents["ntk"] == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------- two inputs: an independent recursion
def _relu_pair(k11, k12, k22):
    # arc-cosine kernel of order 1 and 0 [Cho & Saul 2009]
    s = math.sqrt(k11 * k22)
    t = math.acos(max(-1.0, min(1.0, k12 / s)))
    return s * (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi), (math.pi - t) / (2 * math.pi)


def _erf_pair(k11, k12, k22):
    # E[erf(u1) erf(u2)] = (2/π) asin(2K12/√((1+2K11)(1+2K22))) [Williams 1997];
    # E[erf'(u1) erf'(u2)] = (4/π)/√((1+2K11)(1+2K22) − 4K12²)
    d = (1 + 2 * k11) * (1 + 2 * k22)
    return (2 / math.pi) * math.asin(2 * k12 / math.sqrt(d)), (4 / math.pi) / math.sqrt(d - 4 * k12 ** 2)


def _nt_like(pair, sw, sb, lb, lw, q, L):
    """The neural-tangents recursion for an MLP on two inputs, from scratch."""
    (q11, q12, q22) = q
    K = [sb + sw * q11, sb + sw * q12, sb + sw * q22]
    T = [lb + lw * q11, lb + lw * q12, lb + lw * q22]
    out = [T[1]]
    for _ in range(L - 1):
        e11, d11 = pair(K[0], K[0], K[0])
        e12, d12 = pair(K[0], K[1], K[2])
        e22, d22 = pair(K[2], K[2], K[2])
        T = [lb + lw * e11 + sw * d11 * T[0], lb + lw * e12 + sw * d12 * T[1],
             lb + lw * e22 + sw * d22 * T[2]]
        K = [sb + sw * e11, sb + sw * e12, sb + sw * e22]
        out.append(T[1])
    return np.array(out)


@pytest.mark.parametrize("act,pair,sw,sb", [("relu", _relu_pair, 2.0, 0.0),
                                            ("relu", _relu_pair, 1.7, 0.3),
                                            ("erf", _erf_pair, 1.3, 0.1)])
def test_two_inputs_against_closed_form_kernels(act, pair, sw, sb):
    q = (1.0, 0.4, 1.5)
    c = ntk_curves("mlp", act, sw, sb, 15, lambda_b=0.7, lambda_w=1.2, q0=q[0], q12=q[1],
                   q22=q[2])
    np.testing.assert_allclose(c.ntk12, _nt_like(pair, sw, sb, 0.7, 1.2, q, 15), rtol=1e-9)
    np.testing.assert_allclose(c.ntk22, ntk_curves("mlp", act, sw, sb, 15, lambda_b=0.7,
                                                   lambda_w=1.2, q0=q[2]).ntk, rtol=1e-12)


def test_tanh_layer_against_mpmath():
    # Θ² = λ_b + λ_W E_K[tanh²] + σ_w² E_K[tanh'²] Θ¹ with K = K¹, by mpmath quadrature
    sw, sb, q0, lb, lw = 1.4, 0.05, 0.8, 0.3, 0.9
    K = sb + sw * q0
    mpmath.mp.dps = 30
    g = lambda f: mpmath.quad(lambda x: f(x) * mpmath.exp(-x * x / (2 * K)), [-mpmath.inf, mpmath.inf]) / mpmath.sqrt(2 * mpmath.pi * K)  # noqa: E731
    e2 = float(g(lambda x: mpmath.tanh(x) ** 2))
    d2 = float(g(lambda x: mpmath.sech(x) ** 4))
    c = ntk_curves("mlp", "tanh", sw, sb, 2, lambda_b=lb, lambda_w=lw, q0=q0)
    assert c.ntk[1] == pytest.approx(lb + lw * e2 + sw * d2 * (lb + lw * q0), rel=1e-12)


# ----------------------------------------------------------------- depth and schedules
def test_equivalence_scale_invariant_is_lambda_over_L():
    # PDLT §9: λ_b = λ̃_b/L, λ_W = λ̃_W/L at criticality, Θ^L = λ̃_b + λ̃_W A₂ K* at any L
    for L in (1, 7, 300):
        c = ntk_curves("mlp", "relu", 2.0, 0.0, L, lambda_b=0.5, lambda_w=1.5, q0=2.0,
                       scaling="equivalence")
        np.testing.assert_allclose(c.lambda_b, 0.5 / L, rtol=1e-13)
        np.testing.assert_allclose(c.lambda_w, 1.5 / L, rtol=1e-13)
        assert c.ntk[-1] == pytest.approx(0.5 + 1.5 * 2.0, rel=1e-12)


def test_k0_class_tanh_power_laws():
    # tanh at (1, 0): χ_⊥ = 1 − p_⊥/l with p_⊥ = 1, so constant λ_b gives Θ' = λ_b + (1 − 1/l)Θ,
    # Θ ≈ λ_b l/(1 + p_⊥) = l/2; the equivalence schedule λ^l ∝ L^{p_⊥−1} l^{−p_⊥} = 1/l
    L = 2000
    c = ntk_curves("mlp", "tanh", 1.0, 0.0, L, lambda_b=1.0, lambda_w=0.0)
    assert c.ntk[-1] / L == pytest.approx(0.5, rel=0.02)
    assert c.exponents["ntk"] == pytest.approx(1.0, abs=0.02)
    e = ntk_curves("mlp", "tanh", 1.0, 0.0, L, lambda_b=1.0, lambda_w=1.0,
                   scaling="equivalence")
    assert e.exponents["lambda"] == pytest.approx(-1.0, abs=0.03)
    e2 = ntk_curves("mlp", "tanh", 1.0, 0.0, L // 4, lambda_b=1.0, lambda_w=1.0,
                    scaling="equivalence")
    # Θ^L = λ_b + λ_W L W_L of order one, nearly independent of L: W_L = E[φ²] ≈ K^L ≈
    # 1/((-a_1) L) with a_1 = -2 for tanh, so Θ^L → 1 + 1/2
    assert e.ntk[-1] == pytest.approx(1.5, abs=0.03)
    assert abs(e.ntk[-1] / e2.ntk[-1] - 1) < 0.05


def test_k0_equivalence_follows_the_book_power_laws():
    """PDLT §9.2, K* = 0 class: λ_b^l ∝ L^{p⊥−1} l^{−p⊥}, λ_W^l ∝ (L/l)^{p⊥−1} (the weight rate
    one factor l above the bias rate). φ = tanh + tanh²/2 has σ1 = 1, σ2 = 1, σ3 = −2:
    a1 = σ3/σ1 + ¾(σ2/σ1)² = −5/4, b1 = σ3/σ1 + (σ2/σ1)² = −1, p⊥ = b1/a1 = 4/5 [PDLT
    (5.88)–(5.93) as quoted in critheory.theory.meanfield.criticality]."""
    act, L, p = "tanh(x) + 0.5*tanh(x)**2", 500, 0.8
    e = ntk_curves("mlp", act, 1.0, 0.0, L, lambda_b=1.0, lambda_w=1.0, scaling="equivalence")
    l = np.arange(1, L + 1)
    tail = slice(L // 10 - 1, L)
    # the bias rate is the book's with λ̃_b = λ_b (P_l → (l/L)^{p⊥}): 1 % over the tail
    np.testing.assert_allclose((e.lambda_b / (L ** (p - 1) * l ** -p))[tail], 1.0, rtol=0.01)
    # the weight rate has the book's l-dependence (λ̃_W set by the normalization): the ratio
    # is flat to 2 % over the tail (measured 1.3 %: the O(log l / l) corrections of W_l)
    rw = (e.lambda_w / (L / l) ** (p - 1))[tail]
    assert rw.max() / rw.min() < 1.02


def test_learning_rates_refuse_bad_scaling():
    with pytest.raises(InvalidArgumentError):
        learning_rates([0.0, 1.0], 1.0, 1.0, "muP")


def test_every_layer_contributes_equally():
    # the equivalence schedule: every layer's biases contribute λ_b B_l/L and every layer's
    # weights λ_W L^γ W_L/L (docs/ntk.md §3), so Θ^L is their sum
    L = 30
    c = ntk_curves("pre-ln-mlp-block", "gelu", 1.0, 0.1, L, mu=0.9, lambda_b=1.0,
                   lambda_w=1.0, scaling="equivalence")
    P = np.array([np.prod(c.transfer[i + 1:]) for i in range(L)])
    np.testing.assert_allclose(c.lambda_b * c.bias_coef * P, c.bias_coef / L, rtol=1e-10)
    weight = c.lambda_w * c.weight_coef * P
    np.testing.assert_allclose(weight, weight[-1], rtol=1e-10)
    assert c.ntk[-1] == pytest.approx((c.lambda_b * c.bias_coef * P + weight).sum(), rel=1e-12)


# ----------------------------------------------------------------- rules and bad input
@dataclass(frozen=True)
class _Conv(Block):
    kind: ClassVar[str] = "conv"


def test_unknown_kind_refused_by_dispatch():
    from critheory.activation import Activation

    s = State.start_ntk(1.0, lambda_b=1.0)
    with pytest.raises(InvalidArgumentError, match="NTK theory has no rule for a 'conv'"):
        fold((_Conv(),), s, Ctx(Activation.get("relu"), 1.0, 0.0, lambda_b=1.0, lambda_w=1.0),
             THEORY)


def test_residual_branch_must_end_dense():
    from critheory.activation import Activation

    s = State.start_ntk(1.0, lambda_b=1.0)
    with pytest.raises(CritheoryError, match="residual branch must end with a dense block"):
        fold((Residual((Dense(), Phi())),), s,
             Ctx(Activation.get("relu"), 1.0, 0.0, lambda_b=1.0, lambda_w=1.0), THEORY)


@pytest.mark.parametrize("kw", [dict(depth=0), dict(depth=10 ** 6), dict(lambda_b=-1.0),
                                dict(lambda_w=float("nan")), dict(weight_var=0.0),
                                dict(scaling="mup"), dict(q12=0.5), dict(q12=3.0, q22=1.0)])
def test_bad_input(kw):
    args = dict(depth=3, weight_var=1.0)
    args.update(kw)
    with pytest.raises(CritheoryError):
        ntk_curves("mlp", "tanh", args.pop("weight_var"), 0.0, args.pop("depth"), **args)


# ----------------------------------------------------------------- simulator
def test_linear_mean_ntk_is_exact_at_any_width():
    # a linear net's Jacobian above layer m and its input at m are independent, and each
    # factor's mean is the infinite-width one: E[Θ̂] = Θ exactly even at n = 3
    c = ntk_curves("mlp", "linear", 1.2, 0.1, 4, lambda_b=0.5, lambda_w=1.0)
    m = measure_ntk("linear", 1.2, 0.1, width=3, depth=4, seeds=4000, lambda_b=0.5,
                    lambda_w=1.0, seed=3)
    z = (m.ntk_mean[1:] - c.ntk[1:]) / m.ntk_stderr[1:]
    assert np.all(np.abs(z) < 4.5), z
    assert m.ntk_mean[0] == pytest.approx(c.ntk[0], rel=1e-12)


@pytest.mark.parametrize("arch,act,sw,sb,mu", [("mlp", "relu", 2.0, 0.0, 1.0),
                                               ("mlp", "tanh", 1.0, 0.0, 1.0),
                                               ("pre-ln-mlp-block", "gelu", 1.0, 0.1, 0.9),
                                               ("residual", "erf", 0.5, 0.05, 0.8)])
def test_simulator_matches_theory_at_width(arch, act, sw, sb, mu):
    # at width n the mean NTK differs from the infinite-width one by O(depth/n): allow that
    # (coefficient 1) on top of 4.5 standard errors
    L, n = 5, 96
    c = ntk_curves(arch, act, sw, sb, L, mu=mu, lambda_b=0.5, lambda_w=1.0,
                   scaling="equivalence")
    m = measure_ntk(act, sw, sb, width=n, depth=L, seeds=150, arch=arch, mu=mu,
                    lambda_b=c.lambda_b, lambda_w=c.lambda_w, seed=11)
    tol = 4.5 * m.ntk_stderr + np.arange(1, L + 1) / n * c.ntk
    assert np.all(np.abs(m.ntk_mean - c.ntk) <= tol), (m.ntk_mean, c.ntk, m.ntk_stderr)


@pytest.mark.slow
def test_finite_width_correction_shrinks_with_width():
    # post-LN tanh: the 1/n correction is visible at n = 16 and smaller at n = 128
    c = ntk_curves("post-ln", "tanh", 1.5, 0.1, 6, lambda_b=0.5, lambda_w=1.0)
    dev = []
    for n in (16, 128):
        m = measure_ntk("tanh", 1.5, 0.1, width=n, depth=6, seeds=1500 if n == 16 else 300,
                        arch="post-ln", lambda_b=0.5, lambda_w=1.0, seed=5)
        dev.append((m.ntk_mean[-1] - c.ntk[-1]) / c.ntk[-1])
        if n == 16:
            assert abs(dev[0]) > 5 * m.ntk_stderr[-1] / c.ntk[-1]
    assert abs(dev[1]) < abs(dev[0]) / 2


def test_simulator_refuses_before_work():
    with pytest.raises(InvalidArgumentError, match="budget"):
        measure_ntk("relu", 2.0, 0.0, width=4096, depth=200, seeds=1000)
    with pytest.raises(InvalidArgumentError):
        measure_ntk("relu", 2.0, 0.0, width=8, depth=3, seeds=10, lambda_b=[1.0, 2.0])


# ----------------------------------------------------------------- command line
@dataclass
class _Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def _cli(capsys):
    from critheory.cli.main import main

    def run(*args):
        try:
            rc = main(["ntk", *args])
        except SystemExit as e:   # argparse errors
            rc = e.code
        out = capsys.readouterr()
        return _Run(rc, out.out, out.err)
    return run


def test_cli_json_keys(_cli):
    r = _cli("relu", "--weight-var", "2", "--bias-var", "0", "--depth", "5", "--scaling",
             "equivalence", "--json", "--simulate", "--width", "16", "--seeds", "20")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("depths", "kernel", "ntk", "lambda_b", "lambda_w", "exponents", "simulation"):
        assert k in d
    assert d["lambda_b"] == [0.2] * 5 and d["ntk"][-1] == pytest.approx(2.0)
    assert set(d["simulation"]) >= {"ntk_mean", "ntk_stderr", "ntk_theory", "ntk_z"}


def test_cli_json_null_not_nan(_cli):
    # exp(x) blows up: the kernel overflows, the later layers are null
    r = _cli("exp(x)", "--weight-var", "3", "--bias-var", "0", "--depth", "30", "--json")
    assert r.returncode == 0, r.stderr
    assert "NaN" not in r.stdout and None in json.loads(r.stdout)["ntk"]


@pytest.mark.parametrize("extra", [["--lambda-b", "-1"], ["--depth", "0"],
                                   ["--depth", "1000000"], ["--scaling", "mup"],
                                   ["--simulate"], ["--q12", "0.3"],
                                   ["--simulate", "--width", "100000", "--seeds", "1000"],
                                   ["--weight-var", "-1"], ["--arch", "transformer"]])
def test_cli_errors_one_line_exit_2(_cli, extra):
    args = ["tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "4"]
    r = _cli(*args, *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


# ---------------------------------------------------------------- networks and block options
def test_ntk_block_options_and_network_arguments():
    """Dense blocks carrying the network's values give identical curves; a dense block's own
    σ_w² enters its Θ rule (hand computation of one layer: Θ' = λ_b + λ_W E_K[φ²] + a E_K[φ'²]
    Θ); the width is ignored (infinite width); a network's own activation and μ are not
    silently replaced, and T > 1 tokens or attention are refused in one line."""
    from critheory.activation import Activation
    from critheory.blocks import Network, network
    from critheory.expectations.reference import mp_expect
    from critheory.theory.meanfield.maps import architecture
    from critheory.theory.ntk.depth import layer_map

    act = Activation.get("tanh")
    plain = ntk_curves(Network("p", act, (Phi(), Dense())), None, 1.4, 0.2, 6)
    own = ntk_curves(Network("o", act, (Phi(), Dense(weight_var=1.4, bias_var=0.2))), None,
                     1.4, 0.2, 6)
    wide = ntk_curves(Network("w", act, (Phi(), Dense(width=3.0), Phi(), Dense())), None,
                      1.4, 0.2, 6)
    two = ntk_curves(Network("t", act, (Phi(), Dense(), Phi(), Dense())), None, 1.4, 0.2, 6)
    assert np.array_equal(plain.ntk, own.ntk) and np.array_equal(plain.kernel, own.kernel)
    assert np.array_equal(wide.ntk, two.ntk)
    a_, c_, K = 2.2, 0.3, 0.8
    maps = architecture(Network("o", act, (Phi(), Dense(weight_var=a_, bias_var=c_))))
    row = layer_map(maps, 9.0, 0.0, np.array([K]))[:, 0]
    e2 = float(mp_expect(act, "phi2", K, dps=30))
    d2 = float(mp_expect(act, "dphi2", K, dps=30))
    np.testing.assert_allclose(row, [c_ + a_ * e2, 1.0, e2, a_ * d2], rtol=1e-13)
    net = network("residual", "relu", mu=0.5)
    np.testing.assert_array_equal(ntk_curves(net, "relu", 1.0, 0.1, 4, mu=0.5).ntk,
                                  ntk_curves("residual", "relu", 1.0, 0.1, 4, mu=0.5).ntk)
    with pytest.raises(InvalidArgumentError, match="activation 'tanh' conflicts"):
        ntk_curves(net, "tanh", 1.0, 0.1, 4)
    with pytest.raises(InvalidArgumentError, match="mu = 0.7 conflicts"):
        ntk_curves(net, None, 1.0, 0.1, 4, mu=0.7)
    with pytest.raises(InvalidArgumentError, match="NTK theory follows one token"):
        ntk_curves(network("transformer", "relu", tokens=4), None, 1.0, 0.0, 4)
    with pytest.raises(InvalidArgumentError, match="NTK theory has no rule for a 'attention'"):
        ntk_curves(network("transformer", "relu", tokens=1), None, 1.0, 0.0, 4)
