"""Self-describing results (issue 26 item 7): every result dataclass has a short repr and a
``to_dict()`` that ``json.dumps(..., allow_nan=False)`` accepts."""
from __future__ import annotations

import ast
import json
import pathlib
import warnings

import pytest

import critheory as ct

ROOT = pathlib.Path(__file__).resolve().parents[1] / "critheory"


def _dataclasses():
    for f in sorted(ROOT.rglob("*.py")):
        for n in ast.parse(f.read_text()).body:
            if isinstance(n, ast.ClassDef) and any("dataclass" in ast.unparse(d)
                                                   for d in n.decorator_list):
                names = {m.name for m in n.body if isinstance(m, ast.FunctionDef)}
                names |= {t.id for m in n.body if isinstance(m, ast.Assign)
                          for t in m.targets if isinstance(t, ast.Name)}
                yield f.relative_to(ROOT.parent), n.name, names


def test_every_result_with_to_dict_has_a_short_repr():
    """A result (a dataclass with to_dict) defines its repr (short_repr or its own): the
    dataclass default printed every array in full (a simulation: 4000 characters)."""
    bad = [f"{f}:{name}" for f, name, names in _dataclasses()
           if "to_dict" in names and "__repr__" not in names]
    assert not bad, bad


def _results():
    net = ct.network("mlp", "tanh")
    yield ct.simulate("tanh", 1.0, 0.0, width=32, depth=40, seeds=3, seed=1)
    yield ct.depth_curves(net, 1.0, 0.0, 200)
    yield ct.recipe("tanh", width=64, depth=8)
    yield ct.analyze_point(net, 1.5, 0.1)
    yield ct.universality(net)
    yield ct.ntk_curves(net, "tanh", 1.0, 0.0, 100)
    yield ct.finite_width_curves(net, 1.0, 0.0, 100)
    yield ct.simulate_spectrum("tanh", 1.0, 0.0, depth=4, width=16, seeds=2)
    yield ct.compare("tanh", 1.0, 0.0, width=16, depth=20, seeds=4)
    yield ct.critical_point_for_inputs("gelu", 1.0, depth=16)


def test_results_have_short_reprs_and_json_dicts():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in _results():
            text = repr(r)
            assert text.startswith(type(r).__name__ + "(") and len(text) < 1200, text[:200]
            json.dumps(r.to_dict(), allow_nan=False)


def test_torch_results_have_short_reprs_and_json_dicts():
    torch = pytest.importorskip("torch")
    from critheory.torch import apjn, init_critical_, predict, read_model

    m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
    rep = init_critical_(m, seed=0)
    x = torch.randn(3, 8, dtype=torch.float32)
    for r in (rep, rep.tensors[0], read_model(m), predict(m, q0=1.0), apjn(m, x, probes=3)):
        text = repr(r)
        assert text.startswith(type(r).__name__ + "(") and len(text) < 1200, text[:200]
        json.dumps(r.to_dict(), allow_nan=False)
