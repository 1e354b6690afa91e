"""The design rules of issue 12, enforced: one-way imports, capabilities instead of types, one
registry, and the block rules against independent routes.

Import ranks (a module may import only from its own package or lower ranks):
errors/common 0 < activation 1 < expectations 2 < blocks 3 < theory 4 < io 5 < validation 6 <
the optional integrations torch and sweep 7 < cli 8; the simulator may import errors, common, activation, blocks and itself only (it must stay
an independent check of the theory).
"""
from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

from critheory.blocks import Dense, LayerNorm, Network, Phi, Residual, network
from critheory.blocks.registry import REGISTRY, canonical, names
from critheory.errors import InvalidArgumentError
from critheory.theory.meanfield.fixed_points import analyze_point
from critheory.theory.meanfield.maps import LayerMaps, architecture

PKG = pathlib.Path(__file__).resolve().parent.parent / "critheory"
RANK = {"errors": 0, "common": 0, "activation": 1, "expectations": 2, "blocks": 3, "theory": 4,
        "io": 5, "validation": 6, "torch": 7, "sweep": 7, "cli": 8}
SIMULATION_MAY_IMPORT = {"errors", "common", "activation", "blocks", "simulation"}


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mod = node.module
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("critheory."):
                    yield a.name.split(".")[1]
            continue
        else:
            continue
        if mod.startswith("critheory."):
            yield mod.split(".")[1]
        elif mod == "critheory":
            yield from (a.name for a in node.names if a.name in RANK)


def _package(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG).parts
    return rel[0].removesuffix(".py") if rel else ""


def test_import_rules():
    bad = []
    for path in PKG.rglob("*.py"):
        own = _package(path)
        if own in ("__init__", "__main__"):
            continue
        for target in _imports(path):
            if own == "simulation":
                if target not in SIMULATION_MAY_IMPORT:
                    bad.append(f"{path.relative_to(PKG)} imports critheory.{target}")
            elif target == "simulation":
                if RANK.get(own, -1) < RANK["validation"]:
                    bad.append(f"{path.relative_to(PKG)} imports the simulator")
            elif target in RANK and own in RANK and RANK[target] > RANK[own]:
                bad.append(f"{path.relative_to(PKG)} ({own}) imports critheory.{target}")
    assert not bad, "imports against the one-way rule:\n" + "\n".join(bad)


def test_import_rules_see_violations(tmp_path):
    f = PKG / "theory" / "_probe_for_test.py"
    try:
        f.write_text("from critheory.cli.main import main\n")
        with pytest.raises(AssertionError):
            test_import_rules()
    finally:
        f.unlink()


def test_no_solver_decides_by_type_or_name():
    """Solvers, reports and plots ask capabilities: no isinstance on networks, no name tests."""
    bad = []
    for path in list((PKG / "theory").rglob("*.py")) + list((PKG / "io").rglob("*.py")):
        text = path.read_text()
        for needle in ("arch.name ==", "arch.name !=", "arch.name in", "a.name ==",
                       "a.name !=", "isinstance(arch,", "isinstance(a,"):
            if needle in text:
                bad.append(f"{path.relative_to(PKG)}: {needle}")
    assert not bad, bad


def test_one_registry():
    # one registry: the one-token and the token architectures are its entries
    assert names(tokens=None) == tuple(REGISTRY)
    assert set(names()) | set(names(tokens=True)) == set(REGISTRY)
    assert canonical("Transformer_Post_LN") == "transformer-post-ln"
    with pytest.warns(FutureWarning, match="tarnowski"):   # 'resnet' stopped meaning two things
        assert canonical("resnet") == "residual"
    with pytest.raises(InvalidArgumentError):
        canonical("no-such-arch")
    from critheory.cli.main import build_parser
    from critheory.simulation import ARCHITECTURES

    assert tuple(ARCHITECTURES) == names()
    text = build_parser().format_help()
    assert "analyze" in text
    # the CLI choices are the registry's
    sub = [a for a in build_parser()._actions if a.dest == "command"][0]
    from critheory.blocks.transformer import transformer_names

    for cmd in ("analyze", "line", "point", "depth", "phase", "simulate", "validate"):
        arch = [a for a in sub.choices[cmd]._actions if a.dest == "arch"][0]
        # issue 18: the four commands with a transformer route also offer its architectures
        extra = transformer_names() if cmd in ("analyze", "depth", "simulate", "validate") \
            else ()
        assert tuple(arch.choices) == names() + extra, cmd


# ---------------------------------------------------------------- capabilities
@pytest.mark.parametrize("name, expected", [
    ("mlp", dict(affine_kernel_map=False, single_dense=True, normalized_input=False)),
    ("post-ln", dict(affine_kernel_map=True, single_dense=True, normalized_input=False)),
    ("pre-ln", dict(affine_kernel_map=True, single_dense=True, normalized_input=True)),
    ("pre-ln-mlp-block", dict(affine_kernel_map=True, single_dense=False,
                              normalized_input=True)),
])
def test_capabilities(name, expected):
    caps = network(name, "tanh", mu=0.5).capabilities
    for k, v in expected.items():
        assert getattr(caps, k) == v, k


def test_custom_composition_matches_named():
    """A network built from blocks by hand is the named architecture, for theory and simulator."""
    from critheory.activation import Activation

    act = Activation.get("tanh")
    custom = LayerMaps(Network("my-pre-ln", act, (LayerNorm(), Phi(), Dense())))
    named = architecture("pre-ln", "tanh")
    K = np.array([0.3, 2.0])
    for f in ("kernel_map", "chi_jacobian", "chi_parallel", "chi_perp"):
        assert np.array_equal(getattr(custom, f)(K, 1.4, 0.2), getattr(named, f)(K, 1.4, 0.2))
    assert analyze_point(custom, 1.4, 0.2).to_dict()["fixed_point"] == \
        analyze_point(named, 1.4, 0.2).to_dict()["fixed_point"]


def test_refuses_compositions_without_rules():
    from critheory.activation import Activation

    act = Activation.get("tanh")
    with pytest.raises(InvalidArgumentError):
        LayerMaps(Network("phi-phi", act, (Phi(), Phi(), Dense())))
    with pytest.raises(InvalidArgumentError):
        LayerMaps(Network("bad-res", act, (Residual((Dense(), Phi()), 0.5),)))
    with pytest.raises(InvalidArgumentError):
        Network("no-dense", act, (Phi(),))


# ---------------------------------------------------------------- χ_⊥ from the covariance map
@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("act", ["tanh", "gelu", "erf"])
def test_chi_perp_is_slope_of_covariance_map(name, act):
    """χ_⊥ (propagated through the block rules by Price's theorem) equals the slope of the
    covariance map ∂K'_12/∂K_12 at coincident inputs, by a one-sided difference quotient. The
    two-input expectation is accurate to ~1e-13 absolute, so a step h = 1e-4 K gives a
    truncation error O(h) ~ 1e-4 relative and a rounding error ~1e-9: tolerance 1e-3."""
    a = architecture(name, act, 0.5)
    K, sw, sb = 0.9, 1.3, 0.1
    h = 1e-4 * K
    _, k12, _ = a.covariance_map(K, K - h, K, sw, sb)
    k0 = float(a.kernel_map(K, sw, sb))
    slope = (k0 - float(k12)) / h
    chi = float(a.chi_perp(K, sw, sb))
    assert chi == pytest.approx(slope, rel=1e-3)
    # and χ_⊥ = χ_J for every block rule of this theory [DHG §2]
    assert chi == pytest.approx(float(a.chi_jacobian(K, sw, sb)), rel=1e-14)


# ---------------------------------------------------------------- one attractor rule
@pytest.mark.parametrize("name, act", [("mlp", "tanh"), ("mlp", "gelu"), ("mlp", "erf"),
                                       ("residual", "tanh"), ("post-ln", "gelu"),
                                       ("pre-ln-mlp-block", "relu")])
def test_phase_grid_agrees_with_point_analysis(name, act):
    from critheory.theory.meanfield.phase import phase_grid

    a = architecture(name, act, 0.6)
    sws, sbs, Z = phase_grid(a, (0.5, 3.5), (0.0, 1.0), n=5)
    bad = []
    for j, sb in enumerate(sbs):
        for i, sw in enumerate(sws):
            chi = analyze_point(a, sw, sb).chi_jacobian
            want = np.log(chi) if chi > 0 else np.nan
            if not (np.isclose(Z[j, i], want, rtol=1e-8, atol=1e-10)
                    or (np.isnan(want) and np.isnan(Z[j, i]))):
                bad.append((sw, sb, Z[j, i], want))
    assert not bad, bad


def test_readme_lists_the_registry():
    import re

    readme = (PKG.parent / "README.md").read_text()
    listed = re.search(r"Architectures: (.*?)\.\n", readme, re.S).group(1)
    assert tuple(re.findall(r"`([a-z-]+)`", listed)) == names()


# ---------------------------------------------------------------- one state, one fold (issue 27)
def _theories():
    from critheory.theory.finitewidth.rules import THEORY as FW
    from critheory.theory.meanfield.rules import THEORY as MF
    from critheory.theory.ntk.rules import THEORY as NTK
    from critheory.theory.transformer.rules import THEORY as TOK

    return MF, FW, NTK, TOK


def test_one_rule_signature_and_one_grammar():
    """Every theory's rules are ``rule(block, state, ctx)`` in a kind-keyed table; every theory
    reads the one grammar (the same refusal for φ after φ), and a kind a theory does not cover
    is refused in one line naming the theory and the block."""
    import inspect

    from critheory.theory.fold import GRAMMAR, check_composition

    for th in _theories():
        for kind, rule in th.rules.items():
            assert kind in GRAMMAR
            assert list(inspect.signature(rule).parameters) == ["block", "s", "ctx"], (th, kind)
    for th in _theories()[:3]:
        with pytest.raises(InvalidArgumentError, match="activation block must follow"):
            check_composition((Phi(), Phi(), Dense()), th)
        with pytest.raises(InvalidArgumentError, match="residual branch must end with a dense"):
            check_composition((Residual((Dense(), Phi())),), th)
    from critheory.blocks import Attention

    with pytest.raises(InvalidArgumentError) as e:
        check_composition((Attention(),), _theories()[1])
    assert str(e.value) == "the finite-width theory has no rule for a 'attention' block"
    from critheory.blocks import MLP

    with pytest.raises(InvalidArgumentError, match="NTK theory has no rule for a 'mlp' block"):
        check_composition((LayerNorm(), MLP()), _theories()[2])
    check_composition((LayerNorm(), Attention(), Dense(), Phi(), Dense()), _theories()[3])
    with pytest.raises(InvalidArgumentError, match="LayerNorm of an activation's output"):
        check_composition((Dense(), Phi(), LayerNorm(), Dense()), _theories()[3])


def test_one_fold_and_the_representation_enum():
    """The one fold threads the one state: the representation is an enum set by the grammar,
    a residual rule folds its branch through the same fold, and the mean-field fields of the
    finite-width and NTK runs equal the mean-field run's."""
    from critheory.theory.fold import Ctx, fold
    from critheory.theory.state import Rep, State

    MF, FW, NTK, _ = _theories()
    net = network("pre-ln-mlp-block", "gelu", mu=0.7)
    ctx = Ctx(net.activation, 1.3, 0.1, lambda_b=0.5, lambda_w=1.0)
    K = np.array([0.4, 2.0])
    assert fold((LayerNorm(), Dense(), Phi()), State.start(K), ctx, MF).rep is Rep.PHI
    assert fold((Dense(), Phi(), LayerNorm()), State.start(K), ctx, MF).rep is \
        Rep.NORMALIZED_PHI
    mf = fold(net.unit, State.start(K, tangents=True), ctx, MF)
    fw = fold(net.unit, State.start_finite_width(K, tangents=True), ctx, FW)
    nt = fold(net.unit, State(K=K, theta=np.ones(2)), ctx, NTK)
    assert np.allclose(fw.K, mf.K, rtol=1e-14) and np.array_equal(nt.K, mf.K)
    assert np.allclose(fw.dK, mf.dK, rtol=1e-12)
    assert fw.V is not None and mf.V is None and nt.theta is not None and mf.theta is None
