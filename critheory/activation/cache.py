"""The zoo cache: what the symbolic analysis derives for the built-in activations, kept per machine.

Every run of a command on a zoo activation would re-derive the same things with sympy
(importing sympy alone takes ~0.8 s, the derivation 0.1-1.4 s more): φ', φ'', the numpy and
mpmath sources that ``lambdify`` prints for φ, its derivatives and the named integrands (φ², φ'²,
φφ'', ...), the breakpoints, jumps, parity, growth rates, closed-form data, Taylor coefficients
and the float64 noise tables of the integrands. The generator
:mod:`critheory.expectations.build_zoo_cache` (in ``expectations``, since it derives integrand
data too: imports go one way, activation < expectations) derives them with the live code and
writes them, one file per activation, into a folder of the **user cache directory**
(:func:`directory`); a zoo activation is then built from that data without importing sympy, and
its sympy expression is rebuilt only if something asks for it.

Nothing of it is shipped with the package: part of the data are measurements of this machine's
float64 arithmetic (the noise tables depend on the CPU features numpy dispatches on, the C
library, numpy and scipy), and the printed sources depend on the sympy version. The folder's
name is a digest of everything the data depend on (:func:`key`), so a machine, an upgrade of a
library or an edit of the deriving code gets a folder of its own, filled on first use: the
command line derives and stores the entry of a zoo activation the first time a command uses it
(about 1 s, once), and ``python -m critheory.expectations.build_zoo_cache`` fills the whole zoo.

What is cached is exactly what the live code computes on this machine, and the cached functions
are the very sources lambdify printed, executed with the same namespace objects: results are
bit-identical with and without the cache (``CRITHEORY_NO_ZOO_CACHE=1`` turns it off; the tests
compare both). A file that cannot be read back (deleted, truncated, edited, written by another
version) is ignored and written anew; a folder that cannot be written leaves the live path,
with one line on standard error from the command line.

The directory: ``$CRITHEORY_CACHE_DIR`` if set, else the platform's convention
(``$XDG_CACHE_HOME/critheory`` or ``~/.cache/critheory`` on Linux and other Unix systems,
``~/Library/Caches/critheory`` on macOS, ``%LOCALAPPDATA%\\critheory\\Cache`` on Windows).
"""
from __future__ import annotations

import binascii
import importlib
import os
import re
import sys

import numpy as np

__all__ = ["entry", "status", "enabled", "reset", "on_reset", "noise_mass", "store", "directory",
           "base_directory", "key", "HASHED_SOURCES", "FORMAT"]

#: Version of the data layout written by the generator.
FORMAT = 2

#: Source files (relative to the critheory package) whose code derives the cached data.
HASHED_SOURCES = (
    "activation/symbolic.py",
    "activation/expressions.py",
    "activation/formula.py",
    "activation/analysis.py",
    "activation/numeric.py",
    "activation/wide.py",
    "activation/serialize.py",
    "activation/budget.py",
    "activation/_lazy.py",
    "activation/zoo.py",
    "activation/cache.py",
    "activation/features.py",
    "expectations/build_zoo_cache.py",
    "expectations/integrands.py",
    "expectations/closed_forms.py",
    "expectations/poincare.py",
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


# ---------------------------------------------------------------------- where
def base_directory() -> str:
    """The user cache directory of critheory (see the module docstring); not created here."""
    env = os.environ.get("CRITHEORY_CACHE_DIR", "")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(root, "critheory", "Cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "critheory")
    root = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(root):
        root = os.path.join(home, ".cache")
    return os.path.join(root, "critheory")


def key() -> dict:
    """Everything the cached data depend on: :func:`symbolic_key`, :func:`numeric_key` and the
    Python implementation and version."""
    impl = getattr(sys, "implementation", None)
    return {**symbolic_key(), **numeric_key(),
            "python": f"{getattr(impl, 'name', '')}-{sys.version_info[0]}.{sys.version_info[1]}"}


def _digest(k: dict) -> str:
    h = _sha256()
    h.update(repr(sorted(k.items())).encode())
    return h.hexdigest()[:16]


def directory() -> str:
    """The folder of this machine's zoo cache: ``<base_directory()>/zoo-<FORMAT>-<digest of
    key()>``."""
    st = _check()
    return st["directory"]


# ---------------------------------------------------------------------- state
def _check() -> dict:
    """The key and the folder (once per process)."""
    if _STATE:
        return _STATE
    st: dict = {"reason": "", "directory": "", "key": None}
    if DISABLED:
        st["reason"] = "disabled (CRITHEORY_NO_ZOO_CACHE)"
    else:
        k = key()
        # the C library and CPU features may be unreadable on some platforms (then the platform
        # string and the library versions stand for them); the rest must be known
        missing = sorted(f for f, v in k.items() if not v and f not in ("libc", "cpu"))
        if missing:
            st["reason"] = ("what the data depend on cannot be read here: " + ", ".join(missing)
                            + " (the live path is used)")
        else:
            st["key"] = k
            st["directory"] = os.path.join(base_directory(), f"zoo-{FORMAT}-{_digest(k)}")
    _STATE.update(st)
    return _STATE


def enabled() -> bool:
    """Whether this process reads and writes the zoo cache."""
    return _check()["key"] is not None


def status() -> dict:
    """Whether the cache is used in this process and which entries it holds: ``{"enabled":
    bool, "directory": str, "reason": str (why not enabled), "entries": [names]}``."""
    st = _check()
    entries: list = []
    if st["key"] is not None:
        from critheory.activation.zoo import ZOO

        entries = sorted(n for n in ZOO if entry(n) is not None)
    return {"enabled": st["key"] is not None, "directory": st["directory"],
            "reason": st["reason"], "entries": entries}


_ON_RESET: list = []


def on_reset(fn) -> None:
    """Call ``fn()`` at every :func:`reset` (modules that memoize what they took from the cache
    register here; registering the same function again does nothing)."""
    if fn not in _ON_RESET:
        _ON_RESET.append(fn)


def reset() -> None:
    """Forget the checks and loaded entries (tests; after writing entries; after setting
    :data:`DISABLED`)."""
    _STATE.clear()
    _ENTRIES.clear()
    _MASS.clear()
    for fn in _ON_RESET:
        fn()


# ---------------------------------------------------------------------- files
def _read(filename: str):
    """The ``DATA`` of a file of the cache folder, or None (absent, unreadable, or written for
    another key)."""
    st = _check()
    if st["key"] is None:
        return None
    path = os.path.join(st["directory"], filename)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        ns = {"__builtins__": {"complex": complex, "float": float}}
        exec(compile(text, path, "exec"), ns)  # noqa: S102 - data this module's writer wrote
        data = ns["DATA"]
    except Exception:  # noqa: BLE001 - absent, truncated or edited: not used, written anew
        return None
    if not isinstance(data, dict) or data.get("key") != st["key"]:
        return None
    return data


def store(filename: str, text: str) -> str:
    """Write ``text`` (the source of a data file, defining ``DATA``) as ``filename`` of the cache
    folder, atomically; returns the path. OSError if the folder cannot be written."""
    st = _check()
    if st["key"] is None:
        raise OSError(f"the zoo cache is not in use: {st['reason']}")
    folder = st["directory"]
    os.makedirs(folder, exist_ok=True)
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, os.path.join(folder, filename))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _ENTRIES.pop(filename[:-3] if filename.endswith(".py") else filename, None)
    _MASS.clear()
    return os.path.join(folder, filename)


# ---------------------------------------------------------------------- entries
_ENTRIES: dict = {}


def entry(name: str) -> "ZooEntry | None":
    """The cached data of the zoo activation ``name`` with default parameters, or None (cache
    off, not yet written on this machine, unreadable, or the zoo entry changed)."""
    if name in _ENTRIES:
        return _ENTRIES[name]
    out = None
    if enabled() and name.isidentifier():
        from critheory.activation.zoo import ZOO

        formula, defaults = ZOO.get(name, (None, None))
        data = _read(f"{name}.py") if formula is not None else None
        if data is not None and data.get("formula") == formula \
                and data.get("defaults") == dict(defaults or {}):
            out = ZooEntry(name, data)
    if out is not None or not enabled():
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
    ``scipy.special.erfc``), or None where the cache does not hold them."""
    if not _MASS:
        data = _read("_noise_mass.py")
        m = None
        if data is not None:
            try:
                m = _decode(data["mass"], data["shape"])
            except (KeyError, ValueError, TypeError, binascii.Error):
                m = None
        if m is None:
            return None      # not memoized: the generator may write it later in this process
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
        from critheory.activation.serialize import from_srepr

        return from_srepr(self.data["expr_srepr"])

    def taylor(self):
        from critheory.activation.serialize import from_srepr
        from critheory.activation.symbolic import TaylorInfo

        derivs, reason = self.data["taylor"]
        if derivs is None:
            return TaylorInfo(None, reason)
        return TaylorInfo(tuple(from_srepr(s) for s in derivs), reason)

    def noise_table(self, integrand: str):
        """The float64 noise table of a named integrand (2 x octaves), or None."""
        it = self.integrands.get(integrand)
        if it is None or it.get("noise") is None:
            return None
        return _decode(it["noise"], it["noise_shape"])
