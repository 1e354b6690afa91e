"""LayerNorm and RMSNorm without affine parameters: forward map, Jacobian-vector product,
explicit Jacobian.

For a vector ``h`` of ``N`` neurons,

    m = mean(h),  v = mean((h - m)**2),  s = sqrt(v + eps),  y = LN(h) = (h - m) / s,

(the biased variance, as in ``torch.nn.LayerNorm``). Differentiating, with
``dv = (2/N) Σ (h - m) dh`` (the ``dm`` term drops because ``Σ (h - m) = 0``) and
``ds = dv / (2 s)``,

    dy = (dh - mean(dh)) / s - (h - m) ds / s**2
       = (dh - mean(dh) - y * mean(y * dh)) / s,

that is ``∂y/∂h = (I - 1 1ᵀ/N - y yᵀ/N) / s``. With ``eps = 0`` the bracket is the orthogonal
projection onto the complement of ``span(1, y)`` (``|y|² = N``), so LN removes two directions
and rescales by ``1/s``. The formula holds for every ``eps >= 0``.

RMSNorm keeps the mean: ``r = sqrt(mean(h**2) + eps)``, ``y = h / r``, and with
``dr = mean(h dh) / r``, ``dy = dh / r - h dr / r**2 = (dh - y * mean(y * dh)) / r``, that is
``∂y/∂h = (I - y yᵀ/N) / r``: with ``eps = 0`` one direction (``y``) removed, a symmetric
matrix (its cotangent step is the same map).

The functions take numpy arrays or torch tensors (:mod:`critheory.simulation.backend`).
Arrays carry the neurons on axis ``-2`` (columns are independent vectors: several inputs, or
tangent directions), with optional leading batch axes.

Examples
--------
>>> import numpy as np
>>> from critheory.simulation.layernorm import layer_norm, layer_norm_jvp
>>> h = np.array([[1.0], [2.0], [4.0]])
>>> y, s = layer_norm(h)
>>> bool(np.isclose(np.mean(y**2), 1.0)), bool(np.isclose(float(y.sum()), 0.0))
(True, True)
>>> dy = layer_norm_jvp(y, s, h)   # LN is scale invariant: the derivative along h vanishes
>>> bool(np.allclose(dy, 0.0))
True
"""
from __future__ import annotations

import numpy as np

__all__ = ["layer_norm", "layer_norm_jvp", "layer_norm_jacobian", "rms_norm", "rms_norm_jvp",
           "rms_norm_jacobian"]


def _sqrt(a):
    """Square root of a numpy array or a torch tensor."""
    return a.sqrt() if hasattr(a, "sqrt") else np.sqrt(a)


def layer_norm(h: np.ndarray, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalize every column of ``h`` over the neuron axis (-2).

    Parameters
    ----------
    h : ndarray, shape (..., N, k)
        Preactivations; each of the ``k`` columns is normalized separately.
    eps : float
        Added to the variance under the square root (default 0: exact normalization; a column
        with zero variance then gives non-finite values).

    Returns
    -------
    y : ndarray, shape (..., N, k)
        ``(h - mean) / s``.
    s : ndarray, shape (..., 1, k)
        ``sqrt(var + eps)`` per column.
    """
    m = h.mean(axis=-2, keepdims=True)
    c = h - m
    v = (c * c).mean(axis=-2, keepdims=True)
    s = _sqrt(v + eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = c / s
    return y, s


def layer_norm_jvp(y: np.ndarray, s: np.ndarray, dh: np.ndarray) -> np.ndarray:
    """Jacobian-vector product of LayerNorm at the point whose output is ``y``, scale ``s``.

    Parameters
    ----------
    y : ndarray, shape (..., N, 1)
        ``LN(h)`` for the single column the tangents belong to.
    s : ndarray, shape (..., 1, 1)
        Its ``sqrt(var + eps)``.
    dh : ndarray, shape (..., N, P)
        Tangent directions at ``h`` (one per column).

    Returns
    -------
    ndarray, shape (..., N, P)
        ``(dh - mean(dh) - y * mean(y * dh)) / s`` (means over the neuron axis).
    """
    mean_dh = dh.mean(axis=-2, keepdims=True)
    proj = (y * dh).mean(axis=-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (dh - mean_dh - y * proj) / s


def layer_norm_jacobian(h: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """The explicit ``N × N`` Jacobian ``(I - 1 1ᵀ/N - y yᵀ/N) / s`` of LN at a vector ``h``.

    Used by the naive reference computation; ``h`` has shape ``(N,)``.
    """
    h = np.asarray(h, dtype=float)
    n = h.shape[0]
    y, s = layer_norm(h[:, None], eps)
    y = y[:, 0]
    jac = np.eye(n) - 1.0 / n - np.outer(y, y) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return jac / s[0, 0]


def rms_norm(h: np.ndarray, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Divide every column of ``h`` by its root mean square over the neuron axis (-2).

    Parameters
    ----------
    h : ndarray, shape (..., N, k)
        Each of the ``k`` columns is normalized separately.
    eps : float
        Added to the mean square under the square root (default 0).

    Returns
    -------
    y : ndarray, shape (..., N, k)
        ``h / r``.
    r : ndarray, shape (..., 1, k)
        ``sqrt(mean(h**2) + eps)`` per column.

    Examples
    --------
    >>> y, r = rms_norm(np.array([[3.0], [4.0]]))      # r² = (9 + 16)/2
    >>> bool(np.isclose(float(r[0, 0]) ** 2, 12.5)), bool(np.isclose(np.mean(y ** 2), 1.0))
    (True, True)
    >>> bool(np.allclose(rms_norm_jvp(y, r, np.array([[3.0], [4.0]])), 0.0))   # scale invariant
    True
    """
    r = _sqrt((h * h).mean(axis=-2, keepdims=True) + eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = h / r
    return y, r


def rms_norm_jvp(y: np.ndarray, r: np.ndarray, dh: np.ndarray) -> np.ndarray:
    """Jacobian-vector product of RMSNorm at the point whose output is ``y``, scale ``r``:
    ``(dh - y * mean(y * dh)) / r`` (shapes as :func:`layer_norm_jvp`; the matrix is symmetric,
    so this is also the vector-Jacobian product)."""
    proj = (y * dh).mean(axis=-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (dh - y * proj) / r


def rms_norm_jacobian(h: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """The explicit ``N × N`` Jacobian ``(I - y yᵀ/N) / r`` of RMSNorm at a vector ``h`` of shape
    ``(N,)`` (the naive reference computation)."""
    h = np.asarray(h, dtype=float)
    n = h.shape[0]
    y, r = rms_norm(h[:, None], eps)
    y = y[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.eye(n) - np.outer(y, y) / n) / r[0, 0]
