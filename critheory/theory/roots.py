"""Vectorized bracketing root-finding: scan a grid for sign changes, refine all brackets at once.

:func:`brent` is the scalar solver of the few one-dimensional problems (a kernel's second moment,
a correlation fixed point, the infinite-depth kernel): Brent's method, here so that a command
does not import ``scipy.optimize`` (0.3–0.4 s of start-up) for one root.

Each iteration of :func:`refine_brackets` evaluates the function once on the array of all unfinished brackets, so that a
whole critical line (or every fixed point of a grid of hyperparameters) costs a few dozen
vectorized Gaussian expectations instead of one scalar solve per point.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from critheory.errors import ConvergenceError

__all__ = ["brent", "refine_brackets", "sign_change_brackets"]


def sign_change_brackets(values: np.ndarray) -> np.ndarray:
    """Indices i with values[..., i] and values[..., i+1] of opposite sign (or an exact zero at i).

    Returns an array of shape (n, ndim) of multi-indices along the last axis (as from argwhere).
    """
    v = np.asarray(values, dtype=float)
    a, b = v[..., :-1], v[..., 1:]
    ok = np.isfinite(a) & np.isfinite(b)
    change = ok & (((a < 0) & (b > 0)) | ((a > 0) & (b < 0)) | (a == 0))
    return np.argwhere(change)


#: the absolute floor of a bracket's width: float64's smallest subnormal number, so that a root
#: near 1e-300 keeps its relative accuracy (the nextafter test below ends every bracket)
_TINY = float(np.nextafter(0.0, 1.0))


def refine_brackets(f: Callable[[np.ndarray, np.ndarray], np.ndarray], lo: np.ndarray,
                    hi: np.ndarray, flo: np.ndarray, fhi: np.ndarray, ids: np.ndarray | None = None,
                    *, xtol: float = 1e-15, atol: float = 0.0, maxiter: int = 200) -> np.ndarray:
    """Refine many brackets [lo, hi] with f(lo)·f(hi) <= 0 at once (Illinois regula falsi with
    bisection safeguard).

    Parameters
    ----------
    f : callable
        ``f(x, ids)`` evaluated on an array of abscissae; ``ids`` selects which problem each
        entry belongs to (an index array passed through unchanged).
    lo, hi, flo, fhi : ndarray
        Brackets and function values at their ends.
    xtol, atol : float
        Relative and absolute bracket widths at which to stop.

    Returns
    -------
    ndarray
        The roots (relative accuracy ~ xtol).
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    flo, fhi = np.array(flo, dtype=float), np.array(fhi, dtype=float)
    ids = np.arange(lo.size) if ids is None else np.asarray(ids)
    root = np.where(flo == 0, lo, np.where(fhi == 0, hi, np.nan))
    active = np.isnan(root)
    side = np.zeros(lo.shape, dtype=int)
    stall = np.zeros(lo.shape, dtype=int)
    prev_x = np.full(lo.shape, np.nan)  # iterations in a row that kept the same end
    for it in range(maxiter):
        if not np.any(active):
            break
        idx = np.flatnonzero(active)
        a, b, fa, fb = lo[idx], hi[idx], flo[idx], fhi[idx]
        width = np.abs(b - a)
        done = width <= xtol * np.maximum(np.abs(a), np.abs(b)) + atol + _TINY
        # no representable point strictly inside: converged to rounding
        done |= (np.nextafter(np.minimum(a, b), np.inf) >= np.maximum(a, b))
        # Illinois step; bisection when the secant leaves the bracket or one end is stuck 3 times
        with np.errstate(all="ignore"):
            x = b - fb * (b - a) / (fb - fa)
        bad = ~np.isfinite(x) | (x <= np.minimum(a, b)) | (x >= np.maximum(a, b)) | (stall[idx] >= 3)
        x = np.where(bad, 0.5 * (a + b), x)
        # secant iterates that stop moving have converged even when regula falsi keeps one
        # end of the bracket fixed
        moved = np.abs(x - prev_x[idx])
        prev_x[idx] = x
        fx = np.asarray(f(x, ids[idx]), dtype=float)
        if not np.all(np.isfinite(fx)):
            raise ConvergenceError("non-finite function value while refining a root")
        zero = fx == 0
        same_lo = np.sign(fx) == np.sign(fa)
        # replace the end with the same sign
        new_lo = np.where(same_lo, x, a)
        new_hi = np.where(same_lo, b, x)
        new_flo = np.where(same_lo, fx, fa)
        new_fhi = np.where(same_lo, fb, fx)
        s = side[idx]
        # Illinois: halve the stale end's value when the same end is kept twice
        kept_hi = same_lo
        new_fhi = np.where(kept_hi & (s == 1), new_fhi * 0.5, new_fhi)
        new_flo = np.where(~kept_hi & (s == -1), new_flo * 0.5, new_flo)
        stall[idx] = np.where(np.where(kept_hi, 1, -1) == s, stall[idx] + 1, 0)
        stall[idx] = np.where(bad, 0, stall[idx])
        side[idx] = np.where(kept_hi, 1, -1)
        lo[idx], hi[idx], flo[idx], fhi[idx] = new_lo, new_hi, new_flo, new_fhi
        still = ~bad & (moved <= 4 * (xtol * np.abs(x) + atol) + 1e-300) & ~zero & ~done
        root[idx[still]] = x[still]
        finished = done | zero | still
        root[idx[zero]] = x[zero]
        fin = idx[done & ~zero]
        # pick the end with the smaller |f| (values may be halved: use the midpoint)
        root[fin] = 0.5 * (lo[fin] + hi[fin])
        active[idx[finished]] = False
    else:
        if np.any(active):
            raise ConvergenceError("bracket refinement did not converge")
    return root


def brent(f: Callable[[float], float], a: float, b: float, *, xtol: float = 2e-12,
          rtol: float = 4 * np.finfo(float).eps, maxiter: int = 200) -> float:
    """A root of the scalar ``f`` in the bracket ``[a, b]`` (``f(a)·f(b) <= 0``) by Brent's
    method: inverse quadratic interpolation or the secant step where it stays inside the
    bracket and shrinks it fast enough, bisection otherwise (R. P. Brent, *Algorithms for
    Minimization without Derivatives*, 1973, ch. 4).

    Stops when the bracket is narrower than ``2 (xtol + rtol |x|)``, as ``scipy.optimize.brentq``
    does with the same arguments; the result is then within that width of a sign change of f.

    Examples
    --------
    >>> round(brent(lambda x: x * x - 2.0, 0.0, 2.0, xtol=1e-15), 15)
    1.414213562373095
    """
    a, b = float(a), float(b)
    fa, fb = float(f(a)), float(f(b))
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    if not (np.isfinite(fa) and np.isfinite(fb)) or (fa > 0) == (fb > 0):
        raise ConvergenceError(f"no sign change of f on [{a!r}, {b!r}]: f = {fa!r}, {fb!r}")
    c, fc = a, fa            # c: the previous bracket end, so that [b, c] brackets the root
    d = e = b - a
    for _ in range(maxiter):
        if (fb > 0) == (fc > 0):
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):       # b: the best estimate
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = xtol + rtol * abs(b)
        m = 0.5 * (c - b)
        if abs(m) <= tol or fb == 0.0:
            return b
        if abs(e) >= tol and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:                                   # secant
                p, q = 2.0 * m * s, 1.0 - s
            else:                                        # inverse quadratic interpolation
                qa, r = fa / fc, fb / fc
                p = s * (2.0 * m * qa * (qa - r) - (b - a) * (r - 1.0))
                q = (qa - 1.0) * (r - 1.0) * (s - 1.0)
            if p > 0:
                q = -q
            p = abs(p)
            if 2.0 * p < min(3.0 * m * q - abs(tol * q), abs(e * q)):
                e, d = d, p / q                          # the interpolation step is accepted
            else:
                d = e = m                                # bisection
        else:
            d = e = m
        a, fa = b, fb
        b += d if abs(d) > tol else (tol if m > 0 else -tol)
        fb = float(f(b))
        if not np.isfinite(fb):
            raise ConvergenceError(f"f is not finite at {b!r} inside the bracket")
    raise ConvergenceError(f"Brent's method did not converge in {maxiter} iterations")
