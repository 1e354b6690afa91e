"""Benchmark: the four-point tensor E[φ_a φ_b φ_c φ_d] over m inputs (``four_point``) and one
3-D expectation against scipy's ``nquad``.

* ``four_point(act, K, rtol)`` for m inputs at two kernels: *layer 1* (m random unit inputs in
  16 dimensions, K = x_a·x_b: correlations spread over about ±0.5) and *deep* (correlations
  0.85-0.95, what a kernel looks like many layers into a critical network). Reported: seconds
  (best of ``--repeat`` after one untimed call that does the symbolic set-up), the number of
  distinct 3-D and 4-D entries, and the largest error estimate relative to the tensor's scale.
* Positively homogeneous φ (relu, leaky relu: ``--homogeneous``): ``four_point`` takes the
  conditioned closed-form route; the same run times the general routes on the same kernel
  (``multipoint._four_point(..., conditioned=False)``: the nested rule) and prints the ratio
  and the largest difference over the tensor relative to the sum of both error estimates
  (<= 1 where the errors bound).
* Baseline in the same run: the tensor's C(m, 4) all-different entries by a Python loop of
  tensor Gauss–Hermite rules (24 nodes per dimension after a Cholesky factor), its time and its
  largest difference from four_point's values. (``scipy.integrate.nquad`` on a single 3-D entry
  took 145 s on the development VM at epsabs 1e-10: not a usable baseline.)

Run: ``python benchmarks/bench_multipoint.py [--quick] [--m 8] [--rtol 1e-8] [--acts tanh relu]
[--homogeneous relu "0.1*x + 0.9*relu(x)"] [--nested-kernels "layer 1"]``.
"""
from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
from critheory.activation.symbolic import Activation
from critheory.expectations.multipoint import _four_point, expect_product, four_point

from _timing import best_of  # noqa: E402 - benchmarks/ is on sys.path


def kernels(m: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    layer1 = x @ x.T
    deep = 0.85 + 0.1 * (layer1 + 1.0) / 2.0
    np.fill_diagonal(deep, 1.0)
    deep = 0.5 * (deep + deep.T)
    return {"layer 1": layer1, "deep": deep}


def naive_gh(act: str, K: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """The distinct all-different entries of the tensor by a Python loop over them, each a
    tensor Gauss–Hermite rule with n nodes per dimension after a Cholesky factor (what one
    writes without critheory)."""
    f = Activation.get(act).numpy
    t, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2 * math.pi)
    grids = np.meshgrid(*([t] * 4), indexing="ij")
    U = np.stack([g.ravel() for g in grids])
    W = np.einsum("i,j,k,l->ijkl", w, w, w, w).ravel()
    t0 = time.perf_counter()
    out = []
    for idx in itertools.combinations(range(K.shape[0]), 4):
        Z = np.linalg.cholesky(K[np.ix_(idx, idx)]) @ U
        out.append(np.prod(f(Z), axis=0) @ W)
    return np.array(out), time.perf_counter() - t0


def homogeneous(acts: list, m: int, rtol: float, repeat: int, nested_kernels: list) -> None:
    """The conditioned route of four_point against the nested rule, same kernels, same run."""
    print(f"four_point, positively homogeneous φ, m = {m}, rtol = {rtol:g}: conditioned route "
          "vs the nested rule")
    print(f"{'act':<22} {'kernel':<8} {'cond s':>8} {'nested s':>9} {'ratio':>7} "
          f"{'max err/scale':>14} {'max |diff|/(e1+e2)':>19}")
    for act in acts:
        A = Activation.get(act)
        for name, K in kernels(m).items():
            T, E = four_point(A, K, rtol=rtol)          # untimed: the symbolic set-up
            tc = best_of(lambda: four_point(A, K, rtol=rtol), repeat)
            scale = float(np.max(np.abs(T)))
            if name in nested_kernels:
                t0 = time.perf_counter()
                Tn, En = _four_point(A, np.asarray(K, float), rtol, conditioned=False)
                tn = time.perf_counter() - t0
                q = float(np.max(np.abs(T - Tn) / (E + En + 1e-300)))
                print(f"{act:<22} {name:<8} {tc:8.3f} {tn:9.2f} {tn / tc:7.0f} "
                      f"{float(E.max()) / scale:14.2e} {q:19.3f}")
            else:
                print(f"{act:<22} {name:<8} {tc:8.3f} {'':>9} {'':>7} "
                      f"{float(E.max()) / scale:14.2e}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="m = 4, one repeat")
    ap.add_argument("--m", type=int, default=8)
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--acts", nargs="+", default=["tanh", "relu"])
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--homogeneous", nargs="*", default=["relu", "0.1*x + 0.9*relu(x)"],
                    help="activations whose conditioned route is timed against the nested rule")
    ap.add_argument("--nested-kernels", nargs="*", default=["layer 1"],
                    help="kernels on which the nested rule is timed (deep: minutes for relu)")
    a = ap.parse_args()
    m = 4 if a.quick else a.m
    repeat = 1 if a.quick else a.repeat
    if a.homogeneous:
        homogeneous(a.homogeneous, m, a.rtol, repeat, a.nested_kernels)
    print(f"four_point, m = {m} inputs, rtol = {a.rtol:g} "
          f"({math.comb(m, 4)} 4-D and {m * math.comb(m - 1, 2)} 3-D entries)")
    print(f"{'act':<6} {'kernel':<8} {'setup s':>8} {'best s':>8} {'max err/scale':>14}")
    for act in a.acts:
        for name, K in kernels(m).items():
            t0 = time.perf_counter()
            T, E = four_point(act, K, rtol=a.rtol)
            setup = time.perf_counter() - t0
            best = best_of(lambda: four_point(act, K, rtol=a.rtol), repeat) if repeat > 1 \
                else setup
            scale = float(np.max(np.abs(T)))
            print(f"{act:<6} {name:<8} {setup:8.2f} {best:8.2f} {float(E.max()) / scale:14.2e}")
    if a.no_baseline:
        return
    n = 24
    print(f"\nthe {math.comb(m, 4)} 4-D entries: four_point's against a naive loop of tensor "
          f"Gauss–Hermite rules ({n}⁴ nodes each), layer-1 kernel")
    print(f"{'act':<6} {'naive s':>8} {'naive max |diff|':>17} {'four_point err':>15}")
    for act in a.acts:
        K = kernels(m)["layer 1"]
        T, E = four_point(act, K, rtol=a.rtol)
        vals, tn = naive_gh(act, K, n)
        ours = np.array([T[idx] for idx in itertools.combinations(range(m), 4)])
        errs = np.array([E[idx] for idx in itertools.combinations(range(m), 4)])
        print(f"{act:<6} {tn:8.2f} {float(np.max(np.abs(vals - ours))):17.2e} "
              f"{float(errs.max()):15.2e}")

if __name__ == "__main__":
    main()
