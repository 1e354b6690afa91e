"""Token kernels and APJN of a transformer through depth, at infinite width.

Layer 1 is the dense stem on the input tokens, ``G¹ = σ_b² + σ_w² G⁰`` with
``G⁰ = q0 ((1 − c0) I + c0 11ᵀ)`` (T tokens of norm ``q0`` and pairwise correlation ``c0``);
each further layer applies the unit's blocks (:mod:`critheory.theory.transformer.rules`). The
APJN ``J^{l0,l} = tr Θ^l / T`` propagates a tangent kernel started at ``Θ^{l0} = I``; the
one-layer APJN ``χ^l`` (``chi_jacobian``) and the one-block APJN of each block
(``chi_blocks``) restart it at ``I``.

Quasi-Monte Carlo error. Where the attention weights are random (``T > 1`` and ``C_Q C_K > 0``
with ``1/√C`` logits) the whole recursion is run R times with independent scramblings (each
replica draws its scrambling once and every attention block of it reuses those nodes: the R
runs stay independent of each other); every reported number is the mean of the R runs and its
error is ``std/√R`` over them, so the error of the first blocks propagates through depth into
the errors shown. With ``tolerance`` the points are quadrupled until the largest relative error
(kernel entries against the largest |G| of their layer, APJN against itself) is below it;
beyond :data:`~critheory.theory.transformer.softmax.MAX_POINTS` a
:class:`~critheory.errors.ConvergenceError` refuses. Elsewhere the recursion is exact and the
errors are 0.

Examples
--------
>>> from critheory.blocks.transformer import transformer
>>> from critheory.theory.transformer.depth import transformer_depth
>>> net = transformer("transformer", "relu", tokens=1, heads=1, cv=1.0, cu=1.0)
>>> d = transformer_depth(net, 2.0, 0.0, depth=4)        # one token: G grows by C_U C_V + 2
>>> d.kernel.tolist(), d.exact
([2.0, 5.0, 8.0, 11.0], True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from critheory.blocks.blocks import walk
from critheory.common.checks import check_bias_var, check_int, check_real, check_weight_var
from critheory.errors import ConvergenceError, InvalidArgumentError
from critheory.theory.fold import check_composition
from critheory.theory.transformer.rules import THEORY, apply_blocks, context
from critheory.theory.transformer.softmax import MAX_POINTS, SoftmaxSampler
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["TransformerCurves", "transformer_depth", "input_kernel", "MAX_DEPTH",
           "one_token_exponent", "recursion_work"]

#: Deepest recursion (each layer costs a quasi-Monte Carlo expectation per attention block).
MAX_DEPTH = limits.MAX_DEPTH_TRANSFORMER
#: Most multiply-adds of one recursion's attention expectations (points x randomizations x
#: T³ x tangents per block, at least 5e7 per block: numpy's per-call overhead), ~ minutes.
MAX_RECURSION_WORK = limits.MAX_TRANSFORMER_WORK
_RUNAWAY = 1e150


def input_kernel(tokens: int, q0: float = 1.0, corr: float = 0.5) -> np.ndarray:
    """``G⁰ = q0 ((1 − c0) I + c0 11ᵀ)``: T tokens of norm q0, pairwise correlation c0.

    >>> input_kernel(2, 1.0, 0.5).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    if not -1.0 / max(tokens - 1, 1) - 1e-12 <= corr <= 1.0:
        raise InvalidArgumentError(f"token correlation must lie in [-1/(T-1), 1] = "
                                   f"[{-1.0 / max(tokens - 1, 1):.4g}, 1] for T = {tokens}, "
                                   f"got {corr}")
    return q0 * ((1.0 - corr) * np.eye(tokens) + corr * np.ones((tokens, tokens)))


@dataclass(frozen=True)
class TransformerCurves:
    """Infinite-width depth profiles of a transformer (mean ± QMC error over randomizations).

    Arrays are indexed by layer ``l = 1..L`` (``depths``); ``kernel_tokens[l-1]`` is ``G^l``
    (T x T), ``kernel`` its mean diagonal, ``correlation`` its mean off-diagonal correlation
    (None for T = 1), ``apjn`` ``J^{l0,l}`` (NaN for l < l0), ``chi_jacobian`` the one-layer
    APJN ``l → l+1`` and ``chi_blocks[l-1, b]`` the one-block APJN of the unit's block b.
    """

    __repr__ = short_repr

    weight_var: float
    bias_var: float
    l0: int
    tokens: int
    depths: np.ndarray
    kernel_tokens: np.ndarray
    kernel_tokens_error: np.ndarray
    kernel: np.ndarray
    kernel_error: np.ndarray
    correlation: np.ndarray | None
    apjn: np.ndarray
    apjn_error: np.ndarray
    chi_jacobian: np.ndarray
    chi_jacobian_error: np.ndarray
    chi_blocks: np.ndarray
    block_kinds: tuple
    points: int
    replicas: int
    exact: bool
    runaway_depth: int | None = None
    settings: dict = field(default_factory=dict)
    chi_blocks_error: np.ndarray | None = None

    def to_dict(self) -> dict:
        def lst(a):
            if a is None:
                return None
            a = np.asarray(a, dtype=float)
            return np.where(np.isfinite(a), a, np.nan).tolist() if a.ndim > 1 else \
                [float(v) if np.isfinite(v) else None for v in a]

        def mat(a):
            return [[[float(v) if np.isfinite(v) else None for v in row] for row in m]
                    for m in np.asarray(a, dtype=float)]

        return {"weight_var": self.weight_var, "bias_var": self.bias_var, "l0": self.l0,
                "depths": self.depths.tolist(), "kernel": lst(self.kernel),
                "correlation": lst(self.correlation), "chi_jacobian": lst(self.chi_jacobian),
                "apjn": lst(self.apjn), "runaway_depth": self.runaway_depth,
                "kernel_tokens": mat(self.kernel_tokens),
                "kernel_tokens_error": mat(self.kernel_tokens_error),
                "kernel_error": lst(self.kernel_error), "apjn_error": lst(self.apjn_error),
                "chi_jacobian_error": lst(self.chi_jacobian_error),
                "chi_blocks": [lst(r) for r in self.chi_blocks],
                "chi_blocks_error": (None if self.chi_blocks_error is None else
                                     [lst(r) for r in self.chi_blocks_error]),
                "block_kinds": list(self.block_kinds),
                "qmc": {"points": self.points, "replicas": self.replicas,
                        "exact": self.exact},
                "settings": self.settings}


def _stats(x: np.ndarray, exact: bool):
    if exact:
        return x[0], np.zeros_like(x[0])
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


def _run(net, sw, sb, depth, l0, G0, points, replicas, seed):
    T = net.tokens
    a = net.attention
    exact = T == 1 or a.logit_variance == 0.0
    R = 1 if exact else replicas
    sampler = None if exact else SoftmaxSampler(points, replicas, seed)
    ctx = context(net.activation, sw, sb, sampler)
    nb = len(net.blocks)
    G = np.broadcast_to(sb + sw * G0, (R, T, T)).copy()
    I = np.broadcast_to(np.eye(T), (R, T, T))
    Gs = np.full((R, depth, T, T), np.nan)
    J = np.full((R, depth), np.nan)
    chi = np.full((R, depth), np.nan)
    chib = np.full((R, depth, nb), np.nan)
    theta = None
    runaway = None
    for l in range(1, depth + 1):
        Gs[:, l - 1] = G
        if l == l0:
            theta = I.copy()
        if theta is not None:
            J[:, l - 1] = np.einsum("rtt->r", theta) / T
        if not np.all(np.isfinite(G)) or np.abs(G).max() > _RUNAWAY:
            runaway = l
            break
        # one layer: the running tangent, the one-layer tangent and one tangent per block
        layer = None                  # the one-layer tangent; None while it is still I
        for b, block in enumerate(net.blocks):
            # the tangents I, the one-layer tangent and Θ^l, each distinct one once (the
            # one-layer tangent is I at the first block, Θ^l is I at l = l0)
            stack = [I] + ([] if layer is None else [layer])
            it = None
            if theta is not None:
                it = 0 if (l == l0 and b == 0) else len(stack)
                if it:
                    stack.append(theta)
            G, Th = apply_blocks((block,), G, np.stack(stack, axis=1), ctx)
            chib[:, l - 1, b] = np.einsum("rtt->r", Th[:, 0]) / T
            layer = Th[:, 0] if layer is None else Th[:, 1]
            if theta is not None:
                theta = Th[:, it]
        chi[:, l - 1] = np.einsum("rtt->r", I if layer is None else layer) / T
    return Gs, J, chi, chib, exact, runaway


def recursion_work(net, depth: int, points: int, replicas: int) -> float:
    """Multiply-adds of the attention expectations of :func:`transformer_depth` on ``net``
    (:func:`~critheory.common.limits.transformer_recursion_work`; 0 where the recursion is
    exact). Without a causal mask the token kernels stay exchangeable (``a I + b 11ᵀ``, as the
    input kernel is and every block keeps it): the attention blocks take the O(T²) route.

    >>> import critheory as ct
    >>> from critheory.theory.transformer.depth import recursion_work
    >>> a = recursion_work(ct.transformer(tokens=16), 32, 1024, 8)
    >>> b = recursion_work(ct.transformer(tokens=16, causal=True), 32, 1024, 8)
    >>> bool(b > 10 * a)
    True
    """
    T, a = net.tokens, net.attention
    if T == 1 or a is None or a.logit_variance == 0.0:
        return 0.0
    att = [b for b in walk(net.blocks) if b.mixes_tokens]
    exchangeable = not any(b.causal for b in att)
    return limits.transformer_recursion_work(T, len(att), len(net.blocks), depth, points,
                                             replicas, exchangeable)


def _check_work(net, depth: int, points: int, replicas: int) -> None:
    T = net.tokens
    work = recursion_work(net, depth, points, replicas)
    if work > MAX_RECURSION_WORK:
        raise InvalidArgumentError(
            f"this recursion needs ~{work:.2g} multiply-adds in its attention expectations "
            f"(T = {T}, depth {depth}, {points} points x {replicas} randomizations); at most "
            f"{MAX_RECURSION_WORK:.0e} (fewer layers, tokens or points)")


def transformer_depth(net, weight_var: float, bias_var: float, depth: int, *, l0: int = 1,
                      q0: float = 1.0, corr: float = 0.5, points: int = 1024,
                      replicas: int = 8, tolerance: float | None = None, seed: int = 0
                      ) -> TransformerCurves:
    """Depth curves of a :class:`~critheory.blocks.transformer.TransformerNetwork`.

    Parameters
    ----------
    net : TransformerNetwork
    weight_var, bias_var : float
        σ_w², σ_b² of the stem and of the MLP blocks (C_W, C_B of the paper).
    depth : int
        L, the number of layers (the stem is layer 1).
    l0 : int
        Reference layer of ``J^{l0,l}``.
    q0, corr : float
        Input token norm and pairwise correlation (:func:`input_kernel`).
    points, replicas : int
        Scrambled-Sobol points per randomization (a power of 2) and number of randomizations.
    tolerance : float or None
        Largest relative QMC error accepted (escalates ``points``, then refuses).
    seed : int

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "relu", tokens=2, heads=1)
    >>> d = ct.transformer_depth(net, 2.0, 0.0, depth=3, points=128)
    >>> d.kernel.shape
    (3,)
    """
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    depth = check_int("depth", depth, 1)
    l0 = check_int("l0", l0, 1)
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(f"depth must be <= {MAX_DEPTH} for the transformer "
                                   f"recursion, got {depth}")
    if l0 > depth:
        raise InvalidArgumentError(f"l0 must be between 1 and depth ({depth}), got {l0}")
    q0 = check_real("q0", q0)
    if q0 <= 0:
        raise InvalidArgumentError(f"q0 must be > 0, got {q0}")
    corr = check_real("corr", corr)
    replicas = check_int("replicas", replicas, 2)
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise InvalidArgumentError(f"tolerance must be a finite number > 0, got {tolerance}")
    check_composition(net.unit, THEORY)       # a block without a token rule: one line
    if net.attention is None:
        raise InvalidArgumentError(f"{net.name!r} has no attention block: the token-kernel "
                                   "recursion needs one (the one-token theories cover the rest)")
    G0 = input_kernel(net.tokens, q0, corr)
    while True:
        _check_work(net, depth, points, replicas)
        Gs, J, chi, chib, exact, runaway = _run(net, sw, sb, depth, l0, G0, points, replicas,
                                                seed)
        G, Ge = _stats(Gs, exact)
        Jm, Je = _stats(J, exact)
        cm, ce = _stats(chi, exact)
        bm, be = _stats(chib, exact)
        if exact or tolerance is None:
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.nanmax(np.abs(G), axis=(1, 2))[:, None, None]
            rel = max(np.nanmax(Ge / scale), np.nanmax(np.where(np.isfinite(Jm), Je / Jm, 0)))
        if rel <= tolerance:
            break
        # refuse at once what even the optimistic QMC rate (error ~ 1/N) cannot reach
        if points * 4 > MAX_POINTS or rel * points / MAX_POINTS > tolerance:
            raise ConvergenceError(
                f"transformer recursion: relative QMC error {rel:.2g} > tolerance "
                f"{tolerance:g} with {points} points x {replicas} randomizations (at most "
                f"{MAX_POINTS} points, with errors falling at best like 1/points); loosen the "
                "tolerance or use fewer layers")
        points *= 4
    T = net.tokens
    diag = np.einsum("ltt->lt", G)
    kernel = diag.mean(axis=1)
    # the mean diagonal's error over the randomizations themselves: the entries' errors are
    # correlated (equal, where the kernels are exchangeable), so they do not add in quadrature
    _, kernel_error = _stats(np.einsum("rltt->rlt", Gs).mean(axis=2), exact)
    corrm = None
    if T > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            C = G / np.sqrt(diag[:, :, None] * diag[:, None, :])
        off = ~np.eye(T, dtype=bool)
        corrm = C[:, off].mean(axis=1)
    return TransformerCurves(
        weight_var=sw, bias_var=sb, l0=l0, tokens=T, depths=np.arange(1, depth + 1),
        kernel_tokens=G, kernel_tokens_error=Ge, kernel=kernel, kernel_error=kernel_error,
        correlation=corrm, apjn=Jm, apjn_error=Je, chi_jacobian=cm, chi_jacobian_error=ce,
        chi_blocks=bm, block_kinds=tuple("+".join(x.kind for x in b.branch)
                                         if hasattr(b, "branch") else b.kind
                                         for b in net.blocks),
        points=0 if exact else points, replicas=0 if exact else replicas, exact=exact,
        runaway_depth=runaway, chi_blocks_error=be,
        settings={"arch": net.name, "tokens": T, "heads": net.attention.heads,
                  "mlp_ratio": net.mlp_ratio, "causal": net.attention.causal,
                  "logit_scale": net.attention.logit_scale, "cq": net.attention.cq,
                  "ck": net.attention.ck, "cv": net.attention.cv, "cu": net.attention.cu,
                  "q0": q0, "corr": corr, "seed": seed, "tolerance": tolerance})


def one_token_exponent(net, weight_var: float, bias_var: float) -> float | None:
    """The APJN exponent ζ of a pre-LN transformer on one token, ``J^{l0,l} ∝ l^ζ``:

    ``ζ = (C_U C_V + σ_w⁴ E[φ'²]) / (C_U C_V + σ_w² E[φ²] + σ_b²)``, E at variance
    ``σ_w² + σ_b²`` (the LayerNorm output has unit variance): each layer adds a constant
    ``a`` (the denominator) to the kernel, so ``K^l ≈ a l``, and multiplies the APJN by
    ``1 + b/K^l`` (b the numerator). None for the post-LN stack (no power law).

    Examples
    --------
    >>> from critheory.blocks.transformer import transformer
    >>> one_token_exponent(transformer("transformer", "relu", tokens=1, cv=0.0), 2.0, 0.0)
    1.0
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "relu", tokens=1, cv=1.5)
    >>> round(ct.one_token_exponent(net, 0.5, 0.0), 6)
    1.0
    """
    from critheory.expectations.gaussian import expect

    if not net.everywhere_critical:
        return None
    a = net.attention
    sw, sb = check_weight_var(weight_var), check_bias_var(bias_var)
    v = sw + sb
    p2 = float(expect(net.activation, "phi2", v).value)
    d2 = float(expect(net.activation, "dphi2", v).value)
    c = a.cu * a.cv
    return (c + sw * sw * d2) / (c + sw * p2 + sb)
