"""critheory.torch.apjn's routes to the products J v (issue 32): ``vmap`` (torch.func.jvp
batched over the probes, the default), ``jvp`` (reverse over reverse) and ``forward``
(torch.autograd.forward_ad, one probe at a time) draw the same probes from the same generator,
so they must give the same per-probe estimates to rounding; the exact APJN (batched over the
basis vectors) must equal the Frobenius norm of the Jacobian computed by reverse mode
(``torch.autograd.functional.jacobian``); ``auto`` falls back, with the same probes, where
torch.func refuses a model."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import critheory.torch.measure as measure  # noqa: E402
from critheory.errors import InvalidArgumentError  # noqa: E402
from critheory.torch import apjn  # noqa: E402

D = torch.float64
#: float64 routes differ by the order of the same sums: a few ulps per layer
RTOL64 = 1e-10


def _gen(seed):
    return torch.Generator().manual_seed(seed)


class _Block(nn.Module):
    """A residual block like torchvision's BasicBlock: BatchNorm, in-place ReLU, the shortcut
    added in place (the in-place operations torch.func must see through)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


def _resnet():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                      _Block(4), _Block(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 3)).to(D)
    with torch.no_grad():                      # running statistics that are not 0 and 1
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5, generator=_gen(1))
                mod.running_var.uniform_(0.5, 2.0, generator=_gen(2))
    return m.eval(), torch.randn(2, 2, 5, 5, dtype=D, generator=_gen(3))


def _inplace_mlp():
    """Linear layers each followed by ReLU(inplace=True): the recorded outputs of the targets
    are changed in place afterwards."""
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(6, 6), nn.ReLU(inplace=True), nn.Linear(6, 6),
                      nn.ReLU(inplace=True), nn.Linear(6, 6)).to(D)
    return m, torch.randn(3, 6, dtype=D, generator=_gen(4))


def _tanh_mlp():
    torch.manual_seed(2)
    m = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 7), nn.Tanh(),
                      nn.Linear(7, 4)).to(D)
    return m, torch.randn(3, 5, dtype=D, generator=_gen(5))


def _tied():
    torch.manual_seed(3)
    lin = nn.Linear(5, 5)
    m = nn.Sequential(lin, nn.Tanh(), lin, nn.Tanh(), lin).to(D)
    return m, torch.randn(2, 5, dtype=D, generator=_gen(6))


# (name, factory, source, targets): None = apjn's defaults
CASES = [("resnet", _resnet, None, None),
         ("resnet-from-block", _resnet, "3.conv2", ["3.conv2", "4.conv1", "4.conv2", "7"]),
         ("inplace-relu", _inplace_mlp, None, None),
         ("tanh-from-input", _tanh_mlp, "", ["0", "2", "4"]),
         ("tanh-target-before-source", _tanh_mlp, "2", ["0", "2", "4"]),
         ("tied-weights", _tied, "0", ["0", "0@2", "0@3"])]


@pytest.mark.parametrize("name, factory, source, targets", CASES, ids=[c[0] for c in CASES])
def test_routes_give_the_same_estimates_with_the_same_probes(name, factory, source, targets):
    model, x = factory()
    res = {m: apjn(model, x, source=source, targets=targets, probes=5, seed=7, method=m)
           for m in ("auto", "vmap", "jvp", "forward")}
    assert res["auto"].method == "vmap"
    np.testing.assert_array_equal(res["auto"].samples, res["vmap"].samples)
    for m in ("jvp", "forward"):
        assert res[m].layers == res["vmap"].layers and res[m].numel == res["vmap"].numel
        np.testing.assert_allclose(res[m].samples, res["vmap"].samples, rtol=RTOL64, atol=0,
                                   err_msg=m)
    assert np.all(res["vmap"].samples > 0) or name == "tanh-target-before-source"
    if name == "tanh-target-before-source":         # "0" runs before h^{l0}: J = 0
        assert np.all(res["vmap"].samples[:, 0] == 0) and np.all(res["vmap"].samples[:, 2] > 0)


def _explicit(model, x, source, target):
    """‖∂h^target/∂h^source‖_F² / numel by reverse mode over the whole batch tensor, with the
    source's output replaced by the differentiated variable (a copy: the model may change it
    in place)."""
    mods = dict(model.named_modules())

    def keep(store, key):
        def hook(m, a, o):
            store.setdefault(key, o.clone())        # returns None: the output flows on
        return hook

    with torch.no_grad():
        got = {}
        hk = mods[source].register_forward_hook(keep(got, "h"))
        model(x)
        hk.remove()

    def f(h):
        out = {}
        hs = [mods[source].register_forward_hook(lambda m, a, o: h.clone()),
              mods[target].register_forward_hook(keep(out, "y"))]
        try:
            model(x)
        finally:
            for hd in hs:
                hd.remove()
        return out["y"]

    jac = torch.autograd.functional.jacobian(f, got["h"])
    return float(jac.pow(2).sum()) / f(got["h"]).numel()


@pytest.mark.parametrize("factory, source, target",
                         [(_resnet, "0", "4.conv2"), (_resnet, "3.conv1", "7"),
                          (_inplace_mlp, "0", "2"), (_tanh_mlp, "0", "4")])
def test_exact_apjn_equals_the_reverse_mode_jacobian(factory, source, target):
    model, x = factory()
    r = apjn(model, x, source=source, targets=[target], method="exact")
    assert r.method == "exact"
    ref = _explicit(model, x, source, target)
    assert r.mean[0] == pytest.approx(ref, rel=RTOL64)
    # and the reverse-over-reverse route over the same basis, where torch.func is refused
    h0, _ = measure.source_graph(model, (x,), source, [target])
    n0 = h0.numel()
    basis = [lambda h, j=j: torch.eye(n0, dtype=h.dtype)[j].view(h.shape) for j in range(n0)]
    rows, numel = measure._jvp_rr(model, (x,), source, [target], basis)
    assert rows.sum() / numel[target] == pytest.approx(ref, rel=RTOL64)


def test_float32_routes_agree_to_single_precision():
    model, x = _resnet()
    model, x = model.float(), x.float()
    a = apjn(model, x, probes=4, seed=0)
    b = apjn(model, x, probes=4, seed=0, method="jvp")
    assert a.method == "vmap"
    # the tangents are float32: relative error ~ depth × 2^-24, summed in float64
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-4, atol=0)


class _WritesBuffer(nn.Module):
    """Copies its input into a buffer (state written in the forward pass: torch.func refuses
    to mutate a captured tensor)."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("last", torch.zeros(shape, dtype=D))

    def forward(self, x):
        self.last.copy_(x)
        return torch.tanh(self.last)


def _refused_models():
    torch.manual_seed(4)
    bn = nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 6)).to(D)
    drop = nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.3), nn.Tanh(), nn.Linear(6, 6)).to(D)
    buf = nn.Sequential(nn.Linear(6, 6), _WritesBuffer((4, 6)), nn.Linear(6, 6)).to(D)
    x = torch.randn(4, 6, dtype=D, generator=_gen(8))
    return [("batchnorm-train", bn.train(), "train"), ("dropout-train", drop.train(), "train"),
            ("buffer-written", buf, "eval")], x


@pytest.mark.parametrize("k", range(3), ids=["batchnorm-train", "dropout-train",
                                             "buffer-written"])
def test_auto_falls_back_with_the_same_probes_where_torch_func_refuses(k):
    cases, x = _refused_models()
    name, model, mode = cases[k]
    before = {n: b.clone() for n, b in model.named_buffers()}
    # the global generator (seed=None): the refused attempt must not move it
    torch.manual_seed(11)
    a = apjn(model, x, probes=6, mode=mode)
    torch.manual_seed(11)
    b = apjn(model, x, probes=6, mode=mode, method="jvp")
    assert a.method == "jvp" and b.method == "jvp", name
    np.testing.assert_array_equal(a.samples, b.samples)
    with pytest.raises(InvalidArgumentError, match="use method='jvp' or 'vjp'") as err:
        apjn(model, x, probes=2, mode=mode, method="vmap", seed=0)
    assert "\n" not in str(err.value)
    for n, buf in model.named_buffers():
        assert torch.equal(buf, before[n]), n
    assert all(not m._forward_hooks for m in model.modules())
    if name == "buffer-written":      # the exact mode falls back too, and stays exact
        r = apjn(model, x, source="0", targets=["2"], method="exact")
        assert r.mean[0] == pytest.approx(_explicit(model, x, "0", "2"), rel=RTOL64)


def test_probes_run_in_batches_of_bounded_memory(monkeypatch):
    model, x = _resnet()
    calls = []
    hook = model.register_forward_pre_hook(lambda m, a: calls.append(1))
    seen = []
    one = apjn(model, x, probes=8, seed=3, progress=lambda d, t: seen.append((d, t)))
    # one pass to find h^{l0} and the layers, one batched pass for all 8 probes
    assert len(calls) == 2 and seen[-1] == (8, 8)
    monkeypatch.setattr(measure, "MAX_VMAP_BYTES", 1)        # one probe per batch
    calls.clear()
    many = apjn(model, x, probes=8, seed=3)
    hook.remove()
    assert len(calls) == 1 + 8
    np.testing.assert_allclose(many.samples, one.samples, rtol=RTOL64, atol=0)
