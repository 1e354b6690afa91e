"""Chebyshev tables of a layer's kernel map and χ_J, for iterating thousands of layers fast.

A deep recursion evaluates ``f(K^l)`` and ``χ_J(K^l)`` one layer at a time, which cannot be
vectorized over depth. Both are smooth functions of K > 0 (Gaussian smoothing makes them analytic
even for kinked φ), so they are tabulated on demand, per interval of log K, by Chebyshev
interpolation at 33 points of the second kind, computed with one vectorized call of the exact
maps. Each interval is accepted only when the interpolant matches direct evaluation at the 32
interval midpoints to ``rtol`` (relative, default 1e-12); otherwise it is halved (up to 2^-6 of a
decade) and, failing that, the exact map is used for that interval.

The machinery is :class:`PiecewiseChebyshev`: verified on-demand tables of any vectorized
function ``x -> (m, n)`` values of one variable, on the pieces ``[i w, (i + 1) w]`` of a grid of
width ``w = width / 2^level``. :class:`TabulatedMap` is its use on ``x = log10 K``; the NTK
coefficients (:mod:`critheory.theory.ntk.depth`) and the MLP block of the transformer
(:mod:`critheory.theory.transformer.rules`) use it too.

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
from typing import Callable

import numpy as np
from numpy.polynomial import chebyshev as C

from critheory.theory.meanfield.maps import LayerMaps

__all__ = ["TabulatedMap", "PiecewiseChebyshev"]

_N = 32  # polynomial degree per interval
_LEVELS = 7  # a piece is halved at most 6 times
_J = np.arange(_N + 1)
_X = np.cos(np.pi * _J / _N)[::-1]                    # Chebyshev points of the second kind
_XM = np.cos(np.pi * (_J[:-1] + 0.5) / _N)[::-1]      # the check points between them
_U = np.concatenate([_X, _XM])


def _descending(c: list) -> tuple:
    """Chebyshev coefficients from the highest degree down as ``(first, second, rest)``,
    without the zero ones above the last non-zero one (Clenshaw's recurrence carries exact
    zeros through them unchanged, so the digits stay those of
    :func:`numpy.polynomial.chebyshev.chebval` at a finite point); ``(c0, None, None)`` for a
    constant series."""
    n = len(c)
    while n > 1 and c[n - 1] == 0.0:
        n -= 1
    if n == 1:
        return c[0], None, None
    r = c[:n][::-1]
    return r[0], r[1], r[2:]


class PiecewiseChebyshev:
    """Verified piecewise-Chebyshev tables of a vectorized function of one variable.

    Parameters
    ----------
    func : callable
        ``func(x)`` for a 1-D array ``x`` returns an array of shape ``(m, x.size)`` (m outputs).
    width : float
        Width of the level-0 pieces ``[i width, (i + 1) width]``; a piece is halved (at most 6
        times) until the degree-32 interpolant of every output matches ``func`` at the 32
        midpoints of its nodes to ``|p − f| <= rtol max(|f|, floor)`` (an output equal at
        all 65 points is stored as that constant, exactly); failing that, the points
        of that piece are evaluated by ``func`` directly (the contract holds either way).
    rtol : float
    floor : float or array of shape (m,)
        Absolute scale below which the error is measured against ``floor`` instead of ``|f|``
        (default 1e-300: a purely relative error).
    groups : array of int, shape (m,), optional
        Measure each output's error against the largest ``|f|`` on the piece of the outputs
        with the same label (floored by ``floor``) instead of point by point: for outputs that
        are the coefficients of one map (the terms of one sum), some of which cross zero or are
        negligible beside the others, where a pointwise relative check cannot pass.
    errors : tuple of exception classes
        Raised by ``func`` on a piece: the piece is not tabulated (its points go to ``func``,
        which raises for the point itself if it is the culprit).
    lo, hi : float
        Domain: pieces are clipped to it (the interpolant stays inside its nodes).
    """

    def __init__(self, func: Callable, width: float, *, rtol: float = 1e-12, floor=1e-300,
                 errors: tuple = (), lo: float = -math.inf, hi: float = math.inf,
                 groups=None):
        self.func, self.width, self.rtol = func, float(width), float(rtol)
        self.groups = None if groups is None else np.asarray(groups, dtype=np.int64)
        self.floor, self.errors, self.lo, self.hi = floor, tuple(errors), lo, hi
        self._pieces: dict[tuple[int, int], object] = {}  # (level, index) -> coeffs or None
        self._rows: dict[tuple[float, float], list] = {}  # (a, b) -> coefficients per output
        self.max_error = 0.0

    def _build(self, level: int, index: int):
        w = self.width / 2 ** level
        a, b = max(index * w, self.lo), min((index + 1) * w, self.hi)
        if not b > a:
            return None
        try:
            y = np.asarray(self.func(a + (_U + 1) * 0.5 * (b - a)), dtype=float)
        except self.errors:
            return None
        y = y.reshape(-1, _U.size)
        if not np.all(np.isfinite(y)):
            return None
        # one fit per output (a multi-column least-squares solve differs in the last digits)
        c = np.stack([C.chebfit(_X, yk[:_N + 1], _N) for yk in y], axis=1)   # (N + 1, m)
        const = np.all(y == y[:, :1], axis=1)      # an exactly constant output stays exact
        c[:, const] = 0.0
        c[0, const] = y[const, 0]
        ym = y[:, _N + 1:]
        if self.groups is not None:
            top = np.max(np.abs(y), axis=1)
            big = np.zeros(self.groups.max() + 1)
            np.maximum.at(big, self.groups, top)
            scale = np.maximum(big[self.groups][:, None], np.reshape(self.floor, (-1, 1)))
        else:
            scale = np.maximum(np.abs(ym), np.reshape(self.floor, (-1, 1)))
        err = float((np.abs(C.chebval(_XM, c) - ym) / scale).max())
        if err <= self.rtol:
            self.max_error = max(self.max_error, err)
            return (a, b, c)
        return None

    def piece(self, x: float):
        """``(a, b, coefficients)`` of the accepted piece holding ``x``, or None."""
        for level in range(_LEVELS):
            w = self.width / 2 ** level
            idx = math.floor(x / w)
            if idx * w >= self.hi:        # x on the upper end of the domain
                idx -= 1
            key = (level, idx)
            if key not in self._pieces:
                self._pieces[key] = self._build(level, idx)
            p = self._pieces[key]
            if p is not None:
                return p
        return None

    def values(self, x: float) -> list[float] | None:
        """The m outputs at one point from the accepted piece holding ``x`` (None where no piece
        does): Clenshaw's recurrence of :func:`numpy.polynomial.chebyshev.chebval` in Python
        floats, the same operations and so the same digits, without its per-call array
        overhead (a deep recursion calls this once a layer)."""
        p = self.piece(x)
        if p is None:
            return None
        a, b, c = p
        rows = self._rows.get((a, b))
        if rows is None:
            rows = self._rows[(a, b)] = [_descending(r) for r in c.T.tolist()]
        t = 2.0 * (x - a) / (b - a) - 1.0
        t2 = 2 * t
        out = []
        for c1, c0, rest in rows:       # the coefficients from the highest degree down
            if rest is None:            # a constant: what the recurrence returns for it
                out.append(c1)
                continue
            for ci in rest:
                c0, c1 = ci - c1, c0 + c1 * t2
            out.append(c0 + c1 * t)
        return out

    def at(self, x: float) -> np.ndarray:
        """The m outputs at one point (shape (m,))."""
        p = self.piece(x) if math.isfinite(x) else None
        if p is None:
            return np.asarray(self.func(np.array([x])), dtype=float).reshape(-1)
        a, b, c = p
        return C.chebval(2.0 * (x - a) / (b - a) - 1.0, c)

    def __call__(self, x) -> np.ndarray:
        """The m outputs at every point of ``x`` (shape (m,) + x.shape): each piece's points
        in one Chebyshev evaluation, the untabulated ones in one call of ``func``."""
        x = np.asarray(x, dtype=float)
        flat = x.ravel()
        out = None
        todo = np.ones(flat.size, dtype=bool)
        direct = np.zeros(flat.size, dtype=bool)
        while todo.any():
            i0 = int(np.flatnonzero(todo)[0])
            p = self.piece(flat[i0]) if math.isfinite(flat[i0]) else None
            if p is None:
                sel = todo & (flat == flat[i0])
                direct |= sel
            else:
                a, b, c = p
                sel = todo & (flat >= a) & (flat <= b)
                v = C.chebval(2.0 * (flat[sel] - a) / (b - a) - 1.0, c)   # (m, k)
                if out is None:
                    out = np.empty((v.shape[0], flat.size))
                out[:, sel] = v
            todo &= ~sel
        if direct.any():
            v = np.asarray(self.func(flat[direct]), dtype=float).reshape(-1, int(direct.sum()))
            if out is None:
                out = np.empty((v.shape[0], flat.size))
            out[:, direct] = v
        if out is None:
            out = np.asarray(self.func(flat), dtype=float).reshape(-1, 0)
        return out.reshape((-1,) + x.shape)


class TabulatedMap:
    """On-demand Chebyshev tables of ``kernel_map`` and ``chi_jacobian`` in log K."""

    def __init__(self, arch: LayerMaps, weight_var: float, bias_var: float, *,
                 rtol: float = 1e-12):
        self.arch, self.sw, self.sb, self.rtol = arch, float(weight_var), float(bias_var), rtol
        self._table = PiecewiseChebyshev(lambda t: np.stack(self._exact(10.0 ** t)), 1.0,
                                         rtol=rtol)

    @property
    def max_error(self) -> float:
        return self._table.max_error

    def _exact(self, K):
        f, g = self.arch.kernel_and_chi(K, self.sw, self.sb)
        return np.asarray(f, dtype=float), np.asarray(g, dtype=float)

    def both(self, K: float) -> tuple[float, float]:
        """(f(K), χ_J(K))."""
        if not (K > 0 and math.isfinite(K)):
            f, g = self._exact(np.array([K]))
            return float(f[0]), float(g[0])
        v = self._table.values(math.log10(K))
        if v is None:
            f, g = self._exact(np.array([K]))
            return float(f[0]), float(g[0])
        return v[0], v[1]

    def kernel(self, K: float) -> float:
        return self.both(K)[0]

    def chi(self, K: float) -> float:
        return self.both(K)[1]
