"""Random streams and fresh Gaussian linear maps for the simulator.

Streams
-------
``seed_streams(seed, n)`` gives, for each of ``n`` networks, three independent generators
(``inputs``, ``network``, ``probes``) derived from ``SeedSequence(seed).spawn(n)[i].spawn(3)``.
Network ``i`` is therefore the same whatever the ensemble size, and the weights of a network do
not depend on whether a second input or Hutchinson probes are drawn. The bit generator is
``SFC64`` (the fastest of numpy's generators for bulk normals).

Linear maps
-----------
Every weight matrix of the simulated networks is used exactly once, on a block ``X`` of ``k``
columns (the activations of the inputs and the tangent directions). Two samplers produce
``W @ X`` for a fresh ``W`` with i.i.d. ``N(0, var / n_in)`` entries:

``dense``
    draws the ``n_out × n_in`` matrix ``W`` and multiplies (``O(N²)`` normals and ``O(N² k)``
    flops per layer): a literal simulation.
``projected``
    uses the rotation invariance of the Gaussian ensemble. The rows ``w_i`` of ``W`` are
    i.i.d. ``N(0, (var/n_in) I)``, so the rows ``w_iᵀ X`` of ``W X`` are i.i.d.
    ``N(0, (var/n_in) XᵀX)``: the law of ``W X`` depends on ``X`` only through its Gram matrix.
    With any ``R`` such that ``RᵀR = XᵀX`` (``k × k``; e.g. the ``R`` of ``X = Q R``),
    ``W X`` has the law of ``G R`` for a fresh ``n_out × k`` matrix ``G`` of i.i.d.
    ``N(0, var/n_in)`` entries. Since ``W`` is independent of everything computed before the
    layer and never used again, the joint law of every recorded quantity (preactivations,
    tangents, kernels, APJN) is *exactly* that of the dense simulation; only the random stream
    differs. Cost ``O(N k²)`` per layer instead of ``O(N²)`` normals.

BLAS threads
------------
The projected sampler's products are many small ones (per network ``XᵀX``, ``k × N × k``,
and ``G R``, ``N × k × k``). OpenBLAS (numpy's wheels) runs a GEMM on several threads once
``m·n·k`` exceeds ``2¹⁸`` (``SMP_THRESHOLD_MIN · GEMM_MULTITHREAD_THRESHOLD``), and waking
its threads for a ~0.1 ms product costs more than the product: with ≥ 32 probes at width 256
the simulation ran 5× slower on a quiet 2-core machine and 19× under load (issue 32).
:func:`~critheory.common.blas.small_matmul` therefore cuts such products into tiles of the output that stay below
that size (each tile keeps the whole contraction, so every entry is the same dot product in
the same order: results are bit-identical) and leaves larger ones, where threads pay, whole.
"""
from __future__ import annotations

import math

import numpy as np

from critheory.common.blas import BLAS_THREAD_WORK, small_matmul  # noqa: F401 (re-exported)

__all__ = ["seed_streams", "draw_weight", "draw_bias", "DenseSampler", "ProjectedSampler",
           "METHODS", "gram_factor", "factor_gram", "small_matmul", "BLAS_THREAD_WORK"]

METHODS = ("auto", "dense", "projected")

def seed_streams(seed: int | None, n: int) -> tuple[int, list[tuple[np.random.Generator, ...]]]:
    """Entropy and ``n`` triples ``(inputs_rng, network_rng, probes_rng)``.

    Parameters
    ----------
    seed : int or None
        Root seed (None: fresh entropy, returned so the run can be repeated).
    n : int
        Number of networks.

    Returns
    -------
    entropy : int
        The root entropy actually used.
    streams : list of tuple of numpy.random.Generator
    """
    root = np.random.SeedSequence(seed)
    out = []
    for child in root.spawn(n):
        out.append(tuple(np.random.Generator(np.random.SFC64(ss)) for ss in child.spawn(3)))
    return int(root.entropy), out


def draw_weight(rng: np.random.Generator, n_out: int, n_in: int, var: float) -> np.ndarray:
    """A weight matrix with i.i.d. ``N(0, var / n_in)`` entries (float64)."""
    w = rng.standard_normal((n_out, n_in))
    w *= math.sqrt(var / n_in)
    return w


def draw_bias(rng: np.random.Generator, n: int, var: float) -> np.ndarray:
    """A bias vector with i.i.d. ``N(0, var)`` entries (always drawn, even for var = 0)."""
    b = rng.standard_normal(n)
    b *= math.sqrt(var)
    return b


class _Sampler:
    """Fresh Gaussian layers for a batch of networks (one generator each).

    ``backend`` (:class:`~critheory.simulation.backend.Backend`, default numpy float64): the
    random numbers are always drawn by the numpy generators in float64 and then converted, so
    every backend sees the same networks."""

    name = ""

    def __init__(self, rngs: list[np.random.Generator], backend=None):
        self.rngs = rngs
        self.bk = backend

    def _to(self, a: np.ndarray):
        return a if self.bk is None else self.bk.asarray(a)

    def bias(self, n: int, var: float):
        """Biases of shape (B, n, 1) for the B networks of the batch."""
        return self._to(np.stack([draw_bias(r, n, var) for r in self.rngs])[:, :, None])

    def matmul(self, x: np.ndarray, var: float, n_out: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class DenseSampler(_Sampler):
    """``W @ X`` with the weight matrix drawn explicitly (one network at a time is best)."""

    name = "dense"

    def matmul(self, x, var: float, n_out: int):
        """``x``: (B, n_in, k) -> (B, n_out, k)."""
        b, n_in, k = x.shape
        if self.bk is None or self.bk.is_reference:
            out = np.empty((b, n_out, k))
            for i, r in enumerate(self.rngs):
                np.matmul(draw_weight(r, n_out, n_in, var), x[i], out=out[i])
            return out
        out = self.bk.empty((b, n_out, k))
        for i, r in enumerate(self.rngs):
            out[i] = self.bk.asarray(draw_weight(r, n_out, n_in, var)) @ x[i]
        return out


class ProjectedSampler(_Sampler):
    """``W @ X`` sampled as ``G @ R`` with ``RᵀR = XᵀX`` (exact in law; see the module notes)."""

    name = "projected"

    def matmul(self, x, var: float, n_out: int):
        """``x``: (B, n_in, k) -> (B, n_out, k)."""
        b, n_in, k = x.shape
        ref = self.bk is None or self.bk.is_reference
        r = gram_factor(x) if ref else factor_gram(self.bk.gram(x))    # (B, k, k)
        g = np.empty((b, n_out, k))
        for i, rng in enumerate(self.rngs):
            rng.standard_normal(out=g[i])
        g *= math.sqrt(var / n_in)
        if ref:
            return small_matmul(g, r)
        return self.bk.asarray(g) @ self.bk.asarray(r)


def gram_factor(x: np.ndarray) -> np.ndarray:
    """A square factor ``R`` (B, k, k) with ``RᵀR = XᵀX`` for ``x`` of shape (B, n, k).

    The Gram matrix is equilibrated (columns scaled to unit norm, so that activations and
    tangents of very different magnitudes keep their relative precision; an all-zero column
    gets a unit diagonal and is scaled back to an exact zero), factored by Cholesky, or by a
    symmetric eigendecomposition ``R = Λ^{1/2} Vᵀ`` when it is singular (``k > n``,
    collinear columns), and scaled back. ``RᵀR`` then equals ``XᵀX`` to a relative
    ``O(ε)`` per entry (as the rounding of a dense product would); nearly collinear columns
    (a second input at correlation ``1 - δ``) have their difference resolved to a relative
    ``O(ε/δ)``, against ``O(ε/√δ)`` for a dense product. A Householder QR would be as accurate
    as the dense product but is ~30 times slower on tall-skinny blocks.
    """
    return factor_gram(small_matmul(np.swapaxes(x, -1, -2), x))


def factor_gram(g: np.ndarray) -> np.ndarray:
    """The factor ``R`` of :func:`gram_factor` from the Gram matrices ``g = XᵀX`` (B, k, k)."""
    d = np.sqrt(np.diagonal(g, axis1=-2, axis2=-1))
    if not np.all(np.isfinite(g)) or not np.all(np.isfinite(d)):
        return np.full(g.shape, np.nan)
    safe = np.where(d > 0, d, 1.0)
    gn = g / (safe[..., :, None] * safe[..., None, :])
    k = g.shape[-1]
    gn[..., np.arange(k), np.arange(k)] = 1.0   # exact unit diagonal; dead columns decouple
    try:
        r = np.swapaxes(np.linalg.cholesky(gn), -1, -2)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(gn)
        r = np.sqrt(np.clip(w, 0.0, None))[..., :, None] * np.swapaxes(v, -1, -2)
    return r * d[..., None, :]              # zero columns of X give exact zero columns
