"""Continuation of a root of ``log f(u) = log x`` along the real ``x`` axis, from a spectral edge.

Both spectral theories reduce the resolvent of ``JJᵀ`` at a real point ``x`` to one analytic
equation ``f(u) = x`` in one complex unknown ``u`` (MLP: the subordination point ``w`` of
``D²``; ResNet: ``m = xG(x) − 1``), solved in logarithms, ``ℓ(u) = log f(u) = log x``, so that
``f ~ λ^L`` never overflows. The density is ``−Im G(x + i0)/π``.

Method (no grid search): at a spectral edge ``λ`` the root is real and double,
``ℓ'(u_e) = 0``, so just inside the support ``u ≈ u_e + sqrt(2(log x − log λ)/ℓ''(u_e))``, the
branch with a positive density. From there the root is continued to every target point by a
predictor (tangent ``du/ds = 1/ℓ'``, ``s = log x``) and a Newton corrector with step-size
control: a step is accepted when Newton converges to ``|ℓ − s| < 1e-13``, the corrector
moves the predictor by less than a quarter of the step, and the root moves by less than half
its distance to the starting edge; else the step is quartered. The
imaginary part of the residual is taken modulo 2π (every branch of the logarithm is a root of
``f = x``; continuity picks the one connected to the edge).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# predictor–corrector steps allowed for one branch, beyond one per target point (a budget,
# never reached in tests; it grew with the targets since issue 31: 20 000 points used to
# exhaust a fixed 20 000 and read as a stall)
from critheory.common.limits import MAX_SPECTRUM_STEPS as MAX_STEPS
from critheory.errors import ConvergenceError
from critheory.theory.roots import refine_brackets

__all__ = ["continue_root", "edge_seed", "real_critical_points", "MAX_STEPS"]

#: steps allowed per target point on top of MAX_STEPS
STEPS_PER_TARGET = 4
_NEWTON_TOL = 1e-13
_NEWTON_ITERS = 12


def _wrap(r: complex) -> complex:
    return complex(r.real, (r.imag + np.pi) % (2.0 * np.pi) - np.pi)


def _newton(ell: Callable, u: complex, s: float, tol: float = _NEWTON_TOL
            ) -> tuple[complex, bool]:
    for _ in range(_NEWTON_ITERS):
        l, dl = ell(u)
        r = _wrap(complex(l) - s)
        if not np.isfinite(r) or dl == 0 or not np.isfinite(dl):
            return u, False
        du = r / complex(dl)
        u = u - du
        if abs(r) < tol or abs(du) <= 1e-15 * abs(u):
            l, _ = ell(u)
            return u, abs(_wrap(complex(l) - s)) < 1e3 * tol
    return u, False


def edge_seed(ell: Callable, u_e: float, s_e: float, d2: float, s: float,
              good: Callable[[complex], bool], tol: float = _NEWTON_TOL) -> complex:
    """The root at ``s`` (just inside the support) next to an edge ``(u_e, s_e)`` with
    ``ℓ''(u_e) = d2``: the square-root branch for which ``good`` holds, Newton-polished."""
    r = np.sqrt(complex(2.0 * (s - s_e) / d2))
    last = None
    for sign in (1.0, -1.0):
        u, ok = _newton(ell, complex(u_e) + sign * r, s, tol)
        if ok and good(u):
            return u
        last = u
    raise ConvergenceError(f"no root with a positive density next to the edge at "
                           f"x = {np.exp(s_e):.6g} (last iterate {last})")


def continue_root(ell: Callable, u0: complex, s0: float, targets: np.ndarray,
                  good: Callable[[complex], bool], h0: float, partial: bool = False,
                  anchor: complex | None = None, tol: float = _NEWTON_TOL) -> np.ndarray:
    """Continue the root ``u0`` of ``ℓ(u) = s0`` to ``ℓ(u) = s`` for each ``s`` in ``targets``
    (in marching order: monotone away from ``s0``); returns the roots. Where the step size
    underflows the continuation stops: a ConvergenceError, or with ``partial`` NaN for the
    targets not reached. ``anchor`` (the edge the march starts from) bounds every step:
    the root may move by at most half its distance to the anchor (plus 1e-6), so that the
    square-root growth next to an edge cannot throw the predictor onto another sheet of
    ``f(u) = x`` (``f`` has infinitely many roots: ``e^{2cm}``, ``(·)^L``). ``tol``: Newton's
    tolerance on ``ℓ`` (the rounding of ``ℓ`` grows with the depth: ``L log(·)``)."""
    if anchor is None:
        anchor = u0
    out = np.empty(len(targets), dtype=complex)
    u, s, h = complex(u0), float(s0), float(h0)
    steps = 0
    budget = MAX_STEPS + STEPS_PER_TARGET * len(targets)
    for i, st in enumerate(targets):
        while s != st:
            steps += 1
            if steps > budget:
                if not partial:
                    raise ConvergenceError("spectral density: continuation step budget "
                                           "exhausted")
                out[i:] = np.nan
                return out
            ds = st - s
            if abs(ds) <= 1e-13 * max(1.0, abs(s)):
                # the same point up to rounding (equal or nearly equal targets): polish only
                un, ok = _newton(ell, u, st, tol)
                if ok:
                    u = un
                s = st
                break
            step = ds if abs(ds) <= h else np.copysign(h, ds)
            _, dl = ell(u)
            pred = u + step / complex(dl) if dl != 0 else u
            un, ok = _newton(ell, pred, s + step, tol)
            near = abs(un - u) <= 0.5 * abs(u - anchor) + 1e-6 * (1.0 + abs(anchor))
            if (ok and near and abs(un - pred) <= 0.25 * abs(pred - u) + 1e-10 * abs(u)
                    and good(un)):
                u, s = un, s + step if abs(ds) > h else st
                h = min(2.0 * h, 0.1)
            else:
                h *= 0.25
                if h < 1e-15:
                    if not partial:
                        raise ConvergenceError(f"spectral density: continuation stalled at "
                                               f"x = {np.exp(s):.6g}")
                    out[i:] = np.nan
                    return out
        out[i] = u
    return out


def real_critical_points(dl_real: Callable[[np.ndarray], np.ndarray], lo: float, hi: float,
                         *, n: int = 400, log_side: str | None = None) -> np.ndarray:
    """Zeros of the real function ``ℓ'`` on ``(lo, hi)``: sign changes on a grid (uniform in
    the log of the distance to ``log_side`` = "lo"/"hi", else uniform), refined by regula
    falsi to 1e-15. Used for the spectral edges (two or three per spectrum), not the density."""
    if log_side == "lo":
        span = hi - lo
        g = lo + np.geomspace(1e-13 * span, span, n)[:-1]
    elif log_side == "hi":
        span = hi - lo
        g = hi - np.geomspace(1e-13 * span, span, n)[:-1][::-1]
    else:
        g = np.linspace(lo, hi, n + 2)[1:-1]
    with np.errstate(all="ignore"):
        v = np.asarray(dl_real(g), dtype=float)
    ok = np.isfinite(v)
    g, v = g[ok], v[ok]
    idx = np.flatnonzero(np.sign(v[:-1]) * np.sign(v[1:]) < 0)
    if idx.size == 0:
        return np.empty(0)
    return refine_brackets(lambda x, _: dl_real(x), g[idx], g[idx + 1], v[idx], v[idx + 1])
