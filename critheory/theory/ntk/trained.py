"""What a network trained by gradient descent predicts, at infinite width (PDLT ch. 10, §10.2).

At infinite width the NTK ``Θ`` is deterministic and constant during training, and the network
is its linearization around the initialization: full-batch gradient descent on
``L = ½ Σ_{α∈A} (z_α − y_α)²`` with the learning-rate tensor of ``docs/ntk.md`` (rate ``λ_b``
per bias, ``λ_W/n_in`` per weight) times a global step ``η`` moves every output by
``z_δ(t+1) = z_δ(t) − η Σ_α Θ_δα (z_α(t) − y_α)``. On the training set A the residual
``r(t) = z_A(t) − y`` obeys ``r(t+1) = (I − ηΘ_AA) r(t)``; summing the geometric series,

    z_δ(t) = z_δ(0) − Θ_δA Θ_AA⁻¹ [I − (I − ηΘ_AA)^t] (z_A(0) − y)            (finite steps)
    z_δ(∞) = z_δ(0) − Θ_δA Θ_AA⁻¹ (z_A(0) − y)                                 (convergence)

(convergence needs every eigenvalue of ``I − ηΘ_AA`` inside (−1, 1): ``0 < η < 2/λ_max(Θ_AA)``).
The initial outputs are the Gaussian process ``z(0) ~ N(0, K)`` (K the kernel of the output
layer), independent of the deterministic Θ, so the trained output on the test inputs B is
Gaussian with, writing ``M = Θ_BA Θ_AA⁻¹ P_t`` (``P_t = I − (I − ηΘ_AA)^t``, ``P_∞ = I``),

    mean        m = M y
    covariance  Σ = K_BB − M K_AB − K_BA Mᵀ + M K_AA Mᵀ.

At convergence the mean is the kernel-regression predictor with the NTK, ``Θ_BA Θ_AA⁻¹ y``
(independent of η and of an overall scale of the rates), and the covariance is the variance of
the initial function not removed by the fit: it does **not** vanish at the training inputs'
"ghosts" unless ``K ∝ Θ`` (e.g. a linear model of one layer, where ``Σ = K_BB − K_BA K_AA⁻¹
K_AB``, the Gaussian-process posterior). These are PDLT's infinite-width kernel-learning
results (§10.2; the book's equation numbers were not confirmed here: the formulas above were
derived directly and are checked in ``tests/test_train.py`` against deep linear networks, the
iterated linear dynamics and trained ensembles).

Θ and K on several inputs go through the one fold pairwise: the NTK theory's two-input fields
(:func:`critheory.theory.ntk.depth.layer_coefficients`, ``Θ_12`` rules of
:mod:`critheory.theory.ntk.rules`) give ``K^L_ab``, ``Θ^L_ab`` for every pair of distinct
inputs, so that any per-layer learning-rate schedule applies.

Regime: infinite width (the finite-width corrections are of order L/n: PDLT ch. 11; the
mean's order-1/n shift, ``width=n``: :mod:`critheory.theory.ntk.trained_nlo`), the
stable range ``η < 2/λ_max``; refused in one line: ``η`` outside it, a singular ``Θ_AA``
(repeated or, for a positively homogeneous network, collinear training inputs).

Examples
--------
>>> import critheory as ct
>>> p = ct.trained_prediction(ct.network("mlp", "relu"), 2.0, 0.0, [[1.0, 0.0], [0.0, 1.0],
...                           [0.6, 0.8]], [0.5, -0.5], depth=2)
>>> p.mean.shape, p.covariance.shape, p.train, p.test
((1,), (1, 1), (0, 1), (2,))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.common.checks import (check_bias_var, check_int, check_per_layer, check_targets,
                                     check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.limits import MAX_DEPTH_DATA
from critheory.errors import InvalidArgumentError
from critheory.theory.finitewidth.data import check_inputs
from critheory.theory.ntk.depth import layer_coefficients, network_maps

__all__ = ["TrainedPrediction", "trained_prediction", "linear_response", "MAX_CONDITION"]

#: Largest condition number of the training NTK ``Θ_AA`` accepted (beyond it the solve loses more
#: than 10 of float64's 16 digits: repeated or collinear training inputs).
MAX_CONDITION = 1e10


@dataclass(frozen=True, eq=False)
class TrainedPrediction:
    """The infinite-width prediction of a network trained by gradient descent on MSE.

    Attributes
    ----------
    mean : ndarray (b,)
        Ensemble mean of the trained outputs on the test inputs.
    covariance : ndarray (b, b)
        Their covariance over initializations.
    kernel, ntk : ndarray (m, m)
        ``K^L`` and ``Θ^L`` of the output on all inputs.
    response : ndarray (b, a)
        ``M = Θ_BA Θ_AA⁻¹ P_t``: the trained test outputs are ``z_B(0) − M (z_A(0) − y)``.
    eta : float or None
        The global step η (None: gradient flow or any stable η, at convergence).
    steps : int or None
        Steps t (None: convergence).
    eta_max : float
        ``2/λ_max(Θ_AA)``: the stable range is ``0 < η < eta_max``.
    lambda_b, lambda_w : ndarray (L,)
        The learning rates per layer.
    train, test : tuple of int
    targets : ndarray (a,)
    inputs : ndarray (m, n0)
    activation, arch : str
    weight_var, bias_var : float
    depth : int
    network : Network
    width : int or None
        The hidden width n of the order-1/n mean (None: infinite width only).
    nlo_coefficient : ndarray (b,) or None
        ``m1``: the ensemble mean at width n is ``mean + m1/n + O(1/n²)``
        (:mod:`critheory.theory.ntk.trained_nlo`); :attr:`mean_nlo` is that sum.
    nlo_terms : dict or None
        ``m1`` by source: ``ntk_mean``, ``ntk_variance``, ``dntk``, ``ddntk``.

    Examples
    --------
    >>> import critheory as ct
    >>> p = ct.trained_prediction("mlp", 2.0, 0.0, [[1.0], [0.5]], [1.0], depth=2,
    ...                           lambda_b=0.0)
    >>> isinstance(p, ct.TrainedPrediction), round(float(p.mean[0]), 12)   # ReLU, weights: ∝ x
    (True, 0.5)
    """

    mean: np.ndarray
    covariance: np.ndarray
    kernel: np.ndarray
    ntk: np.ndarray
    response: np.ndarray
    eta: float | None
    steps: int | None
    eta_max: float
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    train: tuple
    test: tuple
    targets: np.ndarray
    inputs: np.ndarray
    activation: str
    arch: str
    weight_var: float
    bias_var: float
    depth: int
    #: the network (the one block description; not in ``to_dict``)
    network: object = None
    #: the hidden width n of the order-1/n prediction (None: infinite width only)
    width: int | None = None
    #: ``m1`` on the test inputs: ``E[z_B] = mean + m1/n + O(1/n²)`` (None without ``width``)
    nlo_coefficient: np.ndarray | None = None
    #: ``m1`` split by source (``ntk_mean``, ``ntk_variance``, ``dntk``, ``ddntk``)
    nlo_terms: dict | None = None

    @property
    def mean_nlo(self) -> np.ndarray | None:
        """The ensemble mean at width n to order 1/n, ``mean + nlo_coefficient/width``
        (:mod:`critheory.theory.ntk.trained_nlo`; None without ``width``)."""
        if self.nlo_coefficient is None:
            return None
        return self.mean + self.nlo_coefficient / float(self.width)

    def __repr__(self) -> str:
        when = "convergence" if self.steps is None else f"{self.steps} steps of eta={self.eta:g}"
        return (f"TrainedPrediction({self.arch}, {self.activation}, L={self.depth}, "
                f"{len(self.train)} train, {len(self.test)} test, {when})")

    @property
    def variance(self) -> np.ndarray:
        """The diagonal of :attr:`covariance`."""
        return np.diag(self.covariance).copy()

    def to_dict(self) -> dict:
        """JSON-ready dict: ``prediction_kernel`` (the mean), ``prediction_variance`` (the
        diagonal of the covariance), ``prediction_covariance``, the kernels and, with a width,
        ``prediction_nlo`` (the mean to order 1/n), ``prediction_nlo_coefficient`` (``m1``),
        ``prediction_nlo_terms`` (``m1`` by source) and ``depth_to_width`` (L/n)."""
        return jsonable({
            "activation": self.activation, "arch": self.arch, "weight_var": self.weight_var,
            "bias_var": self.bias_var, "depth": self.depth, "inputs": self.inputs,
            "train": self.train, "test": self.test, "train_targets": self.targets,
            "lambda_b": self.lambda_b, "lambda_w": self.lambda_w, "eta": self.eta,
            "steps": self.steps, "eta_max": self.eta_max, "kernel": self.kernel,
            "ntk": self.ntk, "prediction_kernel": self.mean,
            "prediction_variance": self.variance, "prediction_covariance": self.covariance,
            "width": self.width, "prediction_nlo": self.mean_nlo,
            "prediction_nlo_coefficient": self.nlo_coefficient,
            "prediction_nlo_terms": self.nlo_terms,
            "depth_to_width": None if self.width is None else self.depth / self.width})


def linear_response(ntk_ba, ntk_aa, eta: float | None = None, steps: int | None = None
                    ) -> tuple[np.ndarray, float]:
    """``M = Θ_BA Θ_AA⁻¹ [I − (I − ηΘ_AA)^t]`` (``t = None``: convergence, ``M = Θ_BA Θ_AA⁻¹``)
    and ``eta_max = 2/λ_max(Θ_AA)``, with the refusals of the module docstring.

    >>> M, emax = linear_response([[1.0]], [[2.0]], eta=0.5, steps=1)
    >>> M.tolist(), emax                 # one step: η Θ_BA = 0.5
    ([[0.5]], 1.0)
    """
    Tba = np.atleast_2d(np.asarray(ntk_ba, dtype=float))
    Taa = np.atleast_2d(np.asarray(ntk_aa, dtype=float))
    Taa = 0.5 * (Taa + Taa.T)
    lam, V = np.linalg.eigh(Taa)
    if not np.all(np.isfinite(lam)) or not lam[-1] > 0:
        raise InvalidArgumentError("the training NTK Θ_AA is not positive: no gradient "
                                   "descent moves the training outputs")
    if not lam[0] > lam[-1] / MAX_CONDITION:
        raise InvalidArgumentError(
            f"the training NTK Θ_AA is singular (condition number > {MAX_CONDITION:.0e}): "
            "repeated training inputs, or collinear ones in a positively homogeneous network")
    eta_max = 2.0 / float(lam[-1])
    if eta is not None:
        eta = float(eta)
        if not (math.isfinite(eta) and 0 < eta < eta_max):
            raise InvalidArgumentError(
                f"step size eta = {eta:g} is outside the stable range 0 < eta < 2/lambda_max"
                f"(Theta_AA) = {eta_max:.6g}: gradient descent diverges")
    if steps is None:
        f = 1.0 / lam
    else:
        if eta is None:
            raise InvalidArgumentError("a finite number of steps needs the step size eta")
        # (1 − (1 − ηλ)^t)/λ: through expm1/log1p where ηλ < 1/2 (no cancellation for small
        # ηλ), the plain power where 1 − ηλ may be negative
        u = eta * lam
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            small = -np.expm1(steps * np.log1p(-np.minimum(u, 0.5)))
            f = np.where(u < 0.5, small, 1.0 - (1.0 - u) ** steps) / lam
    M = Tba @ (V * f) @ V.T
    return M, eta_max


def trained_prediction(arch, weight_var: float, bias_var: float, inputs, targets, depth: int,
                       *, lambda_b=1.0, lambda_w=1.0, eta: float | None = None,
                       steps: int | None = None, activation=None,
                       width: int | None = None) -> TrainedPrediction:
    """The infinite-width ensemble of networks trained by full-batch gradient descent on MSE.

    Parameters
    ----------
    arch : Network, LayerMaps or a registry name (with ``activation``, default ReLU)
        A one-token network whose blocks have NTK rules.
    weight_var, bias_var : float
        σ_w², σ_b² (dense blocks with their own keep theirs).
    inputs : array_like (m, n0)
        The first ``len(targets)`` are the training set A, the rest the test set B (>= 1 each).
    targets : array_like (a,)
        Training targets of the one output neuron.
    depth : int
        L weight layers (the output is ``z^(L)``).
    lambda_b, lambda_w : float or array (L,)
        Bias rate and weight rate (per fan-in) per layer (defaults as ``critheory ntk``: 1).
    eta : float, optional
        The global step η multiplying every rate; needed with ``steps``; checked against the
        stable range ``η < 2/λ_max(Θ_AA)`` wherever given.
    steps : int, optional
        Number of gradient-descent steps t (None: convergence, t → ∞).
    activation : str or Activation, optional
        With a registry name (default ``relu``).
    width : int, optional
        The hidden width n: adds the order-1/n mean ``mean_nlo``
        (:mod:`critheory.theory.ntk.trained_nlo`; needs ``eta``, ``width > depth``, and a
        network whose dNTK and ddNTK on several inputs have rules: a smooth activation).

    Returns
    -------
    TrainedPrediction

    Raises
    ------
    InvalidArgumentError
        Bad arguments, a block without an NTK rule, a singular training NTK (repeated training
        inputs), η outside the stable range; with ``width``: no ``eta``, ``width <= depth``
        (the 1/n expansion needs L ≪ n), a kinked activation (ReLU: the dNTK on several
        inputs is not defined by these rules), no convergence within the step budget.

    Examples
    --------
    >>> import critheory as ct
    >>> p = ct.trained_prediction("mlp", 1.0, 1.0, [[1.0], [-1.0]], [2.0], depth=1,
    ...                           activation="linear")
    >>> # one layer: Θ = 1 + x x', K = 1 + x x' (σ_w² = σ_b² = λ = 1): Θ_BA/Θ_AA y = 0
    >>> float(p.mean[0]), float(p.covariance[0, 0])
    (0.0, 2.0)
    """
    maps = network_maps(arch, activation, None)
    net = maps.network
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    L = check_int("depth", depth, 1)
    if L > MAX_DEPTH_DATA:
        raise InvalidArgumentError(f"depth {L} is beyond the supported {MAX_DEPTH_DATA} (every "
                                   "pair of inputs is iterated layer by layer)")
    x = check_inputs(inputs)
    m, n0 = x.shape
    y = check_targets(targets, m)
    if steps is not None:
        steps = check_int("steps", steps, 0)
    if width is not None:
        width = check_int("width", width, 1)
        if eta is None:
            raise InvalidArgumentError("the order-1/n prediction needs the step eta (its 1/n "
                                       "shift depends on it)")
        if width <= L:
            raise InvalidArgumentError(f"the order-1/n prediction needs depth << width (the "
                                       f"expansion is in L/n), got L = {L}, n = {width}")
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    # distinct inputs (equal rows give equal rows of K and Θ exactly)
    reps: list[int] = []
    where = np.empty(m, dtype=int)
    for i in range(m):
        for k, j in enumerate(reps):
            if np.array_equal(x[i], x[j]):
                where[i] = k
                break
        else:
            where[i] = len(reps)
            reps.append(i)
    q = x[reps] @ x[reps].T / n0
    if np.any(sb + sw * np.diag(q) <= 0):
        raise InvalidArgumentError("an input has zero kernel K¹ = σ_b² + σ_w²|x|²/n0 = 0 (a "
                                   "zero input without bias): its output is zero")
    r = len(reps)
    K = np.empty((r, r))
    T = np.empty((r, r))

    def ntk(B, W, c):
        t = 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            for i in range(L):
                t = lb[i] * B[i] + lw[i] * W[i] + c[i] * t
        return t

    for a in range(r):
        co = layer_coefficients(maps, sw, sb, L, float(q[a, a]))
        K[a, a], T[a, a] = co["K"][-1], ntk(co["B"], co["W"], co["c"])
        for b in range(a + 1, r):
            q12 = float(np.clip(q[a, b], -math.sqrt(q[a, a] * q[b, b]),
                                math.sqrt(q[a, a] * q[b, b])))
            co = layer_coefficients(maps, sw, sb, L, float(q[a, a]), q12, float(q[b, b]))
            K[a, b] = K[b, a] = co["K12"][-1]
            T[a, b] = T[b, a] = ntk(co["B12"], co["W12"], co["c12"])
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        raise InvalidArgumentError("the kernel or the NTK left float64 (a runaway or collapsed "
                                   "kernel at this depth): no trained prediction there")
    ix = np.ix_(where, where)
    K, T = K[ix], T[ix]
    A = list(range(y.size))
    Bt = list(range(y.size, m))
    M, eta_max = linear_response(T[np.ix_(Bt, A)], T[np.ix_(A, A)], eta, steps)
    mean = M @ y
    KBA = K[np.ix_(Bt, A)]
    cov = K[np.ix_(Bt, Bt)] - M @ KBA.T - KBA @ M.T + M @ K[np.ix_(A, A)] @ M.T
    cov = 0.5 * (cov + cov.T)
    coef = terms = None
    if width is not None:
        from critheory.theory.ntk.trained_nlo import mean_shift, output_statistics

        st = output_statistics(net, float(sw), float(sb), q, L, lb, lw)
        st = {k: v[np.ix_(*([where] * v.ndim))] for k, v in st.items()}
        sh = mean_shift(st["ntk"], st["kernel"], st["ntk_correction"], st["ntk_cov"],
                        st["tau_z"], st["omega"], st["nu"], y, eta=eta, steps=steps)
        coef = sh.coefficient[Bt]
        terms = {k: v[Bt] for k, v in sh.terms.items()}
    return TrainedPrediction(mean, cov, K, T, M, None if eta is None else float(eta), steps,
                             eta_max, lb, lw, tuple(A), tuple(Bt), y, x, net.activation.name,
                             maps.describe(), float(sw), float(sb), L, net, width, coef, terms)
