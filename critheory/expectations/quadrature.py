"""Vectorized Gaussian quadrature with error estimates.

The one-dimensional core computes ``E[g(μ + σ z)]``, z ~ N(0, 1), for arrays of (μ, σ) at once:

1. Gauss–Hermite (probabilists' weight) with n = 24, 48, 96, 192 nodes, for integrands without
   breakpoints and without exponential growth; an entry is accepted when two successive rules
   agree to the tolerance, and its error estimate is their difference.
2. Otherwise (kinks, sharp features, exponential growth, or Gauss–Hermite not converged), a
   composite Gauss–Legendre rule on the window ``[-L - α_-σ, L + α_+σ]`` (L = 11, α_± the
   integrand's exponential growth rates) split at every breakpoint of g mapped to z — so no node
   ever lies on a kink — and at a mesh graded geometrically toward 0 both in x (scale of the
   activation) and in z (scale of the Gaussian). The number of nodes per panel doubles
   (8, 16, ..., 256) until two successive rules agree; the error estimate is their difference.

Both rules converge geometrically for integrands analytic on each panel (Trefethen, *Is Gauss
quadrature better than Clenshaw–Curtis?*, SIAM Rev. 50 (2008)); comparing successive rules
gives a conservative error estimate for the finer one.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from critheory.expectations.de_quadrature import WINDOW_L, noise_average, expect_centered
from critheory.errors import ConvergenceError, GrowthError

__all__ = ["QuadResult", "expect_1d", "expect_z", "WINDOW_L"]

_GH_LADDER = (24, 48, 96, 192)
_GL_LADDER = (8, 16, 32, 64, 128, 256)
_Z_GRID = np.array([0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 4.0, -4.0, 5.5, -5.5, 7.0, -7.0,
                    9.0, -9.0])
_X_GRID = np.concatenate([[0.0], 2.0 ** np.arange(-5, 6), -(2.0 ** np.arange(-5, 6))])


def x_grid(reach: float) -> np.ndarray:
    """Panel edges in x around the activation's features at 0: ``_X_GRID`` (±2^-5 … ±32), then
    geometrically by 8 out to ``|x| <= reach`` (the Gaussian window's extent in x).

    Without the outer part, a wide Gaussian (std 10⁶) had one panel from x = −32 to the first
    z-grid edge x = −std, whose Gauss–Legendre nodes all fall where e^{a x} has vanished: the
    mass of a tail e^{a x} (ELU's φφ'') on x < −32 was dropped, and both node levels agreed on
    it (elu(0.05x) at K = 10¹², E[φφ''] 36 % off with an error bar of 1e-22). With panels
    [32·8^j, 32·8^{j+1}] some panel is as wide as any decay length 1/a, where the rule resolves
    it; their number grows like log₈(reach), at most 16 per side (to 2^53).

    >>> x_grid(10.0).size == _X_GRID.size
    True
    >>> float(x_grid(1e6).max()), float(x_grid(1e300).max()) == 2.0 ** 53
    (1048576.0, True)
    """
    if not np.isfinite(reach) or reach <= 32.0:
        return _X_GRID
    # at most to 2^53 (32·8^16): beyond it float64 x is spaced by >= 1 and the evaluators'
    # exact argument reduction stops, so panels there would cost arbitrary-precision repairs
    # (softplus at K = 1e300: 25 620 of them, refused) for features no formula places there
    j = int(np.ceil(np.log(min(reach, 2.0 ** 53) / 32.0) / np.log(8.0)))
    far = 32.0 * 8.0 ** np.arange(1, j + 1)
    return np.concatenate([_X_GRID, far, -far])
_SQRT2PI = np.sqrt(2.0 * np.pi)
_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class QuadResult:
    """Values, error estimates and the method used per entry ('gauss_hermite' or
    'gauss_legendre_composite')."""

    value: np.ndarray
    error: np.ndarray
    method: np.ndarray


@lru_cache(maxsize=None)
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ∫ f(z) e^{-z²/2} dz / √(2π)."""
    t, w = np.polynomial.hermite_e.hermegauss(n)
    return t, w / _SQRT2PI


@lru_cache(maxsize=None)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    t, w = np.polynomial.legendre.leggauss(n)
    return t, w


def _tol(q: np.ndarray, absq: np.ndarray, rtol: float, floor=0.0) -> np.ndarray:
    # relative to the value, with a floor relative to ∫|g| for integrals that cancel to ~0
    # and an absolute floor given by the caller
    return np.maximum(np.maximum(rtol * np.abs(q), 1e-15 * absq), floor) + 1e-300


def expect_z(zfunc: Callable[[np.ndarray, np.ndarray], np.ndarray], n_entries: int,
             edges: np.ndarray | None, *, smooth: bool, rtol: float = 1e-13,
             max_error: float = 1e-7, abs_floor: np.ndarray | float = 0.0) -> QuadResult:
    """E[G_i(z)], z ~ N(0,1), for entries i = 0..M-1.

    Parameters
    ----------
    zfunc : callable
        ``zfunc(Z, idx)`` evaluates the integrands of the entries ``idx`` (int array of length
        m) at nodes ``Z`` of shape (m, P) and returns an array of shape (m, P).
    n_entries : int
        M.
    edges : ndarray of shape (M, E)
        Panel edges in z for the composite rule (any order, duplicates allowed); the first
        two columns must be the window ends.
    smooth : bool
        Try Gauss–Hermite first.
    rtol : float
        Requested relative accuracy.
    max_error : float
        Relative error estimate above which a ConvergenceError is raised.
    abs_floor : float or ndarray of shape (M,)
        Absolute error that is always acceptable (e.g. a fraction of a Cauchy–Schwarz bound
        for integrals that cancel to far below the size of their integrand).
    """
    floor_all = np.broadcast_to(np.asarray(abs_floor, dtype=float), (n_entries,))
    M = n_entries
    value = np.full(M, np.nan)
    error = np.full(M, np.nan)
    method = np.empty(M, dtype=object)
    smooth_mask = np.broadcast_to(np.asarray(smooth, dtype=bool), (M,))
    todo = np.flatnonzero(smooth_mask)
    rest = np.flatnonzero(~smooth_mask)
    if todo.size:
        prev = None
        for n in _GH_LADDER:
            t, w = _hermite(n)
            Z = np.broadcast_to(t, (todo.size, n))
            with np.errstate(all="ignore"):
                G = zfunc(Z, todo)
            with np.errstate(all="ignore"):
                q = G @ w
                qa = np.abs(G) @ w
            if prev is not None:
                with np.errstate(invalid="ignore"):  # inf - inf: not converged, handled below
                    err = np.abs(q - prev)
                ok = np.isfinite(q) & (err <= _tol(q, qa, rtol, floor_all[todo]))
                value[todo[ok]] = q[ok]
                error[todo[ok]] = np.maximum(err[ok], 4 * _EPS * qa[ok])
                method[todo[ok]] = "gauss_hermite"
                # Entries whose 24- and 48-node rules still differ by more than 1e-4·E|g| have
                # a nearby singularity (tanh at large K, sin/cos at large K): Gauss–Hermite
                # converges like exp(-c√n) there and would not reach the tolerance by 192
                # nodes, so send them to the composite rule now instead of spending 288 more
                # evaluations each.
                stay = ~ok
                if n == _GH_LADDER[1]:
                    hopeless = ~(err <= 1e-4 * qa)
                    rest = np.concatenate([rest, todo[stay & hopeless]])
                    stay &= ~hopeless
                todo, q = todo[stay], q[stay]
                if not todo.size:
                    break
            prev = q
    todo = np.sort(np.concatenate([todo, rest]))
    if todo.size:
        if edges is None:
            raise ValueError("edges are required for the composite rule")
        _composite(zfunc, todo, edges, rtol, max_error, value, error, method, floor_all[todo])
    return QuadResult(value, error, method)


def _node_rounding(G: np.ndarray, Z: np.ndarray, w: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Per panel, ε∫|z ∂_z G| by differences along its nodes (rows of ``G`` at ``Z``, rule
    weights ``w``, half-widths ``half``): the nodes are rounded (x = σz carries ε|x|), so g's
    value at a node carries ε|x g'(x)|. softsign(leaky_relu(30(x − 1))), E[φ'²] at K = 3, was
    5 ulps of ∫|g| off (|x g'/g| ~ 120 near x = 1) where the 8-ulp floor alone promised 1
    (found by the fuzz suite)."""
    with np.errstate(all="ignore"):
        dG = np.gradient(G, axis=1) / np.gradient(Z, axis=1)
        return (np.abs(Z * np.nan_to_num(dG)) @ w) * half * _EPS


def _composite(zfunc, todo, edges, rtol, max_error, value, error, method, floor) -> None:
    """Panel-adaptive composite Gauss–Legendre for the entries ``todo`` (fills value/error/method).

    Every panel of every entry runs the ladder 8, 16, 32, ... nodes on its own: a panel stops
    when its two last rules differ by at most its share of the entry's tolerance (half the larger
    of its part of ∫|g| and 1/number of panels), so the panels next to a feature (a kink in φ'', the bend of tanh at |x| ~ 1)
    refine while the others stop at 16 nodes, and panels of zero width (grid points clipped to
    the window) cost nothing. The entry's error estimate is the sum of its panels' estimates.
    """
    e = np.sort(edges[todo], axis=1)
    lo, hi = e[:, :-1], e[:, 1:]
    ent, col = np.nonzero(hi > lo)  # panels of positive width
    m = todo.size
    mid = 0.5 * (hi[ent, col] + lo[ent, col])
    half = 0.5 * (hi[ent, col] - lo[ent, col])
    npan = ent.size
    n_e = np.bincount(ent, minlength=m).astype(float)
    q_p = np.zeros(npan)
    qa_p = np.zeros(npan)
    cond_p = np.zeros(npan)
    err_p = np.full(npan, np.inf)
    prev_err = np.full(npan, np.nan)
    done = np.zeros(npan, dtype=bool)
    # panels whose sum is ±inf (the integrand overflows float64 at finite nodes, e^x at x > 709):
    # more nodes cannot make it finite, so they stop refining and their entry is reported as
    # not finite at once instead of after the whole ladder
    dead = np.zeros(npan, dtype=bool)
    for level, n in enumerate(_GL_LADDER):
        act = np.flatnonzero(~done & ~dead)
        if not act.size:
            break
        t, w = _legendre(n)
        Z = mid[act, None] + half[act, None] * t  # (panels, n)
        with np.errstate(all="ignore"):
            G = zfunc(Z, todo[ent[act]])
            G = G * np.exp(-0.5 * Z * Z) / _SQRT2PI
        G = np.where(np.isnan(G) & (np.abs(Z) > 30), 0.0, G)
        with np.errstate(all="ignore"):
            q_new = (G @ w) * half[act]
            qa_new = (np.abs(G) @ w) * half[act]
            if level:
                err_new = np.abs(q_new - q_p[act])
        q_p[act], qa_p[act] = q_new, qa_new
        dead[act] = np.isinf(q_new)
        if not level:
            continue
        with np.errstate(all="ignore"):
            q_e = np.bincount(ent, weights=q_p, minlength=m)
            qa_e = np.bincount(ent, weights=qa_p, minlength=m)
            tol_e = _tol(q_e, qa_e, rtol, floor)
            # allocation: each panel may use the larger of an equal part of the entry's
            # tolerance and its share of ∫|g| (the shares and the equal parts each sum to 1,
            # so the panels' errors sum to at most twice the tolerance)
            share = np.where(qa_e[ent[act]] > 0, qa_new / qa_e[ent[act]], 1.0)
            share = 0.5 * np.maximum(share, 1.0 / n_e[ent[act]])
            tol_p = tol_e[ent[act]] * share + 1e-300
            ok = np.isfinite(q_new) & (err_new <= tol_p)
            # Round-off plateau: Gauss–Legendre converges geometrically on analytic panels, so
            # once doubling the nodes no longer shrinks the difference (ratio >= 1/10) while it
            # is within 1000x of the tolerance, the rule has reached the float64 noise of the
            # integrand's evaluation (e.g. cancelling terms in φφ''): accept and report the
            # larger of the last two differences.
            pe = prev_err[act]
            plateau = (np.isfinite(q_new) & ~ok & (err_new <= 1e3 * tol_p)
                       & (err_new >= 0.1 * pe))
        est = np.where(plateau, np.maximum(err_new, np.nan_to_num(pe)), err_new)
        err_p[act] = np.maximum(est, 1e-16 * qa_new)
        prev_err[act] = err_new
        done[act] = ok | plateau
        # the conditioning of the accepted rule (or of the last one tried)
        sel = np.flatnonzero(ok | plateau) if level < len(_GL_LADDER) - 1 else np.arange(act.size)
        if sel.size:
            cond_p[act[sel]] = _node_rounding(G[sel], Z[sel], w, half[act[sel]])
    q_e = np.bincount(ent, weights=q_p, minlength=m)
    qa_e = np.bincount(ent, weights=qa_p, minlength=m)
    with np.errstate(invalid="ignore"):
        err_e = np.bincount(ent, weights=err_p, minlength=m)
    unfinished = np.bincount(ent, weights=~done, minlength=m) > 0
    if np.any(unfinished):
        bad = unfinished & ~np.isfinite(q_e)
        if np.any(bad):
            raise GrowthError(
                "the Gaussian expectation is not finite (integrand overflows or is undefined"
                " inside the Gaussian window)")
        rel = err_e / np.maximum(np.abs(q_e), 1e-300)
        if np.any(unfinished & (rel > max_error) & (err_e > np.maximum(1e-15 * qa_e, floor))):
            raise ConvergenceError(
                f"Gaussian quadrature did not converge: relative error estimate"
                f" {np.max(rel[unfinished]):.2e} with {_GL_LADDER[-1]} nodes per panel")
    value[todo] = q_e
    # floor: 8 ulps of ∫|g|: the Gauss–Legendre nodes and weights carry rounding of one sign
    # shared by every panel, which summing thousands of panels does not average away
    # (tanh(100 sin x) over 2000 panels: 3.5 ulps; sigmoid(56.1x² + 2x − 5) at K = 30: 7 ulps,
    # found by the fuzz suite)
    cond_e = np.bincount(ent, weights=cond_p, minlength=m)
    error[todo] = np.maximum(err_e, 8 * _EPS * qa_e) + cond_e
    method[todo] = "gauss_legendre_composite"


def make_edges(mean: np.ndarray, std: np.ndarray, breakpoints: Sequence[float],
               growth: tuple[float, float] = (0.0, 0.0), extra_x: np.ndarray | None = None
               ) -> np.ndarray:
    """Panel edges in z for h = mean + std·z: window ends, z-grid, graded x-grid, breakpoints."""
    mean = np.asarray(mean, dtype=float).reshape(-1, 1)
    std = np.asarray(std, dtype=float).reshape(-1, 1)
    zlo = -WINDOW_L - growth[0] * std
    zhi = WINDOW_L + growth[1] * std
    with np.errstate(all="ignore"):
        reach = float(np.max(np.abs(mean) + (WINDOW_L + max(growth) * std) * std, initial=0.0))
    xs = np.concatenate([x_grid(reach), np.asarray(breakpoints, dtype=float)])
    parts = [zlo, zhi, np.broadcast_to(_Z_GRID, (mean.shape[0], _Z_GRID.size)),
             (xs[None, :] - mean) / std]
    if growth[0] or growth[1]:
        # the mass of e^{αh} sits near z = α·σ: grade around it too
        for a in (growth[1], -growth[0]):
            if a:
                c = a * std
                parts.append(c + _Z_GRID[None, :])
    if extra_x is not None:
        parts.append((np.asarray(extra_x, dtype=float).reshape(mean.shape[0], -1) - mean) / std)
    E = np.concatenate(parts, axis=1)
    return np.clip(E, zlo, zhi)


#: largest standard deviation (in x units) at which the Gauss–Hermite ladder is tried.
_GH_MAX_STD = 3.0


#: most panel edges per entry of the composite rule for a steep integrand whose features are not
#: located (a uniform grid of spacing 1/rate across the Gaussian window)
MAX_STEEP_EDGES = 20000


def steep_edges(mean: np.ndarray, std: np.ndarray, features) -> np.ndarray:
    """Extra panel edges in x for a steep integrand (``features.steep``): around each known
    centre c the grid c + ℓ·(0, ±2^-5, ..., ±2^5) with ℓ = 1/rate, and where some feature is not
    located a uniform grid of spacing ℓ over the window |x - mean| <= L·std. ConvergenceError
    when that grid would exceed :data:`MAX_STEEP_EDGES` edges for an entry."""
    ell = 1.0 / features.rate
    mean = np.asarray(mean, dtype=float).ravel()
    std = np.asarray(std, dtype=float).ravel()
    cols = [np.zeros((mean.size, 0))]
    if features.centres:
        g = np.concatenate([np.asarray(c) + ell * _X_GRID for c in features.centres])
        cols.append(np.broadcast_to(g, (mean.size, g.size)))
    if not features.located:
        span = 2.0 * WINDOW_L * float(np.max(std)) * features.rate
        n = int(np.ceil(span)) + 1 if np.isfinite(span) else MAX_STEEP_EDGES + 1
        if n > MAX_STEEP_EDGES:
            raise ConvergenceError(
                f"the integrand bends on a length ~{ell:.2g} at places that cannot be located"
                f" symbolically; a Gaussian of standard deviation {float(np.max(std)):.3g} would"
                f" need {n} panels (the limit is {MAX_STEEP_EDGES}): use a smaller variance or"
                " a less steep formula")
        t = np.linspace(-1.0, 1.0, n)
        cols.append(mean[:, None] + (WINDOW_L * std)[:, None] * t[None, :])
    return np.concatenate(cols, axis=1)


def expect_1d(g: Callable[[np.ndarray], np.ndarray], mean, std, *,
              breakpoints: Sequence[float] = (), growth: tuple[float, float] = (0.0, 0.0),
              rtol: float = 1e-13, allow_hermite: bool = True,
              max_error: float = 1e-7, noise: Callable | None = None,
              de: bool = True, even: bool = False, features=None) -> QuadResult:
    """E[g(mean + std·z)], z ~ N(0,1), vectorized over broadcast arrays ``mean``, ``std`` (> 0).

    Where every mean is 0 and g does not grow exponentially, the double-exponential rules of
    :mod:`critheory.expectations.de_quadrature` are used first (``noise``: the float64 error model of g they
    add to their error estimate); otherwise (or with ``de=False``), and for the entries they do
    not converge for, Gauss–Hermite and the composite Gauss–Legendre rule described above.
    ``even``: g is known to be even (the DE rules then evaluate it at h >= 0 only).
    ``max_error`` is the relative error estimate above which ConvergenceError is raised.
    ``features``: the integrand's :class:`critheory.activation.features.Features`; a steep one
    (narrower than the node spacing of the fixed-node rules) goes to the composite rule with
    panels placed by :func:`steep_edges`, never to the double-exponential or Gauss–Hermite rules.

    Examples
    --------
    >>> import numpy as np
    >>> r = expect_1d(lambda x: x**2, 0.0, np.array([1.0, 2.0]))
    >>> np.allclose(r.value, [1.0, 4.0])
    True
    """
    std = np.asarray(std, dtype=float)
    if np.ndim(mean) == 0 and mean == 0.0:
        shape, sd = std.shape, std.ravel()
        mu = np.zeros(sd.size)
        centred = True
    else:
        mean, std = np.broadcast_arrays(np.asarray(mean, dtype=float), std)
        shape, mu, sd = mean.shape, mean.ravel(), std.ravel()
        centred = not mu.any()
    steep = features is not None and features.steep
    if steep:
        de = allow_hermite = False
    if de and growth == (0.0, 0.0) and centred:
        # centred Gaussians: the double-exponential trapezoidal rules; the entries they do not
        # converge for (singularities near the real axis, undeclared kinks) come back here
        v, e, ok = expect_centered(g, sd, breakpoints=breakpoints, rtol=rtol, noise=noise,
                                   even=even, oscillating=bool(getattr(features, "oscillates",
                                                                       False)))
        if ok.all():
            meth = np.full(sd.size, "double_exponential", dtype=object)
            return QuadResult(v.reshape(shape), e.reshape(shape), meth.reshape(shape))
        # the DE rules did not converge: a singularity near the real axis or a feature
        # narrower than their nodes, and the fixed Gauss–Hermite nodes would not see it either
        rest = expect_1d(g, 0.0, sd[~ok], breakpoints=breakpoints, rtol=rtol,
                         allow_hermite=False, max_error=max_error, de=False, noise=noise)
        meth = np.full(sd.size, "double_exponential", dtype=object)
        v[~ok], e[~ok], meth[~ok] = rest.value, rest.error, rest.method
        return QuadResult(v.reshape(shape), e.reshape(shape), meth.reshape(shape))

    def zfunc(Z, idx):
        return g(mu[idx, None] + sd[idx, None] * Z)

    # Gauss–Hermite in z only where the Gaussian is not much wider than the O(1) scale on which
    # activations bend: for std >> 1 a smooth activation looks kinked at the node spacing and
    # two GH rules can agree on a wrong value (measured: gelu_tanh E[φ²] at K = 1e3 came out
    # exactly K/2, the ReLU value); those entries go to the graded composite rule.
    smooth = (allow_hermite and not breakpoints and growth == (0.0, 0.0)) & (sd <= _GH_MAX_STD)
    extra = steep_edges(mu, sd, features) if steep else None
    edges = make_edges(mu, sd, breakpoints, growth, extra_x=extra)
    chunk = max(1, 400_000 // edges.shape[1])
    if mu.size <= chunk:
        r = expect_z(zfunc, mu.size, edges, smooth=smooth, rtol=rtol, max_error=max_error)
    else:
        # many panels per entry (a steep integrand): a bounded number of entries at a time
        parts = []
        for i in range(0, mu.size, chunk):
            sl = slice(i, i + chunk)
            parts.append(expect_1d(g, mu[sl], sd[sl], breakpoints=breakpoints, growth=growth,
                                   rtol=rtol, allow_hermite=allow_hermite,
                                   max_error=max_error, de=False, features=features,
                                   noise=noise))
        r = QuadResult(*(np.concatenate([getattr(q, k) for q in parts])
                         for k in ("value", "error", "method")))
        return QuadResult(r.value.reshape(shape), r.error.reshape(shape),
                          r.method.reshape(shape))
    err = r.error
    if noise is not None and centred:
        # the float64 error of evaluating g, which no comparison of rules sees (steep formulas:
        # tanh(100 sin x) loses ~100 ulps in its argument)
        err = err + noise_average(noise, sd)
    return QuadResult(r.value.reshape(shape), err.reshape(shape), r.method.reshape(shape))


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Error-free product (Dekker/Veltkamp): a·b = p + e exactly (barring over/underflow)."""
    p = a * b
    c = 134217729.0  # 2^27 + 1
    with np.errstate(all="ignore"):
        ah = a * c
        ah = ah - (ah - a)
        bh = b * c
        bh = bh - (bh - b)
        al, bl = a - ah, b - bh
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, np.where(np.isfinite(e), e, 0.0)


def det2(k11, k12, k22) -> np.ndarray:
    """K11·K22 - K12² with the products computed exactly (accurate to ~eps·|det|)."""
    k11, k12, k22 = (np.asarray(v, dtype=float) for v in (k11, k12, k22))
    p1, e1 = _two_prod(k11, k22)
    p2, e2 = _two_prod(k12, k12)
    return (p1 - p2) + (e1 - e2)


def _second_moment(f: Callable, sd: np.ndarray, breakpoints, growth, t, w,
                   features=None) -> np.ndarray:
    """E[f(sd·z)²] as a size: Gauss–Hermite for smooth f, the 1-D rules (cut at the
    breakpoints, panels at steep features; accuracy 1e-6 is plenty for a scale) otherwise."""
    steep = features is not None and features.steep
    if not len(breakpoints) and not steep:
        return (f(sd[:, None] * t) ** 2) @ w
    r = expect_1d(lambda x: f(x) ** 2, np.zeros_like(sd), sd, breakpoints=tuple(breakpoints),
                  growth=(2.0 * growth[0], 2.0 * growth[1]), rtol=1e-6, max_error=np.inf,
                  features=features)
    return np.asarray(r.value, dtype=float)


def expect_2d(f: Callable, g: Callable, K11, K12, K22, *, f_breakpoints: Sequence[float] = (),
              g_breakpoints: Sequence[float] = (), f_growth=(0.0, 0.0), g_growth=(0.0, 0.0),
              rtol: float = 1e-12, f_features=None, g_features=None) -> QuadResult:
    """E[f(h1) g(h2)] for (h1, h2) ~ N(0, [[K11, K12], [K12, K22]]), vectorized.

    Iterated quadrature after the Cholesky substitution ``h1 = √K11 u``,
    ``h2 = (K12/√K11) u + s v`` with ``s = √(K22 - K12²/K11)`` (clamped at 0): the inner
    expectation over v is the one-dimensional rule (mean (K12/√K11) u, standard deviation s);
    the outer rule over u is split at f's breakpoints and graded around the points where the
    inner expectation has a near-kink (g's breakpoints mapped to u, width s√K11/|K12|).
    |ρ| = 1 reduces to a one-dimensional expectation.
    Steep f or g (``*_features``, see :func:`steep_edges`) are integrated by the composite rules
    only, with panels graded around their centres (mapped to u as the breakpoints are);
    ConvergenceError for steep features that are not located.
    """
    f_steep = f_features is not None and f_features.steep
    g_steep = g_features is not None and g_features.steep
    for ft in (f_features, g_features):
        if ft is not None and ft.steep and not ft.located:
            raise ConvergenceError(
                f"two-point expectations of a formula that bends on a length ~{1 / ft.rate:.2g}"
                " at places that cannot be located symbolically are not supported")
    K11, K12, K22 = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (K11, K12, K22)))
    shape = K11.shape
    k11, k12, k22 = K11.ravel(), K12.ravel(), K22.ravel()
    s11 = np.sqrt(k11)
    slope = k12 / s11                                   # mean of h2 per unit u
    # conditional std of h2: s² = det/K11 with the determinant from exact products, so that an
    # exactly singular input (K11 = K12 = K22) gives s = 0 and not √(eps·K) from the rounding
    # of K22 - K12²/K11 (which turned E[relu'(h1) relu'(h2)] = 1/2 into 0.4999999981)
    s = np.sqrt(np.maximum(det2(k11, k12, k22), 0.0) / k11)
    degenerate = s <= 1e-14 * np.sqrt(k22)
    gb = np.asarray(g_breakpoints, dtype=float)
    smooth_g = not len(gb) and tuple(g_growth) == (0.0, 0.0) and not g_steep

    def inner(means: np.ndarray, sd: np.ndarray) -> np.ndarray:
        # No relative-accuracy check on the inner values: where the inner expectation is tiny
        # (tanh' = 1 - tanh² far in the tail, ~1e-60) its relative error is float64 noise, yet
        # its absolute error is negligible against the outer integral, whose own ladder
        # controls the accuracy of the result.
        r = expect_1d(g, means, sd, breakpoints=tuple(gb), growth=tuple(g_growth), rtol=rtol,
                      allow_hermite=smooth_g, max_error=np.inf, features=g_features)
        return r.value, r.error

    # the largest error of an inner expectation, per entry: the outer rules cannot see it (it
    # is the same in every rule), and E_u[|f| err_inner] <= max err_inner · √E[f²]
    inner_err = np.zeros(k11.size)

    def zfunc(U, idx):
        h1 = s11[idx, None] * U
        out = f(h1)
        m = slope[idx, None] * U
        sd = np.broadcast_to(s[idx, None], U.shape)
        deg = degenerate[idx]
        G = np.empty(U.shape)
        if np.any(deg):
            G[deg] = g(m[deg])
        if np.any(~deg):
            v, e = inner(m[~deg], sd[~deg])
            G[~deg] = v
            with np.errstate(invalid="ignore"):
                e = np.where(np.isfinite(e) & np.isfinite(out[~deg]), e, 0.0)
                worst = np.zeros(U.shape)
                worst[~deg] = e
                np.maximum.at(inner_err, idx, worst.max(axis=1))
        return out * G

    # outer edges: f's kinks (in x units of h1) and g's kinks mapped to u, graded by s
    extra = []
    with np.errstate(all="ignore"):   # slope ~ 0 (K12 ~ 1e-300): u0, w overflow, clipped below
        for b in gb:
            u0 = np.where(slope != 0, b / slope, 0.0)
            w = np.where(slope != 0, s / np.abs(slope), 0.0)
            for k in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0):
                extra.append(u0 + k * w)
                extra.append(u0 - k * w)
    if g_steep:
        # g's features at x = c: the inner expectation bends at u = c/slope, over a width
        # (ℓ + s)/|slope| (the feature smoothed by the conditional spread s)
        with np.errstate(all="ignore"):
            ell = 1.0 / g_features.rate
            for c in g_features.centres:
                u0 = np.where(slope != 0, c / slope, 0.0)
                w = np.where(slope != 0, (ell + s) / np.abs(slope), 0.0)
                for k in _X_GRID:
                    extra.append(u0 + k * w)
    if f_steep:
        ell = 1.0 / f_features.rate
        for c in f_features.centres:
            for k in _X_GRID:
                extra.append((c + k * ell) / s11)
    # window in u: exponential growth e^{α_f √K11 u} from f and e^{α_g |slope| u} from g
    ga = np.abs(slope)
    grow_lo = f_growth[0] * s11 + np.where(slope >= 0, g_growth[0], g_growth[1]) * ga
    grow_hi = f_growth[1] * s11 + np.where(slope >= 0, g_growth[1], g_growth[0]) * ga
    ones = np.ones_like(k11)
    edges = make_edges(np.zeros_like(k11), ones, (), (0.0, 0.0))
    edges[:, 0] -= grow_lo
    edges[:, 1] += grow_hi
    # f's breakpoints and the x-grid in units of h1 = √K11 u
    fb = np.asarray(f_breakpoints, dtype=float)
    with np.errstate(all="ignore"):
        reach = float(np.max((WINDOW_L + max(f_growth) * s11) * s11, initial=0.0))
    xgrid = np.concatenate([x_grid(reach), fb])
    cols = [edges, xgrid[None, :] / s11[:, None]]
    if extra:
        cols.append(np.stack(extra, axis=1))
    E = np.concatenate(cols, axis=1)
    E = np.clip(np.nan_to_num(E, nan=0.0), edges[:, :1], edges[:, 1:2])
    smooth = (not len(fb) and not len(gb) and tuple(f_growth) == (0.0, 0.0) and smooth_g
              and not f_steep) \
        & (s11 <= _GH_MAX_STD) & (np.sqrt(k22) <= _GH_MAX_STD)
    # Cauchy–Schwarz scale sqrt(E[f²] E[g²]) (48-node Gauss–Hermite, a size, not a result): a
    # result far below it (ρ ~ 1e-11 for odd φ) is the difference of terms of this size, and
    # the inner values carry absolute round-off relative to it, so 1e-14 of it is the floor
    # For f or g with breakpoints the Gauss–Hermite nodes can miss every feature (hardtanh' is
    # the indicator of |h| < 1: at K = 20 no node of the 48-point rule falls inside, the floor
    # was 0 and a zero result could never converge), so there the sizes come from the 1-D
    # rules, which cut at the breakpoints.
    t, w = _hermite(48)
    with np.errstate(all="ignore"):
        ef = _second_moment(f, s11, fb, f_growth, t, w, f_features)
        eg = _second_moment(g, np.sqrt(k22), gb, g_growth, t, w, g_features)
    cs = np.nan_to_num(np.sqrt(ef * eg), nan=0.0, posinf=0.0)
    r = expect_z(zfunc, k11.size, E, smooth=smooth, rtol=rtol, abs_floor=1e-14 * cs)
    # what the comparison of outer rules cannot see: the inner expectations' errors and the
    # rounding of the products f·E[g] (a few ulps of the Cauchy–Schwarz size)
    with np.errstate(invalid="ignore"):
        err = r.error + inner_err * np.sqrt(np.nan_to_num(ef, nan=0.0, posinf=0.0)) + 4 * _EPS * cs
    return QuadResult(r.value.reshape(shape), err.reshape(shape), r.method.reshape(shape))
