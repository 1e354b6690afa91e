"""Start-up: what importing critheory and building the command line load, and the zoo cache.

``import critheory``, ``import critheory.cli`` and building the parser must not import sympy,
scipy or matplotlib (each takes 0.5-0.9 s to import); ``critheory moments`` on a zoo activation
needs none of them either, thanks to the zoo cache (:mod:`critheory.activation.cache`), whose
results must be bit-identical to the live derivation's. Each check runs in a fresh interpreter.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("sympy", "scipy", "matplotlib")


def _run(code: str, env_extra: dict | None = None, timeout: float = 300) -> str:
    env = dict(os.environ)
    env.pop("CRITHEORY_NO_ZOO_CACHE", None)
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env=env, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _loaded_after(code: str) -> list[str]:
    out = _run(textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print("loaded:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
        """))
    last = out.strip().splitlines()[-1]
    assert last.startswith("loaded:"), out
    return [m for m in last[len("loaded:"):].split(",") if m]


def test_import_critheory_is_light():
    assert _loaded_after("import critheory\n") == []


def test_cli_and_parser_are_light():
    code = """
        import critheory.cli
        p = critheory.cli.build_parser()
        for argv in (["moments", "tanh"], ["analyze", "relu", "--json"],
                     ["point", "tanh", "--weight-var", "1", "--bias-var", "0"]):
            p.parse_args(argv)
        """
    assert _loaded_after(code) == []


def test_lazy_exports_still_work():
    out = _run("""
        import critheory
        from critheory import Activation
        from critheory import CritheoryError, ActivationError, InvalidArgumentError
        import critheory.errors
        assert critheory.Activation is Activation
        assert CritheoryError is critheory.errors.CritheoryError
        assert issubclass(ActivationError, critheory.CritheoryError)
        assert "Activation" in dir(critheory)
        from critheory.activation import X
        from critheory.activation.symbolic import X as X2
        assert X is X2 and X.is_real
        print(Activation.get("relu").breakpoints)
        """)
    assert out.strip() == "(0.0,)"


def test_help_exits_zero():
    p = subprocess.run([sys.executable, "-m", "critheory", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "moments" in p.stdout and "analyze" in p.stdout


# ---------------------------------------------------------------------- the zoo cache
# Each test gets a cache folder of its own (CRITHEORY_CACHE_DIR=tmp_path): it starts empty, as on
# a machine that never ran critheory.
def _cache_status(cache_dir) -> dict:
    return json.loads(_run("""
        import json
        from critheory.activation import cache
        print(json.dumps(cache.status()))
        """, {"CRITHEORY_CACHE_DIR": str(cache_dir)}))


def _fill(cache_dir, *names) -> None:
    p = subprocess.run([sys.executable, "-m", "critheory.expectations.build_zoo_cache", *names],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "CRITHEORY_CACHE_DIR": str(cache_dir)})
    assert p.returncode == 0, p.stdout + p.stderr


def _cli(cache_dir, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "critheory", *argv], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "CRITHEORY_CACHE_DIR": str(cache_dir)})


def test_command_line_fills_the_cache_once(tmp_path):
    """A new machine: the first command on a zoo activation stores its entry, the next ones
    read it; the output is the same each time."""
    assert _cache_status(tmp_path)["entries"] == []
    first = _cli(tmp_path, "moments", "tanh", "--json")
    assert first.returncode == 0 and first.stderr == "", first.stderr
    st = _cache_status(tmp_path)
    assert st["enabled"] and st["entries"] == ["tanh"], st
    assert st["directory"].startswith(str(tmp_path))
    second = _cli(tmp_path, "moments", "tanh", "--json")
    assert second.stdout == first.stdout
    live = subprocess.run([sys.executable, "-m", "critheory", "moments", "tanh", "--json"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CRITHEORY_NO_ZOO_CACHE": "1"})
    assert live.stdout == first.stdout


def test_moments_needs_no_sympy(tmp_path):
    """After the first run on this machine, ``moments`` on a zoo activation imports neither
    sympy nor scipy."""
    code = """
        import io, contextlib, sys
        from critheory.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["moments", "tanh", "--var", "0.7", "--json"]) == 0
            assert main(["moments", "relu"]) == 0
            assert main(["moments", "sin", "--json"]) == 0
        """
    env = {"CRITHEORY_CACHE_DIR": str(tmp_path)}
    _run(code, env)                     # the first run on this "machine" fills the cache
    out = _run(textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print("loaded:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
        """), env)
    assert out.strip().splitlines()[-1] == "loaded:"


def test_theory_commands_need_no_sympy(tmp_path):
    """Issue 32 (cold start): after the first run on this machine, the mean-field, finite-width,
    NTK and spectrum commands on a zoo activation at its K* = 0 critical point, and ``sde`` with
    ReLU shaping, import neither sympy nor scipy (the K-derivative integrands, the Poincaré-gap
    integrand and the Taylor coefficients as floats are in the zoo cache; a_1's sign is decided
    in floats; the ReLU ODE limit by Gauss–Legendre and Brent)."""
    code = """
        import io, contextlib, sys
        from critheory.cli.main import main
        point = ["--weight-var", "1", "--bias-var", "0"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["point", "tanh", *point, "--json"]) == 0
            assert main(["line", "tanh", "--bias-var", "0:1:5", "--json"]) == 0
            assert main(["finite-width", "tanh", *point, "--depth", "5", "--json"]) == 0
            assert main(["ntk", "tanh", *point, "--depth", "5", "--json"]) == 0
            assert main(["spectrum", "tanh", *point, "--depth", "5", "--json"]) == 0
            assert main(["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.3"]) == 0
        """
    env = {"CRITHEORY_CACHE_DIR": str(tmp_path)}
    _run(code, env)                     # the first run on this "machine" fills the cache
    out = _run(textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print("loaded:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
        """), env)
    assert out.strip().splitlines()[-1] == "loaded:"


def test_sde_default_path_is_light(tmp_path):
    """Issue 32 (cold start of ``critheory sde``): the default Monte Carlo path with ReLU
    shaping (two and three inputs, text and JSON) imports none of sympy, scipy (its quadrature
    and banded solver: the ODE limit is by Gauss–Legendre and the own Brent solver), mpmath
    or matplotlib after the first run on this machine; the Fokker–Planck option
    (``--method pde``) alone imports ``scipy.linalg``, for its banded solver."""
    heavy = ("sympy", "scipy", "mpmath", "matplotlib")
    base = ["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.3"]
    code = f"""
        import io, contextlib, sys
        from critheory.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main({base!r}) == 0
            assert main({base!r} + ["--json", "--paths", "2000"]) == 0
            assert main({base!r} + ["--inputs", "3", "--paths", "500"]) == 0
        print("loaded:" + ",".join(m for m in {heavy!r} if m in sys.modules))
        with contextlib.redirect_stdout(io.StringIO()):
            assert main({base!r} + ["--method", "pde"]) == 0
        print("pde:" + ",".join(m for m in ("scipy.linalg",) if m in sys.modules))
        """
    env = {"CRITHEORY_CACHE_DIR": str(tmp_path)}
    _run(code, env)                     # the first run on this "machine" fills the cache
    lines = _run(code, env).strip().splitlines()
    assert lines[-2] == "loaded:" and lines[-1] == "pde:scipy.linalg", lines[-2:]


def test_exponent_commands_need_no_sympy(tmp_path):
    """Issue 32 (cold start): after the first run on this machine, ``analyze``, ``depth``,
    ``recipe`` and ``simulate`` on tanh import neither sympy nor mpmath: the exact exponents of
    the K*=0 class come from the Taylor derivatives the zoo cache holds as text (rational:
    exact fractions, no sympy), the Poincaré-gap Taylor coefficients from the cache too.
    ``simulate`` still imports scipy.special (the Student-t quantile of its verdict)."""
    code = """
        import io, contextlib, sys
        from critheory.cli.main import main
        point = ["--weight-var", "1", "--bias-var", "0"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["analyze", "tanh"]) == 0
            assert main(["analyze", "sin", "--json"]) == 0
            assert main(["depth", "tanh", *point, "--depth", "10"]) == 0
            assert main(["recipe", "tanh", "--width", "64", "--depth", "10"]) == 0
            assert main(["simulate", "tanh", *point, "--width", "16", "--depth", "8",
                         "--seeds", "2", "--n-boot", "50", "--no-progress"]) == 0
        """
    env = {"CRITHEORY_CACHE_DIR": str(tmp_path)}
    _run(code, env)                     # the first run on this "machine" fills the cache
    out = _run(textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print("loaded:" + ",".join(m for m in ("sympy", "mpmath") if m in sys.modules))
        """), env)
    assert out.strip().splitlines()[-1] == "loaded:"


def test_exact_exponents_from_the_cache_equal_sympys(tmp_path):
    """The exponents and laws of ``analyze`` (exact fractions from the cached Taylor text) are
    the text sympy gives on the live path, for every K*=0, kinked, half-stable and
    scale-invariant zoo activation tried; the exact numbers compare equal to sympy's."""
    names = ["tanh", "sin", "erf", "gelu", "relu", "elu", "softsign", "swish"]
    _fill(tmp_path, *names)
    code = f"""
        import json, sys
        from critheory.activation import Activation, cache
        from critheory.theory.meanfield.maps import architecture
        from critheory.theory.meanfield.criticality import universality
        zoo = cache.enabled()
        assert all(("_zoo" in Activation.get(n).__dict__) == zoo for n in {names!r})
        u = universality(architecture("mlp", "tanh"))
        assert zoo == ("sympy" not in sys.modules)     # the cached path needs no sympy
        out = {{}}
        for name in {names!r}:
            for mu in (0.0, 0.5):
                u = universality(architecture("mlp" if mu == 0 else "residual", name, mu))
                d = u.to_dict()
                d["taylor_rational"] = [str(q) for q in
                                        Activation.get(name).taylor_rational or []]
                d["types"] = [type(v).__name__ for v in (u.a1, u.b1, u.apjn_exact)]
                out[f"{{name}} {{mu}}"] = d
        print(json.dumps(out, sort_keys=True))
        """
    cached = json.loads(_run(code, {"CRITHEORY_CACHE_DIR": str(tmp_path)}))
    live = json.loads(_run(code, {"CRITHEORY_NO_ZOO_CACHE": "1"}))
    assert cached["tanh 0.0"]["types"] == ["ExactRational"] * 3
    for k in cached:
        c, v = dict(cached[k]), dict(live[k])
        c.pop("types"), v.pop("types")
        assert c == v, k
    out = _run("""
        import sympy as sp
        from critheory.theory.meanfield.maps import architecture
        from critheory.theory.meanfield.criticality import universality
        u = universality(architecture("mlp", "tanh"))
        assert u.a1 == sp.Integer(-2) and sp.Integer(-2) == u.a1.sympy()
        assert u.apjn_exact * sp.pi == sp.pi and (u.a1 / 4).is_Rational
        # the Poincaré-gap Taylor coefficients read from the cache equal a live derivation
        import numpy as np
        from critheory.activation import Activation
        from critheory.expectations.poincare import taylor_by_cauchy, taylor_coefficients
        for name in ("tanh", "sin", "erf", "gelu", "swish", "relu"):
            act = Activation.get(name)
            assert "_zoo" in act.__dict__
            cached, live = taylor_coefficients(act), taylor_by_cauchy(act)
            assert (cached is None and live is None) or cached.tolist() == list(live), name
        print("ok")
        """, {"CRITHEORY_CACHE_DIR": str(tmp_path)})
    assert out.strip() == "ok"


def test_damaged_cache_files_are_ignored_and_rewritten(tmp_path):
    """A truncated, edited or foreign file changes nothing: it is not used, and the next
    command writes it anew."""
    good = _cli(tmp_path, "moments", "gelu", "--json")
    assert good.returncode == 0
    folder = pathlib.Path(_cache_status(tmp_path)["directory"])
    path = folder / "gelu.py"
    text = path.read_text()
    for damaged in (text[: len(text) // 2], text.replace("x*(1 + erf(x/sqrt(2)))/2", "x"),
                    "raise SystemExit(7)\n"):
        assert damaged != text
        path.write_text(damaged)
        (folder / "_noise_mass.py").write_text(damaged)
        again = _cli(tmp_path, "moments", "gelu", "--json")
        assert again.returncode == 0, again.stderr
        assert again.stdout == good.stdout
        assert path.read_text() == text
    path.unlink()
    assert _cli(tmp_path, "moments", "gelu", "--json").stdout == good.stdout
    assert path.read_text() == text


def test_unwritable_cache_folder_is_one_note(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = _cli(blocker / "cache", "moments", "tanh", "--json")
    ref = _cli(tmp_path / "ok", "moments", "tanh", "--json")
    assert p.returncode == 0 and p.stdout == ref.stdout
    assert len(p.stderr.strip().splitlines()) == 1 and "zoo cache could not be written" in p.stderr


def test_cache_folder_is_keyed_by_machine_and_versions(monkeypatch, tmp_path):
    """Another CPU, C library, numpy/scipy/sympy/mpmath version or an edit of the deriving code
    is another folder: nothing measured elsewhere is ever used."""
    from critheory.activation import cache

    monkeypatch.setenv("CRITHEORY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "DISABLED", False)
    cache.reset()
    try:
        here = cache.directory()
        k = cache.key()
        for field in ("cpu", "libc", "numpy", "scipy", "sympy", "mpmath", "sources", "python",
                      "platform", "critheory"):
            assert field in k
        for field, value in (("cpu", "another-cpu"), ("numpy", "0.0"), ("sympy", "0.0")):
            fake = {**k, field: value}
            monkeypatch.setattr(cache, "key", lambda fake=fake: fake)
            cache.reset()
            assert cache.directory() != here, field
            assert cache.directory().startswith(str(tmp_path))
    finally:
        monkeypatch.undo()
        cache.reset()


def test_cache_directory_follows_the_platform(monkeypatch, tmp_path):
    from critheory.activation import cache

    monkeypatch.delenv("CRITHEORY_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert cache.base_directory() == str(tmp_path / "xdg" / "critheory")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert cache.base_directory().endswith(os.path.join(".cache", "critheory"))
    monkeypatch.setattr(sys, "platform", "darwin")
    assert cache.base_directory().endswith(os.path.join("Library", "Caches", "critheory"))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert cache.base_directory() == os.path.join(str(tmp_path / "local"), "critheory", "Cache")


_COMPARE = """
    import json
    import numpy as np
    from critheory.activation.symbolic import Activation
    from critheory.expectations.gaussian import expect, expect2
    from critheory.expectations.derivatives import dexpect
    from critheory.expectations.integrands import (DERIVATIVE_BASES, DERIVED_OPS, NAMED,
                                                   integrand)
    from critheory.errors import CritheoryError

    K = np.array([1e-6, 0.03, 0.7, 1.0, 3.3, 47.0, 1e4])
    x = np.array([-800.0, -30.0, -2.5, -1.0, -1e-3, 0.0, 2e-7, 0.5, 1.0, 6.0, 40.0, 750.0])
    out = {}
    for name in NAMES:
        act = Activation.get(name)
        row = {"expr": act.expr_text, "bps": act.breakpoints, "parity": act.parity,
               "hs": act.homogeneous_slopes, "growth": act.growth_rate,
               "f": [act.numpy_func(n)(x).tolist() for n in range(3)]}
        for g in NAMED:
            try:
                r = expect(act, g, K)
            except CritheoryError as exc:
                row[g] = repr(exc)
                continue
            itg = integrand(act, g)
            row[g] = [r.value.tolist(), r.error.tolist(), r.methods.tolist(),
                      itg.numpy(x).tolist(), itg.breakpoints, itg.growth, itg.parity,
                      list(itg.point_masses)]
        for g in DERIVATIVE_BASES:      # the K-derivatives and their derived integrands
            for order in (1, 2):
                try:
                    r = dexpect(act, g, K, order)
                    row[f"d{order}:{g}"] = [r.value.tolist(), r.error.tolist(), r.method]
                except CritheoryError as exc:
                    row[f"d{order}:{g}"] = repr(exc)
            for op in DERIVED_OPS:
                try:
                    itg = integrand(act, f"{op}:{g}")
                    row[f"{op}:{g}"] = [itg.numpy(x).tolist(), itg.breakpoints, itg.parity]
                except CritheoryError as exc:
                    row[f"{op}:{g}"] = repr(exc)
        row["taylor_float"] = act.taylor_float
        for f, g in (("phi", "phi"), ("dphi", "dphi"), ("phi", "dphi2")):
            try:
                r = expect2(act, f, g, [1.0, 2.0], [0.3, -1.9], [0.5, 2.0])
                row[f + "," + g] = [r.value.tolist(), r.error.tolist(), r.methods.tolist()]
            except CritheoryError as exc:
                row[f + "," + g] = repr(exc)
        out[name] = row
    print(json.dumps(out, sort_keys=True))
    """


@pytest.mark.parametrize("names", [
    ("tanh", "relu", "gelu", "elu", "sin"),
    pytest.param(("softplus", "hardtanh", "swish", "leaky_relu", "erf", "softsign", "mish",
                  "gelu_tanh", "selu", "celu", "relu6", "sigmoid", "silu", "abs", "cos",
                  "linear"), marks=pytest.mark.slow),
])
def test_zoo_cache_is_bit_identical(names, tmp_path):
    """Values, error estimates, methods and the float64 evaluators are the same, bit for bit,
    with the cache and with the live derivation (CRITHEORY_NO_ZOO_CACHE=1)."""
    _fill(tmp_path, *names)
    code = f"NAMES = {list(names)!r}\n" + textwrap.dedent(_COMPARE)
    cached = _run(code, {"CRITHEORY_CACHE_DIR": str(tmp_path)})
    live = _run(code, {"CRITHEORY_NO_ZOO_CACHE": "1"})
    assert json.loads(cached) == json.loads(live)
    assert cached == live


def test_cached_activation_matches_live_symbolically(tmp_path):
    """What the theory asks of an activation (expression, derivatives, Taylor coefficients,
    mpmath evaluators, integrand expressions) is the same from the cache as live."""
    _fill(tmp_path, "tanh", "gelu", "elu", "softplus")
    out = _run("""
        import mpmath
        from critheory.activation import cache, zoo
        from critheory.expectations.integrands import integrand
        names = ["tanh", "gelu", "elu", "softplus"]
        cached = {n: zoo.make(n) for n in names}
        assert all("_zoo" in a.__dict__ for a in cached.values())
        cache.DISABLED = True
        cache.reset()
        live = {n: zoo.make(n) for n in names}
        assert not any("_zoo" in a.__dict__ for a in live.values())
        for n in names:
            a, b = cached[n], live[n]
            assert a == b and hash(a) == hash(b) and repr(a) == repr(b), n
            assert a.expr_text == str(b.expr) and a.name == b.name
            assert a.derivative(2) == b.derivative(2)
            assert a.taylor == b.taylor, n
            assert a.jumps == b.jumps and a.discontinuities == b.discontinuities
            with mpmath.workdps(30):
                for t in ("-3.5", "0.25", "7"):
                    for k in range(3):
                        assert a.mpmath_func(k)(mpmath.mpf(t)) == b.mpmath_func(k)(mpmath.mpf(t))
            for g in ("phi2", "dphi2", "phi_d2phi", "h_phi_dphi"):
                ia, ib = integrand(a, g), integrand(b, g)
                assert ia.expr == ib.expr and ia.point_masses == ib.point_masses, (n, g)
                assert ia.even == ib.even
        print("ok")
        """, {"CRITHEORY_CACHE_DIR": str(tmp_path)})
    assert out.strip().endswith("ok")


@pytest.mark.slow
def test_zoo_cache_equals_live_derivation(tmp_path):
    """Every stored entry reads back equal to what the generator derives live (the whole zoo,
    ~40 s)."""
    _fill(tmp_path)
    assert _cache_status(tmp_path)["entries"] == sorted(_zoo_names())
    p = subprocess.run([sys.executable, "-m", "critheory.expectations.build_zoo_cache", "--check"],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "CRITHEORY_CACHE_DIR": str(tmp_path)})
    assert p.returncode == 0, p.stdout + p.stderr


def _zoo_names() -> list:
    from critheory.activation.zoo import ZOO

    return list(ZOO)
