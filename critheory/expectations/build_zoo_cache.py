"""Generator of the zoo cache (:mod:`critheory.activation.cache`).

Derives, with the live (sympy) code and the cache turned off, everything the cache holds for a
zoo activation with its default parameters, and writes it into this machine's cache folder
(:func:`critheory.activation.cache.directory`, in the user cache directory): one file per
activation and one for the Gaussian octave masses. Each lambdified function is checked to
recompile, from its stored source and namespace, to the same bytecode, constants and names,
every name bound to the very object lambdify bound; every stored value is read back and
compared with the live one (types, NaN, signed zeros included). It lives here, not in
``activation``, because it derives integrand data as well (imports go one way: activation <
expectations).

The command line calls :func:`ensure` for the zoo activation of each command, so the cache fills
itself on first use; this module's command fills or checks it at once::

    python -m critheory.expectations.build_zoo_cache            # the whole zoo (~20 s)
    python -m critheory.expectations.build_zoo_cache tanh relu  # some
    python -m critheory.expectations.build_zoo_cache --check    # compare with a live derivation
    python -m critheory.expectations.build_zoo_cache --where    # print the folder
"""
from __future__ import annotations

import argparse
import builtins
import importlib
import inspect
import math
import sys
import time
import types

import numpy as np

from critheory.activation import cache

__all__ = ["derive", "write", "ensure", "check", "main"]

#: where the names used by lambdified code are looked up, in order (identity of the objects)
_NAME_MODULES = ("critheory.activation.numeric", "numpy", "scipy.special", "mpmath", "math",
                 "functools", "builtins")


# ---------------------------------------------------------------------- sources
def _code_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _origin(name: str, obj) -> tuple[str, str]:
    for modname in _NAME_MODULES:
        mod = importlib.import_module(modname)
        if getattr(mod, name, _origin) is obj:
            return modname, name
    mod = importlib.import_module("critheory.activation.numeric")
    for attr, val in vars(mod).items():
        if val is obj and not attr.startswith("__"):
            return mod.__name__, attr
    raise RuntimeError(f"cannot locate the object {obj!r} that lambdified code calls {name!r}")


def source_of(fn) -> dict:
    """The stored form of a lambdified function: its source, its name and where each name it
    uses comes from."""
    code = inspect.getsource(fn)
    names = {}
    for name in sorted(_code_names(fn.__code__)):
        if name in fn.__globals__:
            names[name] = _origin(name, fn.__globals__[name])
        elif hasattr(builtins, name):
            names[name] = ("builtins", name)
        else:
            raise RuntimeError(f"lambdified code uses an unknown name {name!r}:\n{code}")
    out = {"func": fn.__name__, "code": code, "names": names}
    # the stored form must give the very same function
    again = cache.compile_source(out, "check")
    a, b = again.__code__, fn.__code__
    if (a.co_code, a.co_consts, a.co_names, a.co_varnames) != \
            (b.co_code, b.co_consts, b.co_names, b.co_varnames):
        raise RuntimeError(f"stored source does not recompile to the same code:\n{code}")
    for n in names:
        if n in fn.__globals__ and names[n][0] != "builtins" and \
                again.__globals__[n] is not fn.__globals__[n]:
            raise RuntimeError(f"name {n!r} resolves to another object")
    return out


class _Sources:
    """Deduplicated sources of one activation, by id."""

    def __init__(self):
        self.by_id: dict = {}
        self._ids: dict = {}

    def add(self, fn) -> int:
        src = source_of(fn)
        key = (src["code"], tuple(sorted(src["names"].items())))
        if key not in self._ids:
            self._ids[key] = len(self.by_id)
            self.by_id[self._ids[key]] = src
        return self._ids[key]


# ---------------------------------------------------------------------- derivation
def _live_activation(name: str):
    """The zoo activation as the live code builds it (the cache must be off)."""
    from critheory.activation import zoo

    formula, _ = zoo.ZOO[name]
    values = dict(zoo.default_values(name))
    items = tuple(sorted((k, str(v)) for k, v in values.items()))
    return zoo.build(name, name, formula, items), items


def _fns_of(expr):
    import sympy as sp

    from critheory.activation.expressions import X
    from critheory.activation.numeric import mp_lambdify, np_lambdify

    return (np_lambdify(expr), mp_lambdify(expr), sp.lambdify(X, expr, modules=["mpmath"]))


def _derived_names(act) -> tuple:
    """The derived integrands (``"dx2:phi2"``, ``"x2:h_phi_dphi"``, ...) that the K-derivatives
    of :data:`~critheory.expectations.integrands.DERIVATIVE_BASES` take on ``act``: the
    x-derivatives of a smooth base (heat route), its x-power multiples otherwise (Stein route)."""
    from critheory.errors import CritheoryError
    from critheory.expectations.integrands import DERIVATIVE_BASES, integrand

    out = []
    for base in DERIVATIVE_BASES:
        try:
            itg = integrand(act, base)
            smooth = not itg.breakpoints and not itg.point_masses
        except CritheoryError:
            continue
        out += [f"{op}:{base}" for op in (("dx2", "dx4") if smooth else ("x2", "x4"))]
    return tuple(out)


def derive(name: str) -> dict:
    """Everything the cache stores for the zoo activation ``name``, derived live."""
    from critheory.activation import zoo
    from critheory.activation.serialize import from_srepr, to_srepr
    from critheory.errors import CritheoryError
    from critheory.expectations import closed_forms, poincare
    from critheory.expectations.integrands import NAMED, integrand

    if not cache.DISABLED:
        raise RuntimeError("derive() needs the cache turned off (cache.DISABLED = True)")
    act, items = _live_activation(name)
    formula, defaults = zoo.ZOO[name]
    srepr = to_srepr(act.expr)
    if from_srepr(srepr) != act.expr or to_srepr(from_srepr(srepr)) != srepr:
        raise RuntimeError(f"{name}: srepr does not rebuild the expression")
    t = act.taylor
    taylor = (None if t.derivatives is None else tuple(to_srepr(d) for d in t.derivatives),
              t.reason)
    if t.derivatives is not None:
        for d, s in zip(t.derivatives, taylor[0]):
            if from_srepr(s) != d:
                raise RuntimeError(f"{name}: srepr does not rebuild a Taylor coefficient")
    srcs = _Sources()
    functions = {}
    for n in (0, 1, 2):
        f_np, f_mp, f_plain = _fns_of(act.derivative(n))
        live = act.numpy_func(n).__defaults__[0]
        if live.__code__.co_code != f_np.__code__.co_code:  # pragma: no cover - defensive
            raise RuntimeError(f"{name}: lambdify is not deterministic")
        functions[n] = {"np": srcs.add(f_np), "mp": srcs.add(f_mp), "mp_plain": srcs.add(f_plain)}
    integrands = {}
    for spec in NAMED + _derived_names(act):
        try:
            itg = integrand(act, spec)
            growth = itg.growth
        except CritheoryError:
            continue        # not defined for this activation: the live code raises at use
        f_np, f_mp, f_plain = _fns_of(itg.expr)
        noise = itg.float64_noise.table if growth == (0.0, 0.0) else None
        integrands[spec] = {
            "np": srcs.add(f_np), "mp": srcs.add(f_mp), "mp_plain": srcs.add(f_plain),
            "breakpoints": itg.breakpoints, "growth": growth, "parity": itg.parity,
            "point_masses": itg.point_masses, "pw_terms": closed_forms.piecewise_terms(itg),
            "noise": None if noise is None else cache.encode(noise),
            "noise_shape": None if noise is None else tuple(noise.shape),
        }
    return {
        "key": _KEY[0] if _KEY else cache.key(),
        "name": name, "formula": formula, "defaults": dict(defaults), "items": items,
        "expr_text": str(act.expr), "expr_srepr": srepr,
        "activation": {
            "breakpoints": act.breakpoints, "discontinuities": act.discontinuities,
            "jumps": act.jumps, "parity": act.parity,
            "homogeneous_slopes": act.homogeneous_slopes, "growth_rate": act.growth_rate,
            "features": act.features.to_data(),
            "erf_params": closed_forms.erf_params(act),
        },
        "taylor": taylor, "taylor_float": act.taylor_float,
        "poincare_taylor": poincare.taylor_by_cauchy(act),
        "functions": functions, "integrands": integrands,
        "sources": srcs.by_id,
    }


# ---------------------------------------------------------------------- writing
def emit(obj) -> str:
    """A Python literal of obj (exact floats, inf/nan as _inf/_nan, types kept)."""
    t = type(obj)
    if obj is None or t is bool or t is int:
        return repr(obj)
    if t is str:
        return repr(obj)
    if t is float:
        if math.isnan(obj):
            return "_nan"
        if math.isinf(obj):
            return "_inf" if obj > 0 else "-_inf"
        return repr(obj)
    if t is complex:
        return f"complex({emit(obj.real)}, {emit(obj.imag)})"
    if t is tuple:
        return "(" + "".join(emit(x) + ", " for x in obj) + ")"
    if t is list:
        return "[" + ", ".join(emit(x) for x in obj) + "]"
    if t is dict:
        return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in obj.items()) + "}"
    raise TypeError(f"cannot store a {t.__name__} ({obj!r}) in the zoo cache")


def _same(a, b) -> bool:
    """Equal, with the same types all the way down (NaN equal to NaN, -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                       math.copysign(1, b))
    if isinstance(a, complex):
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


_HEADER = '''"""Zoo cache data: {what}.

GENERATED by critheory.expectations.build_zoo_cache on this machine: do not edit (see
critheory.activation.cache).
"""
_inf = float("inf")
_nan = float("nan")
'''

#: the key of the cache being written (derive() runs with the cache off, where cache.key() is
#: still computable but the writer's own key is the one to store)
_KEY: list = []


def _module_text(data: dict) -> str:
    return (_HEADER.format(what=f"zoo activation {data['name']!r}")
            + f"\nDATA = {emit(data)}\n")


def _mass_text(key: dict, mass: np.ndarray) -> str:
    data = {"key": key, "shape": tuple(mass.shape), "mass": cache.encode(mass)}
    return (_HEADER.format(what="Float64Noise.octave_mass() (base64 of little-endian float64)")
            + f"\nDATA = {emit(data)}\n")


def _octave_mass() -> np.ndarray:
    from critheory.expectations.integrands import Float64Noise

    j = np.arange(Float64Noise._STEPS_PER_OCTAVE * (_noise_emin() - 4),
                  Float64Noise._STEPS_PER_OCTAVE * (_noise_emax() + 4) + 1)
    return Float64Noise._compute_octave_mass(j)


def _noise_emin() -> int:
    from critheory.expectations import integrands

    return integrands.NOISE_EMIN


def _noise_emax() -> int:
    from critheory.expectations import integrands

    return integrands.NOISE_EMAX


def write(names=None, verbose: bool = True) -> list[str]:
    """Derive and write the cache entries of ``names`` (default: the whole zoo) and the octave
    masses into this machine's cache folder; returns the paths written. A
    :class:`RuntimeError` if the cache is turned off here, :class:`OSError` if the folder cannot
    be written."""
    from critheory.activation import zoo

    was = cache.DISABLED
    cache.reset()
    if not cache.enabled():
        raise RuntimeError(f"the zoo cache is not in use: {cache.status()['reason']}")
    key = cache.key()
    names = list(zoo.ZOO) if names is None else list(names)
    texts = {}
    cache.DISABLED = True
    cache.reset()
    _KEY[:] = [key]
    try:
        for name in names:
            if name not in zoo.ZOO:
                raise ValueError(f"{name!r} is not a zoo activation")
            t0 = time.perf_counter()
            data = derive(name)
            text = _module_text(data)
            ns: dict = {}
            exec(compile(text, name, "exec"), ns)  # noqa: S102 - read back what is written
            if not _same(ns["DATA"], data):
                raise RuntimeError(f"{name}: the written data does not read back equal")
            texts[f"{name}.py"] = text
            if verbose:
                print(f"{name:12s} {len(data['integrands'])} integrands, {len(data['sources'])}"
                      f" sources, {len(text) / 1024:.0f} KiB, {time.perf_counter() - t0:.1f} s",
                      flush=True)
        texts["_noise_mass.py"] = _mass_text(key, _octave_mass())
    finally:
        _KEY.clear()
        cache.DISABLED = was
        cache.reset()
    paths = [cache.store(fname, text) for fname, text in texts.items()]
    cache.reset()
    return paths


def ensure(names) -> list[str]:
    """Write the entries of those zoo activations in ``names`` that this machine's cache lacks
    (names that are not zoo activations are ignored); returns the names written. Nothing is
    done where the cache is turned off."""
    from critheory.activation import zoo

    if cache.DISABLED or not cache.enabled():
        return []
    todo = [n for n in dict.fromkeys(names) if n in zoo.ZOO and cache.entry(n) is None]
    if not todo and cache.noise_mass() is not None:
        return []
    write(todo, verbose=False)
    return todo


def _without_noise(data: dict) -> dict:
    out = dict(data)
    out["integrands"] = {k: {**v, "noise": None} for k, v in data["integrands"].items()}
    return out


def check(names=None, verbose: bool = True) -> list[str]:
    """Differences between the stored cache entries (of ``names``, default: those present) and
    a live derivation (empty: up to date)."""
    from critheory.activation import zoo

    problems = []
    cache.DISABLED = False
    cache.reset()
    if not cache.enabled():
        return [f"cache not used: {cache.status()['reason']}"]
    key = cache.key()
    stored = {}
    for name in (names or list(zoo.ZOO)):
        e = cache.entry(name)
        if e is None:
            if names:
                problems.append(f"{name}: no cache entry")
        else:
            stored[name] = e.data
    stored_mass = cache.noise_mass()
    cache.DISABLED = True
    cache.reset()
    _KEY[:] = [key]
    try:
        for name, data in stored.items():
            live = derive(name)
            if not _same(live, data):
                bad = [k for k in live if not _same(live.get(k), data.get(k))]
                problems.append(f"{name}: stored data differs from a live derivation in {bad}")
            elif verbose:
                print(f"{name:12s} up to date", flush=True)
        if stored_mass is not None and cache.encode(stored_mass) != cache.encode(_octave_mass()):
            problems.append("the octave masses differ from a live computation")
    finally:
        _KEY.clear()
        cache.DISABLED = False
        cache.reset()
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="zoo activations (default: all)")
    ap.add_argument("--check", action="store_true",
                    help="compare the stored cache with a live derivation, write nothing")
    ap.add_argument("--where", action="store_true", help="print the cache folder and exit")
    args = ap.parse_args(argv)
    if args.where:
        print(cache.directory() or f"(not in use: {cache.status()['reason']})")
        return 0
    if args.check:
        problems = check(args.names or None)
        for p in problems:
            print("STALE:", p)
        print("zoo cache: " + ("up to date" if not problems else f"{len(problems)} problem(s)"))
        return 1 if problems else 0
    try:
        write(args.names or None)
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"zoo cache not written: {exc}", file=sys.stderr)
        return 2
    print(f"zoo cache written to {cache.directory()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
