"""Solutions of the neural covariance SDE: a Monte Carlo integrator for the full covariance, a
Fokker–Planck solver for the 1-D correlation, and the deterministic (infinite-width) limit.

* :func:`integrate` — vectorized weak-order-1 integrator for m×m covariances (all paths at
  once; a multiplicative step ``S exp(√dt M − (m+1)dt/2) S`` for the diffusion, exact for the
  norms' geometric Brownian motion and positive definite by construction, plus the explicit
  drift; the iterate is projected on the positive semidefinite cone when the drift leaves it,
  and how often that was needed is reported); run at dt and 2dt on the same Brownian paths,
  the difference estimates the step-size bias. The method is still called ``em`` on the
  command line.
* :func:`fokker_planck` — the correlation of two inputs under ReLU shaping, in x = atanh ρ
  (unit additive noise), by finite volumes with Scharfetter–Gummel fluxes and Crank–Nicolson
  (Rannacher start); solved on two grids, the difference is the reported error.
* :func:`rho_ode` — the ODE limit dρ/dt = ν(ρ) (the diffusion dropped: infinite width first),
  solved exactly by quadrature, ``t = ∫_θ^{θ₀} 2π dθ'/(k(1 − θ' cot θ')) `` with ρ = cos θ;
  :func:`norm_ode` — ``dV/dt = (B/a²)V(V − 1)``, ``V(t) = 1/(1 − (1 − 1/V₀)e^{Bt/a²})``.

Examples
--------
>>> from critheory.theory.shaped.shaping import shape_relu
>>> from critheory.theory.shaped.solve import rho_ode, fokker_planck
>>> s = shape_relu(0.0, -1.0)
>>> round(rho_ode(s, 0.0, 1e-9), 6)
0.0
>>> r = fokker_planck(s, T=0.5, rho0=0.5)
>>> r.error < 1e-4, 0.4 < r.rho_mean < 0.6
(True, True)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.theory.shaped.sde import (GEO2_SCRATCH, drift, geo_step, geo_step2,
                                         sin_minus_theta_cos, x_drift)

__all__ = ["check_T", "check_rho0", "start_matrix", "Paths", "integrate", "step_rate",
           "initial_steps", "quantile_errors", "RhoLaw",
           "fokker_planck", "rho_ode", "norm_ode", "MAX_PATH_STEPS"]

#: Relative size of a negative eigenvalue below which a PSD projection is round-off (not counted).
_ROUNDOFF = 1e-12

#: Budget of :func:`integrate`: paths × steps × m² (refused above: about a minute).
from critheory.common.limits import MAX_SDE_PATH_STEPS as MAX_PATH_STEPS  # noqa: E402
from critheory.common.reprs import dataclass_dict, short_repr


def check_T(T) -> float:
    """``T`` as a finite float > 0 (else :class:`InvalidArgumentError`)."""
    try:
        T = float(T)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"T must be a number, got {T!r}") from None
    if not (math.isfinite(T) and T > 0):
        raise InvalidArgumentError(f"the depth-to-width ratio T must be finite and > 0, got {T:g}")
    return T


def check_rho0(rho0) -> float:
    """``rho0`` as a float in [−1, 1] (else :class:`InvalidArgumentError`)."""
    try:
        r = float(rho0)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"rho0 must be a number, got {rho0!r}") from None
    if not (math.isfinite(r) and abs(r) <= 1):
        raise InvalidArgumentError(f"the initial correlation rho0 must lie in [-1, 1], got {r:g}")
    return r


#: Largest step in units of the fastest rate of the SDE (:func:`step_rate`) for the first run.
DT_UNIT = 0.05
#: Fewest fine steps of a run.
MIN_STEPS = 100


def step_rate(shaping) -> float:
    """The fastest rate (1/time) of the SDE's drift and diffusion around unit norms.

    ReLU shaping: ``max(1, k/2)`` (|ν'(ρ)| ≤ k/2 = (c₊ − c₋)²/2; the correlation's diffusion
    (1 − ρ²)² ≤ 1; the norms' geometric Brownian motion is integrated exactly by the
    multiplicative step). Smooth shaping: ``max(1, |B|, σ₂², |σ₃|)/a²`` (the derivatives of
    the drift at V = 1).

    >>> from critheory.theory.shaped.shaping import shape_relu, shape_smooth
    >>> step_rate(shape_relu(0, -1)), step_rate(shape_relu(0, -4)), step_rate(shape_smooth("tanh", 0.5))
    (1.0, 8.0, 8.0)
    """
    if shaping.homogeneous:
        return max(1.0, shaping.k / 2.0)
    return max(1.0, abs(shaping.B), shaping.sigma2 ** 2, abs(shaping.sigma3)) / shaping.a ** 2


def initial_steps(shaping, T) -> int:
    """Fine steps of the first run: dt ≤ DT_UNIT/:func:`step_rate`, at least MIN_STEPS (even).

    >>> from critheory.theory.shaped.shaping import shape_relu
    >>> initial_steps(shape_relu(0, -1), 1.0), initial_steps(shape_relu(0, -1), 100.0)
    (100, 2000)
    """
    T = check_T(T)
    n = max(MIN_STEPS, math.ceil(T * step_rate(shaping) / DT_UNIT - 1e-9))
    return int(n + n % 2)


def quantile_errors(x, qs, z: float = 1.0) -> dict:
    """Order-statistic (binomial) half-widths of sample quantiles at ``z`` standard deviations.

    The number of samples below the true q-quantile is Binomial(P, q): the band between the
    order statistics of ranks ``Pq ∓ z√(Pq(1 − q))`` covers it with the normal probability of
    ``±z`` (68 % at z = 1, the convention of the standard errors). Returns ``{q: half-width}``
    (the larger side).

    >>> import numpy as np
    >>> e = quantile_errors(np.random.default_rng(0).standard_normal(10000), (0.5,))
    >>> 0.008 < e[0.5] < 0.02      # sd of the median: 1.2533/√P = 0.0125
    True
    """
    x = np.sort(np.asarray(x, dtype=float))
    P = x.size
    out = {}
    for q in qs:
        if P < 2:
            out[q] = float("nan")
            continue
        c = float(np.quantile(x, q))
        w = z * math.sqrt(P * q * (1 - q))
        j = int(min(max(math.floor(P * q - w) - 1, 0), P - 1))
        k = int(min(max(math.ceil(P * q + w) - 1, 0), P - 1))
        out[q] = float(max(c - x[j], x[k] - c))
    return out


def start_matrix(rho0: float, m: int = 2) -> np.ndarray:
    """The m×m starting covariance: unit norms, every pair at correlation ``rho0``.

    Examples
    --------
    >>> start_matrix(0.5, 3).tolist()
    [[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]]
    >>> import critheory as ct
    >>> ct.start_matrix(0.5)
    array([[1. , 0.5],
           [0.5, 1. ]])
    """
    rho0 = check_rho0(rho0)
    if int(m) != m or m < 2:
        raise InvalidArgumentError(f"the number of inputs must be an integer >= 2, got {m}")
    if rho0 < -1.0 / (m - 1):
        raise InvalidArgumentError(f"{m} inputs cannot all have pairwise correlation {rho0:g} "
                                   f"(needs rho0 >= -1/(m-1))")
    V = np.full((m, m), rho0)
    np.fill_diagonal(V, 1.0)
    return V


@dataclass(frozen=True)
class Paths:
    """Result of :func:`integrate`.

    Attributes
    ----------
    V : ndarray, shape (P, m, m)
        Covariances at T (the dt/2 run).
    V_coarse : ndarray, shape (P, m, m)
        The same Brownian paths integrated with step dt.
    times, rho_paths : ndarray
        Save times and ρ₁₂ along the first ``keep`` paths (shape (len(times), keep)).
    rho, rho_coarse : ndarray, shape (P,)
        ρ₁₂ at T (fine and coarse step).
    dt : float
        The fine step.
    projected, projected_coarse : int
        Number of (path, step) updates of the fine (coarse) run that left the PSD cone and were
        projected back (only the explicit drift can do that: the diffusion step is
        multiplicative).
    steps, paths : int
        Fine steps and paths.
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    V: np.ndarray
    V_coarse: np.ndarray
    times: np.ndarray
    rho_paths: np.ndarray
    rho: np.ndarray
    rho_coarse: np.ndarray
    dt: float
    projected: int
    projected_coarse: int = 0
    steps: int = 0
    paths: int = 0

    @property
    def projected_fraction(self) -> float:
        """Fraction of the fine run's (path, step) updates that needed a PSD projection."""
        n = self.steps * self.paths
        return float(self.projected / n) if n else 0.0

    @property
    def finite(self) -> np.ndarray:
        """Paths whose covariance stayed finite (all of them unless the norm blows up)."""
        return np.isfinite(self.rho)

    @property
    def blown_up(self) -> float:
        """Fraction of paths that blew up before T (their ρ_T is NaN)."""
        return float(1.0 - np.mean(self.finite))

    @property
    def rho_mean(self) -> float:
        """E[ρ_T] over the paths that stayed finite (NaN if none)."""
        r = self.rho[self.finite]
        return float(np.mean(r)) if r.size else float("nan")

    @property
    def stderr(self) -> float:
        """Monte Carlo standard error of ``rho_mean``."""
        r = self.rho[self.finite]
        return float(np.std(r, ddof=1) / math.sqrt(r.size)) if r.size > 1 else float("nan")

    @property
    def bias(self) -> float:
        """Step-size bias estimate of ``rho_mean``: |mean(2dt) − mean(dt)| (weak order 1: the
        bias of the dt run is e(dt) ≈ C dt and e(2dt) ≈ 2C dt, so their difference is e(dt))."""
        ok = self.finite & np.isfinite(self.rho_coarse)
        if not np.any(ok):
            return float("nan")
        return float(abs(np.mean(self.rho_coarse[ok]) - np.mean(self.rho[ok])))

    @property
    def unseen(self) -> float:
        """Allowance for probability the sample has not seen: ``(1 + |mean|)/P``.

        ρ_T is bounded in [−1, 1], but its law can put a probability of order 1/P (P finite
        paths) where no path went (at large T the mean is 1 − 10⁻⁶ from events of probability
        ~10⁻⁶ at ρ ≪ 1, invisible to the sample and to its standard error); such mass moves
        the mean by at most (1 + |mean|)/P.
        """
        r = self.rho[self.finite]
        return float((1.0 + abs(np.mean(r))) / r.size) if r.size else float("nan")

    @property
    def error(self) -> float:
        """Estimated error of ``rho_mean``: √(stderr² + bias² + unseen²)."""
        return math.sqrt(self.stderr ** 2 + self.bias ** 2 + self.unseen ** 2)


def _rho12(V):
    d = np.sqrt(np.maximum(V[..., 0, 0] * V[..., 1, 1], 1e-300))
    with np.errstate(invalid="ignore"):
        r = np.clip(V[..., 0, 1] / d, -1.0, 1.0)
    return np.where(np.all(np.isfinite(V), axis=(-2, -1)), r, np.nan)


def _project(V):
    """Project a stack of symmetric matrices on the PSD cone; count the projected ones."""
    if V.shape[-1] == 2:  # the closed form of _project2
        (a, b, c), nbad = _project2(V[..., 0, 0], V[..., 0, 1], V[..., 1, 1])
        if nbad:
            V = V.copy()
            V[..., 0, 0], V[..., 1, 1] = a, c
            V[..., 0, 1] = V[..., 1, 0] = b
        return V, nbad
    w, U = np.linalg.eigh(V)
    bad = np.any(w < 0, axis=-1)
    nbad = int(np.count_nonzero(np.any(w < -_ROUNDOFF * np.abs(w[..., -1:]), axis=-1)))
    if np.any(bad):
        wb = np.maximum(w[bad], 0.0)
        V = V.copy()
        V[bad] = (U[bad] * wb[:, None, :]) @ np.swapaxes(U[bad], -1, -2)
    return V, nbad


def integrate(shaping, T, V0, *, paths: int = 10000, steps: int | None = None, seed: int = 0,
              keep: int = 0, saves: int = 50) -> Paths:
    """Integrate ``dV = b(V)dt + Σ^{1/2}dB``, all paths at once, at dt and 2dt.

    Each step is the multiplicative (geometric) step of :func:`~critheory.theory.shaped.sde.geo_step2`
    (weak order 1 like Euler–Maruyama, but positive definite by construction and exact for the
    norms' geometric Brownian motion), plus the explicit drift. Under ReLU shaping the SDE is
    1-homogeneous, so each path is divided by its mean norm after every step and the log of
    the factor is carried (no underflow of the norms, whose logs drift like −t).

    The fine run uses ``steps`` steps of dt = T/steps; the coarse run, on the same Brownian
    paths (increments summed in pairs), uses steps/2 steps of 2dt. ``steps`` is rounded up to
    an even number; ``None``: :func:`initial_steps`.

    Parameters
    ----------
    shaping : Shaping
    T : float
        Final time (depth-to-width ratio), > 0.
    V0 : array (m, m)
        Starting covariance (positive semidefinite).
    paths, steps, seed : int
        Number of paths, fine steps (``None``: from the problem), seed of a
        ``numpy.random.default_rng``.
    keep, saves : int
        Keep ρ₁₂ of the first ``keep`` paths at ``saves`` times (for plots).

    Examples
    --------
    >>> import numpy as np
    >>> from critheory.theory.shaped.shaping import shape_relu
    >>> p = integrate(shape_relu(0, -1), 0.5, start_matrix(0.3), paths=2000, steps=50, seed=1)
    >>> p.V.shape, p.projected >= 0, abs(p.rho_mean - 0.3) < 0.1
    ((2000, 2, 2), True, True)
    """
    T = check_T(T)
    V0 = np.asarray(V0, dtype=float)
    m = V0.shape[-1]
    if steps is None:
        steps = initial_steps(shaping, T)
    paths, steps = int(paths), int(steps)
    if paths < 2 or steps < 2:
        raise InvalidArgumentError("integrate needs at least 2 paths and 2 steps")
    steps += steps % 2
    if paths * steps * m * m > MAX_PATH_STEPS:
        raise InvalidArgumentError(f"paths x steps x m^2 = {paths * steps * m * m:.1e} is beyond "
                                   f"the budget {MAX_PATH_STEPS:.0e}")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _integrate(shaping, T, V0, m, paths, steps, seed, keep, saves)


def _integrate(shaping, T, V0, m, paths, steps, seed, keep, saves):
    rng = np.random.default_rng(seed)
    dt = T / steps
    keep = min(int(keep), paths)
    save_at = set(np.unique(np.linspace(0, steps, min(saves, steps) + 1).round().astype(int)))
    times, rp = [], []
    projected = projected_coarse = 0
    relu = shaping.homogeneous
    if m == 2:
        fine = (np.full(paths, V0[0, 0]), np.full(paths, V0[0, 1]), np.full(paths, V0[1, 1]))
        coarse = tuple(v.copy() for v in fine)
        lf = np.zeros(paths)   # log of the scale divided out (ReLU shaping: 1-homogeneous SDE)
        lc = np.zeros(paths)
        # every array of the loop allocated once: the next state of each run is computed into
        # its spare triple (then the two swap), the steps in one set of scratch arrays
        spare_f, spare_c = (tuple(np.empty(paths) for _ in range(3)) for _ in range(2))
        work = [np.empty(paths) for _ in range(GEO2_SCRATCH)]
        # the increments of two successive fine steps, drawn into two buffers in turn (the
        # same draws as a fresh array each step), and their scaled sum for the coarse step
        gbuf = np.empty((2, 4, paths))
        gsum = np.empty((4, paths))
        gc = None
        for i in range(steps + 1):
            if i in save_at and keep:
                times.append(i * dt)
                a, b, c = (v[:keep] for v in fine)
                rp.append(np.clip(b / np.sqrt(np.maximum(a * c, 1e-300)), -1, 1))
            if i == steps:
                break
            g = rng.standard_normal(out=gbuf[i % 2])
            nxt = geo_step2(shaping, *fine, g, dt, out=spare_f, work=work)
            fine, spare_f = nxt, fine
            projected += _project2(*fine, inplace=True)[1]
            if relu:
                _rescale2(fine, lf, work)
            if gc is None:
                gc = g
            else:
                np.add(gc, g, out=gsum)
                gsum /= math.sqrt(2)
                nxt = geo_step2(shaping, *coarse, gsum, 2 * dt, out=spare_c, work=work)
                coarse, spare_c = nxt, coarse
                projected_coarse += _project2(*coarse, inplace=True)[1]
                if relu:
                    _rescale2(coarse, lc, work)
                gc = None
        Vf = _stack2(*fine) * np.exp(lf)[:, None, None]
        Vc = _stack2(*coarse) * np.exp(lc)[:, None, None]
        rf, rc = _rho12(_stack2(*fine)), _rho12(_stack2(*coarse))
    else:
        Vf = np.broadcast_to(V0, (paths, m, m)).copy()
        Vc = Vf.copy()
        lf = np.zeros(paths)
        lc = np.zeros(paths)
        Gc = None
        for i in range(steps + 1):
            if i in save_at and keep:
                times.append(i * dt)
                rp.append(_rho12(Vf[:keep]))
            if i == steps:
                break
            G = rng.standard_normal((paths, m, m))
            Vf, nb = _project(geo_step(shaping, Vf, G, dt))
            projected += nb
            if relu:
                Vf, lf = _rescale(Vf, lf)
            if Gc is None:
                Gc = G
            else:
                # coarse step of 2dt driven by the sum of the two increments
                Vc, nb = _project(geo_step(shaping, Vc, (Gc + G) / math.sqrt(2), 2 * dt))
                projected_coarse += nb
                if relu:
                    Vc, lc = _rescale(Vc, lc)
                Gc = None
        rf, rc = _rho12(Vf), _rho12(Vc)
        Vf = Vf * np.exp(lf)[:, None, None]
        Vc = Vc * np.exp(lc)[:, None, None]
    return Paths(V=Vf, V_coarse=Vc, times=np.array(times), rho_paths=np.array(rp),
                 rho=rf, rho_coarse=rc, dt=dt, projected=projected,
                 projected_coarse=projected_coarse, steps=steps, paths=paths)


def _rescale2(v, logs, work):
    """Divide 2×2 covariances by their mean norm (the ReLU-shaped SDE is 1-homogeneous), in
    place, and add the log of the factor to ``logs`` (in place; ``work[0]`` scratch)."""
    a, b, c = v
    s = np.add(a, c, out=work[0])
    s *= 0.5
    ok = np.isfinite(s)
    ok &= s > 0
    if not ok.all():
        s[~ok] = 1.0
    a /= s
    b /= s
    c /= s
    logs += np.log(s, out=s)


def _rescale(V, logs):
    s = np.trace(V, axis1=-2, axis2=-1) / V.shape[-1]
    ok = np.isfinite(s) & (s > 0)
    s = np.where(ok, s, 1.0)
    return V / s[:, None, None], logs + np.log(s)


def _stack2(a, b, c):
    V = np.empty((a.size, 2, 2))
    V[:, 0, 0], V[:, 0, 1], V[:, 1, 0], V[:, 1, 1] = a, b, b, c
    return V


def _project2(a, b, c, inplace: bool = False):
    """PSD projection of 2×2 matrices (a, b; b, c): ``λ₊(V − λ₋I)/(λ₊ − λ₋)`` where λ₋ < 0.

    Returns ``((a, b, c), count)``, the count of projections beyond round-off; with
    ``inplace`` the projected entries are written into ``a``, ``b``, ``c`` themselves."""
    half = a + c
    half *= 0.5
    r = a - c
    np.square(r, out=r)
    r *= 0.25
    r += b * b
    np.sqrt(r, out=r)
    lm = half - r
    lp = np.add(half, r, out=half)
    bad = lm < 0
    # counted: projections beyond round-off (a nearly singular V at rho ~ 1 dips below the
    # cone by ~1e-16 of its scale without any error of the scheme)
    np.abs(lp, out=r)
    r *= -_ROUNDOFF
    nbad = int(np.count_nonzero(lm < r))
    if bad.any():
        lmb, lpb = lm[bad], lp[bad]
        f = np.where(lpb > 0, np.maximum(lpb, 0.0) / np.maximum(lpb - lmb, 1e-300), 0.0)
        if not inplace:
            a, b, c = a.copy(), b.copy(), c.copy()
        a[bad] = (a[bad] - lmb) * f
        c[bad] = (c[bad] - lmb) * f
        b[bad] = b[bad] * f
    return (a, b, c), nbad


@dataclass(frozen=True)
class RhoLaw:
    """Law of ρ_T from the Fokker–Planck solver.

    Attributes
    ----------
    rho_mean, rho_std : float
    quantiles : dict
        ``{0.1: q, 0.5: q, 0.9: q}``.
    error : float
        |fine − coarse grid| of ``rho_mean`` (the finer result is reported).
    rho, density : ndarray
        Grid of ρ and the density of ρ_T on it.
    cdf : callable
        ``cdf(r) = P(ρ_T <= r)``.
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    rho_mean: float
    rho_std: float
    quantiles: dict
    error: float
    errors: dict
    rho: np.ndarray
    density: np.ndarray
    x_faces: np.ndarray
    x_cdf: np.ndarray

    def cdf(self, r):
        """``P(ρ_T <= r)`` (vectorized; linear in x = atanh ρ between cell faces)."""
        r = np.clip(np.asarray(r, dtype=float), -1 + 1e-16, 1 - 1e-16)
        return np.interp(np.arctanh(r), self.x_faces, self.x_cdf, left=0.0, right=1.0)


def _fp_once(shaping, T, x0, lo, hi, cells, nsteps):
    from scipy.linalg import solve_banded

    h = (hi - lo) / cells
    faces = lo + h * np.arange(cells + 1)
    xc = 0.5 * (faces[:-1] + faces[1:])
    D = 0.5
    mf = x_drift(shaping, faces[1:-1])
    pe = mf * h / D

    def bern(z):
        z = np.asarray(z, dtype=float)
        out = np.ones_like(z)
        small = np.abs(z) < 1e-8
        zz = z[~small]
        with np.errstate(over="ignore"):
            out[~small] = zz / np.expm1(zz)
        out[small] = 1 - z[small] / 2
        return out

    # flux F_{i+1/2} = (D/h)[B(-Pe) p_i - B(Pe) p_{i+1}]
    alpha = (D / h) * bern(-pe)     # coefficient of p_i
    beta = (D / h) * bern(pe)       # coefficient of p_{i+1}
    # dp_i/dt = -(F_{i+1/2} - F_{i-1/2})/h
    main = np.zeros(cells)
    upper = np.zeros(cells)   # A[i, i+1]
    lower = np.zeros(cells)   # A[i+1, i]
    main[:-1] -= alpha / h
    upper[1:] += beta / h
    main[1:] -= beta / h
    lower[:-1] += alpha / h

    def banded(scale):
        ab = np.zeros((3, cells))
        ab[0, 1:] = -scale * upper[1:]
        ab[1] = 1 - scale * main
        ab[2, :-1] = -scale * lower[:-1]
        return ab

    def apply_A(p):
        out = main * p
        out[:-1] += upper[1:] * p[1:]
        out[1:] += lower[:-1] * p[:-1]
        return out

    p = np.zeros(cells)
    j = (x0 - xc[0]) / h
    i0 = int(np.floor(j))
    w = j - i0
    p[i0] += (1 - w) / h
    p[i0 + 1] += w / h
    dt = T / nsteps
    # Rannacher start: 4 implicit Euler quarter steps, then Crank–Nicolson
    ie = banded(dt / 4)
    for _ in range(4):
        p = solve_banded((1, 1), ie, p)
    cn = banded(dt / 2)
    for _ in range(nsteps - 1):
        p = solve_banded((1, 1), cn, p + (dt / 2) * apply_A(p))
    p = np.maximum(p, 0.0)
    mass = p * h
    mass /= mass.sum()
    return xc, faces, mass


def _moments(xc, faces, mass):
    # cell averages of tanh and tanh² over each cell (exact antiderivatives)
    h = faces[1] - faces[0]
    lc = np.log(np.cosh(faces))
    t1 = np.diff(lc) / h
    t2 = 1 - np.diff(np.tanh(faces)) / h
    mean = float(np.sum(mass * t1))
    var = float(np.sum(mass * t2)) - mean ** 2
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    qs = {q: float(np.tanh(np.interp(q, cdf, faces))) for q in (0.1, 0.5, 0.9)}
    return mean, math.sqrt(max(var, 0.0)), qs, cdf


def fokker_planck(shaping, T, rho0, *, cells: int = 1200, steps: int = 400) -> RhoLaw:
    """Law of ρ_T for two inputs under ReLU shaping, by the Fokker–Planck equation.

    ``∂p/∂t = −∂_x(μ(x) p) + ½∂²_x p`` for x = atanh ρ, μ = :func:`x_drift`, on a truncated
    interval with zero-flux ends, from a point mass at atanh ρ₀. Solved with ``cells`` cells
    and ``steps`` steps, and again with half of each; the difference of the results is the
    reported error (of the finer one, conservatively).

    Examples
    --------
    >>> from critheory.theory.shaped.shaping import shape_relu
    >>> r = fokker_planck(shape_relu(0, 0), T=1.0, rho0=0.0)    # no drift: symmetric law
    >>> abs(r.rho_mean) < 1e-5, abs(r.quantiles[0.5]) < 1e-4
    (True, True)
    """
    if not shaping.homogeneous:
        raise InvalidArgumentError(
            "the Fokker-Planck solver needs ReLU shaping (for smooth shaping the correlation "
            "alone is not Markov: use method 'em')")
    T = check_T(T)
    rho0 = check_rho0(rho0)
    if abs(rho0) >= 1 - 1e-12:
        raise InvalidArgumentError(
            f"rho0 = {rho0:g}: |rho0| = 1 is a fixed point of the correlation (nothing to solve)")
    x0 = float(np.arctanh(rho0))
    sd = math.sqrt(T)
    hi = max(x0, 0.0) + 0.5 * T + 9 * sd + 1.0
    lo = min(x0, 0.0) - 9 * sd - 1.0
    res = []
    for c_, s_ in ((max(cells // 2, 20), max(steps // 2, 8)), (max(cells, 40), max(steps, 16))):
        xc, faces, mass = _fp_once(shaping, T, x0, lo, hi, c_, s_)
        res.append((xc, faces, mass) + _moments(xc, faces, mass))
    (_, _, _, m1, s1, q1, _), (xc, faces, mass, m2, s2, q2, cdf) = res
    errors = {"rho_mean": abs(m2 - m1), "rho_std": abs(s2 - s1),
              "quantiles": {q: abs(q2[q] - q1[q]) for q in q2}}
    h = faces[1] - faces[0]
    dens = mass / h * np.cosh(xc) ** 2       # dρ = sech²x dx
    return RhoLaw(rho_mean=m2, rho_std=s2, quantiles=q2, error=errors["rho_mean"],
                  errors=errors, rho=np.tanh(xc), density=dens, x_faces=faces, x_cdf=cdf)


def rho_ode(shaping, rho0, T) -> float:
    """Infinite-width limit: the solution at T of ``dρ/dt = ν(ρ)`` (ReLU shaping), exact.

    With ρ = cos θ the ODE is ``dθ/dt = −(k/2π)(1 − θ cot θ)``; the time to go from θ₀ to θ is
    the integral ``∫_θ^{θ₀} 2π dθ'/(k(1 − θ' cot θ'))``, inverted by bisection. For smooth
    shaping the ODE limit of ρ depends on the norms; there the ODE ``dV = b(V)dt`` is integrated
    (RK4, 2000 steps) from unit norms.

    Examples
    --------
    >>> from critheory.theory.shaped.shaping import shape_relu
    >>> r = rho_ode(shape_relu(1, -1), 0.0, 1.0)
    >>> 0.0 < r < 1.0
    True
    >>> import critheory as ct
    >>> round(ct.rho_ode(ct.shape_relu(0.0, -1.0), 0.5, 1.0), 5)
    0.55028
    """
    rho0 = check_rho0(rho0)
    T = check_T(T)
    if not shaping.homogeneous:
        V = np.array([[1.0, rho0], [rho0, 1.0]])
        n = 2000
        h = T / n
        for _ in range(n):
            k1 = drift(shaping, V)
            k2 = drift(shaping, V + h / 2 * k1)
            k3 = drift(shaping, V + h / 2 * k2)
            k4 = drift(shaping, V + h * k3)
            V = V + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            if not np.all(np.isfinite(V)):
                return float("nan")
        return float(V[0, 1] / math.sqrt(V[0, 0] * V[1, 1]))
    k = shaping.k
    if k == 0 or rho0 >= 1.0:
        return rho0
    th0 = math.acos(rho0)
    if th0 >= math.pi:  # ρ0 = −1: dθ/dt = −k/2 at θ = π (finite), start a hair inside
        th0 = math.pi - 1e-12
    # the time to reach θ → 0 is infinite (g ~ θ²/3): solve time(θ) = T for s = log θ
    s0 = math.log(th0)
    lo = s0 - 1.0
    while _relu_time(k, math.exp(lo), th0) <= T:
        lo -= 1.0
        if lo < -700.0:                           # pragma: no cover - T beyond float64
            return 1.0
    from critheory.theory.roots import brent

    s = brent(lambda u: _relu_time(k, math.exp(u), th0) - T, lo, s0, xtol=1e-15, rtol=1e-15)
    return math.cos(math.exp(s))


@functools.lru_cache(maxsize=1)
def _gl16() -> tuple:
    return np.polynomial.legendre.leggauss(16)


def _relu_time(k: float, th: float, th0: float) -> float:
    """The time ``∫_θ^{θ₀} 2π dθ'/(k g(θ'))``, ``g = (sin θ − θ cos θ)/sin θ``, for ReLU
    shaping to take the angle from θ₀ down to θ: composite Gauss–Legendre (16 nodes a panel) in
    s = log θ', where the integrand θ'/(k g(θ')) ~ 6π/(kθ') near 0 is smooth; the panels are
    halved until two successive sums agree to 1e-14 (here instead of ``scipy.integrate.quad``,
    whose import costs a command ~0.6 s of start-up)."""
    if th >= th0:
        return 0.0
    x, w = _gl16()
    a, b = math.log(th), math.log(th0)
    n = max(1, math.ceil((b - a) / 0.5))
    prev = None
    for _ in range(16):
        edges = np.linspace(a, b, n + 1)
        half = 0.5 * (edges[1:] - edges[:-1])
        u = np.exp((0.5 * (edges[1:] + edges[:-1]))[:, None] + half[:, None] * x)
        f = u * np.sin(u) / sin_minus_theta_cos(u)
        val = 2.0 * math.pi / k * float(np.sum(f * (half[:, None] * w)))
        if prev is not None and abs(val - prev) <= 1e-14 * abs(val):
            return val
        prev, n = val, 2 * n
    raise ConvergenceError(f"the ReLU-shaping time from {th0!r} to {th!r} did not converge")


def norm_ode(shaping, V0, T) -> float:
    """Deterministic limit of the norm: ``V(T) = 1/(1 − (1 − 1/V₀)e^{BT/a²})`` (``inf`` after
    blow-up); ReLU shaping: V₀.

    >>> from critheory.theory.shaped.shaping import shape_smooth
    >>> import math
    >>> abs(norm_ode(shape_smooth("tanh", 1.0), 2.0, 1.0) - 1 / (1 - 0.5 * math.exp(-2.0))) < 1e-12
    True
    """
    T = check_T(T)
    if shaping.homogeneous or V0 == 1.0:
        return float(V0)
    g = shaping.B / shaping.a ** 2
    den = 1.0 - (1.0 - 1.0 / V0) * math.exp(g * T)
    return float("inf") if den <= 0 else 1.0 / den
