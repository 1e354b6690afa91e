"""Expectations over the softmax of Gaussian logits, by randomized quasi-Monte Carlo.

At infinite width (head dimension ``C → ∞``) the attention logits of one head,
``z_{sr} = q_s·k_r/√C``, are jointly Gaussian given the token kernel F of the attention input:

    ``E[z_{sr} z_{s'r'}] = C_Q C_K F_{ss'} F_{rr'}``            (``Z = √(C_Q C_K) L ξ Lᵀ``,
                                                                ``F = L Lᵀ``, ξ iid N(0, 1))

and the attention weights are ``A_{s·} = softmax(z_{s·})`` (over ``r <= s`` with a causal
mask). The forward and tangent maps of the attention block need

``E[A X Aᵀ]``                         (X = F: the kernel; X = Θ: the value path of a tangent)
``E[tr(X P_s Y P_t)]``                (the logit path; ``P_s = diag(a_s) − a_s a_sᵀ`` is the
                                       softmax Jacobian of row s)

which have no closed form for ``T > 1``. They are averages over ``T²``-dimensional Gaussian
vectors, computed here with scrambled Sobol points (:class:`scipy.stats.qmc.Sobol`) mapped to
normals by ``Φ⁻¹``. The error is estimated the standard way for randomized QMC: R independent
scramblings give R unbiased estimates, reported as their mean ± ``std/√R``.
``tr(X P_s Y P_t)`` is evaluated in ``O(T³)`` per point through

    ``[A(X∘Y)Aᵀ − A Wᵀ − W Aᵀ + (A Y Aᵀ)∘(A X Aᵀ)]_{st}``,  ``W = (A X)∘(A Y)``  (X, Y symmetric).

Exchangeable kernels (``a I + b 11ᵀ``: the input kernel of a transformer recursion and every
kernel after it without a causal mask) take an ``O(T²)``-per-point route
(:func:`_exchangeable_moments`): the expectations are ``a I + b 11ᵀ`` too, and the two numbers
of each come from sums over each point's weights, averaged over all token pairs; the logits are
drawn from T(T − 1) normals with the part shared by the rows first (:func:`_exchangeable_nodes`).

Examples
--------
>>> import numpy as np
>>> from critheory.theory.transformer.softmax import attention_kernel
>>> r = attention_kernel(np.eye(2), logit_var=1.0, points=1024, replicas=8, seed=0)
>>> bool(np.all(r.error < 1e-3)), bool(np.allclose(r.value, r.value.T))
(True, True)
>>> float(attention_kernel(np.eye(1), logit_var=4.0).value[0, 0])   # one token: exact
1.0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.common import limits
from critheory.common.blas import small_matmul
from critheory.common.reprs import short_repr

__all__ = ["SoftmaxSampler", "sqrt_psd", "deterministic_weights", "softmax_moments",
           "trace_pp", "attention_kernel", "AttentionKernel", "MAX_POINTS", "MAX_WORK",
           "exchangeable_parts", "EXCHANGEABLE_RTOL"]

#: Most quasi-Monte Carlo points per randomization (escalation stops here).
MAX_POINTS = limits.MAX_QMC_POINTS
#: Most (points x replicas x T³ x tangents) multiply-adds of one expectation call.
MAX_WORK = limits.MAX_SOFTMAX_WORK
_CHUNK_FLOATS = 2_000_000
#: Most floats of one per-point product buffer of the attention moments (128 MB).
_PRODUCT_FLOATS = 16_000_000
#: Most normals a sampler keeps between calls (256 MiB: T = 64 at 1024 points x 8 replicas).
_CACHE_FLOATS = limits.MAX_QMC_CACHE_FLOATS
#: Largest deviation of a kernel from the form ``a I + b 11ᵀ`` (relative to its largest
#: |entry|) that the exchangeable route takes as that form (it uses the mean diagonal and mean
#: off-diagonal entry): rounding of a recursion that keeps the form exactly.
EXCHANGEABLE_RTOL = 1e-12
#: Floats of one sub-chunk of the exchangeable route (512 kB: every pass stays in the cache).
_EXCH_FLOATS = 1 << 16


def sqrt_psd(F: np.ndarray) -> np.ndarray:
    """A factor L with ``L Lᵀ = F`` for a symmetric PSD F (batched over leading axes);
    eigenvalues below zero by rounding are clipped."""
    w, V = np.linalg.eigh(F)
    return V * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def deterministic_weights(T: int, causal: bool) -> np.ndarray:
    """The attention weights when the logits vanish: uniform over the allowed tokens."""
    A = np.tril(np.ones((T, T))) if causal else np.ones((T, T))
    return A / A.sum(axis=1, keepdims=True)


class SoftmaxSampler:
    """Standard-normal ``T x T`` logit draws from independently scrambled Sobol sequences.

    The R scramblings are drawn once per token count (seeded from one root seed, so a run is
    reproducible) and every call of :meth:`draws` yields the same R point sets, in chunks of shape
    ``(R, n, T, T)``: the replicas stay independent of each other (the error estimate over them
    stays valid) while every attention block of a recursion reuses the nodes (the scrambling, and
    where they fit in :data:`_CACHE_FLOATS` the normals themselves or what a route makes of
    them, are computed once).
    """

    def __init__(self, points: int, replicas: int, seed: int = 0):
        if points < 2 or points & (points - 1):
            raise InvalidArgumentError(f"points must be a power of 2 >= 2, got {points}")
        if points > MAX_POINTS:
            raise InvalidArgumentError(f"points must be <= {MAX_POINTS}, got {points}")
        if replicas < 2:
            raise InvalidArgumentError(f"replicas must be >= 2 (the error estimate needs "
                                       f"two randomizations), got {replicas}")
        self.points, self.replicas = int(points), int(replicas)
        self._seeds = np.random.SeedSequence(seed)
        self._engines: dict[int, list] = {}
        self._cache: dict[tuple, list] = {}
        self._kept = 0

    def _generate(self, T: int):
        from scipy.special import ndtri
        from scipy.stats import qmc

        d = T * T
        if T not in self._engines:
            self._engines[T] = [qmc.Sobol(d, scramble=True, seed=np.random.default_rng(s))
                                for s in self._seeds.spawn(self.replicas)]
        engines = self._engines[T]
        for e in engines:
            e.reset()
        chunk = max(1, min(self.points, _CHUNK_FLOATS // (d * self.replicas)))
        chunk = 1 << (chunk.bit_length() - 1)     # a power of 2: Sobol's balance per chunk
        done = 0
        while done < self.points:
            n = min(chunk, self.points - done)
            u = np.stack([e.random(n) for e in engines])
            np.clip(u, 1e-300, 1.0 - 2 ** -53, out=u)
            yield ndtri(u).reshape(self.replicas, n, T, T)
            done += n

    def draws(self, T: int, transform=None):
        """The R point sets as chunks ``(R, n, T, T)`` of normals, or of ``transform(normals)``
        (a function of the chunk giving an array of the same size, applied once per run where
        the result is kept): the same values at every call."""
        key = (T, transform)
        if key in self._cache:
            yield from self._cache[key]
            return
        size = self.points * self.replicas * T * T
        keep = self._kept + size <= _CACHE_FLOATS
        chunks = []
        for xi in self._generate(T):
            if transform is not None:
                xi = transform(xi)
            if keep:
                xi.setflags(write=False)
                chunks.append(xi)
            yield xi
        if keep:
            self._cache[key] = chunks
            self._kept += size


def _softmax(Z: np.ndarray, causal: bool) -> np.ndarray:
    if causal:
        T = Z.shape[-1]
        Z = np.where(np.tril(np.ones((T, T), dtype=bool)), Z, -np.inf)
    Z = Z - Z.max(axis=-1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=-1, keepdims=True)


def trace_pp(A: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``tr(X P_s Y P_t)`` for all (s, t), ``P_s = diag(a_s) − a_s a_sᵀ``; X, Y symmetric,
    broadcast against the weights A (``..., T, T``).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); A = rng.dirichlet(np.ones(3), size=3)
    >>> X = np.eye(3) + 0.3; Y = np.diag([1.0, 2.0, 3.0])
    >>> P = [np.diag(a) - np.outer(a, a) for a in A]
    >>> brute = np.array([[np.trace(X @ P[s] @ Y @ P[t]) for t in range(3)] for s in range(3)])
    >>> bool(np.allclose(trace_pp(A, X, Y), brute))
    True
    """
    At = np.swapaxes(A, -1, -2)
    AX, AY = A @ X, A @ Y
    W = AX * AY
    WAt = W @ At
    return (A @ (X * Y) @ At - np.swapaxes(WAt, -1, -2) - WAt
            + (AY @ At) * (AX @ At))


def exchangeable_parts(X: np.ndarray, rtol: float | None = None):
    """``(d, o)``, the mean diagonal and mean off-diagonal entry of each ``T x T`` matrix of X
    (shape ``(..., T, T)``, T >= 2), where every one of them is ``o 11ᵀ + (d − o) I`` to
    ``rtol`` (default :data:`EXCHANGEABLE_RTOL`) times the largest |entry| of X; None
    otherwise.

    >>> import numpy as np
    >>> [float(v) for v in exchangeable_parts(np.array([[2.0, 0.5], [0.5, 2.0]]))]
    [2.0, 0.5]
    >>> exchangeable_parts(np.diag([1.0, 2.0])) is None
    True
    """
    T = X.shape[-1]
    if T < 2:
        return None
    rtol = EXCHANGEABLE_RTOL if rtol is None else rtol
    d = np.einsum("...tt->...", X) / T
    o = (X.sum(axis=(-1, -2)) - d * T) / (T * (T - 1))
    dev = np.abs(X - _exchangeable(d, o, T)).max(initial=0.0)
    if not dev <= rtol * np.abs(X).max(initial=0.0):
        return None
    return d, o


def _exchangeable(d, o, T: int) -> np.ndarray:
    """``o 11ᵀ + (d − o) I`` with the trailing axes (T, T): every diagonal entry exactly d."""
    d, o = np.asarray(d, dtype=float), np.asarray(o, dtype=float)
    X = np.repeat(np.repeat(o[..., None, None], T, axis=-2), T, axis=-1)
    i = np.arange(T)
    X[..., i, i] = d[..., None]
    return X


def _contrasts(eta: np.ndarray) -> np.ndarray:
    """``η Uᵀ`` for the last axis of η (length T − 1), U (T x (T − 1)) the Helmert basis of
    ``1⊥``: column k (k = 1 .. T − 1) is ``(1, .., 1, −k, 0, .., 0)/√(k(k + 1))`` (k ones), so
    ``x_r = Σ_{k > r} w_k − r w_r`` with ``w_k = η_k/√(k(k + 1))``: O(T) per row. Rows of iid
    normals go to rows with covariance ``P⊥ = I − 11ᵀ/T``.

    >>> import numpy as np
    >>> eta = np.random.default_rng(0).normal(size=(2, 3))
    >>> k = np.arange(1, 4)
    >>> U = np.array([[1.0] * j + [-j] + [0.0] * (3 - j) for j in k]).T / np.sqrt(k * (k + 1))
    >>> bool(np.allclose(_contrasts(eta), eta @ U.T))
    True
    """
    T = eta.shape[-1] + 1
    k = np.arange(1, T)
    w = eta * (1.0 / np.sqrt(k * (k + 1.0)))
    x = np.zeros(eta.shape[:-1] + (T,))
    np.cumsum(w[..., ::-1], axis=-1, out=x[..., T - 2::-1])
    x[..., 1:] -= k * w
    return x


def _exchangeable_nodes(xi: np.ndarray) -> np.ndarray:
    """The row-varying parts of the logits of an exchangeable kernel, from normals ξ of shape
    ``(..., T, T)``: ``W = U Y₁ Uᵀ`` (T x T) and ``u = U y₀`` (T), ``y₀`` the first T − 1
    normals, ``Y₁`` the next (T − 1)² (U: :func:`_contrasts`), packed into one ``T x T`` array:
    the first T − 1 rows of W (its columns sum to zero, so they fix its last row), then u.

    With ``F = g₁ I + g₂ 11ᵀ`` and ``e = 1/√T``, ``√F = q eeᵀ + p UUᵀ`` (``p = √g₁``,
    ``q = √(g₁ + T g₂)``) and ``√F P⊥ = p P⊥``, so the logits ``Z = √σ² √F ξ √F`` have, along
    each row, the law of ``√σ² p √F η Uᵀ`` (η: T x (T − 1) iid), and ``√F η`` that of
    ``q e y₀ᵀ + p U Y₁`` (η rotated by ``[e, U]ᵀ``): ``Z ≅ √σ² (g₁ W + √(g₁(g₁ + T g₂)/T) 1 uᵀ)``
    up to terms constant along rows (the softmax does not see them). T(T − 1) normals; the part
    shared by the rows (the largest, for correlated tokens) on the sampler's first, best
    distributed coordinates.

    >>> import numpy as np
    >>> V = _exchangeable_nodes(np.random.default_rng(0).normal(size=(5, 3, 3)))
    >>> bool(np.allclose(V.sum(axis=-1), 0.0))     # every row of W and u: contrasts
    True
    """
    T = xi.shape[-1]
    Y = xi.reshape(xi.shape[:-2] + (T * T,))[..., :T * (T - 1)].reshape(
        xi.shape[:-2] + (T, T - 1))
    rows = np.ascontiguousarray(np.swapaxes(Y[..., 1:, :], -1, -2))    # (..., T − 1, T − 1)
    W = _contrasts(np.ascontiguousarray(np.swapaxes(_contrasts(rows), -1, -2)))
    out = np.empty(xi.shape)
    out[..., :T - 1, :] = W[..., :T - 1, :]
    out[..., T - 1:, :] = _contrasts(Y[..., :1, :])
    return out


def _exchangeable_moments(fd, fo, thd, tho, T: int, logit_var: float,
                          sampler: SoftmaxSampler):
    """:func:`softmax_moments` for non-causal weights and exchangeable kernels,
    ``F = fo 11ᵀ + (fd − fo) I`` (shape (R,)) and ``Θ_k = tho 11ᵀ + (thd − tho) I`` (shape
    (R, K)): O(T²) per point, plus one ``T x T`` product.

    The weights of a point come from T(T − 1) normals in O(T²) (:func:`_exchangeable_nodes`).
    With ``F = g₁ I + g₂ 11ᵀ``, since ``A1 = 1`` and ``P_s 1 = 0``,

        ``A F Aᵀ = g₁ M + g₂ 11ᵀ``,   ``tr(X P_s Y P_t) = x₁ y₁ N_{st}``

    (``X = x₁ I + x₂ 11ᵀ``), ``M = AAᵀ``, ``N_{st} = tr(P_s P_t) = [M − A(A∘A)ᵀ − (A∘A)Aᵀ +
    M∘M]_{st}``. The expectations are exchangeable, so only the means of the diagonal and of
    the off-diagonal entries of E[M] and E[N] are needed, and those are sums over each point's
    weights: ``tr M = Σ A²``, ``Σ M = Σ_r c_r²``, ``tr N = tr M − 2 Σ A³ + Σ_s (Σ_r A_sr²)²``,
    ``Σ N = Σ M − 2 Σ_r c_r d_r + ‖AᵀA‖²_F`` (``c``, ``d``: column sums of A and A∘A). Every
    entry's estimate is the average over all T (diagonal) or T(T − 1) (off-diagonal) token
    pairs of the same point: an unbiased estimate with the same randomization per replica, so
    the error over the replicas stays an honest one.
    """
    R = fd.shape[0]
    sig = np.sqrt(logit_var)
    g1, g2 = np.clip(fd - fo, 0.0, None), fo             # F = g₁ I + g₂ 11ᵀ, PSD
    g1T = np.clip(g1 + T * g2, 0.0, None)                # its eigenvalue on 1
    alpha = (sig * g1)[:, None, None, None]
    beta = (sig * np.sqrt(g1 * g1T / T))[:, None, None, None]
    acc = np.zeros((6, R))        # Σ over points of tr M, Σ M, Σ A³, Σ_s |a_s|⁴, c·d, ‖AᵀA‖²
    ones = np.ones(T)
    step = max(1, _EXCH_FLOATS // (R * T * T))
    for V in sampler.draws(T, _exchangeable_nodes):
        for i0 in range(0, V.shape[1], step):
            v = V[:, i0:i0 + step]
            shape = v.shape[:-1]
            u = v[..., T - 1:, :]
            z = v * alpha                       # rows 1..T−1: g₁ W (row T: fixed below)
            np.multiply(v[..., :T - 1, :].sum(axis=-2, keepdims=True), -alpha,
                        out=z[..., T - 1:, :])  # W's last row: minus the sum of the others
            z += beta * u
            # shift each row by its maximum only where exp could overflow (|z| <= 700: the
            # exponentials and their sums stay normal floats; the softmax is shift-invariant)
            if not np.abs(z).max() <= 700.0:
                z -= z.max(axis=-1, keepdims=True)
            A = np.exp(z, out=z)
            A /= (A.reshape(-1, T) @ ones).reshape(shape + (1,))     # row sums: one product
            A2 = A * A
            rows = (A2.reshape(-1, T) @ ones).reshape(shape)        # |a_s|²
            c = A.sum(axis=-2)
            G = small_matmul(np.swapaxes(A, -1, -2), A)     # ‖AAᵀ‖_F = ‖AᵀA‖_F; one thread
            acc[0] += rows.sum(axis=(1, 2))
            acc[1] += np.einsum("rnt,rnt->r", c, c)
            acc[2] += np.einsum("ij,ij->i", A2.reshape(R, -1), A.reshape(R, -1))
            acc[3] += np.einsum("rns,rns->r", rows, rows)
            acc[4] += np.einsum("rnt,rnt->r", c, A2.sum(axis=-2))
            acc[5] += np.einsum("ij,ij->i", G.reshape(R, -1), G.reshape(R, -1))
    acc /= sampler.points
    trM, sM, a3, a4, cd, fro = acc
    trN = trM - 2.0 * a3 + a4
    sN = sM - 2.0 * cd + fro
    pairs = T * (T - 1)
    md, mo = trM / T, (sM - trM) / pairs                        # E[M]: diagonal, off-diagonal
    nd, no = trN / T, (sN - trN) / pairs                        # E[N]
    th1 = thd - tho                                             # (R, K)
    afa = _exchangeable(g1 * md + g2, g1 * mo + g2, T)
    ata = _exchangeable(th1 * md[:, None] + tho, th1 * mo[:, None] + tho, T)
    # Θ∘E[tr(F P F P)] + F∘E[tr(Θ P F P)] = g₁² Θ∘E[N] + g₁ θ₁ F∘E[N], entry by entry
    g1k = g1[:, None]
    ld = g1k * g1k * thd * nd[:, None] + g1k * th1 * fd[:, None] * nd[:, None]
    lo = g1k * g1k * tho * no[:, None] + g1k * th1 * fo[:, None] * no[:, None]
    return afa, ata, logit_var * _exchangeable(ld, lo, T)


def softmax_moments(F: np.ndarray, thetas: np.ndarray, logit_var: float, causal: bool,
                    sampler: SoftmaxSampler | None):
    """Per-replica averages for one attention block.

    Parameters
    ----------
    F : (R, T, T)
        Token kernel of the attention input, per replica.
    thetas : (R, K, T, T)
        Tangent kernels of the attention input.
    logit_var : float
        ``C_Q C_K`` (0 for the 1/C logit scaling).
    sampler : SoftmaxSampler or None
        None only where the weights are deterministic (``T = 1`` or ``logit_var = 0``).

    Returns
    -------
    (AFA, ATA, logit) with shapes (R, T, T), (R, K, T, T), (R, K, T, T): ``E[A F Aᵀ]``,
    ``E[A Θ Aᵀ]`` and ``Θ∘E[tr(F P F P)] + F∘E[tr(Θ P F P)]`` (zero when the weights are
    deterministic).

    Two routes: without a causal mask and with every kernel of the form ``a I + b 11ᵀ``
    (:func:`exchangeable_parts`: every recursion from :func:`~critheory.theory.transformer.
    depth.input_kernel` keeps it) the O(T²)-per-point :func:`_exchangeable_moments`; elsewhere
    products of all points, ~T³ (6 + 8K) multiply-adds per point.
    """
    R, T, _ = F.shape
    K = thetas.shape[1]
    if T == 1 or logit_var == 0.0:
        A = deterministic_weights(T, causal)
        return (A @ F @ A.T, A @ thetas @ A.T, np.zeros_like(thetas))
    if sampler is None:
        raise InvalidArgumentError("random attention weights need a sampler")
    # non-causal weights of exchangeable kernels (every recursion from input_kernel): O(T²)
    parts = None if causal else exchangeable_parts(F)
    tparts = [] if parts is None else [exchangeable_parts(thetas[:, k]) for k in range(K)]
    exch = parts is not None and all(t is not None for t in tparts)
    work = limits.attention_work(T, sampler.points, sampler.replicas, K, exch)
    if work > MAX_WORK:
        raise InvalidArgumentError(
            f"the attention expectation needs ~{work:.2g} multiply-adds (T = {T}, "
            f"{sampler.points} points x {sampler.replicas} randomizations, {K} tangents); at "
            f"most {MAX_WORK:.0e} per block (fewer tokens, points or a looser tolerance)")
    if exch:
        thd = np.stack([t[0] for t in tparts], axis=1) if K else np.zeros((R, 0))
        tho = np.stack([t[1] for t in tparts], axis=1) if K else np.zeros((R, 0))
        return _exchangeable_moments(parts[0], parts[1], thd, tho, T, logit_var, sampler)
    Lf = logit_var ** 0.25 * sqrt_psd(F)            # (R, T, T): Z = Lf ξ Lfᵀ has cov σ² F⊗F
    LfT = np.swapaxes(Lf, -1, -2)
    # The right factors of the products A X: F, Θ_k, F∘F, Θ_k∘F side by side, so that the
    # left products of all points are one matrix product per replica; the Hadamard factors
    # W = (AX)∘(AF) of the logit path go into the same buffer, and every block is then
    # multiplied by Aᵀ point by point in one batched product.
    m, nb = 2 + 2 * K, 3 + 3 * K
    X = np.concatenate([F] + [thetas[:, k] for k in range(K)] + [F * F]
                       + [thetas[:, k] * F for k in range(K)], axis=-1)     # (R, T, m T)
    acc = np.zeros((R, T, nb, T))            # Σ_n (block) A_nᵀ, rows (s, block)
    p1 = np.zeros_like(F)                    # Σ_n (AFAᵀ)∘(AFAᵀ)
    p2 = np.zeros_like(thetas)               # Σ_n (AFAᵀ)∘(AΘ_kAᵀ)
    step = max(1, _PRODUCT_FLOATS // (R * T * T * nb))       # Q and P: <= 128 MB each
    chunks = (xi[:, i0:i0 + step] for xi in sampler.draws(T)
              for i0 in range(0, xi.shape[1], step))
    for xi in chunks:
        n = xi.shape[1]
        A = _softmax(Lf[:, None] @ xi @ LfT[:, None], causal)  # (R, n, T, T)
        Q = np.empty((R, n * T, nb * T))
        np.matmul(A.reshape(R, n * T, T), X, out=Q[:, :, :m * T])
        Q = Q.reshape(R, n, T, nb, T)
        AF = Q[:, :, :, 0]
        np.multiply(Q[:, :, :, :1 + K], AF[:, :, :, None], out=Q[:, :, :, m:])
        P = small_matmul(Q.reshape(R, n, T * nb, T),               # one thread per product
                         np.swapaxes(A, -1, -2)).reshape(R, n, T, nb, T)
        acc += P.sum(axis=1)
        P0 = P[:, :, :, 0]
        p1 += (P0 * P0).sum(axis=1)
        p2 += np.einsum("rnsu,rnsku->rksu", P0, P[:, :, :, 1:1 + K])
    acc = acc.transpose(0, 2, 1, 3)                             # (R, nb, T, T)
    afa, ata = acc[:, 0], acc[:, 1:1 + K]
    # tr(X P_s Y P_t) = [A(X∘Y)Aᵀ − W Aᵀ − (W Aᵀ)ᵀ + (A Y Aᵀ)∘(A X Aᵀ)]_{st}, W = (AX)∘(AY)
    WA0, WAk = acc[:, m], acc[:, m + 1:]
    t1 = acc[:, 1 + K] - WA0 - np.swapaxes(WA0, -1, -2) + p1
    t2 = acc[:, 2 + K:m] - WAk - np.swapaxes(WAk, -1, -2) + p2
    n = sampler.points
    afa, ata, t1, t2 = afa / n, ata / n, t1 / n, t2 / n
    logit = thetas * t1[:, None] + F[:, None] * t2
    return afa, ata, logit_var * logit


@dataclass(frozen=True)
class AttentionKernel:
    """``E[A F Aᵀ]`` for one input kernel: value ± error (std over randomizations / √R)."""

    __repr__ = short_repr

    value: np.ndarray
    error: np.ndarray
    points: int
    replicas: int
    exact: bool

    def to_dict(self) -> dict:
        return {"value": self.value.tolist(), "error": self.error.tolist(),
                "points": self.points, "replicas": self.replicas, "exact": self.exact}


def attention_kernel(F, logit_var: float = 1.0, *, causal: bool = False, points: int = 1024,
                     replicas: int = 8, tolerance: float | None = None, seed: int = 0
                     ) -> AttentionKernel:
    """``E[A F Aᵀ]`` over softmax weights of Gaussian logits with covariance
    ``logit_var · F⊗F``, with a randomized-QMC error estimate.

    With ``tolerance``, the points are quadrupled until every entry's error is at most
    ``tolerance · max|F|`` (:class:`ConvergenceError` beyond :data:`MAX_POINTS`).

    Examples
    --------
    >>> import critheory as ct
    >>> import numpy as np
    >>> k = ct.attention_kernel(np.eye(2), logit_var=0.0)    # uniform attention: A = 1/T
    >>> k.value
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    F = np.asarray(F, dtype=float)
    if F.ndim != 2 or F.shape[0] != F.shape[1] or not np.all(np.isfinite(F)):
        raise InvalidArgumentError("F must be a finite square matrix")
    if not np.allclose(F, F.T) or np.linalg.eigvalsh(F).min() < -1e-10 * max(1.0, abs(F).max()):
        raise InvalidArgumentError("F must be symmetric positive semidefinite")
    if not (np.isfinite(logit_var) and logit_var >= 0):
        raise InvalidArgumentError(f"logit_var must be finite and >= 0, got {logit_var}")
    T = F.shape[0]
    if T == 1 or logit_var == 0.0:
        A = deterministic_weights(T, causal)
        return AttentionKernel(A @ F @ A.T, np.zeros_like(F), 0, 0, True)
    while True:
        s = SoftmaxSampler(points, replicas, seed)
        Fr = np.broadcast_to(F, (replicas, T, T)).copy()
        afa, _, _ = softmax_moments(Fr, np.zeros((replicas, 0, T, T)), logit_var, causal, s)
        value, error = afa.mean(axis=0), afa.std(axis=0, ddof=1) / np.sqrt(replicas)
        if tolerance is None or error.max() <= tolerance * abs(F).max():
            return AttentionKernel(value, error, points, replicas, False)
        if points * 4 > MAX_POINTS:
            raise ConvergenceError(
                f"attention expectation: error {error.max():.2g} > tolerance "
                f"{tolerance:g} x max|F| with {points} points x {replicas} randomizations "
                f"(the most is {MAX_POINTS} points); loosen the tolerance")
        points *= 4
