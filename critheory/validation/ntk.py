"""The neural tangent kernel of finite networks against its infinite-width recursion: per-layer
z-scores and a Bonferroni verdict (``ntk --simulate``, ``simulate --ntk``, ``validate --ntk``).

The measurement is :func:`critheory.simulation.ntk.measure_ntk`, the theory
:func:`critheory.theory.ntk.depth.ntk_curves` at the rates the measurement uses; the statistics
are the shared ones of :mod:`critheory.validation.stats`.

Examples
--------
>>> from critheory.validation.ntk import compare_ntk
>>> c = compare_ntk("tanh", "mlp", 1.0, 0.0, width=32, depth=3, seeds=50, seed=1)
>>> float(c.z[0]), len(c.to_dict()["ntk_z"])       # layer 1 of a fixed input: deterministic
(0.0, 3)
>>> c.verdict(0.01).to_dict()["ntk_n_compared"]
2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from critheory.common.reprs import short_repr

__all__ = ["NTKComparison", "NTKVerdict", "compare_ntk", "ntk_z", "ntk_verdict"]


@dataclass(frozen=True)
class NTKVerdict:
    """The NTK's own verdict over the layers whose z-score is defined (see :func:`ntk_verdict`).

    ``verdict``: ``consistent``, ``inconsistent`` or ``not compared``; ``z_crit`` the two-sided
    Bonferroni threshold (None when nothing was compared); ``n_compared`` the layers compared;
    ``dof`` the Student-t degrees of freedom (None when nothing was compared).
    """

    __repr__ = short_repr

    verdict: str
    z_crit: float | None
    n_compared: int
    dof: float | None = None

    def to_dict(self) -> dict:
        """The JSON keys of ``validate --ntk``: ``ntk_verdict``, ``ntk_z_crit``,
        ``ntk_n_compared`` and, where layers were compared, ``ntk_dof``."""
        d = {"ntk_verdict": self.verdict, "ntk_z_crit": self.z_crit,
             "ntk_n_compared": self.n_compared}
        if self.n_compared:
            d["ntk_dof"] = self.dof
        return d


@dataclass(frozen=True, eq=False)
class NTKComparison:
    """A measured NTK beside the recursion at the same rates.

    Attributes
    ----------
    theory : NTKCurves
        The infinite-width curves (their ``lambda_b``, ``lambda_w`` are the rates simulated).
    measurement : NTKMeasurement
        The finite networks.
    z : ndarray
        Per-layer ``(mean − theory)/stderr`` (0 where both agree to rounding: layer 1 of a fixed
        input is deterministic).
    scaling : str
        The learning-rate schedule (``constant`` or ``equivalence``).
    """

    __repr__ = short_repr

    theory: Any
    measurement: Any
    z: np.ndarray
    scaling: str

    def to_dict(self) -> dict:
        """The per-layer columns of ``simulate --ntk``: ``ntk_mean``, ``ntk_stderr``,
        ``ntk_std``, ``ntk_theory``, ``ntk_z``, ``ntk_lambda_b``, ``ntk_lambda_w``,
        ``ntk_scaling``, ``ntk_seeds``."""
        from critheory.common.jsonable import jsonable

        m, c = self.measurement, self.theory
        return jsonable({"ntk_mean": m.ntk_mean, "ntk_stderr": m.ntk_stderr,
                         "ntk_std": m.ntk_std, "ntk_theory": c.ntk, "ntk_z": self.z,
                         "ntk_lambda_b": c.lambda_b, "ntk_lambda_w": c.lambda_w,
                         "ntk_scaling": self.scaling, "ntk_seeds": m.seeds})

    def simulation_dict(self) -> dict:
        """The ``simulation`` block of the ``ntk`` command: the measurement's own keys with
        ``ntk_theory`` and ``ntk_z``."""
        from critheory.common.jsonable import jsonable

        sim = self.measurement.to_dict()
        sim.update(jsonable({"ntk_theory": self.theory.ntk, "ntk_z": self.z}))
        return sim

    def verdict(self, alpha: float) -> NTKVerdict:
        """:func:`ntk_verdict` of these columns, with the per-network NTK for the skewness
        calibration."""
        return ntk_verdict(self.to_dict(), alpha, self.measurement.ntk_per_network)


def ntk_z(measurement, curves) -> np.ndarray:
    """Per-layer z-scores of a measured NTK against the curves; 0 where the two agree to
    rounding (layer 1 of a fixed input is deterministic: rounding, not sampling, separates
    them)."""
    m, c = measurement, curves
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (m.ntk_mean - c.ntk) / m.ntk_stderr
    return np.where(np.abs(m.ntk_mean - c.ntk) <= 1e-12 * np.abs(c.ntk), 0.0, z)


def compare_ntk(activation, arch, weight_var: float, bias_var: float, *, width: int,
                depth: int, seeds: int, lambda_b: float = 1.0, lambda_w: float = 1.0,
                scaling: str = "constant", mu: float | None = None, q0: float = 1.0,
                seed: int = 0, params=None, curves=None) -> NTKComparison:
    """Simulate ``seeds`` networks of width ``width`` and compare their NTK with the recursion.

    Parameters
    ----------
    activation : activation spec
    arch : architecture name or :class:`~critheory.theory.meanfield.maps.LayerMaps`
    weight_var, bias_var, width, depth, seeds, seed
        The networks simulated.
    lambda_b, lambda_w, scaling
        The learning rates of the recursion; the networks are measured at the per-layer rates
        the recursion uses.
    mu, q0, params
        Residual strength, input norm, activation parameters.
    curves : NTKCurves, optional
        The recursion already computed at these arguments (the ``ntk`` command's).
    """
    from critheory.activation import Activation
    from critheory.simulation.ntk import measure_ntk
    from critheory.theory.meanfield.maps import LayerMaps, architecture
    from critheory.theory.ntk.depth import ntk_curves

    act = Activation.get(activation, params)
    maps = arch if isinstance(arch, LayerMaps) else architecture(arch, act, mu)
    if curves is None:
        curves = ntk_curves(maps, act, weight_var, bias_var, depth, lambda_b=lambda_b,
                            lambda_w=lambda_w, scaling=scaling, mu=mu, q0=q0)
    m = measure_ntk(act, weight_var, bias_var, width=width, depth=depth, seeds=seeds,
                    lambda_b=curves.lambda_b, lambda_w=curves.lambda_w, arch=maps.name, mu=mu,
                    q0=q0, seed=seed)
    return NTKComparison(curves, m, ntk_z(m, curves), scaling)


def ntk_verdict(cols: dict, alpha: float, samples: np.ndarray | None = None) -> NTKVerdict:
    """The NTK's own verdict over the layers whose z-score is defined.

    ``cols`` holds ``ntk_z``, ``ntk_stderr`` and ``ntk_seeds`` (:meth:`NTKComparison.to_dict`).
    The z-scores are Student-t with ``seeds − 1`` degrees of freedom (a standard error over the
    networks); the threshold is the two-sided Bonferroni ``T⁻¹(1 − α/(2m))`` over the ``m``
    compared layers (those with a sampling error: layer 1 of a fixed input is deterministic;
    family-wise error rate α under the infinite-width hypothesis), widened by the lognormal
    calibration of :mod:`critheory.validation.stats` where ``samples`` (per-network NTK, shape
    ``(seeds, L)``) are skewed; ``consistent`` when every ``z`` lies within the thresholds,
    ``inconsistent`` otherwise, ``not compared`` when no layer has a z-score. Finite-width
    corrections of relative size O(l/width) are not allowed for: at depth comparable to the
    width an ``inconsistent`` NTK is the expected 1/n effect.
    """
    from critheory.validation.stats import decide, seeds_dof

    z = np.array([np.nan if v is None else v for v in cols["ntk_z"]], dtype=float)
    se = np.array([np.nan if v is None else v for v in cols["ntk_stderr"]], dtype=float)
    keep = np.isfinite(z) & (se > 0)      # a deterministic layer (the first) is not a test
    z = z[keep]
    m = int(z.size)
    if m == 0:
        return NTKVerdict("not compared", None, 0)
    dof = seeds_dof(int(cols.get("ntk_seeds", 0)))
    smp = None if samples is None else [np.asarray(samples, dtype=float)[:, keep]]
    d = decide([z], alpha, dof, samples=smp)
    return NTKVerdict(d.verdict, d.crit, m, d.dof)
