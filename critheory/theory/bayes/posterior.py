"""Bayesian inference with the nearly-Gaussian prior: the posterior on test inputs at leading
order (the Gaussian process) and at next-to-leading order in 1/n, and the posterior change of the
last layer's metric ("representation learning").

Derivation (derived here; the book's treatment is PDLT §6.3–6.4, whose equation numbers we could
not confirm, and Yaida arXiv:1910.00019). Observed targets on the training inputs A are
``y = z_A + ε`` with ε ~ N(0, σ_ε² I) independent of z. Convolving the density
``(1 + κ·∂⁴/24) N(x; G)`` with the noise adds σ_ε² to the A block of G and leaves κ unchanged
(derivatives commute with convolution; Gaussian covariances add). Split x = (a, b), a on A, b on
the test inputs B, and put ``M = G_BA G_AA⁻¹``, ``Σ = G_BB − M G_AB``, ``u = G_AA⁻¹ a``,
``P = G_AA⁻¹`` and He the Hermite tensors of ``a`` with respect to G_AA. Integrating the
derivatives in b by parts (a derivative in b of a polynomial of degree < its number kills it):

* marginal: ``p(a) = N(a; G_AA) [1 + h4]``, ``h4 = κ_ijkl He_ijkl(a)/24`` (i…l in A);
* first moment: ``∫ b_γ p db = N(a; G_AA) [(M a)_γ (1 + h4) + Δ_γ]`` with
  ``Δ_γ = (1/6) κ¹_γijk He_ijk(a)``, ``κ¹_γijk = κ_γijk − M_γl κ_lijk`` (i, j, k, l in A);
* second moment: ``∫ b_γ b_δ p db = N(a; G_AA) [(Σ + M a aᵀ Mᵀ)_γδ (1 + h4)
  + (M a)_δ Δ_γ + (M a)_γ Δ_δ + (1/2) κ²_γδij He_ij(a)]`` with the two B legs projected,
  ``κ²_γδij = Π_γl Π_δk κ_lkij``, ``Π = [−M on A | I on B]``.

So the conditional mean is exactly ``M a + Δ/(1 + h4)`` and the conditional covariance
``Σ + (κ²·He2/2)/(1 + h4) − ΔΔᵀ/(1 + h4)²`` (linear over linear in κ), and to first order

    E[z_B | y]   = M y + (1/6) κ¹_γijk He_ijk(y),
    Cov[z_B | y] = Σ + (1/2) κ²_γδij He_ij(y).

The strict 1/n expansion puts G = K + K1/n with ``K̃ = K_AA + σ_ε² I``, ``M₀ = K_BA K̃⁻¹``:

    mean_gp = M₀ y,                       cov_gp = K_BB − M₀ K_AB,
    mean_nlo = mean_gp + (1/n)(K1_BA − M₀ K1_AA) K̃⁻¹ y + (1/6) κ¹·He3(y),
    cov_nlo = cov_gp + (1/n)(K1_BB − K1_BA M₀ᵀ − M₀ K1_AB + M₀ K1_AA M₀ᵀ) + (1/2) κ²·He2(y),

with κ¹, κ², He built from K̃ and M₀ (κ is already O(1/n)). The error is O(1/n²).

Representation shift. Given the layers below, z ~ N(0, Ĝ) with Ĝ fluctuating around G with
``Cov(Ĝ_ab, Ĝ_cd) = V_(ab)(cd)/n``. The likelihood of the targets given Ĝ is
``N(y; 0, Ĝ_AA + σ_ε² I)``; expanding it to first order in ΔĜ = Ĝ − G,
``N(y; S + Δ) = N(y; S) [1 + ½ Δ_cd (u_c u_d − S⁻¹_cd) + O(Δ²)]``, ``u = S⁻¹ y``, and averaging,

    E[Ĝ_ab | y] − E[Ĝ_ab] = (1/2n) Σ_{c,d ∈ A} V_(ab)(cd) [u_c u_d − K̃⁻¹_cd] + O(1/n²)

(S → K̃ at this order; the O(Δ²) terms give O(1/n²): odd moments of a Gaussian ΔĜ vanish and its
fourth moment is O(1/n²)). It vanishes at infinite width.

Training sets are checked first (:func:`training_set`): indices distinct, in range and not
shared with the test set; targets finite; σ_ε² >= 0; duplicate training inputs (equal rows of
K, K1 and V) at zero noise are merged when their targets agree and refused when they differ;
then ``K̃`` must be positive definite to the relative tolerance :data:`GRAM_RTOL`.

Examples
--------
>>> import numpy as np
>>> from critheory.theory.bayes.nearly_gaussian import NearlyGaussian
>>> K = np.array([[1.0, 0.5], [0.5, 1.0]])
>>> prior = NearlyGaussian(K, np.zeros((2, 2)), np.zeros((2, 2, 2, 2)), width=10)
>>> post = posterior(prior, train=[0], test=[1], targets=[2.0], noise=0.0)
>>> post.mean_gp.tolist(), post.cov_gp.tolist()
([1.0], [[0.75]])
>>> posterior(prior, train=[0], test=[0], targets=[2.0])
Traceback (most recent call last):
    ...
critheory.errors.InvalidArgumentError: input 0 is both a training and a test input
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from critheory.common.checks import check_nonnegative
from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError, InvalidVarianceError
from critheory.theory.bayes.hermite import contract2, contract3
from critheory.theory.bayes.nearly_gaussian import SYM_RTOL, NearlyGaussian

__all__ = ["GRAM_RTOL", "TrainingSet", "Posterior", "RepresentationShift", "training_set",
           "posterior", "representation_shift"]

#: K_AA + σ_ε² I counts as singular when its smallest eigenvalue is <= GRAM_RTOL × its largest
GRAM_RTOL = 1e-10


@dataclass(frozen=True)
class TrainingSet:
    """A checked training set: indices (duplicates merged), targets, noise, and the pieces every
    formula needs: ``Kt = K_AA + σ_ε² I``, ``P = Kt⁻¹``, ``u = P y``."""

    train: tuple[int, ...]
    targets: np.ndarray
    noise: float
    Kt: np.ndarray
    P: np.ndarray
    u: np.ndarray


def _indices(name: str, idx: Any, m: int) -> tuple[int, ...]:
    try:
        arr = np.asarray(idx)
    except (TypeError, ValueError):
        arr = np.asarray([object()])
    if arr.ndim != 1 or arr.size == 0 or not (np.issubdtype(arr.dtype, np.integer)):
        raise InvalidArgumentError(f"{name} must be a non-empty list of input indices "
                                   f"(whole numbers), got {idx!r}")
    out = tuple(int(i) for i in arr)
    bad = [i for i in out if not 0 <= i < m]
    if bad:
        raise InvalidArgumentError(f"{name} index {bad[0]} is out of range 0..{m - 1}")
    if len(set(out)) != len(out):
        dup = next(i for i in out if out.count(i) > 1)
        raise InvalidArgumentError(f"{name} names input {dup} twice")
    return out


def _same_input(prior: NearlyGaussian, i: int, j: int) -> bool:
    """Inputs i and j are indistinguishable to the prior (equal rows of K, K1 and V)."""
    for arr in (prior.K, prior.K1, prior.V):
        scale = float(np.max(np.abs(arr)))
        if np.max(np.abs(arr[i] - arr[j]), initial=0.0) > SYM_RTOL * scale:
            return False
    return True


def training_set(prior: NearlyGaussian, train: Sequence[int], targets: Any,
                 noise: float) -> TrainingSet:
    """Check a training set against ``prior`` and prepare ``K̃ = K_AA + σ_ε² I``.

    >>> import numpy as np
    >>> prior = NearlyGaussian(np.ones((2, 2)), np.zeros((2, 2)), np.zeros((2, 2, 2, 2)), 4)
    >>> training_set(prior, [0, 1], [1.0, 1.0], 0.0).train     # one input given twice: merged
    (0,)
    >>> training_set(prior, [0, 1], [1.0, 2.0], 0.0)
    Traceback (most recent call last):
        ...
    critheory.errors.InvalidArgumentError: training inputs 0 and 1 are the same input with ...
    """
    m = prior.m
    train = _indices("train", train, m)
    try:
        y = np.array(targets, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("targets must be numbers") from None
    if y.shape != (len(train),):
        raise InvalidArgumentError(f"targets must hold one number per training input "
                                   f"({len(train)}), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InvalidArgumentError("targets have a non-finite entry")
    noise = check_nonnegative("noise", noise, error=InvalidVarianceError)
    keep: list[int] = []
    if noise == 0.0:
        for k, i in enumerate(train):
            twin = next((j for j in keep if _same_input(prior, train[j], i)), None)
            if twin is None:
                keep.append(k)
            elif abs(y[twin] - y[k]) > SYM_RTOL * max(abs(y[twin]), abs(y[k]), 1.0):
                raise InvalidArgumentError(
                    f"training inputs {train[twin]} and {i} are the same input with different "
                    f"targets ({y[twin]:g} and {y[k]:g}) at zero noise: no posterior exists; "
                    f"give noise > 0")
    else:
        keep = list(range(len(train)))
    train = tuple(train[k] for k in keep)
    y = y[keep]
    A = list(train)
    Kt = prior.K[np.ix_(A, A)] + noise * np.eye(len(A))
    lam = np.linalg.eigvalsh(Kt)
    if not lam[0] > GRAM_RTOL * lam[-1]:
        raise InvalidVarianceError(
            f"the training Gram matrix K_AA + noise*I is singular (smallest eigenvalue "
            f"{lam[0]:.3g}, largest {lam[-1]:.3g}, relative tolerance {GRAM_RTOL:g}); give "
            f"noise > 0 or drop dependent inputs")
    from scipy.linalg import cho_factor, cho_solve

    c = cho_factor(Kt, lower=True)
    P = cho_solve(c, np.eye(len(A)))
    P = 0.5 * (P + P.T)
    u = cho_solve(c, y)
    for arr in (y, Kt, P, u):
        arr.setflags(write=False)
    return TrainingSet(train=train, targets=y, noise=noise, Kt=Kt, P=P, u=u)


def _check_finite(what: str, *arrays: np.ndarray) -> None:
    """A one-line refusal instead of an overflowed (inf/NaN) answer."""
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise InvalidArgumentError(f"the {what} overflows float64: targets or statistics too "
                                   f"large (rescale them)")


@dataclass(frozen=True)
class Posterior:
    """Posterior of the outputs on the test inputs, at leading order (GP) and to first order in
    1/n (NLO). ``mean_*`` has shape ``(len(test),)``, ``cov_*`` ``(len(test), len(test))``.

    ``train`` are the training indices used (duplicates at zero noise merged).
    """

    __repr__ = short_repr

    train: tuple[int, ...]
    test: tuple[int, ...]
    targets: np.ndarray
    noise: float
    width: int
    mean_gp: np.ndarray
    cov_gp: np.ndarray
    mean_nlo: np.ndarray
    cov_nlo: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return jsonable({"train": self.train, "test": self.test, "targets": self.targets,
                         "noise": self.noise, "width": self.width,
                         "posterior_mean_gp": self.mean_gp, "posterior_cov_gp": self.cov_gp,
                         "posterior_mean_nlo": self.mean_nlo,
                         "posterior_cov_nlo": self.cov_nlo})


def posterior(prior: NearlyGaussian, train: Sequence[int], test: Sequence[int], targets: Any,
              noise: float = 0.0) -> Posterior:
    """GP and NLO posterior mean and covariance of the outputs on ``test`` given ``targets`` on
    ``train`` with Gaussian observation noise of variance ``noise`` (the formulas in this
    module's docstring; the NLO is a strict first-order expansion in 1/n).

    Examples
    --------
    >>> import numpy as np
    >>> V = np.zeros((2, 2, 2, 2)); V[0, 0, 0, 0] = 3.0; V[0, 0, 0, 1] = V[0, 0, 1, 0] = 1.0
    >>> V[0, 1, 0, 0] = V[1, 0, 0, 0] = 1.0
    >>> prior = NearlyGaussian(np.array([[1.0, 0.5], [0.5, 1.0]]), np.zeros((2, 2)), V, 100)
    >>> post = posterior(prior, [0], [1], [2.0])
    >>> round(float(post.mean_nlo[0] - post.mean_gp[0]), 6)   # (1/6)(κ_0001 − κ_0000/2)(y³ − 3y)
    -0.005
    """
    ts = training_set(prior, train, targets, noise)
    test = _indices("test", test, prior.m)
    A, B = list(ts.train), list(test)
    shared = sorted(set(test) & set(_indices("train", train, prior.m)))
    if shared:
        raise InvalidArgumentError(f"input {shared[0]} is both a training and a test input")
    n = prior.width
    K, K1 = prior.K, prior.K1
    P, u = ts.P, ts.u
    with np.errstate(over="ignore", invalid="ignore"):   # overflow: refused below
        M0 = K[np.ix_(B, A)] @ P
        mean_gp = M0 @ ts.targets
        cov_gp = K[np.ix_(B, B)] - M0 @ K[np.ix_(A, B)]
        # 1/n from K1: the linearized M and Σ
        dM = (K1[np.ix_(B, A)] - M0 @ K1[np.ix_(A, A)]) @ P
        dcov = (K1[np.ix_(B, B)] - K1[np.ix_(B, A)] @ M0.T - M0 @ K1[np.ix_(A, B)]
                + M0 @ K1[np.ix_(A, A)] @ M0.T)
        # 1/n from V: κ with its B legs projected by Π = [−M0 on A | I on B]
        Pi = np.zeros((len(B), prior.m))
        Pi[np.arange(len(B)), B] = 1.0
        Pi[:, A] -= M0
        kA = prior.cumulant4(A)                                          # κ[:, :, A, A]
        k1 = np.einsum("gl,lijk->gijk", Pi, kA[:, A])                    # (|B|, |A|, |A|, |A|)
        k2 = np.einsum("gl,hk,lkij->ghij", Pi, Pi, kA)                   # (|B|, |B|, |A|, |A|)
        mean_nlo = mean_gp + dM @ ts.targets / n + contract3(k1, u, P) / 6.0
        cov_nlo = cov_gp + dcov / n + 0.5 * contract2(k2, u, P)
    cov_gp = 0.5 * (cov_gp + cov_gp.T)
    cov_nlo = 0.5 * (cov_nlo + cov_nlo.T)
    _check_finite("posterior", mean_nlo, cov_nlo)
    for arr in (mean_gp, cov_gp, mean_nlo, cov_nlo):
        arr.setflags(write=False)
    return Posterior(train=ts.train, test=test, targets=ts.targets, noise=ts.noise, width=n,
                     mean_gp=mean_gp, cov_gp=cov_gp, mean_nlo=mean_nlo, cov_nlo=cov_nlo)


@dataclass(frozen=True)
class RepresentationShift:
    """Posterior change of the last layer's metric Ĝ over all m inputs, to first order in 1/n.

    ``shift = E[Ĝ | y] − E[Ĝ]``; ``prior_metric = E[Ĝ] = G = K + K1/n``;
    ``posterior_metric = prior_metric + shift``.
    """

    __repr__ = short_repr

    train: tuple[int, ...]
    targets: np.ndarray
    noise: float
    width: int
    shift: np.ndarray
    prior_metric: np.ndarray
    posterior_metric: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return jsonable({"train": self.train, "targets": self.targets, "noise": self.noise,
                         "width": self.width, "representation_shift": self.shift,
                         "prior_metric": self.prior_metric,
                         "posterior_metric": self.posterior_metric})


def representation_shift(prior: NearlyGaussian, train: Sequence[int], targets: Any,
                         noise: float = 0.0) -> RepresentationShift:
    """``E[Ĝ_ab | y] − E[Ĝ_ab] = (1/2n) Σ_{c,d∈A} V_(ab)(cd) [u_c u_d − K̃⁻¹_cd]``, u = K̃⁻¹y.

    Examples
    --------
    >>> import numpy as np
    >>> prior = NearlyGaussian(np.eye(1), np.zeros((1, 1)), np.full((1, 1, 1, 1), 2.0), 10)
    >>> float(representation_shift(prior, [0], [2.0]).shift[0, 0])   # (V/2n)(y² − 1) = 0.1 · 3
    0.3
    """
    ts = training_set(prior, train, targets, noise)
    A = list(ts.train)
    with np.errstate(over="ignore", invalid="ignore"):   # overflow: refused below
        W = np.outer(ts.u, ts.u) - ts.P
        shift = np.einsum("abcd,cd->ab", prior.V[:, :, A][:, :, :, A], W) / (2.0 * prior.width)
        shift = 0.5 * (shift + shift.T)
    _check_finite("representation shift", shift)
    G = prior.metric
    for arr in (shift, G):
        arr.setflags(write=False)
    post = G + shift
    post.setflags(write=False)
    return RepresentationShift(train=ts.train, targets=ts.targets, noise=ts.noise,
                               width=prior.width, shift=shift, prior_metric=G,
                               posterior_metric=post)
