"""The infinite-width prediction of trained networks beside trained finite ensembles.

The theory side is :func:`critheory.theory.ntk.trained.trained_prediction`; the measured side
:func:`critheory.simulation.train.train_ensemble` (S independent networks). Scores
``t = (measured − theory)/se`` with the sample's standard errors; the reference law is
Student-t with ``S − 1`` degrees of freedom, Bonferroni over the entries compared
(:func:`critheory.validation.stats.decide`, the common validation room):

* the trained test outputs: their mean (``se = std/√S``) and their covariance (the independent
  entries; ``se = std_s(d_i d_j)/√S``, the delta method of a sample covariance);
* the empirical NTK at initialization: its mean per independent entry against the
  infinite-width Θ, and for every input (the diagonal ``Θ̂_aa``) the order-1/n mean
  ``Θ + Θ^{(1)}/n`` and the variance ``Var Θ̂_aa`` of :mod:`critheory.theory.ntk.finite` where the
  network has order-1/n rules (MLPs; None otherwise). The variance's standard error is the
  delta method of a sample variance, ``√((m₄ − s⁴)/S)``.

Error floors: a relative rounding floor (1e-10 of the outputs' scale: a test output the fit
determines exactly has zero spread in theory and in every network), and against a prediction
at convergence the bound ``‖M‖ max_s |r_s(T)|`` on how far each network still was from its
limit when it stopped (``|r(T)| <= tol |r(0)|``), added to the errors as a bias bound.

The infinite-width answer differs from a width-n ensemble by O(L/n): a verdict of
``inconsistent`` at large S may be that shift, resolved (the note in ``docs/ntk.md`` §8 has
the measured shifts).

Examples
--------
>>> import critheory as ct
>>> x = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
>>> net = ct.network("mlp", "tanh")
>>> p = ct.trained_prediction(net, 1.0, 0.0, x, [0.5, -0.5], depth=2, eta=0.2, steps=100)
>>> e = ct.train_ensemble(net, 1.0, 0.0, x, [0.5, -0.5], 2, 64, 64, eta=0.2, steps=100)
>>> c = compare_trained(p, e)
>>> c.mean_z.shape, c.ntk_z.shape
((1,), (3, 3))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError
from critheory.validation.compare import ALPHA, z_scores
from critheory.validation.stats import decide

__all__ = ["TrainedComparison", "compare_trained", "ntk_finite_width"]

#: relative rounding floor of the standard errors (module docstring of ``compare_trained``)
_ROUNDING = 1e-10


def _upper(a: np.ndarray) -> np.ndarray:
    return a[np.triu_indices(a.shape[0])]


@dataclass(frozen=True, eq=False)
class TrainedComparison:
    """Theory beside a trained ensemble (module docstring).

    Attributes
    ----------
    theory_mean, measured_mean, mean_stderr, mean_z : ndarray (b,)
    theory_cov, measured_cov, cov_stderr, cov_z : ndarray (b, b)
    verdict : str
        Of the trained outputs (mean and independent covariance entries, Bonferroni).
    ntk_theory, ntk_measured, ntk_stderr, ntk_z : ndarray (m, m)
        The initial NTK's mean against the infinite-width Θ.
    ntk_verdict : str
    ntk_mean_nlo, ntk_mean_nlo_z : ndarray (m,) or None
        ``Θ_aa + Θ^{(1)}_aa/n`` and the score of the measured diagonal against it.
    ntk_variance_theory, ntk_variance_measured, ntk_variance_stderr, ntk_variance_z :
        ndarray (m,) or None
        ``Var Θ̂_aa`` at width n, predicted and measured.
    converged_fraction : float
    z_crit, dof, alpha : float
    reference : str

    Examples
    --------
    >>> import critheory as ct
    >>> x, y = [[1.0], [-1.0], [0.5]], [1.0, 0.0]
    >>> p = ct.trained_prediction("mlp", 1.0, 0.5, x, y, depth=1, activation="tanh")
    >>> e = ct.train_ensemble("tanh", 1.0, 0.5, x, y, 1, 4, 100, eta=0.4, steps=50)
    >>> c = ct.compare_trained(ct.trained_prediction("mlp", 1.0, 0.5, x, y, depth=1,
    ...                        activation="tanh", eta=0.4, steps=50), e)
    >>> isinstance(c, ct.TrainedComparison), c.mean_z.shape
    (True, (1,))
    """

    __repr__ = short_repr

    theory_mean: np.ndarray
    measured_mean: np.ndarray
    mean_stderr: np.ndarray
    mean_z: np.ndarray
    theory_cov: np.ndarray
    measured_cov: np.ndarray
    cov_stderr: np.ndarray
    cov_z: np.ndarray
    verdict: str
    ntk_theory: np.ndarray
    ntk_measured: np.ndarray
    ntk_stderr: np.ndarray
    ntk_z: np.ndarray
    ntk_verdict: str
    ntk_mean_nlo: np.ndarray | None
    ntk_mean_nlo_z: np.ndarray | None
    ntk_variance_theory: np.ndarray | None
    ntk_variance_measured: np.ndarray | None
    ntk_variance_stderr: np.ndarray | None
    ntk_variance_z: np.ndarray | None
    converged_fraction: float
    z_crit: float
    dof: float
    alpha: float
    reference: str

    @property
    def max_abs_z(self) -> float:
        """The largest |score| of the trained outputs (mean and covariance)."""
        z = np.concatenate([self.mean_z.ravel(), _upper(self.cov_z)])
        return float(np.nanmax(np.abs(z)))

    def to_dict(self) -> dict:
        return jsonable({f: getattr(self, f) for f in self.__dataclass_fields__}
                        | {"max_abs_z": self.max_abs_z})


def ntk_finite_width(prediction, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(Θ_aa + Θ^{(1)}_aa/n, Var Θ̂_aa)`` of one output neuron at width n for every input
    (:func:`critheory.theory.ntk.finite.finite_width_fields` at ``q0 = |x_a|²/n0`` with the
    prediction's rates); None where the network has no order-1/n NTK rules (refused there)."""
    from critheory.errors import CritheoryError
    from critheory.theory.ntk.finite import check_network, finite_width_fields

    p = prediction
    net = p.network
    try:
        check_network(net)
    except CritheoryError:
        return None
    x = np.asarray(p.inputs)
    q = np.einsum("ai,ai->a", x, x) / x.shape[1]
    mean = np.empty(q.size)
    var = np.empty(q.size)
    for a, q0 in enumerate(q):
        f = finite_width_fields(net, p.weight_var, p.bias_var, p.lambda_b, p.lambda_w, float(q0))
        mean[a] = p.ntk[a, a] + f["theta1"][-1] / width
        var[a] = f["variance"][-1] / width
    return mean, var


def compare_trained(prediction, ensemble, *, alpha: float = ALPHA) -> TrainedComparison:
    """A :class:`~critheory.theory.ntk.trained.TrainedPrediction` against a
    :class:`~critheory.simulation.train.TrainedEnsemble` of the same setting.

    Raises
    ------
    InvalidArgumentError
        Different inputs, targets, depth, rates or step counts; a prediction at convergence
        against an ensemble in which some network has not converged.

    Examples
    --------
    >>> import critheory as ct
    >>> x, y = [[1.0], [0.5]], [1.0]        # (w, b) fitted to one point: a line of solutions
    >>> p = ct.trained_prediction("mlp", 1.0, 0.5, x, y, depth=1, activation="tanh")
    >>> e = ct.train_ensemble("tanh", 1.0, 0.5, x, y, 1, 4, 2000, eta=0.4, steps=None)
    >>> ct.compare_trained(p, e).verdict       # one layer: the theory is exact
    'consistent'
    """
    p, e = prediction, ensemble
    if (np.shape(p.inputs) != np.shape(e.inputs) or not np.allclose(p.inputs, e.inputs)
            or tuple(p.train) != tuple(e.train)
            or not np.allclose(p.targets, e.targets) or p.depth != e.depth
            or not np.allclose(p.lambda_b, e.lambda_b)
            or not np.allclose(p.lambda_w, e.lambda_w)):
        raise InvalidArgumentError("the prediction and the ensemble are of different settings "
                                   "(inputs, targets, depth or learning rates)")
    if p.steps is None:
        if not np.all(e.converged):
            raise InvalidArgumentError(
                f"{int((~e.converged).sum())} of {e.networks} networks have not converged "
                f"(tol {e.tol:g}): compare them with the prediction after {e.steps} steps")
    elif p.steps != e.steps or not math.isclose(p.eta, e.eta, rel_tol=1e-12):
        raise InvalidArgumentError(f"the prediction is for {p.steps} steps of eta = {p.eta:g}, "
                                   f"the ensemble ran {e.steps} steps of eta = {e.eta:g}")
    dof = e.dof
    # rounding floor of the errors: a test output the fit determines exactly (as many training
    # inputs as a linear model has parameters) has zero spread in theory and in every network
    scale = max(float(np.max(np.abs(p.targets))), math.sqrt(float(np.max(np.diag(p.kernel)))))
    mse = np.maximum(e.mean_stderr, _ROUNDING * scale)
    cse = np.maximum(e.covariance_stderr, _ROUNDING * scale * scale)
    if p.steps is None:
        # stopped at |r(T)| <= tol |r(0)|, not at T = ∞: in the linear dynamics the rest of the
        # way is z_B(∞) − z_B(T) = −Θ_BA Θ_AA⁻¹ r(T), at most ‖M‖ max_s |r_s(T)| per network: a
        # bias bound added to the errors (mean: b; covariance: b (sd_i + sd_j) + b²)
        b = float(np.linalg.norm(p.response, 2) * np.max(e.residual_norm))
        sd = np.sqrt(np.maximum(np.diag(e.covariance), 0.0))
        mse = mse + b
        cse = cse + b * (sd[:, None] + sd[None, :]) + b * b
    mz = z_scores(e.mean, mse, p.mean)
    cz = z_scores(e.covariance, cse, p.covariance)
    d = decide([mz, _upper(cz)], alpha, dof)
    nz = z_scores(e.ntk_mean, e.ntk_stderr, p.ntk)
    dn = decide([_upper(nz)], alpha, dof)
    nlo = nloz = vt = vm = vse = vz = None
    fw = ntk_finite_width(p, e.width)
    if fw is not None:
        nlo, vt = fw
        diag = np.einsum("saa->sa", e.ntk)
        nloz = z_scores(diag.mean(axis=0), diag.std(axis=0, ddof=1) / math.sqrt(e.networks),
                        nlo)
        dc = diag - diag.mean(axis=0)
        vm = diag.var(axis=0, ddof=1)
        m4 = (dc ** 4).mean(axis=0)
        vse = np.sqrt(np.maximum(m4 - vm * vm, 0.0) / e.networks)
        vz = z_scores(vm, vse, vt)
    ref = (f"{e.networks} trained networks of width {e.width}, Student-t with S - 1 = "
           f"{dof:.0f} degrees of freedom, Bonferroni over {d.n_compared} entries")
    return TrainedComparison(p.mean, e.mean, mse, mz, p.covariance, e.covariance, cse, cz, d.verdict, p.ntk, e.ntk_mean,
                             e.ntk_stderr, nz, dn.verdict, nlo, nloz, vt, vm, vse, vz,
                             float(e.converged.mean()), d.crit, dof, float(alpha), ref)
