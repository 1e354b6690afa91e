"""Finite-width Bayesian theory beside the exact posterior of finite networks.

The measured side is :mod:`critheory.simulation.bayes` (importance-weighted prior samples of
actual networks, the last dense block integrated exactly); the theory side (the Gaussian-process
answer and its 1/n correction) is passed in as plain arrays, so that this module judges any
prediction without knowing how it was built.

Scores: ``t = (measured − theory)/se`` with the delta-method standard error of the
self-normalized importance estimator; the reference law is Student-t with ``ESS − 1`` degrees of
freedom (the effective sample size in place of the number of networks: conservative against the
normal limit of the delta method, which holds at the ESS floor of the measurement), Bonferroni
over the entries compared (:func:`critheory.validation.stats.decide`). Prior checks (kernel,
vertex) are scores over S independent networks, Student-t with S − 1 degrees of freedom.

Examples
--------
>>> import numpy as np
>>> from critheory.simulation.bayes import OutputLaws, exact_posterior
>>> G = np.tile(np.array([[1.0, 0.5], [0.5, 1.0]]), (200, 1, 1))
>>> post = exact_posterior(OutputLaws(np.zeros((200, 2)), G), [0], [1], [1.0], 0.5)
>>> c = compare_posterior(np.array([0.5 / 1.5]), post)
>>> c.verdict
'consistent'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError
from critheory.validation.compare import ALPHA, z_scores
from critheory.validation.stats import decide

__all__ = ["PosteriorComparison", "PriorComparison", "compare_posterior", "compare_theories",
           "compare_prior", "compare_metric_shift"]


def _array(name: str, value, shape: tuple) -> np.ndarray:
    try:
        a = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be an array of numbers") from None
    if a.shape != shape:
        raise InvalidArgumentError(f"{name} must have shape {shape}, got {a.shape}")
    return a


def _upper(a: np.ndarray) -> np.ndarray:
    """The entries on and above the diagonal of a symmetric matrix (the independent ones)."""
    return a[np.triu_indices(a.shape[0])]


@dataclass(frozen=True, eq=False)
class PosteriorComparison:
    """One theory's posterior beside the measured one.

    Attributes
    ----------
    label : str
    theory_mean, measured_mean, mean_stderr, mean_z : ndarray (b,)
    theory_cov, measured_cov, cov_stderr, cov_z : ndarray (b, b) or None
    verdict : str
        ``consistent``, ``inconsistent`` or ``undetermined`` (Bonferroni over the mean and the
        independent covariance entries at level ``alpha``).
    z_crit, dof, alpha : float
    ess : float
    reference : str
    """

    __repr__ = short_repr

    label: str
    theory_mean: np.ndarray
    measured_mean: np.ndarray
    mean_stderr: np.ndarray
    mean_z: np.ndarray
    theory_cov: np.ndarray | None
    measured_cov: np.ndarray
    cov_stderr: np.ndarray
    cov_z: np.ndarray | None
    verdict: str
    z_crit: float
    dof: float
    alpha: float
    ess: float
    reference: str

    @property
    def max_abs_z(self) -> float:
        zs = [self.mean_z] + ([] if self.cov_z is None else [self.cov_z])
        allz = np.concatenate([np.ravel(z) for z in zs])
        return float(np.nanmax(np.abs(allz))) if np.isfinite(allz).any() else math.nan

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in (
            "label", "theory_mean", "measured_mean", "mean_stderr", "mean_z", "theory_cov",
            "measured_cov", "cov_stderr", "cov_z", "verdict", "z_crit", "dof", "alpha", "ess",
            "reference", "max_abs_z")})


def compare_posterior(theory_mean, measured, *, theory_cov=None, label: str = "theory",
                      alpha: float = ALPHA) -> PosteriorComparison:
    """A theory's posterior mean (and covariance) of the test outputs against the measured
    posterior of finite networks (:class:`critheory.simulation.bayes.MeasuredPosterior`).

    Parameters
    ----------
    theory_mean : array (b,)
    measured : MeasuredPosterior
    theory_cov : array (b, b), optional
    label : str
        A name for the theory (``gp``, ``nlo``).
    alpha : float
        Family-wise level of the verdict.
    """
    b = measured.mean.shape[0]
    tm = _array("theory_mean", theory_mean, (b,))
    mz = z_scores(measured.mean, measured.mean_stderr, tm)
    zs = [mz]
    tc = cz = None
    if theory_cov is not None:
        tc = _array("theory_cov", theory_cov, (b, b))
        cz = z_scores(measured.cov, measured.cov_stderr, tc)
        zs.append(_upper(cz))
    dof = measured.dof
    d = decide(zs, alpha, dof)
    ref = (f"self-normalized importance estimator of {measured.networks} networks "
           f"(ESS {measured.ess:.0f}), delta-method standard error, Student-t with ESS - 1 = "
           f"{dof:.0f} degrees of freedom, Bonferroni over {d.n_compared} entries")
    return PosteriorComparison(label, tm, measured.mean, measured.mean_stderr, mz, tc,
                               measured.cov, measured.cov_stderr, cz, d.verdict, d.crit, dof,
                               float(alpha), measured.ess, ref)


def compare_theories(measured, theories: Mapping[str, tuple], *, alpha: float = ALPHA) -> dict:
    """Several theories side by side: ``theories`` maps a label (``gp``, ``nlo``) to ``(mean,
    cov or None)``. Besides each :func:`compare_posterior`, for every theory after the first the
    share of the measured shift from the first that it accounts for: ``shift_measured =
    measured − first`` with its standard error and ``shift_predicted = theory − first`` (so
    ``(shift_measured − shift_predicted)/se`` is that theory's score).

    Returns a dict with ``comparisons`` (label -> PosteriorComparison) and ``shifts`` (label ->
    dict of arrays).
    """
    if not theories:
        raise InvalidArgumentError("compare_theories needs at least one theory")
    comps = {k: compare_posterior(m, measured, theory_cov=c, label=k, alpha=alpha)
             for k, (m, c) in theories.items()}
    labels = list(theories)
    base = comps[labels[0]].theory_mean
    shifts = {}
    for k in labels[1:]:
        sm = measured.mean - base
        sp = comps[k].theory_mean - base
        with np.errstate(divide="ignore", invalid="ignore"):
            shifts[k] = {"shift_measured": sm, "shift_stderr": measured.mean_stderr,
                         "shift_predicted": sp,
                         "shift_z_from_" + labels[0]: sm / measured.mean_stderr}
    return {"comparisons": comps, "shifts": shifts}


@dataclass(frozen=True, eq=False)
class PriorComparison:
    """Theory kernel (and vertex) against the measured ones over S networks (Student-t, S − 1
    degrees of freedom, Bonferroni over the independent entries)."""

    __repr__ = short_repr

    kernel_z: np.ndarray
    vertex_z: np.ndarray | None
    verdict: str
    z_crit: float
    dof: float
    alpha: float

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in (
            "kernel_z", "vertex_z", "verdict", "z_crit", "dof", "alpha")})


def _vertex_independent(v: np.ndarray) -> np.ndarray:
    """The entries ``V_(ab)(cd)`` with ``a <= b``, ``c <= d`` and ``(a, b) <= (c, d)``."""
    m = v.shape[0]
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    return np.array([v[p + q] for i, p in enumerate(pairs) for q in pairs[i:]])


def compare_prior(kernel_theory, measured_kernel, vertex_theory=None, measured_vertex=None, *,
                  alpha: float = ALPHA) -> PriorComparison:
    """The prior of the finite networks: a theory kernel (m, m) against
    :class:`critheory.simulation.bayes.MeasuredKernel`, and optionally a theory vertex
    (m, m, m, m; ``n Cov(Ĝ)`` at the simulated width) against
    :class:`~critheory.simulation.bayes.MeasuredVertex`."""
    m = measured_kernel.kernel.shape[0]
    kt = _array("kernel_theory", kernel_theory, (m, m))
    kz = z_scores(measured_kernel.kernel, measured_kernel.stderr, kt)
    zs = [_upper(kz)]
    vz = None
    dof = measured_kernel.dof
    if vertex_theory is not None:
        if measured_vertex is None:
            raise InvalidArgumentError("a theory vertex needs the measured vertex")
        vt = _array("vertex_theory", vertex_theory, (m, m, m, m))
        vz = z_scores(measured_vertex.vertex, measured_vertex.stderr, vt)
        zs.append(_vertex_independent(vz))
        dof = min(dof, measured_vertex.dof)
    d = decide(zs, alpha, dof)
    return PriorComparison(kz, vz, d.verdict, d.crit, dof, float(alpha))


def compare_metric_shift(theory_shift, measured, *, alpha: float = ALPHA) -> dict:
    """A predicted posterior change of the metric ``E_w[Ĝ] − E[Ĝ]`` (m, m; zero for the Gaussian
    process) against the measured one: z-scores and the verdict (independent entries)."""
    m = measured.metric_shift.shape[0]
    ts = _array("theory_shift", theory_shift, (m, m))
    z = z_scores(measured.metric_shift, measured.metric_shift_stderr, ts)
    d = decide([_upper(z)], alpha, measured.dof)
    return {"theory_shift": ts, "measured_shift": measured.metric_shift,
            "stderr": measured.metric_shift_stderr, "z": z, "verdict": d.verdict,
            "z_crit": d.crit, "dof": measured.dof, "alpha": float(alpha)}
