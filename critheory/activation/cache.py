"""The zoo cache: what the symbolic analysis derives for the built-in activations, precomputed.

Every run of a command on a zoo activation used to re-derive the same things with sympy
(importing sympy alone takes ~0.8 s, the derivation 0.1-0.5 s more): φ', φ'', the numpy and
mpmath sources that ``lambdify`` prints for φ, its derivatives and the named integrands (φ², φ'²,
φφ'', ...), the breakpoints, jumps, parity, growth rates, closed-form data, Taylor coefficients
and the float64 noise tables of the integrands. The generator
:mod:`critheory.expectations.build_zoo_cache` (in ``expectations``, since it derives integrand
data too: imports go one way, activation < expectations) derives them with the live code and
writes them into the package ``critheory.activation._zoo_data`` (one module per activation,
default parameters only); a zoo activation is then built from that data without importing sympy,
and its sympy expression is rebuilt only if something asks for it.

What is cached is exactly what the live code computes, and the cached functions are the very
sources lambdify printed, executed with the same namespace objects: results are bit-identical
with and without the cache (``CRITHEORY_NO_ZOO_CACHE=1`` turns it off; the tests compare both).

Invalidation (checked once per process; a stale part is ignored, never half-used):

* the **symbolic** part (everything but the noise tables) is used only if its key matches: the
  data format, the critheory version, a SHA-256 of the source files that derive the data
  (:data:`HASHED_SOURCES`: symbolic.py, features.py, zoo.py, integrands.py, closed_forms.py, this module and
  the generator) and the installed versions of sympy and mpmath; an entry is used only if the
  zoo formula and default parameters it was derived from are the current ones;
* the **float64 noise tables** and the Gaussian octave masses of
  :class:`~critheory.expectations.integrands.Float64Noise` are measurements of float64
  arithmetic, so they are used only on the platform they were measured on as well: numpy and
  scipy versions, the CPU features numpy dispatches on, the C library; elsewhere they are
  measured again at first use (as without the cache) with the cached mpmath sources.

After editing one of :data:`HASHED_SOURCES` or the zoo, regenerate (the test suite fails until
then)::

    python -m critheory.expectations.build_zoo_cache
"""
from __future__ import annotations

import binascii
import importlib
import os
import re
import sys

import numpy as np

__all__ = ["entry", "status", "reset", "on_reset", "noise_mass", "HASHED_SOURCES", "FORMAT"]

#: Version of the data layout written by the generator.
FORMAT = 1

#: Source files (relative to the critheory package) whose code derives the cached data.
HASHED_SOURCES = (
    "activation/symbolic.py",
    "activation/zoo.py",
    "activation/cache.py",
    "activation/features.py",
    "expectations/build_zoo_cache.py",
    "expectations/integrands.py",
    "expectations/closed_forms.py",
)

#: Set to turn the cache off in this process (the environment variable does it for a process).
DISABLED = os.environ.get("CRITHEORY_NO_ZOO_CACHE", "") not in ("", "0")

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STATE: dict = {}


# ---------------------------------------------------------------------- keys
def _sha256():
    # the builtin module, not hashlib: importing hashlib loads OpenSSL (~5 ms at start-up)
    for modname in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(modname).sha256()
        except (ImportError, AttributeError):
            pass
    import hashlib

    return hashlib.sha256()


def source_hash() -> str:
    """SHA-256 of :data:`HASHED_SOURCES` (line endings normalized); '' if one is missing."""
    h = _sha256()
    for rel in HASHED_SOURCES:
        try:
            with open(os.path.join(_PKG, *rel.split("/")), "rb") as fh:
                data = fh.read()
        except OSError:
            return ""
        h.update(rel.encode() + b"\0" + data.replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


_DIST_RE: dict = {}


def dist_version(name: str) -> str:
    """Installed version of the distribution ``name``, read from the name of its ``.dist-info``
    (or ``.egg-info``) folder beside the package, without importing it (importing
    ``importlib.metadata`` alone takes ~50 ms); '' if not found."""
    try:
        import importlib.util

        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return ""
    if spec is None:
        return ""
    locs = list(spec.submodule_search_locations or [])
    where = locs[0] if locs else (spec.origin or "")
    site = os.path.dirname(os.path.abspath(where))
    try:
        entries = os.listdir(site)
    except OSError:
        return ""
    pat = re.compile(r"^" + re.escape(name).replace("_", "[-_.]") + r"-([^-]+?)\.(dist|egg)-info$",
                     re.IGNORECASE)
    found = sorted(m.group(1) for m in map(pat.match, entries) if m)
    return found[-1] if len(found) == 1 else ""


def symbolic_key() -> dict:
    """What the symbolic part of the cache depends on (see the module docstring)."""
    import critheory

    return {"format": FORMAT, "critheory": critheory.__version__, "sources": source_hash(),
            "sympy": dist_version("sympy"), "mpmath": dist_version("mpmath")}


def _cpu_features() -> str:
    for modname in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        mod = sys.modules.get(modname)
        if mod is None:
            try:
                mod = importlib.import_module(modname)
            except ImportError:
                continue
        feats = getattr(mod, "__cpu_features__", None)
        if isinstance(feats, dict):
            return ",".join(sorted(k for k, v in feats.items() if v))
    return ""


def numeric_key() -> dict:
    """What the float64 measurements of the cache depend on (see the module docstring)."""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    machine = os.uname().machine if hasattr(os, "uname") else ""
    cpu = _cpu_features()
    return {"numpy": np.__version__, "scipy": dist_version("scipy"),
            "mpmath": dist_version("mpmath"), "platform": f"{sys.platform}-{machine}",
            "libc": libc,
            "cpu": _cpu_digest(cpu)}


def _cpu_digest(cpu: str) -> str:
    if not cpu:
        return ""
    h = _sha256()
    h.update(cpu.encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------- state
def _data_package():
    try:
        return importlib.import_module("critheory.activation._zoo_data")
    except ImportError:
        return None


def _check() -> dict:
    """Load the index and compare the keys (once per process)."""
    if _STATE:
        return _STATE
    st = {"symbolic": False, "numeric": False, "reason": "", "index": {}, "mismatch": []}
    pkg = None if DISABLED else _data_package()
    if DISABLED:
        st["reason"] = "disabled (CRITHEORY_NO_ZOO_CACHE)"
    elif pkg is None:
        st["reason"] = "no cache data (run python -m critheory.expectations.build_zoo_cache)"
    else:
        want = getattr(pkg, "SYMBOLIC_KEY", None)
        have = symbolic_key()
        if want != have or not all(have.values()):
            bad = sorted(k for k in have if (want or {}).get(k) != have[k] or not have[k])
            st["mismatch"] = bad
            if set(bad) <= {"sympy", "mpmath"}:
                st["reason"] = "generated with " + ", ".join(
                    f"{k} {(want or {}).get(k) or '?'}" for k in bad) + "; installed: " + \
                    ", ".join(f"{k} {have[k] or '?'}" for k in bad)
            else:
                st["reason"] = ("stale: " + ", ".join(bad) + " changed"
                                " (run python -m critheory.expectations.build_zoo_cache)")
        else:
            st["symbolic"] = True
            st["index"] = dict(pkg.INDEX)
            st["numeric_key"] = pkg.NUMERIC_KEY
    _STATE.update(st)
    return _STATE


def _numeric_ok() -> bool:
    st = _check()
    if "numeric_ok" not in st:
        have = numeric_key()
        st["numeric_ok"] = bool(st["symbolic"]) and st.get("numeric_key") == have and all(
            have.values())
    return st["numeric_ok"]


def status() -> dict:
    """Whether the cache is used in this process, and why not: ``{"symbolic": bool,
    "numeric": bool, "reason": str, "mismatch": [key fields that differ], "entries":
    [names]}``. A mismatch of ``sources`` (or ``format``, ``critheory``) means the cache is
    stale; of ``sympy``/``mpmath`` only that another version is installed than the one the
    cache was generated with."""
    st = _check()
    return {"symbolic": st["symbolic"], "numeric": _numeric_ok() if st["symbolic"] else False,
            "reason": st["reason"], "mismatch": list(st["mismatch"]),
            "entries": sorted(st["index"])}


_ON_RESET: list = []


def on_reset(fn) -> None:
    """Call ``fn()`` at every :func:`reset` (modules that memoize what they took from the cache
    register here)."""
    _ON_RESET.append(fn)


def reset() -> None:
    """Forget the checks and loaded entries (tests; after regenerating the data; after setting
    :data:`DISABLED`)."""
    _STATE.clear()
    _ENTRIES.clear()
    _MASS.clear()
    for fn in _ON_RESET:
        fn()


# ---------------------------------------------------------------------- entries
_ENTRIES: dict = {}


def entry(name: str) -> "ZooEntry | None":
    """The cached data of the zoo activation ``name`` with default parameters, or None (no
    cache, stale cache, or the zoo entry changed)."""
    if name in _ENTRIES:
        return _ENTRIES[name]
    out = None
    st = _check()
    if st["symbolic"] and name in st["index"]:
        from critheory.activation.zoo import ZOO

        formula, defaults = ZOO.get(name, (None, None))
        if (formula, dict(defaults or {})) == tuple(st["index"][name][:2]):
            try:
                mod = importlib.import_module(f"critheory.activation._zoo_data.{name}")
                data = mod.DATA
            except (ImportError, AttributeError):
                data = None
            if data is not None and data.get("formula") == formula:
                out = ZooEntry(name, data)
    _ENTRIES[name] = out
    return out


def _decode(b64: str, shape) -> np.ndarray:
    arr = np.frombuffer(binascii.a2b_base64(b64), dtype="<f8").astype(float).reshape(shape)
    arr.setflags(write=False)
    return arr


def encode(arr) -> str:
    """float64 array -> base64 of its little-endian bytes (exact, NaN and inf included)."""
    return binascii.b2a_base64(np.ascontiguousarray(arr, dtype="<f8").tobytes(),
                               newline=False).decode("ascii")


_MASS: list = []


def noise_mass():
    """The Gaussian octave masses of Float64Noise (a constant matrix computed with
    ``scipy.special.erfc``), or None where the numeric part of the cache does not apply."""
    if not _MASS:
        m = None
        if _numeric_ok():
            pkg = _data_package()
            m = _decode(pkg.NOISE_MASS, pkg.NOISE_MASS_SHAPE)
        _MASS.append(m)
    return _MASS[0]


def _resolve(where: str, attr: str):
    if where == "builtins":
        import builtins

        return getattr(builtins, attr)
    return getattr(importlib.import_module(where), attr)


def compile_source(src: dict, label: str):
    """The function that lambdify printed as ``src["code"]``, in a namespace rebuilt from
    ``src["names"]`` (name -> (module, attribute): only what the code uses is imported, e.g.
    scipy.special for erf)."""
    ns = {}
    for name, (where, attr) in src["names"].items():
        if where != "builtins":
            ns[name] = _resolve(where, attr)
    code = compile(src["code"], f"<critheory zoo cache: {label}>", "exec")
    exec(code, ns)  # noqa: S102 - our own generated source (critheory.activation._zoo_data)
    return ns[src["func"]]


class ZooEntry:
    """Cached data of one zoo activation (see the module docstring); the functions are compiled
    on first use."""

    def __init__(self, name: str, data: dict):
        self.name = name
        self.data = data
        self.sources = data["sources"]
        self.integrands = data["integrands"]
        self._fns: dict = {}

    def function(self, sid: int, label: str):
        fn = self._fns.get(sid)
        if fn is None:
            fn = self._fns[sid] = compile_source(self.sources[sid], f"{self.name}: {label}")
        return fn

    def expr(self):
        """The sympy expression of φ (imports sympy)."""
        from critheory.activation.symbolic import _from_srepr

        return _from_srepr(self.data["expr_srepr"])

    def taylor(self):
        from critheory.activation.symbolic import TaylorInfo, _from_srepr

        derivs, reason = self.data["taylor"]
        if derivs is None:
            return TaylorInfo(None, reason)
        return TaylorInfo(tuple(_from_srepr(s) for s in derivs), reason)

    def noise_table(self, integrand: str):
        """The float64 noise table of a named integrand (2 x octaves), or None."""
        it = self.integrands.get(integrand)
        if it is None or it.get("noise") is None or not _numeric_ok():
            return None
        return _decode(it["noise"], it["noise_shape"])
