"""Critical lines, critical points and universality classes.

The critical set of an architecture is ``χ_J(K*) = 1`` at a fixed point ``K*`` [DHG §2]. Each
single-dense network parametrizes it explicitly (``LayerMaps.critical_curve``; for the MLP
``σ_w² = 1/E_{K*}[φ'²]``, ``σ_b² = K* - σ_w² E_{K*}[φ²]``), so the critical line at given bias
variances is found by a scan of the parameter for crossings ``σ_b²(t) = σ_b²`` (every branch)
and a vectorized bracket refinement to 1e-15 relative in ``t``. Critical points additionally
have ``χ_∥(K*) = 1`` [PDLT §5.2].

Universality classes of the MLP [PDLT §5.3]:

* ``scale-invariant``: ``φ = a_+ z (z >= 0), a_- z (z < 0)``; χ's independent of K.
* ``K*=0``: ``φ(0) = 0``, ``σ_1 = φ'(0) ≠ 0`` and ``a_1 = σ_3/σ_1 + (3/4)(σ_2/σ_1)² < 0``: critical
  point ``(1/σ_1², 0)``; ``K^l ≈ 1/((-a_1) l)``; ``J^{l0,l} ∝ l^{-p_⊥}``, ``p_⊥ = b_1/a_1``,
  ``b_1 = σ_3/σ_1 + (σ_2/σ_1)²`` [PDLT eqs. (5.88)–(5.93)].
* ``half-stable``: a critical point at ``K* > 0`` (a tangent fixed point, χ_∥ = 1), e.g. GELU,
  SWISH; ``K^l - K* ≈ -2/(χ_∥' l)`` from the attracting side and
  ``J ∝ l^{-p}``, ``p = 2 χ_⊥'(K*)/χ_∥'(K*)`` (derived: expand both maps to first order in
  ``K - K*``; for the K*=0 class this reduces to ``b_1/a_1``).
* ``none``: no critical point (sigmoid, softplus, ...).

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.criticality import critical_points
>>> [(round(p.weight_var, 8), round(p.bias_var, 8)) for p in critical_points(architecture("mlp", "gelu"))]
[(1.98305826, 0.17292239)]
"""
from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass, field

import numpy as np

from critheory.activation._lazy import LazyModule
from critheory.common.jsonable import finite_or_none
from critheory.errors import InvalidArgumentError
from critheory.theory.meanfield.maps import LayerMaps, check_arch
from critheory.theory.meanfield.taylor import (ExactRational, a1_b1, a1_sign, as_sympy,
                                               exact_ratio, exact_text, kernel_dependent,
                                               kinked_second, zero_endpoint)
from critheory.theory.roots import refine_brackets
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["LinePoint", "CriticalPoint", "CriticalPointKind", "Universality", "UniversalityKind",
           "Side", "critical_line", "critical_points", "universality", "ResolutionWarning"]

# sympy on first use: the exact exponents of a universality class need it, a critical line not
sp = LazyModule("sympy")

_TGRID = np.logspace(-6, 6, 241)      # critical-point search
#: Most bias variances of one critical_line call (the scan holds ~200 floats per value).
MAX_LINE_POINTS = limits.MAX_LINE_POINTS
# critical-line scan (6 points per decade below 1e-2, 20 above), extended upward on demand
_LINE_GRID = np.concatenate([np.logspace(-6, -2, 25), np.logspace(-2, 2, 81)[1:]])


@dataclass(frozen=True)
class LinePoint:
    """One point of the critical line: (σ_b², σ_w²) with its fixed point and χ_∥.

    ``fixed_point`` is None where no fixed point exists (e.g. ReLU with σ_b² > 0: χ_J = 1 at
    every depth while K grows linearly); ``weight_var`` is None where every σ_w² is critical;
    ``chi_parallel`` is None where it cannot be computed (absent numbers are None, never NaN).

    Examples
    --------
    >>> import critheory as ct
    >>> p = ct.critical_line(ct.architecture("mlp", "tanh"), [0.1])[0]
    >>> isinstance(p, ct.LinePoint), p.bias_var
    (True, 0.1)
    """

    __repr__ = short_repr

    bias_var: float
    weight_var: float | None
    fixed_point: float | None
    chi_parallel: float | None
    branch: int = 0
    note: str = ""

    def __post_init__(self):
        for name in ("weight_var", "fixed_point", "chi_parallel"):
            v = getattr(self, name)
            if v is not None and v != v:       # NaN: absent
                object.__setattr__(self, name, None)

    def to_dict(self) -> dict:
        return {"bias_var": self.bias_var, "weight_var": finite_or_none(self.weight_var),
                "fixed_point": finite_or_none(self.fixed_point),
                "chi_parallel": finite_or_none(self.chi_parallel),
                "branch": self.branch, "note": self.note}


class CriticalPointKind(enum.Enum):
    """What kind of critical point; the value is its display text (the JSON ``kind``)."""

    #: the K* = 0 end of the critical line (φ(0) = 0, φ'(0) ≠ 0), attracting every input
    ZERO = "K*=0"
    #: a tangent fixed point at K* > 0 (χ_∥ = 1), attracting from one side only
    HALF_STABLE = "half-stable"
    #: a scale-invariant activation at its critical weight variance: every K is a fixed point
    MARGINAL = "scale-invariant (every K is a fixed point)"


@dataclass(frozen=True)
class CriticalPoint:
    """A critical point: χ_J(K*) = χ_∥(K*) = 1 (``fixed_point`` None where every K is fixed).

    Examples
    --------
    >>> import critheory as ct
    >>> p = ct.critical_points(ct.architecture("mlp", "tanh"))[0]
    >>> isinstance(p, ct.CriticalPoint), p.weight_var, p.bias_var
    (True, 1.0, 0.0)
    """

    __repr__ = short_repr

    weight_var: float
    bias_var: float
    fixed_point: float | None
    kind: CriticalPointKind

    @property
    def half_stable(self) -> bool:
        """True for a tangent fixed point at K* > 0 (attracting from one side only)."""
        return self.kind is CriticalPointKind.HALF_STABLE

    def to_dict(self) -> dict:
        return {"weight_var": finite_or_none(self.weight_var),
                "bias_var": finite_or_none(self.bias_var),
                "fixed_point": finite_or_none(self.fixed_point), "kind": self.kind.value}


def _scan(arch: LayerMaps, tgrid: np.ndarray):
    # with the noise level of σ_b²(t): relative where the gap K*·χ − K was followed through the
    # blocks (see critical_curve), else a difference of two O(K*) terms accurate to ~1e-13
    from critheory.errors import CritheoryError

    try:
        return arch.critical_curve(tgrid, noise=True)
    except CritheoryError:
        # an expectation that cannot be computed at some K* (softsign at K* ~ 1e250: the
        # quadrature does not converge): those points are invalid (NaN), the others stay
        out = tuple(np.full(np.shape(tgrid), np.nan) for _ in range(4))
        for i, t in enumerate(np.asarray(tgrid, dtype=float)):
            try:
                r = arch.critical_curve(np.array([t]), noise=True)
            except CritheoryError:
                continue
            for o, v in zip(out, r):
                o[i] = v[0]
        return out


def _brackets(D: np.ndarray, grid: np.ndarray, noise: np.ndarray | None = None):
    """Sign-change brackets of each row of ``D`` on ``grid``.

    ``D`` is NaN where the function is invalid (not finite); ``noise`` (broadcast against
    ``D``) is its rounding level: an entry with ``|D| <= noise`` is zero to within rounding
    and carries no sign (tanh at σ_b² = 1e60 has σ_b²(K) = K − 1.88√K = K in float64). A
    bracket joins two consecutive *signed* entries of opposite sign with at most one unsigned
    (invalid or zero-level) entry between them: a longer run of zero-level entries would leave
    the root anywhere in it (ELU at σ_b² = 1e-120: σ_b² ~ K^{3/2} is below the rounding of
    K* over decades), so no point is better than a wrong one. Vectorized over rows.
    Returns ``(row, lo, hi, f_lo, f_hi)`` arrays; ``f_lo``/``f_hi`` are the signed ends.
    """
    D = np.atleast_2d(np.asarray(D, dtype=float))
    nrow, ncol = D.shape
    invalid = ~np.isfinite(D)
    if noise is None:
        signed = ~invalid & (D != 0)
    else:
        with np.errstate(invalid="ignore"):
            signed = ~invalid & (np.abs(D) > np.broadcast_to(noise, D.shape))
    cols = np.arange(ncol)
    # index of the last signed entry at or before each column (-1: none)
    last = np.maximum.accumulate(np.where(signed, cols[None, :], -1), axis=1)
    prev = np.empty_like(last)
    prev[:, 0] = -1
    prev[:, 1:] = last[:, :-1]
    r, k = np.nonzero(signed & (prev >= 0))
    j = prev[r, k]
    ok = (np.sign(D[r, j]) != np.sign(D[r, k])) & (k - j <= 2)
    r, j, k = r[ok], j[ok], k[ok]
    return r, grid[j], grid[k], D[r, j], D[r, k]


class ResolutionWarning(UserWarning):
    """A target σ_b² lies where σ_b²(K*) is within its float64 rounding over two or more scan
    points with a possible sign change across them: a root may hide there, and the critical line
    reports no point for that target rather than a guessed one."""


def _hidden_roots(D: np.ndarray, grid: np.ndarray, noise: np.ndarray) -> list:
    """Rows of ``D`` (targets × grid) with a run of two or more consecutive valid entries within
    rounding (``|D| <= noise``) whose nearest signed neighbours differ in sign, or that reaches
    an end of the grid: ``[(row, K_lo, K_hi), ...]`` of the first such run per row."""
    D = np.atleast_2d(D)
    valid = np.isfinite(D)
    with np.errstate(invalid="ignore"):
        flat = valid & (np.abs(D) <= np.broadcast_to(noise, D.shape))
    out = []
    for r in np.flatnonzero(np.any(flat[:, 1:] & flat[:, :-1], axis=1)):
        row, f = D[r], flat[r]
        j = 0
        n = row.size
        while j < n:
            if not f[j]:
                j += 1
                continue
            k = j
            while k + 1 < n and f[k + 1]:
                k += 1
            if k > j:
                left = row[j - 1] if j > 0 and valid[r, j - 1] and not f[j - 1] else np.nan
                right = row[k + 1] if k + 1 < n and valid[r, k + 1] and not f[k + 1] else np.nan
                if not (np.isfinite(left) and np.isfinite(right)) \
                        or np.sign(left) != np.sign(right):
                    out.append((int(r), float(grid[j]), float(grid[k])))
                    break
            j = k + 1
    return out


#: decades of K* over which σ_b²(K*) must follow one power law before the upward scan stops
_SETTLE_DECADES = 40.0
#: largest relative deviation of log|σ_b²| from that power law (a clean asymptotic regime)
_SETTLE_RESIDUAL = 1e-3


def _settled_below(t, sb, noise, valid, ymax) -> bool:
    """True when the last :data:`_SETTLE_DECADES` decades of the scan are one clean power law
    ``σ_b² = ± c K*^p`` (every point valid and resolved, one sign, log-residual below
    :data:`_SETTLE_RESIDUAL`) whose continuation to the top of float64, with a factor-4
    margin, stays below the largest target: the asymptotic regime, from which the curve
    cannot come back to the targets (softplus: σ_b² ~ −c√K* < 0 to 1e308, and each of its
    expectations costs ~30 ms at K* ~ 1e200, so a scan to the top would take minutes)."""
    top = t[-1]
    w = t >= top / 10.0 ** _SETTLE_DECADES
    if t[0] > top / 10.0 ** _SETTLE_DECADES or np.count_nonzero(w) < 8:
        return False
    s, v = sb[w], valid[w]
    if not np.all(v) or not np.all(np.abs(s) > noise[w]):
        return False
    sign = np.sign(s)
    if not np.all(sign == sign[0]):
        return False
    lx, ly = np.log(t[w]), np.log(np.abs(s))
    p, c = np.polyfit(lx, ly, 1)
    if np.max(np.abs(ly - (c + p * lx))) > _SETTLE_RESIDUAL * max(1.0, np.max(np.abs(ly))):
        return False
    if sign[0] < 0:
        return True
    with np.errstate(over="ignore"):
        reach = np.exp(c + p * np.log(np.finfo(float).max) + np.log(4.0))
    return bool(p <= 0 and np.exp(ly[-1]) * 4 < ymax) or bool(reach < ymax)


#: decades of K* over which σ_b²(K*) may stay within its rounding before the upward scan stops
_UNRESOLVED_DECADES = 10.0


def _unresolved_above(t, sb, noise, ymax) -> bool:
    """True when σ_b²(K*) has been zero to within its rounding (~1e-12 K*, a difference of two
    O(K*) terms) over the last :data:`_UNRESOLVED_DECADES` decades: σ_b²/K* has fallen below
    float64 resolution for good (softplus, σ_b² ~ −c√K*) and no crossing further up can be
    resolved (its expectations cost ~30 ms each at K* ~ 1e200)."""
    top = t[-1]
    w = t >= top / 10.0 ** _UNRESOLVED_DECADES
    if t[0] > top / 10.0 ** _UNRESOLVED_DECADES or np.count_nonzero(w) < 8:
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.abs(sb[w]) <= noise[w]))


def _chi_parallel_or_nan(arch: LayerMaps, K, sw, sb) -> np.ndarray:
    """χ_∥ at the line's points; NaN at a point whose expectation cannot be computed (sin at
    K* ~ 1e300: E[hφφ'] oscillates beyond every quadrature), the point itself stays."""
    from critheory.errors import CritheoryError

    try:
        return np.asarray(arch.chi_parallel(K, sw, sb), dtype=float)
    except CritheoryError:
        out = np.full(np.shape(K), np.nan)
        for i in range(out.size):
            try:
                out[i] = float(arch.chi_parallel(K[i:i + 1], sw[i:i + 1], sb[i:i + 1])[0])
            except CritheoryError:
                pass
        return out


def critical_line(arch: LayerMaps, bias_vars) -> list[LinePoint]:
    """The critical line χ_J(K*) = 1 at the given bias variances, every branch.

    Parameters
    ----------
    arch : LayerMaps
    bias_vars : array_like
        σ_b² values (>= 0).

    Returns
    -------
    list of LinePoint
        Sorted by σ_b², then σ_w². A σ_b² with no critical σ_w² contributes no point; where a
        root may hide because σ_b²(K*) stays within its float64 rounding of the target over
        several scan points (GELU/SiLU at σ_b² ≳ 10⁹), a :class:`ResolutionWarning` says so.

    Examples
    --------
    >>> from critheory.theory.meanfield.maps import architecture
    >>> pts = critical_line(architecture("mlp", "erf"), [0.0, 0.1])
    >>> [round(p.weight_var, 10) for p in pts]  # π/4; mpmath solve of the erf closed form
    [0.7853981634, 1.5521178553]
    """
    arch = check_arch(arch)
    if isinstance(bias_vars, (str, bytes, bool, np.bool_)):
        raise InvalidArgumentError(f"bias variances must be numbers, got {bias_vars!r:.60}")
    try:
        y = np.atleast_1d(np.asarray(bias_vars, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"bias variances must be numbers, got {bias_vars!r}") from None
    if y.size > MAX_LINE_POINTS:
        raise InvalidArgumentError(f"{y.size} bias variances in one call; at most "
                                   f"{MAX_LINE_POINTS} (memory grows with their number)")
    if y.size == 0:
        raise InvalidArgumentError("empty grid of bias variances")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise InvalidArgumentError("bias variances must be finite and >= 0")
    out: list[LinePoint] = []
    mu2 = arch.mu2
    caps = arch.caps
    if caps.scale_invariant:
        if not caps.has_fixed_point:
            return []
        ap, am = arch.activation.homogeneous_slopes
        swc = (1.0 - mu2) * 2.0 / (ap * ap + am * am)
        for v in y:
            if v == 0:
                out.append(LinePoint(float(v), swc, None, 1.0, 0,
                                     "every K is a fixed point (marginal)"))
            else:
                out.append(LinePoint(float(v), swc, None, 1.0, 0,
                                     "chi_J = 1 at every depth; K grows linearly (no fixed point)"))
        return out
    if caps.normalized_input and not caps.single_dense:
        return [] if not caps.has_fixed_point else _normalized_line(arch, y)
    if caps.normalized_input:  # the ray B = A
        if not caps.has_fixed_point:
            return []
        slope = arch.line_slope
        for v in y:
            if abs(slope) <= 1e-13:
                if v == 0:
                    out.append(LinePoint(0.0, None, None, mu2, 0,
                                         "every weight variance is critical at bias variance 0"))
            elif slope > 0 and v > 0:
                sw, sb, ks = arch.critical_curve(np.array([v / slope]))
                out.append(LinePoint(float(v), float(sw[0]), float(ks[0]), mu2, 0))
        return out
    if not caps.has_fixed_point:
        return []
    tgrid = _LINE_GRID
    sw, sb, ks, noise = _scan(arch, tgrid)
    fmax = np.finfo(float).max

    def valid_of(sw, sb):
        return np.isfinite(sb) & np.isfinite(sw) & (sw > 0)

    # extend the scan upward until a valid σ_b²(t) lies clearly (beyond its rounding) above the
    # largest target, up to the largest float64 K*: tanh's σ_b² = K* − 1.88√K* is K* in float64
    # above ~1e32, so a target there is met only to rounding (the ends then bracket it)
    ymax = y.max()
    one = 1.0 - mu2
    ext = 0
    while tgrid[-1] < fmax and ext < 200:
        v = valid_of(sw, sb)
        if np.any(v & (sb - ymax > noise)):
            break
        # no root of a target y lies below K* = y/(1 − μ²) (σ_b² = (1 − μ²)K* − σ_w² S with
        # σ_w² S >= 0): the scan jumps there when the whole grid is below every target's bound
        start = tgrid[-1]
        if one > 0 and start < fmax / 100.0 and y.min() / one > 100.0 * start:
            start = min(y.min() / one / 100.0, fmax / 100.0)
        with np.errstate(over="ignore"):
            more = start * np.logspace(0, 2, 31)[1:]
        more = more[np.isfinite(more) & (more < fmax)]
        more = np.append(more, fmax) if more.size < 30 else more
        s2 = _scan(arch, more)
        tgrid = np.concatenate([tgrid, more])
        sw, sb, ks, noise = (np.concatenate([u, v]) for u, v in zip((sw, sb, ks, noise), s2))
        ext += 1
        if not np.any(np.isfinite(s2[1])):
            break   # the expectations overflow float64 from here on
        if _settled_below(tgrid, sb, noise, valid_of(sw, sb), ymax):
            break
        if _unresolved_above(tgrid, sb, noise, ymax):
            break
    # extend the scan downward while the smallest positive target lies below every resolved
    # σ_b² on the grid (K* -> 0: tanh has σ_b² ≈ (4/3)K*³, so σ_b² = 1e-30 sits at
    # K* ≈ 1e-10, and the subnormal 1e-320 at K* ≈ 1e-107), to K* ~ 1e-300
    ext = 0
    ypos = y[y > 0]
    while ypos.size and tgrid[0] > 1e-298 and ext < 160:
        # done once a valid σ_b² lies clearly (beyond its rounding) below the smallest target
        if np.any(valid_of(sw, sb) & (sb - ypos.min() < -noise)):
            break
        more = tgrid[0] * np.logspace(-2, 0, 31)[:-1]
        s2 = _scan(arch, more)
        tgrid = np.concatenate([more, tgrid])
        sw, sb, ks, noise = (np.concatenate([v, u]) for u, v in zip((sw, sb, ks, noise), s2))
        ext += 1
    valid = valid_of(sw, sb)
    sbv = np.where(valid, sb, np.nan)
    # brackets: for each target, consecutive signed grid points with σ_b²(t) − y of opposite
    # sign, at most one unsigned point between (chunks of targets bound memory)
    parts = []
    step = max(1, 2_000_000 // tgrid.size)
    for c0 in range(0, y.size, step):
        with np.errstate(invalid="ignore"):
            Dm = sbv[None, :] - y[c0:c0 + step, None]
        r, lo_, hi_, flo_, fhi_ = _brackets(Dm, tgrid, noise[None, :])
        parts.append((r + c0, lo_, hi_, flo_, fhi_))
        # a run within rounding of y that reaches the top of float64 (t = the largest float)
        # after a signed point: y is met at the end of the range (tanh at σ_b² = 1e308)
        if tgrid[-1] == fmax and valid[-1] and valid[-2] and np.isfinite(noise[-1]):
            end = (np.abs(Dm[:, -1]) <= noise[-1]) & (np.abs(Dm[:, -2]) > noise[-2])
            for i in np.flatnonzero(end):
                parts.append((np.array([i + c0]), np.array([fmax]), np.array([fmax]),
                              np.array([0.0]), np.array([0.0])))
    tgt, lo, hi, flo, fhi = (np.concatenate(v) for v in zip(*parts))
    roots = []
    if tgt.size:
        def f(t, ids):
            return arch.critical_curve(t)[1] - y[ids]

        # refine in log t for uniform relative accuracy
        r = refine_brackets(lambda u, ids: f(np.exp(u), ids), np.log(lo), np.log(hi),
                            flo, fhi, tgt, xtol=4e-16, atol=1e-15)
        tr = np.exp(r)
        swr, sbr, kr = arch.critical_curve(tr)
        chi = _chi_parallel_or_nan(arch, kr, swr, sbr)
        roots = list(zip(tgt.tolist(), swr.tolist(), kr.tolist(), chi.tolist()))
    swz = zero_endpoint(arch)
    by_target: dict[int, list] = {}
    for j, w, k, c in roots:
        by_target.setdefault(j, []).append((w, k, c))
    for i, v in enumerate(y):
        pts = by_target.get(i, [])
        if v == 0 and swz is not None and not any(abs(k) < 1e-6 for _, k, _ in pts):
            pts.append((swz, 0.0, 1.0))
        pts.sort()
        for b, (w, k, c) in enumerate(pts):
            out.append(LinePoint(float(v), float(w), float(k), float(c), b))
    # targets without a point where a root may hide below the rounding: said, not guessed
    lost = sorted(set(range(y.size)) - set(by_target) - {i for i, v in enumerate(y) if v == 0
                                                          and swz is not None})
    if lost:
        ids = np.array(lost)
        with np.errstate(invalid="ignore"):
            hidden = _hidden_roots(sbv[None, :] - y[ids, None], tgrid, noise[None, :])
        if hidden:
            r0, k0, k1 = hidden[0]
            more = f" (and {len(hidden) - 1} more)" if len(hidden) > 1 else ""
            warnings.warn(
                f"no critical point reported at bias variance {y[ids[r0]]:.6g}{more}: "
                f"sigma_b²(K*) is within its float64 rounding of the target for K* from "
                f"{k0:.3g} to {k1:.3g}, where a root cannot be located", ResolutionWarning,
                stacklevel=2)
    return out


#: σ_w² scan of the critical set B = A of normalized-input networks (8 points per decade)
_SW_GRID = np.logspace(-6, 6, 97)


def _normalized_line(arch: LayerMaps, y: np.ndarray) -> list[LinePoint]:
    """Critical line of a network with a normalized input and several dense blocks (pre-LN MLP
    block): ``K' = μ²K + A(σ)``, ``χ_J = μ² + B(σ)/K``, so ``K* = A/(1 − μ²)`` and
    ``χ_J(K*) = 1`` ⇔ ``B(σ_w², σ_b²) = A(σ_w², σ_b²)``; at each σ_b² every sign change of
    ``B − A`` on a log grid of σ_w² is refined to 1e-15 relative."""
    out: list[LinePoint] = []
    n = _SW_GRID.size
    W = np.tile(_SW_GRID, y.size)
    Y = np.repeat(y, n)
    A, B = arch.unit_constants(W, Y)
    with np.errstate(invalid="ignore"):   # inf - inf where both overflow: masked below
        D = (B - A).reshape(y.size, n)
    noise = (1e-12 * (np.abs(A) + np.abs(B))).reshape(y.size, n)
    D = np.where(np.isfinite(D) & (np.abs(D) > noise), D, np.nan)
    ids, lo, hi, flo, fhi = _brackets(D, _SW_GRID)
    if not ids.size:
        return out

    def f(u, k):
        A, B = arch.unit_constants(np.exp(u), y[k])
        return B - A

    sw = np.exp(refine_brackets(f, np.log(lo), np.log(hi), flo, fhi, ids,
                                xtol=4e-16, atol=1e-15))
    A, _ = arch.unit_constants(sw, y[ids])
    ks = A / (1.0 - arch.mu2)
    pts = sorted(zip(ids.tolist(), sw.tolist(), ks.tolist()))
    branch = 0
    for m, (i, w, k) in enumerate(pts):
        branch = branch + 1 if m and pts[m - 1][0] == i else 0
        out.append(LinePoint(float(y[i]), float(w), float(k), arch.mu2, branch))
    return out


def critical_points(arch: LayerMaps) -> list[CriticalPoint]:
    """Critical points: on the critical line with χ_∥(K*) = 1 as well, ascending in σ_w².

    Includes the K* = 0 point (1/σ_1², 0) of activations with φ(0) = 0, φ'(0) = σ_1 ≠ 0 (stable
    for a_1 < 0, the unstable end of the line otherwise) and the marginal point of scale-invariant
    activations.

    Examples
    --------
    >>> import critheory as ct
    >>> [(p.weight_var, p.bias_var) for p in ct.critical_points(ct.architecture("mlp", "relu"))]
    [(2.0, 0.0)]
    """
    arch = check_arch(arch)
    mu2 = check_arch(arch).mu2
    if arch.caps.scale_invariant:
        if not arch.caps.has_fixed_point:
            return []
        ap, am = arch.activation.homogeneous_slopes
        return [CriticalPoint((1.0 - mu2) * 2.0 / (ap * ap + am * am), 0.0, None,
                              CriticalPointKind.MARGINAL)]
    if not kernel_dependent(arch):
        return []  # χ_∥ = μ² < 1 is constant where the kernel map is affine
    sw, sb, ks = arch.critical_curve(_TGRID)
    D = arch.chi_parallel(ks, sw, sb) - 1.0
    ok = np.isfinite(D) & np.isfinite(sb) & (sw > 0)
    D = np.where(ok & (np.abs(D) > 1e-12), D, np.nan)
    out = []
    swz = zero_endpoint(arch)
    a1 = a1_sign(arch)
    kink = kinked_second(arch)
    if swz is not None and ((a1 is not None and a1 <= 0) or (kink is not None and kink < 0)):
        # the K* = 0 end of the line is a critical point that attracts only for a_1 <= 0
        out.append(CriticalPoint(swz, 0.0, 0.0, CriticalPointKind.ZERO))
    _, lo, hi, flo, fhi = _brackets(D, _TGRID)
    if lo.size:
        def g(u, _):
            t = np.exp(u)
            w, s, k = arch.critical_curve(t)
            return arch.chi_parallel(k, w, s) - 1.0

        r = np.exp(refine_brackets(g, np.log(lo), np.log(hi), flo, fhi, xtol=4e-16,
                                   atol=1e-15))
        w, s, k = arch.critical_curve(r)
        for wi, si, ki in zip(w, s, k):
            if si >= -1e-12 * ki:
                out.append(CriticalPoint(float(wi), float(max(si, 0.0)), float(ki),
                                         CriticalPointKind.HALF_STABLE))
    out.sort(key=lambda p: p.weight_var)
    return out


class UniversalityKind(enum.Enum):
    """Universality class of an MLP critical point [PDLT §5.3]; the value is its display text
    (the ``universality_class`` of ``critheory analyze``)."""

    SCALE_INVARIANT = "scale-invariant"
    #: K* = 0 with PDLT's a_1 < 0: K^l ~ 1/(-a_1 l), J ~ l^(-b_1/a_1)
    ZERO = "K*=0"
    #: K* = 0 with φ'' jumping at 0 (Δ_2/σ_1 < 0): K^l ~ 4/(c² l²), J ~ l^(-2)
    ZERO_KINKED = "K*=0 (kinked)"
    #: K* = 0 with a_1 = 0: set by higher Taylor coefficients (no exponents)
    ZERO_MARGINAL = "K*=0 (marginal a1 = 0)"
    #: a tangent fixed point K* > 0 that attracts from one side only
    HALF_STABLE = "half-stable"
    NONE = "none"
    #: not an MLP-like network (its critical set is analysed instead)
    NOT_APPLICABLE = "not applicable"


class Side(enum.Enum):
    """The side of a fixed point K* from which the kernel flows to it."""

    ABOVE = "above"
    BELOW = "below"


#: the classes whose critical fixed point every input reaches (K* = 0 attracts every K > 0; a
#: scale-invariant activation keeps every K): their APJN exponent is p_⊥ for any input
_EVERY_INPUT = (UniversalityKind.ZERO, UniversalityKind.ZERO_KINKED,
                UniversalityKind.SCALE_INVARIANT)


@dataclass(frozen=True)
class Universality:
    """Universality class and critical exponents of an architecture's critical point.

    Exponent conventions: ``K^l ∝ l^{-kernel}`` (for the half-stable class ``|K^l - K*|``),
    ``J^{l0,l} ∝ l^{-apjn}``. ``*_exact`` are sympy expressions where the theory gives them
    exactly, else None. ``attracting_side`` is the side of K* from which the kernel flows to
    it (:attr:`Side.ABOVE` for the K* = 0 classes; for the half-stable class the side opposite
    to the sign of χ_∥'(K*), since ``K^l - K* ≈ -2/(χ_∥' l)``; None where no side attracts or
    it is unknown). ``name`` is the display text of ``kind``. The exact numbers are
    :class:`~critheory.theory.meanfield.taylor.ExactRational` where they are rational and known
    without sympy (they print, compare and convert like the sympy number, which ``.sympy()``
    gives), else sympy expressions.

    Examples
    --------
    >>> import critheory as ct
    >>> u = ct.universality(ct.architecture("mlp", "relu"))
    >>> isinstance(u, ct.Universality), u.name
    (True, 'scale-invariant')
    """

    __repr__ = short_repr

    kind: UniversalityKind
    critical_point: CriticalPoint | None
    kernel: float | None
    apjn: float | None
    kernel_exact: sp.Expr | None = None
    apjn_exact: sp.Expr | None = None
    a1: sp.Expr | None = None
    b1: sp.Expr | None = None
    laws: dict = field(default_factory=dict)
    note: str = ""
    attracting_side: Side | None = None

    @property
    def name(self) -> str:
        """The class's display text (``"K*=0"``, ``"half-stable"``, ...): for display only."""
        return self.kind.value

    @property
    def fixed_point(self) -> float | None:
        """K* of the class's critical point (None without one, or where every K is fixed)."""
        return None if self.critical_point is None else self.critical_point.fixed_point

    @property
    def half_stable(self) -> bool:
        """True for the half-stable class (K* > 0 attracts from :attr:`attracting_side` only)."""
        return self.kind is UniversalityKind.HALF_STABLE

    @property
    def scale_invariant(self) -> bool:
        """True for a scale-invariant activation: every K is a fixed point, χ's constant."""
        return self.kind is UniversalityKind.SCALE_INVARIANT

    @property
    def attracts_every_input(self) -> bool:
        """True where every input reaches the critical fixed point (the K* = 0 classes with
        exponents, and the scale-invariant class), so that ``apjn`` is its p_⊥ for any input."""
        return self.kind in _EVERY_INPUT

    @property
    def p_perp(self) -> float | None:
        """The APJN exponent p_⊥ (``J^{l0,l} ~ (l0/l)^{p_⊥}``) where every input sees it
        (:attr:`attracts_every_input`), else None."""
        return self.apjn if self.attracts_every_input else None

    def to_dict(self) -> dict:
        def s(e):
            return None if e is None else str(e)

        return {"name": self.name,
                "critical_point": None if self.critical_point is None
                else self.critical_point.to_dict(),
                "kernel": self.kernel, "apjn": self.apjn,
                "kernel_exact": s(self.kernel_exact), "apjn_exact": s(self.apjn_exact),
                "a1": s(self.a1), "b1": s(self.b1), "laws": self.laws, "note": self.note}


def universality(arch: LayerMaps) -> Universality:
    """Classify the MLP (or residual, μ < 1) critical behaviour of an activation [PDLT §5.3].

    Examples
    --------
    >>> from critheory.theory.meanfield.maps import architecture
    >>> u = universality(architecture("mlp", "tanh"))
    >>> u.name, u.a1, u.b1, u.apjn_exact
    ('K*=0', -2, -2, 1)
    """
    arch = check_arch(arch)
    if not kernel_dependent(check_arch(arch)):
        return Universality(UniversalityKind.NOT_APPLICABLE, None, None, None,
                            note=f"universality classes are defined for the MLP; "
                                 f"{arch.describe()} is analysed through its critical set")
    cps = critical_points(arch)
    if arch.caps.scale_invariant:
        return Universality(UniversalityKind.SCALE_INVARIANT, cps[0], 0.0, 0.0, ExactRational(0),
                            ExactRational(0),
                            laws={"kernel": "K^l = K^1", "apjn": "J^{l0,l} = 1"},
                            note="chi_parallel = chi_perp for every K")
    kink = kinked_second(arch)
    if kink is not None:
        # φ = σ_1 x + ½ σ_2^± x² + ...: E_K[φ²]/σ_1² = K + (Δ_2/σ_1) √(2/π) K^{3/2} + O(K²) and
        # E_K[φ'²]/σ_1² = 1 + (Δ_2/σ_1) √(2/π) √K + O(K) (derived, see docs/mlp.md); with
        # c = -(Δ_2/σ_1)√(2/π) > 0: K^l ≈ 4/(c² l²), χ_⊥ ≈ 1 - 2/l, so J ∝ l^{-2}.
        c = -kink * float(np.sqrt(2.0 / np.pi))
        zero = [p for p in cps if p.kind is CriticalPointKind.ZERO]
        if c > 0:
            cn = sp.nsimplify(-kink) * sp.sqrt(2 / sp.pi)
            return Universality(
                UniversalityKind.ZERO_KINKED, zero[0] if zero else None, 2.0, 2.0,
                ExactRational(2), ExactRational(2),
                laws={"kernel": f"K^l ~ 4/(c^2 l^2), c = {sp.sstr(cn)} = {c:.12g}",
                      "chi_parallel": "1 - 3/l", "chi_perp": "1 - 2/l",
                      "apjn": "J^(l0,l) ~ (l0/l)^2"},
                note="phi'' jumps at 0 (Delta_2 = phi''(0+) - phi''(0-)): the kernel flow is "
                     "K' = K - c K^(3/2), not PDLT's K' = K + a_1 K^2",
                attracting_side=Side.ABOVE)
    ab = a1_b1(arch)
    if ab is not None:
        a1, b1 = ab
        if a1.is_negative:
            p = exact_ratio(b1, a1)
            cp = next(c for c in cps if c.kind is CriticalPointKind.ZERO)
            # residual branch: K' = K + (1 - μ²) a_1 K² + ..., so the amplitude carries 1 - μ²
            amp = (-a1 if arch.mu2 == 0 and isinstance(a1, ExactRational)
                   else -as_sympy(a1) * (1 - sp.nsimplify(arch.mu2)))
            return Universality(
                UniversalityKind.ZERO, cp, 1.0, float(p), ExactRational(1), p, a1, b1,
                laws={"kernel": f"K^l ~ 1/({exact_text(amp)} l)",
                      "chi_parallel": "1 - 2/l", "chi_perp": f"1 - {exact_text(p)}/l",
                      "apjn": f"J^(l0,l) ~ (l0/l)^({exact_text(p)})"},
                attracting_side=Side.ABOVE)
        half = [c for c in cps if c.half_stable]
        if a1.is_positive and half:
            return _half_stable(arch, half, a1, b1)
        if a1 == 0:
            return Universality(UniversalityKind.ZERO_MARGINAL, cps[0] if cps else None, None, None,
                                a1=a1, b1=b1, note="a1 = 0: the kernel flow is set by "
                                "higher-order Taylor coefficients")
        return Universality(UniversalityKind.NONE, None, None, None, a1=a1, b1=b1,
                            note="a1 > 0: the K*=0 end of the critical line is unstable and "
                                 "no critical point has K* > 0")
    half = [c for c in cps if c.half_stable]
    if half:
        return _half_stable(arch, half, None, None)
    return Universality(UniversalityKind.NONE, None, None, None,
                        note="no point where chi_parallel = chi_perp = 1")


def _half_stable(arch, half, a1, b1) -> Universality:
    cp = half[0]
    K = cp.fixed_point
    sw = cp.weight_var
    # χ_∥' = σ_w² d/dK (E[hφφ']/K), χ_⊥' = σ_w² d/dK E[φ'²]
    from critheory.expectations.gaussian import expect

    e = float(expect(arch.activation, "h_phi_dphi", K).value)
    # d/dK through the one route of the rules (critheory.expectations.derivatives)
    from critheory.theory.meanfield.rules import dE

    dchi_par = sw * (float(dE(arch.activation, K, 1, "h_phi_dphi")) / K - e / K ** 2)
    dchi_perp = sw * float(dE(arch.activation, K, 1, "dphi2"))
    p = 2.0 * dchi_perp / dchi_par
    # K^l - K* ≈ -2/(χ_∥' l): the flow reaches K* from the side opposite to the sign of χ_∥'
    side = (None if not np.isfinite(dchi_par) or dchi_par == 0.0
            else Side.ABOVE if dchi_par < 0 else Side.BELOW)
    return Universality(
        UniversalityKind.HALF_STABLE, cp, 1.0, float(p), ExactRational(1), None, a1, b1,
        laws={"kernel": f"K^l - K* ~ {-2.0 / dchi_par:.6g}/l (from the attracting side)",
              "apjn": f"J^(l0,l) ~ (l0/l)^({p:.6g})",
              "dchi_parallel_dK": dchi_par, "dchi_perp_dK": dchi_perp},
        note="the fixed point is half-stable: inputs on the other side of K* flow away",
        attracting_side=side)
