"""Generate ``data_references.json``: the several-input finite-width statistics of smooth MLPs by
an independent route (rerun: ``python tests/data/generate_data_references.py``, ~1 min).

What is independent of critheory: nothing of the package is imported. The recursion is PDLT's
(ch. 4) written in the preactivations' derivative form, and every Gaussian expectation is one
brute-force tensor Gauss–Hermite rule over all m inputs at once (z = C u, C the Cholesky factor
of K, N nodes per dimension), with the activation's derivatives from sympy.

For a neuron of layer l with kernel K, 1/n shift K1 and vertex V (``V_(ab)(cd) = n Cov(z_{i;a}
z_{i;b}, z_{j;c} z_{j;d})``, i ≠ j, so that one neuron's connected four-point function is
``(V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc))/n``), the nearly-Gaussian expectation of a function F
of the neuron's preactivations is, to order 1/n (PDLT §4.3, the expansion of a nearly-Gaussian
distribution in its cumulants),

    E[F] = ⟨F⟩_K + (1/n)[ ½ Σ_cd K1_cd ⟨∂_c∂_d F⟩ + ⅛ Σ_cdef V_(cd)(ef) ⟨∂_c∂_d∂_e∂_f F⟩ ],

(the quartic term: (1/4!) Σ κ_cdef ⟨∂⁴F⟩ with κ the three pairings of V). With
``z^{l+1}_i = b_i + Σ_j W_ij σ(z^l_j)`` (``C_W = σ_w²``, ``C_b = σ_b²``, equal widths) this gives

    K^{l+1}_ab  = C_b + C_W ⟨σ_a σ_b⟩
    K1^{l+1}_ab = C_W [ ½ Σ K1_cd ⟨∂_c∂_d(σ_a σ_b)⟩ + ⅛ Σ V_(cd)(ef) ⟨∂_c∂_d∂_e∂_f(σ_a σ_b)⟩ ]
    V^{l+1}_(ab)(cd) = C_W² [⟨σ_aσ_bσ_cσ_d⟩ − ⟨σ_aσ_b⟩⟨σ_cσ_d⟩]
                       + (C_W²/4) Σ V_(ef)(gh) ⟨∂_e∂_f(σ_aσ_b)⟩ ⟨∂_g∂_h(σ_cσ_d)⟩

from K¹ = C_b + C_W x_a·x_b/n0, K1¹ = V¹ = 0 (PDLT eqs. (4.90) and the 1/n recursion of
§4.5 in this notation). The derivatives of σ_aσ_b in the z's are sums over the ways the
indices fall on the two factors (∂_c σ_a = δ_ca σ'_a).

Error estimate: the difference between N = 72 and N = 100 nodes, stored beside each value.
"""
from __future__ import annotations

import itertools
import json
import pathlib

import numpy as np
import sympy as sp

CASES = [
    # activation formula, C_W, C_b, inputs (rows), depth
    ("tanh(x)", 1.3, 0.1, [[1.0, 0.2, -0.4], [0.3, -0.8, 0.5], [-0.6, 0.1, 0.9]], 4),
    ("x*(1 + erf(x/sqrt(2)))/2", 1.7, 0.05, [[0.8, -0.5], [0.2, 1.1], [-0.9, 0.4]], 4),
    ("sin(x)", 1.1, 0.2, [[0.6, 0.0], [0.1, 0.7], [-0.5, 0.5]], 3),
]
NODES = (72, 100)


def _derivs(formula: str):
    x = sp.Symbol("x")
    f = sp.sympify(formula)
    return [sp.lambdify(x, sp.diff(f, x, k), modules=["numpy", "scipy"]) for k in range(5)]


def _gauss(K: np.ndarray, N: int):
    t, w = np.polynomial.hermite_e.hermegauss(N)
    w = w / np.sqrt(2 * np.pi)
    m = K.shape[0]
    U = np.stack(np.meshgrid(*([t] * m), indexing="ij"), 0).reshape(m, -1)
    W = np.ones(1)
    for _ in range(m):
        W = np.multiply.outer(W, w)
    return np.linalg.cholesky(K) @ U, W.reshape(-1)


def _dprod(M: np.ndarray, a: int, b: int, idx: tuple) -> float:
    """⟨∂_idx (σ_a σ_b)⟩ from the moments M[a, b, p, q] = ⟨σ_a^(p) σ_b^(q)⟩."""
    k = len(idx)
    tot = 0.0
    for S in itertools.product((0, 1), repeat=k):       # 1: the index hits σ_a
        if all(idx[i] == (a if s else b) for i, s in enumerate(S)):
            p = sum(S)
            tot += M[a, b, p, k - p]
    return tot


def layer(d, K, K1, V, cw, cb, N):
    m = K.shape[0]
    Z, W = _gauss(K, N)
    S = np.stack([np.stack([fk(Z[a]) * np.ones_like(Z[a]) for a in range(m)]) for fk in d])
    # S[k, a, :] = σ^(k)(z_a) at the nodes
    M = np.einsum("pai,qbi,i->abpq", S, S, W)
    s2 = M[:, :, 0, 0]
    s4 = np.einsum("ai,bi,ci,di,i->abcd", S[0], S[0], S[0], S[0], W)
    D2 = np.zeros((m, m, m, m))
    D4 = np.zeros((m, m) + (m,) * 4)
    for a, b in itertools.product(range(m), repeat=2):
        for c, e in itertools.product(range(m), repeat=2):
            D2[a, b, c, e] = _dprod(M, a, b, (c, e))
        for idx in itertools.product(sorted({a, b}), repeat=4):
            D4[(a, b) + idx] = _dprod(M, a, b, idx)
    Kn = cb + cw * s2
    K1n = cw * (0.5 * np.einsum("cd,abcd->ab", K1, D2)
                + 0.125 * np.einsum("cdef,abcdef->ab", V, D4))
    Vn = cw * cw * (s4 - np.einsum("ab,cd->abcd", s2, s2)
                    + 0.25 * np.einsum("efgh,abef,cdgh->abcd", V, D2, D2))
    return Kn, K1n, Vn


def run(formula, cw, cb, x, depth, N):
    d = _derivs(formula)
    x = np.asarray(x, dtype=float)
    K = cb + cw * x @ x.T / x.shape[1]
    m = K.shape[0]
    K1 = np.zeros((m, m))
    V = np.zeros((m,) * 4)
    out = [(K, K1, V)]
    for _ in range(depth - 1):
        K, K1, V = layer(d, K, K1, V, cw, cb, N)
        out.append((K, K1, V))
    return [np.stack(z) for z in zip(*out)]


def main():
    refs = []
    for formula, cw, cb, x, depth in CASES:
        lo, hi = (run(formula, cw, cb, x, depth, N) for N in NODES)
        refs.append({
            "activation": formula, "weight_var": cw, "bias_var": cb, "inputs": x,
            "depth": depth,
            "kernel": hi[0].tolist(), "kernel_correction": hi[1].tolist(),
            "vertex": hi[2].tolist(),
            "kernel_error": np.abs(hi[0] - lo[0]).tolist(),
            "kernel_correction_error": np.abs(hi[1] - lo[1]).tolist(),
            "vertex_error": np.abs(hi[2] - lo[2]).tolist(),
        })
        print(formula, "max |ΔV| between node counts", float(np.abs(hi[2] - lo[2]).max()),
              "max |V|", float(np.abs(hi[2]).max()))
    out = pathlib.Path(__file__).with_name("data_references.json")
    out.write_text(json.dumps({"source": "tests/data/generate_data_references.py (PDLT ch. 4 "
                                         "recursion, brute-force tensor Gauss-Hermite)",
                               "nodes": NODES, "cases": refs}, indent=1))


if __name__ == "__main__":
    main()
