"""The Gaussian scale mixture that samples the nearly-Gaussian distribution.

A network's output is built this way (PDLT ch. 4; ``/work/shared/theory.md`` §7): given the
layers below, the output on the m inputs is exactly Gaussian, ``z | Ĝ ~ N(0, Ĝ)``, with a random
metric ``Ĝ`` whose mean is ``G = K + K^{(1)}/n`` and whose fluctuations are
``Cov(Ĝ_ab, Ĝ_cd) = V_(ab)(cd)/n`` (higher cumulants of Ĝ are O(1/n²)). Here Ĝ is drawn
Gaussian with exactly that mean and covariance, so the cumulant generating function of z is

    log E[exp(t·z)] = ½ tᵀG t + (1/8) t_a t_b t_c t_d V_(ab)(cd)/n

exactly: covariance G, fourth cumulant κ_abcd = (V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc))/n, all
other cumulants zero — the first four cumulants of the Edgeworth density, exactly.

**Non-PSD draws.** A Gaussian Ĝ is not positive semidefinite with some probability p; such draws
are rejected and drawn again, i.e. Ĝ is drawn from its Gaussian law conditioned on PSD. Every
moment E[X] then changes by (E[X 1_bad] − p E[X])/(1 − p), at most 2 p^{1−1/q} ‖X‖_q/(1 − p)
for any q ≥ 1 by Hölder (q = 4: 2 p^{3/4} ‖X‖₄). p is bounded before any draw: whiten
Δ = Ĝ − G by G = L Lᵀ, Δ' = L⁻¹ Δ L⁻ᵀ = Σ_k ξ_k A_k (ξ standard normal, A_k symmetric); Ĝ is
PSD when ‖Δ'‖₂ < 1. Two bounds, the smaller is used: the vector ``vec Δ' = A ξ`` has
‖Aξ‖ ≥ ‖Δ'‖₂, ‖A‖₂-Lipschitz with mean ≤ ‖A‖_F (Gaussian concentration), and the matrix
Gaussian series bound P(‖Σ ξ_k A_k‖₂ ≥ 1) ≤ 2m exp(−1/(2σ²)), σ² = ‖Σ_k A_k²‖₂ (Tropp,
"An Introduction to Matrix Concentration Inequalities", Thm 4.1.1):

    p ≤ min(exp(−(1 − ‖A‖_F)² / (2 ‖A‖₂²)) [‖A‖_F < 1],  2m exp(−1/(2σ²))),

which is exponentially small in n (beyond every order of the 1/n expansion). The sampler refuses
when this bound exceeds :data:`NONPSD_MAX` = 1e-6 (below it the moments move by at most
6·10⁻⁵ of their L⁴ size): V/n is then too large for a Gaussian metric to stand for the network.
The bound is conservative (for one input it is 2 exp(−G²/(2V/n)) against the exact
P(N(0,1) > G/√(V/n))), so some admissible widths are refused; a refusal names the bound.

Examples
--------
>>> import numpy as np
>>> C = metric_covariance(np.full((1, 1, 1, 1), 0.01))
>>> C.tolist()
[[0.01]]
>>> f"{nonpsd_bound(np.eye(1), 4 * C):.4g}"      # 2 exp(-1 / (2 * 0.04))
'7.453e-06'
"""
from __future__ import annotations

import numpy as np

from critheory.errors import InvalidArgumentError, InvalidVarianceError

__all__ = ["NONPSD_MAX", "MAX_SAMPLE_ENTRIES", "CHUNK", "pair_index", "metric_covariance",
           "nonpsd_bound", "sample_metrics", "sample_metrics_lognormal", "sample_outputs"]

#: refuse to sample when the bound on P(Ĝ not PSD) exceeds this
NONPSD_MAX = 1e-6
#: budget of one call: size · m² numbers (400 MB of float64 per array)
MAX_SAMPLE_ENTRIES = 5 * 10 ** 7
#: draws per chunk (memory bound: CHUNK · m² floats at a time)
CHUNK = 1 << 15
#: relative tolerance for negative eigenvalues of the metric covariance (rounding of V)
COV_RTOL = 1e-10


def pair_index(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the upper-triangle pairs (a ≤ b) of an m×m symmetric matrix."""
    return np.triu_indices(m)


def metric_covariance(V_over_n: np.ndarray) -> np.ndarray:
    """``C[p, q] = Cov(Ĝ_p, Ĝ_q) = V_(ab)(cd)/n`` over the upper-triangle pairs p = (a, b),
    q = (c, d), checked to be positive semidefinite (rounding below :data:`COV_RTOL` of the
    largest eigenvalue is set to zero; a larger negative eigenvalue is refused).

    >>> import numpy as np
    >>> metric_covariance(np.zeros((2, 2, 2, 2))).shape
    (3, 3)
    """
    m = V_over_n.shape[0]
    a, b = pair_index(m)
    C = V_over_n[a[:, None], b[:, None], a[None, :], b[None, :]]
    C = 0.5 * (C + C.T)
    lam, U = np.linalg.eigh(C)
    top = max(float(np.max(np.abs(lam))), 0.0)
    if lam[0] < -COV_RTOL * top:
        raise InvalidVarianceError(
            f"the vertex V is not a covariance of the metric: Cov(G_ab, G_cd) = V/n has the "
            f"negative eigenvalue {lam[0]:.3g} (largest {top:.3g})")
    lam = np.clip(lam, 0.0, None)
    return (U * lam) @ U.T


def _whitened_basis(G: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The symmetric matrices A_k (``(k, m, m)``) with L⁻¹ Δ L⁻ᵀ = Σ_k ξ_k A_k, ξ ~ N(0, I),
    Δ the metric fluctuation of pair covariance C, G = L Lᵀ."""
    m = G.shape[0]
    Linv = np.linalg.inv(np.linalg.cholesky(G))
    a, b = pair_index(m)
    lam, U = np.linalg.eigh(C)
    root = U * np.sqrt(np.clip(lam, 0.0, None))            # C = root rootᵀ
    D = np.zeros((root.shape[1], m, m))
    D[:, a, b] = root.T
    D[:, b, a] = root.T
    return Linv @ D @ Linv.T


def nonpsd_bound(G: np.ndarray, C: np.ndarray) -> float:
    """Upper bound on P(Ĝ not PSD) for Ĝ ~ Gaussian(mean G, Cov C over pairs) (the smaller of
    the two bounds in the module docstring, at most 1). ``G`` must be positive definite."""
    Ak = _whitened_basis(G, C)
    m = G.shape[0]
    A = Ak.reshape(len(Ak), -1).T                           # vec Δ' = A ξ
    fro = float(np.linalg.norm(A))
    if fro == 0.0:
        return 0.0
    bound = 1.0
    if fro < 1.0:
        spec = float(np.linalg.norm(A, 2))
        bound = float(np.exp(-(1.0 - fro) ** 2 / (2.0 * spec ** 2)))
    sigma2 = float(np.linalg.eigvalsh(np.einsum("kij,kjl->il", Ak, Ak))[-1])
    return min(bound, 2.0 * m * float(np.exp(-1.0 / (2.0 * sigma2))))


def _check_draw(G: np.ndarray, size: int, rng) -> None:
    """The rng, the size budget and a positive-definite mean metric G."""
    if not isinstance(rng, np.random.Generator):
        raise InvalidArgumentError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
            f"{type(rng).__name__}")
    m = G.shape[0]
    if size * m * m > MAX_SAMPLE_ENTRIES:
        raise InvalidArgumentError(
            f"size {size} with {m} inputs needs {size * m * m:.3g} numbers, over the budget "
            f"{MAX_SAMPLE_ENTRIES:.3g}; draw in several calls")
    lam = np.linalg.eigvalsh(G)
    if lam[0] <= 1e-12 * max(lam[-1], 0.0) or lam[-1] <= 0.0:
        raise InvalidVarianceError(
            f"sampling needs a positive-definite metric G = K + K1/n (smallest eigenvalue "
            f"{lam[0]:.3g}, largest {lam[-1]:.3g}); merge duplicate inputs first")


def _check_sampling(G: np.ndarray, C: np.ndarray, size: int, rng) -> None:
    _check_draw(G, size, rng)
    p = nonpsd_bound(G, C)
    if p > NONPSD_MAX:
        raise InvalidArgumentError(
            f"V/n is too large for a Gaussian metric: P(metric not PSD) may reach {p:.3g} "
            f"(> {NONPSD_MAX:g}); the width is too small for the 1/n expansion's Gaussian sampler "
            "(method='lognormal' draws a positive-definite metric at any width)")


def sample_metrics(G: np.ndarray, C: np.ndarray, size: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """``size`` draws of Ĝ (``(size, m, m)``), Gaussian with mean G and pair covariance C,
    conditioned on PSD; returns the draws and the number of rejected (non-PSD) draws."""
    _check_sampling(G, C, size, rng)
    m = G.shape[0]
    a, b = pair_index(m)
    lam, U = np.linalg.eigh(C)
    root = U * np.sqrt(np.clip(lam, 0.0, None))
    out = np.empty((size, m, m))
    filled, rejected = 0, 0
    while filled < size:
        k = min(CHUNK, size - filled)
        u = rng.standard_normal((k, root.shape[1])) @ root.T
        Gh = np.broadcast_to(G, (k, m, m)).copy()
        Gh[:, a, b] += u
        Gh[:, b, a] = Gh[:, a, b]
        try:                                   # all positive definite: the common case
            np.linalg.cholesky(Gh)
            ok = np.ones(k, dtype=bool)
        except np.linalg.LinAlgError:
            ok = np.linalg.eigvalsh(Gh)[:, 0] >= 0.0
        good = Gh[ok]
        rejected += k - len(good)
        out[filled:filled + len(good)] = good
        filled += len(good)
    return out, rejected


def sample_metrics_lognormal(G: np.ndarray, C: np.ndarray, size: int,
                             rng: np.random.Generator) -> np.ndarray:
    """``size`` draws of a matrix-lognormal metric ``Ĝ = L expm(H) Lᵀ`` (``G = L Lᵀ``), positive
    definite at every width.

    ``H = Σ_k ξ_k A_k − ½ Σ_k A_k²`` with the whitened basis of the Gaussian route
    (``L⁻¹ Δ L⁻ᵀ = Σ_k ξ_k A_k``). To first order in the fluctuation, ``Ĝ = G + Δ``: the pair
    covariance is C; the shift ``−½ΣA_k²`` cancels the mean of ``½H²``, so ``E[Ĝ] = G`` up to
    the third-order terms. Both moments are therefore right up to O(1/n²) (C is O(1/n)) — the
    order the 1/n expansion itself neglects — and exactly ``E[Ĝ] = G`` for one input (a
    lognormal with ``E[e^H] = 1``). Use it where the Gaussian route refuses (small widths): it
    is a law with the right 1/n statistics, not the truncated expansion.

    >>> import numpy as np
    >>> g = sample_metrics_lognormal(np.eye(2), 0.5 * np.eye(3), 4, np.random.default_rng(0))
    >>> g.shape, bool(np.all(np.linalg.eigvalsh(g) > 0))
    ((4, 2, 2), True)
    """
    _check_draw(G, size, rng)
    L = np.linalg.cholesky(G)
    Ak = _whitened_basis(G, C)
    shift = -0.5 * np.einsum("kij,kjl->il", Ak, Ak)
    m = G.shape[0]
    out = np.empty((size, m, m))
    for start in range(0, size, CHUNK):
        k = min(CHUNK, size - start)
        H = shift + np.einsum("sk,kij->sij", rng.standard_normal((k, len(Ak))), Ak)
        w, U = np.linalg.eigh(H)
        E = np.einsum("sij,sj,skj->sik", U, np.exp(w), U)
        out[start:start + k] = L @ E @ L.T
    return 0.5 * (out + out.transpose(0, 2, 1))


def sample_outputs(metrics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One output vector z ~ N(0, Ĝ) per metric draw: ``(size, m)``."""
    xi = rng.standard_normal(metrics.shape[:2])
    try:
        root = np.linalg.cholesky(metrics)     # Ĝ = R Rᵀ; z = R ξ
    except np.linalg.LinAlgError:              # a singular PSD draw: the symmetric root
        lam, U = np.linalg.eigh(metrics)
        root = U * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]
    return np.einsum("sij,sj->si", root, xi)
