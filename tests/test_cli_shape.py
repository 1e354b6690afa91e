"""The shape of the command line (issue 27 item 7): one module of shared argument helpers, one
module per command family exporting ``register``, no private imports, no import cycles, and
every limit read from the one budget module."""
from __future__ import annotations

import ast
import pathlib

import pytest

CLI = pathlib.Path(__file__).resolve().parent.parent / "critheory" / "cli"
#: modules of cli/ that are not a command family
NOT_COMMANDS = {"__init__", "main", "args"}


def _tree(name: str) -> ast.Module:
    return ast.parse((CLI / f"{name}.py").read_text())


def _modules() -> list[str]:
    return sorted(p.stem for p in CLI.glob("*.py"))


def _imports(tree: ast.Module):
    """(module, names) of every absolute import of a critheory module, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def cli_graph() -> dict[str, set[str]]:
    """cli module -> the cli modules it imports (anywhere in it, functions included)."""
    graph = {}
    for m in _modules():
        edges = set()
        for mod, names in _imports(_tree(m)):
            if mod.startswith("critheory.cli."):
                edges.add(mod.split(".")[2])
            elif mod == "critheory.cli":
                edges.update(n for n in names if n in _modules())
        graph[m] = edges - {m}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph (as a path that returns to its start), None if it is acyclic."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_find_cycle_sees_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_cli_import_graph_is_acyclic():
    g = cli_graph()
    assert "args" in g and g["args"] == set(), g["args"]     # the shared helpers import no cli
    assert not any("main" in e for m, e in g.items() if m != "__init__"), g
    assert find_cycle(g) is None, find_cycle(g)


def test_no_private_imports():
    """No cli module imports a private name (``_x``) of another module."""
    bad = []
    for m in _modules():
        for mod, names in _imports(_tree(m)):
            if mod.startswith("critheory"):
                bad += [f"{m}.py: from {mod} import {n}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
    assert not bad, bad


@pytest.mark.parametrize("name", sorted(set(p.stem for p in CLI.glob("*.py")) - NOT_COMMANDS))
def test_one_module_per_command_family_exports_register(name):
    import importlib

    mod = importlib.import_module(f"critheory.cli.{name}")
    assert callable(getattr(mod, "register", None)) or name == "transformer", name
    if name == "transformer":      # the token route of four commands: their options, no parser
        assert callable(mod.token_arguments) and callable(mod.token_network)


def test_limits_come_from_the_budget_module():
    """No cli module defines its own limit: they are named once in critheory.common.limits."""
    bad = []
    for m in _modules():
        for node in _tree(m).body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Name) and (t.id.startswith("MAX_") or "WORK" in t.id
                                                or "BUDGET" in t.id):
                    bad.append(f"{m}.py: {t.id}")
    assert not bad, bad


def test_limits_module_is_rank_0_and_complete():
    from critheory.common import limits

    tree = ast.parse(pathlib.Path(limits.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "typing"}, imported          # rank 0: imports nothing
    assert len(limits.LIMITS) > 30
    for name, lim in limits.LIMITS.items():
        assert getattr(limits, name) == lim.value and name in limits.__all__
        assert name.startswith(("MAX_", "EXACT_")) and len(lim.reason) > 20, name


def test_mu_with_token_architectures(capsys):
    """Regression: --mu was refused with --arch transformer once the token architectures joined
    the registry (their skip connections take mu); it is read off the registry's entry."""
    import json

    from critheory.cli.main import main

    base = ["depth", "relu", "--weight-var", "2", "--bias-var", "0", "--depth", "3", "--json"]
    assert main(base + ["--arch", "transformer", "--tokens", "1", "--mu", "0.5"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert main(base + ["--arch", "transformer", "--tokens", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert half["kernel"][-1] < one["kernel"][-1]          # a weaker skip: a smaller kernel
    assert main(base + ["--arch", "mlp", "--mu", "0.5"]) == 2
    assert "residual architectures only" in capsys.readouterr().err
