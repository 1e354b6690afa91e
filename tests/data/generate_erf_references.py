"""Regenerate tests/data/erf_references.json: E_K[g] of ``c*erf(a*x)`` by mpmath quadrature.

Issue 31 item 10: the closed form of a steep erf reported ±3.6e-15 where its true error
reached 6e-9 (arcsin near 1). The references here are independent of the closed form: the
Gaussian integral ``∫ g(√K z) φ(z) dz`` by mpmath.quad at 40 digits, split at 0 and at
±(1, 10, 100)/(|a|√K) so that a step of width 1/(a√K) is resolved, with two precisions
compared (the stored value is the 40-digit one; points where 30 and 40 digits disagree beyond
1e-25 relative are not stored).

Run from the repository root (a few minutes)::

    PYTHONPATH=$PWD python tests/data/generate_erf_references.py
"""
from __future__ import annotations

import json
import pathlib

import mpmath

#: (c, a) of the activations, and the variances
ACTS = [(1, 1), (1, 3), (1, 100), (1, 1e4), (1, 1e7), (2.5, 1e5), (1, 1e-3)]
KS = [1e-6, 1e-2, 1, 10, 1e4, 1e8, 1e14]
NAMES = ("phi2", "dphi2", "phi_d2phi", "h_phi_dphi")


def _g(name, c, a):
    c, a = mpmath.mpf(c), mpmath.mpf(a)

    def phi(x):
        return c * mpmath.erf(a * x)

    def dphi(x):
        return c * 2 * a / mpmath.sqrt(mpmath.pi) * mpmath.exp(-(a * x) ** 2)

    def d2phi(x):
        return -2 * a * a * x * dphi(x)

    return {"phi2": lambda x: phi(x) ** 2, "dphi2": lambda x: dphi(x) ** 2,
            "phi_d2phi": lambda x: phi(x) * d2phi(x),
            "h_phi_dphi": lambda x: x * phi(x) * dphi(x)}[name]


def expect(name, c, a, K, dps):
    with mpmath.workdps(dps):
        K = mpmath.mpf(K)
        s = mpmath.sqrt(K)
        g = _g(name, c, a)
        w = 1 / (abs(mpmath.mpf(a)) * s)
        pts = sorted({mpmath.mpf(0)} | {sg * m * w for sg in (-1, 1) for m in (1, 10, 100)
                                        if m * w < 40} | {mpmath.mpf(-40), mpmath.mpf(40)})
        pts = [-mpmath.inf] + pts + [mpmath.inf]
        f = lambda z: g(s * z) * mpmath.exp(-z * z / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa
        return mpmath.quad(f, pts, maxdegree=10)


def main() -> None:
    out = []
    for c, a in ACTS:
        for K in KS:
            for name in NAMES:
                v40 = expect(name, c, a, K, 40)
                v30 = expect(name, c, a, K, 30)
                if abs(v40 - v30) > 1e-25 * max(abs(v40), mpmath.mpf(10) ** -300):
                    print("unresolved", c, a, K, name)
                    continue
                out.append({"c": c, "a": a, "K": K, "integrand": name,
                            "value": mpmath.nstr(v40, 30)})
    path = pathlib.Path(__file__).with_name("erf_references.json")
    path.write_text(json.dumps({"generator": "tests/data/generate_erf_references.py",
                                "references": out}, indent=1) + "\n")
    print(len(out), "references written to", path)


if __name__ == "__main__":
    main()
