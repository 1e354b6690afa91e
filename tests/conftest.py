"""Shared fixtures: mpmath references (frozen for the fast run, live for the slow one),
per-point failure reports and hypothesis settings."""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import pathlib
import shutil
import tempfile

import mpmath
import pytest
from hypothesis import HealthCheck, settings

# The zoo cache (critheory.activation.cache) of this test session lives in a folder of its
# own, empty at the start: the tests never read what an earlier run or the user's own commands
# left in the user cache directory, and never write there (subprocesses inherit the variable).
_ZOO_CACHE_DIR = tempfile.mkdtemp(prefix="critheory-test-cache-")
os.environ["CRITHEORY_CACHE_DIR"] = _ZOO_CACHE_DIR


def pytest_unconfigure(config):
    shutil.rmtree(_ZOO_CACHE_DIR, ignore_errors=True)


# Property tests: few examples, no deadline (the first call of an activation builds caches).
settings.register_profile(
    "critheory", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("critheory")

REF_DPS = 30
DATA = pathlib.Path(__file__).resolve().parent / "data"
REFERENCES = DATA / "mpmath_references.json"

_spec = importlib.util.spec_from_file_location("generate_references",
                                               DATA / "generate_references.py")
generate_references = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_references)


# ---------------------------------------------------------------------- mpmath references
class FrozenReferences:
    """The values of tests/data/mpmath_references.json, keyed ``(kind, *args)`` exactly like
    the live call (``generate_references.key``). A key the file lacks is an error naming the
    generator, never a silent live computation."""

    def __init__(self, path: pathlib.Path = REFERENCES):
        self.path = path
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            pytest.fail(f"{path} is missing: run `{generate_references.SCRIPT}`", pytrace=False)
        self.header = {k: v for k, v in doc.items() if k != "entries"}
        self.entries = doc["entries"]
        self._values = {}
        for e in self.entries:
            k = generate_references.key(e["kind"], *e["args"].values())
            self._values[k] = generate_references.decode(e["value"], e["type"])

    def key(self, entry: dict) -> tuple:
        return generate_references.key(entry["kind"], *entry["args"].values())

    @staticmethod
    def compute(kind: str, *args):
        """The reference computed now, by the routine that produced the frozen value."""
        return generate_references.compute(kind, *args)

    def __call__(self, kind: str, *args):
        k = generate_references.key(kind, *args)
        try:
            return self._values[k]
        except KeyError:
            pytest.fail(f"no frozen mpmath reference {k} in {self.path.name}: add it to "
                        f"entries() in {generate_references.SCRIPT} and rerun `python "
                        f"{generate_references.SCRIPT} --jobs N`", pytrace=False)


_LIVE: dict = {}


def live_reference(kind: str, *args):
    """The reference computed now (cached for the session): what the slow tests use."""
    k = generate_references.key(kind, *args)
    if k not in _LIVE:
        _LIVE[k] = generate_references.compute(*k)
    return _LIVE[k]


@pytest.fixture(scope="session")
def frozen_references() -> FrozenReferences:
    return FrozenReferences()


@pytest.fixture
def reference(request, frozen_references):
    """``reference(kind, *args)``: frozen in the default run; a test marked ``slow`` (or a
    ``slow`` parameter of one) computes it live instead, so the slow run does not depend on
    the frozen file."""
    if request.node.get_closest_marker("slow") is not None:
        return live_reference
    return frozen_references


@pytest.fixture
def ref(reference):
    """``ref(name, g, K, dps=30)``: E_K[g] by critheory.expectations.reference.mp_expect."""
    def get(name: str, g: str, K: float, dps: int = REF_DPS) -> mpmath.mpf:
        return reference("mp_expect", name, g, K, dps)
    return get


# ---------------------------------------------------------------------- per-point reports
class _Points:
    def __init__(self):
        self.bad: list = []
        self.n = 0

    @contextlib.contextmanager
    def at(self, **point):
        """Checks of one data point: a failed assertion is recorded, not raised."""
        self.n += 1
        try:
            yield
        except AssertionError as exc:
            msg = " ".join(str(exc).split("\n")[0].split())[:300]
            self.bad.append(", ".join(f"{k}={v!r}" for k, v in point.items()) + f": {msg}")


@pytest.fixture
def every_point():
    """scipy FuncData-style reporting for tests that loop over reference points::

        with every_point() as pts:
            for K in Ks:
                with pts.at(K=K):
                    assert ...

    checks every point and then fails once, listing each point that failed."""
    @contextlib.contextmanager
    def run():
        pts = _Points()
        yield pts
        if pts.bad:
            raise AssertionError(f"{len(pts.bad)} of {pts.n} points failed:\n  "
                                 + "\n  ".join(pts.bad))
    return run


# ---------------------------------------------------------------------- notebooks
NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


@functools.lru_cache(maxsize=None)
def _refresh_notebooks():
    """``docs/refresh_notebooks.py`` as a module (loaded on first use: it needs nbclient)."""
    spec = importlib.util.spec_from_file_location(
        "refresh_notebooks", NOTEBOOKS.parent / "docs" / "refresh_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def run_notebook():
    """``run_notebook(name)``: execute ``notebooks/<name>`` top to bottom in a fresh Jupyter
    kernel (nbclient + ipykernel, as a reader running all cells would) and return its global
    names (``docs/refresh_notebooks.py``'s ``namespace``: values pickled in the kernel, a
    dataclass that does not pickle as its fields, modules re-imported)."""
    def run(name: str) -> dict:
        return _refresh_notebooks().namespace(NOTEBOOKS / name)
    return run


@pytest.fixture(scope="session")
def notebook_tools():
    """``docs/refresh_notebooks.py`` as a module (source hashes, the metadata key)."""
    return _refresh_notebooks()
