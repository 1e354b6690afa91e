"""``critheory torch-apjn`` (issue 19): output, one-line errors, and the core without torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from critheory.cli.main import main

MODEL = textwrap.dedent("""
    import torch
    from torch import nn
    from critheory.torch import Residual, init_critical_

    def mlp():
        m = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 32))
        init_critical_(m, seed=0)
        return m

    def resnet():
        return nn.Sequential(nn.Linear(16, 16),
                             Residual(nn.Sequential(nn.ReLU(), nn.Linear(16, 16)), mu=0.7))

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8)

        def forward(self, x):
            return self.b(torch.sin(self.a(x)))

    def custom():
        return Custom()

    def conv():
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(4, 4, 3, padding=1))

    def transformer():
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                                batch_first=True),
                                     num_layers=2, enable_nested_tensor=False).eval()

    def not_a_model():
        return 42

    def exits0():
        import sys
        sys.exit(0)

    def exits5():
        raise SystemExit(5)

    def base():
        raise BaseException("not an Exception")

    class ExitsInForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            raise SystemExit(0)

    def exits_in_forward():
        return ExitsInForward()

    def chatty():
        print("hello from the factory")
        return nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))

    class Conv1D(nn.Module):        # HuggingFace's Conv1D, as a stand-in: y = x @ W + b
        def __init__(self, nf, nx):
            super().__init__()
            self.nf = nf
            self.weight = nn.Parameter(torch.randn(nx, nf) / nx ** 0.5)
            self.bias = nn.Parameter(torch.zeros(nf))

        def forward(self, x):
            return x @ self.weight + self.bias

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(20, 8)
            self.h = nn.ModuleList(nn.ModuleDict({"c_fc": Conv1D(16, 8), "c_proj": Conv1D(8, 16)})
                                   for _ in range(3))

        def forward(self, idx):
            x = self.wte(idx)
            for b in self.h:
                x = x + b["c_proj"](torch.tanh(b["c_fc"](x)))
            return x

    def gpt():
        return GPT()

    def tied():
        l = nn.Linear(8, 8)
        return nn.Sequential(l, nn.Tanh(), l, nn.Tanh(), l)

    def bn_train():
        m = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 8))
        m(torch.randn(16, 8))
        return m.train()

    def broken():
        raise RuntimeError("no weights today")

    class Block(nn.Module):        # timm's VisionTransformer block layout
        def __init__(self, n=16):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(n), nn.LayerNorm(n)
            self.attn = nn.Module()
            self.attn.qkv, self.attn.proj = nn.Linear(n, 3 * n), nn.Linear(n, n)
            self.mlp = nn.Module()
            self.mlp.fc1, self.mlp.act, self.mlp.fc2 = nn.Linear(n, 4 * n), nn.GELU(), \
                nn.Linear(4 * n, n)

        def forward(self, x):
            B, T, n = x.shape
            q, k, v = self.attn.qkv(self.norm1(x)).split(n, -1)
            a = (q @ k.transpose(1, 2) / n ** 0.5).softmax(-1)
            x = x + self.attn.proj(a @ v)
            return x + self.mlp.fc2(self.mlp.act(self.mlp.fc1(self.norm2(x))))

    class ViT(nn.Module):
        def __init__(self, n=16):
            super().__init__()
            self.patch_embed = nn.Module()
            self.patch_embed.proj = nn.Conv2d(3, n, 4, stride=4)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, n))
            self.pos_embed = nn.Parameter(torch.randn(1, 5, n) * 0.02)
            self.blocks = nn.Sequential(Block(n), Block(n))
            self.norm, self.head = nn.LayerNorm(n), nn.Linear(n, 10)

        def forward(self, x):
            x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
            return self.head(self.norm(self.blocks(x))[:, 0])

    def vit():
        m = ViT()
        init_critical_(m, activation="gelu")
        return m

    class BasicBlock(nn.Module):   # torchvision's ResNet-18 block layout
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet18ish(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)
            self.layer1 = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 8, 1))
            self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16, 1))
            self.fc = nn.Linear(16, 5)

        def forward(self, x):
            x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(x.mean((2, 3)))

    def resnet18():
        m = ResNet18ish()
        init_critical_(m, activation="relu")
        return m
""")


@pytest.fixture()
def models(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    path = tmp_path / "usermodels.py"
    path.write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    yield path
    sys.modules.pop("usermodels", None)


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:          # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_output_with_theory(models, capsys):
    code, out, err = _run(capsys, "torch-apjn", f"{models}:mlp", "--probes", "4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["layers"] == ["0", "2", "4"] and d["input_shape"] == [16, 32]
    assert len(d["apjn_mean"]) == len(d["apjn_stderr"]) == len(d["apjn_theory"]) == 3
    assert d["apjn_mean"][0] == 1.0 and d["apjn_theory"][0] == 1.0
    assert set(d["hyperparameters"][1]) == {"weight_var", "bias_var"}
    assert d["hyperparameters"][1]["bias_var"] == 0.0 and d["phase"] == "critical"
    # the same run again (module imported by name from the current directory): same numbers
    code, out2, err = _run(capsys, "torch-apjn", "usermodels:mlp", "--probes", "4", "--json")
    assert code == 0 and json.loads(out2)["apjn_mean"] == d["apjn_mean"]


def test_unreadable_model_has_null_theory(models, capsys):
    code, out, err = _run(capsys, "torch-apjn", "usermodels:custom", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["apjn_theory"] is None and d["layers"] == ["a", "b"]
    assert "Custom" in d["theory_note"] and d["hyperparameters"][0]["weight_var"] > 0
    code, out, err = _run(capsys, "torch-apjn", "usermodels:resnet", "--probes", "3")
    assert code == 0 and "1.branch" not in out and "theory: phase" in out
    code, out, err = _run(capsys, "torch-apjn", "usermodels:conv", "--input-shape", "2,3,5,5",
                          "--method", "exact", "--json")
    assert code == 0 and json.loads(out)["method"] == "exact"
    code, out, err = _run(capsys, "torch-apjn", "usermodels:transformer", "--input-shape",
                          "2,3,8", "--probes", "4", "--json")
    d = json.loads(out)
    assert code == 0 and d["layers"] == ["layers.0", "layers.1"] and d["method"] == "vjp"
    assert d["apjn_theory"] is None and d["hyperparameters"][0]["weight_var"] is None


@pytest.mark.parametrize("argv, needle", [
    (["nosuchmodule:f"], "cannot import 'nosuchmodule'"),
    (["usermodels:nothere"], "has no attribute 'nothere'"),
    (["usermodels:not_a_model"], "returned int, not a torch.nn.Module"),
    (["usermodels:broken"], "broken() failed: RuntimeError: no weights today"),
    (["usermodels:mlp", "--input-shape", "4,31"], "fails on inputs of shape (4, 31)"),
    (["usermodels:conv"], "give --input-shape"),
    (["usermodels"], "expected MODULE:FACTORY"),
    (["missing.py:f"], "no such file"),
    (["usermodels:mlp", "--input-shape", "100000,1000"], "at most"),
    (["usermodels:mlp", "--probes", "0"], "--probes must be >= 1"),
])
def test_bad_input_is_one_line(models, capsys, argv, needle):
    code, out, err = _run(capsys, "torch-apjn", *argv)
    assert code == 2 and out == ""
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


_NO_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    import critheory
    import critheory.torch                     # the package itself imports without torch
    from critheory.cli.main import main
    assert main(["moments", "tanh", "--var", "1"]) == 0
    try:
        from critheory.torch import apjn
    except ImportError as exc:
        assert "pip install" in str(exc), exc
    else:
        raise SystemExit("critheory.torch.apjn imported without torch")
    code = main(["torch-apjn", "x:y"])
    assert "torch" not in sys.modules, sorted(m for m in sys.modules if "torch" in m)
    sys.exit(10 + code)
""")


def test_core_and_command_without_torch():
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    p = subprocess.run([sys.executable, "-c", _NO_TORCH], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 12, p.stderr        # torch-apjn exits 2
    lines = [l for l in p.stderr.strip().splitlines() if l]
    assert lines == ["critheory: error: critheory torch-apjn needs PyTorch: "
                     "pip install critheory[torch]"], p.stderr


def test_choose_layers_pairs_tokens(models, capsys):
    # HF Conv1D by class name, per block from the embedding, integer tokens
    code, out, err = _run(capsys, "torch-apjn", "usermodels:gpt", "--tokens", "20",
                          "--input-shape", "2,5", "--source", "wte", "--targets", "h.*.c_proj",
                          "--probes", "3", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["layers"] == ["h.0.c_proj", "h.1.c_proj", "h.2.c_proj"] and d["source"] == "wte"
    assert d["apjn_theory"] is None and all(v > 0 for v in d["apjn_mean"])
    code, out, err = _run(capsys, "torch-apjn", "usermodels:gpt", "--tokens", "20",
                          "--input-shape", "2,5", "--source", "wte", "--layer-type", "Conv1D",
                          "--pairs", "--probes", "3", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["pairs"] and d["sources"][0] == "wte" and len(d["layers"]) == 6
    assert d["layers"][0] == "h.0.c_fc" and d["sources"][1] == "h.0.c_fc"
    code, out, err = _run(capsys, "torch-apjn", "usermodels:gpt", "--tokens", "20",
                          "--input-shape", "2,5", "--json")
    assert code == 2 and "name the --source" in err
    code, out, err = _run(capsys, "torch-apjn", "usermodels:mlp", "--targets", "nope*")
    assert code == 2 and "matches no submodule" in err


def test_tied_weights_and_train_mode(models, capsys):
    code, out, err = _run(capsys, "torch-apjn", "usermodels:tied", "--probes", "4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["layers"] == ["0", "0@2", "0@3"] and "tied" in d["theory_note"]
    assert d["apjn_mean"][1] != 1.0 and d["mode"] == "eval"
    code, out, err = _run(capsys, "torch-apjn", "usermodels:bn_train", "--probes", "4")
    assert code == 0 and "measured in eval mode" in out


@pytest.mark.parametrize("factory, needle", [
    ("exits0", "sys.exit(0)"), ("exits5", "sys.exit(5)"),
    ("base", "BaseException: not an Exception"), ("exits_in_forward", "sys.exit(0)")])
def test_user_code_is_contained(models, capsys, factory, needle):
    code, out, err = _run(capsys, "torch-apjn", f"usermodels:{factory}")
    assert code == 2 and out == "" and needle in err and len(err.strip().splitlines()) == 1


def test_file_path_puts_its_folder_on_sys_path(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    pkg = tmp_path / "proj"
    pkg.mkdir()
    (pkg / "neighbour_layers.py").write_text("from torch import nn\nWIDTH = 6\n")
    (pkg / "entry.py").write_text(
        "from torch import nn\nimport neighbour_layers as nl\n"
        "def make():\n    return nn.Sequential(nn.Linear(nl.WIDTH, nl.WIDTH), nn.Tanh(), "
        "nn.Linear(nl.WIDTH, nl.WIDTH))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        code, out, err = _run(capsys, "torch-apjn", "proj/entry.py:make", "--probes", "2",
                              "--json")
    finally:
        sys.modules.pop("neighbour_layers", None)
    assert code == 0, err
    assert json.loads(out)["input_shape"] == [16, 6]


def test_user_prints_stay_off_stdout(models, capsys):
    code, out, err = _run(capsys, "torch-apjn", "usermodels:chatty", "--probes", "2", "--json")
    assert code == 0 and json.loads(out)["layers"] == ["0", "2"]
    assert "hello from the factory" in err


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_end_to_end_vit_and_resnet_with_source_and_targets(models, capsys):
    """issue 26 'Done when': a timm-layout ViT (cls_token, pos_embed, patch_embed conv) and a
    torchvision-layout ResNet-18 (BatchNorm, downsample branches), initialized by
    init_critical_ in the factory, measured between named blocks by torch-apjn."""
    code, out, err = _run(capsys, "torch-apjn", "usermodels:vit", "--input-shape", "2,3,8,8",
                          "--source", "patch_embed.proj", "--targets", "blocks.?",
                          "--probes", "4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["source"] == "patch_embed.proj" and d["layers"] == ["blocks.0", "blocks.1"]
    assert all(v > 0 for v in d["apjn_mean"])
    code, out, err = _run(capsys, "torch-apjn", "usermodels:resnet18", "--input-shape",
                          "2,3,8,8", "--source", "layer1.0", "--targets", "layer1.1,layer2.?",
                          "--probes", "4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["layers"] == ["layer1.1", "layer2.0", "layer2.1"], d["layers"]
    assert d["source"] == "layer1.0" and all(v > 0 for v in d["apjn_mean"])
    code, out, err = _run(capsys, "torch-apjn", "usermodels:mlp", "--source", "0",
                          "--targets", "2,4", "--probes", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["layers"] == ["2", "4"]
