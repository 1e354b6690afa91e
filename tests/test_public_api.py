"""The public Python API (issue 27 item 6): ``import critheory as ct`` gives the user-facing
functions and types, lazily, each documented with a runnable example.

The examples themselves run as doctests of the modules that define the names (pytest collects
them with ``--doctest-modules``, see pyproject.toml); this file checks that every public name
resolves, is listed, is documented with a numpy-style Examples section whose code uses it, and
that ``import critheory`` loads no numpy (a fresh interpreter)."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

import critheory as ct

PUBLIC = [n for n in ct.__all__ if n != "__version__"]


def test_all_is_listed_once_and_in_dir():
    assert len(ct.__all__) == len(set(ct.__all__))
    assert set(ct.__all__) <= set(dir(ct))
    # the surface the issue names: activation, networks and blocks, mean field, finite width,
    # NTK, recipe, SDE, spectrum, simulate and the measurements, validation, the errors
    for name in ("Activation", "Network", "Dense", "Phi", "LayerNorm", "Residual", "Attention",
                 "MLP", "network", "transformer", "network_names", "analyze", "critical_points",
                 "critical_line", "universality", "depth_curves", "finite_width_curves",
                 "optimal_aspect_ratio", "network_optimal_aspect_ratio", "AspectRatio",
                 "ntk_curves", "recipe", "solve_sde", "jacobian_spectrum", "simulate",
                 "measure_ntk", "measure_finite_width", "compare", "CritheoryError"):
        assert name in ct.__all__, name


def _torch_public() -> list[str]:
    try:
        import torch  # noqa: F401 - critheory[torch]
    except ImportError:
        return []
    import critheory.torch as ctt

    return list(ctt.__all__)


@pytest.mark.parametrize("name", PUBLIC + [f"torch.{n}" for n in _torch_public()])
def test_public_name_resolves_and_is_documented(name):
    owner, _, short = name.rpartition(".")
    value = getattr(ct.torch if owner == "torch" else ct, short)
    name = short
    assert value is not None
    if inspect.ismodule(value):           # ct.torch: a package with its own __all__
        assert value.__name__ == f"critheory.{name}" and value.__all__
        return
    assert callable(value), name
    doc = inspect.getdoc(value) or ""
    assert doc.strip(), f"ct.{name} has no docstring"
    m = re.search(r"^Examples\n-{8}\n(.*?)(?:^\w[^\n]*\n-{3,}\n|\Z)", doc, re.M | re.S)
    assert m, f"ct.{name} has no numpy-style Examples section"
    example = m.group(1)
    assert ">>> " in example, f"the Examples section of ct.{name} has no example"
    # the example shows the object (by its public name, or by its own where the two differ)
    assert re.search(rf"\b({re.escape(name)}|{re.escape(value.__name__)})\b", example), \
        f"the example of ct.{name} does not use it"


@pytest.mark.parametrize("name", PUBLIC)
def test_examples_are_collected_as_doctests(name):
    """The object's module is part of the package, so ``--doctest-modules`` runs its example."""
    value = getattr(ct, name)
    module = value.__name__ if inspect.ismodule(value) else value.__module__
    assert module.startswith("critheory.")


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        ct.nonexistent  # noqa: B018
    assert not hasattr(ct, "_PUBLIC_never")


def test_import_critheory_loads_no_numpy():
    code = ("import sys, critheory as ct; assert len(ct.__all__) > 50; dir(ct); "
            "print(','.join(m for m in ('numpy', 'sympy', 'scipy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"import critheory loaded {out.stdout.strip()}"


def test_names_are_imported_on_first_access():
    code = ("import sys, critheory as ct; ct.Network; a = 'sympy' in sys.modules; "
            "ct.depth_curves; print(a, 'critheory.theory.meanfield.depth' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    # the blocks need no sympy; the theory function's module is loaded by the access itself
    assert out.stdout.split() == ["False", "True"]
