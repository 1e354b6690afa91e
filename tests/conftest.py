"""Shared fixtures: cached mpmath references (prefetched on all cores) and hypothesis settings."""
from __future__ import annotations

import multiprocessing
import os

import pytest
from hypothesis import HealthCheck, settings

from critheory.activation import zoo
from critheory.expectations.reference import mp_expect

# Property tests: few examples, no deadline (the first call of an activation builds caches).
settings.register_profile(
    "critheory", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("critheory")

REF_DPS = 30

#: The 30-digit references of the default (fast) run: E[φ²] at K = 1e-4, 1, 100 and E[φ'²],
#: E[φφ''] at K = 1 for the whole zoo. They dominate the run time (~0.1-1 s each), so the first
#: test that asks for one computes all of them in parallel.
FAST_REFS = ([(n, "phi2", K) for n in zoo.names() for K in (1e-4, 1.0, 100.0)]
             + [(n, g, 1.0) for n in zoo.names() for g in ("dphi2", "phi_d2phi")])

_CACHE: dict = {}


def _compute(key):
    name, g, K, dps = key
    return key, mp_expect(name, g, K, dps=dps)


def _prefetch(keys) -> None:
    todo = [k for k in keys if k not in _CACHE]
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else (os.cpu_count() or 1), 4)
    if len(todo) < 8 or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return   # computed lazily, one by one
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for key, val in pool.imap_unordered(_compute, todo, chunksize=2):
                _CACHE[key] = val
    except Exception:   # pragma: no cover - no worker processes here: stay serial
        pass


def mp_ref(name: str, g: str, K: float, dps: int = REF_DPS):
    """critheory.expectations.reference.mp_expect at ``dps`` digits, cached for the whole session."""
    key = (name, g, float(K), dps)
    if key not in _CACHE:
        if key in _FAST_KEYS and not _PREFETCHED:
            _PREFETCHED.append(True)
            _prefetch(sorted(_FAST_KEYS))
        if key not in _CACHE:
            _CACHE[key] = mp_expect(name, g, K, dps=dps)
    return _CACHE[key]


_FAST_KEYS = {(n, g, float(K), REF_DPS) for n, g, K in FAST_REFS}
_PREFETCHED: list = []


@pytest.fixture(scope="session")
def ref():
    return mp_ref
