"""Simulator backends: numpy vs torch (CPU), float64 vs float32 (critheory.simulation.backend).

Every backend draws its random numbers from the same numpy generators, so the backends simulate
the same networks and must agree to rounding: float64 to ~1e-12 relative, float32 to a bound
derived from the depth and float32's epsilon.
"""
import subprocess
import sys

import numpy as np
import pytest

from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.simulation import simulate
from critheory.simulation.backend import get_backend, parse_backend

torch = pytest.importorskip("torch")

EPS32 = float(np.finfo(np.float32).eps)

# moderate depths in or near the ordered/critical regime: the rounding differences are not
# amplified exponentially (in the chaotic phase two runs that differ by one rounding diverge
# like chi_1^l, as any two nearby trajectories do)
CASES = [
    dict(activation="tanh", weight_var=1.2, bias_var=0.05, width=32, depth=12, seeds=3),
    dict(activation="relu", weight_var=2.0, bias_var=0.0, width=64, depth=10, seeds=3,
         probes=4),                                                    # projected sampler
    dict(activation="gelu", weight_var=1.2, bias_var=0.2, width=24, depth=8, seeds=2,
         arch="pre-ln", second_input_corr=0.5),
    dict(activation="tanh", weight_var=1.0, bias_var=0.05, width=40, depth=9, seeds=2,
         arch="pre-ln-mlp-block", method="dense", probes=3),
    dict(activation="relu", weight_var=1.0, bias_var=0.1, width=20, depth=10, seeds=2,
         arch="residual", mu=0.8, probes=2),
    dict(activation="erf", weight_var=1.5, bias_var=0.0, width=16, depth=12, seeds=2,
         arch="post-ln"),
]
FIELDS = ("log_apjn", "kernel", "fourth_moment", "kernel_second", "covariance")


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['activation']}-"
                         f"{c.get('arch', 'mlp')}")
def test_torch_float64_matches_numpy(case):
    ref = simulate(seed=3, **case)
    got = simulate(seed=3, backend="torch", **case)
    assert got.backend == "torch:cpu" and got.dtype == "float64"
    for f in FIELDS:
        a, b = getattr(got, f), getattr(ref, f)
        if b is None:
            assert a is None
            continue
        # same arithmetic up to the order of summation in each product: a few ulps per
        # operation, ~depth of them in sequence -> far below 1e-12
        assert _rel(a, b) < 1e-12, f


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: f"{c['activation']}-"
                         f"{c.get('arch', 'mlp')}")
def test_float32_within_float32_precision(case, backend):
    ref = simulate(seed=5, **case)
    got = simulate(seed=5, backend=backend, dtype="float32", **case)
    assert got.dtype == "float32"
    # tolerance: each layer adds rounding of relative size <= width·eps32 (a dot product of
    # `width` terms, worst case) to the state; over `depth` layers that accumulates to at most
    # depth·width·eps32 relative (no exponential amplification in these regimes). The log APJN
    # is compared absolutely (a relative error of J is an absolute error of log J).
    tol = case["depth"] * case["width"] * EPS32
    assert _rel(got.kernel, ref.kernel) < tol
    assert np.max(np.abs(got.log_apjn - ref.log_apjn)) < tol
    # ...and it is float32 that was used: the difference is not float64-small
    assert _rel(got.kernel, ref.kernel) > 1e-12


def test_same_networks_same_statistics():
    """The fits of the different backends agree (the same networks are simulated)."""
    from critheory.simulation import fit_exponential

    kw = dict(activation="tanh", weight_var=0.8, bias_var=0.0, width=48, depth=16, seeds=6,
              seed=11)
    fits = [fit_exponential(simulate(backend=b, dtype=d, **kw), window=(8, 16), n_boot=50)
            for b, d in [("numpy", "float64"), ("torch", "float64"), ("torch", "float32"),
                         ("numpy", "float32")]]
    s0 = fits[0].slope
    assert abs(fits[1].slope - s0) < 1e-12
    # float32: a slope over 8 layers of log J, each within depth·width·eps32 (see above)
    assert abs(fits[2].slope - s0) < 16 * 48 * EPS32
    assert abs(fits[3].slope - s0) < 16 * 48 * EPS32
    assert fits[1].stderr == pytest.approx(fits[0].stderr, rel=1e-9)


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu", "swish", "elu", "softplus",
                                  "hardtanh", "sigmoid"])
def test_torch_activation_matches_numpy(name):
    from critheory.activation.symbolic import Activation

    act = Activation.get(name)
    bk = get_backend("torch")
    x = np.concatenate([np.linspace(-30, 30, 601), [0.0, 1e-300, -1e-300]])
    for n in (0, 1):
        y = bk.to_numpy(bk.activation(act, n)(bk.asarray(x)))
        ref = act.numpy_func(n)(x)
        # the same formula in float64 by another library: a few ulps relative, and absolute
        # ~eps where a formula cancels (tanh' = 1 - tanh², |error| <= a few eps near 0)
        assert np.allclose(y, ref, rtol=1e-13, atol=8 * np.finfo(float).eps), (name, n)


def test_parse_and_errors():
    assert parse_backend("torch") == ("torch", "cpu")
    assert parse_backend("TORCH:cuda:1") == ("torch", "cuda:1")
    for bad in ["jax", "torch:tpu", "numpy:cuda", "torch:cuda:x", 3]:
        with pytest.raises(InvalidArgumentError):
            parse_backend(bad)
    with pytest.raises(InvalidArgumentError):
        get_backend("numpy", "float16")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="CUDA is not available"):
            simulate("tanh", 1.0, 0.0, width=4, depth=2, backend="torch:cuda")


def test_without_torch_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)        # `import torch` raises ImportError
    with pytest.raises(CritheoryError, match=r"pip install 'critheory\[torch\]'"):
        simulate("tanh", 1.0, 0.0, width=4, depth=2, backend="torch")
    # the numpy backend does not need it
    assert simulate("tanh", 1.0, 0.0, width=4, depth=2).backend == "numpy"


def test_core_never_imports_torch():
    code = ("import sys; from critheory.simulation import simulate; "
            "simulate('tanh', 1.0, 0.0, width=8, depth=3, dtype='float32'); "
            "from critheory.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cli_backend_options():
    from critheory.cli.main import main

    args = ["simulate", "tanh", "--weight-var", "1", "--bias-var", "0", "--width", "8",
            "--depth", "4", "--seeds", "2", "--json"]
    assert main(args + ["--backend", "jax"]) == 2
    assert main(args + ["--backend", "torch", "--dtype", "float32"]) == 0
    assert main(["validate"] + args[1:] + ["--backend", "torch"]) == 0


def test_cli_json_names_backend(capsys):
    import json

    from critheory.cli.main import main

    assert main(["simulate", "relu", "--weight-var", "2", "--bias-var", "0", "--width", "8",
                 "--depth", "4", "--seeds", "2", "--json", "--backend", "torch",
                 "--dtype", "float32"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["settings"]["backend"] == "torch:cpu" and d["settings"]["dtype"] == "float32"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_numpy():  # pragma: no cover - needs a GPU
    case = CASES[0]
    ref = simulate(seed=3, **case)
    got = simulate(seed=3, backend="torch:cuda", **case)
    assert _rel(got.kernel, ref.kernel) < 1e-12


def test_torch_backend_seed_from_the_global_generator():
    bk = get_backend("torch")
    torch.manual_seed(11)
    a = bk.resolve_seed(None)
    torch.manual_seed(11)
    assert bk.resolve_seed(None) == a and bk.resolve_seed(5) == 5
    g = torch.Generator().manual_seed(3)
    b = bk.resolve_seed(None, g)
    assert b == bk.resolve_seed(None, torch.Generator().manual_seed(3))
    r1 = simulate("tanh", 1.0, 0.0, width=8, depth=3, seed=a, backend="torch")
    r2 = simulate("tanh", 1.0, 0.0, width=8, depth=3, seed=a, backend="torch")
    assert np.array_equal(r1.kernel, r2.kernel)
    assert get_backend("numpy").resolve_seed(None) is None
    with pytest.raises(InvalidArgumentError, match="torch backend"):
        get_backend("numpy").resolve_seed(None, g)
    with pytest.raises(InvalidArgumentError, match="torch.Generator"):
        bk.resolve_seed(None, 3)
    # simulate() without a seed: torch.manual_seed alone makes the run reproducible
    torch.manual_seed(11)
    r3 = simulate("tanh", 1.0, 0.0, width=8, depth=3, seed=None, backend="torch")
    torch.manual_seed(11)
    r4 = simulate("tanh", 1.0, 0.0, width=8, depth=3, seed=None, backend="torch")
    assert np.array_equal(r3.kernel, r4.kernel) and r3.seed == r4.seed == a
    torch.manual_seed(12)
    r5 = simulate("tanh", 1.0, 0.0, width=8, depth=3, seed=None, backend="torch")
    assert not np.array_equal(r3.kernel, r5.kernel)
