"""Bayesian inference with a finite network: the network's prior on a set of inputs (its
kernel, 1/n kernel shift and four-point vertex at the output, :mod:`critheory.theory.finitewidth
.data`) conditioned on training targets (:mod:`.posterior`).

The first ``len(targets)`` inputs are the training set, the rest the test inputs. The output is
one neuron of layer L (targets are scalars; several output neurons are independent copies at
infinite width and couple only through the vertex).

Examples
--------
>>> import numpy as np
>>> import critheory as ct
>>> x = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
>>> b = ct.bayes_posterior(ct.network("mlp", "relu"), 2.0, 0.0, x, [0.5, -0.3], depth=3,
...                        width=32, noise=0.01)
>>> b.posterior.mean_gp.shape, b.train, b.test
((1,), (0, 1), (2,))
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from critheory.common.checks import check_int
from critheory.common.jsonable import jsonable
from critheory.common.limits import MAX_WIDTH_FINITE_WIDTH
from critheory.errors import InvalidArgumentError
from critheory.theory.bayes.nearly_gaussian import NearlyGaussian
from critheory.theory.bayes.posterior import (Posterior, RepresentationShift, posterior,
                                              representation_shift)
from critheory.theory.finitewidth.data import DataStatistics, data_statistics

__all__ = ["BayesPrediction", "bayes_posterior", "ExpansionWarning", "CORRECTION_MAX"]

#: the 1/n correction may be at most this fraction of the leading order before a warning
CORRECTION_MAX = 0.5


class ExpansionWarning(UserWarning):
    """A 1/n correction as large as the leading order: the expansion does not hold there."""


@dataclass(frozen=True, eq=False)
class BayesPrediction:
    """The finite-width prior of a network on its inputs and the posterior on the test inputs.

    Attributes
    ----------
    statistics : DataStatistics
        Kernel, 1/n kernel shift and vertex at every depth.
    prior : NearlyGaussian
        The output's distribution on all inputs at width n, to order 1/n.
    posterior : Posterior
        GP (leading order) and NLO (first order in 1/n) posterior mean and covariance.
    representation_shift : RepresentationShift or None
        The posterior change of the last layer's metric ``Ĝ`` (the output's covariance given
        the layers below, PDLT §6.4's representation learning); None where the output is not
        ``W x + b`` of the layer below alone (a residual unit: its skip path fluctuates too).
    train, test : tuple of int
    width : int
    noise : float
        Observation noise variance σ_ε².

    Examples
    --------
    >>> import critheory as ct
    >>> b = ct.bayes_posterior("mlp", 2.0, 0.1, [[1.0], [-1.0], [0.5]], [1.0, 0.0], depth=2,
    ...                        width=64, noise=0.1)
    >>> isinstance(b, ct.BayesPrediction)
    True
    >>> sorted(k for k in b.to_dict() if k.startswith("posterior_mean"))
    ['posterior_mean_gp', 'posterior_mean_nlo']
    """

    statistics: DataStatistics
    prior: NearlyGaussian
    posterior: Posterior
    representation_shift: RepresentationShift | None
    train: tuple
    test: tuple
    width: int
    noise: float

    def __repr__(self) -> str:
        return (f"BayesPrediction({self.statistics.arch}, {self.statistics.activation}, "
                f"n={self.width}, {len(self.train)} train, {len(self.test)} test, "
                f"noise={self.noise:g})")

    @property
    def correction_ratio(self) -> float:
        """How large the 1/n correction is against the leading order on the test inputs:
        the largest of ``|mean_nlo − mean_gp| / (|mean_gp| + sd_gp)`` and
        ``|var_nlo − var_gp| / var_gp`` (sd, var: the GP posterior's). Above
        :data:`CORRECTION_MAX` the first-order expansion does not describe the network."""
        p = self.posterior
        var = np.diag(p.cov_gp)
        tiny = 1e-300
        dm = np.abs(p.mean_nlo - p.mean_gp) / (np.abs(p.mean_gp) + np.sqrt(np.abs(var)) + tiny)
        dv = np.abs(np.diag(p.cov_nlo) - var) / (np.abs(var) + tiny)
        return float(max(np.max(dm), np.max(dv)))

    def to_dict(self) -> dict:
        """The JSON of ``critheory bayes`` (README: the keys)."""
        s = self.statistics
        out = {"activation": s.activation, "arch": s.arch, "weight_var": s.weight_var,
               "bias_var": s.bias_var, "depth": int(s.depths[-1]), "width": self.width,
               "noise": self.noise, "inputs": s.inputs, "train": self.train, "test": self.test,
               "train_targets": self.posterior.targets,
               "kernel": s.kernel[-1], "kernel_correction": s.kernel_correction[-1],
               "kernel_nlo": s.metric(self.width), "vertex": s.vertex[-1]}
        p = self.posterior.to_dict()
        for k in ("posterior_mean_gp", "posterior_mean_nlo", "posterior_cov_gp",
                  "posterior_cov_nlo"):
            out[k] = p[k]
        r = self.representation_shift
        out["representation_shift"] = None if r is None else r.shift
        out["correction_ratio"] = self.correction_ratio
        return jsonable(out)


def bayes_posterior(arch, weight_var: float, bias_var: float, inputs, targets, depth: int,
                    width: int, noise: float = 0.0, *, progress: bool = False
                    ) -> BayesPrediction:
    """GP and 1/n-corrected posterior of a finite network's output on test inputs.

    Parameters
    ----------
    arch : Network, LayerMaps or a registry name (ReLU then)
    weight_var, bias_var : float
        σ_w² = C_W, σ_b² = C_b.
    inputs : array_like, shape (m, n0)
        All inputs; the first ``len(targets)`` are the training set, the others the test set
        (at least one of each).
    targets : array_like
        Training targets (one output neuron), one per training input.
    depth : int
        L weight layers.
    width : int
        Hidden width n.
    noise : float
        Observation noise **variance** σ_ε² >= 0 on the training targets.
    progress : bool

    Returns
    -------
    BayesPrediction

    Raises
    ------
    InvalidArgumentError
        Bad arguments, a singular training Gram matrix, duplicate training inputs with
        different targets at zero noise, a network block without a rule.

    Examples
    --------
    >>> import critheory as ct
    >>> b = ct.bayes_posterior("mlp", 2.0, 0.0, [[1.0], [0.5]], [1.0], depth=2, width=64,
    ...                        noise=0.1)
    >>> round(float(b.posterior.mean_gp[0]), 12)   # y K₂₁/(K₁₁ + σ²) = 1/2.1 (ReLU: K ∝ x x')
    0.47619047619
    """
    n = check_int("width", width, 1)
    if n > MAX_WIDTH_FINITE_WIDTH:
        raise InvalidArgumentError(f"width {n} is beyond the supported "
                                   f"{MAX_WIDTH_FINITE_WIDTH:.0e}")
    try:
        y = np.atleast_1d(np.asarray(targets, dtype=float))
    except (TypeError, ValueError):
        raise InvalidArgumentError("targets must be numbers") from None
    if y.ndim != 1 or y.size == 0:
        raise InvalidArgumentError("targets must be a non-empty list of numbers (one per "
                                   "training input)")
    x = np.asarray(inputs, dtype=float) if not isinstance(inputs, np.ndarray) else inputs
    m = np.shape(x)[0] if np.ndim(x) else 0
    if y.size >= m:
        raise InvalidArgumentError(f"{y.size} targets for {m} inputs: the first len(targets) "
                                   "inputs are the training set and at least one test input "
                                   "must follow")
    s = data_statistics(arch, weight_var, bias_var, inputs, depth, progress=progress)
    prior = NearlyGaussian(s.kernel[-1], s.kernel_correction[-1], s.vertex[-1], n)
    train = tuple(range(y.size))
    test = tuple(range(y.size, s.kernel.shape[-1]))
    post = posterior(prior, train, test, y, noise)
    shift = representation_shift(prior, train, y, noise) if _plain_output(arch) else None
    b = BayesPrediction(s, prior, post, shift, tuple(post.train), test, n, float(noise))
    if not b.correction_ratio <= CORRECTION_MAX:
        warnings.warn(
            f"the 1/n correction of the posterior is {b.correction_ratio:.3g} times the leading "
            f"order on the test inputs (above {CORRECTION_MAX:g}): the first-order expansion "
            "does not describe a network of this width here (a wider network, observation "
            "noise > 0 or better separated training inputs)", ExpansionWarning, stacklevel=2)
    return b


def _plain_output(arch) -> bool:
    """Whether the output is ``W x + b`` of the layer below alone (its metric Ĝ carries all of
    the output's fluctuation): no residual unit."""
    from critheory.theory.meanfield.maps import architecture

    net = architecture(arch).network
    return not any(getattr(b, "branch", ()) for b in net.unit)
