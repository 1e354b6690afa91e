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


def _package(path: pathlib.Path, root: pathlib.Path = PKG) -> str:
    rel = path.relative_to(root).parts
    return rel[0].removesuffix(".py") if rel else ""


def import_violations(root: pathlib.Path = PKG) -> list[str]:
    """Imports of the package under ``root`` against the one-way rule."""
    bad = []
    for path in root.rglob("*.py"):
        own = _package(path, root)
        if own in ("__init__", "__main__"):
            continue
        for target in _imports(path):
            if own == "simulation":
                if target not in SIMULATION_MAY_IMPORT:
                    bad.append(f"{path.relative_to(root)} imports critheory.{target}")
            elif target == "simulation":
                if RANK.get(own, -1) < RANK["validation"]:
                    bad.append(f"{path.relative_to(root)} imports the simulator")
            elif target in RANK and own in RANK and RANK[target] > RANK[own]:
                bad.append(f"{path.relative_to(root)} ({own}) imports critheory.{target}")
    return bad


def test_import_rules():
    bad = import_violations()
    assert not bad, "imports against the one-way rule:\n" + "\n".join(bad)


def test_import_rules_see_violations(tmp_path):
    # a probe in a package of the same layout in a temporary folder: the real package is never
    # written to (a probe there failed test_import_rules when pytest-xdist ran both at once)
    f = tmp_path / "critheory" / "theory" / "_probe_for_test.py"
    f.parent.mkdir(parents=True)
    f.write_text("from critheory.cli.main import main\n")
    assert import_violations(tmp_path / "critheory") == \
        ["theory/_probe_for_test.py (theory) imports critheory.cli"]


#: where names and block types may be looked at: the registry (names -> blocks), the blocks
#: themselves (capabilities), the torch reader (PyTorch modules -> blocks), the command line
#: (names are resolved there, once) and the naive explicit-Jacobian reference of the simulator
NAME_DISPATCH_ALLOWED = ("blocks/", "torch/read.py", "cli/", "simulation/naive.py")
BLOCK_CLASSES = {"Block", "Dense", "Phi", "LayerNorm", "RMSNorm", "Residual", "Attention", "MLP"}


def name_dispatch(path: pathlib.Path, root: pathlib.Path = PKG) -> list[str]:
    """``file:line`` of every decision by an architecture name or a block's class in a module:
    a comparison (``==``, ``!=``, ``in``) of a string that names a registry architecture (an
    alias or a deprecated spelling included), a comparison of a block's ``kind`` with a string,
    and ``isinstance`` against a block class."""
    import critheory.blocks as blocks
    from critheory.blocks.registry import DEPRECATED, REGISTRY, canonical

    kinds = {getattr(blocks, c).kind for c in BLOCK_CLASSES} - {""}
    arch_names = set(REGISTRY) | set(DEPRECATED) | {"tarnowski-resnet"}
    for spec in REGISTRY.values():
        arch_names |= set(spec.aliases)
    assert all(canonical(a) for a in REGISTRY)
    rel = path.relative_to(root)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            strings = set()
            for v in sides:
                elts = v.elts if isinstance(v, (ast.Tuple, ast.List, ast.Set)) else [v]
                strings |= {e.value for e in elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            kind_side = any(isinstance(v, ast.Attribute) and v.attr == "kind" for v in sides)
            if (strings & kinds and kind_side) or (strings & arch_names and not kind_side):
                out.append(f"{rel}:{node.lineno}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "isinstance" and len(node.args) == 2):
            t = node.args[1]
            names = {e.id if isinstance(e, ast.Name) else getattr(e, "attr", "")
                     for e in (t.elts if isinstance(t, ast.Tuple) else [t])}
            if names & BLOCK_CLASSES:
                out.append(f"{rel}:{node.lineno}")
    return out


def test_no_dispatch_on_architecture_or_block_names():
    """Issue 27: outside the registry, the blocks, the torch reader and the command line, no
    code decides by an architecture's name or a block's class: it asks capabilities (or a
    block's class-level facts: ``weighted``, ``matrices``, ``normalizes``, ``mixes_tokens``),
    and each theory dispatches its rules by a kind-keyed table (``theory/fold.py``)."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = str(path.relative_to(PKG))
        if not rel.startswith(NAME_DISPATCH_ALLOWED):
            bad += name_dispatch(path)
    assert not bad, bad


def test_name_dispatch_check_sees_violations(tmp_path):
    probe = tmp_path / "critheory" / "theory" / "_probe_for_dispatch_test.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f(net, b, a):\n"
                     "    x = net.name == 'pre-ln'\n"
                     "    y = b.kind == 'phi'\n"
                     "    z = isinstance(a, Residual)\n"
                     "    ok = a.method == 'dense'\n")
    assert len(name_dispatch(probe, tmp_path / "critheory")) == 3


def test_one_registry():
    # one registry: the one-token and the token architectures are its entries
    # by default the names every theory covers; an entry that states the only theories that
    # cover it (Tarnowski's unit: the spectra) is listed for those
    assert names(tokens=None) == tuple(n for n, s in REGISTRY.items() if s.theories is None)
    assert set(names()) | set(names(tokens=True)) | set(names(theory="spectra")) == \
        set(REGISTRY)
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
    # the CLI choices are the registry's: the commands with a token route offer every name
    sub = [a for a in build_parser()._actions if a.dest == "command"][0]
    for cmd in ("analyze", "line", "point", "depth", "phase", "simulate", "validate", "ntk",
                "finite-width", "sweep"):
        arch = [a for a in sub.choices[cmd]._actions if a.dest == "arch"][0]
        tokens = cmd in ("analyze", "depth", "simulate", "validate")
        assert tuple(arch.choices) == names(tokens=None if tokens else False), cmd


def test_registry_statements_of_coverage_hold():
    """An entry's ``theories`` statement is what the rules do: the one-token theories read every
    entry that states no restriction, and refuse (one line, naming the rule) the ones that
    state other theories (Tarnowski's unit: the spectra only)."""
    from critheory.theory.finitewidth.rules import THEORY as FW
    from critheory.theory.fold import check_composition
    from critheory.theory.meanfield.rules import THEORY as MF
    from critheory.theory.ntk.rules import THEORY as NTK

    restricted = 0
    for spec in REGISTRY.values():
        if spec.token:
            continue
        unit = spec.unit(1.0)
        for theory in (MF, FW, NTK):
            if spec.covered_by(theory.name):
                check_composition(unit, theory)
            else:
                restricted += 1
                with pytest.raises(InvalidArgumentError,
                                   match=f"^the {theory.name} theory has no rule for") as e:
                    check_composition(unit, theory)
                assert "\n" not in str(e.value)
    assert restricted == 3


def test_cli_routes_by_network_not_name():
    """The token route is chosen by what the network is (one helper), and no CLI module
    compares --arch with a name or keeps its own copy of the registry's names."""
    from critheory.blocks.registry import network
    from critheory.cli.args import takes_tokens

    assert takes_tokens(network("transformer", "relu", tokens=1))      # attention, T = 1
    assert takes_tokens(network("mlp", "relu", tokens=3))              # several tokens
    assert not takes_tokens(network("pre-ln-mlp-block", "relu"))
    hand = Network("my-transformer", network("transformer", "relu").activation,
                   network("transformer", "relu").unit, 2)
    assert takes_tokens(hand)
    bad = []
    for path in (PKG / "cli").glob("*.py"):
        text = path.read_text()
        for needle in ("args.arch ==", "args.arch in", "arch in NAMES", '"transformer-post-ln")',
                       "transformer_names", "ARCHS"):
            if needle in text:
                bad.append(f"{path.name}: {needle}")
    assert not bad, bad


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


# ------------------------------------------------------------- no private names across modules
def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: pathlib.Path, root: pathlib.Path) -> tuple[str, bool]:
    """Dotted module name of a file of the package, and whether it is a package ``__init__``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


def _is_module(dotted: str, root: pathlib.Path) -> bool:
    p = root.parent.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def private_imports(path: pathlib.Path, root: pathlib.Path = PKG) -> list[str]:
    """``critheory.<module>.<_name>`` for every private name (a leading underscore, dunders
    excepted) that the file takes from another critheory module: ``from critheory.x import _y``
    (relative imports too), and ``m._y`` / ``critheory.x._y`` where ``m`` is bound to a
    critheory module by an import. A private *module* (``_util.py``) may be imported inside its
    own package."""
    me, is_pkg = _module_of(path, root)
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}          # local name -> dotted critheory module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod != "critheory" and not mod.startswith("critheory."):
                continue
            for a in node.names:
                full = f"{mod}.{a.name}"
                if _is_module(full, root):
                    aliases[a.asname or a.name] = full
                    if _is_private(a.name) and not me.startswith(mod + "."):
                        found.append(full)
                elif _is_private(a.name) and mod != me:
                    found.append(full)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "critheory" or a.name.startswith("critheory."):
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["critheory"] = "critheory"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain, v = [], node.value
            while isinstance(v, ast.Attribute):
                chain.append(v.attr)
                v = v.value
            if isinstance(v, ast.Name) and v.id in aliases:
                mod = ".".join([aliases[v.id]] + chain[::-1])
                if mod != me and _is_module(mod, root):
                    found.append(f"{mod}.{node.attr}")
    return sorted(set(found))


# Known exceptions as (file under critheory/, the private name it takes): none since issue 27.
# An entry that no longer occurs fails the test too, so the list cannot go stale.
PRIVATE_IMPORT_ALLOWLIST: set = set()


def test_no_private_imports_across_modules():
    seen = {(str(path.relative_to(PKG)), name) for path in PKG.rglob("*.py")
            for name in private_imports(path)}
    bad = sorted(seen - PRIVATE_IMPORT_ALLOWLIST)
    assert not bad, "private names imported from another module (make them public names of " \
        "the module that owns them):\n" + "\n".join(f"{f}: {n}" for f, n in bad)
    stale = sorted(PRIVATE_IMPORT_ALLOWLIST - seen)
    assert not stale, "allowlisted private imports that no longer occur (remove them from " \
        "PRIVATE_IMPORT_ALLOWLIST):\n" + "\n".join(f"{f}: {n}" for f, n in stale)


@pytest.mark.parametrize("source, expected", [
    ("from critheory.expectations.closed_forms import _x\n",
     ["critheory.expectations.closed_forms._x"]),
    ("from .sde import _y, z\n", ["critheory.theory._probe_pkg.sde._y"]),
    ("import critheory.activation.symbolic as s\ns._z()\n", ["critheory.activation.symbolic._z"]),
    ("from critheory.activation import symbolic\nsymbolic._z\n",
     ["critheory.activation.symbolic._z"]),
    ("import critheory.activation.zoo\ncritheory.activation.zoo._w\n",
     ["critheory.activation.zoo._w"]),
    ("from critheory.simulation import _util\n", ["critheory.simulation._util"]),
    ("from critheory.theory._probe_pkg import _util\n", []),   # a private module of its package
    ("from critheory.errors import __all__\nx._private\n", []),  # a dunder; an unbound name
])
def test_private_imports_seen(source, expected, tmp_path):
    # a package of the same layout in a temporary folder (the real one is never written to)
    root = tmp_path / "critheory"
    for name in ("__init__.py", "errors.py", "expectations/__init__.py",
                 "expectations/closed_forms.py", "activation/__init__.py", "activation/symbolic.py",
                 "activation/zoo.py", "simulation/__init__.py", "simulation/_util.py",
                 "theory/__init__.py", "theory/_probe_pkg/__init__.py", "theory/_probe_pkg/sde.py",
                 "theory/_probe_pkg/_util.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    f = root / "theory" / "_probe_pkg" / "probe.py"
    f.write_text(source)
    assert private_imports(f, root) == expected


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
