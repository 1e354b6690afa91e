"""The core package and its test suite need none of the optional extras.

Each check runs in a fresh interpreter in which ``torch``, ``dask``, ``distributed``, ``xarray``
and ``zarr`` cannot be imported (an import hook refuses them, as on a machine where the extras
are not installed): every module of the core imports, and the whole test suite (tests and
doctests) is collected without an error.
"""
from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "critheory"

#: what the extras bring (critheory[torch], critheory[sweep])
OPTIONAL = ("torch", "dask", "distributed", "xarray", "zarr")
#: the only places that may import them at module level
OPTIONAL_HOMES = ("critheory.torch", "critheory.sweep")

_BLOCK = f"""
import importlib.abc, sys

class _NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)",
                                      name=name)
        return None

sys.meta_path.insert(0, _NoExtras())
"""


def _run(code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(_BLOCK) + textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def _core_modules() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if mod.endswith(".__main__") or mod.startswith(OPTIONAL_HOMES):
            continue
        out.append(mod.removesuffix(".__init__"))
    return out


def test_the_block_works():
    p = _run("import torch\n")
    assert p.returncode != 0 and "blocked by the test" in p.stderr


def test_core_imports_without_extras():
    mods = _core_modules()
    assert len(mods) > 50
    p = _run(f"""
        import importlib
        for m in {mods!r}:
            importlib.import_module(m)
        print("imported", len({mods!r}))
        """)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"imported {len(mods)}" in p.stdout


def test_suite_collects_without_extras():
    p = _run("""
        import sys
        import pytest
        sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider"]))
        """)
    tail = (p.stdout + p.stderr)[-3000:]
    assert p.returncode == 0, tail
    assert "error" not in p.stdout.splitlines()[-1].lower(), tail
