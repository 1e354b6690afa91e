"""The fixed set of command lines whose outputs are frozen in ``tests/data/golden.json``.

Every command and every JSON key keep their meaning and values across refactorings: the golden
test (``tests/test_golden.py``) runs each line through ``critheory.cli.main`` and compares the
output with the frozen one (numbers to 1e-12 relative, strings exactly, numbers inside strings to
1e-12). Regenerate only on purpose, after checking that a change of values is a correction::

    python tests/golden/generate.py
"""
from __future__ import annotations

ARCHS = [("mlp", None), ("residual", "0.5"), ("residual", "1"), ("pre-ln", None),
         ("post-ln", None), ("pre-ln-residual", "0.5"), ("pre-ln-residual", "1"),
         ("pre-ln-mlp-block", "0.5"), ("pre-ln-mlp-block", "1")]


def _arch(a, mu):
    return ["--arch", a] + ([] if mu is None else ["--mu", mu])


def commands() -> list[list[str]]:
    out: list[list[str]] = []
    for act in ("tanh", "relu", "gelu", "erf", "elu", "sigmoid", "swish", "selu", "x*erf(x)"):
        out.append(["analyze", act, "--json", "--verify-depth", "1500"])
    for a, mu in ARCHS:
        for act in ("tanh", "relu", "gelu"):
            out.append(["analyze", act, *_arch(a, mu), "--json", "--verify-depth", "600"])
            out.append(["line", act, *_arch(a, mu), "--bias-var", "0:1:6", "--json"])
            out.append(["point", act, *_arch(a, mu), "--weight-var", "1.7", "--bias-var", "0.2",
                        "--json"])
            out.append(["depth", act, *_arch(a, mu), "--weight-var", "1.3", "--bias-var", "0.05",
                        "--depth", "80", "--corr", "0.3", "--json"])
    for act in ("erf", "elu", "softsign", "sin", "tanh(a*x)"):
        extra = ["--param", "a=1.5"] if "a*" in act else []
        out.append(["line", act, *extra, "--bias-var", "0:2:9", "--json"])
        out.append(["point", act, *extra, "--weight-var", "2.5", "--bias-var", "0.3", "--json"])
    out.append(["line", "tanh", "--bias-var", "0:0.5:4", "--csv"])
    out.append(["depth", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "3000",
                "--l0", "5", "--json"])
    out.append(["depth", "gelu", "--weight-var", "1.98305826", "--bias-var", "0.17292239",
                "--depth", "500", "--q0", "0.3", "--json"])
    for act in ("tanh", "gelu", "elu", "Max(0, x) + 0.1*Min(0, x)", "x*erf(x)", "softplus"):
        out.append(["moments", act, "--var", "0.7", "--json"])
    out.append(["moments", "tanh(a*x)", "--param", "a=3", "--var", "2.5", "--json"])
    sim = ["--width", "24", "--depth", "8", "--seeds", "3", "--seed", "7", "--no-progress",
           "--json", "--n-boot", "50"]
    for cmd in ("simulate", "validate"):
        for a, mu in ARCHS:
            out.append([cmd, "tanh", *_arch(a, mu), "--weight-var", "1.2", "--bias-var", "0.1",
                        *sim])
        out.append([cmd, "relu", "--weight-var", "2", "--bias-var", "0", "--probes", "3",
                    "--l0", "2", *sim])
    for a, mu in (("mlp", None), ("pre-ln", None), ("residual", "0.5")):
        out.append(["phase", "tanh", *_arch(a, mu), "--grid", "9", "--plot", "{tmp}/phase.png"])
    out.append(["phase", "relu", "--arch", "pre-ln-residual", "--plane", "weight-mu",
                "--grid", "9", "--plot", "{tmp}/phase_mu.png"])
    out += _later_commands()
    return out


def _later_commands() -> list[list[str]]:
    """The commands added after the block redesign (finite width, NTK, recipes, shaped networks,
    spectra, transformers), frozen on 2026-12-07 before the one-network refactoring (issue 27):
    small, deterministic workloads (seeded where random)."""
    out: list[list[str]] = []
    for act, w, b in (("tanh", "1", "0"), ("relu", "2", "0"), ("gelu", "1.98305826",
                                                               "0.17292239")):
        out.append(["finite-width", act, "--weight-var", w, "--bias-var", b, "--depth", "20",
                    "--width", "64", "--json"])
        out.append(["ntk", act, "--weight-var", w, "--bias-var", b, "--depth", "20", "--json"])
        out.append(["ntk", act, "--weight-var", w, "--bias-var", b, "--depth", "20",
                    "--scaling", "equivalence", "--q12", "0.3", "--q22", "0.8", "--json"])
        out.append(["spectrum", act, "--weight-var", w, "--bias-var", b, "--depth", "4",
                    "--points", "64", "--json"])
    for a, mu in (("residual", "0.5"), ("pre-ln", None), ("pre-ln-residual", "1")):
        out.append(["finite-width", "tanh", *_arch(a, mu), "--weight-var", "1.3", "--bias-var",
                    "0.1", "--depth", "12", "--width", "32", "--json"])
        out.append(["ntk", "tanh", *_arch(a, mu), "--weight-var", "1.3", "--bias-var", "0.1",
                    "--depth", "12", "--json"])
    out.append(["spectrum", "linear", "--weight-var", "1", "--bias-var", "0", "--depth", "10",
                "--arch", "resnet", "--points", "64", "--json"])
    out.append(["spectrum", "tanh", "--weight-var", "1", "--bias-var", "0", "--depth", "4",
                "--weights", "orthogonal", "--points", "64", "--json"])
    for extra in ([], ["--family", "1", "--optimizer", "adamw"]):
        out.append(["recipe", "tanh", "--width", "256", "--depth", "8", *extra, "--json"])
        out.append(["recipe", "relu", "--width", "512", "--depth", "16", *extra, "--json"])
        out.append(["recipe", "tanh", "--arch", "transformer", "--width", "64", "--depth", "4",
                    "--heads", "4", "--mlp-ratio", "4", *extra, "--json"])
    out.append(["sde", "relu", "--shape", "relu", "--T", "1", "--rho0", "0.3", "--method", "pde",
                "--json"])
    out.append(["sde", "tanh", "--shape", "smooth", "--T", "0.5", "--rho0", "0.5", "--paths",
                "400", "--seed", "3", "--json"])
    for arch in ("transformer", "transformer-post-ln"):
        out.append(["analyze", "tanh", "--arch", arch, "--tokens", "2", "--heads", "2",
                    "--json"])
        out.append(["depth", "gelu", "--arch", arch, "--weight-var", "1", "--bias-var", "0",
                    "--depth", "6", "--tokens", "3", "--json"])
    return out
