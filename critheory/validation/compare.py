"""Theory against simulation: infinite-width depth curves next to finite-width Monte Carlo.

:func:`compare` runs the finite-width simulator (:func:`critheory.simulation.simulate`) and the
infinite-width recursion (:func:`critheory.theory.meanfield.depth.depth_curves`, same architecture, ``l0`` and input
norm ``q0``), and returns a :class:`Comparison` with

* per-depth z-scores ``z_l = (mean_sim - theory) / stderr_sim`` of the APJN ``J^{l0,l}`` and of the
  kernel ``K^l`` (standard error over the simulated networks);
* a verdict at family-wise level ``α`` (default 0.01) by Bonferroni: over the ``m`` (depth,
  quantity) pairs compared — every APJN depth ``l0..L`` and every kernel layer ``1..L`` — the
  threshold is ``z_crit = T_{S-1}⁻¹(1 - α/(2m))``, the Student-t quantile with ``S − 1``
  degrees of freedom for ``S`` networks (the z-score over a sample standard error is Student-t,
  not normal: :mod:`critheory.validation.stats`); ``"consistent"`` if every ``|z| <= z_crit``, else
  ``"inconsistent"`` (``"undetermined"`` with a single network: no standard error). The separate
  APJN and kernel verdicts use the same threshold;
* the power-law fit of the simulated APJN (:func:`critheory.simulation.fit_power_law`,
  bootstrap over networks), by default over the last half of the depths ``>= l0 + 1``;
* the theory's asymptotic exponent (:func:`theory_exponent`), and the infinite-width curve's own
  least-squares slope over the same window (``theory_window_slope``): asymptotic exponents carry
  ``log l / l`` corrections at moderate depth, so the window slope is the fair comparison for a
  short network.

Conventions (README "Conventions", as in the JSON of ``critheory simulate``/``validate``): an
attribute named ``exponent`` is a *decay* exponent, ``J ∝ l^(-exponent)`` (tanh at its critical
point: ``+1``; a growing APJN: negative); one named ``slope`` is the *signed*
``d log J / d log l`` (``slope = -exponent``).

Finite width
------------
The theory is the ``N → ∞`` limit. At width ``N`` the mean APJN and kernel carry corrections of
relative size ``O(1/N)`` per layer that accumulate to ``O(l/N)`` at depth ``l`` (LayerNorm layers
alone contribute ``~1/N`` each: the LN Jacobian removes 2 of N directions and
``E[1/s²] = N/((N-3)K)``), and the network-to-network spread of ``log J`` grows like ``√(l/N)``.
The standard error shrinks as ``1/√S`` with the number of networks while the bias does not, so a
deep or narrow run (``l/N`` not small) with many networks is reported ``"inconsistent"`` even
though nothing is wrong: the verdict tests the *infinite-width* prediction. Use
``depth << width`` (say ``l/N <= 0.05``) when the verdict is meant as a check of the theory.
Exceptions: the one-layer APJN of ``mlp``/``residual`` at ``l0 = 1`` is exact at any width, and
ReLU at ``σ_w² = 2`` has mean APJN exactly 1 at any width and depth.

Finite-width theory: kurtosis and the 1/n kernel
------------------------------------------------
Beside the infinite-width curves, :func:`compare` computes the finite-width prediction at the
simulated width n (:func:`critheory.theory.finitewidth.finite_width_curves`): the excess kurtosis
of one preactivation ``3V^l/(n (K^l)²)`` and the kernel ``K^l + K^{(1),l}/n``, with z-scores
against the measured kurtosis (ratio of ensemble means, jackknife standard error over groups
of networks, :attr:`~critheory.simulation.SimulationResult.kurtosis_mean`) and the measured mean kernel.
These are leading-order predictions in depth/width. A layer is *compared* (enters
``finite_width_verdict``) only where

* the predicted kurtosis ``ε_l = 3V^l/(n (K^l)²)`` (about ``3ν l/n``: ν = 5 for ReLU, 2/3 for
  tanh) is at most :data:`KURTOSIS_EPS_MAX` = 0.1, so that the neglected order, ``O(ε²)``, is a
  percent-level correction; and
* that neglected order is below the statistical error, ``ε_l² <= kurtosis_stderr_l``: with
  enough networks a z-test resolves the ``O((l/n)²)`` term, which is not an error of the theory;
* at least :data:`KURTOSIS_MIN_SEEDS` networks were simulated (a fourth-moment standard error
  from fewer networks is itself too noisy for a z-test; fewer: ``"undetermined"``).

Elsewhere the z-scores are still reported, marked not meaningful (``kurtosis_meaningful``); a run
with no layer in the regime has ``finite_width_verdict = "not meaningful"``. The finite-width
comparison never enters ``verdict`` (the test of the infinite-width theory, unchanged): the two
theories have different regimes of validity and error bars of different reliability.

Examples
--------
>>> from critheory.validation.compare import compare
>>> c = compare("relu", 2.0, 0.0, width=64, depth=6, seeds=8, seed=1)
>>> c.verdict, c.theory_exponent
('consistent', 0.0)
>>> [round(float(k), 4) for k in c.kurtosis_theory[:3]]     # 15 (l - 1)/64
[0.0, 0.2344, 0.4688]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from critheory.common.checks import (check_bias_var, check_int, check_layers, check_real,
                                     check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.powerlaw import fit_line
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.validation.stats import critical_value, decide, seeds_dof, verdict_of

__all__ = ["Comparison", "compare", "theory_exponent", "theory_slope", "default_window",
           "z_scores", "bonferroni_threshold", "plot_comparison", "kurtosis_regime", "ALPHA",
           "KURTOSIS_EPS_MAX", "KURTOSIS_MIN_SEEDS", "MAX_N_BOOT"]

#: Default family-wise significance level of the verdict.
ALPHA = 0.01
#: Relative tolerance for "at the critical point" (as the theory command does).
_MATCH = 1e-9
#: Numerical floor of the standard error, relative to the theory value: exact-mode APJN at
#: l = l0 is 1 up to rounding in every network, so its sample standard error is rounding noise.
_SE_FLOOR = 1e-12
#: Largest predicted excess kurtosis ``3V/(nK²)`` at which the leading order in depth/width is
#: compared with the simulation (the neglected order is ~ its square: a percent-level change).
KURTOSIS_EPS_MAX = 0.1
#: Most bootstrap replicates of the fit (its cost is n_boot x seeds x window).
from critheory.common.limits import MAX_N_BOOT  # noqa: E402
from critheory.common.reprs import short_repr
#: Fewest networks for a kurtosis z-test: its standard error is a fourth-moment statistic.
KURTOSIS_MIN_SEEDS = 30


# ----------------------------------------------------------------------------- helpers
def bonferroni_threshold(m: int, alpha: float = ALPHA, dof: float | None = None) -> float:
    """``t_crit = T_ν⁻¹(1 - α/(2m))``: two-sided, family-wise level ``α`` over ``m``
    comparisons, Student-t with ``dof`` degrees of freedom (the normal quantile for None);
    see :mod:`critheory.validation.stats`.

    >>> round(bonferroni_threshold(1, 0.05), 6), round(bonferroni_threshold(1, 0.05, 1), 3)
    (1.959964, 12.706)
    """
    return critical_value(m, alpha, dof)


def z_scores(mean, stderr, theory) -> np.ndarray:
    """``(mean - theory)/stderr`` per entry; NaN where any of the three is not finite.

    The standard error is floored at ``1e-12 |theory|`` (rounding): an entry that is exact in
    every network (``J^{l0,l0} = 1``) gets ``z ≈ 0`` rather than rounding noise over rounding
    noise.
    """
    mean, stderr, theory = (np.asarray(a, dtype=float) for a in (mean, stderr, theory))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se = np.maximum(stderr, _SE_FLOOR * np.abs(theory))
        z = (mean - theory) / se
    ok = np.isfinite(mean) & np.isfinite(stderr) & np.isfinite(theory) & (se > 0)
    return np.where(ok, z, np.nan)


def default_window(depth: int, l0: int = 1) -> tuple[int, int] | None:
    """The last half of the depths ``l0+1..depth`` (None if fewer than 2 such depths).

    >>> default_window(100, 1), default_window(10, 5), default_window(2, 1)
    ((51, 100), (8, 10), None)
    """
    n = depth - l0
    if n < 2:
        return None
    return (depth - (n + 1) // 2 + 1, depth)


def _close(a: float, b: float, scale: float | None = None) -> bool:
    s = max(abs(b), 1.0) if scale is None else scale
    return abs(a - b) <= _MATCH * s


def theory_exponent(arch, weight_var: float, bias_var: float, q0: float = 1.0
                    ) -> tuple[float | None, str]:
    """The asymptotic APJN decay exponent ``a`` (``J^{l0,l} ∝ l^(-a)``) the theory predicts at a
    point, and where it comes from; ``(None, reason)`` where the theory gives no power law.

    ``a = -p`` with ``p`` the signed slope of :func:`theory_slope` (see there for the cases).

    Examples
    --------
    >>> from critheory.theory.meanfield.maps import architecture
    >>> theory_exponent(architecture("mlp", "tanh"), 1.0, 0.0)[0]
    1.0
    >>> theory_exponent(architecture("pre-ln-residual", "relu", 1.0), 2.0, 0.0)[0]
    -1.0
    """
    p, source = theory_slope(arch, weight_var, bias_var, q0)
    return (None if p is None else 0.0 - p), source


def theory_slope(arch, weight_var: float, bias_var: float, q0: float = 1.0
                 ) -> tuple[float | None, str]:
    """The signed asymptotic APJN slope ``p = d log J / d log l`` (``J^{l0,l} ∝ l^p``) the theory
    predicts at a point, and where it comes from; ``(None, reason)`` where the theory gives no
    power law.

    * pre-LN residual architectures at ``μ = 1`` (``pre-ln-residual``, ``pre-ln-mlp-block``;
      every point is critical): ``B/A`` from :func:`critheory.theory.meanfield.critical_sets.everywhere_constants`;
    * scale-invariant φ (ReLU-like) without LayerNorm at its critical weight variance (any bias
      variance): ``χ_J = 1`` at every layer, so ``0``;
    * the critical point of the MLP (or residual with ``μ < 1``) universality class, to ``1e-9``
      relative: ``-universality(arch).apjn`` — provided the input flows to it (a half-stable
      fixed point attracts from one side only);
    * any other point of a critical line whose fixed point is stable and reached from the input
      (``χ_J(K*) = 1`` to 1e-9, ``χ_∥(K*) < 1``): ``K`` converges exponentially, the factors
      ``χ_J(K^l) → 1`` exponentially, so ``J^{l0,l}`` tends to a constant: ``0``;
    * otherwise (ordered or chaotic: exponential; residual μ >= 1 without LayerNorm: faster than
      any power) ``None``.

    Examples
    --------
    >>> from critheory.theory.meanfield.maps import architecture
    >>> theory_slope(architecture("mlp", "tanh"), 1.0, 0.0)[0]
    -1.0
    >>> theory_slope(architecture("pre-ln-residual", "relu", 1.0), 2.0, 0.0)[0]
    1.0
    >>> theory_slope(architecture("mlp", "tanh"), 1.5, 0.0)[0] is None
    True
    """
    from critheory.theory.meanfield.critical_sets import critical_set, everywhere_constants

    sw, sb = float(weight_var), float(bias_var)
    try:
        cs = critical_set(arch)
        if cs.everywhere:
            A, B = (float(v) for v in everywhere_constants(arch, sw, sb))
            return B / A, ("everywhere critical (pre-LN residual, mu = 1): K^l grows by A per "
                           "layer, chi_J = 1 + B/K, J ~ l^(B/A)")
        if cs.empty:
            return None, f"no critical set: {cs.description}"
        if arch.caps.scale_invariant:
            from critheory.theory.meanfield.criticality import critical_points

            cps = critical_points(arch)
            if cps and _close(sw, cps[0].weight_var, cps[0].weight_var):
                return 0.0, ("scale-invariant activation at its critical weight variance: "
                             "chi_J = 1 at every layer, J = 1")
            return None, "scale-invariant activation off criticality: J = chi_J^(l - l0)"
        if not arch.caps.affine_kernel_map:
            from critheory.theory.meanfield.criticality import universality

            u = universality(arch)
            cp = u.critical_point
            if (cp is not None and u.apjn is not None and _close(sw, cp.weight_var, cp.weight_var)
                    and _close(sb, cp.bias_var)):
                reached, why = _reaches_critical_point(arch, u, sw, sb, q0)
                if reached:
                    p = -float(u.apjn)
                    p = p if p != 0 else 0.0
                    return p, (f"critical point of the {u.name} universality class: "
                               f"J ~ l^({p:g})")
                return None, f"critical point of the {u.name} class, but {why}"
        from critheory.theory.meanfield.fixed_points import analyze_point

        pa = analyze_point(arch, sw, sb, q0)
        fp = pa.attractor
        if (fp is not None and fp.stable and np.isfinite(fp.chi_jacobian)
                and abs(fp.chi_jacobian - 1.0) <= _MATCH):
            return 0.0, ("on the critical line (chi_J(K*) = 1) with a stable fixed point: "
                         "J tends to a constant")
        return None, f"{pa.phase} phase: no power law"
    except CritheoryError as exc:  # a prediction is optional
        return None, f"theory exponent unavailable: {exc}"


def _reaches_critical_point(arch, u, sw: float, sb: float, q0: float) -> tuple[bool, str]:
    """Whether the kernel flows from the input to the class's critical fixed point K*.

    K*=0 classes: the attractor of the input is K = 0. Half-stable class: K* attracts only
    from the side where ``(K - K*) χ_∥'(K*) < 0`` [``K^l - K* ≈ -2/(χ_∥' l)``], and no other
    fixed point may lie between the input kernel and K*. Tangent roots are ill-conditioned (an
    error ε in the kernel map moves them by ``~√(ε/χ_∥')``; root finders may report a nearby
    split root), so fixed points within 5 % of K* do not count as in between.
    """
    from critheory.theory.meanfield.criticality import Side
    from critheory.theory.meanfield.fixed_points import analyze_point, fixed_points

    kstar = float(u.fixed_point)
    if not u.half_stable:
        pa = analyze_point(arch, sw, sb, q0)
        if pa.attractor is not None and pa.attractor.K == 0.0 and kstar == 0.0:
            return True, ""
        return False, "the input does not flow to its fixed point K* = 0"
    k1 = float(arch.input_kernel(q0, sw, sb))
    if u.attracting_side is None:
        return False, "the side the fixed point attracts from is unknown"
    if k1 != kstar and (k1 > kstar) != (u.attracting_side is Side.ABOVE):
        return False, (f"the input kernel K^1 = {k1:.6g} lies on the repelling side of the "
                       f"half-stable fixed point K* = {kstar:.6g}")
    lo, hi = min(k1, kstar), max(k1, kstar)
    for fp in fixed_points(arch, sw, sb):
        if lo < fp.K < hi and abs(fp.K - kstar) > 0.05 * kstar:
            return False, (f"the fixed point K = {fp.K:.6g} lies between the input kernel "
                           f"K^1 = {k1:.6g} and K* = {kstar:.6g}")
    return True, ""


def _window_slope(depths, values, window) -> float | None:
    """Least-squares slope of log J on log l over ``window`` (None: no window, or fewer than 2
    finite positive values in it)."""
    if window is None:
        return None
    try:
        return fit_line(depths, values, window).slope
    except InvalidArgumentError:
        return None


def _verdict(zs: list[np.ndarray], zc: float) -> str:
    """:func:`critheory.validation.stats.verdict_of` (kept for callers of this module)."""
    return verdict_of(zs, zc)


def kurtosis_regime(kurtosis_theory, kurtosis_stderr, seeds: int, width: int | None = None,
                    nu: float | None = None) -> tuple[np.ndarray, str]:
    """Which layers' kurtosis (and 1/n kernel) z-scores test the leading order in depth/width,
    and a plain-words statement of the regime.

    A layer is meaningful where the predicted kurtosis ``ε = 3V/(nK²)`` satisfies
    ``|ε| <= KURTOSIS_EPS_MAX`` and ``ε² <= stderr`` (the neglected order is below the error bar);
    with fewer than :data:`KURTOSIS_MIN_SEEDS` networks no layer is. With ``width`` the
    statement gives the compared depths as depth/width, and with ``nu`` (``V/K² ≈ ν l``, > 0) the
    general rule ``depth/width <= 0.1/(3ν)``.

    >>> m, text = kurtosis_regime([0.0, 0.05, 0.2], [0.01, 0.01, 0.01], 100)
    >>> m.tolist()
    [True, True, False]
    """
    eps = np.asarray(kurtosis_theory, dtype=float)
    se = np.asarray(kurtosis_stderr, dtype=float)
    with np.errstate(invalid="ignore"):
        small = np.isfinite(eps) & (np.abs(eps) <= KURTOSIS_EPS_MAX)
        resolvable = np.isfinite(se) & (eps * eps > se)
    ok = small & ~resolvable
    if seeds < KURTOSIS_MIN_SEEDS:
        return np.zeros(eps.shape, dtype=bool), (
            f"kurtosis z-scores need >= {KURTOSIS_MIN_SEEDS} networks (a fourth-moment "
            f"standard error from {seeds} is too noisy): reported, not tested")
    head = (f"the finite-width prediction is leading order in depth/width: it is tested where "
            f"the predicted kurtosis 3V/(nK^2) <= {KURTOSIS_EPS_MAX:g} and its square (the "
            "neglected order) is below the standard error")
    if nu is not None and np.isfinite(nu) and nu > 0:
        head += (f" (3V/(nK^2) ~ 3 nu l/n with nu = {nu:.4g}: depth/width <= "
                 f"{KURTOSIS_EPS_MAX / (3.0 * nu):.3g})")
    if not ok.any():
        return ok, head + "; no layer of this run is in that regime (not meaningful)"
    layers = np.flatnonzero(ok) + 1
    last = int(layers[-1])
    n_out = int(eps.size - ok.sum())
    tail = (f"; here layers 1..{last}" if ok[:last].all() else
            f"; here {int(ok.sum())} layers up to l = {last}")
    if width:
        tail += f" (depth/width <= {last / width:.3g})"
    if n_out:
        tail += f" ({n_out} layers beyond it: reported, not meaningful)"
    return ok, head + tail


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class Comparison:
    """Simulation and infinite-width theory side by side (see the module docstring).

    Attributes
    ----------
    simulation : SimulationResult
    theory : DepthCurves
    depths : ndarray
        ``l0..L``: the depths of the APJN arrays.
    layers : ndarray
        ``1..L``: the layers of the kernel arrays.
    apjn_theory, kernel_theory : ndarray
        Infinite-width ``J^{l0,l}`` (l in ``depths``) and ``K^l`` (l in ``layers``).
    apjn_z, kernel_z : ndarray
        Per-depth z-scores (NaN where undefined).
    alpha, z_crit : float
        Family-wise level and the Bonferroni threshold over ``n_compared`` comparisons
        (Student-t quantile with ``dof`` degrees of freedom).
    dof : float or None
        Degrees of freedom of the scores, ``seeds − 1`` (None with one network).
    min_p : float
        Smallest two-sided p-value of the family (Student-t); rejected when below α/m.
    verdict, apjn_verdict, kernel_verdict : str
        ``"consistent"``, ``"inconsistent"`` or ``"undetermined"``.
    fit : FitResult or None
        Power-law fit of the simulated APJN over ``window`` (None if not possible): its
        ``exponent`` is the decay exponent, its ``slope`` the signed slope.
    theory_exponent : float or None
        Asymptotic decay exponent ``a`` (``J ∝ l^(-a)``; tanh at (1, 0): 1); None where the
        theory has no power law. :attr:`theory_slope` is the signed ``-a``.
    theory_exponent_source : str
    theory_window_slope : float or None
        Signed least-squares slope of the infinite-width ``log J`` against ``log l`` over
        ``window``.
    notes : tuple of str
    finite_width : FiniteWidthCurves or None
        The finite-width theory at the simulated width (None where it is not available).
    kurtosis_theory, kernel_finite_theory : ndarray, shape (L,)
        Predicted excess kurtosis ``3V^l/(n(K^l)²)`` and kernel ``K^l + K^{(1),l}/n`` at width n
        (NaN where unavailable).
    kurtosis_z, kernel_finite_z : ndarray, shape (L,)
        Their z-scores against the simulation.
    kurtosis_meaningful : ndarray of bool, shape (L,)
        Layers in the regime of the leading order (:func:`kurtosis_regime`).
    finite_width_z_crit, finite_width_n_compared, finite_width_verdict
        Bonferroni threshold (level ``alpha``) over the compared (kurtosis, kernel) pairs of the
        meaningful layers, and the verdict: ``consistent``, ``inconsistent``,
        ``undetermined`` or ``not meaningful``. Separate from ``verdict``.
    kurtosis_regime : str
        Plain-words statement of where the finite-width comparison is meaningful.

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.compare("relu", 2.0, 0.0, width=32, depth=5, seeds=4, seed=0, n_boot=100)
    >>> isinstance(c, ct.Comparison)
    True
    """

    __repr__ = short_repr

    simulation: Any
    theory: Any
    depths: np.ndarray
    layers: np.ndarray
    apjn_theory: np.ndarray
    kernel_theory: np.ndarray
    apjn_z: np.ndarray
    kernel_z: np.ndarray
    alpha: float
    z_crit: float
    n_compared: int
    verdict: str
    apjn_verdict: str
    kernel_verdict: str
    fit: Any
    window: tuple[int, int] | None
    theory_exponent: float | None
    theory_exponent_source: str
    theory_window_slope: float | None
    notes: tuple = field(default_factory=tuple)
    finite_width: Any = None
    kurtosis_theory: np.ndarray | None = None
    kurtosis_z: np.ndarray | None = None
    kernel_finite_theory: np.ndarray | None = None
    kernel_finite_z: np.ndarray | None = None
    kurtosis_meaningful: np.ndarray | None = None
    finite_width_z_crit: float = math.nan
    dof: float | None = None
    min_p: float = math.nan
    finite_width_n_compared: int = 0
    finite_width_verdict: str = "not meaningful"
    kurtosis_regime: str = ""

    @property
    def theory_slope(self) -> float | None:
        """Signed asymptotic slope ``d log J / d log l = -theory_exponent`` (None if none)."""
        return None if self.theory_exponent is None else 0.0 - self.theory_exponent

    # convenient views of the simulation
    @property
    def apjn_mean(self) -> np.ndarray:
        return self.simulation.apjn_mean

    @property
    def apjn_stderr(self) -> np.ndarray:
        return self.simulation.apjn_stderr

    @property
    def kernel_mean(self) -> np.ndarray:
        return self.simulation.kernel_mean

    @property
    def kernel_stderr(self) -> np.ndarray:
        return self.simulation.kernel_stderr

    @property
    def max_abs_z(self) -> float:
        """Largest finite ``|z|`` over APJN and kernel (NaN if none)."""
        z = np.concatenate([self.apjn_z, self.kernel_z])
        z = z[np.isfinite(z)]
        return float(np.max(np.abs(z))) if z.size else math.nan

    @property
    def exponent_check(self) -> dict:
        """Whether the theory's slope / window slope lie in the fit's confidence interval of the
        slope (equivalently, the exponents in that of the exponent), and their z-scores
        ``(fit slope - theory slope)/stderr``."""
        f = self.fit
        out = {"theory_in_ci": None, "window_slope_in_ci": None, "theory_z": None,
               "window_slope_z": None}
        if f is None or not (np.isfinite(f.ci_low) and np.isfinite(f.ci_high)):
            return out
        for key, v in (("theory", self.theory_slope),
                       ("window_slope", self.theory_window_slope)):
            if v is not None:
                out[f"{key}_in_ci"] = f.contains(v)
                out[f"{key}_z"] = ((f.slope - v) / f.stderr
                                   if np.isfinite(f.stderr) and f.stderr > 0 else None)
        return out

    def settings(self) -> dict:
        s = self.simulation
        return {"activation": s.activation, "arch": s.arch, "mu": s.mu,
                "weight_var": s.weight_var, "bias_var": s.bias_var, "width": s.width,
                "depth": s.depth, "seeds": s.n_seeds, "l0": s.l0,
                "probes": "exact" if s.probes is None else s.probes, "method": s.method,
                "seed": s.seed, "q0": s.q0,
                # the backend only where it is not the default (keeps the golden files' keys)
                **({} if (s.backend, s.dtype) == ("numpy", "float64") else
                   {"backend": s.backend, "dtype": s.dtype})}

    def to_dict(self) -> dict:
        """JSON-safe dict (None for NaN/inf); keys documented in :mod:`critheory.cli.simulation`."""
        s = self.simulation
        out = {
            "settings": self.settings(),
            "depths": self.depths, "layers": self.layers,
            "apjn_mean": s.apjn_mean, "apjn_stderr": s.apjn_stderr,
            "apjn_median": s.apjn_median, "log_apjn_mean": s.log_apjn_mean,
            "log_apjn_std": s.log_apjn_std, "apjn_theory": self.apjn_theory,
            "apjn_z": self.apjn_z,
            "kernel_mean": s.kernel_mean, "kernel_stderr": s.kernel_stderr,
            "kernel_theory": self.kernel_theory, "kernel_z": self.kernel_z,
            "fit": _fit_json(self.fit),
            "window": None if self.window is None else list(self.window),
            # decay convention J ∝ l^(-exponent), as `critheory analyze`'s exponents.apjn
            "theory_exponent": self.theory_exponent,
            "theory_slope": self.theory_slope,
            "theory_exponent_source": self.theory_exponent_source,
            "theory_window_slope": self.theory_window_slope,
            "exponent_check": self.exponent_check,
            "alpha": self.alpha, "z_crit": self.z_crit, "n_compared": self.n_compared,
            "dof": self.dof, "min_p": self.min_p,
            "max_abs_z": self.max_abs_z,
            "verdict": self.verdict, "apjn_verdict": self.apjn_verdict,
            "kernel_verdict": self.kernel_verdict,
            "notes": list(self.notes), "elapsed": s.elapsed,
            # finite width (issue 14): added keys; the keys above are unchanged
            "kurtosis_mean": s.kurtosis_mean, "kurtosis_stderr": s.kurtosis_stderr,
            "kurtosis_theory": self.kurtosis_theory, "kurtosis_z": self.kurtosis_z,
            "kurtosis_meaningful": (None if self.kurtosis_meaningful is None
                                    else [bool(v) for v in self.kurtosis_meaningful]),
            "kernel_finite_theory": self.kernel_finite_theory,
            "kernel_finite_z": self.kernel_finite_z,
            "finite_width_z_crit": self.finite_width_z_crit,
            "finite_width_n_compared": self.finite_width_n_compared,
            "finite_width_verdict": self.finite_width_verdict,
            "kurtosis_regime": self.kurtosis_regime,
            "log_apjn_std_stderr": s.log_apjn_std_stderr,
            "log_apjn_quantiles": {f"q{int(round(100 * p))}": q for p, q in
                                   zip((0.1, 0.5, 0.9), s.log_apjn_quantiles)},
        }
        return jsonable(out)


def _fit_json(fit) -> dict | None:
    """The fit for JSON in the decay convention of ``critheory analyze`` (``J ∝ l^(-exponent)``,
    so tanh at its critical point has exponent 1): ``exponent`` and ``ci_low``/``ci_high`` refer
    to that exponent; ``slope``/``slope_ci`` keep the signed ``d log J / d log l``."""
    if fit is None:
        return None
    d = fit.to_dict()  # already holds "exponent" = -slope (power law)
    if fit.model == "power_law":
        d["slope_ci"] = [d["ci_low"], d["ci_high"]]
        d["ci_low"], d["ci_high"] = jsonable(fit.exponent_ci)
        d["convention"] = "J ~ l^(-exponent)"
    return d


# ----------------------------------------------------------------------------- compare
def _check_args(width, depth, seeds, l0, probes, weight_var, bias_var, q0, mu, alpha, window):
    width, depth, l0 = check_layers(width, depth, l0)
    seeds = check_int("seeds", seeds, 1)
    if probes is not None and not isinstance(probes, str):
        probes = check_int("probes", probes, 1)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    q0 = check_real("q0", q0)
    if q0 <= 0:
        raise InvalidArgumentError(f"input norm q0 must be > 0, got {q0}")
    if mu is not None:
        mu = check_real("mu", mu)
        if mu < 0:
            raise InvalidArgumentError(f"residual strength mu must be >= 0, got {mu}")
    alpha = check_real("alpha", alpha)
    if not 0 < alpha < 1:
        raise InvalidArgumentError(f"alpha must be in (0, 1), got {alpha}")
    if window is not None:
        try:
            lo, hi = window
            lo, hi = check_int("window low end", lo, 1), check_int("window high end", hi, 1)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"window must be a pair (lo, hi), got {window!r}") \
                from None
        if not l0 <= lo < hi <= depth:
            raise InvalidArgumentError(
                f"window must satisfy l0 <= lo < hi <= depth ({l0} <= lo < hi <= {depth}), "
                f"got {lo}:{hi}")
        window = (lo, hi)
    return width, depth, seeds, l0, probes, sw, sb, q0, mu, alpha, window


def compare(activation, weight_var: float, bias_var: float, *, width: int, depth: int,
            seeds: int, arch=None, mu: float | None = None, l0: int = 1, probes=None,
            seed: int | None = 0, q0: float = 1.0, window: tuple[int, int] | None = None,
            progress=False, params: Mapping[str, float] | None = None, alpha: float = ALPHA,
            n_boot: int = 1000, backend="numpy", dtype: str = "float64") -> Comparison:
    """Simulate ``seeds`` networks and compare with the infinite-width theory.

    Parameters
    ----------
    activation : str, Activation or Network
        Zoo name or formula in ``x`` (``params`` fills its parameters); a Network here stands
        for ``arch``.
    weight_var, bias_var : float
        σ_w² > 0 and σ_b² >= 0.
    width, depth, seeds : int
        Width N, number of layers L, number of networks S (all >= 1).
    arch : Network or str
        A one-token network, or a registry name (default ``mlp``): ``mlp``, ``residual``,
        ``pre-ln``, ``post-ln``, ``pre-ln-residual``, ``pre-ln-mlp-block``; resolved once by
        :func:`critheory.blocks.registry.as_network` (a conflicting activation or ``mu`` is
        refused).
    mu : float, optional
        Residual strength of a registry name (default 1).
    l0 : int
        Reference layer of the APJN ``J^{l0,l}``.
    probes : int, "exact" or None
        Hutchinson probes (see :func:`critheory.simulation.simulate`).
    seed : int or None
        Root seed of the simulation (the fit's bootstrap uses seed 0).
    q0 : float
        Input norm ``|x|²/N``.
    window : (lo, hi), optional
        Depth window of the power-law fit; default :func:`default_window`.
    progress : bool or callable
        Progress bar of the simulation (stderr) or a callback ``(done, total)``.
    alpha : float
        Family-wise level of the verdict (default 0.01).
    n_boot : int
        Bootstrap replicates of the fit.
    backend, dtype : str
        Array backend and floating-point type of the simulation
        (:mod:`critheory.simulation.backend`; default numpy, float64).

    Returns
    -------
    Comparison

    Raises
    ------
    CritheoryError
        (:class:`~critheory.errors.InvalidArgumentError`,
        :class:`~critheory.errors.InvalidVarianceError`, activation errors) on bad input, before
        anything is simulated.

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.compare("tanh", 1.0, 0.0, width=64, depth=10, seeds=4, probes=4, seed=0, n_boot=100)
    >>> c.verdict
    'consistent'
    """
    from critheory.theory.meanfield.depth import depth_curves
    from critheory.theory.meanfield.maps import architecture
    from critheory.simulation import fit_power_law, simulate
    from critheory.simulation.architectures import resolve_network

    (width, depth, seeds, l0, probes, sw, sb, q0, mu, alpha, window) = _check_args(
        width, depth, seeds, l0, probes, weight_var, bias_var, q0, mu, alpha, window)
    n_boot = check_int("n_boot", n_boot, 0)
    if n_boot > MAX_N_BOOT:
        raise InvalidArgumentError(f"n_boot must be <= {MAX_N_BOOT}, got {n_boot}")
    if seed is not None:
        seed = check_int("seed", seed, 0)
    from critheory.simulation.backend import get_backend

    backend = get_backend(backend, dtype)     # a missing torch/CUDA before the theory runs
    net, mu = resolve_network(activation, arch, mu, params)
    th_arch = architecture(net)
    if th_arch.caps.has_layernorm and width < 2:
        raise InvalidArgumentError("LayerNorm architectures need width >= 2")
    act = th_arch.activation
    # theory first: cheap, and its errors should come before a long simulation
    theory = depth_curves(th_arch, sw, sb, depth, l0=l0, q0=q0, input_correlation=None,
                          progress=bool(progress) and not callable(progress) and depth >= 2000)
    exponent, source = theory_exponent(th_arch, sw, sb, q0)
    sim = simulate(act, sw, sb, width=width, depth=depth, seeds=seeds, arch=net, mu=mu,
                   l0=l0, probes=probes, seed=seed, q0=q0, progress=progress,
                   backend=backend, dtype=dtype)

    depths = np.asarray(sim.depths)
    layers = np.arange(1, depth + 1)
    apjn_th = np.asarray(theory.apjn[l0 - 1:], dtype=float)
    kern_th = np.asarray(theory.kernel, dtype=float)
    zj = z_scores(sim.apjn_mean, sim.apjn_stderr, apjn_th)
    zk = z_scores(sim.kernel_mean, sim.kernel_stderr, kern_th)
    m = int(np.isfinite(zj).sum() + np.isfinite(zk).sum())
    dof = seeds_dof(seeds)
    zc = bonferroni_threshold(m, alpha, dof)
    dec = decide([zj, zk], alpha, dof, samples=[sim.apjn, sim.kernel])
    (jlo, jhi), (klo, khi) = dec.parts([zj.size, zk.size])
    notes = []
    if seeds < 2:
        notes.append("one network: no standard error, no verdict")
    n_skip = int((~np.isfinite(zj)).sum() + (~np.isfinite(zk)).sum())
    if seeds >= 2 and n_skip:
        notes.append(f"{n_skip} (depth, quantity) pairs not compared (non-finite values)")
    if theory.runaway_depth is not None:
        notes.append(f"theory kernel exceeded 1e150 at depth {theory.runaway_depth}")
    ratio = depth / width
    if ratio > 0.05:
        notes.append(f"depth/width = {ratio:.3g}: finite-width corrections of relative size "
                     "O(l/N) are expected and can make the verdict 'inconsistent'")

    if window is None:
        window = default_window(depth, l0)
    fit = None
    if window is not None:
        try:
            fit = fit_power_law(sim, window=window, n_boot=n_boot if seeds >= 2 else 0, seed=0)
        except CritheoryError as exc:
            notes.append(f"no power-law fit: {exc}")
    else:
        notes.append("too few depths for a power-law fit (need depth >= l0 + 2)")
    fw = _finite_width(th_arch, sw, sb, depth, width, q0, sim, alpha, notes)
    return Comparison(
        simulation=sim, theory=theory, depths=depths, layers=layers, apjn_theory=apjn_th,
        kernel_theory=kern_th, apjn_z=zj, kernel_z=zk, alpha=alpha, z_crit=zc, n_compared=m,
        verdict=dec.verdict, apjn_verdict=verdict_of([zj], jhi, jlo),
        kernel_verdict=verdict_of([zk], khi, klo), fit=fit, window=window,
        theory_exponent=exponent,
        theory_exponent_source=source,
        theory_window_slope=_window_slope(np.arange(1, depth + 1), theory.apjn, window),
        notes=tuple(notes), dof=dof, min_p=dec.min_p, **fw)


def _finite_width(th_arch, sw, sb, depth, width, q0, sim, alpha, notes) -> dict:
    """The finite-width theory at the simulated width beside the measured kurtosis and kernel
    (fields of :class:`Comparison`); a theory that is unavailable gives NaN and a note."""
    from critheory.theory.finitewidth.curves import finite_width_curves

    nan = np.full(depth, np.nan)
    curves = None
    kt, kf = nan, nan
    try:
        curves = finite_width_curves(th_arch, sw, sb, depth, width=width, q0=q0)
        kt = np.asarray(curves.kurtosis, dtype=float)
        kf = np.asarray(curves.kernel_finite, dtype=float)
    except CritheoryError as exc:  # a prediction is optional
        notes.append(f"finite-width theory unavailable: {exc}")
    kz = z_scores(sim.kurtosis_mean, sim.kurtosis_stderr, kt)
    gz = z_scores(sim.kernel_mean, sim.kernel_stderr, kf)
    nu = None if curves is None else curves.nu.value
    ok, regime = kurtosis_regime(kt, sim.kurtosis_stderr, sim.n_seeds, width, nu)
    zs = [kz[ok], gz[ok]]
    m = int(np.isfinite(zs[0]).sum() + np.isfinite(zs[1]).sum())
    # one threshold for both families: the kurtosis' jackknife error has the fewer degrees of
    # freedom (min(S, 20) − 1), so its Student-t quantile is the conservative one
    dofs = [d for d in (seeds_dof(sim.n_seeds), float(sim.kurtosis_dof) or None) if d]
    zc = bonferroni_threshold(m, alpha, min(dofs) if dofs else None)
    if sim.n_seeds < KURTOSIS_MIN_SEEDS:
        verdict = "undetermined"
    elif not ok.any():
        verdict = "not meaningful"
    else:
        verdict = _verdict(zs, zc)
    return dict(finite_width=curves, kurtosis_theory=kt, kurtosis_z=kz,
                kernel_finite_theory=kf, kernel_finite_z=gz, kurtosis_meaningful=ok,
                finite_width_z_crit=zc, finite_width_n_compared=m,
                finite_width_verdict=verdict, kurtosis_regime=regime)


# ----------------------------------------------------------------------------- figure
def plot_comparison(c: Comparison, path, *, title: str | None = None) -> str:
    """Log–log figure of a :class:`Comparison`: the kernel (left) and the APJN (right), the
    simulation as means with standard-error bars, the infinite-width curves as lines, the
    predicted power law ``l^p`` (anchored on the theory curve at the end of the fit window) and
    the fitted power law over its window (both drawn with the signed slopes). Returns the path
    written."""
    from critheory.io.plots import style

    with style():  # the house style of critheory.io.plots, without touching pyplot's state
        return _draw_comparison(c, path, title)


def _draw_comparison(c: Comparison, path, title: str | None) -> str:
    from critheory.io.plots import figure, save

    s = c.simulation
    fig, axes = figure(1, 2, figsize=(9.0, 3.6))
    ax = axes[0]
    layers = np.asarray(c.layers, dtype=float)
    km, ks, kt = (np.asarray(a, dtype=float) for a in (s.kernel_mean, s.kernel_stderr,
                                                         c.kernel_theory))
    ok = np.isfinite(kt) & (kt > 0)
    if ok.any():
        ax.plot(layers[ok], kt[ok], "-", color="C0", label=r"theory ($N=\infty$)")
    ok = np.isfinite(km) & (km > 0)
    if ok.any():
        ax.errorbar(layers[ok], km[ok], yerr=np.nan_to_num(ks[ok]), fmt="o", ms=3,
                    color="C3", label="simulation (mean ± s.e.)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"depth $\ell$")
    ax.set_ylabel(r"$K^\ell$")
    ax = axes[1]
    d = np.asarray(c.depths, dtype=float)
    jm, js, jt = (np.asarray(a, dtype=float) for a in (s.apjn_mean, s.apjn_stderr,
                                                         c.apjn_theory))
    ok = np.isfinite(jt) & (jt > 0)
    if ok.any():
        ax.plot(d[ok], jt[ok], "-", color="C0", label=r"theory ($N=\infty$)")
    okm = np.isfinite(jm) & (jm > 0)
    if okm.any():
        ax.errorbar(d[okm], jm[okm], yerr=np.nan_to_num(js[okm]), fmt="o", ms=3, color="C3",
                    label="simulation (mean ± s.e.)")
    lo = c.window[0] if c.window is not None else d[0]
    hi = c.window[1] if c.window is not None else d[-1]
    if c.theory_slope is not None:
        i = int(np.searchsorted(d, hi))
        if i < d.size and np.isfinite(jt[i]) and jt[i] > 0:
            ll = d[d >= max(d[0] + 1, 1)] if d.size > 1 else d
            ax.plot(ll, jt[i] * (ll / hi) ** c.theory_slope, "--", color="gray",
                    label=rf"predicted $\propto \ell^{{{c.theory_slope:.4g}}}$")
    if c.fit is not None:
        ll = d[(d >= lo) & (d <= hi)]
        ax.plot(ll, c.fit.amplitude * ll ** c.fit.slope, ":", color="k", lw=2,
                label=rf"fit $\ell^{{{c.fit.slope:.3f}}}$ over [{lo}, {hi}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"depth $\ell$")
    ax.set_ylabel(rf"APJN $\mathcal{{J}}^{{{s.l0},\ell}}$")
    for a in axes:
        a.legend(frameon=False, fontsize=7)
    if title is None:
        net = s.arch if s.network is None else s.network.describe()
        title = (f"{s.activation} ({net}), $\\sigma_w^2$={s.weight_var:g}, "
                 f"$\\sigma_b^2$={s.bias_var:g}: N={s.width}, {s.n_seeds} networks — "
                 f"{c.verdict}")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)
