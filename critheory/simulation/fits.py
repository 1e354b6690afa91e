"""Power-law and exponential fits of APJN (or kernel) curves, with a bootstrap over networks.

Both fits are ordinary least squares on ``log y``:

* power law ``y ∝ l^{slope}``: ``log y = intercept + slope · log l``. ``slope`` is the
  *signed* ``d log y / d log l``; ``exponent = -slope`` is the decay exponent of the reports'
  convention ``J ∝ l^(-exponent)`` (README "Conventions"): critical tanh gives slope ``≈ -1``,
  exponent ``≈ +1`` (``J ∝ 1/l``), the pre-LN residual ReLU network slope ``+1``, exponent
  ``-1`` (``J ∝ l``).
* exponential ``y ∝ exp(slope · l)``: ``log y = intercept + slope · l``; the correlation depth
  is ``xi = -1/slope`` (``y ∝ exp(-l/xi)``, positive for a decay).

The least squares (window selection, slope, intercept) are those of
:mod:`critheory.common.powerlaw`, shared with the theory's fits.

The point estimate fits the curve averaged over networks (``statistic="mean"``: the mean of
``y``; ``"geometric"``: the mean of ``log y``). Its uncertainty comes from a bootstrap over
networks: resample the S networks with replacement, average, refit; the standard error is the
standard deviation of the refitted slopes and the confidence interval their percentile
interval. The bootstrap generator is ``numpy.random.default_rng(seed)``, so fits repeat.
``ols_stderr`` is the textbook OLS error of the mean-curve fit; it ignores the strong
correlations between depths of one network and is usually far too small — prefer ``stderr``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from critheory.common.checks import check_int, check_real
from critheory.common.jsonable import jsonable
from critheory.common.powerlaw import ols, window_mask
from critheory.errors import InvalidArgumentError
from critheory.common.reprs import short_repr

__all__ = ["FitResult", "fit_power_law", "fit_exponential"]


@dataclass(frozen=True)
class FitResult:
    """A straight-line fit of ``log y`` against ``log l`` (power law) or ``l`` (exponential).

    Attributes
    ----------
    model : str
        ``"power_law"`` or ``"exponential"``.
    slope : float
        Signed ``d log y / d log l`` (power law) or ``d log y / d l`` (exponential), OLS on the
        averaged curve. The power law's decay exponent is :attr:`exponent` ``= -slope``.
    intercept : float
        ``log y`` at ``log l = 0`` (power law) or ``l = 0`` (exponential).
    stderr : float
        Bootstrap standard error of the slope (NaN with one network or ``n_boot = 0``).
    ci_low, ci_high : float
        Bootstrap percentile confidence interval of the slope at level ``ci_level`` (that of
        the exponent is :attr:`exponent_ci`).
    ci_level : float
    ols_stderr : float
        OLS standard error of the mean-curve fit (ignores correlations; optimistic).
    rms_residual : float
        Root-mean-square residual of ``log y`` about the fitted line.
    window : tuple of int
        ``(lmin, lmax)``: the depths used (inclusive).
    n_points, n_seeds, n_boot : int
        Depths in the window, networks, bootstrap replicates kept.
    statistic : str
        ``"mean"`` or ``"geometric"``.
    """

    __repr__ = short_repr

    model: str
    slope: float
    intercept: float
    stderr: float
    ci_low: float
    ci_high: float
    ci_level: float
    ols_stderr: float
    rms_residual: float
    window: tuple[int, int]
    n_points: int
    n_seeds: int
    n_boot: int
    statistic: str

    @property
    def exponent(self) -> float:
        """Decay exponent of the power law, ``y ∝ l^(-exponent)``: ``-slope`` (tanh at its
        critical point: ``+1``; a growing curve: negative). NaN for the exponential model."""
        return 0.0 - self.slope if self.model == "power_law" else math.nan

    @property
    def exponent_ci(self) -> tuple[float, float]:
        """Confidence interval of :attr:`exponent`: ``(-ci_high, -ci_low)`` (power law; NaNs for
        the exponential model)."""
        if self.model != "power_law":
            return (math.nan, math.nan)
        return (0.0 - self.ci_high, 0.0 - self.ci_low)

    @property
    def amplitude(self) -> float:
        """``exp(intercept)``: the prefactor ``A`` of ``A l^{slope}`` or ``A e^{slope l}``."""
        return math.exp(self.intercept) if self.intercept < 709 else math.inf

    @property
    def xi(self) -> float:
        """Correlation depth ``-1/slope`` (exponential model; inf for a zero slope)."""
        return -1.0 / self.slope if self.slope != 0 else math.inf

    @property
    def xi_ci(self) -> tuple[float, float]:
        """Confidence interval of :attr:`xi` mapped from the slope's (NaN if it contains 0)."""
        lo, hi = self.ci_low, self.ci_high
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 <= hi:
            return (math.nan, math.nan)
        a, b = -1.0 / lo, -1.0 / hi
        return (min(a, b), max(a, b))

    def contains(self, value: float) -> bool:
        """Whether the *slope* ``value`` lies in the slope's confidence interval (for an
        exponent ``p``, ask ``contains(-p)``)."""
        return bool(self.ci_low <= value <= self.ci_high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (None for NaN/inf); ``ci_low``/``ci_high`` are the slope's interval,
        ``exponent`` (power law) the decay exponent ``-slope``."""
        out = {
            "model": self.model, "slope": self.slope, "intercept": self.intercept,
            "stderr": self.stderr, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "ci_level": self.ci_level, "ols_stderr": self.ols_stderr,
            "rms_residual": self.rms_residual, "window": list(self.window),
            "n_points": self.n_points, "n_seeds": self.n_seeds, "n_boot": self.n_boot,
            "statistic": self.statistic, "amplitude": self.amplitude,
        }
        if self.model == "power_law":
            out["exponent"] = self.exponent
        else:
            out["xi"] = self.xi
            out["xi_ci"] = list(self.xi_ci)
        return jsonable(out)


def _log_samples(result_or_depths, values):
    """(depths (D,), log-samples (S, D)) from a SimulationResult or arrays.

    A SimulationResult contributes its ``log_apjn`` (finite even where ``apjn`` under- or
    overflows); raw values are logged here (zeros give -inf, rejected later if in the window).
    """
    if values is None:
        if not hasattr(result_or_depths, "depths") or not hasattr(result_or_depths, "log_apjn"):
            raise InvalidArgumentError("give a SimulationResult, or depths and values")
        depths, logs = result_or_depths.depths, result_or_depths.log_apjn
    else:
        depths = result_or_depths
        try:
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise InvalidArgumentError("values must be an array of numbers") from None
        if np.any(values < 0):
            raise InvalidArgumentError("values must be >= 0 to be fitted on a log scale")
        with np.errstate(divide="ignore"):
            logs = np.log(values)
    try:
        depths = np.asarray(depths, dtype=float)
        logs = np.asarray(logs, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("depths must be an array of numbers") from None
    if depths.ndim != 1 or depths.size == 0:
        raise InvalidArgumentError("depths must be a non-empty 1-d array")
    if logs.ndim == 1:
        logs = logs[None, :]
    if logs.ndim != 2 or logs.shape[1] != depths.size or logs.shape[0] == 0:
        raise InvalidArgumentError(
            f"values must have shape (S, {depths.size}) or ({depths.size},), got "
            f"{np.shape(values if values is not None else logs)}")
    return depths, logs


def _fit(model, result_or_depths, values, window, n_boot, seed, ci, statistic) -> FitResult:
    depths, samples = _log_samples(result_or_depths, values)
    n_boot = check_int("n_boot", n_boot, 0)
    ci = check_real("ci", ci)
    if not 0 < ci < 1:
        raise InvalidArgumentError(f"ci must be in (0, 1), got {ci}")
    if statistic not in ("mean", "geometric"):
        raise InvalidArgumentError(f"statistic must be 'mean' or 'geometric', got {statistic!r}")
    if window is None:
        window = (None, None)
    try:
        lmin, lmax = window
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"window must be a pair (lmin, lmax), got {window!r}") from None
    lmin = None if lmin is None else check_real("window[0]", lmin)
    lmax = None if lmax is None else check_real("window[1]", lmax)
    sel = window_mask(depths, (lmin, lmax), positive=model == "power_law")
    if sel.sum() < 2:
        raise InvalidArgumentError(
            f"the window {window!r} holds fewer than 2 usable depths of {depths.min():g}.."
            f"{depths.max():g}")
    d = depths[sel]
    ys = samples[:, sel]
    x = np.log(d) if model == "power_law" else d

    def curve(block):  # log-samples (..., S, n) -> (..., n) log of the averaged curve
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if statistic == "mean":  # log-mean-exp, safe where the values under/overflow
                top = np.max(block, axis=-2, keepdims=True)
                top = np.where(np.isfinite(top), top, 0.0)
                return (np.log(np.mean(np.exp(block - top), axis=-2))
                        + np.squeeze(top, axis=-2))
            return block.mean(axis=-2)

    logy = curve(ys)
    if not np.all(np.isfinite(logy)):
        raise InvalidArgumentError("the averaged curve is not finite and positive in the window")
    slope, intercept, sxx = ols(x, logy)
    resid = logy - (intercept + slope * x)
    n = d.size
    rms = float(np.sqrt(np.mean(resid ** 2)))
    ols_se = float(np.sqrt(resid @ resid / (n - 2) / sxx)) if n > 2 else math.nan

    s = ys.shape[0]
    stderr = lo = hi = math.nan
    kept = 0
    if s >= 2 and n_boot > 0:
        rng = np.random.default_rng(seed)
        slopes = []
        chunk = max(1, (1 << 22) // (s * n))
        for start in range(0, n_boot, chunk):
            m = min(chunk, n_boot - start)
            idx = rng.integers(0, s, size=(m, s))
            lb = curve(ys[idx])
            ok = np.all(np.isfinite(lb), axis=1)
            slopes.append(ols(x, lb[ok])[0])
        slopes = np.concatenate(slopes)
        kept = slopes.size
        if kept >= 2:
            stderr = float(np.std(slopes, ddof=1))
            lo, hi = (float(v) for v in np.quantile(slopes, [(1 - ci) / 2, (1 + ci) / 2]))
    return FitResult(model=model, slope=float(slope), intercept=float(intercept), stderr=stderr,
                     ci_low=lo, ci_high=hi, ci_level=ci, ols_stderr=ols_se, rms_residual=rms,
                     window=(int(round(d.min())), int(round(d.max()))), n_points=int(n),
                     n_seeds=int(s), n_boot=int(kept), statistic=statistic)


def fit_power_law(result_or_depths, values=None, *, window=None, n_boot: int = 1000,
                  seed: int = 0, ci: float = 0.95, statistic: str = "mean") -> FitResult:
    """Fit ``y ∝ l^{slope} = l^(-exponent)`` over a depth window.

    Parameters
    ----------
    result_or_depths : SimulationResult or array_like
        A simulation result (its ``depths`` and ``log_apjn`` are used, so that APJN values
        beyond the float range are fitted too), or the depths ``l``.
    values : array_like, optional
        Samples of shape (S, D) (networks × depths) or a single curve (D,), when depths are
        given (e.g. ``result.layers, result.kernel`` to fit the kernel).
    window : tuple of float, optional
        ``(lmin, lmax)``, the inclusive depth window (either end None: unbounded). Default:
        every depth.
    n_boot : int
        Bootstrap replicates (resampling networks). 0 disables the bootstrap.
    seed : int
        Seed of the bootstrap generator.
    ci : float
        Confidence level of the percentile interval.
    statistic : {"mean", "geometric"}
        Fit the log of the mean curve, or the mean of the log (geometric mean).

    Returns
    -------
    FitResult
        ``slope`` (signed ``d log y / d log l``), ``exponent`` (``= -slope``), ``stderr``,
        ``ci_low``, ``ci_high`` (of the slope), ``exponent_ci``, ``amplitude``...

    Examples
    --------
    >>> import numpy as np
    >>> l = np.arange(1, 50)
    >>> samples = np.array([3.0 * l ** -1.0 * f for f in (0.9, 1.0, 1.1)])
    >>> fit = fit_power_law(l, samples, window=(5, 40), n_boot=200)
    >>> round(fit.slope, 12), round(fit.exponent, 12), round(fit.amplitude, 12)
    (-1.0, 1.0, 3.0)
    """
    return _fit("power_law", result_or_depths, values, window, n_boot, seed, ci, statistic)


def fit_exponential(result_or_depths, values=None, *, window=None, n_boot: int = 1000,
                    seed: int = 0, ci: float = 0.95, statistic: str = "mean") -> FitResult:
    """Fit ``y ∝ exp(slope · l) = exp(-l/xi)`` over a depth window.

    Parameters are those of :func:`fit_power_law`. The result's ``slope`` is
    ``d log y / d l``; ``xi = -1/slope`` is the correlation depth and ``xi_ci`` its interval.

    Examples
    --------
    >>> import numpy as np
    >>> l = np.arange(1, 30)
    >>> fit = fit_exponential(l, 2.0 * np.exp(-l / 5.0), n_boot=0)
    >>> round(fit.xi, 12)
    5.0
    """
    return _fit("exponential", result_or_depths, values, window, n_boot, seed, ci, statistic)
