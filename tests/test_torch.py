"""critheory.torch (issue 19): APJN of torch models against critheory's simulator and theory,
reading models, critical initialization, the Jacobian regularizer, the FDR monitor."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from critheory.activation import Activation  # noqa: E402
from critheory.errors import CritheoryError, InvalidArgumentError  # noqa: E402
from critheory.simulation import simulate  # noqa: E402
from critheory.theory.meanfield.depth import depth_curves  # noqa: E402
from critheory.theory.meanfield.maps import architecture  # noqa: E402
from critheory.torch import (FDRMonitor, Residual, TorchActivation, activation_of,  # noqa: E402
                             critical_normal_,
                             apjn, init_critical_, jacobian_norm_exact, jacobian_penalty,
                             predict, read_model, tune_critical_)
from critheory.torch.init import critical_hyperparameters  # noqa: E402
from critheory.validation.compare import bonferroni_threshold  # noqa: E402

D = torch.float64


def _all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _stack(kind, act, width, depth, mu=0.8):
    mods = [nn.Linear(width, width)]
    for _ in range(depth - 1):
        if kind == "mlp":
            mods += [act(), nn.Linear(width, width)]
        elif kind == "pre-ln":
            mods += [nn.LayerNorm(width, elementwise_affine=False), act(), nn.Linear(width, width)]
        elif kind == "residual":
            mods += [Residual(nn.Sequential(act(), nn.Linear(width, width)), mu=mu)]
    return nn.Sequential(*mods).to(D)


# ----------------------------------------------------------------------------- done means 1
CASES = [("mlp", nn.Tanh, "tanh", {}), ("mlp", nn.GELU, "gelu", {}),
         ("mlp", nn.ReLU, "relu", {}), ("pre-ln", nn.Tanh, "tanh", {"bias_var": 0.1}),
         ("residual", nn.Tanh, "tanh", {})]


@pytest.mark.filterwarnings("ignore:the critical point of gelu")   # tested below
@pytest.mark.parametrize("kind, act, name, kw", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_apjn_of_critical_torch_models_matches_simulator_and_theory(kind, act, name, kw):
    width, depth, nets, batch, probes, mu = 64, 6, 8, 4, 4, 0.8
    model = _stack(kind, act, width, depth, mu)
    sw, sb = critical_hyperparameters(model, **kw)
    vals = []
    for s in range(nets):
        model = _stack(kind, act, width, depth, mu)
        assert tuple(init_critical_(model, point=(sw, sb), seed=1000 + s)) == (sw, sb)
        x = torch.randn(batch, width, generator=torch.Generator().manual_seed(s), dtype=D)
        layers = list(read_model(model).layers)
        r = apjn(model, x, source=layers[0], targets=layers, probes=probes, seed=s)
        assert r.method == "vmap" and _all_hooks(model) == 0
        vals.append(r.mean)
    vals = np.array(vals)
    mean, se = vals.mean(0), vals.std(0, ddof=1) / math.sqrt(nets)
    theory = depth_curves(architecture(kind, name, mu), sw, sb, depth, q0=1.0).apjn
    sim = simulate(name, sw, sb, width=width, depth=depth, seeds=3 * nets, arch=kind, mu=mu,
                   seed=3, ln_eps=1e-5)      # torch's LayerNorm eps
    assert mean[0] == 1.0 and theory[0] == 1.0
    # layers 2..L, two comparisons each, family-wise level 1 %
    zc = bonferroni_threshold(2 * (depth - 1), 0.01)
    # same law (finite width, same ensemble): the two standard errors only
    z_sim = (mean - sim.apjn_mean)[1:] / np.hypot(se, sim.apjn_stderr)[1:]
    assert np.all(np.abs(z_sim) < zc), z_sim
    # infinite-width theory: the mean APJN at width n differs by O(l/n) [PDLT ch. 4-5, the
    # 1/n corrections grow linearly in depth]; allow l/n of the value beside the sampling error
    layers_l = np.arange(1, depth + 1)
    room = zc * se + (layers_l / width) * np.abs(theory)
    assert np.all(np.abs(mean - theory)[1:] <= room[1:]), (mean, theory, se)


def test_prediction_agrees_with_depth_curves_at_the_models_own_point():
    width, depth = 48, 5
    model = _stack("mlp", nn.Tanh, width, depth)
    init_critical_(model, point=(1.5, 0.05), seed=0)
    p = predict(model, q0=1.0)
    r = read_model(model)
    # one shared point: tanh at (1.5, 0.05) has χ_J(K*) = 0.9386 (`critheory point`), ordered;
    # |χ_J − 1| is beyond 3 sampling sd of σ_w² (3·sqrt(2/(4·48²)) = 0.044)
    assert p.point is not None and p.phase == "ordered" and p.chi_jacobian_fixed_point < 1
    # per-layer theory with each layer's empirical variances: compare layer by layer with
    # depth_curves at that layer's (σ_w², σ_b²) when every layer is set to the same values
    same = _stack("mlp", nn.Tanh, width, depth)
    with torch.no_grad():
        for names in read_model(same).dense:
            m = dict(same.named_modules())[names[0]]
            m.weight.copy_(torch.ones_like(m.weight) * math.sqrt(1.5 / width))
            m.bias.fill_(math.sqrt(0.05))
    ps = predict(same, q0=1.0)
    dc = depth_curves(architecture("mlp", "tanh"), 1.5, 0.05, depth, q0=1.0)
    np.testing.assert_allclose(ps.apjn, dc.apjn, rtol=1e-9)
    np.testing.assert_allclose(ps.kernel, dc.kernel, rtol=1e-9)
    assert len(r.hyperparameters()) == depth and p.to_dict()["apjn_theory"][0] == 1.0


# ----------------------------------------------------------------------------- estimators
def _explicit_apjn(model, x, upto):
    """‖∂h^upto/∂h^1‖_F²/numel by the explicit Jacobian (torch.autograd.functional)."""
    first, rest = model[0], model[1:upto + 1]
    h1 = first(x).detach()
    jac = torch.autograd.functional.jacobian(rest, h1)
    return float(jac.pow(2).sum()) / rest(h1).numel()


def test_exact_and_probe_modes_against_the_explicit_jacobian():
    torch.manual_seed(0)
    model = _stack("mlp", nn.Tanh, 12, 4)
    x = torch.randn(3, 12, dtype=D)
    layers = ["0", "2", "4", "6"]
    ex = apjn(model, x, source="0", targets=layers, method="exact")
    ref = [1.0] + [_explicit_apjn(model, x, k) for k in (2, 4, 6)]
    np.testing.assert_allclose(ex.mean, ref, rtol=1e-12)
    assert ex.probes is None and np.all(ex.stderr == 0)
    zc = bonferroni_threshold(9, 0.01)
    for method in ("jvp", "forward", "vjp"):
        r = apjn(model, x, source="0", targets=layers, method=method, probes=60, seed=5)
        assert r.method == method
        z = (r.mean - ex.mean)[1:] / r.stderr[1:]
        assert np.all(np.abs(z) < zc), (method, z)
    assert _all_hooks(model) == 0


def test_cnn_and_transformer():
    torch.manual_seed(1)
    cnn = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)).to(D)
    x = torch.randn(2, 2, 5, 5, dtype=D)
    ex = apjn(cnn, x, method="exact")
    assert ex.layers == ("0", "2", "4")
    h1 = cnn[0](x).detach()
    jac = torch.autograd.functional.jacobian(cnn[1:], h1)
    np.testing.assert_allclose(ex.mean[-1], float(jac.pow(2).sum()) / cnn[1:](h1).numel(),
                               rtol=1e-12)
    r = read_model(cnn)
    assert r.hyperparameters()[1]["weight_var"] == pytest.approx(
        36 * float(cnn[2].weight.detach().pow(2).mean()))

    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                           batch_first=True),
                                num_layers=2, enable_nested_tensor=False).to(D).eval()
    x = torch.randn(2, 3, 8, dtype=D)
    res = apjn(enc, x, source="layers.0", targets=["layers.0", "layers.1"], probes=60,
               seed=2)
    assert res.method == "vjp"        # fused attention has no forward-mode formula
    h0 = enc.layers[0](x).detach()
    jac = torch.autograd.functional.jacobian(enc.layers[1], h0)
    exact = float(jac.pow(2).sum()) / h0.numel()
    assert res.mean[0] == 1.0
    assert abs(res.mean[1] - exact) < bonferroni_threshold(1, 0.01) * res.stderr[1]
    assert _all_hooks(enc) == 0


def test_no_change_to_the_model_and_hooks_removed_on_error():
    torch.manual_seed(2)
    model = _stack("mlp", nn.Tanh, 8, 3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apjn(model, torch.randn(2, 8, dtype=D), probes=3)
    apjn(model, torch.randn(2, 8, dtype=D), probes=3, method="vjp")
    jacobian_penalty(model, torch.randn(2, 8, dtype=D), source="0", target="4", seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert _all_hooks(model) == 0

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1:          # fails in the measurement, after the dry run
                raise ZeroDivisionError("boom")
            return x

    bad = nn.Sequential(nn.Linear(4, 4), Boom(), nn.Linear(4, 4)).to(D)
    with pytest.raises(ZeroDivisionError):
        apjn(bad, torch.randn(2, 4, dtype=D), probes=2)
    assert _all_hooks(bad) == 0
    with pytest.raises(InvalidArgumentError, match="no submodule named 'nope'"):
        apjn(model, torch.randn(2, 8, dtype=D), source="nope", targets=["0"])
    with pytest.raises(InvalidArgumentError, match="fails on inputs of shape"):
        apjn(model, torch.randn(2, 7, dtype=D))
    assert _all_hooks(model) == 0


# ----------------------------------------------------------------------------- reading
def test_read_model_and_its_errors():
    m = nn.Sequential(nn.Linear(4, 6, bias=False), nn.GELU(), nn.Dropout(0.0),
                      nn.Sequential(nn.Linear(6, 6), nn.SiLU()), nn.Linear(6, 2), nn.Tanh())
    with torch.no_grad():
        m[0].weight.fill_(0.5)
        m[3][0].bias.fill_(0.3)
    r = read_model(m)
    assert r.layers == ("0", "3.0", "4")
    assert r.weight_var[0] == (pytest.approx(4 * 0.25),) and r.bias_var[0] == (0.0,)
    assert r.bias_var[1] == (pytest.approx(0.09),)
    assert [a.name for a in r.activations] == ["gelu", "silu", "tanh"]
    assert r.network is None and any("ignored after the last layer" in n for n in r.notes)
    # any other tree: an unstructured reading, the reason in notes[0], no theory
    bn = read_model(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 3)))
    assert not bn.structured and bn.layers == ("0", "2")
    assert "'1'" in bn.notes[0] and "BatchNorm1d" in bn.notes[0]
    with pytest.raises(InvalidArgumentError, match="no theory.*BatchNorm1d"):
        predict(bn)
    ln = nn.LayerNorm(3)
    with torch.no_grad():
        ln.weight.fill_(2.0)
    assert "affine parameters" in read_model(nn.Sequential(nn.Linear(3, 3), ln, nn.Tanh(),
                                                           nn.Linear(3, 3))).notes[0]
    assert "starts with" in read_model(nn.Sequential(nn.Tanh(), nn.Linear(3, 3))).notes[0]
    with pytest.raises(CritheoryError, match="no Linear/Conv"):
        read_model(nn.Tanh())


@pytest.mark.parametrize("module, name", [
    (nn.Tanh(), "tanh"), (nn.ReLU(), "relu"), (nn.GELU(), "gelu"),
    (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.SiLU(), "silu"), (nn.ELU(0.5), None),
    (nn.LeakyReLU(0.2), None), (nn.Softplus(beta=2.0), None), (nn.SELU(), "selu"),
    (nn.Mish(), "mish"), (nn.Hardtanh(-2, 3), None), (nn.Softsign(), "softsign"),
    (nn.Sigmoid(), "sigmoid"), (nn.CELU(1.5), None), (nn.ReLU6(), "relu6")])
def test_torch_activations_map_to_critheory(module, name):
    act = activation_of(module)
    if name is not None:
        assert act.name == name
    x = torch.linspace(-4, 4, 161, dtype=D)
    # float64 evaluations of the same function: agreement to rounding
    np.testing.assert_allclose(module(x).numpy(), act.numpy(x.numpy()), rtol=1e-7, atol=1e-12)


def test_formula_activation_in_torch():
    act = TorchActivation("Piecewise((x, x > 0), (exp(x) - 1, True)) + 0.1*x*erf(x)")
    x = torch.linspace(-3, 3, 61, dtype=D, requires_grad=True)
    y = act(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    ref = Activation.get("Piecewise((x, x > 0), (exp(x) - 1, True)) + 0.1*x*erf(x)")
    np.testing.assert_allclose(y.detach().numpy(), ref.numpy(x.detach().numpy()), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(g.numpy(), ref.numpy_func(1)(x.detach().numpy()), rtol=1e-10)
    assert activation_of(act) is act.activation


# ----------------------------------------------------------------------------- init
def test_init_critical_points_seeds_and_formulas():
    m = _stack("mlp", nn.Tanh, 256, 3)
    assert tuple(init_critical_(m, seed=3)) == (1.0, 0.0)
    w1 = m[2].weight.clone()
    init_critical_(m, seed=3)
    assert torch.equal(w1, m[2].weight)
    init_critical_(m, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(w1, m[2].weight)
    # empirical σ_w² of 256² Gaussian weights: relative sd sqrt(2/256²) = 0.0055; 5 sd
    assert abs(read_model(m).weight_var[1][0] - 1.0) < 5 * math.sqrt(2) / 256
    # a formula activation: erf's critical point (π/4, 0) [theory.md §5]
    e = nn.Sequential(nn.Linear(8, 8), TorchActivation("erf(x)"), nn.Linear(8, 8))
    assert tuple(init_critical_(e, seed=0)) == pytest.approx((math.pi / 4, 0.0), abs=1e-12)
    assert tuple(init_critical_(e, activation="erf(x)", seed=0)) == pytest.approx(
        (math.pi / 4, 0.0), abs=1e-12)
    # a point of the critical line: χ_J(K*) = 1 there
    sw, sb = init_critical_(m, bias_var=0.2, seed=0)
    from critheory.theory.meanfield.fixed_points import analyze_point

    pa = analyze_point(architecture("mlp", "tanh"), sw, sb)
    assert sb == 0.2 and abs(pa.chi_jacobian - 1) < 1e-9
    ln = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 8))
    with pytest.raises(InvalidArgumentError, match="no critical point"):
        init_critical_(ln, seed=0)
    with pytest.raises(InvalidArgumentError, match="several activations"):
        init_critical_(nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2), nn.ReLU(),
                                     nn.Linear(2, 2)))


def test_tune_critical_reaches_chi_one():
    torch.manual_seed(0)
    for act in (nn.Tanh, nn.ReLU):
        m = _stack("mlp", act, 64, 4)          # PyTorch's default init: σ_w² = 1/3 (ordered)
        x = torch.randn(32, 64, dtype=D)
        rep = tune_critical_(m, x, tol=0.03, probes=8, seed=0)
        assert rep.all_converged, rep
        after = apjn(m, x, source="0", targets=["0", "2", "4", "6"], probes=8, seed=99)
        chi = after.mean[1:] / after.mean[:-1]
        assert np.all(np.abs(chi - 1) < 0.15), chi      # 3 layers measured independently
        with pytest.raises(AttributeError):
            rep.tol = 1.0                              # frozen report
    class Custom(nn.Module):                   # not readable: consecutive Linear layers
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 64)

        def forward(self, x):
            return self.b(torch.sin(self.a(x)))

    c = Custom().to(D)
    rep = tune_critical_(c, torch.randn(32, 64, dtype=D), tol=0.03, probes=8, seed=0)
    assert rep.all_converged and rep.scaled == ("b",) and "not read" in rep.notes[0]
    res = _stack("residual", nn.Tanh, 32, 3, mu=1.0)
    rep = tune_critical_(res, torch.randn(8, 32, dtype=D), max_iter=3)
    assert not rep.all_converged and any("mu^2" in n for n in rep.notes)


# ----------------------------------------------------------------------------- regularizer
def test_regularizer_is_unbiased_and_differentiable():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4)).to(D)
    x = torch.randn(3, 5, dtype=D)
    exact = jacobian_norm_exact(model, x)
    jac = torch.autograd.functional.jacobian(model, x)            # (3, 4, 3, 5)
    per = sum(float(jac[b, :, b, :].pow(2).sum()) for b in range(3)) / 3
    assert exact == pytest.approx(per, rel=1e-12)
    u = [torch.randn_like(p) for p in model.parameters()]         # a fixed direction

    def draw(seed, dist):
        pen = jacobian_penalty(model, x, n_proj=1, seed=seed, distribution=dist)
        grads = torch.autograd.grad(pen, list(model.parameters()), allow_unused=True)
        return float(pen.detach()), float(sum((g * d).sum() for g, d in zip(grads, u)
                                              if g is not None))

    # exact gradient of ½‖J‖_F² (per sample) along u, by double backward of the exact norm
    xs = x.clone().requires_grad_(True)
    y = model(xs)
    total = 0
    for i in range(4):
        (g,) = torch.autograd.grad(y[:, i].sum(), xs, create_graph=True)
        total = total + g.pow(2).sum()
    ex_g = torch.autograd.grad(0.5 * total / 3, list(model.parameters()), allow_unused=True)
    ex_dir = float(sum((g * d).sum() for g, d in zip(ex_g, u) if g is not None))
    zc = bonferroni_threshold(4, 0.01)
    for dist in ("sphere", "gaussian"):
        vals = np.array([draw(s, dist) for s in range(300)])
        mean, se = vals.mean(0), vals.std(0, ddof=1) / math.sqrt(len(vals))
        assert abs(mean[0] - 0.5 * exact) < zc * se[0], (dist, mean[0], 0.5 * exact, se[0])
        assert abs(mean[1] - ex_dir) < zc * se[1], (dist, mean[1], ex_dir, se[1])
    # partial Jacobian ∂h^{'2'}/∂h^{'0'}
    part = jacobian_norm_exact(model, x, source="0", target="2")
    h0 = model[0](x).detach()
    jp = torch.autograd.functional.jacobian(model[1:], h0)
    assert part == pytest.approx(sum(float(jp[b, :, b, :].pow(2).sum()) for b in range(3)) / 3,
                                 rel=1e-12)
    pens = [float(jacobian_penalty(model, x, source="0", target="2", seed=s, n_proj=4).detach())
            for s in range(150)]
    assert abs(np.mean(pens) - 0.5 * part) < zc * np.std(pens, ddof=1) / math.sqrt(150)
    # it trains: a step of SGD on the penalty lowers the exact Jacobian norm
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for s in range(20):
        opt.zero_grad()
        jacobian_penalty(model, x, n_proj=2, seed=s).backward()
        opt.step()
    assert jacobian_norm_exact(model, x) < exact


# ----------------------------------------------------------------------------- FDR
def test_fdr_example_reaches_stationarity():
    from critheory.torch.fdr import regression_example

    res = regression_example(seed=0)
    assert res.verdict == "stationary"
    assert abs(res.ratio - 1) <= 3 * res.ratio_stderr and res.ratio_stderr < 0.05


def test_fdr_monitor_reads_without_modifying_and_detects_drift():
    p = nn.Parameter(torch.zeros(3, dtype=D))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.5, dampening=0.2)
    mon = FDRMonitor(opt, blocks=5)
    a = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    for _ in range(50):                 # a linear loss: θ drifts forever, never stationary
        opt.zero_grad()
        (p * a).sum().backward()
        before = {k: (v.clone() if torch.is_tensor(v) else v)
                  for k, v in opt.state_dict()["state"].get(0, {}).items()}
        grad = p.grad.clone()
        mon.record()
        after = opt.state_dict()["state"].get(0, {})
        assert all(torch.equal(before[k], after[k]) for k in before) and torch.equal(grad, p.grad)
        opt.step()
    assert mon.result().verdict == "not stationary"
    with pytest.raises(InvalidArgumentError, match="Nesterov"):
        FDRMonitor(torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True))
    with pytest.raises(InvalidArgumentError, match="SGD"):
        FDRMonitor(torch.optim.Adam([p]))


def test_explicit_methods_without_formulas_say_so():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                           batch_first=True),
                                num_layers=2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 3, 8)
    for method in ("jvp", "forward"):
        with pytest.raises(InvalidArgumentError, match="use method='vjp'"):
            apjn(enc, x, source="layers.0", targets=["layers.1"], probes=2, method=method)
    assert _all_hooks(enc) == 0
    with pytest.raises(InvalidArgumentError, match="method must be one of"):
        apjn(enc, x, method="magic")


def _unit(arch, width, mu):
    A = nn.GELU
    return {
        "mlp": lambda: [A(), nn.Linear(width, width)],
        "residual": lambda: [Residual(nn.Sequential(A(), nn.Linear(width, width)), mu)],
        "pre-ln": lambda: [nn.LayerNorm(width), A(), nn.Linear(width, width)],
        "post-ln": lambda: [A(), nn.LayerNorm(width), nn.Linear(width, width)],
        "pre-ln-residual": lambda: [Residual(nn.Sequential(nn.LayerNorm(width), A(),
                                                           nn.Linear(width, width)), mu)],
        "pre-ln-mlp-block": lambda: [Residual(nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), A(), nn.Linear(width, width)), mu)],
    }[arch]()


@pytest.mark.parametrize("arch", ["mlp", "residual", "pre-ln", "post-ln", "pre-ln-residual",
                                  "pre-ln-mlp-block"])
def test_every_registry_architecture_is_read_as_itself(arch):
    """A torch stack of each named architecture, read back, gives critheory's depth curves
    (same rules, same numbers: to rounding)."""
    width, depth, mu, sw, sb = 16, 5, 0.7, 1.7, 0.2
    mods = [nn.Linear(width, width)]
    for _ in range(depth - 1):
        mods += _unit(arch, width, mu)
    m = nn.Sequential(*mods).to(D)
    with torch.no_grad():                  # weights of exactly known second moment
        for mod in m.modules():
            if isinstance(mod, nn.Linear):
                mod.weight.fill_(math.sqrt(sw / width))
                mod.bias.fill_(math.sqrt(sb))
    r = read_model(m)
    assert r.network is not None and r.uniform_point() == pytest.approx((sw, sb), rel=1e-12)
    p = predict(m, q0=1.0)
    dc = depth_curves(architecture(arch, "gelu", mu), sw, sb, depth, q0=1.0)
    np.testing.assert_allclose(p.apjn, dc.apjn, rtol=1e-12)
    np.testing.assert_allclose(p.kernel, dc.kernel, rtol=1e-12)


def test_consecutive_pairs_are_each_layers_chi():
    from critheory.torch import apjn_pairs

    m = _stack("mlp", nn.ReLU, 128, 4)
    init_critical_(m, seed=0)                 # ReLU (2, 0): χ_J = 1 for every layer
    x = torch.randn(16, 128, dtype=D, generator=torch.Generator().manual_seed(7))
    r = apjn_pairs(m, x, probes=16, seed=1)
    assert r.sources == ("0", "2", "4") and r.layers == ("2", "4", "6")
    one = apjn(m, x, source="2", targets=["4"], probes=16, seed=2)
    # one network of width 128: its χ differs from 1 by its own σ_w² (relative sd
    # sqrt(2/128²) = 0.011) and the finite-width fluctuation of φ'² (~sqrt(2/(B·N)) = 0.03):
    # 4 sd of the sum of the three variances
    sd = np.sqrt(r.stderr ** 2 + 0.011 ** 2 + (2 / (16 * 128)))
    assert np.all(np.abs(r.mean - 1) < 4 * sd), (r.mean, sd)
    assert abs(r.mean[1] - one.mean[0]) < 4 * np.hypot(r.stderr[1], one.stderr[0])
    ex = apjn_pairs(m[:3], x[:2], method="exact")
    ref = apjn(m[:3], x[:2], source="0", targets=["2"], method="exact")
    assert ex.mean[0] == pytest.approx(ref.mean[0], rel=1e-12)


# ----------------------------------------------------------------------------- issue 26.1: RNG
def _exact_input_to_2(m, x):
    """J from the input to h² of Linear -> tanh -> Linear exactly: the mean over samples of
    ‖W² diag(tanh'(h¹)) W¹‖_F² / N."""
    with torch.no_grad():
        d = 1 - torch.tanh(m[0](x)) ** 2
        w1, w2 = m[0].weight, m[2].weight
        return sum(float((w2 @ (d[b][:, None] * w1)).pow(2).sum())
                   for b in range(x.shape[0])) / x.shape[0] / w2.shape[0]


def test_seed_collision_reproduced_and_gone():
    """Weights and probes from one fresh generator of the same seed (the old default of both
    init_critical_ and apjn) make the input-space probes the rows of W¹, so W¹v has a large
    component: the APJN from the input came out twice the exact one (issue 26: 0.570 ± 0.021
    against 0.475 at width 256). Independent streams of one seed: the probe estimate is
    calibrated over 20 seeds."""
    from scipy import stats

    width, batch, probes, nets = 256, 4, 8, 20
    tcrit = stats.t.ppf(0.995, probes - 1)
    z_old, z_new = [], []
    for s in range(nets):
        m = _stack("mlp", nn.Tanh, width, 2)
        x = torch.randn(batch, width, dtype=D, generator=torch.Generator().manual_seed(10_000 + s))
        # the old behaviour: the same fresh generator for the weights and for the probes
        init_critical_(m, generator=torch.Generator().manual_seed(s))
        exact = _exact_input_to_2(m, x)
        r = apjn(m, x, source="", targets=["2"], probes=probes,
                 generator=torch.Generator().manual_seed(s))
        z_old.append((r.mean[0] - exact) / r.stderr[0])
        # now: seed=s for both draws independent streams
        init_critical_(m, seed=s)
        exact = _exact_input_to_2(m, x)
        assert abs(exact - 0.475) < 0.05                     # the exact value
        r = apjn(m, x, source="", targets=["2"], probes=probes, seed=s)
        z_new.append((r.mean[0] - exact) / r.stderr[0])
    z_old, z_new = np.array(z_old), np.array(z_new)
    # each z is Student-t with P-1 = 7 degrees of freedom (variance 7/5) when unbiased: the mean
    # of 20 has sd sqrt(1.4/20) = 0.26
    sd_mean = math.sqrt((probes - 1) / (probes - 3) / nets)
    assert abs(z_new.mean()) < 3.5 * sd_mean, z_new
    # at most 2 of 20 beyond the two-sided 1 % t quantile (P(X >= 3) = 0.001 for Bin(20, 0.01))
    assert np.sum(np.abs(z_new) > tcrit) <= 2, z_new
    assert z_old.mean() > 3.5 * sd_mean, z_old            # the collision, reproduced


def test_torch_manual_seed_alone_makes_every_call_reproducible():
    def run():
        torch.manual_seed(123)
        m = _stack("mlp", nn.Tanh, 32, 3)
        init_critical_(m)
        x = torch.randn(4, 32, dtype=D)
        r = apjn(m, x, probes=3)
        pen = float(jacobian_penalty(m, x, n_proj=2).detach())
        t = tune_critical_(m, x, probes=4, max_iter=2)
        return m[2].weight.clone(), r.mean, pen, t.chi
    a, b = run(), run()
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert a[3] == b[3]
    with pytest.raises(InvalidArgumentError, match="not both"):
        apjn(_stack("mlp", nn.Tanh, 4, 2), torch.randn(2, 4, dtype=D), seed=1,
             generator=torch.Generator())


# ----------------------------------------------------------------------------- issue 31.8
def test_apjn_measures_in_eval_mode_and_restores_buffers():
    torch.manual_seed(4)
    m = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.5),
                      nn.Linear(16, 16)).to(D).train()
    x = torch.randn(8, 16, dtype=D)
    m(x)                                           # non-trivial running statistics
    before = {k: v.clone() for k, v in m.state_dict().items()}
    r = apjn(m, x, source="0", targets=["4"], method="exact")
    assert r.mode == "eval" and m.training and all(mod.training for mod in m.modules())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    # the eval-mode Jacobian, explicitly (per sample: BatchNorm on running statistics)
    ev = m.eval()
    h0 = ev[0](x).detach()
    jac = torch.autograd.functional.jacobian(ev[1:], h0)
    m.train()
    assert r.mean[0] == pytest.approx(float(jac.pow(2).sum()) / h0.numel(), rel=1e-12)
    t = apjn(m, x, source="0", targets=["4"], probes=4, seed=0, mode="train")
    assert t.mode == "train" and all(torch.equal(before[k], v)
                                     for k, v in m.state_dict().items())
    with pytest.raises(InvalidArgumentError, match="mode must be"):
        apjn(m, x, mode="test")


def test_weight_tied_stack_counts_calls():
    torch.manual_seed(5)
    lin = nn.Linear(6, 6).to(D)
    m = nn.Sequential(lin, nn.Tanh(), lin, nn.Tanh(), lin)
    x = torch.randn(3, 6, dtype=D)
    r = apjn(m, x, method="exact")
    assert r.layers == ("0", "0@2", "0@3")
    h1 = lin(x).detach()
    f2 = lambda h: lin(torch.tanh(h))                          # noqa: E731
    f3 = lambda h: lin(torch.tanh(lin(torch.tanh(h))))         # noqa: E731
    for k, f in ((1, f2), (2, f3)):
        jac = torch.autograd.functional.jacobian(f, h1)
        assert r.mean[k] == pytest.approx(float(jac.pow(2).sum()) / h1.numel(), rel=1e-12)
    assert r.mean[1] != pytest.approx(1.0)
    reading = read_model(m)
    assert not reading.structured and "tied" in reading.notes[0]


# ----------------------------------------------------------------------------- issue 26.2
class Conv1D(nn.Module):
    """A stand-in for HuggingFace's transformers.pytorch_utils.Conv1D: y = x @ W + b, W (in, out)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return x @ self.weight + self.bias


class GPT2ish(nn.Module):
    def __init__(self, vocab=50, d=32, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(16, d)
        self.h = nn.ModuleList(nn.ModuleDict({"ln": nn.LayerNorm(d), "c_fc": Conv1D(4 * d, d),
                                              "c_proj": Conv1D(d, 4 * d)}) for _ in range(layers))

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = x + blk["c_proj"](nn.functional.gelu(blk["c_fc"](blk["ln"](x))))
        return x


class ViTish(nn.Module):
    def __init__(self, d=16, patches=4):
        super().__init__()
        self.embed = nn.Linear(12, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, patches + 1, d) * 0.02)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        x = self.embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        x = x + self.attn(x, x, x, need_weights=False)[0]
        x = x + self.mlp(x)
        return self.head(x[:, 0])


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout)) if stride != 1 or cin != cout
                           else None)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def resnetish():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         Block(8, 8, 1), Block(8, 16, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 5))


def test_init_any_model_with_a_report():
    from critheory.torch import CriticalityWarning

    torch.manual_seed(6)
    g = GPT2ish()
    with pytest.warns(CriticalityWarning, match="starts with an embedding"):
        rep = init_critical_(g, activation="gelu", q0=1.0)
    assert {t.name for t in rep.tensors} == {n for n, _ in g.named_parameters()}
    kinds = {t.name: (t.kind, t.action) for t in rep.tensors}
    assert kinds["h.0.c_fc.weight"] == ("conv1d_hf", "drawn")
    assert kinds["wte.weight"] == ("embedding", "drawn")
    assert kinds["h.0.ln.weight"] == ("other", "kept")
    # HF Conv1D: fan_in is the first dimension (32): σ_w² = 32·mean(W²)
    w = g.h[0]["c_fc"].weight.detach()
    assert abs(32 * float(w.pow(2).mean()) - rep.weight_var) < 5 * math.sqrt(2 / w.numel()) * \
        rep.weight_var
    # GELU at q0 = 1: rule "input layer", but the model starts with an embedding: every layer
    # gets the hidden σ_w², with a CriticalityWarning (above: c_fc has rep.weight_var)
    assert rep.input_point is not None and rep.input_point.rule == "input layer"
    assert rep.input_weight_var is None and any("starts with an embedding" in n
                                                for n in rep.notes)
    v = ViTish()
    rep = init_critical_(v, point=(2.0, 0.0), layers=["attn*", "mlp.*"], seed=1)
    acts = {t.name: t.action for t in rep.tensors}
    assert acts["attn.in_proj_weight"] == acts["attn.out_proj.weight"] == "drawn"
    assert acts["mlp.0.weight"] == "drawn" and acts["embed.weight"] == "kept"
    assert acts["cls_token"] == acts["pos_embed"] == "kept"
    assert float(v.attn.in_proj_bias.detach().abs().max()) == 0.0      # σ_b² = 0
    with pytest.raises(InvalidArgumentError, match="matches none"):
        init_critical_(v, point=(2.0, 0.0), layers=["nothing.*"])
    r = resnetish()
    rep = init_critical_(r, seed=2)                             # ReLU: (2, 0)
    assert rep.point == (2.0, 0.0) and "layer3" not in rep.drawn
    assert "4.downsample.0.weight" in rep.drawn and "1.weight" in rep.kept
    assert "not a stack critheory reads" in rep.notes[0]
    x = torch.randn(4, 3, 8, 8)
    res = apjn(r, x, source="0", targets=["3.conv2", "4.conv2", "7"], probes=4, seed=0)
    assert np.all(np.isfinite(res.mean)) and np.all(res.mean > 0)


def test_critical_normal_per_tensor():
    g = torch.Generator().manual_seed(0)
    w = torch.empty(300, 200, dtype=D)
    critical_normal_(w, "tanh", generator=g)
    assert abs(200 * float(w.pow(2).mean()) - 1.0) < 5 * math.sqrt(2 / w.numel())
    t = torch.empty(100, 400, dtype=D)              # stored (in, out) like HF Conv1D
    critical_normal_(t, point=(2.0, 0.5), transposed=True, generator=g)
    assert abs(100 * float(t.pow(2).mean()) - 2.0) < 5 * 2 * math.sqrt(2 / t.numel())
    b = torch.empty(5000, dtype=D)
    critical_normal_(b, point=(2.0, 0.5), role="bias", generator=g)
    assert abs(float(b.pow(2).mean()) - 0.5) < 5 * 0.5 * math.sqrt(2 / b.numel())
    with pytest.raises(InvalidArgumentError, match="at least 2 dimensions"):
        critical_normal_(torch.empty(3), "tanh")
    torch.manual_seed(1)
    a = critical_normal_(torch.empty(4, 4), "relu").clone()
    torch.manual_seed(1)
    assert torch.equal(a, critical_normal_(torch.empty(4, 4), "relu"))


def test_tune_refuses_batchnorm_and_explains_parallel_branches():
    torch.manual_seed(7)
    r = resnetish().train()
    x = torch.randn(4, 3, 8, 8)
    with pytest.raises(InvalidArgumentError, match="BatchNorm.*batchnorm='eval'"):
        tune_critical_(r, x)
    before = {k: v.clone() for k, v in r.state_dict().items() if "running" in k}
    seen = []
    rep = tune_critical_(r, x, batchnorm="eval", probes=4, max_iter=3,
                         progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert any("4.downsample.0" in n and "parallel branch" in n for n in rep.notes), rep.notes
    assert "4.downsample.0" in rep.layers and r.training
    assert all(torch.equal(before[k], r.state_dict()[k]) for k in before)


# ----------------------------------------------------------------------------- issue 26.5
QG = TorchActivation("x/(1 + exp(-1.702*x))")


@pytest.mark.parametrize("name, act", [
    ("gelu", nn.GELU), pytest.param("silu", nn.SiLU, marks=pytest.mark.slow),
    pytest.param("x/(1 + exp(-1.702*x))", lambda: QG, marks=pytest.mark.slow)])
def test_point_for_inputs_keeps_a_torch_mlp_critical(name, act):
    """Width 256, depth 64, unit-norm inputs: at the half-stable critical point J^{1,64}
    collapses (0.22 GELU, 0.011 SiLU, 0.13 QuickGELU); at the point for q0 = 1 (rule "input
    layer": the first Linear drawn with its own σ_w,in², K¹ = K*) it follows the mean-field
    curve, J^{1,l} = 1 (flat: the power law l^0)."""
    from scipy import stats

    from critheory.theory.meanfield.depth import depth_curves

    width, depth, nets = 256, 64, 4
    vals = []
    for s in range(nets):
        mods = [nn.Linear(width, width)]
        for _ in range(depth - 1):
            mods += [act(), nn.Linear(width, width)]
        m = nn.Sequential(*mods).to(D)
        rep = init_critical_(m, q0=1.0, seed=s)
        w0 = m[0].weight.detach()
        assert rep.input_weight_var == rep.input_point.input_weight_var > 5 * rep.weight_var
        assert abs(width * float(w0.pow(2).mean()) / rep.input_weight_var - 1) < \
            5 * math.sqrt(2 / w0.numel())
        x = torch.randn(8, width, dtype=D, generator=torch.Generator().manual_seed(99 + s))
        x = x / x.norm(dim=1, keepdim=True) * math.sqrt(width)          # |x|²/N₀ = 1
        r = apjn(m, x, source="0", targets=[str(2 * depth - 2)], probes=4, seed=s)
        vals.append(r.mean[0])
    vals = np.array(vals)
    mean, se = vals.mean(), vals.std(ddof=1) / math.sqrt(nets)
    # the input layer's σ_w,in² as inputs of second moment σ_w,in²/σ_w² (the same law of h¹)
    theory = depth_curves(architecture("mlp", name), rep.weight_var, rep.bias_var, depth,
                          q0=rep.input_weight_var / rep.weight_var).apjn[-1]
    assert abs(theory - 1) < 1e-9
    # networks' spread (Student-t, 3 dof, 1 %) plus the O(l/n) finite-width correction
    assert abs(mean - theory) <= stats.t.ppf(0.995, nets - 1) * se + depth / width * theory
    assert mean > 0.5                         # against 0.22 / 0.011 / 0.13 at the critical point


@pytest.mark.filterwarnings("ignore:.*starts with an embedding")        # GPT-2: wte first
def test_end_to_end_vit_gpt2_resnet():
    """init_critical_ + apjn between named blocks of the three model families (the residual
    stream, not the inner projections), each against the explicit Jacobian of one block."""
    torch.manual_seed(8)
    v = ViTish().to(D).eval()
    init_critical_(v, activation="gelu", q0=1.0)
    x = torch.randn(2, 4, 12, dtype=D)
    r = apjn(v, x, source="embed", targets=["embed", "mlp"], probes=40)
    assert r.method in ("jvp", "vjp") and r.mean[0] == 1.0 and r.mean[1] > 0
    g = GPT2ish().to(D)
    init_critical_(g, activation="gelu", q0=1.0, seed=3)
    idx = torch.randint(0, 50, (2, 5))
    r = apjn(g, idx, source="h.0.c_proj", targets=["h.1.c_proj"], method="exact")
    # explicit: h.1.c_proj(gelu(c_fc(ln(x + c_proj0)))) as a function of c_proj0's output
    with torch.no_grad():
        x0 = g.wte(idx) + g.wpe(torch.arange(5))
        b0 = g.h[0]
        p0 = b0["c_proj"](nn.functional.gelu(b0["c_fc"](b0["ln"](x0))))
    b1 = g.h[1]
    f = lambda p: b1["c_proj"](nn.functional.gelu(b1["c_fc"](b1["ln"](x0 + p))))  # noqa: E731
    jac = torch.autograd.functional.jacobian(f, p0)
    assert r.mean[0] == pytest.approx(float(jac.pow(2).sum()) / p0.numel(), rel=1e-10)
    res = resnetish().to(D)
    init_critical_(res, seed=4)
    xr = torch.randn(2, 3, 4, 4, dtype=D)
    r = apjn(res, xr, source="3", targets=["3", "4"], method="exact")
    ev = res.eval()
    h3 = ev[:4](xr).detach()
    jac = torch.autograd.functional.jacobian(ev[4], h3)
    assert r.mean[1] == pytest.approx(float(jac.pow(2).sum()) / ev[4](h3).numel(), rel=1e-10)


def test_half_stable_point_warns_with_the_depth_and_q0_does_not():
    from critheory.torch import CriticalityWarning

    m = _stack("mlp", nn.GELU, 16, 3)
    with pytest.warns(CriticalityWarning, match=r"half-stable.*K\* = 3.562.*from depth 6"):
        rep = init_critical_(m, seed=0)
    assert rep.point == pytest.approx((1.98305826, 0.17292239), rel=1e-7)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CriticalityWarning)
        rep = init_critical_(m, q0=1.0, seed=0)          # GELU at q0 = 1: flat
        r2 = init_critical_(_stack("mlp", nn.SiLU, 4, 64), q0=1.0, seed=0)   # was 16 % off
    assert rep.input_point.rule == r2.input_point.rule == "input layer"
    assert rep.bias_var > 0.17 and any("input layer '0'" in n for n in rep.notes)
    with pytest.raises(InvalidArgumentError, match="input layer '0'.*not among layers="):
        init_critical_(m, q0=1.0, layers=["2"])
    w = torch.empty(64, 32)
    critical_normal_(w, "gelu", q0=1.0, role="input_weight",
                     generator=torch.Generator().manual_seed(0))
    assert abs(32 * float(w.pow(2).mean()) / rep.input_weight_var - 1) < 5 * math.sqrt(2 / 2048)


def test_progress_reading_filters_and_separate_attention_weights():
    m = _stack("mlp", nn.Tanh, 8, 3)
    x = torch.randn(2, 8, dtype=D)
    seen = []
    apjn(m, x, probes=5, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (5, 5)
    seen.clear()
    apjn(m, x, source="0", targets=["2", "4"], probes=3, method="vjp",
         progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (6, 6)
    r = read_model(m, layers=["2", "4"])
    assert not r.structured and r.layers == ("2", "4") and r.kinds == ("linear", "linear")
    with pytest.raises(InvalidArgumentError, match="layers must be"):
        read_model(m, layers=3)
    mha = nn.MultiheadAttention(8, 2, kdim=6, vdim=5)
    rep = init_critical_(mha, point=(1.0, 0.25), seed=0)
    drawn = set(rep.drawn)
    assert {"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
            "out_proj.weight"} <= drawn
    assert abs(6 * float(mha.k_proj_weight.detach().pow(2).mean()) - 1) < 5 * math.sqrt(2 / 48)


def test_predict_refuses_inputs_of_the_wrong_shape():
    """issue 31 item 11: ct.predict(model, X) with X of the wrong shape was accepted."""
    from critheory.errors import InvalidArgumentError
    from critheory.torch.read import predict

    m = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    assert predict(m, torch.randn(5, 8)).kernel.shape == (2,)
    for bad in (torch.randn(5, 3), torch.randn(8, 5), torch.tensor(1.0)):
        with pytest.raises(InvalidArgumentError, match="do not fit the first layer"):
            predict(m, bad)
    with pytest.raises(InvalidArgumentError, match="torch.Tensor"):
        predict(m, np.ones((5, 8)))
