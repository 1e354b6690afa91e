"""Phase diagrams of the mean-field theory: χ_J at the fixed point each input flows to, on grids.

The attractor of every grid entry is found in one vectorized scan (:func:`attractors`); the same
flow rule as :func:`critheory.theory.meanfield.fixed_points.analyze_point` (the first fixed point
in the direction ``f(K^1) − K^1`` points to), checked against it point by point in the tests.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.phase import phase_grid
>>> sws, sbs, Z = phase_grid(architecture("mlp", "relu"), (1.0, 3.0), (0.0, 0.5), n=3)
>>> [round(float(z), 12) for z in Z[0]]          # σ_b² = 0: log χ_J = log(σ_w²/2)
[-0.69314718056, 0.0, 0.405465108108]
"""
from __future__ import annotations

import numpy as np

from critheory.common.checks import check_hyper
from critheory.errors import InvalidArgumentError
from critheory.theory.meanfield.maps import LayerMaps, architecture, check_arch
from critheory.theory.meanfield.fixed_points import RUNAWAY_K, fixed_point_at
from critheory.theory.roots import refine_brackets
from critheory.common import limits

__all__ = ["attractors", "phase_grid", "phase_grid_mu", "log_chi_at_attractor", "MAX_POINTS"]

#: Largest number of grid points of one phase diagram (n² <= 1e6: ~1e8 kernel-map evaluations).
MAX_POINTS = limits.MAX_PHASE_POINTS


def _check_grid(n, ranges: dict) -> int:
    """n as an int >= 2 with n² <= MAX_POINTS; each range finite with LO < HI and LO >= bound."""
    try:
        ok = int(n) == n
    except (TypeError, ValueError):
        ok = False
    if not ok or n < 2:
        raise InvalidArgumentError(f"grid size n must be an integer >= 2, got {n!r}")
    if n * n > MAX_POINTS:
        raise InvalidArgumentError(f"a {n}x{n} phase grid exceeds {MAX_POINTS} points")
    for name, (rng, low, strict) in ranges.items():
        try:
            lo, hi = (float(v) for v in rng)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{name} must be (LO, HI), got {rng!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InvalidArgumentError(f"{name} must be finite with LO < HI, got {rng!r}")
        if lo < low or (strict and lo == low):
            raise InvalidArgumentError(f"{name} must start {'above' if strict else 'at or above'}"
                                       f" {low:g}, got {lo:g}")
    return int(n)


def attractors(arch: LayerMaps, sw, sb, q0: float = 1.0) -> np.ndarray:
    """The fixed point K* each (σ_w², σ_b²) entry flows to from ``K^1 = σ_b² + σ_w² q0``,
    vectorized (inf where K runs away, 0 where it collapses onto K* = 0).

    Scans ``f(K) - K`` on a log grid of K for every entry at once, brackets the first sign change
    in the direction of the flow, and refines all brackets together.
    """
    arch = check_arch(arch)
    sw, sb = np.broadcast_arrays(np.asarray(sw, dtype=float), np.asarray(sb, dtype=float))
    sw, sb = sw.ravel(), sb.ravel()
    n = sw.size
    K1 = np.asarray(arch.input_kernel(q0, sw, sb), dtype=float)
    if not arch.has_fixed_point:
        return np.full(n, np.inf)
    if arch.caps.affine_kernel_map:  # K' = μ²K + c
        mu2 = arch.mu2
        c = np.asarray(arch.kernel_map(np.ones(n), sw, sb), dtype=float) - mu2
        return c / (1.0 - mu2)
    G = np.logspace(-8, 8, 97)
    F = np.asarray(arch.kernel_map(G[None, :], sw[:, None], sb[:, None]), dtype=float) - G
    F1 = np.asarray(arch.kernel_map(K1, sw, sb), dtype=float) - K1
    out = np.full(n, np.nan)
    lo, hi, flo, fhi, ids = [], [], [], [], []
    for i in range(n):
        if F1[i] == 0:
            out[i] = K1[i]
            continue
        if F1[i] > 0:
            j = np.flatnonzero((G > K1[i]) & (F[i] <= 0))
            if not j.size:
                out[i] = np.inf
                continue
            j = j[0]
            a = max(K1[i], G[j - 1]) if j > 0 and G[j - 1] > K1[i] else K1[i]
            fa = F[i, j - 1] if a != K1[i] else F1[i]
            lo.append(a); hi.append(G[j]); flo.append(fa); fhi.append(F[i, j]); ids.append(i)
        else:
            j = np.flatnonzero((G < K1[i]) & (F[i] >= 0))
            if not j.size:
                out[i] = 0.0
                continue
            j = j[-1]
            b = G[j + 1] if j + 1 < G.size and G[j + 1] < K1[i] else K1[i]
            fb = F[i, j + 1] if b != K1[i] else F1[i]
            lo.append(G[j]); hi.append(b); flo.append(F[i, j]); fhi.append(fb); ids.append(i)
    if ids:
        ids = np.array(ids)
        r = refine_brackets(lambda x, k: np.asarray(arch.kernel_map(x, sw[k], sb[k])) - x,
                            np.array(lo), np.array(hi), np.array(flo), np.array(fhi), ids,
                            xtol=1e-12)
        out[ids] = r
    return out


def phase_grid(arch, sw_range=(0.25, 4.0), sb_range=(0.0, 1.0), n: int = 41, q0: float = 1.0):
    """log χ_J on an n×n grid of (σ_w², σ_b²) at the fixed point the input flows to
    (:func:`attractors`); a runaway kernel is evaluated at
    K = :data:`~critheory.theory.meanfield.fixed_points.RUNAWAY_K`, as in ``analyze_point``.

    Examples
    --------
    >>> import critheory as ct
    >>> sws, sbs, log_chi = ct.phase_grid(ct.architecture("mlp", "tanh"), n=3)
    >>> log_chi.shape
    (3, 3)
    """
    arch = check_arch(arch)
    n = _check_grid(n, {"weight range": (sw_range, 0.0, True),
                        "bias range": (sb_range, 0.0, False)})
    sws = np.linspace(*sw_range, n)
    sbs = np.linspace(*sb_range, n)
    W, B = np.meshgrid(sws, sbs)
    return sws, sbs, log_chi_at_attractor(arch, W.ravel(), B.ravel(), q0).reshape(n, n)


def log_chi_at_attractor(arch: LayerMaps, w: np.ndarray, b: np.ndarray,
                         q0: float = 1.0) -> np.ndarray:
    """log χ_J at the fixed point each (σ_w², σ_b²) entry flows to (:func:`attractors`; a
    runaway at ``RUNAWAY_K``, K* = 0 by the one-sided limits of ``analyze_point``); NaN where
    χ_J <= 0."""
    K = attractors(arch, w, b, q0)
    K = np.where(np.isfinite(K), K, RUNAWAY_K)
    chi = np.full(K.shape, np.nan)
    pos = K > 0
    chi[pos] = np.asarray(arch.chi_jacobian(K[pos], w[pos], b[pos]), dtype=float)
    if np.any(~pos):  # K* = 0: χ_J = μ² + σ_w² φ'(0)² where defined
        for i in np.flatnonzero(~pos):
            chi[i] = fixed_point_at(arch, 0.0, w[i], b[i]).chi_jacobian
    with np.errstate(all="ignore"):
        return np.where(chi > 0, np.log(chi), np.nan)


def phase_grid_mu(arch_name: str, activation, sw_range=(0.25, 4.0), mu_range=(0.0, 1.0),
                  bias_var: float = 0.0, n: int = 41):
    """log χ_J on an n×n grid of (σ_w², μ) at fixed σ_b² (each μ row vectorized over σ_w²)."""
    n = _check_grid(n, {"weight range": (sw_range, 0.0, True),
                        "mu range": (mu_range, 0.0, False)})
    check_hyper(sw_range[0], bias_var)
    sws = np.linspace(*sw_range, n)
    mus = np.linspace(*mu_range, n)
    Z = np.full((n, n), np.nan)
    for i, mu in enumerate(mus):
        Z[i] = log_chi_at_attractor(architecture(arch_name, activation, mu), sws,
                                    np.full(sws.shape, bias_var))
    return sws, mus, Z
