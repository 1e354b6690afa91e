"""Finite-width theory beside finite networks: the kurtosis and the 1/n kernel of simulated
networks (:func:`critheory.simulation.finitewidth.measure_finite_width`) against the exact
finite-width result where it exists (scale-invariant MLPs) or the leading order in depth/width,
with test statistics of the distribution they really have and a Bonferroni verdict."""
from __future__ import annotations

import numpy as np

from critheory.validation.compare import ALPHA
from critheory.validation.stats import p_values, p_values_right_skewed

__all__ = ["ALPHA", "compare_finite_width"]


def compare_finite_width(c: dict, m, exact_se=None) -> dict:
    """Theory at the simulated width beside the measurement, with test statistics.

    Where the exact finite-width kurtosis exists (scale-invariant MLP) the measurement is
    judged against it, with the exact standard error and skewness of the estimator
    (``exact_se`` = ``(se, skew)`` from :func:`exact_kurtosis_law`: the sample's own error
    misses the rare networks that dominate the variance of the fourth moment) and the p-values
    of :func:`critheory.validation.stats.p_values_right_skewed`. Elsewhere it is judged against
    the leading order 3V/(nK²), with the jackknife standard error over networks and a
    Student-t reference with ``kurtosis_dof`` degrees of freedom. The verdict is
    ``consistent`` unless a depth's p-value is below ALPHA/L (Bonferroni over the L depths).
    """
    kt = np.array([np.nan if v is None else v for v in c["kurtosis"]])
    kx = c.get("kurtosis_exact")
    kf = np.array([np.nan if v is None else v for v in c["kernel_finite"]])
    k0 = np.array([np.nan if v is None else v for v in c["kernel"]])
    skew = None
    if kx is not None:
        ref = np.array([np.nan if v is None else v for v in kx])
        se, skew = (np.asarray(v, dtype=float) for v in exact_se)
        dof = None
        reference = ("exact finite-width kurtosis (scale-invariant MLP), exact standard error "
                     "of the estimator; right-skewed statistic: lower tail normal, upper tail "
                     "Cantelli's distribution-free bound")
    else:
        ref, se, dof = kt, m.kurtosis_stderr, m.kurtosis_dof
        reference = (f"leading order 3V/(nK^2), jackknife standard error over networks, "
                     f"Student-t with {dof} degrees of freedom")
    with np.errstate(divide="ignore", invalid="ignore"):
        kz = (m.kurtosis_mean - ref) / se
        gz = (m.kernel_mean - kf) / m.kernel_stderr
        gz0 = (m.kernel_mean - k0) / m.kernel_stderr
    if skew is None:
        kp = p_values(kz, dof if dof else None)
    else:
        kp = p_values_right_skewed(kz)
    # layer 1 is Gaussian exactly at every width: its kurtosis is tested like any other
    tested = np.isfinite(kp)
    L = max(int(np.count_nonzero(tested)), 1)
    bad = tested & (kp < ALPHA / L)
    verdict = "inconsistent" if bad.any() else "consistent"
    eps = np.nanmax(kt) if np.any(np.isfinite(kt)) else np.nan
    if kx is not None:
        regime = (f"judged against the exact kurtosis (leading order reaches {eps:.3g}, the "
                  "exact value differs from it by the higher orders in depth/width)")
    else:
        regime = (f"leading order in depth/width: the predicted kurtosis reaches {eps:.3g}; "
                  "the comparison checks the theory where it (and the relative 1/n kernel "
                  "shift) is well below 1 - beyond, statistics grow with the next order "
                  "~(depth/width)^2, not with an error of the theory")
    return {"depths": m.depths, "width": m.width, "seeds": m.seeds, "seed": m.seed,
            "probes": m.probes,
            "kurtosis_mean": m.kurtosis_mean, "kurtosis_stderr": m.kurtosis_stderr,
            "kurtosis_dof": m.kurtosis_dof,
            "kurtosis_theory": ref, "kurtosis_leading": kt,
            "kurtosis_theory_stderr": se if kx is not None else None,
            "kurtosis_skewness": skew,
            "kurtosis_reference": reference,
            "kurtosis_z": kz, "kurtosis_p": kp, "alpha": ALPHA, "verdict": verdict,
            "inconsistent_depths": m.depths[bad],
            "kernel_mean": m.kernel_mean, "kernel_stderr": m.kernel_stderr,
            "kernel_theory": kf, "kernel_z": gz, "kernel_z_infinite_width": gz0,
            "log_apjn_mean": m.log_apjn_mean, "log_apjn_std": m.log_apjn_std,
            "log_apjn_std_stderr": m.log_apjn_std_stderr,
            "log_apjn_std_theory": None,
            "regime": regime, "elapsed": m.elapsed}
