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
    return out
