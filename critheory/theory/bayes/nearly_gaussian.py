"""The nearly-Gaussian distribution of a finite network's output on m inputs.

At width n the output of one neuron on inputs 1…m has, to first order in 1/n (PDLT ch. 4;
Yaida arXiv:1910.00019), covariance (metric) ``G = K + K^{(1)}/n`` and connected four-point
function

    κ_abcd = (V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n,

all higher cumulants O(1/n²). Its density to first order is the Edgeworth (Gram–Charlier)
form

    p(z) = N(z; G) [1 + (1/24) κ_ijkl He_ijkl(z)],

He the Hermite tensors with respect to G (:mod:`critheory.theory.bayes.hermite`), i.e.
``p = (1 + (1/24) κ_ijkl ∂_i∂_j∂_k∂_l) N(z; G)``. Integrating by parts, this p integrates to 1
and has exactly covariance G and fourth cumulant κ (``moments``); it can be negative far in the
tails (where ``κ·He4`` < −24), which is the price of a truncated expansion.

``sample`` draws from the Gaussian scale mixture z | Ĝ ~ N(0, Ĝ) of
:mod:`critheory.theory.bayes.mixture`, which has exactly these first four cumulants.

Examples
--------
>>> import numpy as np
>>> ng = NearlyGaussian(K=np.eye(1), K1=np.zeros((1, 1)), V=np.full((1, 1, 1, 1), 2.0), width=100)
>>> float(ng.cumulant4()[0, 0, 0, 0])        # 3V/n
0.06
>>> round(float(ng.pdf(np.array([0.0]))), 6)  # N(0; 1) (1 + 0.06 · 3/24)
0.401934
>>> z = ng.sample(4, np.random.default_rng(0)); z.shape
(4, 1)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.common.checks import check_int
from critheory.errors import InvalidArgumentError, InvalidVarianceError
from critheory.theory.bayes.hermite import contract4
from critheory.theory.bayes.mixture import (metric_covariance, sample_metrics,
                                            sample_metrics_lognormal, sample_outputs)

__all__ = ["NearlyGaussian", "Moments", "SYM_RTOL", "PSD_RTOL", "MAX_INPUTS", "as_matrix"]

#: relative tolerance of every symmetry check (of the largest absolute entry)
SYM_RTOL = 1e-10
#: K is positive semidefinite when its eigenvalues are >= -PSD_RTOL * largest
PSD_RTOL = 1e-10
#: most inputs (V has m⁴ entries: 64⁴ = 1.7e7 floats)
MAX_INPUTS = 64


def as_matrix(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape``; one-line error otherwise."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be an array of numbers") from None
    if arr.shape != shape:
        raise InvalidArgumentError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} has a non-finite entry")
    return arr


def _check_symmetric(name: str, arr: np.ndarray, perms: list[tuple[int, ...]]) -> np.ndarray:
    """``arr`` symmetric under ``perms`` (to SYM_RTOL), returned symmetrized."""
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    acc = arr.copy()
    for p in perms:
        t = np.transpose(arr, p)
        if np.max(np.abs(t - arr), initial=0.0) > SYM_RTOL * scale:
            raise InvalidArgumentError(
                f"{name} is not symmetric under the index swap {p} (relative tolerance "
                f"{SYM_RTOL:g})")
        acc = acc + t
    return acc / (len(perms) + 1)


@dataclass(frozen=True)
class Moments:
    """Exact second and fourth moments of the first-order density.

    ``second[a, b] = E[z_a z_b] = G_ab``; ``fourth[a, b, c, d] = E[z_a z_b z_c z_d] =
    G_ab G_cd + G_ac G_bd + G_ad G_bc + κ_abcd`` (odd moments vanish).
    """

    second: np.ndarray
    fourth: np.ndarray


@dataclass(frozen=True)
class NearlyGaussian:
    """The 1/n nearly-Gaussian law of one output neuron on m inputs.

    Parameters
    ----------
    K : (m, m) array
        Infinite-width kernel, symmetric positive semidefinite.
    K1 : (m, m) array
        1/n shift of the kernel (symmetric): metric ``G = K + K1/n``.
    V : (m, m, m, m) array
        Four-point vertex ``V[a, b, c, d] = V_(ab)(cd)``, symmetric under a↔b, c↔d and
        (ab)↔(cd).
    width : int
        Hidden width n >= 1.

    The arrays are validated and stored symmetrized (float64, copies).

    Examples
    --------
    >>> import numpy as np
    >>> NearlyGaussian(np.eye(2), np.zeros((2, 2)), np.zeros((2, 2, 2, 2)), 10).metric.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> NearlyGaussian(-np.eye(1), np.zeros((1, 1)), np.zeros((1, 1, 1, 1)), 10)
    Traceback (most recent call last):
        ...
    critheory.errors.InvalidVarianceError: K is not positive semidefinite: eigenvalue -1 ...
    """

    K: np.ndarray
    K1: np.ndarray
    V: np.ndarray
    width: int

    def __post_init__(self) -> None:
        try:
            shape = np.shape(self.K)
        except (TypeError, ValueError):
            shape = ()
        m = shape[0] if len(shape) == 2 else 0
        if m < 1:
            raise InvalidArgumentError(f"K must be an (m, m) array with m >= 1, got shape {shape}")
        if m > MAX_INPUTS:
            raise InvalidArgumentError(f"at most {MAX_INPUTS} inputs (V has m^4 entries), "
                                       f"got {m}")
        K = _check_symmetric("K", as_matrix("K", self.K, (m, m)), [(1, 0)])
        K1 = _check_symmetric("K1", as_matrix("K1", self.K1, (m, m)), [(1, 0)])
        V = _check_symmetric("V", as_matrix("V", self.V, (m,) * 4),
                             [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)])
        n = check_int("width", self.width, 1)
        lam = np.linalg.eigvalsh(K)
        top = max(float(np.max(np.abs(lam))), 0.0)
        if lam[0] < -PSD_RTOL * top or top == 0.0:
            raise InvalidVarianceError(
                f"K is not positive semidefinite: eigenvalue {lam[0]:.3g} (largest "
                f"{top:.3g}, relative tolerance {PSD_RTOL:g})" if top else "K is zero")
        for name, arr in (("K", K), ("K1", K1), ("V", V)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "width", n)

    # ----------------------------------------------------------------- cumulants
    @property
    def m(self) -> int:
        """Number of inputs."""
        return self.K.shape[0]

    @property
    def metric(self) -> np.ndarray:
        """``G = K + K1/n``, the covariance of the output to first order."""
        return self.K + self.K1 / self.width

    def cumulant4(self, last: list[int] | None = None) -> np.ndarray:
        """``κ_abcd = (V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc))/n`` (fully symmetric); with
        ``last`` only the slice ``κ[:, :, last, last]`` (m²·len(last)² numbers).

        >>> import numpy as np
        >>> V = np.arange(16.0).reshape(2, 2, 2, 2)
        >>> V = (V + V.transpose(1, 0, 2, 3)); V = V + V.transpose(0, 1, 3, 2)
        >>> V = V + V.transpose(2, 3, 0, 1)
        >>> ng = NearlyGaussian(np.eye(2), np.zeros((2, 2)), V, 4)
        >>> bool(np.array_equal(ng.cumulant4([1])[:, :, 0, 0], ng.cumulant4()[:, :, 1, 1]))
        True
        """
        V = self.V
        if last is None:
            return (V + np.transpose(V, (0, 2, 1, 3)) + np.transpose(V, (0, 2, 3, 1))) / self.width
        al, L = np.arange(self.m), list(last)
        mixed = V[np.ix_(al, L, al, L)]                       # V[l, i, k, j]
        return (V[np.ix_(al, al, L, L)] + np.transpose(mixed, (0, 2, 1, 3))
                + np.transpose(mixed, (0, 2, 3, 1))) / self.width

    def moments(self) -> Moments:
        """Exact second and fourth moments of the first-order density (and of ``sample``).

        >>> import numpy as np
        >>> ng = NearlyGaussian(np.eye(1), np.zeros((1, 1)), np.full((1, 1, 1, 1), 1.0), 10)
        >>> float(ng.moments().fourth[0, 0, 0, 0])     # 3 G² + 3V/n
        3.3
        """
        G = self.metric
        GG = np.einsum("ab,cd->abcd", G, G)
        gauss = GG + np.transpose(GG, (0, 2, 1, 3)) + np.transpose(GG, (0, 2, 3, 1))
        return Moments(second=G.copy(), fourth=gauss + self.cumulant4())

    # ----------------------------------------------------------------- density
    def _points(self, z) -> np.ndarray:
        try:
            z = np.asarray(z, dtype=float)
        except (TypeError, ValueError):
            raise InvalidArgumentError("points must be an array of numbers") from None
        if z.ndim == 0 or z.shape[-1] != self.m:
            raise InvalidArgumentError(f"points must have a last axis of length {self.m} "
                                       f"(one value per input), got shape {z.shape}")
        if not np.all(np.isfinite(z)):
            raise InvalidArgumentError("points have a non-finite entry")
        return z

    def _gauss_and_factor(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(log N(z; G), 1 + κ·He4/24) at the points ``z`` (``(..., m)``)."""
        z = self._points(z)
        G = self.metric
        lam = np.linalg.eigvalsh(G)
        if lam[0] <= PSD_RTOL * lam[-1]:
            raise InvalidVarianceError(
                f"the density needs a positive-definite metric G = K + K1/n (smallest "
                f"eigenvalue {lam[0]:.3g}, largest {lam[-1]:.3g})")
        L = np.linalg.cholesky(G)
        P = np.linalg.inv(G)
        P = 0.5 * (P + P.T)
        logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
        with np.errstate(over="ignore", invalid="ignore"):
            y = z @ P
            logn = -0.5 * np.einsum("...i,...i->...", z, y) - 0.5 * (self.m * np.log(2 * np.pi)
                                                                      + logdet)
            factor = 1.0 + contract4(self.cumulant4(), y, P) / 24.0
        if not (np.all(np.isfinite(logn)) and np.all(np.isfinite(factor))):
            raise InvalidArgumentError("points too far out: the density's terms overflow float64 "
                                       "(the density is 0 to every digit there)")
        return logn, factor

    def pdf(self, z) -> np.ndarray:
        """The first-order density ``N(z; G)[1 + κ_ijkl He_ijkl(z)/24]`` at ``z`` (``(..., m)``).

        It may be negative far in the tails (a truncated expansion); it integrates to 1.
        """
        logn, factor = self._gauss_and_factor(z)
        return np.exp(logn) * factor

    def logpdf(self, z) -> np.ndarray:
        """``log pdf(z)``; refuses (one line) points where the first-order density is <= 0."""
        logn, factor = self._gauss_and_factor(z)
        bad = ~(factor > 0.0)
        if np.any(bad):
            raise InvalidArgumentError(
                f"the first-order density is <= 0 at {int(np.sum(bad))} point(s) "
                f"(1 + kappa.He4/24 <= 0, far in the tails): its log is undefined there; "
                f"use pdf")
        return logn + np.log(factor)

    # ----------------------------------------------------------------- sampling
    def sample_metric(self, size: int, rng: np.random.Generator, *,
                      method: str = "gaussian") -> np.ndarray:
        """``size`` draws of the random metric Ĝ (``(size, m, m)``).

        ``method="gaussian"``: Gaussian with mean G and ``Cov(Ĝ_ab, Ĝ_cd) = V_(ab)(cd)/n``,
        conditioned on PSD (see :mod:`critheory.theory.bayes.mixture` for the bound on what
        that changes; refused when it could matter, i.e. at small widths).
        ``method="lognormal"``: the matrix-lognormal metric of
        :func:`~critheory.theory.bayes.mixture.sample_metrics_lognormal`, positive definite at
        every width, with mean and covariance right up to O(1/n²)."""
        size = check_int("size", size, 1)
        C = metric_covariance(self.V / self.width)
        if method == "gaussian":
            return sample_metrics(self.metric, C, size, rng)[0]
        if method == "lognormal":
            return sample_metrics_lognormal(self.metric, C, size, rng)
        raise InvalidArgumentError(f"method must be 'gaussian' or 'lognormal', got {method!r}")

    def sample(self, size: int, rng: np.random.Generator, *,
               method: str = "gaussian") -> np.ndarray:
        """``size`` draws of the output on the m inputs (``(size, m)``) from the scale mixture
        z | Ĝ ~ N(0, Ĝ). ``method="gaussian"``: exactly covariance G and fourth cumulant κ (up
        to the PSD conditioning, below 1e-6 in probability; refused at widths where it could
        be more). ``method="lognormal"``: a positive-definite metric at every width, covariance
        and κ right up to O(1/n²) (the order the expansion neglects). Reproducible for a
        seeded ``rng``."""
        return sample_outputs(self.sample_metric(size, rng, method=method), rng)
