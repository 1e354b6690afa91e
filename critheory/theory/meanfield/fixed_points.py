"""Fixed points of the kernel map, their stability, and the phase of a point (σ_w², σ_b²).

A fixed point solves ``K* = f(K*)`` for the architecture's kernel map ``f``; it is stable where
``χ_∥(K*) = f'(K*) < 1``, unstable where ``> 1`` and half-stable where ``= 1`` (a tangent root:
attracting from one side only) [PDLT §5.1]. The phase is read off ``χ_J`` at the fixed point the
input flows to: ordered (``χ_J < 1``, APJN decays as ``e^{-l/ξ}``), chaotic (``> 1``) or critical
(``= 1``), with correlation length ``ξ = 1/|log χ_J|`` [DHG eq. (9)].

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.fixed_points import analyze_point
>>> p = analyze_point(architecture("mlp", "erf"), 1.0, 0.1)
>>> p.phase, round(p.attractor.K, 10)  # K* = (2/π) arcsin(2K*/(1+2K*)) + 0.1 (mpmath)
('ordered', 0.3877703372)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.common.checks import check_hyper
from critheory.common.jsonable import finite_or_none
from critheory.theory.meanfield.maps import LayerMaps, check_arch
from critheory.theory.meanfield.taylor import a1_sign, kinked_second, one_sided_derivatives
from critheory.theory.roots import refine_brackets, sign_change_brackets
from critheory.common.reprs import short_repr

__all__ = ["FixedPoint", "FixedPointStability", "PointAnalysis", "fixed_points", "fixed_point_at", "analyze_point",
           "CRITICAL_TOL"]

#: |χ_J - 1| below which a point counts as critical (root-finding accuracy of the line).
CRITICAL_TOL = 1e-9
_KGRID = np.logspace(-10, 8, 361)
#: where a runaway kernel's χ's are read (their limit as K → ∞)
RUNAWAY_K = 1e12
_SUBDIVIDE = 64


class FixedPointStability(enum.Enum):
    """Stability of a fixed point; the value is its display text (the JSON ``stability``)."""

    STABLE = "stable"            #: χ_∥ < 1 (or K* = 0 attracting algebraically)
    UNSTABLE = "unstable"        #: χ_∥ > 1
    HALF_STABLE = "half-stable"  #: a tangent root, χ_∥ = 1: attracting from one side only
    MARGINAL = "marginal"        #: every K is a fixed point (scale-invariant φ, critical)
    UNKNOWN = "unknown"          #: χ_∥ not finite


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point ``K*`` of the kernel map with its susceptibilities and its
    :class:`FixedPointStability`.

    Examples
    --------
    >>> import critheory as ct
    >>> fp = ct.fixed_points(ct.architecture("mlp", "tanh"), 2.0, 0.1)[0]
    >>> isinstance(fp, ct.FixedPoint)
    True
    """

    __repr__ = short_repr

    K: float
    chi_parallel: float
    chi_perp: float
    chi_jacobian: float
    stability: FixedPointStability

    @property
    def stable(self) -> bool:
        """True where K* attracts from both sides (χ_∥ < 1, or K* = 0 attracting)."""
        return self.stability is FixedPointStability.STABLE

    @property
    def marginal(self) -> bool:
        """True where every K is a fixed point."""
        return self.stability is FixedPointStability.MARGINAL

    def to_dict(self) -> dict:
        return {"K": finite_or_none(self.K), "chi_parallel": finite_or_none(self.chi_parallel),
                "chi_perp": finite_or_none(self.chi_perp),
                "chi_jacobian": finite_or_none(self.chi_jacobian),
                "stability": self.stability.value}


@dataclass(frozen=True)
class PointAnalysis:
    """Everything about one point (σ_w², σ_b²) of one architecture.

    Attributes
    ----------
    fixed_points : tuple of FixedPoint
        All fixed points, ascending in K.
    attractor : FixedPoint or None
        The fixed point an input with ``|x|²/N_0 = q0`` flows to (None if K runs away).
    runaway : str or None
        ``"linear"`` / ``"exponential"`` / ``"unbounded"`` when K^l grows without bound.
    chi_jacobian : float
        χ_J at the attractor (or its limit as K → ∞ when K runs away).
    phase : str
        ``"ordered"``, ``"chaotic"`` or ``"critical"``.
    correlation_length : float
        ξ = 1/|log χ_J| (inf at criticality).
    """

    __repr__ = short_repr

    arch: str
    weight_var: float
    bias_var: float
    input_kernel: float
    fixed_points: tuple
    attractor: FixedPoint | None
    runaway: str | None
    chi_parallel: float
    chi_perp: float
    chi_jacobian: float
    phase: str
    correlation_length: float
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "weight_var": self.weight_var,
            "bias_var": self.bias_var,
            "input_kernel": self.input_kernel,
            "fixed_point": None if self.attractor is None else finite_or_none(self.attractor.K),
            "fixed_points": [fp.to_dict() for fp in self.fixed_points],
            "runaway": self.runaway,
            "chi_parallel": finite_or_none(self.chi_parallel),
            "chi_perp": finite_or_none(self.chi_perp),
            "chi_jacobian": finite_or_none(self.chi_jacobian),
            "phase": self.phase,
            "correlation_length": finite_or_none(self.correlation_length),
            "note": self.note,
        }


def _stability(chi_par: float) -> FixedPointStability:
    if not np.isfinite(chi_par):
        return FixedPointStability.UNKNOWN
    if abs(chi_par - 1.0) <= 1e-9:
        return FixedPointStability.HALF_STABLE
    return FixedPointStability.STABLE if chi_par < 1.0 else FixedPointStability.UNSTABLE


def fixed_point_at(arch: LayerMaps, K: float, sw: float, sb: float,
                   stability: FixedPointStability | None = None) -> FixedPoint:
    """The :class:`FixedPoint` record of ``K`` at (σ_w², σ_b²): χ_∥, χ_⊥, χ_J at K (their
    one-sided limits at K = 0) and the stability (given, or read off χ_∥; at K = 0 with
    χ_∥ = 1 from the leading correction of the kernel map). ``K`` is not checked to be a fixed
    point: callers pass one (or the input kernel of a marginal network, where every K is)."""
    Kc = max(K, 1e-300)
    if K == 0.0:
        mu2 = arch.mu2
        if arch.caps.scale_invariant:
            chi_par = chi_j = _homogeneous_slope(arch, sw)
        else:
            t = arch.activation.taylor_float
            if t is not None:
                d1 = t[0][1]
                chi_par = chi_j = mu2 + sw * d1 * d1
            else:
                # a kink at 0: as K → 0 the Gaussian sees only the two slopes φ'(0±), so the map
                # is that of the piecewise-linear activation with those slopes:
                # χ_∥ = χ_J = μ² + σ_w² (φ'(0+)² + φ'(0-)²)/2
                ap, am = one_sided_derivatives(arch.activation, 1)[1]
                chi_par = chi_j = mu2 + sw * (ap * ap + am * am) / 2.0
    else:
        chi_par = float(arch.chi_parallel(Kc, sw, sb))
        chi_j = float(arch.chi_jacobian(Kc, sw, sb))
        chi_perp = float(arch.chi_perp(Kc, sw, sb))
    if stability is None and K == 0.0 and abs(chi_par - 1.0) <= 1e-12:
        # K* = 0 with χ_∥ = 1: attracting (algebraically) iff the leading correction to
        # f(K) - K is negative: a_1 < 0, or Δ_2/σ_1 < 0 for a kink in φ'' [PDLT §5.3]
        a1, kink = a1_sign(arch), kinked_second(arch)
        if (a1 is not None and a1 < 0) or (kink is not None and kink < 0):
            stability = FixedPointStability.STABLE
        elif (a1 is not None and a1 > 0) or (kink is not None and kink > 0):
            stability = FixedPointStability.UNSTABLE
    if K == 0.0:
        chi_perp = chi_j  # the one-sided limit: χ_⊥ = χ_J for every block rule at K -> 0
    return FixedPoint(float(K), chi_par, chi_perp, chi_j,
                      _stability(chi_par) if stability is None else stability)


def _homogeneous_slope(arch: LayerMaps, sw: float) -> float:
    ap, am = arch.activation.homogeneous_slopes
    return arch.mu2 + sw * (ap * ap + am * am) / 2.0


def fixed_points(arch: LayerMaps, weight_var: float, bias_var: float) -> tuple:
    """All fixed points of the kernel map at (σ_w², σ_b²), ascending, with stability.

    For the MLP and residual maps the search scans ``K`` on a log grid from 1e-10 to 1e8 for
    sign changes of ``f(K) - K`` and for tangent roots (sign changes of ``χ_∥ - 1`` where
    ``|f(K) - K|`` vanishes to rounding), then refines each root to 1e-15 relative. ``K* = 0``
    is included where ``σ_b² = 0`` and ``φ(0) = 0``. Maps affine in K (the capability
    ``affine_kernel_map``: LayerNorm before the activation or before the last dense block) are
    solved exactly.

    Examples
    --------
    >>> import critheory as ct
    >>> fps = ct.fixed_points(ct.architecture("mlp", "tanh"), 2.0, 0.1)
    >>> len(fps) >= 1
    True
    """
    arch = check_arch(arch)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    if not arch.has_fixed_point:
        return ()
    if arch.caps.affine_kernel_map:  # K' = μ²K + c
        mu2 = arch.mu2
        c = float(arch.kernel_map(1.0, sw, sb)) - mu2
        if c <= 0:
            return ()
        return (fixed_point_at(arch, c / (1.0 - mu2), sw, sb),)
    act = arch.activation
    phi0 = float(act.numpy(0.0))
    if arch.caps.scale_invariant:
        m = _homogeneous_slope(arch, sw)
        if abs(m - 1.0) <= 1e-14:
            return ((fixed_point_at(arch, 0.0, sw, sb, FixedPointStability.MARGINAL),)
                    if sb == 0 else ())
        if sb == 0:
            return (fixed_point_at(arch, 0.0, sw, sb, FixedPointStability.STABLE if m < 1
                                   else FixedPointStability.UNSTABLE),)
        return (fixed_point_at(arch, sb / (1.0 - m), sw, sb),) if m < 1 else ()
    K, F, G = _adaptive_scan(arch, sw, sb)
    if F[0] < 0 and (sb > 0 or phi0 != 0.0):
        # f(0⁺) > 0 but f(K) < K at the grid's first K: the lowest fixed point lies below it
        K, F, G = _scan_below(arch, sw, sb, K, F, G)
    noise = 1e-12 * (np.abs(F + K) + K)
    Fm = np.where(np.abs(F) <= noise, np.nan, F)
    roots = []
    # brackets across NaN (noise-level) runs: connect consecutive finite values
    fin = np.flatnonzero(np.isfinite(Fm))
    pairs = [(fin[i], fin[i + 1]) for i in range(len(fin) - 1)
             if np.sign(Fm[fin[i]]) != np.sign(Fm[fin[i + 1]])]
    if pairs:
        lo = np.array([K[a] for a, _ in pairs])
        hi = np.array([K[b] for _, b in pairs])
        r = refine_brackets(lambda x, _: arch.kernel_map(x, sw, sb) - x, lo, hi,
                            np.array([Fm[a] for a, _ in pairs]), np.array([Fm[b] for _, b in pairs]))
        roots.extend(r.tolist())
    # tangent roots: extrema of F (χ_∥ = 1) where F vanishes to rounding
    gi = sign_change_brackets(G)[:, 0]
    if gi.size:
        ke = refine_brackets(lambda x, _: arch.chi_parallel(x, sw, sb) - 1.0, K[gi], K[gi + 1],
                             G[gi], G[gi + 1])
        fe = arch.kernel_map(ke, sw, sb) - ke
        tol = 1e-11 * (np.abs(ke) + sb)
        for k, v in zip(ke, fe):
            if abs(v) <= tol.max() and not any(abs(k - r) <= 1e-6 * k for r in roots):
                roots.append(float(k))
    out = []
    if sb == 0.0 and phi0 == 0.0:
        out.append(fixed_point_at(arch, 0.0, sw, sb))
    for r in sorted(roots):
        if out and abs(r - out[-1].K) <= 1e-9 * r:
            continue
        out.append(fixed_point_at(arch, r, sw, sb))
    return tuple(out)


def _adaptive_scan(arch: LayerMaps, sw: float, sb: float):
    """``K``, ``F = f(K) - K`` and ``G = χ_∥(K) - 1`` on the log grid, subdivided where roots hide.

    Two roots of ``G`` inside one cell of the coarse grid (a tangent root of ``F`` next to a
    transversal one, as for SWISH at its critical point, where χ_∥ - 1 touches 0 twice within
    1.3% in K) leave no sign change on the grid. Every cell next to a sign change of ``F`` or
    ``G``, or a local minimum of ``|F|`` or of ``|G|``, is therefore resampled
    ``_SUBDIVIDE`` times finer, which resolves roots 0.2% apart.
    """
    K = _KGRID
    F = arch.kernel_map(K, sw, sb) - K
    G = arch.chi_parallel(K, sw, sb) - 1.0
    cells = set()
    for V in (F, G):
        cells.update(sign_change_brackets(V)[:, 0].tolist())
        a = np.abs(V)
        with np.errstate(invalid="ignore"):
            # a local minimum, strict on at least one side: on a plateau (|χ_∥ - 1| constant
            # to the last bit, e.g. a runaway's K → ∞ limit) no cell hides a root
            m, l, r = a[1:-1], a[:-2], a[2:]
            mins = np.flatnonzero((m <= l) & (m <= r) & ((m < l) | (m < r))) + 1
        for i in mins:
            cells.update((i - 1, i))
    cells = sorted(c for c in cells if 0 <= c < K.size - 1)
    if not cells:
        return K, F, G
    t = np.linspace(0.0, 1.0, _SUBDIVIDE + 1)[1:-1]
    lk = np.log(K)
    new = np.exp((lk[cells][:, None] + t * (lk[np.array(cells) + 1] - lk[cells])[:, None])
                 .ravel())
    Kn = np.concatenate([K, new])
    Fn = np.concatenate([F, arch.kernel_map(new, sw, sb) - new])
    Gn = np.concatenate([G, arch.chi_parallel(new, sw, sb) - 1.0])
    order = np.argsort(Kn)
    return Kn[order], Fn[order], Gn[order]


def _scan_below(arch: LayerMaps, sw: float, sb: float, K, F, G):
    """Extend the scan below its first ``K`` (1e-10), by decades down to the smallest normal
    float64, where a small σ_b² puts the lowest fixed point (tanh at σ_w² = 0.5, σ_b² = 1e-20:
    ``K* ≈ 2e-20``). Refuses where ``f(K) < K`` still holds at the smallest normal K (the fixed
    point is subnormal: fewer than 16 significant digits)."""
    tiny = np.finfo(float).tiny
    low = np.logspace(np.log10(tiny) + 0.01, np.log10(K[0]), 300, endpoint=False)
    Fl = arch.kernel_map(low, sw, sb) - low
    if not Fl[0] > 0:
        raise CritheoryError(
            f"the lowest fixed point of the kernel map at (weight_var, bias_var) = ({sw:.6g}, "
            f"{sb:.6g}) lies below {tiny:.3g}, float64's smallest normal number: it cannot be "
            "located to float64 precision (use larger variances)")
    Gl = arch.chi_parallel(low, sw, sb) - 1.0
    return (np.concatenate([low, K]), np.concatenate([Fl, F]), np.concatenate([Gl, G]))


def _runaway_kind(arch: LayerMaps, sw: float, sb: float) -> str:
    if arch.caps.scale_invariant:
        return "linear" if abs(_homogeneous_slope(arch, sw) - 1.0) <= 1e-14 else "exponential"
    if arch.caps.unbounded_growth:
        if arch.mu > 1.0:
            return "exponential"
        # μ = 1: K' = K + A grows linearly where the map is affine
        return "linear" if arch.caps.affine_kernel_map else "unbounded"
    return "unbounded"


def analyze_point(arch: LayerMaps, weight_var: float, bias_var: float, q0: float = 1.0
                  ) -> PointAnalysis:
    """Fixed points, the attractor reached from an input with ``|x|²/N_0 = q0``, χ's, phase, ξ.

    Examples
    --------
    >>> from critheory.theory.meanfield.maps import architecture
    >>> p = analyze_point(architecture("mlp", "relu"), 3.0, 0.0)
    >>> p.phase, p.runaway, p.chi_jacobian
    ('chaotic', 'exponential', 1.5)
    """
    arch = check_arch(arch)
    for what, v in (("weight_var", weight_var), ("bias_var", bias_var), ("q0", q0)):
        if np.ndim(v) != 0 or isinstance(v, (str, bytes, bool, np.bool_)):
            raise InvalidArgumentError(f"{what} must be one number, got {v!r:.60}")
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    if not (np.isfinite(q0) and q0 > 0):
        raise InvalidArgumentError(f"input norm q0 must be finite and > 0, got {q0}")
    K1 = float(arch.input_kernel(q0, sw, sb))
    fps = fixed_points(arch, sw, sb)
    note = ""
    attractor = None
    runaway = None
    if fps and fps[0].marginal:
        attractor = fixed_point_at(arch, K1, sw, sb, FixedPointStability.MARGINAL)
        note = "every K is a fixed point (scale-invariant activation at its critical point)"
    elif arch.has_fixed_point:
        F1 = float(arch.kernel_map(K1, sw, sb)) - K1
        if abs(F1) <= 1e-13 * (K1 + sb):
            cand = [fp for fp in fps if abs(fp.K - K1) <= 1e-9 * K1]
            attractor = cand[0] if cand else fixed_point_at(arch, K1, sw, sb)
        elif F1 > 0:
            above = [fp for fp in fps if fp.K > K1]
            attractor = above[0] if above else None
        else:
            below = [fp for fp in fps if fp.K < K1]
            attractor = below[-1] if below else None
        if attractor is None:
            runaway = _runaway_kind(arch, sw, sb)
    else:
        runaway = _runaway_kind(arch, sw, sb)
    if attractor is not None:
        chi_par, chi_j = attractor.chi_parallel, attractor.chi_jacobian
    else:
        chi_par, chi_j = _runaway_limits(arch, sw, sb)
        note = note or _runaway_note(arch, runaway)
    if runaway is not None and arch.caps.everywhere_critical:
        phase = "critical"
        note = ("everywhere critical: K grows linearly and the APJN grows as a power law "
                "l^(B/A) (LayerNorm with mu = 1)")
    elif runaway is not None and arch.caps.unbounded_growth:
        phase = "chaotic"
    elif abs(chi_j - 1.0) <= CRITICAL_TOL:
        phase = "critical"
    else:
        phase = "ordered" if chi_j < 1.0 else "chaotic"
    if phase == "critical":
        xi = np.inf
    elif np.isfinite(chi_j) and chi_j > 0:
        xi = 1.0 / abs(np.log(chi_j))
    else:
        xi = 0.0 if chi_j == 0 else np.nan  # χ_J = 0: no memory; χ_J → ∞: undefined
    chi_perp = attractor.chi_perp if attractor is not None else chi_j
    return PointAnalysis(arch.describe(), sw, sb, K1, fps, attractor, runaway, float(chi_par),
                         float(chi_perp), float(chi_j), phase, float(xi), note)


def _runaway_limits(arch: LayerMaps, sw: float, sb: float) -> tuple[float, float]:
    """(χ_∥, χ_J) in the limit K → ∞ along a runaway."""
    if arch.caps.scale_invariant:
        m = _homogeneous_slope(arch, sw)
        return m, m
    K = RUNAWAY_K
    return float(arch.chi_parallel(K, sw, sb)), float(arch.chi_jacobian(K, sw, sb))


def _runaway_note(arch: LayerMaps, kind: str | None) -> str:
    if arch.caps.unbounded_growth:
        return f"no fixed point: the residual branch (mu = {arch.mu:g}) makes K grow ({kind})"
    return f"no fixed point above the input kernel: K grows without bound ({kind})"
