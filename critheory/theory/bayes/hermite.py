"""Multivariate Hermite tensors with respect to a covariance matrix, and their contractions
with a fully symmetric four-index tensor.

For a covariance ``S`` (positive definite, inverse ``P = S⁻¹``) and a point ``x`` put
``y = P x``. The Hermite tensors are defined by derivatives of the Gaussian density
``N(x; S)``::

    ∂_{i1}…∂_{ik} N(x; S) = (−1)^k He_{i1…ik}(x) N(x; S)

so that ``He_i = y_i``, ``He_ij = y_i y_j − P_ij``, ``He_ijk = y_i y_j y_k − (P_ij y_k + 2
perms)`` and ``He_ijkl = y_i y_j y_k y_l − (P_ij y_k y_l + 5 perms) + (P_ij P_kl + 2 perms)``.
Contracted with a fully symmetric tensor ``κ`` the permutations collapse to counts
(:func:`contract4`, :func:`contract3`, :func:`contract2`), which is how the density and the
posterior use them without building the tensors.

Examples
--------
>>> import numpy as np
>>> P = np.array([[1.0]])
>>> float(hermite(np.array([2.0]), P, 3)[0, 0, 0])     # y³ − 3y at y = 2
2.0
>>> float(contract4(np.full((1, 1, 1, 1), 1.0), np.array([2.0]), P))   # y⁴ − 6y² + 3
-5.0
"""
from __future__ import annotations

import itertools

import numpy as np

from critheory.errors import InvalidArgumentError

__all__ = ["hermite", "contract2", "contract3", "contract4"]


def hermite(y: np.ndarray, P: np.ndarray, order: int) -> np.ndarray:
    """The full Hermite tensor ``He_{i1…ik}`` (``order`` = k in 0…4) at ``y = P x``.

    ``y`` has shape ``(d,)``, ``P`` ``(d, d)``; the result ``(d,)*order``. Built from the
    definition (sum over the pairings of the indices), for tests and small d.

    >>> import numpy as np
    >>> hermite(np.array([1.0, 0.0]), np.eye(2), 2).tolist()
    [[0.0, 0.0], [0.0, -1.0]]
    """
    y = np.asarray(y, dtype=float)
    P = np.asarray(P, dtype=float)
    if order not in range(5):
        raise InvalidArgumentError(f"hermite tensors are implemented for orders 0..4, got {order}")
    d = y.shape[-1]
    out = np.zeros((d,) * order)
    for idx in itertools.product(range(d), repeat=order):
        out[idx] = _hermite_entry(y, P, list(idx))
    return out


def _hermite_entry(y: np.ndarray, P: np.ndarray, idx: list[int]) -> float:
    """Σ over partial pairings of ``idx``: (−1)^{pairs} Π P over pairs × Π y over singles."""
    if not idx:
        return 1.0
    first, rest = idx[0], idx[1:]
    total = y[first] * _hermite_entry(y, P, rest)          # ``first`` stays single
    for k in range(len(rest)):                              # ``first`` paired with rest[k]
        total -= P[first, rest[k]] * _hermite_entry(y, P, rest[:k] + rest[k + 1:])
    return total


def contract4(kappa: np.ndarray, y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``κ_ijkl He_ijkl`` for a fully symmetric ``κ`` (d, d, d, d); ``y`` may carry leading
    (batch) axes: ``(..., d)`` → ``(...)``.

    ``= κ_ijkl y_i y_j y_k y_l − 6 κ_ijkl P_ij y_k y_l + 3 κ_ijkl P_ij P_kl``.
    """
    kP = np.einsum("ijkl,ij->kl", kappa, P)
    return (np.einsum("ijkl,...i,...j,...k,...l->...", kappa, y, y, y, y, optimize=True)
            - 6.0 * np.einsum("kl,...k,...l->...", kP, y, y)
            + 3.0 * np.einsum("kl,kl->", kP, P))


def contract3(t: np.ndarray, y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``t_{g ijk} He_ijk`` for ``t`` (g, d, d, d) symmetric in its last three indices.

    ``= t_gijk y_i y_j y_k − 3 t_gijk P_ij y_k``; ``y`` of shape ``(d,)``, result ``(g,)``.
    """
    return (np.einsum("gijk,i,j,k->g", t, y, y, y) - 3.0 * np.einsum("gijk,ij,k->g", t, P, y))


def contract2(t: np.ndarray, y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``t_{gh ij} He_ij = t_ghij (y_i y_j − P_ij)``; ``y`` of shape ``(d,)``, result (g, h)."""
    return np.einsum("ghij,ij->gh", t, np.outer(y, y) - P)
