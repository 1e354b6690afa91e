"""Least-squares core of the power-law fits of depth curves (``y ∝ l^slope``).

Both the theory's fit of its infinite-width curves
(:func:`critheory.theory.meanfield.depth.fit_power_law`) and the simulator's bootstrap fit
(:func:`critheory.simulation.fits.fit_power_law`) fit ``log y = intercept + slope · log l`` by
ordinary least squares on the depths of a window; this module holds the shared pieces:

* :func:`window_mask`: the depths of a window (and, given values, where they are finite and
  positive, i.e. have a logarithm);
* :func:`ols`: slope and intercept of a straight line, vectorized over many curves;
* :func:`local_slope`: the slope over the last tenth of the points (the asymptotic trend);
* :func:`fit_line`: all three for one curve ``(l, y)`` in log–log.

``slope`` is always the *signed* ``d log y / d log l``: ``J ∝ 1/l`` has slope ``-1`` (and decay
exponent ``+1`` in the ``J ∝ l^(-exponent)`` convention of the reports).

Examples
--------
>>> import numpy as np
>>> from critheory.common.powerlaw import fit_line
>>> l = np.arange(1, 101)
>>> f = fit_line(l, 3.0 * l ** -1.5, window=(10, 100))
>>> round(f.slope, 12), round(float(np.exp(f.intercept)), 12), f.n_points
(-1.5, 3.0, 91)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.errors import InvalidArgumentError

__all__ = ["window_mask", "tail_window", "ols", "local_slope", "fit_line", "LineFit"]


def window_mask(depths, window=None, *, values=None, positive: bool = True) -> np.ndarray:
    """Boolean mask of the depths in ``window``.

    Parameters
    ----------
    depths : array_like, shape (D,)
    window : (lo, hi) or None
        Inclusive bounds; either may be None (unbounded). None: every depth.
    values : array_like, shape (D,), optional
        Also require ``values`` finite and ``> 0`` (so that ``log values`` exists).
    positive : bool
        Also require ``depths > 0`` (so that ``log depths`` exists; False for a fit against
        ``l`` itself).
    """
    d = np.asarray(depths, dtype=float)
    lo, hi = (None, None) if window is None else window
    mask = np.ones(d.shape, dtype=bool)
    if lo is not None:
        mask &= d >= lo
    if hi is not None:
        mask &= d <= hi
    if positive:
        mask &= d > 0
    if values is not None:
        v = np.asarray(values, dtype=float)
        mask &= np.isfinite(v) & (v > 0)
    return mask


def tail_window(depths) -> tuple[int, int]:
    """The default window of a deep curve: the last 90 % of the depth range,
    ``(max(L // 10, l_first), L)`` with ``L`` the last depth.

    >>> tail_window(range(1, 1001))
    (100, 1000)
    """
    d = np.asarray(depths, dtype=float)
    return max(int(d[-1] // 10), int(d[0])), int(d[-1])


def ols(x, y):
    """Ordinary least squares of ``y`` against ``x``: ``(slope, intercept, sxx)``.

    ``x`` has shape (n,), ``y`` shape (..., n): every curve along the leading axes is fitted
    at once (slope and intercept have shape ``y.shape[:-1]``); ``sxx = Σ (x - x̄)²``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xm = x.mean()
    dx = x - xm
    sxx = float(dx @ dx)
    slope = (y - y.mean(axis=-1, keepdims=True)) @ dx / sxx
    intercept = y.mean(axis=-1) - slope * xm
    return slope, intercept, sxx


def local_slope(x, y) -> float:
    """Least-squares slope over the last ``max(3, n // 10)`` of the ``n`` points (at least 3)."""
    n = max(3, len(x) // 10)
    return float(ols(np.asarray(x)[-n:], np.asarray(y)[-n:])[0])


@dataclass(frozen=True)
class LineFit:
    """Least-squares line ``log y = intercept + slope · log l`` over the points in ``mask``.

    Attributes
    ----------
    slope, intercept : float
        Signed slope ``d log y / d log l`` and ``log y`` at ``l = 1``.
    local_slope : float
        Slope over the last tenth of the points (at least 3; NaN with fewer than 3 points).
    x, y : ndarray
        ``log l`` and ``log y`` of the points used.
    mask : ndarray of bool
        Which of the given depths were used.
    """

    slope: float
    intercept: float
    local_slope: float
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray

    @property
    def n_points(self) -> int:
        return int(self.x.size)

    @property
    def rms_residual(self) -> float:
        """Root-mean-square residual of ``log y`` about the line."""
        r = self.y - (self.intercept + self.slope * self.x)
        return float(np.sqrt(np.mean(r ** 2)))


def fit_line(depths, values, window=None, *, min_points: int = 2) -> LineFit:
    """Fit ``y ∝ l^slope`` by least squares of ``log y`` on ``log l`` over ``window``.

    Points outside the window, at ``l <= 0``, or where ``y`` is not finite and positive are
    left out; fewer than ``min_points`` (>= 2) points left raise
    :class:`~critheory.errors.InvalidArgumentError`.

    Parameters
    ----------
    depths, values : array_like, shape (D,)
    window : (lo, hi) or None
        Inclusive depth window (either end None: unbounded); None: every depth.
    min_points : int
    """
    l = np.asarray(depths, dtype=float)
    y = np.asarray(values, dtype=float)
    if l.ndim != 1 or y.shape != l.shape:
        raise InvalidArgumentError(f"depths and values must be 1-d arrays of one length, got "
                                   f"shapes {l.shape} and {y.shape}")
    mask = window_mask(l, window, values=y)
    n = int(mask.sum())
    if n < max(2, min_points):
        raise InvalidArgumentError(f"need at least {max(2, min_points)} finite positive points "
                                   f"in the fit window, got {n}")
    x, v = np.log(l[mask]), np.log(y[mask])
    slope, intercept, _ = ols(x, v)
    ls = local_slope(x, v) if n >= 3 else math.nan
    return LineFit(float(slope), float(intercept), ls, x, v, mask)
