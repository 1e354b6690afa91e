"""Chebyshev tables of a layer's kernel map and χ_J, for iterating thousands of layers fast.

A deep recursion evaluates ``f(K^l)`` and ``χ_J(K^l)`` one layer at a time, which cannot be
vectorized over depth. Both are smooth functions of K > 0 (Gaussian smoothing makes them analytic
even for kinked φ), so they are tabulated on demand, per interval of log K, by Chebyshev
interpolation at 33 points of the second kind, computed with one vectorized call of the exact
maps. Each interval is accepted only when the interpolant matches direct evaluation at the 32
interval midpoints to ``rtol`` (relative, default 1e-12); otherwise it is halved (up to 2^-6 of a
decade) and, failing that, the exact map is used for that interval.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.tabulated import TabulatedMap
>>> t = TabulatedMap(architecture("mlp", "tanh"), 1.0, 0.0)
>>> abs(t.kernel(0.37) - float(architecture("mlp", "tanh").kernel_map(0.37, 1.0, 0.0))) < 1e-13
True
"""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import chebyshev as C

from critheory.theory.meanfield.maps import LayerMaps

__all__ = ["TabulatedMap"]

_N = 32  # polynomial degree per interval


class TabulatedMap:
    """On-demand Chebyshev tables of ``kernel_map`` and ``chi_jacobian`` in log K."""

    def __init__(self, arch: LayerMaps, weight_var: float, bias_var: float, *,
                 rtol: float = 1e-12):
        self.arch, self.sw, self.sb, self.rtol = arch, float(weight_var), float(bias_var), rtol
        self._pieces: dict[tuple[int, int], object] = {}  # (level, index) -> coeffs or None
        self.max_error = 0.0

    def _exact(self, K):
        f, g = self.arch.kernel_and_chi(K, self.sw, self.sb)
        return np.asarray(f, dtype=float), np.asarray(g, dtype=float)

    def _build(self, level: int, index: int):
        width = 1.0 / 2 ** level  # in decades
        a, b = index * width, (index + 1) * width
        j = np.arange(_N + 1)
        x = np.cos(np.pi * j / _N)[::-1]
        xm = np.cos(np.pi * (j[:-1] + 0.5) / _N)[::-1]
        u = np.concatenate([x, xm])
        K = 10.0 ** (a + (u + 1) * 0.5 * (b - a))
        f, g = self._exact(K)
        fn, gn = f[:_N + 1], g[:_N + 1]
        cf, cg = C.chebfit(x, fn, _N), C.chebfit(x, gn, _N)
        ef = np.abs(C.chebval(xm, cf) - f[_N + 1:]) / np.maximum(np.abs(f[_N + 1:]), 1e-300)
        eg = np.abs(C.chebval(xm, cg) - g[_N + 1:]) / np.maximum(np.abs(g[_N + 1:]), 1e-300)
        err = float(max(ef.max(), eg.max()))
        if err <= self.rtol:
            self.max_error = max(self.max_error, err)
            return (a, b, cf, cg)
        return None

    def _piece(self, K: float):
        t = math.log10(K)
        for level in range(0, 7):
            width = 1.0 / 2 ** level
            idx = math.floor(t / width)
            key = (level, idx)
            if key not in self._pieces:
                self._pieces[key] = self._build(level, idx)
            p = self._pieces[key]
            if p is not None:
                return p
        return None

    def both(self, K: float) -> tuple[float, float]:
        """(f(K), χ_J(K))."""
        if not (K > 0 and math.isfinite(K)):
            f, g = self._exact(np.array([K]))
            return float(f[0]), float(g[0])
        p = self._piece(K)
        if p is None:
            f, g = self._exact(np.array([K]))
            return float(f[0]), float(g[0])
        a, b, cf, cg = p
        x = 2.0 * (math.log10(K) - a) / (b - a) - 1.0
        return float(C.chebval(x, cf)), float(C.chebval(x, cg))

    def kernel(self, K: float) -> float:
        return self.both(K)[0]

    def chi(self, K: float) -> float:
        return self.both(K)[1]
