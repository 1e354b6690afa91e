"""Freeze the mpmath reference values of the default (fast) test run into
``tests/data/mpmath_references.json`` (in the style of scipy.special's ``_precompute``).

Run from the repository root, again whenever a fast test asks for a reference the file lacks
(it then fails, naming this script) or a reference routine changes::

    python tests/data/generate_references.py --jobs 4

Every value is computed by the very routine a live test run would call:

``mp_expect``          critheory.expectations.reference.mp_expect(activation, integrand, K,
                       dps=dps), the integrand a named one or a formula in x
``independent_mp``     tests/test_gaussian.py::_independent_mp (mpmath.quad on the real line)
``mehler``             tests/test_gaussian_2d.py::_mehler (Hermite series, 50 terms)
``mp_line_point``      tests/test_mlp_theory.py::_mp_line_point -> (σ_w², K*) as floats
``mp_critical_point``  tests/test_mlp_theory.py::_mp_critical_point -> (σ_w², σ_b², K*) as floats

and stored with its inputs (``args``, in the routine's argument order: the fixtures in
tests/conftest.py key a value by ``(kind, *args)``, exactly as the live call), the value as a
decimal string holding every digit of the mpmath number (``repr`` of the float for the float
kinds) and ``digits``, the precision at which a live recomputation must agree with it (the
slow test ``test_frozen_references_match_live`` checks a sample). The slow tests do not read
this file: they keep computing their sweeps live.
"""
from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
OUT = HERE / "mpmath_references.json"
SCRIPT = "tests/data/generate_references.py"
REF_DPS = 30          # digits of the critheory.expectations.reference values of the tests
FLOAT_DIGITS = 15     # agreement asked of the float-valued kinds (a few ulp of float64)


# ---------------------------------------------------------------------- the reference routines
def _tests_module(name: str):
    """A module of tests/ (the one pytest imported, when run under pytest)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module(name)


def _integrand(spec: str):
    """A named integrand as is; any other string is a sympy formula in x (critheory's X)."""
    import sympy as sp

    from critheory.activation.symbolic import X
    from critheory.expectations.integrands import NAMED

    return spec if spec in NAMED else sp.sympify(spec, locals={"x": X})


def _mp_expect(activation, integrand, K, dps):
    from critheory.expectations.reference import mp_expect

    return mp_expect(activation, _integrand(integrand), K, dps=dps)


def _independent_mp(activation, integrand, K, dps):
    from critheory.activation.symbolic import Activation

    return _tests_module("test_gaussian")._independent_mp(Activation.get(activation), integrand,
                                                           K, dps)


def _mehler(activation, spec, K11, K12, K22):
    return _tests_module("test_gaussian_2d")._mehler(activation, spec, K11, K12, K22)


def _mp_line_point(activation, bias_var, K0):
    return _tests_module("test_mlp_theory")._mp_line_point(activation, bias_var, K0)


def _mp_critical_point(activation, K0):
    return _tests_module("test_mlp_theory")._mp_critical_point(activation, K0)


#: kind -> (routine, argument names, digits of agreement as a function of the arguments).
KINDS = {
    "mp_expect": (_mp_expect, ("activation", "integrand", "K", "dps"), lambda a: a["dps"]),
    "independent_mp": (_independent_mp, ("activation", "integrand", "K", "dps"),
                       lambda a: a["dps"]),
    "mehler": (_mehler, ("activation", "spec", "K11", "K12", "K22"), lambda a: REF_DPS),
    "mp_line_point": (_mp_line_point, ("activation", "bias_var", "K0"),
                      lambda a: FLOAT_DIGITS),
    "mp_critical_point": (_mp_critical_point, ("activation", "K0"), lambda a: FLOAT_DIGITS),
}


def _norm(a):
    if isinstance(a, (bool, str)):
        return a
    if isinstance(a, int) or type(a).__name__.startswith("int"):
        return int(a)
    return float(a)


def key(kind: str, *args) -> tuple:
    """The lookup key of a reference: the kind and its arguments (numbers as int/float)."""
    if kind not in KINDS:
        raise KeyError(f"unknown reference kind {kind!r}; known: {', '.join(KINDS)}")
    names = KINDS[kind][1]
    if len(args) != len(names):
        raise TypeError(f"{kind} takes ({', '.join(names)}), got {args!r}")
    return (kind,) + tuple(_norm(a) for a in args)


def compute(kind: str, *args):
    """The reference, computed live (seconds to minutes)."""
    return KINDS[kind][0](*args)


# ---------------------------------------------------------------------- what the fast run needs
def entries() -> list[tuple]:
    """Every reference the default (not slow) test run asks for, as (kind, *args)."""
    from critheory.activation import zoo

    out = []
    # tests/test_gaussian.py: test_phi2_vs_mpmath, test_derivative_moments_vs_mpmath
    for name in zoo.names():
        out += [("mp_expect", name, "phi2", K, REF_DPS) for K in (1e-4, 1.0, 100.0)]
        out += [("mp_expect", name, g, 1.0, REF_DPS) for g in ("dphi2", "phi_d2phi")]
    out += [
        ("mp_expect", "tanh", "phi2", 0.7, REF_DPS),                # test_expectation_fields
        ("mp_expect", "tanh", "x**2*tanh(x)**2", 1.3, REF_DPS),     # test_sympy_expression_...
        # tests/test_de_quadrature.py: test_noise_in_error_estimate,
        # test_close_singularity_falls_back
        ("mp_expect", "mish", "phi_d2phi", 100.0, REF_DPS),
        ("mp_expect", "tanh(30*x)", "phi2", 1.0, REF_DPS),
    ]
    # tests/test_gaussian.py: test_reference_vs_independent_route (mp_expect itself runs live)
    out += [("independent_mp", n, g, K, REF_DPS) for n, g, K in [
        ("tanh", "phi_d2phi", 2.0), ("hardtanh", "phi_d2phi", 0.5), ("relu6", "phi_d2phi", 9.0),
        ("selu", "phi_d2phi", 1.0), ("softsign", "dphi2", 3.0), ("gelu", "phi2", 0.3)]]
    # tests/test_gaussian_2d.py: test_mehler_reference_is_exact_for_closed_forms (relu, phi),
    # test_mehler_vs_expect2 (tanh, phi); covariance as _cov(1.0, rho, 1.0) builds it
    out += [("mehler", n, s, 1.0, rho * 1.0, 1.0)
            for n, s in (("relu", "phi"), ("tanh", "phi")) for rho in (-0.5, 0.5)]
    # tests/test_mlp_theory.py: test_line_against_mpmath,
    # test_gelu_swish_critical_points_published_and_mpmath
    out += [("mp_line_point", "tanh", 0.3, 1.46), ("mp_line_point", "gelu", 0.05, 0.86),
            ("mp_line_point", "swish", 0.8, 20.0)]
    out += [("mp_critical_point", "gelu", 3.5), ("mp_critical_point", "swish", 14.0)]
    return out


# ---------------------------------------------------------------------- encoding
def encode(v):
    """A value as JSON: an mpf as a decimal string with every digit of its mantissa (it reads
    back to the same binary number), a float as its repr, a tuple as a list of those."""
    import mpmath
    from mpmath.libmp import repr_dps, to_str

    if isinstance(v, (tuple, list)):
        return [encode(x) for x in v]
    if isinstance(v, mpmath.mpf):
        return to_str(v._mpf_, repr_dps(max(v._mpf_[3], 53)))
    if isinstance(v, float):
        return repr(v)
    raise TypeError(f"cannot freeze {type(v).__name__}: {v!r}")


def decode(s, typ: str):
    """The inverse of :func:`encode` (``typ``: "mpf" or "float")."""
    import mpmath

    if isinstance(s, list):
        return tuple(decode(x, typ) for x in s)
    if typ == "float":
        return float(s)
    with mpmath.workdps(len(s) + 5):   # more digits than the string holds: no rounding here
        return mpmath.mpf(s)


def _type(v) -> str:
    return _type(v[0]) if isinstance(v, (tuple, list)) else (
        "float" if isinstance(v, float) else "mpf")


# ---------------------------------------------------------------------- driver
def _work(item):
    t = time.perf_counter()
    v = compute(*item)
    return item, v, time.perf_counter() - t


_COST = {"mp_critical_point": 0, "mp_line_point": 1, "mehler": 2, "independent_mp": 3,
         "mp_expect": 4}


def main(argv=None) -> None:
    import mpmath

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                    help="worker processes (default: all cores)")
    ap.add_argument("--output", "-o", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    todo = sorted(set(entries()), key=lambda e: (_COST[e[0]], repr(e)))   # slowest first
    todo = [key(*e) for e in todo]
    t0 = time.perf_counter()
    results = {}
    if args.jobs > 1:
        ctx = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with ctx.Pool(args.jobs) as pool:
            for item, v, dt in pool.imap_unordered(_work, todo, chunksize=1):
                results[item] = v
                print(f"{dt:7.2f} s  {item}", file=sys.stderr)
    else:
        for item in todo:
            item, v, dt = _work(item)
            results[item] = v
            print(f"{dt:7.2f} s  {item}", file=sys.stderr)
    out = []
    for item in sorted(results, key=repr):
        kind, *a = item
        names = KINDS[kind][1]
        argd = dict(zip(names, a))
        v = results[item]
        out.append({"kind": kind, "args": argd, "digits": KINDS[kind][2](argd),
                    "type": _type(v), "value": encode(v)})
    doc = {
        "source": (f"critheory.expectations.reference.mp_expect at {REF_DPS} digits (kind "
                   "mp_expect) and the mpmath routes of tests/test_gaussian.py, "
                   "tests/test_gaussian_2d.py and tests/test_mlp_theory.py (the other kinds)"),
        "mpmath_version": mpmath.__version__,
        "generator": f"python {SCRIPT}",
        "key": "(kind, *args.values()); args in the argument order of the routine",
        "entries": out,
    }
    # one entry a line: reviewable diffs when the generator is rerun
    head = json.dumps({k: v for k, v in doc.items() if k != "entries"}, indent=1,
                      ensure_ascii=False)[:-2]
    body = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in out)
    args.output.write_text(f'{head},\n "entries": [\n{body}\n ]\n}}\n')
    print(f"wrote {len(out)} references to {args.output} in "
          f"{time.perf_counter() - t0:.1f} s ({args.jobs} jobs)", file=sys.stderr)


if __name__ == "__main__":
    main()
