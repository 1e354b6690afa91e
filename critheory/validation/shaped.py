"""Finite shaped networks against the neural covariance SDE (``sde --simulate``): the mean and
standard deviation of the correlation ρ_T with z-scores, and a Kolmogorov–Smirnov test.

The theory is :func:`critheory.theory.shaped.solve_sde` (Euler–Maruyama paths or the
Fokker–Planck solution), the networks :func:`critheory.simulation.shaped.simulate_shaped`.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal(100_000)
>>> bool(abs(sd_stderr(x) - 1 / np.sqrt(2 * x.size)) < 1e-4)      # Gaussian: σ/√(2n)
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from critheory.common.reprs import short_repr

__all__ = ["ShapedComparison", "compare_sde", "sd_stderr"]


def sd_stderr(x: np.ndarray) -> float:
    """Standard error of the sample standard deviation (delta method with the 4th moment)."""
    n = x.size
    s2 = np.var(x, ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return float(math.sqrt(max(m4 - s2 ** 2 * (n - 3) / (n - 1), 0.0) / n) / (2 * math.sqrt(s2)))


@dataclass(frozen=True)
class ShapedComparison:
    """Finite shaped networks beside the SDE (the keys of :meth:`to_dict`).

    ``z_mean``, ``z_std``: (network value − SDE value) / (both standard errors in quadrature);
    ``ks_statistic``, ``ks_pvalue``: one-sample KS against the Fokker–Planck CDF (``pde``) or
    two-sample against the EM paths (``em``); ``unshaped_*``: the same networks without shaping
    (None when not simulated).
    """

    __repr__ = short_repr

    width: int
    depth: int
    T_effective: float
    networks: int
    seed: int
    rho_mean: float
    rho_mean_stderr: float
    z_mean: float
    rho_std: float
    rho_std_stderr: float
    z_std: float
    rho_quantiles: dict
    ks_statistic: float
    ks_pvalue: float
    log_norm_mean: float
    log_norm_var: float
    elapsed: float
    unshaped_rho_mean: float | None = None
    unshaped_rho_std: float | None = None

    def to_dict(self) -> dict:
        """The ``simulation`` block of ``sde --json`` (the ``unshaped_*`` keys only where the
        unshaped networks were simulated)."""
        d = dict(self.__dict__)
        if self.unshaped_rho_mean is None:
            del d["unshaped_rho_mean"], d["unshaped_rho_std"]
        return d


def compare_sde(res, meas, unshaped=None) -> ShapedComparison:
    """Finite networks (``meas``, a ShapedMeasurement) against the SDE (``res``, an SDEResult):
    moments with z-scores and a KS test.

    The theory's uncertainty (``res.error``; for EM its spread of samples and step bias) enters
    the z-scores. The KS test is one-sample against the Fokker–Planck CDF (``pde``) or
    two-sample against the EM paths (``em``).
    """
    from scipy import stats

    r = meas.rho
    n = r.size
    se_mean = float(np.std(r, ddof=1) / math.sqrt(n))
    se_std = sd_stderr(r)
    if res.method == "pde":
        ks = stats.kstest(r, res.solution.cdf)
        th_se_mean, th_se_std = res.error, res.details["errors"]["rho_std"]
    else:
        ks = stats.ks_2samp(r, res.solution.rho)
        th_se_mean = res.error
        th_se_std = math.hypot(sd_stderr(res.solution.rho), res.details["std_step_bias"])
    z_mean = (float(r.mean()) - res.rho_mean) / math.hypot(se_mean, th_se_mean)
    z_std = (float(np.std(r, ddof=1)) - res.rho_std) / math.hypot(se_std, th_se_std)
    uns = {}
    if unshaped is not None:
        uns = {"unshaped_rho_mean": float(np.mean(unshaped.rho)),
               "unshaped_rho_std": float(np.std(unshaped.rho, ddof=1))}
    return ShapedComparison(
        width=meas.width, depth=meas.depth, T_effective=meas.T, networks=n, seed=meas.seed,
        rho_mean=float(r.mean()), rho_mean_stderr=se_mean, z_mean=z_mean,
        rho_std=float(np.std(r, ddof=1)), rho_std_stderr=se_std, z_std=z_std,
        rho_quantiles={str(q): float(np.quantile(r, q)) for q in (0.1, 0.5, 0.9)},
        ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue),
        log_norm_mean=float(np.mean(meas.log_norm)),
        log_norm_var=float(np.var(meas.log_norm, ddof=1)), elapsed=meas.elapsed, **uns)
