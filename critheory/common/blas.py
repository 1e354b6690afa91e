"""Products of many small matrices kept off OpenBLAS's threads.

OpenBLAS (numpy's wheels) runs a GEMM on several threads once ``m·n·k`` exceeds ``2¹⁸``
(``SMP_THRESHOLD_MIN · GEMM_MULTITHREAD_THRESHOLD``), and waking its threads for a small product
costs more than the product, many times more on a loaded machine (the simulator's projected
sampler, issue 32: 5× slower on a quiet 2-core machine, 19× under load; the transformer
theory's ``AᵀA`` of 128 x 128 weights: 0.5 against 26 GFLOP/s under load). Used by the
simulator and the token-kernel theory.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BLAS_THREAD_WORK", "small_matmul"]

#: ``m·n·k`` of a GEMM below which OpenBLAS stays on one thread (65536 × 4).
BLAS_THREAD_WORK = 1 << 18
#: output tiles thinner than this are not worth it (the packed operand is re-read per tile)
_MIN_TILE = 8


def small_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for stacks of small matrices, each BLAS call kept on one thread.

    ``a`` (..., m, K), ``b`` (..., K, n). A product with ``m·n·K`` at most
    :data:`BLAS_THREAD_WORK` is one call; a larger one whose output can be cut into tiles of
    at least ``8 × 8`` below that size is computed tile by tile (the whole ``K`` per tile:
    bit-identical to one call); anything larger is one call (threads pay there).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((3, 256, 40))
    >>> bool(np.array_equal(small_matmul(np.swapaxes(x, -1, -2), x), np.swapaxes(x, -1, -2) @ x))
    True
    """
    m, kk = a.shape[-2:]
    n = b.shape[-1]
    if m * n * kk <= BLAS_THREAD_WORK:
        return a @ b
    side = math.isqrt(BLAS_THREAD_WORK // max(kk, 1))
    if side < _MIN_TILE:
        return a @ b
    tm = min(m, side)
    tn = min(n, max(_MIN_TILE, BLAS_THREAD_WORK // (tm * kk)))
    while tm * tn * kk > BLAS_THREAD_WORK and tn > _MIN_TILE:
        tn -= 1
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, n)
    out = np.empty(shape, dtype=np.result_type(a, b))
    for i in range(0, m, tm):
        for j in range(0, n, tn):
            np.matmul(a[..., i:i + tm, :], b[..., :, j:j + tn], out=out[..., i:i + tm, j:j + tn])
    return out
