"""RMSNorm, the block added by ``docs/design.md``'s "add a block" recipe, against independent
routes.

RMSNorm: ``y = x / r``, ``r = sqrt(mean(x²) + eps)`` over the N neurons (no mean subtraction, no
affine parameters). Its Jacobian is ``(I − yyᵀ/N)/r``. At infinite width, for an input of second
moment K (a centred Gaussian or φ(h)): ``K' = 1``, ``K12' = K12/√(K11 K22)``, ``J' = J/K``,
``dK' = 0``, ``dK12' = dK12/K``, ``Θ' = Θ/K``.

Routes:

(a) one layer: the simulator's tangent step against central differences of its forward step
    and against the explicit Jacobian (``simulation/layernorm.py``), its cotangent step as the
    adjoint, and the naive explicit-Jacobian chain (``simulation/naive.py``) against the
    interpreter's dense tangents on the same weights;
(b) mean-field depth curves (kernel, APJN, covariance) against the finite-width simulator: the
    simulated mean over S networks has a Student-t distribution with S − 1 degrees of freedom
    around its expectation; the threshold is its two-sided 1e-3 quantile after a Bonferroni
    correction over the compared depths, plus the simulator's known O(l/N) bias (each
    RMSNorm layer: ``E[1/r²] = N/((N−2)K)`` for a Gaussian input, the rank-(N−1) projection
    ``−1/N``, the sphere instead of the Gaussian ``O(1/N)``: below ``3/N`` per layer, so
    ``3(l − 1)/N`` relative at layer l);
(c) χ_⊥ against the slope of the covariance map (one-sided difference: truncation O(h));
(d) where RMSNorm sees a centred Gaussian it is LayerNorm at infinite width: every theory's
    numbers (mean field, NTK, the transformer token kernel) agree with the LayerNorm network's
    to 1e-12; on φ(h) (not centred) they differ, and (b) decides which is right;
(e) the finite-width rule (``V = −D/r``, ``K1 = 0``, ``D = Var(x²)/K²``, ``P = 0`` on a Gaussian)
    against the simulator's kurtosis and kernel at n = 64, as ``tests/test_finitewidth.py``
    checks LayerNorm's;
(f) the NTK rule against the simulator's empirical NTK (reverse pass through the cotangent step);
(g) refusals in one line naming the block.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from replay import ReplaySampler
from scipy import stats

import critheory as ct
from critheory.blocks import Dense, LayerNorm, Network, Phi, Residual, RMSNorm
from critheory.blocks.blocks import walk
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.simulation.layernorm import rms_norm, rms_norm_jacobian, rms_norm_jvp
from critheory.theory.meanfield.maps import LayerMaps


def _act(name):
    return ct.Activation.get(name)


def _pre(act, mu=None):
    br = (RMSNorm(), Phi(), Dense())
    unit = br if mu is None else (Residual(br, mu=mu),)
    return Network("pre-rms" if mu is None else "pre-rms-residual", _act(act), unit)


def _post(act):
    return Network("post-rms", _act(act), (Phi(), RMSNorm(), Dense()))


def _swap(blocks, new):
    """The blocks with every normalization replaced by ``new()`` (branches included)."""
    out = []
    for b in blocks:
        if b.normalizes:
            b = new()
        elif b.kind == "residual":
            b = dataclasses.replace(b, branch=_swap(b.branch, new))
        out.append(b)
    return tuple(out)


def _as_rms(net):
    return Network(net.name + "-rms", net.activation, _swap(net.unit, RMSNorm), net.tokens)


# ------------------------------------------------------------------------------ (a) one layer
_Replay = ReplaySampler   # tests/replay.py


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_rms_norm_jvp_matches_central_differences_and_the_explicit_jacobian(eps):
    """Central differences of the forward map (error O(step²) ~ 1e-12, rounding/step ~ 1e-10):
    1e-7; the explicit matrix against the JVP: rounding only."""
    rng = np.random.default_rng(0)
    n, p = 9, 4
    h = rng.standard_normal((n, 1)) * 1.7 + 0.4        # not centred: RMSNorm keeps the mean
    dh = rng.standard_normal((n, p))
    y, r = rms_norm(h, eps)
    jvp = rms_norm_jvp(y, r, dh)
    step = 1e-6
    fd = np.stack([(rms_norm(h + step * dh[:, j:j + 1], eps)[0]
                    - rms_norm(h - step * dh[:, j:j + 1], eps)[0])[:, 0] / (2 * step)
                   for j in range(p)], axis=1)
    np.testing.assert_allclose(jvp, fd, rtol=1e-7, atol=1e-8)
    jac = rms_norm_jacobian(h[:, 0], eps)
    np.testing.assert_allclose(jac @ dh, jvp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jac, jac.T, atol=1e-15)   # symmetric: cotangent = tangent
    np.testing.assert_allclose(np.mean(y ** 2), np.mean(h ** 2) / (np.mean(h ** 2) + eps),
                               rtol=1e-12)
    assert abs(float(y.mean())) > 0.1                    # no mean subtraction
    if eps == 0.0:   # scale invariance, one direction removed: (I − yyᵀ/N) is a projector
        np.testing.assert_allclose(jac @ h[:, 0], 0.0, atol=1e-12)
        proj = jac * float(r[0, 0])
        np.testing.assert_allclose(proj @ proj, proj, atol=1e-12)
        assert round(float(np.trace(proj))) == n - 1


@pytest.mark.parametrize("T", [1, 3])
def test_interpreter_step_matches_central_differences_and_adjoint(T):
    """The interpreter's rmsnorm step (per token for T = 3) inside a unit with a dense block and
    an activation: tangents against central differences (1e-6, as tests/test_simulator.py), the
    one-token cotangent step as the exact adjoint of the tangent step (rounding)."""
    from critheory.simulation.interpreter import Context, back, run

    act = _act("tanh")
    unit = (Residual((RMSNorm(eps=0.1), Dense(), Phi(), Dense()), mu=0.7), RMSNorm())
    n, P, eps = 8, 2, 1e-5
    ctx = Context(unit, act.numpy_func(0), act.numpy_func(1), 1.3, 0.2, width=n, tokens=T)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, n, T)) + 0.5
    V = rng.standard_normal((1, n, P * T))
    y, t = run(unit, _Replay(0), ctx, x.copy(), V.copy())
    for p in range(P):
        v = V[:, :, p * T:(p + 1) * T]
        fd = (run(unit, _Replay(0), ctx, x + eps * v)[0]
              - run(unit, _Replay(0), ctx, x - eps * v)[0]) / (2 * eps)
        np.testing.assert_allclose(t[:, :, p * T:(p + 1) * T], fd, rtol=1e-6,
                                   atol=1e-6 * np.abs(fd).max())
    if T == 1:
        tape = []
        _, Jv = run(unit, _Replay(3), ctx, x, V, tape)
        g = rng.standard_normal((1, 4, n))
        gJ, _ = back(tape, g, lambda xn: 0.0 * xn)
        lhs = np.einsum("bkn,bnp->bkp", g, Jv)
        rhs = np.einsum("bkn,bnp->bkp", gJ, V)
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12 * np.abs(lhs).max())


@pytest.mark.parametrize("net", [_pre("tanh"), _pre("gelu", mu=0.8), _post("relu")],
                         ids=["pre", "residual", "post"])
def test_naive_explicit_jacobian_chain_matches_the_interpreter(net):
    """The explicit N×N Jacobians (naive.py) multiplied out equal the interpreter's dense
    tangents on the same weights (rounding over a few layers: 1e-10)."""
    from critheory.simulation.naive import explicit_jacobian_chain

    ref = explicit_jacobian_chain(net.activation, 1.5, 0.1, width=12, depth=5, arch=net,
                                  seed=4)
    sim = ct.simulate(net, 1.5, 0.1, width=12, depth=5, seed=4, method="dense")
    np.testing.assert_allclose(ref.apjn, sim.apjn[0], rtol=1e-10)
    np.testing.assert_allclose(ref.kernel, sim.kernel[0], rtol=1e-10)


# -------------------------------------------------------------- (b) depth curves vs simulator
def _threshold(seeds: int, comparisons: int, alpha: float = 1e-3) -> float:
    """Two-sided Student-t quantile (S − 1 degrees of freedom), Bonferroni over comparisons."""
    return float(stats.t.ppf(1.0 - alpha / (2 * comparisons), seeds - 1))


DEPTH = [(_pre("tanh"), 1.5, 0.1), (_pre("relu"), 2.0, 0.2), (_pre("gelu", mu=0.8), 1.0, 0.1),
         (_pre("tanh", mu=1.0), 1.0, 0.0), (_post("relu"), 2.0, 0.1), (_post("gelu"), 1.5, 0.1)]


@pytest.mark.parametrize("net, sw, sb", DEPTH,
                         ids=[f"{n.name}-{n.activation.name}" for n, _, _ in DEPTH])
def test_depth_curves_against_simulation(net, sw, sb):
    width, depth, seeds = 1024, 8, 24
    sim = ct.simulate(net, sw, sb, width=width, depth=depth, seeds=seeds, probes=8,
                      second_input_corr=0.3, seed=2024)
    th = ct.depth_curves(ct.architecture(net), sw, sb, depth, input_correlation=0.3)
    z = _threshold(seeds, 3 * depth)
    bias = 3.0 * np.arange(depth) / width            # 3(l − 1)/N relative (module docstring)
    for mean, se, theory in ((sim.apjn_mean, sim.apjn_stderr, th.apjn),
                             (sim.kernel_mean, sim.kernel_stderr, th.kernel),
                             (sim.covariance_mean, sim.covariance_stderr,
                              th.correlation * th.kernel)):
        assert np.all(np.abs(mean - theory) <= z * se + bias * np.abs(theory)), \
            (mean, theory, se)
    # a test of the theory: the errors are small next to what the block changes
    assert np.max(sim.apjn_stderr / th.apjn) < 0.05
    if net.unit[0].kind == "phi":   # RMSNorm of φ(h): the LayerNorm network's APJN is rejected
        ln = ct.depth_curves(ct.architecture(Network("ln", net.activation,
                                                     _swap(net.unit, LayerNorm))),
                             sw, sb, depth, input_correlation=0.3)
        assert np.any(np.abs(sim.apjn_mean - ln.apjn) > z * sim.apjn_stderr
                      + bias * ln.apjn)


# --------------------------------------------------------------------- (c) χ_⊥ = covariance slope
@pytest.mark.parametrize("net", [_pre("tanh"), _pre("gelu", mu=0.5), _post("erf"),
                                 _post("gelu")], ids=["pre", "residual", "post-erf", "post-gelu"])
def test_chi_perp_is_slope_of_covariance_map(net):
    """As tests/test_design.py: the one-sided difference quotient of K'_12 at coincident inputs
    (h = 1e-4 K: truncation ~1e-4 relative, rounding ~1e-9): 1e-3; and χ_⊥ = χ_J exactly.
    Smooth φ only (as there): ReLU's covariance map has a √(1 − c) term at c = 1, so its
    difference quotient is off by O(√h)."""
    a = LayerMaps(net)
    K, sw, sb = 0.9, 1.3, 0.1
    h = 1e-4 * K
    _, k12, _ = a.covariance_map(K, K - h, K, sw, sb)
    slope = (float(a.kernel_map(K, sw, sb)) - float(k12)) / h
    chi = float(a.chi_perp(K, sw, sb))
    assert chi == pytest.approx(slope, rel=1e-3)
    assert chi == pytest.approx(float(a.chi_jacobian(K, sw, sb)), rel=1e-14)


# ------------------------------------------------------------- (d) where it is LayerNorm, and not
@pytest.mark.parametrize("name, act, mu", [("pre-ln", "tanh", 1.0),
                                           ("pre-ln-residual", "gelu", 0.9),
                                           ("pre-ln-mlp-block", "relu", 1.0)])
def test_on_a_centred_gaussian_it_is_layernorm(name, act, mu):
    """RMSNorm of a dense block's output (a centred Gaussian) is its LayerNorm at infinite
    width: the mean-field maps, depth curves, capabilities, critical set and NTK agree with the
    LayerNorm network's to 1e-12."""
    ln = ct.network(name, act, mu)
    rms = _as_rms(ln)
    kinds = [b.kind for b in walk(rms.unit)]
    assert "rmsnorm" in kinds and "layernorm" not in kinds
    assert rms.capabilities == ln.capabilities
    a, b = LayerMaps(ln), LayerMaps(rms)
    K = np.array([0.3, 1.0, 4.0])
    for f in ("kernel_map", "chi_jacobian", "chi_perp", "chi_parallel"):
        np.testing.assert_allclose(getattr(b, f)(K, 1.3, 0.1), getattr(a, f)(K, 1.3, 0.1),
                                   rtol=1e-12, atol=0)
    np.testing.assert_allclose(b.covariance_map(2.0, 0.7, 1.5, 1.3, 0.1),
                               a.covariance_map(2.0, 0.7, 1.5, 1.3, 0.1), rtol=1e-12)
    da = ct.depth_curves(a, 1.3, 0.1, 10, input_correlation=0.4)
    db = ct.depth_curves(b, 1.3, 0.1, 10, input_correlation=0.4)
    for f in ("kernel", "apjn", "correlation"):
        np.testing.assert_allclose(getattr(db, f), getattr(da, f), rtol=1e-12)
    assert ct.critical_set(b).kind == ct.critical_set(a).kind
    na = ct.ntk_curves(ln, None, 1.3, 0.1, 6, lambda_b=0.5, lambda_w=1.0, q12=0.4, q22=1.5)
    nb = ct.ntk_curves(rms, None, 1.3, 0.1, 6, lambda_b=0.5, lambda_w=1.0, q12=0.4, q22=1.5)
    np.testing.assert_allclose(nb.ntk, na.ntk, rtol=1e-12)


def test_transformer_token_kernel_with_rmsnorm_is_layernorm():
    """In the registered pre-LN transformer every LayerNorm sees a centred input: the token
    kernel and tangent kernels of the RMSNorm version agree to 1e-12 (same QMC points)."""
    ln = ct.transformer("transformer", "relu", tokens=2, heads=1)
    rms = _as_rms(ln)
    da = ct.transformer_depth(ln, 2.0, 0.0, depth=3, points=128)
    db = ct.transformer_depth(rms, 2.0, 0.0, depth=3, points=128)
    np.testing.assert_allclose(db.kernel, da.kernel, rtol=1e-12)
    np.testing.assert_allclose(db.apjn, da.apjn, rtol=1e-12)


def test_transformer_token_rule_on_phi_divides_by_the_second_moment():
    """Where a token's representation is φ(h) (not centred) the token-kernel rule of RMSNorm is
    G_ts/√(G_tt G_ss) (LayerNorm is refused there), checked entry by entry."""
    from critheory.theory.fold import check_composition
    from critheory.theory.transformer.rules import THEORY, apply_blocks, context

    with pytest.raises(InvalidArgumentError, match="LayerNorm of an activation's output"):
        check_composition((Dense(), Phi(), LayerNorm(), Dense()), THEORY)
    check_composition((Dense(), Phi(), RMSNorm(), Dense()), THEORY)
    G = np.array([[[2.0, 0.6], [0.6, 0.5]]])
    Th = np.array([[[[1.0, 0.2], [0.2, 3.0]]]])
    ctx = context(_act("relu"), 1.0, 0.0)
    G1, T1 = apply_blocks((Phi(),), G, Th, ctx)
    G2, T2 = apply_blocks((Phi(), RMSNorm()), G, Th, ctx)
    d = np.sqrt(np.diagonal(G1[0]))
    np.testing.assert_allclose(G2[0], G1[0] / np.outer(d, d), rtol=1e-14)
    np.testing.assert_allclose(T2[0, 0], T1[0, 0] / np.outer(d, d), rtol=1e-14)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_on_phi_it_is_not_layernorm(act):
    """On φ(h) RMSNorm divides by E[φ²], LayerNorm by Var[φ]: for a φ with E[φ] ≠ 0 the χ's
    differ by the factor Var[φ]/E[φ²] (the depth-curve test above says which matches the
    simulator: RMSNorm's)."""
    a = LayerMaps(ct.network("post-ln", act))
    b = LayerMaps(_post(act))
    K, sw, sb = 1.0, 1.5, 0.1
    e1 = float(ct.expect(_act(act), "phi", K).value)
    e2 = float(ct.expect(_act(act), "phi2", K).value)
    ratio = float(b.chi_jacobian(K, sw, sb)) / float(a.chi_jacobian(K, sw, sb))
    assert ratio == pytest.approx((e2 - e1 * e1) / e2, rel=1e-10)
    assert ratio < 0.9
    assert float(b.kernel_map(K, sw, sb)) == float(a.kernel_map(K, sw, sb)) == sb + sw
    # the correlation map: RMSNorm keeps E[φ]², LayerNorm subtracts it
    _, c_rms, _ = b.covariance_map(K, 0.0, K, sw, sb)
    _, c_ln, _ = a.covariance_map(K, 0.0, K, sw, sb)
    assert float(c_rms) == pytest.approx(sb + sw * e1 * e1 / e2, rel=1e-10)
    assert float(c_ln) == pytest.approx(sb, abs=1e-12)


# ------------------------------------------------------------------- (e) finite width, (f) NTK
_AFTER_SUM = Network("after-sum", _act("relu"), (Residual((Dense(), Phi(), Dense()), mu=0.8),
                                                   RMSNorm(), Phi(), Dense()))


@pytest.mark.parametrize("net, sw, sb", [(_pre("relu"), 2.0, 0.1), (_pre("gelu"), 1.0, 0.1),
                                         (_post("gelu"), 1.5, 0.1), (_AFTER_SUM, 2.0, 0.1)],
                         ids=["pre-relu", "pre-gelu", "post-gelu", "after-residual-sum"])
def test_finite_width_rule_against_the_simulator(net, sw, sb):
    """As LayerNorm's rule in tests/test_finitewidth.py: at n = 64 the measured kurtosis and
    kernel agree with 3V/(nK²) and K + K1/n within 4σ (+ 10 % of the kurtosis for the O(1/n²)
    terms). RMSNorm's P = 0 (LayerNorm's −1) enters the next activation's V through
    ⟨(φ²)'⟩ ≠ 0 for ReLU and GELU: the LayerNorm rule's kurtosis is several σ off here. After a
    residual sum (not a Gaussian scale mixture) the rule still holds: V = −D/r is exact."""
    n, L = 64, 4
    c = ct.finite_width_curves(ct.architecture(net), sw, sb, L, width=n)
    m = ct.measure_finite_width(net, sw, sb, width=n, depth=L, seeds=2 ** 20 // n,
                                apjn=False, seed=3)
    assert np.all(np.abs(m.kurtosis_mean - c.kurtosis) < 4 * m.kurtosis_stderr
                  + 0.1 * np.abs(c.kurtosis)), (m.kurtosis_mean, c.kurtosis)
    assert np.all(np.abs(m.kernel_mean - c.kernel_finite) < 4 * m.kernel_stderr)
    if net.unit[0].kind == "rmsnorm":   # the LayerNorm rule (P = −1) would be rejected
        ln = ct.finite_width_curves(ct.architecture(Network("ln", net.activation, _swap(
            net.unit, LayerNorm))), sw, sb, L, width=n)
        assert np.any(np.abs(m.kurtosis_mean - ln.kurtosis) > 4 * m.kurtosis_stderr
                      + 0.1 * np.abs(ln.kurtosis))


def test_finite_width_refuses_rmsnorm_in_a_residual_branch():
    """The residual rule's cross term assumes the branch reads its input's scale only; an
    RMSNorm branch reads its shape (see NOT_IN_BRANCH): refused in one line, before any number,
    by the curves and by the fold."""
    from critheory.theory.finitewidth.rules import THEORY as FW
    from critheory.theory.fold import Ctx, fold
    from critheory.theory.state import State

    net = _pre("gelu", mu=0.7)
    msg = "no rule for a 'rmsnorm' block inside a residual branch"
    with pytest.raises(InvalidArgumentError, match=msg):
        ct.finite_width_curves(ct.architecture(net), 1.0, 0.1, 4, width=64)
    with pytest.raises(InvalidArgumentError, match=msg):
        fold(net.unit, State.start_finite_width(1.0), Ctx(net.activation), FW)


def test_finite_width_rule_on_a_gaussian_is_the_sphere():
    """RMSNorm of a Gaussian vector is uniform on the sphere of radius √n: ``y_1²/n ~
    Beta(1/2, (n−1)/2)`` exactly. The next activation's ``E[φ(y_1)²] = g(1) + (V/2n) g''(1)`` with
    the rule's V = −2 (K1 = 0): n(E[φ(y)²] − g(1)) from Beta quadrature at n = 2000 and 4000,
    extrapolated (Richardson: the O(1/n²) term cancels), against −g''(1), to 1e-4."""
    from scipy import integrate

    from critheory.theory.finitewidth.rules import THEORY as FW
    from critheory.theory.fold import Ctx, fold
    from critheory.theory.meanfield.rules import dE
    from critheory.theory.state import State

    act = _act("gelu")
    phi = act.numpy_func(0)
    s = fold((RMSNorm(),), State.start_finite_width(2.5, K1=0.3, V=1.7), Ctx(act), FW)
    assert (float(s.K), float(s.K1), float(s.V), float(s.D), float(s.P)) == \
        pytest.approx((1.0, 0.0, -2.0, 2.0, 0.0), abs=1e-15)
    g1 = float(ct.expect(act, "phi2", 1.0).value)
    g2 = float(dE(act, 1.0, 2))

    def scaled_gap(n):
        dist = stats.beta(0.5, (n - 1) / 2)
        f = lambda u: 0.5 * (phi(np.sqrt(n * u)) ** 2 + phi(-np.sqrt(n * u)) ** 2)  # noqa: E731
        val = integrate.quad(lambda u: f(u) * dist.pdf(u), 0, 60.0 / n, limit=400,
                             epsabs=1e-15, epsrel=1e-13)[0]
        return n * (val - g1)

    richardson = 2 * scaled_gap(4000) - scaled_gap(2000)
    after = fold((Phi(),), s, Ctx(act), FW)
    assert float(after.K1) == pytest.approx(-g2, rel=1e-12)     # ½ g'' V with V = −2
    assert richardson == pytest.approx(float(after.K1), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("net, sw, sb", [(_pre("tanh"), 1.5, 0.1), (_post("relu"), 2.0, 0.1)],
                         ids=["pre-tanh", "post-relu"])
def test_ntk_rule_against_the_simulator(net, sw, sb):
    """The NTK rule Θ/K against the empirical NTK (the reverse pass through the cotangent step),
    as tests/test_ntk.py: 4.5 standard errors plus O(depth/n) (coefficient 1)."""
    L, n = 5, 96
    c = ct.ntk_curves(net, None, sw, sb, L, lambda_b=0.5, lambda_w=1.0)
    m = ct.measure_ntk(net, sw, sb, width=n, depth=L, seeds=150, lambda_b=c.lambda_b,
                       lambda_w=c.lambda_w, seed=11)
    tol = 4.5 * m.ntk_stderr + np.arange(1, L + 1) / n * c.ntk
    assert np.all(np.abs(m.ntk_mean - c.ntk) <= tol), (m.ntk_mean, c.ntk, m.ntk_stderr)


def test_capabilities_read_normalizes_not_the_type():
    """Regression: the capabilities asked ``isinstance(b, LayerNorm)``, so ReLU after an RMSNorm
    was ``scale_invariant`` (χ independent of K), which it is not: χ_J = σ_w² E_1[φ'²]/K."""
    net = _pre("relu")
    c = net.capabilities
    assert c.has_layernorm and c.normalized_input and not c.scale_invariant
    a = LayerMaps(net)
    np.testing.assert_allclose(a.chi_jacobian(np.array([0.5, 2.0]), 2.0, 0.0), [2.0, 0.5],
                               rtol=1e-13)
    assert _post("relu").capabilities.affine_kernel_map
    res = _pre("tanh", mu=1.0)
    assert res.everywhere_critical and res.pre_ln


# ---------------------------------------------------------------------------- (g) refusals
def test_refusals_name_the_block():
    from critheory.theory.dispatch import rule_for
    from critheory.theory.fold import Theory, check_composition
    from critheory.theory.meanfield.rules import THEORY as MF

    # a theory without a rule for it (one that predates the block) refuses it by name
    old = Theory("example", {k: v for k, v in MF.rules.items() if k != "rmsnorm"})
    with pytest.raises(InvalidArgumentError) as e:
        check_composition(_pre("tanh").unit, old)
    assert str(e.value) == "the example theory has no rule for a 'rmsnorm' block"
    with pytest.raises(InvalidArgumentError, match="'rmsnorm' block"):
        rule_for({}, RMSNorm(), "example")
    # the Jacobian-spectrum theory covers elementwise layers only
    with pytest.raises(CritheoryError) as e:
        ct.jacobian_spectrum("tanh", 1.0, 0.0, depth=4, arch=_pre("tanh"))
    assert "RMSNorm" in str(e.value) and "\n" not in str(e.value)
    # the grammar: φ of an RMSNorm of φ(h) (not Gaussian), LayerNorm of it (not centred)
    with pytest.raises(InvalidArgumentError, match="activation block must follow"):
        check_composition((Phi(), RMSNorm(), Phi(), Dense()), MF)
    with pytest.raises(InvalidArgumentError, match="LayerNorm of an RMSNorm of an activation"):
        check_composition((Phi(), RMSNorm(), LayerNorm(), Dense()), MF)
    # the simulator refuses a bad epsilon when the block is made
    with pytest.raises(InvalidArgumentError, match="eps"):
        RMSNorm(eps=-1.0)
