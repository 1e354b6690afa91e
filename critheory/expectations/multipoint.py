"""Gaussian expectations of products over three or four correlated coordinates.

``expect_product(act, fns, K)`` computes ``E[f_1(z_1) ... f_k(z_k)]``, z ~ N(0, K), for a batch
of k×k kernels (k <= 4); ``four_point(act, K)`` and ``two_point(act, K)`` build the tensors
``E[φ_a φ_b φ_c φ_d]`` and ``E[φ_a φ_b]`` over m inputs that the finite-width theory on several
inputs needs per layer.

Reductions (each exact)
-----------------------
* k = 1, 2: :func:`~critheory.expectations.gaussian.expect` / :func:`~critheory.expectations.gaussian.expect2`
  (identical numbers, closed forms included).
* Collinear coordinates (1 - ρ² <= 1e-14: z_j = c z_i, exactly coinciding ones with c = 1) are
  one coordinate: their integrands are multiplied (``phi·phi`` is the named ``phi2``,
  ``phi2·phi2`` is ``phi4``, other products such as ``relu(x)·relu(-x)`` are built as sympy
  expressions), and a product over one or two coordinates goes to expect/expect2 again.
* An odd product (an odd number of odd integrands, :attr:`Integrand.parity`) is 0 by z → -z.
* Other rank deficiencies (z_3 = z_1 + z_2): z = R u with u ~ N(0, I_r), the
  eigen-directions of K with λ <= 1e-13 λ_max dropped (that moves E by O(λ/λ_max), at second
  order for smooth and kinked integrands alike, since the dropped part has mean 0; it is added to
  the error estimate).

Three or four distinct coordinates: the nested rule
----------------------------------------------------
z = L u, u ~ N(0, I), L the pivoted Cholesky factor (largest conditional variance first), so
z_j = μ_j(u_<j) + s_j u_j. Level j integrates u_j with composite Gauss–Legendre, n nodes per
panel, on panels cut at 0, ±2.5, ±5, the window ±9 (widened by exponential growth) and at f_j's
breakpoints mapped to u_j, (b - μ_j)/s_j (where s_j > 3 also at x = 0, ±2^-4..±2^4 mapped to
u_j: a wide Gaussian sees the activation bend within a fraction of a panel); the innermost level evaluates f_k on all points at
once. Each level's own factor has its kink in that level's variable, and what the inner levels
return is a Gaussian smoothing, so every level's integrand is piecewise analytic with its
pieces cut exactly where the panels are: the rule converges geometrically for kinked and
smooth activations alike (relu 4-D: 1e-7, 3e-9, 3e-11, 1e-13 relative at n = 6, 8, 10, 12).
The order n climbs 6, 8, 10, 12, 16, 20, 24, 32 until two successive orders agree to rtol (relative,
with a floor of 1e-14 of the integral of |integrand|); the error estimate is their difference
times max(1, ρ/(1 - ρ)) with ρ the ratio of the last two differences (the tail of a
geometric series; 2× while only one difference exists) plus 8 ulps of ∫|integrand| per level. ConvergenceError when the ladder is exhausted. Points where the integrand is exactly
0 (ReLU's negative side) are dropped.

The suggested alternative — the innermost variable along a direction every input loads on, its
1-D integral by the kink-aware rule, tensor Gauss–Hermite outside — is the **rotated rule**
here. The inner integral smooths every factor's kink, but the result is not smooth where two
factors' kinks meet in the inner variable (c_i/r_i = c_j/r_j: ReLU·ReLU has a jump in the third
derivative there, Heaviside products in the value), and Gauss–Hermite then converges only
algebraically: measured for ReLU in 3-D, relative differences 4e-6 (φφφ) and 5e-5 (Heaviside)
between 64 and 96 outer nodes per dimension. It is used

* for smooth integrands over kernels with one dominant eigen-direction (λ₂/λ₁ <= 0.1, deep
  networks' kernels), where the outer directions are narrow and 8-16 nodes per dimension reach
  1e-12 (tanh 4-D: 5e-10 at 8 nodes, 8e-13 at 12), falling back to the nested rule where it
  does not converge by 16;
* for rank-deficient kernels without collinear pairs (z_3 = z_1 + z_2), with the inner
  direction maximizing min_i |cos(a_i, v)| among Σ_i s_i a_i/|a_i| and the top eigenvector
  (a_i the rows of V √Λ); there the outer difference of kinked integrands is multiplied by 4
  (algebraic convergence), and ConvergenceError is what a tight rtol gets.

Positively homogeneous φ and erf in four_point: conditioning on a pair
----------------------------------------------------------------------
For φ = a₊x⁺ − a₋(−x)⁺ (ReLU, leaky ReLU, linear, |x|: ``Activation.homogeneous_slopes``),
``four_point`` computes the entries with three and four distinct inputs without the nested
rule (:func:`_four_conditioned`, :func:`_three_conditioned`). For a pair (a, b), every other
input is z_c = μ_c + ξ_c with μ_c = K_c,ab K_ab⁻¹ (z_a, z_b) and ξ independent of (z_a, z_b),
covariance Σ = K_rest − K_r,ab K_ab⁻¹ K_ab,r, so

    E[φ_a φ_b φ_c φ_d] = E_(z_a, z_b)[φ(z_a) φ(z_b) G_cd(μ_c, μ_d)],

G_cd = E[φ(μ_c + ξ_c) φ(μ_d + ξ_d)] in closed form (bivariate normal CDF and truncated moments,
:mod:`critheory.expectations.truncated_normal`). In u-space ((z_a, z_b) = L u, L the 2×2
Cholesky factor) every line where the integrand is not analytic goes through the origin: the
kinks z_a = 0, z_b = 0, and μ_c = 0, μ_d = 0, μ_c/s_c = ±μ_d/s_d (kinks of G where Σ is
singular, its sharpest bends where it is nearly so).

**The angular route** (:func:`_angular`, the default). Along a ray u = r(cos θ, sin θ),
z_a = r A(θ), μ_c = r p_c(θ): φ(z_a)φ(z_b) = r² φ(A)φ(B) and every argument of G is linear in
r, so the radial integral ∫₀^∞ r³ e^{-r²/2} G dr is a closed form
(:func:`~critheory.expectations.truncated_normal.radial_pair_moment`: moments of Φ, ϕΦ, ϕϕ and
Φ₂ along a ray, by parts; s_c = 0 included, G = φ(μ_c) E[φ(μ_d + ξ_d)]). One angle is left: it
is integrated by composite Gauss–Legendre on panels cut at the lines above and graded towards
μ_c = 0, μ_d = 0 (feature width s_c/|g_c| in angle) and μ_c/s_c = ±μ_d/s_d (width σ/|n|), with
the orders 8, 12, 16, 24, ... 96 per panel until, after at least two differences (three
orders: with one, G8 and G12 agreeing by chance passed errors 31× their estimate on a ReLU
recursion's layer-40 kernels), the tail estimate (:func:`_tail`) is below rtol
or 1e-14 of ∫|φ_aφ_b| × (the bound of the radial terms), plus 64 ulps of that. The entries
of a layer go in one batch (all their panels' nodes in one vectorized evaluation; only the
entries not yet converged are evaluated at the next order). Panels where φ(z_a)φ(z_b)
vanishes (ReLU) are dropped; the window is the whole line (no truncation). φ_a² φ_b φ_c
is first taken in closed form (orthant moments by Stein's identity,
:func:`~critheory.expectations.truncated_normal.homogeneous_moment4`; φ²φ² and φ³φ too) where
its rounding allowance, which grows as 1/(1 − ρ²) for a pair of correlation ρ, meets rtol;
otherwise the angle rule
conditions on (z_a, z_b) or (z_a, z_c), whichever leaves the third input the larger relative
conditional variance, with E[φ(z_c) | z_a, z_b] = mean_phi(μ_c, s_c) and its radial integral
:func:`~critheory.expectations.truncated_normal.radial_mean_phi` (:func:`_three_angular`).
Entries it does not take (a conditional correlation with √(1 − r²) <= 1e-7) or that do not
converge go to the 2-D rule below, then to the general routes.

**The 2-D polar rule** (the fallback): Gauss–Legendre in angle and radius (radial panels 0,
1.5, 3, 4.5, 6.5, 9.5), orders (8, 8), (12, 12), (16, 16), (24, 20), (32, 24), (48, 32),
(64, 48) until the estimate is below rtol or 1e-14 of ∫|φ_aφ_b| Ḡ (Ḡ the bound
a²(|μ_c| + s_c)(|μ_d| + s_d) of |G|: entries ~1e-20 of that scale, ReLU inputs that are almost
never all positive, converge on the floor); plus 32 ulps of ∫|φ_aφ_b| Ḡ, the mass beyond
r = 9.5 bounded with |G| <= a⁴ √(K_cc K_dd)(r + 1)², and conditional variances below 1e-14 of
the variance (taken as 0) as a relative O(s/√var) term (G's covariance term r s_c s_d). The
pair is the one maximizing min(s_c²/K_cc, s_d²/K_dd, 1 − r²) among those with
1 − ρ_ab² >= 1e-10. Its 1-D analogue for φ_a² φ_b φ_c (:func:`_three_cond`) conditions on z_a
alone, cut at 0 and graded towards it by the conditional spreads.

**c·erf(a x)** (``closed_forms.erf_params``): erf(a z) = E_g[sgn(√2 a z − g)] with g ~ N(0, 1)
independent per factor, so every entry of ``four_point`` with several inputs (φ² as two factors
with their own g) is c⁴ E[Π sgn(w_i)], w ~ N(0, I + 2a²K_sub) — positive definite whatever K
is, conditional spreads >= 1 (:func:`_sign_cond`). Conditioning on (w_a, w_b), the other two
signs have the mean 4Φ₂(h, k; ρ) − 2Φ(h) − 2Φ(k) + 1 and the radial integral is again a closed
form (:func:`~critheory.expectations.truncated_normal.radial_sign_moment`); the angle rule is
cut where sgn(w_a) sgn(w_b) jumps. (The 2-D rule stays as its fallback, with
G = c²(4Φ₂ − 2Φ(h) − 2Φ(k) + 1), :func:`~critheory.expectations.truncated_normal.erf_pair_moment`.)

Measured (2-core shared VM, m = 8, rtol 1e-10): inside the several-input recursion (CPU time
over a depth-100 run, benchmarks/README.md) the layer's whole four-point tensor ReLU ~5 ms
(the 70 φφφφ entries by the angle rule; 2-D rule: 0.2–0.3 s, nested rule: 30–159 s), leaky ReLU
~7 ms (φφφφ as δ⁴ × ReLU's entry + the linear terms in closed form, :func:`_cond4`), erf ~11 ms
(2-D rule: 1–2 s); earlier (one-difference acceptance, φ²φφ by the angle rule) 15–30, 30–45
and ~25 ms; at unit
variances ReLU 0.03 s, leaky ReLU 0.09 s, erf 0.12–0.15 s. Every entry within its error estimate of Wick's theorem (linear φ), the
sign-product orthant reference (erf) and the nested rule (ReLU-type), over random kernels of
seven kinds including rank 2, rank 3, nearly collinear pairs and correlations near 1
(``tests/test_angular_route.py``); the 2-D rule's dropped spreads and nearly collinear pairs
were found there to exceed its own estimates by up to 1e4 (ReLU, erf): it is now only a
fallback.

Examples
--------
>>> import numpy as np
>>> K = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
>>> r = expect_product("relu", ["dphi", "dphi", "dphi"], K)   # orthant probability
>>> exact = 1/8 + (np.arcsin(0.5) + np.arcsin(0.2) + np.arcsin(0.3)) / (4 * np.pi)
>>> bool(abs(r.value - exact) < 1e-9)
True
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.special import ndtr as _ndtr

from critheory.activation.symbolic import Activation
from critheory.errors import ConvergenceError, InvalidArgumentError, InvalidVarianceError
from critheory.expectations.gaussian import (Expectation, check_variance,
                                             expect, expect2)
from critheory.expectations.integrands import Integrand, integrand
from critheory.expectations.quadrature import WINDOW_L, expect_z, make_edges, steep_edges

__all__ = ["expect_product", "four_point", "two_point", "has_conditioned_route", "MAX_POINTS",
           "MAX_INPUTS"]

#: most kernels of one expect_product call
MAX_POINTS = 100_000
#: most inputs of four_point / two_point (the tensor has m⁴ entries)
MAX_INPUTS = 32
#: outer Gauss–Hermite orders per dimension
_OUTER_LADDER = (8, 12, 16, 24, 32, 48)
#: safety factor on the outer difference for kinked integrands (algebraic convergence)
_KINK_SAFETY = 4.0
#: coordinates with 1 - ρ² below this are collinear (z_j = c z_i): one coordinate
_COLLINEAR = 1e-14
#: eigenvalues below this fraction of the largest are dropped (rank reduction)
_RANK_TOL = 1e-13
#: the rotated rule is tried first for smooth integrands where λ_2/λ_1 <= this, with this ladder
_ROTATED_SPREAD = 0.1
_ROTATED_FIRST = (8, 12, 16)
#: inner entries (outer nodes × kernels) per expect_z call
_CHUNK = 20_000
_EPS = np.finfo(float).eps
_PHI_POWER = {"phi": 1, "phi2": 2, "phi4": 4}


def _check_rtol(rtol) -> None:
    """1e-16 <= rtol < 1, a number (InvalidArgumentError otherwise)."""
    try:
        ok = not isinstance(rtol, (bool, np.bool_)) and 1e-16 <= float(rtol) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidArgumentError(f"rtol must be a number in [1e-16, 1), got {rtol!r}")


def _check_kernels(K, k: int | None = None) -> np.ndarray:
    """K as a float64 array of shape (..., k, k): numbers, finite, symmetric, diagonal > 0
    (normal float64), positive semidefinite to round-off; InvalidVarianceError otherwise."""
    if isinstance(K, (str, bytes, bool, np.bool_)):
        raise InvalidVarianceError(f"K must be an array of numbers, got {K!r:.60}")
    if isinstance(K, np.ndarray) and K.dtype.kind not in "iuf":
        raise InvalidVarianceError(f"K must be an array of numbers, got dtype {K.dtype}")
    try:
        arr = np.array(K, dtype=float)
    except (TypeError, ValueError):
        raise InvalidVarianceError("K must be an array of numbers") from None
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise InvalidVarianceError(f"K must have shape (..., k, k), got {arr.shape}")
    if k is not None and arr.shape[-1] != k:
        raise InvalidVarianceError(f"K must be {k}×{k} (one row per integrand), got "
                                   f"{arr.shape[-2]}×{arr.shape[-1]}")
    if arr.size == 0:
        raise InvalidVarianceError("K is empty")
    if not np.isfinite(arr).all():
        raise InvalidVarianceError("K must be finite")
    diag = np.diagonal(arr, axis1=-2, axis2=-1)
    check_variance(diag, "the diagonal of K")
    scale = np.sqrt(diag[..., :, None] * diag[..., None, :])
    if np.any(np.abs(arr - np.swapaxes(arr, -1, -2)) > 1e-12 * scale):
        raise InvalidVarianceError("K must be symmetric")
    arr = 0.5 * (arr + np.swapaxes(arr, -1, -2))
    if np.any(np.abs(arr) > scale * (1 + 1e-12)):
        raise InvalidVarianceError("K is not positive semidefinite (|K_ij| > sqrt(K_ii K_jj))")
    arr = np.clip(arr, -scale, scale)
    corr = arr / scale
    lam = np.linalg.eigvalsh(corr)
    if np.any(lam[..., 0] < -1e-10):
        raise InvalidVarianceError(f"K is not positive semidefinite (smallest eigenvalue of the "
                                   f"correlation matrix {float(lam[..., 0].min()):.3g})")
    return arr


def _product_integrand(act: Activation, items: list) -> Integrand:
    """The integrand Π f(c x) over items (f, c) of collinear coordinates z = c·z_rep (f a name or
    a sympy expression; c = 1 for coinciding coordinates)."""
    if all(c == 1.0 for _, c in items):
        specs = [f for f, _ in items]
        if all(isinstance(f, str) and f in _PHI_POWER for f in specs):
            p = sum(_PHI_POWER[f] for f in specs)
            for name, q in _PHI_POWER.items():
                if q == p:
                    return integrand(act, name)
            return integrand(act, act.expr ** p)
        if len(specs) == 1:
            return integrand(act, specs[0])
    import sympy as sp

    from critheory.activation.symbolic import X

    e = sp.Integer(1)
    for f, c in items:
        g = integrand(act, f).expr
        if c != 1.0:
            g = g.subs(X, (-1 if c == -1.0 else sp.Float(c)) * X)
        e = e * g
    return integrand(act, e)


def expect_product(activation, fns: Sequence, K, *, rtol: float = 1e-10) -> Expectation:
    """E[Π_i f_i(z_i)], z ~ N(0, K), for a batch of k×k kernels K (k = len(fns) <= 4).

    Parameters
    ----------
    activation : str, sympy.Expr or Activation
    fns : sequence of str or sympy.Expr
        One integrand per coordinate, as :func:`critheory.expectations.integrands.integrand`
        takes them (``"phi"``, ``"phi2"``, ``"dphi"``, an expression in x, ...).
    K : array_like of shape (..., k, k)
        Positive semidefinite kernels with positive diagonal.
    rtol : float
        Target relative accuracy.

    Returns
    -------
    Expectation
        value and error of shape (...) (floats for one kernel).

    Examples
    --------
    >>> import numpy as np
    >>> K = np.eye(3) + 0.5 * (1 - np.eye(3))
    >>> r = expect_product("x", ["phi", "phi", "phi2"], K)   # Wick: K12 K33 + 2 K13 K23
    >>> round(float(r.value), 9)
    1.0
    """
    _check_rtol(rtol)
    act = Activation.get(activation)
    if isinstance(fns, (str, bytes)) or not hasattr(fns, "__len__"):
        raise InvalidArgumentError("fns must be a sequence of integrands, one per coordinate")
    k = len(fns)
    if not 1 <= k <= 4:
        raise InvalidArgumentError(f"expect_product takes 1 to 4 integrands, got {k}")
    fis = [integrand(act, f) for f in fns]
    Karr = _check_kernels(K, k)
    shape = Karr.shape[:-2]
    Kf = Karr.reshape(-1, k, k)
    if Kf.shape[0] > MAX_POINTS:
        raise InvalidVarianceError(f"K holds {Kf.shape[0]} kernels; at most {MAX_POINTS} per call")
    if k == 1:
        return expect(act, fis[0], Karr[..., 0, 0], rtol=rtol)
    if k == 2:
        return expect2(act, fis[0], fis[1], Karr[..., 0, 0], Karr[..., 0, 1], Karr[..., 1, 1],
                       rtol=rtol)
    for fi in fis:
        if fi.point_masses:
            raise InvalidArgumentError("multi-point expectations of distributional integrands"
                                       " (phi'' at a kink) are not supported")
        fi.growth  # noqa: B018 - GrowthError early
    B = Kf.shape[0]
    value = np.zeros(B)
    error = np.zeros(B)
    meth = np.empty(B, dtype=object)
    # groups of collinear coordinates (|ρ| = 1 to round-off; exactly coinciding ones among
    # them), per kernel: z_i = c_i z_rep, c_i = K_i,rep / K_rep,rep
    diag = np.diagonal(Kf, axis1=1, axis2=2)
    same = (Kf == diag[:, :, None]) & (Kf == diag[:, None, :])
    col = same | (Kf * Kf >= diag[:, :, None] * diag[:, None, :] * (1 - _COLLINEAR))
    labels = np.tile(np.arange(k), (B, 1))
    scale = np.ones((B, k))
    for i in range(1, k):
        first = np.argmax(col[:, i, :i + 1], axis=1)
        rep = labels[np.arange(B), first]
        labels[:, i] = rep
        c = Kf[np.arange(B), i, rep] / diag[np.arange(B), rep]
        scale[:, i] = np.where(same[np.arange(B), i, rep], 1.0, c)
    groups: dict = {}
    for b in range(B):
        key = (tuple(labels[b]), tuple(scale[b]) if np.any(scale[b] != 1.0) else None)
        groups.setdefault(key, []).append(b)
    for (pat, sc), idx in groups.items():
        idx = np.asarray(idx)
        reps = sorted(set(pat))
        if all(pat.count(r) == 1 for r in reps):
            gis = fis
        else:
            gis = [_product_integrand(act, [(fns[i], 1.0 if sc is None else sc[i])
                                            for i in range(k) if pat[i] == r]) for r in reps]
        Ks = Kf[idx][:, reps][:, :, reps]
        v, e, m = _distinct(act, gis, Ks, rtol)
        value[idx], error[idx], meth[idx] = v, e, m
    meth = meth.reshape(shape)
    method = "+".join(sorted(set(meth.ravel().tolist())))
    if shape == ():
        return Expectation(float(value[0]), float(error[0]), method, meth)
    return Expectation(value.reshape(shape), error.reshape(shape), method, meth)


def _distinct(act, gis: list, Ks: np.ndarray, rtol: float):
    """E[Π g_i(z_i)] for distinct coordinates (kernels Ks of shape (B, k, k))."""
    k = len(gis)
    B = Ks.shape[0]
    if k == 1:
        r = expect(act, gis[0], Ks[:, 0, 0], rtol=rtol)
        return r.value, r.error, r.methods
    if k == 2:
        r = expect2(act, gis[0], gis[1], Ks[:, 0, 0], Ks[:, 0, 1], Ks[:, 1, 1], rtol=rtol)
        return r.value, r.error, r.methods
    if sum(g.parity == "odd" for g in gis) % 2 == 1:
        return np.zeros(B), np.zeros(B), np.full(B, "symmetry", dtype=object)
    # square roots: z = L w, L = V √Λ with the negligible eigen-directions dropped
    lam, V = np.linalg.eigh(Ks)
    lam = np.maximum(lam, 0.0)
    keep = lam > _RANK_TOL * lam[:, -1:]
    rank = keep.sum(axis=1)
    diag = np.diagonal(Ks, axis1=1, axis2=2)
    dropped = np.where(keep, 0.0, lam).sum(axis=1) / diag.min(axis=1)
    value = np.zeros(B)
    error = np.zeros(B)
    meth = np.full(B, "rotated_gauss_hermite", dtype=object)
    kinked = any(len(g.breakpoints) for g in gis) or any(g.features.steep for g in gis)
    grows = any(g.growth != (0.0, 0.0) for g in gis)
    # smooth integrands over a kernel dominated by one eigen-direction (deep networks: the
    # inputs' correlations near 1): the rotated rule converges with few outer nodes; elsewhere,
    # or where it does not converge by _ROTATED_FIRST[-1] nodes, the nested rule
    spread = lam[:, -2] / lam[:, -1]
    for r in np.unique(rank):
        sel = np.flatnonzero(rank == r)
        if r == k:
            # the nested rule divides by the Cholesky pivots: nearly singular kernels (a pivot
            # below 1e-6 of its standard deviation) take the rank-deficient route below
            ok = np.array([_min_pivot(Ks[i]) > _MIN_PIVOT for i in sel])
            if not ok.all():
                r_bad = sel[~ok]
                L = V[r_bad] * np.sqrt(lam[r_bad][:, None, :])
                R = np.stack([_rotate(Lb) for Lb in L])
                v, e = _integrate(gis, R, rtol)
                value[r_bad], error[r_bad] = v, e + 1e-300
                sel = sel[ok]
                if not sel.size:
                    continue
            nest = np.ones(sel.size, dtype=bool) if kinked else spread[sel] > _ROTATED_SPREAD
            rot = sel[~nest]
            if rot.size:
                L = V[rot] * np.sqrt(lam[rot][:, None, :])
                R = np.stack([_rotate(Lb) for Lb in L])
                v, e = _integrate(gis, R, rtol, ladder=_ROTATED_FIRST, strict=False)
                value[rot], error[rot] = v, e
                nest[~nest] = ~np.isfinite(v)
            gh = nest & (diag[sel].max(axis=1) <= _GH_MAX_VAR) & (not (kinked or grows))
            if gh.any():
                sg = sel[gh]
                v, e = _tensor_gh(gis, Ks[sg], rtol)
                value[sg], error[sg], meth[sg] = v, e, "gauss_hermite_tensor"
                nest[gh] = ~np.isfinite(v)
            if nest.any():
                sn = sel[nest]
                v, e = _nested(gis, Ks[sn], rtol)
                value[sn], error[sn], meth[sn] = v, e, "nested_gauss_legendre"
            continue
        if kinked and r <= 2:
            # rank 1-2 (inputs in one or two dimensions): the nested rule on r variables, the
            # dependent inputs' kinks cut the innermost panels and their meeting points the
            # outer ones
            v, e = _nested(gis, Ks[sel], rtol, rank=int(r))
            value[sel], meth[sel] = v, "nested_gauss_legendre"
            error[sel] = e + dropped[sel] * np.abs(v) + 1e-300
            continue
        L = V[sel][:, :, k - r:] * np.sqrt(lam[sel][:, None, k - r:])   # (b, k, r)
        R = np.stack([_rotate(Lb) for Lb in L])
        if kinked:
            v, e = _integrate(gis, R, rtol)
        else:
            # smooth: the rotated rule where it converges quickly, else the nested rule on r
            # variables (tanh over 4 inputs in 2-D: the rotated rule stalled at 3e-8)
            v, e = _integrate(gis, R, rtol, ladder=_ROTATED_FIRST, strict=False)
            bad = ~np.isfinite(v)
            if bad.any():
                v2, e2 = _nested(gis, Ks[sel[bad]], rtol, rank=int(r))
                v, e = v.copy(), e.copy()
                v[bad], e[bad] = v2, e2
                meth[sel[bad]] = "nested_gauss_legendre"
        value[sel] = v
        error[sel] = e + dropped[sel] * np.abs(v) + 1e-300
    return value, error, meth


def _rotate(L: np.ndarray) -> np.ndarray:
    """L Q with Q orthogonal and Q's last column the direction v (in the space of the rows a_i
    of L) that maximizes min_i |cos(a_i, v)| among Σ s_i a_i/|a_i| and the top eigenvector."""
    k, r = L.shape
    if r == 1:
        return L.copy()
    a = L / np.linalg.norm(L, axis=1, keepdims=True)
    cands = [np.eye(r)[-1]]     # the top eigen-direction (eigh sorts ascending)
    for signs in itertools.product((1.0, -1.0), repeat=k - 1):
        s = np.concatenate([[1.0], signs])
        c = s @ a
        n = np.linalg.norm(c)
        if n > 1e-8:
            cands.append(c / n)
    cands = np.array(cands)
    score = np.min(np.abs(a @ cands.T), axis=0)
    v = cands[np.argmax(score)]
    # orthonormal completion with v last
    M = np.column_stack([v, np.eye(r)])
    Q, _ = np.linalg.qr(M)
    Q = Q[:, :r]
    Q = np.column_stack([Q[:, 1:], Q[:, 0] * np.sign(Q[:, 0] @ v)])
    return L @ Q


def _outer_nodes(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss–Hermite (probabilists') nodes (N, d) and weights (N,)."""
    t, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / np.sqrt(2.0 * np.pi)
    if d == 0:
        return np.zeros((1, 0)), np.ones(1)
    grids = np.meshgrid(*([t] * d), indexing="ij")
    W = np.ones([n] * d)
    for ax in range(d):
        W = W * w.reshape([n if a == ax else 1 for a in range(d)])
    return np.stack([g.ravel() for g in grids], axis=1), W.ravel()


def _integrate(gis: list, R: np.ndarray, rtol: float, ladder: Sequence[int] = _OUTER_LADDER,
               trace: list | None = None, strict: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """E[Π g_i((R u)_i)], u ~ N(0, I_r), for R of shape (B, k, r) (last column: inner)."""
    B, k, r = R.shape
    d = r - 1
    rl = R[:, :, -1]                         # (B, k)
    Ro = R[:, :, :-1]                        # (B, k, d)
    fns = [g.numpy for g in gis]
    bps = [np.asarray(g.breakpoints, dtype=float) for g in gis]
    growth = [g.growth for g in gis]
    feats = [g.features for g in gis]
    for ft in feats:
        if ft.steep and not ft.located:
            raise ConvergenceError(
                f"multi-point expectations of a formula that bends on a length ~{1 / ft.rate:.2g}"
                " at places that cannot be located symbolically are not supported")
    kinked = any(b.size for b in bps) or any(ft.steep for ft in feats)
    grows = any(gr != (0.0, 0.0) for gr in growth)
    smooth_b = (not kinked and not grows) & np.all(np.abs(R).sum(axis=2) <= 3.0, axis=1)
    inner_rtol = max(min(0.1 * rtol, 1e-12), 1e-14)

    def inner(C: np.ndarray, rlf: np.ndarray, smooth: np.ndarray):
        """Inner expectations for centres C (M, k) and slopes rlf (M, k)."""
        M = C.shape[0]

        def zfunc(Z, idx):
            out = None
            for i, f in enumerate(fns):
                v = f(C[idx, i, None] + rlf[idx, i, None] * Z)
                out = v if out is None else out * v
            return out

        ar = np.abs(rlf)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = -WINDOW_L - sum(np.where(rlf[:, i] >= 0, growth[i][0], growth[i][1]) * ar[:, i]
                                 for i in range(k))
            hi = WINDOW_L + sum(np.where(rlf[:, i] >= 0, growth[i][1], growth[i][0]) * ar[:, i]
                                for i in range(k))
            cols = [lo[:, None], hi[:, None]]
            for i in range(k):
                # the 1-D rule's panel edges of factor i (z-grid, x-grid, breakpoints, steep
                # features) in h = c + |r| t', then t = sign(r) t'
                sgn = np.where(rlf[:, i] < 0, -1.0, 1.0)
                std = np.maximum(ar[:, i], 1e-300)
                extra = steep_edges(C[:, i], std, feats[i]) if feats[i].steep else None
                cols.append(sgn[:, None] * make_edges(C[:, i], std, bps[i], growth[i],
                                                      extra_x=extra))
            E = np.concatenate(cols, axis=1)
        E = np.clip(np.nan_to_num(E, nan=0.0), lo[:, None], hi[:, None])
        q = expect_z(zfunc, M, E, smooth=smooth, rtol=inner_rtol, max_error=np.inf)
        return q.value, q.error

    value = np.full(B, np.nan)
    error = np.full(B, np.nan)
    todo = np.arange(B)
    prev = None
    ladder = tuple(ladder) if d else tuple(ladder)[:1]
    for n in ladder:
        U, w = _outer_nodes(n, d)
        N = w.size
        q = np.empty(todo.size)
        qa = np.empty(todo.size)
        ie = np.empty(todo.size)
        per = max(1, _CHUNK // N)
        for s in range(0, todo.size, per):
            bs = todo[s:s + per]
            C = np.einsum("bkd,nd->bnk", Ro[bs], U).reshape(-1, k)
            rlf = np.repeat(rl[bs], N, axis=0)
            sm = np.repeat(smooth_b[bs], N)
            with np.errstate(all="ignore"):
                v, e = inner(C, rlf, sm)
            v = v.reshape(bs.size, N)
            e = e.reshape(bs.size, N)
            q[s:s + bs.size] = v @ w
            qa[s:s + bs.size] = np.abs(v) @ w
            ie[s:s + bs.size] = np.where(np.isfinite(e), e, np.inf) @ w
        if not np.all(np.isfinite(q)):
            raise ConvergenceError("multi-point expectation is not finite (the integrand"
                                   " overflows inside the Gaussian window)")
        if trace is not None:
            trace.append((n, q.copy(), ie.copy()))
        if d == 0:
            value[todo] = q
            error[todo] = ie + 8 * _EPS * qa
            return value, error
        if prev is not None:
            diff = np.abs(q - prev)
            tol = np.maximum(rtol * np.abs(q), 1e-14 * qa) + 1e-300
            ok = diff <= tol
            est = diff * (_KINK_SAFETY if kinked else 1.0)
            value[todo[ok]] = q[ok]
            error[todo[ok]] = est[ok] + ie[ok] + 8 * _EPS * qa[ok]
            todo, q = todo[~ok], q[~ok]
            if not todo.size:
                return value, error
            worst = float(np.max(diff[~ok] / np.maximum(np.abs(q), 1e-300)))
        prev = q
    if not strict:
        return value, error      # the entries not converged are NaN
    raise ConvergenceError(
        f"multi-point expectation did not converge: relative difference {worst:.2e} between "
        f"{ladder[-2]} and {ladder[-1]} outer nodes per dimension (rtol {rtol:g})")


#: Gauss–Legendre orders per panel of the nested rule (kinked integrands)
_NESTED_LADDER = (6, 8, 10, 12, 16, 20, 24, 32)
#: panel edges of the nested rule in each level's standard-normal variable (kinks come on top)
_NESTED_GRID = np.array([-5.0, -2.5, 0.0, 2.5, 5.0])
#: conditional standard deviations above this get panels graded in x units too
_WIDE_STD = 3.0
_BEND_GRID = np.concatenate([[0.0], 2.0 ** np.arange(-4, 5), -(2.0 ** np.arange(-4, 5))])
#: the nested rule's window |u| <= _NESTED_W (+ growth): the Gaussian mass outside is < 2e-19
_NESTED_W = 9.0
#: most quadrature points the nested rule may hold at once
_NESTED_MAX_POINTS = 4_000_000


#: smallest relative Cholesky pivot the nested rule takes
_MIN_PIVOT = 1e-6


def _min_pivot(K: np.ndarray) -> float:
    """The smallest pivot of the pivoted Cholesky factor relative to its coordinate's std."""
    perm, L = _cholesky_order(K)
    return float(np.min(np.diag(L) / np.sqrt(np.diag(K)[perm])))


def _cholesky_order(K: np.ndarray, r: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pivoted Cholesky factor L (rows in the order ``perm``): z[perm] = L u, the coordinate of
    largest conditional variance first. With ``r``: r pivots only, L of shape (k, r) (the
    coordinates after the r-th depend on the first r)."""
    k = K.shape[0]
    return _cholesky_rank(K, k if r is None else min(r, k))


def _level(f, bp: np.ndarray, growth: tuple, mu: np.ndarray, s: float, t: np.ndarray,
           w: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One level of the nested rule: nodes (P, Q) in u and weights φ(u)·f(μ + s u)·du (P, Q)
    for the points' conditional means μ (P,)."""
    lo = -_NESTED_W - growth[0] * s
    hi = _NESTED_W + growth[1] * s
    P = mu.size
    wide = s > _WIDE_STD
    if not len(bp) and not wide and extra is None:
        # no kink: the same panels for every point, nodes and Gaussian weights computed once
        e = np.sort(np.clip(np.concatenate([[lo, hi], _NESTED_GRID]), lo, hi))
        half = 0.5 * (e[1:] - e[:-1])
        nodes = ((0.5 * (e[1:] + e[:-1]))[:, None] + half[:, None] * t).ravel()
        g = ((half[:, None] * w).ravel() * np.exp(-0.5 * nodes * nodes) * _INV_SQRT2PI)
        with np.errstate(all="ignore"):
            wts = f(mu[:, None] + s * nodes[None, :]) * g
        return np.broadcast_to(nodes, wts.shape), wts
    cols = [np.full((P, 1), lo), np.full((P, 1), hi),
            np.broadcast_to(_NESTED_GRID, (P, _NESTED_GRID.size))]
    if len(bp):
        cols.append((bp[None, :] - mu[:, None]) / s)
    if extra is not None:
        cols.append(extra)
    if wide:
        # a Gaussian much wider than the O(1) scale on which activations bend: panels graded
        # around x = 0 in x units too (as the 1-D composite rule does)
        cols.append((_BEND_GRID[None, :] - mu[:, None]) / s)
    E = np.sort(np.clip(np.concatenate(cols, axis=1), lo, hi), axis=1)
    half = 0.5 * (E[:, 1:] - E[:, :-1])
    nodes = (0.5 * (E[:, 1:] + E[:, :-1]))[:, :, None] + half[:, :, None] * t   # (P, E-1, n)
    with np.errstate(all="ignore"):
        wts = (half[:, :, None] * w) * np.exp(-0.5 * nodes * nodes) * _INV_SQRT2PI
        wts *= f(mu[:, None, None] + s * nodes)
    return nodes.reshape(P, -1), wts.reshape(P, -1)


_INV_SQRT2PI = 1.0 / np.sqrt(2.0 * np.pi)


#: offsets, in units of the smoothing width, of the edges around a later factor's kink
_GRADES = (0.0, -0.5, 0.5, -1.0, 1.0, -2.0, 2.0, -4.0, 4.0)


def _inner_kinks(U: np.ndarray, L: np.ndarray, bps: list, j: int) -> np.ndarray | None:
    """Panel edges at level j around the later factors' kinks as seen from u_j: factor l > j
    has its kink where z_l = b, at u_j = (b - Σ_{m<j} L_lm u_m)/L_lj, smoothed by the levels
    between over a width w = √(Σ_{j<m<=l} L_lm²)/|L_lj|. Where w < 1 (inputs correlated
    enough that the inner integral turns a near-step at the node spacing), edges at
    u* + w·(0, ±1/2, ±1, ±2, ±4), as expect_2d grades its outer rule in 2-D. None if there are none."""
    cols = []
    for l in range(j + 1, L.shape[0]):
        slope = L[l, j]
        if not len(bps[l]) or slope == 0.0:
            continue
        width = np.sqrt(np.sum(L[l, j + 1:l + 1] ** 2)) / abs(slope)
        if width >= 1.0:
            continue
        base = U @ L[l, :j]
        for b in bps[l]:
            c = (b - base) / slope
            cols.extend(c + width * o for o in _GRADES)
    return np.stack(cols, axis=1) if cols else None


def _cholesky_rank(K: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Pivoted Cholesky with r pivots (see :func:`_cholesky_order`; a plain loop, k <= 4:
    conditional variances from the partial factor)."""
    k = K.shape[0]
    perm: list = []
    rows = {i: np.zeros(r) for i in range(k)}
    for j in range(r):
        cand = [i for i in range(k) if i not in perm]
        var = [K[i, i] - rows[i][:j] @ rows[i][:j] for i in cand]
        p = cand[int(np.argmax(var))]
        d = np.sqrt(max(max(var), 0.0))
        perm.append(p)
        for i in cand:
            if i != p:
                rows[i][j] = (K[i, p] - rows[i][:j] @ rows[p][:j]) / d
        rows[p][j] = d
    perm += [i for i in range(k) if i not in perm]
    return np.array(perm), np.array([rows[i] for i in perm])


def _nested_rank(fs: list, bps: list, growth: list, L: np.ndarray, n: int) -> tuple[float, float]:
    """The nested rule for a kernel of rank r = L.shape[1] < k: level 0 (if r = 2) as in
    :func:`_nested_one`, with extra panel edges where two of the dependent factors' kinks meet
    in u_r (there the inner integral has a kink); for r > 2 (smooth factors only: the meeting
    lines of kinks are not aligned with the outer levels' panels) levels 0..r-2 as in
    :func:`_nested_one`; the last level integrates the product of factors r-1..k-1 over u_r
    with panels cut at every one of their kinks."""
    k, r = L.shape
    t, w = np.polynomial.legendre.leggauss(n)
    grp = list(range(r - 1, k))
    S = L[grp, r - 1]
    U = np.zeros((1, 0))
    Wt = np.ones(1)
    if r == 2:
        pts = []
        for a in range(len(grp)):
            la = grp[a]
            for b in bps[la]:
                if S[a] == 0.0:
                    if L[la, 0] != 0.0:
                        pts.append(b / L[la, 0])
                    continue
                for c in range(a + 1, len(grp)):
                    lc = grp[c]
                    if S[c] == 0.0:
                        continue
                    den = L[la, 0] / S[a] - L[lc, 0] / S[c]
                    for b2 in bps[lc]:
                        if den != 0.0:
                            pts.append((b / S[a] - b2 / S[c]) / den)
        extra = np.array(pts, dtype=float)[None, :] if pts else None
        nodes, wts = _level(fs[0], bps[0], growth[0], np.zeros(1), L[0, 0], t, w, extra)
        keep = wts[0] != 0.0
        U, Wt = nodes[0, keep][:, None], wts[0, keep]
    elif r > 2:
        # smooth factors only (the caller's contract): the outer levels as in _nested_one
        U, Wt = _outer_levels(fs, bps, growth, L, t, w, r - 1)
    MU = U @ L[grp, :r - 1].T                    # (P, q)
    P = MU.shape[0]
    span = sum(max(growth[l]) * abs(S[i]) for i, l in enumerate(grp))
    lo, hi = -_NESTED_W - span, _NESTED_W + span
    cols = [np.full((P, 1), lo), np.full((P, 1), hi),
            np.broadcast_to(_NESTED_GRID, (P, _NESTED_GRID.size))]
    for i, l in enumerate(grp):
        if len(bps[l]) and S[i] != 0.0:
            cols.append((bps[l][None, :] - MU[:, i, None]) / S[i])
    E = np.sort(np.clip(np.concatenate(cols, axis=1), lo, hi), axis=1)
    half = 0.5 * (E[:, 1:] - E[:, :-1])
    nodes = (0.5 * (E[:, 1:] + E[:, :-1]))[:, :, None] + half[:, :, None] * t
    with np.errstate(all="ignore"):
        wts = (half[:, :, None] * w) * np.exp(-0.5 * nodes * nodes) * _INV_SQRT2PI
        for i, l in enumerate(grp):
            wts = wts * fs[l](MU[:, i, None, None] + S[i] * nodes)
    v = wts.reshape(P, -1)
    return float(Wt @ v.sum(axis=1)), float(np.abs(Wt) @ np.abs(v).sum(axis=1))


def _outer_levels(fs: list, bps: list, growth: list, L: np.ndarray, t: np.ndarray, w: np.ndarray,
                  levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels 0..levels-1 of the nested rule: the points U (P, levels) in u and their weights
    (P,), points of weight exactly 0 dropped."""
    U = np.zeros((1, 0))
    Wt = np.ones(1)
    for j in range(levels):
        nodes, wts = _level(fs[j], bps[j], growth[j], U @ L[j, :j], L[j, j], t, w,
                            _inner_kinks(U, L, bps, j))
        wts *= Wt[:, None]
        pi, qi = np.nonzero(wts)
        if pi.size > _NESTED_MAX_POINTS:
            raise ConvergenceError(
                f"the nested rule would hold {pi.size} points at once (the limit is "
                f"{_NESTED_MAX_POINTS}): use a larger rtol")
        U = np.concatenate([U[pi], nodes[pi, qi][:, None]], axis=1)
        Wt = wts[pi, qi]
    return U, Wt


def _nested_one(fs: list, bps: list, growth: list, L: np.ndarray, n: int) -> tuple[float, float]:
    """The nested rule of order n: E[Π_j f_j(z_j)], z = L u (L lower triangular with a positive
    diagonal), one level per coordinate in Cholesky order. Level j integrates u_j with
    composite Gauss–Legendre (n nodes per panel) on panels cut at f_j's breakpoints mapped to
    u_j (no node on a kink of the level's own factor) and at the grid 0, ±2.5, ±5; the integrand of
    each level is smooth in the outer variables (its kink is in its own variable). Points of
    weight exactly 0 (ReLU's negative side) are dropped. Returns (Σ, Σ|·|)."""
    k = L.shape[0]
    t, w = np.polynomial.legendre.leggauss(n)
    U, Wt = _outer_levels(fs, bps, growth, L, t, w, k - 1)
    # the innermost level, a bounded number of points at a time
    q = qa = 0.0
    per = max(1, _NESTED_CHUNK // (n * (_NESTED_GRID.size + 1 + len(bps[-1]))))
    mu_all = U @ L[k - 1, :k - 1]
    for i in range(0, mu_all.size, per):
        _, wts = _level(fs[-1], bps[-1], growth[-1], mu_all[i:i + per], L[k - 1, k - 1], t, w)
        v = wts.sum(axis=1)
        q += float(Wt[i:i + per] @ v)
        qa += float(np.abs(Wt[i:i + per]) @ np.abs(wts).sum(axis=1))
    return q, qa


#: innermost evaluations of the nested rule per array
_NESTED_CHUNK = 2_000_000


def _tail(diff: float, last: float | None) -> float:
    """Error estimate of the finer of two rules whose difference is ``diff`` (``last``: the
    difference one step before). Geometric convergence with ratio ρ = diff/last leaves at most
    diff·ρ/(1 - ρ) after the finer rule: the estimate is diff·max(1, ρ/(1 - ρ)) (ρ capped at
    0.9), and 2·diff (covering ρ <= 2/3) while there is only one difference. Measured: a
    nearly singular 3-D kernel (conditional std 0.03) converges with ρ ~ 0.6, where the bare
    difference fell 12 % short of the true error."""
    if last is None or last == 0.0:
        return 2.0 * diff
    rho = min(diff / last, 0.9)
    return diff * max(1.0, rho / (1.0 - rho))


@functools.lru_cache(maxsize=None)
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights of order n (cached; read-only arrays)."""
    t, w = np.polynomial.legendre.leggauss(n)
    t.flags.writeable = False
    w.flags.writeable = False
    return t, w


def _tails(diff: np.ndarray, last: np.ndarray) -> np.ndarray:
    """:func:`_tail` elementwise (``last`` NaN or 0: only one difference)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.minimum(diff / last, 0.9)
        two = ~np.isfinite(last) | (last == 0.0)
        return np.where(two, 2.0 * diff, diff * np.maximum(1.0, rho / (1.0 - rho)))


def _nested(gis: list, Ks: np.ndarray, rtol: float, rank: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """The nested Cholesky rule for kinked integrands over full-rank kernels (see the module
    docstring); the order ladder per panel until two successive orders agree to rtol."""
    fns = [g.numpy for g in gis]
    bps = [np.asarray(g.breakpoints, dtype=float) for g in gis]
    growth = [g.growth for g in gis]
    B = Ks.shape[0]
    value = np.empty(B)
    error = np.empty(B)
    for b in range(B):
        perm, L = _cholesky_order(Ks[b], rank)
        f = [fns[i] for i in perm]
        bp = [bps[i] for i in perm]
        gr = [growth[i] for i in perm]
        rule = _nested_one if L.shape[1] == L.shape[0] else _nested_rank
        prev = last = None
        for n in _NESTED_LADDER:
            q, qa = rule(f, bp, gr, L, n)
            if not np.isfinite(q):
                raise ConvergenceError("multi-point expectation is not finite (the integrand"
                                       " overflows inside the Gaussian window)")
            if prev is not None:
                diff = abs(q - prev)
                est = _tail(diff, last)
                last = diff
                if est <= max(rtol * abs(q), 1e-14 * qa):
                    value[b] = q
                    error[b] = est + 8 * _EPS * qa * L.shape[0]
                    break
            prev = q
        else:
            raise ConvergenceError(
                f"multi-point expectation did not converge: relative difference "
                f"{diff / max(abs(q), 1e-300):.2e} between {_NESTED_LADDER[-2]} and "
                f"{_NESTED_LADDER[-1]} nodes per panel (rtol {rtol:g})")
    return value, error


#: tensor Gauss–Hermite orders per dimension (smooth integrands, full rank), by dimension
_GH_LADDER = {3: (12, 16, 24, 32, 48, 64), 4: (12, 16, 24, 32, 40)}
#: the tensor rule only for variances up to this (std 3: wider Gaussians make a smooth
#: activation look kinked at the node spacing, see quadrature._GH_MAX_STD)
_GH_MAX_VAR = 9.0


def _tensor_gh(gis: list, Ks: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss–Hermite after a Cholesky factor for smooth integrands (no breakpoints, no
    exponential growth, not steep): orders climb until two successive ones agree to rtol;
    error = their difference + 8 ulps of ∫|integrand|. Entries not converged come back NaN
    (the caller sends them to the nested rule)."""
    B, k, _ = Ks.shape
    fns = [g.numpy for g in gis]
    value = np.full(B, np.nan)
    error = np.full(B, np.nan)
    for b in range(B):
        perm, L = _cholesky_order(Ks[b])
        prev = None
        for n in _GH_LADDER[k]:
            U, w = _outer_nodes(n, k)
            Z = U @ L.T
            with np.errstate(all="ignore"):
                G = np.ones(w.size)
                for j, i in enumerate(perm):
                    G *= fns[i](Z[:, j])
            q, qa = float(G @ w), float(np.abs(G) @ w)
            if not np.isfinite(q):
                break
            if prev is not None and abs(q - prev) <= max(rtol * abs(q), 1e-14 * qa):
                value[b], error[b] = q, abs(q - prev) + 8 * k * _EPS * qa
                break
            prev = q
    return value, error


def _check_square(K, what: str) -> np.ndarray:
    Karr = _check_kernels(K)
    if Karr.ndim != 2:
        raise InvalidVarianceError(f"{what} takes one m×m kernel, got shape {Karr.shape}")
    if Karr.shape[0] > MAX_INPUTS:
        raise InvalidVarianceError(f"{what} takes at most {MAX_INPUTS} inputs, got "
                                   f"{Karr.shape[0]}")
    return Karr


def two_point(activation, K, *, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(z_a) φ(z_b)] over m inputs, z ~ N(0, K): (value, error), each of shape (m, m).

    The diagonal is ``expect(act, "phi2", K_aa)``, the entries a < b ``expect2(act, "phi",
    "phi", K_aa, K_ab, K_bb)`` (one vectorized call each), mirrored.

    Examples
    --------
    >>> import numpy as np
    >>> v, e = two_point("relu", [[2.0, 0.0], [0.0, 2.0]])
    >>> bool(np.isclose(v[0, 0], 1.0) and np.isclose(v[0, 1], 1 / np.pi))
    True
    """
    _check_rtol(rtol)
    act = Activation.get(activation)
    Karr = _check_square(K, "two_point")
    m = Karr.shape[0]
    val = np.empty((m, m))
    err = np.empty((m, m))
    for i in range(m):      # scalar calls: bit for bit the single-input numbers
        d = expect(act, "phi2", float(Karr[i, i]), rtol=rtol)
        val[i, i], err[i, i] = d.value, d.error
    a, b = np.triu_indices(m, 1)
    if a.size:
        r = expect2(act, "phi", "phi", Karr[a, a], Karr[a, b], Karr[b, b], rtol=rtol)
        val[a, b] = val[b, a] = r.value
        err[a, b] = err[b, a] = r.error
    return val, err


def four_point(activation, K, *, rtol: float = 1e-10, batch_single: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(z_a) φ(z_b) φ(z_c) φ(z_d)] over m inputs, z ~ N(0, K): (value, error) of shape
    (m, m, m, m), fully symmetric.

    ``batch_single=True`` computes the m single-input entries {a,a,a,a} in one vectorized
    ``expect(phi4)`` call instead of m scalar ones (faster where ⟨φ⁴⟩ is a quadrature: erf,
    tanh; equal to the scalar calls within their errors, but not bit for bit).

    Each index multiset is computed once, by its pattern of coinciding indices, one vectorized
    call per pattern: {a,a,a,a} ``expect(phi4)``; {a,a,b,b} ``expect2(phi2, phi2)``;
    {a,a,a,b} ``expect2(φ³, phi)``; {a,a,b,c} ``expect_product(phi2, phi, phi)``; {a,b,c,d}
    ``expect_product(phi, phi, phi, phi)`` (which merges inputs whose kernel rows coincide).
    For a positively homogeneous φ and for c·erf(a x) all but {a,a,a,a} (and collinear pairs)
    go by conditioning on a pair with the radial integral in closed form (the angular route,
    module docstring; one batch for the φ²φφ entries, one for the φφφφ ones), the entries that
    do not converge there by the 2-D polar rule, then by the routes above.

    Examples
    --------
    >>> import numpy as np
    >>> T, E = four_point("x", np.eye(2))      # Wick: E[z⁴] = 3, E[z_1² z_2²] = 1
    >>> [round(float(T[i]), 12) for i in [(0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1), (0, 0, 0, 1)]]
    [3.0, 1.0, 1.0, 0.0]
    >>> bool(abs(T[0, 0, 1, 1] - 1.0) <= E[0, 0, 1, 1])
    True
    """
    _check_rtol(rtol)
    act = Activation.get(activation)
    Karr = _check_square(K, "four_point")
    return _four_point(act, Karr, rtol, conditioned=True, batch_single=bool(batch_single))


@functools.lru_cache(maxsize=64)
def _multisets(m: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted index multisets a <= b <= c <= d of m inputs (C(m + 3, 4), 4) and their
    pattern code (4·[a=b] + 2·[b=c] + [c=d]: 7 aaaa; 6 (a=b=c<d) and 3 (a<b=c=d) three + one;
    5 aabb; 4, 2, 1 one pair; 0 distinct), read-only."""
    combos = np.array(list(itertools.combinations_with_replacement(range(m), 4)))
    a, b, c, d = combos.T
    code = np.stack([a == b, b == c, c == d], axis=1) @ np.array([4, 2, 1])
    combos.flags.writeable = False
    code.flags.writeable = False
    return combos, code


def _four_point(act: Activation, Karr: np.ndarray, rtol: float, conditioned: bool,
                batch_single: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`four_point` on a checked kernel; ``conditioned=False`` skips the conditioned
    route of positively homogeneous φ (the general routes only: the benchmark's and the
    tests' reference)."""
    m = Karr.shape[0]
    combos, code = _multisets(m)
    a, b, c, d = combos.T
    vals = np.empty(len(combos))
    errs = np.empty(len(combos))
    # one input: one scalar expect call each, so that the numbers are bit for bit those of the
    # single-input theory (a vectorized call can differ in the last bit), unless batch_single
    single = np.flatnonzero(code == 7)
    if batch_single:
        r = expect(act, "phi4", Karr[a[single], a[single]], rtol=rtol)
        vals[single], errs[single] = r.value, r.error
    else:
        for i in single:
            r = expect(act, "phi4", float(Karr[a[i], a[i]]), rtol=rtol)
            vals[i], errs[i] = r.value, r.error
    fam = _family(act) if conditioned else None
    # the closed-form conditioned routes, one batch for the φ²φφ entries (patterns aaab, aabb,
    # aabc: the kernel of (p, p, q, r) as a 3×3 kernel with p first) and one for the φφφφ
    # entries; cv, ce stay NaN where they are not taken or do not converge
    cv = np.full(len(combos), np.nan)
    ce = np.full(len(combos), np.nan)
    three = (code == 6) | (code == 3)
    p3 = np.where(code == 6, a, d)                 # aaab / abbb: the tripled index, the other
    q3 = np.where(code == 6, d, a)
    pair = np.where(code == 4, a, np.where(code == 2, b, c))      # aabc, abbc, abcc
    o1 = np.where(code == 4, c, a)
    o2 = np.where(code == 1, b, d)
    # rows of the 3×3 kernel (squared input first) of every φ²φφ entry
    tri = np.select([three[:, None], (code == 5)[:, None]],
                    [np.stack([p3, p3, q3], 1), np.stack([a, c, c], 1)],
                    np.stack([pair, o1, o2], 1))
    if fam is not None:
        # collinear pairs of aaab / aabb stay with expect2 (exactly the one-input numbers for
        # coinciding inputs)
        pp_, qq_ = np.where(three, p3, a), np.where(three, q3, c)
        kpq = Karr[pp_, qq_]
        noncol = kpq * kpq < Karr[pp_, pp_] * Karr[qq_, qq_] * (1 - _COLLINEAR)
        sel3 = np.flatnonzero(((three | (code == 5)) & noncol) | (code == 4) | (code == 2)
                              | (code == 1))
        if sel3.size:
            t = tri[sel3]
            with np.errstate(all="ignore"):
                cv[sel3], ce[sel3] = _cond3(fam, Karr[t[:, :, None], t[:, None, :]], rtol)
        sel4 = np.flatnonzero(code == 0)
        if sel4.size:
            idx = combos[sel4]
            with np.errstate(all="ignore"):
                cv[sel4], ce[sel4] = _cond4(fam, Karr[idx[:, :, None], idx[:, None, :]], rtol)
    got = np.isfinite(cv) & np.isfinite(ce) & (code != 7)
    vals[got], errs[got] = cv[got], ce[got]
    for sel, thr in ((three & ~got, True), ((code == 5) & ~got, False)):
        if sel.any():
            pm, qm = (p3[sel], q3[sel]) if thr else (a[sel], c[sel])
            f = act.expr ** 3 if thr else "phi2"
            g = "phi" if thr else "phi2"
            r = expect2(act, f, g, Karr[pm, pm], Karr[pm, qm], Karr[qm, qm], rtol=rtol)
            vals[sel], errs[sel] = r.value, r.error
    for sel, fns in ((((code == 4) | (code == 2) | (code == 1)) & ~got, ["phi2", "phi", "phi"]),
                     ((code == 0) & ~got, ["phi"] * 4)):
        if sel.any():
            idx = tri[sel] if len(fns) == 3 else combos[sel]
            r = expect_product(act, fns, Karr[idx[:, :, None], idx[:, None, :]], rtol=rtol)
            vals[sel], errs[sel] = r.value, r.error
    # every ordered (a, b, c, d) reads its sorted multiset
    key_of = np.full(m ** 4, -1)
    key_of[((a * m + b) * m + c) * m + d] = np.arange(len(combos))
    full = np.sort(np.indices((m,) * 4).reshape(4, -1).T, axis=1)
    pos = key_of[((full[:, 0] * m + full[:, 1]) * m + full[:, 2]) * m + full[:, 3]]
    return vals[pos].reshape((m,) * 4), errs[pos].reshape((m,) * 4)


# ---------------------------------------------------------------- conditioned closed-form route
#: (angle, radius) Gauss–Legendre orders per panel of the conditioned route
_COND_LADDER = ((8, 8), (12, 12), (16, 16), (24, 20), (32, 24), (48, 32), (64, 48))
#: radial panel edges of the conditioned route (u-space radius); the window ends at _COND_R
_COND_R = 9.5
_COND_RADII = np.array([0.0, 1.5, 3.0, 4.5, 6.5, _COND_R])
#: 1-D panel edges (standard-normal units) of the three-point conditioned route
_COND_GRID = np.array([0.0, 1.0, 2.5, 4.5, 6.5, _COND_R])
#: conditioning pairs with 1 - ρ² below this are not used
_COND_MIN_SIN2 = 1e-10
#: quadrature points per vectorized block
_COND_CHUNK = 400_000


def _tail_bound(R: float, p: int) -> float:
    """∫_R^∞ r^p e^{-r²/2} dr bounded by R^{p-1} e^{-R²/2} (1 + (p-1)/R² + ...) (p odd <= 7)."""
    # exact for odd p: r^p e^{-r²/2} integrates to e^{-R²/2} Σ_j (p-1)!!/(p-1-2j)!! R^{p-1-2j}
    tot, term, q = 0.0, 1.0, p - 1
    while q >= 0:
        tot += term * R ** q
        term *= q
        q -= 2
    return tot * np.exp(-0.5 * R * R)


def _homogeneous_phi(ap: float, am: float, x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, ap * x, am * x)


@dataclass(frozen=True)
class _Family:
    """What the conditioned route needs of φ: φ itself, G(μ₁, μ₂, s₁, s₂, r) =
    E[φ(μ₁ + s₁U) φ(μ₂ + s₂V)] in closed form, on which side φ vanishes, and bounds of the
    Gaussian mass the window r <= _COND_R drops (four-point: per 4×4 kernel, in u-space;
    three-point: per 3×3 kernel)."""

    phi: Callable[[np.ndarray], np.ndarray]
    G: Callable[..., np.ndarray]
    zero_neg: bool
    zero_pos: bool
    tail4: Callable[[np.ndarray], np.ndarray]
    tail3: Callable[[np.ndarray], np.ndarray]
    #: a bound of |G| (μ₁, μ₂, s₁, s₂): the scale of G's rounding error (its closed form
    #: cancels terms of that size), where the route's rounding floor is measured
    Gbound: Callable[..., np.ndarray]
    #: the radial integral ∫₀^∞ r e^{-r²/2} φ(r A)φ(r B)/(φ(A)φ(B)) G(r p_c, r p_d, s_c, s_d, r)
    #: dr in closed form (p_c, p_d, s_c, s_d, r) -> (value, bound of its terms), or None: the
    #: angular route (:func:`_angular`) instead of the 2-D polar rule
    radial: Callable | None = None
    #: (c, a) for φ = c·erf(a x): the sign route (:func:`_sign_cond`) first, or None
    sign: tuple | None = None
    #: ∫₀^∞ r⁴ e^{-r²/2} E[φ(r p_c + s_c ξ)] dr in closed form (p_c, s_c) -> (value, bound), or
    #: None: the angular route of φ_a² φ_b φ_c (:func:`_three_angular`)
    radial1: Callable | None = None
    #: (a₊, a₋) of a positively homogeneous φ: φ_a² φ_b φ_c in closed form first
    #: (:func:`~critheory.expectations.truncated_normal.homogeneous_moment4`), or None
    slopes: tuple | None = None


def _homogeneous_family(ap: float, am: float) -> _Family:
    from critheory.expectations.truncated_normal import (pair_moment, radial_mean_phi,
                                                         radial_pair_moment)

    a4 = max(abs(ap), abs(am)) ** 4

    def tail4(P):
        # |φ_a φ_b| |G| <= a⁴ √(K_aa K_bb) r² √(K_cc K_dd) (r + 1)²: at most
        # ∫_R^∞ r³ (r + 1)² e^{-r²/2} dr (the angle's 2π cancels the density's)
        return (a4 * np.sqrt(np.prod(np.diagonal(P, axis1=1, axis2=2), axis=1))
                * ((_COND_R + 1) / _COND_R) ** 2 * _tail_bound(_COND_R, 5))

    def tail3(K):
        var = np.diagonal(K, axis1=1, axis2=2)
        return (2 * a4 * K[:, 0, 0] * np.sqrt(var[:, 1] * var[:, 2]) * _tail_bound(_COND_R, 5)
                / np.sqrt(2 * np.pi))

    a2 = max(abs(ap), abs(am)) ** 2
    return _Family(lambda x: _homogeneous_phi(ap, am, x),
                   lambda m1, m2, s1, s2, r: pair_moment(ap, am, m1, m2, s1, s2, r),
                   am == 0.0, ap == 0.0, tail4, tail3,
                   lambda m1, m2, s1, s2: a2 * (np.abs(m1) + s1) * (np.abs(m2) + s2),
                   lambda pc, pd, s1, s2, r: radial_pair_moment(ap, am, pc, pd, s1, s2, r),
                   radial1=lambda pc, sc: radial_mean_phi(ap, am, pc, sc), slopes=(ap, am))


def _erf_family(c: float, a: float) -> _Family:
    from scipy.special import erf

    from critheory.expectations.truncated_normal import erf_pair_moment

    c4 = c ** 4
    return _Family(lambda x: c * erf(a * x),
                   lambda m1, m2, s1, s2, r: erf_pair_moment(c, a, m1, m2, s1, s2, r),
                   False, False,
                   lambda P: np.full(P.shape[0], c4 * np.exp(-0.5 * _COND_R ** 2)),
                   lambda K: np.full(K.shape[0], c4 * 2 * _ndtr(-_COND_R)),
                   lambda m1, m2, s1, s2: np.full(np.broadcast(m1, m2).shape, c * c),
                   sign=(c, a))


def has_conditioned_route(activation) -> bool:
    """Whether :func:`four_point` takes the conditioned closed-form route for this activation
    (positively homogeneous φ or c·erf(a x): milliseconds per entry instead of the seconds of
    the general four-dimensional quadrature).

    >>> has_conditioned_route("relu"), has_conditioned_route("tanh")
    (True, False)
    """
    return _family(Activation.get(activation)) is not None


def _family(act: Activation) -> _Family | None:
    """The conditioned route's description of φ: positively homogeneous (a₊, a₋) or c·erf(a x);
    None for other activations."""
    hs = act.homogeneous_slopes
    if hs is not None:
        return _homogeneous_family(*hs)
    from critheory.expectations.closed_forms import erf_params

    try:
        p = erf_params(act)
    except Exception:  # noqa: BLE001 - no sympy match: no closed form
        p = None
    return None if p is None else _erf_family(*p)


def _cond_geometry(Ks: np.ndarray):
    """For each 4×4 kernel the conditioning pair (a, b) and the other two (c, d), chosen to
    maximize min(s_c²/K_cc, s_d²/K_dd, 1 − r²) (the sharpest feature of G in the outer
    variables) among the pairs with 1 − ρ_ab² >= _COND_MIN_SIN2; returns order (T, 4) and
    a mask of the kernels where no pair qualifies (the six pairs at once; ties go to the
    first pair in the order of itertools.combinations)."""
    T = Ks.shape[0]
    a, b, c, d = _PAIR_ORDERS.T                                      # (6,) each
    Kaa, Kab, Kbb = Ks[:, a, a], Ks[:, a, b], Ks[:, b, b]            # (T, 6)
    Kcc, Kdd, Kcd = Ks[:, c, c], Ks[:, d, d], Ks[:, c, d]
    Kca, Kcb, Kda, Kdb = Ks[:, c, a], Ks[:, c, b], Ks[:, d, a], Ks[:, d, b]
    det = Kaa * Kbb - Kab * Kab
    sin2 = det / (Kaa * Kbb)
    with np.errstate(divide="ignore", invalid="ignore"):
        # S = K_rest − K_r,ab K_ab⁻¹ K_ab,r
        Scc = Kcc - (Kca * (Kbb * Kca - Kab * Kcb) + Kcb * (Kaa * Kcb - Kab * Kca)) / det
        Sdd = Kdd - (Kda * (Kbb * Kda - Kab * Kdb) + Kdb * (Kaa * Kdb - Kab * Kda)) / det
        Scd = Kcd - (Kca * (Kbb * Kda - Kab * Kdb) + Kcb * (Kaa * Kdb - Kab * Kda)) / det
        sc2 = np.maximum(Scc, 0.0) / Kcc
        sd2 = np.maximum(Sdd, 0.0) / Kdd
        r2 = Scd ** 2 / (np.maximum(Scc, 0) * np.maximum(Sdd, 0))
        score = np.minimum(np.minimum(sc2, sd2), np.nan_to_num(1.0 - r2, nan=0.0))
    score = np.where(sin2 >= _COND_MIN_SIN2, np.nan_to_num(score, nan=0.0), -np.inf)
    best = np.argmax(score, axis=1)
    order = _PAIR_ORDERS[best]
    return order, ~np.isfinite(score[np.arange(T), best])


#: the six (a, b, c, d) of a 4×4 kernel: conditioning pair first (itertools.combinations order)
_PAIR_ORDERS = np.array([(a, b) + tuple(i for i in range(4) if i not in (a, b))
                         for a, b in itertools.combinations(range(4), 2)])


def _four_conditioned(ap: float, am: float, Ks: np.ndarray, rtol: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(z_1)φ(z_2)φ(z_3)φ(z_4)], z ~ N(0, K), φ = a₊x⁺ − a₋(−x)⁺, for kernels Ks (T, 4, 4)
    by conditioning on a pair (see the module docstring). Entries it cannot do or that do not
    converge come back NaN."""
    return _four_cond(_homogeneous_family(ap, am), Ks, rtol)


def _three_conditioned(ap: float, am: float, Ks: np.ndarray, rtol: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(z_1)² φ(z_2) φ(z_3)], z ~ N(0, K), φ = a₊x⁺ − a₋(−x)⁺, for kernels Ks (T, 3, 3), by
    conditioning on z_1 (see :func:`_three_cond`)."""
    return _cond3(_homogeneous_family(ap, am), Ks, rtol)



@dataclass(frozen=True)
class _Frame:
    """The conditioned route's geometry of kernels P (n, 4, 4) ordered (a, b, c, d):
    (z_a, z_b) = L u (L = [[L11, 0], [L21, L22]]), μ_c = g_c · u, μ_d = g_d · u (g: (n, 2, 2)),
    conditional spreads s (n, 2) (those below 1e-14 of the variance set to 0, their relative
    size in ``drop``; s_raw, rcd_raw without that), conditional correlation rcd (n,), and
    the normals (n, 5, 2) of the lines
    through the origin of u-space where the integrand is not analytic or bends most: z_a = 0,
    z_b = 0, μ_c = 0, μ_d = 0, μ_c/s_c = ±μ_d/s_d."""

    L11: np.ndarray
    L21: np.ndarray
    L22: np.ndarray
    g: np.ndarray
    s: np.ndarray
    rcd: np.ndarray
    drop: np.ndarray
    normals: np.ndarray
    #: s and rcd without the 2-D rule's dropping of tiny conditional variances
    s_raw: np.ndarray
    rcd_raw: np.ndarray


def _pair_frame(P: np.ndarray) -> _Frame:
    """:class:`_Frame` of kernels P (n, 4, 4) with 1 − ρ_ab² >= _COND_MIN_SIN2."""
    n = P.shape[0]
    L11 = np.sqrt(P[:, 0, 0])
    L21 = P[:, 1, 0] / L11
    L22 = np.sqrt(np.maximum(P[:, 1, 1] - L21 * L21, 0.0))
    # g_c = L⁻¹ K_ab,c (μ_c = g_c · u), s_c² = K_cc − |g_c|², Σ_cd = K_cd − g_c · g_d
    g = np.empty((n, 2, 2))                  # (tuple, c/d, u-component)
    for j in (2, 3):
        g0 = P[:, 0, j] / L11
        g[:, j - 2] = np.stack([g0, (P[:, 1, j] - L21 * g0) / L22], -1)
    s2 = np.array([P[:, 2, 2], P[:, 3, 3]]).T - np.sum(g * g, axis=2)
    var = np.array([P[:, 2, 2], P[:, 3, 3]]).T
    s2 = np.maximum(s2, 0.0)
    cov = P[:, 2, 3] - np.sum(g[:, 0] * g[:, 1], axis=1)
    s_raw = np.sqrt(s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_raw = np.where((s_raw[:, 0] > 0) & (s_raw[:, 1] > 0),
                         cov / (s_raw[:, 0] * s_raw[:, 1]), 0.0)
    r_raw = np.clip(r_raw, -1.0, 1.0)
    # conditional variances below 1e-14 of the variance are 0 for the 2-D rule (a kink of G):
    # that moves E by O(s/√var) relative (the covariance term r s_c s_d of G; the smoothing of
    # a kink only by O(s²/var))
    drop = np.sqrt(np.where(s2 <= 1e-14 * var, s2 / var, 0.0)).sum(axis=1)
    s2 = np.where(s2 <= 1e-14 * var, 0.0, s2)
    s = np.sqrt(s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rcd = np.where((s[:, 0] > 0) & (s[:, 1] > 0), cov / (s[:, 0] * s[:, 1]), 0.0)
    rcd = np.clip(rcd, -1.0, 1.0)
    # kink lines through the origin of u-space, by their normals: z_a = 0, z_b = 0, μ_c = 0,
    # μ_d = 0 (kinks of G where s = 0, its sharpest bends otherwise) and μ_c/s_c = ±μ_d/s_d
    # (where the kinks of φ(μ_c + ξ_c) and φ(μ_d + ξ_d) meet if |r| = 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ne = g[:, 0] / s[:, 0, None] - np.sign(rcd)[:, None] * g[:, 1] / s[:, 1, None]
    ne = np.where(((s[:, 0] > 0) & (s[:, 1] > 0) & (rcd != 0))[:, None], ne, 0.0)
    normals = np.stack([np.stack([L11, np.zeros(n)], -1), np.stack([L21, L22], -1),
                        g[:, 0], g[:, 1], ne], 1)                          # (n, 5, 2)
    return _Frame(L11, L21, L22, g, s, rcd, drop, normals, s_raw, r_raw)


def _ray_panels(normals: np.ndarray, widths: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Angle panels [θ0, θ1] (n, E) of [0, 2π] cut at the lines through the origin with the
    given normals (n, J, 2) (zero normals: no line; zero-width panels are left in). With
    ``widths`` (n, J): around each line whose width w (in angle) is below _GRADE_MAX, also
    cuts at ±w·4^j (j = 0.._GRADE_STEPS − 1, below _GRADE_MAX), graded towards the line."""
    n = normals.shape[0]
    phi0 = np.arctan2(normals[..., 1], normals[..., 0])
    live = np.hypot(normals[..., 0], normals[..., 1]) > 0
    rays = np.concatenate([phi0 + 0.5 * np.pi, phi0 - 0.5 * np.pi], 1)
    live2 = np.concatenate([live, live], 1)
    cols = [np.where(live2, rays % (2 * np.pi), 0.0)]
    if widths is not None:
        w2 = np.concatenate([widths, widths], 1)
        wmin = float(np.min(w2, initial=np.inf, where=live2 & (w2 > 0)))
        steps = 0 if not wmin < _GRADE_MAX else min(_GRADE_STEPS, 1 + int(np.ceil(
            np.log(_GRADE_MAX / wmin) / np.log(4.0))))
        off = w2[:, :, None] * 4.0 ** np.arange(steps)                # (n, 2J, steps)
        ok = (live2[:, :, None] & (off < _GRADE_MAX) & (off > 0)).reshape(n, -1)
        # only the (line, step) columns some kernel uses (the others are zero-width panels)
        use = np.flatnonzero(ok.any(axis=0))
        ok, off = ok[:, use], off.reshape(n, -1)[:, use]
        ray = np.repeat(rays, steps, axis=1)[:, use]
        for sgn in (1.0, -1.0):
            cols.append(np.where(ok, (ray + sgn * off) % (2 * np.pi), 0.0))
    edges = np.sort(np.concatenate(cols + [np.zeros((n, 1)), np.full((n, 1), 2 * np.pi)], 1), 1)
    return edges[:, :-1], edges[:, 1:]


#: angular route: Gauss–Legendre orders per angle panel
_ANG_LADDER = (8, 12, 16, 24, 32, 48, 64, 96)
#: angular route: panels graded towards a line whose feature width (angle) is below this
_GRADE_MAX = 0.5
_GRADE_STEPS = 27
#: angular route: conditional correlations with √(1 − r²) at most this go to the 2-D rule
_ANG_MIN_SIG = 1e-7
#: angular route: differences between successive orders before an entry is accepted (2: three
#: orders; with 1, G8 and G12 agreeing by chance passed errors 30× their estimate)
_ANG_MIN_DIFFS = 2
#: angular route: rounding allowance, in ulps of ∫|outer factor| × the bound of the radial terms
_ANG_ULPS = 64


def _angular(L: tuple, g: np.ndarray, s: np.ndarray, rcd: np.ndarray, normals: np.ndarray,
             widths: np.ndarray, elig: np.ndarray, outer: Callable, radial: Callable,
             zero_neg: bool, zero_pos: bool, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """∫₀^{2π} outer(A, B) R(θ) dθ/(2π): the conditioned route with its radial integral in
    closed form. Along the ray u = r(cos θ, sin θ) of the two conditioning variables,
    (z_a, z_b) = r (A, B) = r L (cos θ, sin θ) (L = (L11, L21, L22)) and the conditional means
    of the others are r p_j(θ), p_j = g_j · (cos θ, sin θ) (g: (n, J, 2), spreads s (n, J),
    correlation rcd (n,) when J = 2); ``radial([p_j], [s_j], rcd) -> (value, bound)`` is the
    radial integral (including the measure r e^{-r²/2}) and a bound of the terms it adds.
    Composite Gauss–Legendre in θ on panels cut at every line of ``normals`` (n, M, 2) and
    graded towards those of width ``widths`` (n, M) below _GRADE_MAX (μ_j = 0: s_j/|g_j| in
    angle; μ_c/s_c = ±μ_d/s_d: σ/|n|); orders _ANG_LADDER until the estimate (:func:`_tail`)
    is below rtol or 1e-14 of ∫|outer| bound; plus _ANG_ULPS ulps of that. Only entries
    ``elig``; NaN where the ladder is exhausted."""
    L11, L21, L22 = L
    n = L11.size
    value = np.full(n, np.nan)
    error = np.full(n, np.nan)
    if not elig.any():
        return value, error
    th0, th1 = _ray_panels(normals, np.where(np.isfinite(widths), widths, 0.0))
    pt, pp = np.nonzero((th1 > th0) & elig[:, None])
    p0, p1 = th0[pt, pp], th1[pt, pp]
    if zero_neg or zero_pos:
        # panels where outer(A, B) vanishes (φ = 0 on one side: no kink inside a panel)
        mid = 0.5 * (p0 + p1)
        c, sn = np.cos(mid), np.sin(mid)
        za = L11[pt] * c
        zb = L21[pt] * c + L22[pt] * sn
        keep = ((za > 0) & (zb > 0)) if zero_neg else ((za < 0) & (zb < 0))
        pt, p0, p1 = pt[keep], p0[keep], p1[keep]
    # entries where outer(A, B) vanishes on every panel: exactly 0
    none = elig & (np.bincount(pt, minlength=n) == 0)
    value[none], error[none] = 0.0, 0.0
    todo = np.flatnonzero(elig & ~none)
    prev = np.full(n, np.nan)
    last = np.full(n, np.nan)
    J = g.shape[1]
    # per entry, the rows (x, y) of z_a, z_b and the p_j as functions of (cos θ, sin θ)
    coef = np.concatenate([np.stack([np.stack([L11, np.zeros(n)], -1),
                                     np.stack([L21, L22], -1)], 1), g], 1)     # (n, 2 + J, 2)
    for nt in _ANG_LADDER:
        if not todo.size:
            break
        tq, tw = _leggauss(nt)
        live = np.zeros(n, dtype=bool)
        live[todo] = True
        sel = np.flatnonzero(live[pt])
        t = pt[sel]
        half = 0.5 * (p1[sel] - p0[sel])
        th = (0.5 * (p0[sel] + p1[sel]))[:, None] + half[:, None] * tq          # (b, nt)
        c, sn = np.cos(th), np.sin(th)
        # z_a/r, z_b/r and the conditional means' slopes p_j along every node's ray at once
        X = coef[t, :, 0, None] * c[:, None, :] + coef[t, :, 1, None] * sn[:, None, :]
        A, B = X[:, 0], X[:, 1]
        with np.errstate(all="ignore"):
            R, bound = radial([X[:, 2 + j] for j in range(J)], [s[t, j, None] for j in range(J)],
                              None if rcd is None else rcd[t, None])
            w = outer(A, B) * (half[:, None] * tw) / (2.0 * np.pi)
            q = np.bincount(t, weights=(w * R).sum(axis=1), minlength=n)
            qa = np.bincount(t, weights=np.abs(w * bound).sum(axis=1), minlength=n)
        qt, qat = q[todo], qa[todo]
        fin = np.isfinite(qt) & np.isfinite(qat)
        diff = np.abs(qt - prev[todo])
        est = _tails(diff, last[todo])
        # two differences at least (three orders): G8 and G12 can agree to 1e-12 while both
        # miss a feature by 1e-11 relative (deep kernels, tests/test_angular_route.py)
        ok = fin & np.isfinite(diff) & (np.isfinite(last[todo]) | (_ANG_MIN_DIFFS < 2)) \
            & (est <= np.maximum(rtol * np.abs(qt), 1e-14 * qat))
        done = todo[ok]
        value[done] = qt[ok]
        error[done] = est[ok] + _ANG_ULPS * _EPS * qat[ok]
        last[todo] = diff
        prev[todo] = qt
        todo = todo[~ok & fin]
    return value, error


def _angular4(fr: _Frame, outer: Callable, radial: Callable, zero_neg: bool, zero_pos: bool,
              rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_angular` for four-point kernels in their :class:`_Frame` (the conditional
    spreads as computed, 0 included; conditional correlations with σ = √(1 − r²) <=
    _ANG_MIN_SIG, where G bends on the scale σ, are left to the 2-D rule). ``radial(p_c, p_d,
    s_c, s_d, r)``; ``outer(A, B)``."""
    s, g, rcd = fr.s_raw, fr.g, fr.rcd_raw
    sig = np.sqrt(np.maximum((1.0 - rcd) * (1.0 + rcd), 0.0))
    elig = (s[:, 0] == 0) | (s[:, 1] == 0) | (sig > _ANG_MIN_SIG)
    with np.errstate(divide="ignore", invalid="ignore"):
        ng = np.linalg.norm(g, axis=2)                                   # (n, 2)
        wc = np.where(ng > 0, s / ng, np.inf)
        nn = np.linalg.norm(fr.normals[:, 4], axis=1)
        wn = np.where(nn > 0, sig / nn, np.inf)
    widths = np.column_stack([np.full((s.shape[0], 2), np.inf), wc, wn])
    return _angular((fr.L11, fr.L21, fr.L22), g, s, rcd, fr.normals, widths, elig, outer,
                    lambda p, ss, r: radial(p[0], p[1], ss[0], ss[1], r), zero_neg, zero_pos,
                    rtol)


def _four_cond(fam: _Family, Ks: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_four_conditioned` for the φ that ``fam`` describes."""
    T = Ks.shape[0]
    value = np.full(T, np.nan)
    error = np.full(T, np.nan)
    order, bad = _cond_geometry(Ks)
    P = np.take_along_axis(np.take_along_axis(Ks, order[:, :, None], 1), order[:, None, :], 2)
    P = P[~bad]
    ids = np.flatnonzero(~bad)
    if not ids.size:
        return value, error
    n = ids.size
    fr = _pair_frame(P)
    L11, L21, L22, g, s, rcd, drop = fr.L11, fr.L21, fr.L22, fr.g, fr.s, fr.rcd, fr.drop
    todo = np.arange(n)
    if fam.radial is not None:
        # the radial integral in closed form: a 1-D rule in the angle (_angular); the
        # degenerate entries (s = 0, |r| = 1) and those it does not converge on go on below
        phi = fam.phi
        v, e = _angular4(fr, lambda A, B: phi(A) * phi(B), fam.radial, fam.zero_neg,
                         fam.zero_pos, rtol)
        done = np.isfinite(v) & np.isfinite(e)
        value[ids[done]], error[ids[done]] = v[done], e[done]
        todo = np.flatnonzero(~done)
        if not todo.size:
            return value, error
    th0, th1 = _ray_panels(fr.normals)
    mid = 0.5 * (th0 + th1)
    za = L11[:, None] * np.cos(mid)
    zb = L21[:, None] * np.cos(mid) + L22[:, None] * np.sin(mid)
    act_p = th1 > th0
    if fam.zero_neg:
        act_p &= (za > 0) & (zb > 0)
    if fam.zero_pos:
        act_p &= (za < 0) & (zb < 0)
    pt, pp = np.nonzero(act_p)
    p0, p1 = th0[pt, pp], th1[pt, pp]
    trunc = fam.tail4(P)
    prev = np.full(n, np.nan)
    last = np.full(n, np.nan)
    for nt, nr in _COND_LADDER:
        tq, tw = np.polynomial.legendre.leggauss(nt)
        rq, rw = np.polynomial.legendre.leggauss(nr)
        rh = 0.5 * np.diff(_COND_RADII)
        rn = ((0.5 * (_COND_RADII[1:] + _COND_RADII[:-1]))[:, None] + rh[:, None] * rq).ravel()
        rwt = (rh[:, None] * rw).ravel() * rn * np.exp(-0.5 * rn * rn) / (2 * np.pi)
        sel = np.flatnonzero(np.isin(pt, todo))
        q = np.zeros(n)
        qa = np.zeros(n)
        per = max(1, _COND_CHUNK // (nt * rn.size))
        for i0 in range(0, sel.size, per):
            k = sel[i0:i0 + per]
            t = pt[k]
            half = 0.5 * (p1[k] - p0[k])
            th = (0.5 * (p0[k] + p1[k]))[:, None] + half[:, None] * tq          # (b, nt)
            wt = half[:, None] * tw
            c, sn = np.cos(th), np.sin(th)
            u1 = c[:, :, None] * rn                                            # (b, nt, nr)
            u2 = sn[:, :, None] * rn
            za = L11[t, None, None] * u1
            zb = L21[t, None, None] * u1 + L22[t, None, None] * u2
            mc = g[t, 0, 0, None, None] * u1 + g[t, 0, 1, None, None] * u2
            md = g[t, 1, 0, None, None] * u1 + g[t, 1, 1, None, None] * u2
            sc, sd = s[t, 0, None, None], s[t, 1, None, None]
            G = fam.G(mc, md, sc, sd, rcd[t, None, None])
            w = fam.phi(za) * fam.phi(zb) * wt[:, :, None] * rwt
            f = w * G
            q += np.bincount(t, weights=f.sum(axis=(1, 2)), minlength=n)
            qa += np.bincount(t, weights=np.abs(w * fam.Gbound(mc, md, sc, sd)).sum(axis=(1, 2)),
                              minlength=n)
        qt, qat = q[todo], qa[todo]
        if not np.all(np.isfinite(qt)):
            break
        diff = np.abs(qt - prev[todo])
        est = np.array([_tail(dd, None if not np.isfinite(ll) else ll)
                        for dd, ll in zip(diff, last[todo])])
        ok = np.isfinite(diff) & (est <= np.maximum(rtol * np.abs(qt), 1e-14 * qat))
        done = todo[ok]
        value[ids[done]] = qt[ok]
        error[ids[done]] = est[ok] + 32 * _EPS * qat[ok] + trunc[done] + drop[done] * qat[ok]
        last[todo] = diff
        prev[todo] = qt
        todo = todo[~ok]
        if not todo.size:
            break
    return value, error


def _three_cond(fam: _Family, Ks: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(z_1)² φ(z_2) φ(z_3)], z ~ N(0, K), for kernels Ks (T, 3, 3), by conditioning on z_1:
    one outer variable t = z_1/√K_11 (panels cut at 0, the only kink of every factor in t, and
    graded towards it by the conditional spreads), G_23 in closed form. NaN where it does not
    converge."""
    T = Ks.shape[0]
    value = np.full(T, np.nan)
    error = np.full(T, np.nan)
    sa = np.sqrt(Ks[:, 0, 0])
    g = Ks[:, 0, 1:] / sa[:, None]                                  # μ_j = g_j t
    var = np.diagonal(Ks, axis1=1, axis2=2)[:, 1:]
    s2 = np.maximum(var - g * g, 0.0)
    # O(s/√var) relative, as in _pair_frame
    drop = np.sqrt(np.where(s2 <= 1e-14 * var, s2 / var, 0.0)).sum(axis=1)
    s2 = np.where(s2 <= 1e-14 * var, 0.0, s2)
    s = np.sqrt(s2)
    cov = Ks[:, 1, 2] - g[:, 0] * g[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((s[:, 0] > 0) & (s[:, 1] > 0), cov / (s[:, 0] * s[:, 1]), 0.0)
        r = np.clip(r, -1.0, 1.0)
        # G bends on the scale s_j/|g_j| in t at t = 0 (and √(1 − r²) s/|g| where |r| → 1)
        w = np.min(np.where(np.abs(g) > 0, s / np.abs(g), np.inf), axis=1)
        w = np.minimum(w, np.where(np.abs(g).min(axis=1) > 0,
                                   np.sqrt(1 - r * r) * w, np.inf))
    grades = np.where(np.isfinite(w) & (w < 1.0) & (w > 0), w, 1.0)[:, None] \
        * 4.0 ** np.arange(-1, 5)
    pos = np.sort(np.concatenate([np.broadcast_to(_COND_GRID, (T, _COND_GRID.size)),
                                  np.minimum(grades, _COND_GRID[1])], 1), 1)
    sides = [1.0] if fam.zero_neg else [-1.0] if fam.zero_pos else [1.0, -1.0]
    trunc = fam.tail3(Ks)
    prev = last = None
    todo = np.arange(T)
    for nn in (8, 12, 16, 24, 32, 48, 64):
        tq, tw = np.polynomial.legendre.leggauss(nn)
        E = pos[todo]
        half = 0.5 * np.diff(E, axis=1)
        tn = (0.5 * (E[:, 1:] + E[:, :-1]))[:, :, None] + half[:, :, None] * tq
        wts = half[:, :, None] * tw * np.exp(-0.5 * tn * tn) / np.sqrt(2 * np.pi)
        q = np.zeros(todo.size)
        qa = np.zeros(todo.size)
        for sd in sides:
            x = sd * tn
            i = todo[:, None, None]
            m1, m2 = g[i, 0] * x, g[i, 1] * x
            G = fam.G(m1, m2, s[i, 0], s[i, 1], r[i])
            w = fam.phi(sa[i] * x) ** 2 * wts
            q += (w * G).sum(axis=(1, 2))
            qa += np.abs(w * fam.Gbound(m1, m2, s[i, 0], s[i, 1])).sum(axis=(1, 2))
        if not np.all(np.isfinite(q)):
            break
        if prev is not None:
            diff = np.abs(q - prev)
            est = np.array([_tail(dd, None if last is None else ll)
                            for dd, ll in zip(diff, last if last is not None else diff)])
            ok = est <= np.maximum(rtol * np.abs(q), 1e-14 * qa)
            done = todo[ok]
            value[done] = q[ok]
            error[done] = est[ok] + 32 * _EPS * qa[ok] + trunc[done] + drop[done] * qa[ok]
            todo, q, diff = todo[~ok], q[~ok], diff[~ok]
            last = diff
            if not todo.size:
                break
        prev = q
    return value, error


def _sign_radial(pc, pd, s1, s2, r):
    from critheory.expectations.truncated_normal import radial_sign_moment

    # 4F₁ <= 4, 2S₁ <= 2 each: the terms are bounded by 9
    return radial_sign_moment(pc, pd, s1, s2, r), 9.0


def _sign_cond(c: float, a: float, Ks: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """E[Π_i c·erf(a z_i)], z ~ N(0, K), for 4×4 kernels Ks (T, 4, 4) (repeated inputs
    allowed: φ_a² φ_b φ_c is the kernel of (a, a, b, c)) by erf's sign representation
    ``erf(a z) = E_g[sgn(√2 a z − g)]``, g ~ N(0, 1) independent per factor: the expectation is
    ``c⁴ E[Π sgn(w_i)]``, w ~ N(0, I + 2a²K), positive definite whatever K is. Conditioning on
    the pair (w_a, w_b) (:func:`_cond_geometry`), the other two signs have the closed-form mean
    4Φ₂(h, k; ρ) − 2Φ(h) − 2Φ(k) + 1 (h, k linear in the radius, conditional spreads >= 1),
    whose radial integral is a closed form (:func:`~critheory.expectations.truncated_normal.radial_sign_moment`):
    a 1-D angular rule (:func:`_angular`) cut where sgn(w_a) sgn(w_b) jumps. NaN where it does
    not converge."""
    M = 2.0 * a * a * Ks + np.eye(4)
    T = Ks.shape[0]
    value = np.full(T, np.nan)
    error = np.full(T, np.nan)
    order, bad = _cond_geometry(M)
    ids = np.flatnonzero(~bad)
    if not ids.size:
        return value, error
    P = np.take_along_axis(np.take_along_axis(M, order[:, :, None], 1), order[:, None, :], 2)
    v, e = _angular4(_pair_frame(P[ids]), lambda A, B: np.sign(A) * np.sign(B), _sign_radial,
                     False, False, rtol)
    c4 = c ** 4
    value[ids], error[ids] = c4 * v, c4 * e
    return value, error


def _cond4(fam: _Family, Ks: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """E[φ_1 φ_2 φ_3 φ_4] by the closed-form routes: the sign route for c·erf(a x), then
    :func:`_four_cond` for what is left (NaN where neither converges). A positively
    homogeneous φ = δx⁺ + a₋x with both parts (leaky ReLU, |x|) goes as δ⁴ × ReLU's entry (the
    angle rule on ReLU's half of the panels) plus the terms with a linear factor in closed
    form (:func:`~critheory.expectations.truncated_normal.linear_part_moment4`)."""
    if fam.slopes is not None and fam.slopes[1] != 0.0 and fam.slopes[0] != fam.slopes[1]:
        from critheory.expectations.truncated_normal import linear_part_moment4

        ap, am = fam.slopes
        vl, el = linear_part_moment4(ap, am, Ks)
        vr, er = _four_cond(_homogeneous_family(1.0, 0.0), Ks, rtol)
        dl4 = (ap - am) ** 4
        v, e = dl4 * vr + vl, dl4 * er + el
        miss = ~(np.isfinite(v) & np.isfinite(e))
        if miss.any():
            v[miss], e[miss] = _four_cond(fam, Ks[miss], rtol)
        return v, e
    if fam.sign is None:
        return _four_cond(fam, Ks, rtol)
    v, e = _sign_cond(*fam.sign, Ks, rtol)
    miss = ~(np.isfinite(v) & np.isfinite(e))
    if miss.any():
        v[miss], e[miss] = _four_cond(fam, Ks[miss], rtol)
    return v, e


def _cond3(fam: _Family, K3: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """E[φ_1² φ_2 φ_3] by the closed-form routes: the sign route on the kernel of (1, 1, 2, 3)
    for c·erf(a x); for positively homogeneous φ the orthant closed form, then
    :func:`_three_angular`; then :func:`_three_cond` (NaN where none converges)."""
    if fam.slopes is not None:
        # the orthant closed form where its rounding allowance meets rtol (or 1e-14 of the
        # entry's scale); pairs with correlations near ±1 go on to the angular route
        from critheory.expectations.truncated_normal import homogeneous_moment4

        ap, am = fam.slopes
        v, e = homogeneous_moment4(ap, am, K3)
        d = np.diagonal(K3, axis1=1, axis2=2)
        floor = 1e-14 * max(abs(ap), abs(am)) ** 4 * d[:, 0] * np.sqrt(d[:, 1] * d[:, 2])
        ok = np.isfinite(v) & np.isfinite(e) & (e <= np.maximum(rtol * np.abs(v), floor))
        if not ok.all():
            miss = np.flatnonzero(~ok)
            v[miss], e[miss] = _cond3(dataclasses.replace(fam, slopes=None), K3[miss], rtol)
        return v, e
    if fam.sign is not None:
        i4 = np.array([0, 0, 1, 2])
        v, e = _sign_cond(*fam.sign, K3[:, i4[:, None], i4[None, :]], rtol)
    elif fam.radial1 is not None:
        v, e = _three_angular(fam, K3, rtol)
    else:
        return _three_cond(fam, K3, rtol)
    miss = ~(np.isfinite(v) & np.isfinite(e))
    if miss.any():
        v[miss], e[miss] = _three_cond(fam, K3[miss], rtol)
    return v, e


def _three_angular(fam: _Family, K3: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """E[φ(z_1)² φ(z_2) φ(z_3)], z ~ N(0, K), K3 (T, 3, 3), φ positively homogeneous:
    conditioning on the pair (z_1, z_j) (j = 2 or 3, the one leaving the other input the larger
    relative conditional variance), E[φ(z_c) | z_1, z_j] = mean_phi(μ_c, s_c) with μ_c linear
    along each ray, so the radial integral is a closed form (``fam.radial1``; s_c = 0 included,
    its kink a cut) and one angle remains (:func:`_angular`, outer factor φ(A)² φ(B)). NaN
    where no pair has 1 − ρ² >= _COND_MIN_SIN2 or the ladder is exhausted."""
    T = K3.shape[0]
    d = np.diagonal(K3, axis1=1, axis2=2)
    best = np.full(T, -np.inf)
    order = np.tile(np.array([0, 1, 2]), (T, 1))
    for j, c in ((1, 2), (2, 1)):
        det = d[:, 0] * d[:, j] - K3[:, 0, j] ** 2
        sin2 = det / (d[:, 0] * d[:, j])
        with np.errstate(divide="ignore", invalid="ignore"):
            sc2 = (d[:, c] - (d[:, j] * K3[:, 0, c] ** 2 - 2 * K3[:, 0, j] * K3[:, 0, c]
                              * K3[:, j, c] + d[:, 0] * K3[:, j, c] ** 2) / det) / d[:, c]
        score = np.where(sin2 >= _COND_MIN_SIN2, np.nan_to_num(sc2, nan=0.0), -np.inf)
        better = score > best
        best = np.where(better, score, best)
        order[better] = (0, j, c)
    elig = np.isfinite(best)
    P = np.take_along_axis(np.take_along_axis(K3, order[:, :, None], 1), order[:, None, :], 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        L11 = np.sqrt(P[:, 0, 0])
        L21 = P[:, 1, 0] / L11
        L22 = np.sqrt(np.maximum(P[:, 1, 1] - L21 * L21, 0.0))
        g0 = P[:, 0, 2] / L11
        g = np.stack([g0, (P[:, 1, 2] - L21 * g0) / L22], -1)[:, None, :]      # (T, 1, 2)
        s = np.sqrt(np.maximum(P[:, 2, 2] - np.sum(g[:, 0] ** 2, axis=1), 0.0))[:, None]
        ng = np.linalg.norm(g[:, 0], axis=1)
        wc = np.where(ng > 0, s[:, 0] / ng, np.inf)
    elig &= np.all(np.isfinite(g[:, 0]), axis=1)
    normals = np.stack([np.stack([L11, np.zeros(T)], -1), np.stack([L21, L22], -1), g[:, 0]], 1)
    normals = np.where(elig[:, None, None], normals, 0.0)
    widths = np.column_stack([np.full((T, 2), np.inf), wc])
    phi, radial1 = fam.phi, fam.radial1
    return _angular((L11, L21, L22), np.where(elig[:, None, None], g, 0.0), s, None, normals,
                    widths, elig, lambda A, B: phi(A) ** 2 * phi(B),
                    lambda p, ss, r: radial1(p[0], ss[0]), fam.zero_neg, fam.zero_pos, rtol)
