"""The simulator's one block interpreter: a forward step, a tangent (Jacobian-vector) step and a
cotangent (vector-Jacobian) step per block kind, used by every measurement.

Every simulation — the kernels and APJN (:mod:`.engine`), the finite-width measurements
(:mod:`.finitewidth`), the empirical NTK (:mod:`.ntk`), the transformers (:mod:`.transformer`),
the Jacobian spectra (:mod:`.spectra`) and the shaped networks of the SDE (:mod:`.shaped`) —
runs the blocks of :mod:`critheory.blocks` through
:func:`run`, which dispatches on ``block.kind`` through one table, :data:`STEPS`. What differs
between measurements is only where the random numbers come from (a *sampler*, which keeps each
measurement's random streams) and what is read off the representation.

Layout
------
A representation is ``x`` of shape ``(B, N, C)``: B networks, N neurons (axis -2), C columns.
The columns are the tokens of a token network (``C = T``; a token is a column) or the inputs
of a one-token network (C = 1 or 2). Tangents ``t`` have shape ``(B, N, P·T)``: P directions,
each T columns, belonging to the first T columns of ``x`` (the first input's tokens). Every
block but attention acts on each column alone.

=============  ===============================  ==============================================
block          forward                          tangent ``t``
=============  ===============================  ==============================================
dense          ``W x + b`` (one bias per         ``W t``; ``W ~ N(0, σ_w²/N_in)``,
               neuron, shared by the columns)   ``b ~ N(0, σ_b²)`` with the block's own
                                                σ² where it has them, output ``width·N``
phi            ``φ(x)``                         ``φ'(x) ⊙ t`` (at the token of each column)
layernorm      ``(x − mean)/s`` over N          ``(t − mean(t) − y mean(y t))/s``
rmsnorm        ``x/r``, ``r = √(mean(x²) + ε)``   ``(t − y mean(y t))/r``
residual       ``μ x + branch(x)``              ``μ t + branch'(x) t``
mlp            dense(width M) → phi → dense     (its blocks')
attention      ``W_U concat_h(v_h Aᵀ)``,        ``W_U concat_h(v_h δAᵀ + δv_h Aᵀ)``,
               ``A = softmax(q_hᵀ k_h · s)``    ``δA = A ⊙ (δz − Σ_r A δz)``
=============  ===============================  ==============================================

Samplers give ``matmul(x, var, n_out)`` (a fresh ``W @ x``, ``W ~ N(0, var/N_in)``) and
``bias(n, var)`` (``(B, n, 1)``, or 0 for a sampler that draws no zero-variance biases); the
dense step applies one matrix to the concatenation ``[x, t]`` (so that a projected sampler
draws them jointly, exactly in law: :mod:`.sampling`). A sampler with a ``last_weight``
attribute lets the forward pass record a *tape* for the cotangent steps (:func:`back`, the
NTK's reverse pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from critheory.blocks.blocks import Dense, Phi, walk
from critheory.errors import InvalidArgumentError
from .layernorm import layer_norm, layer_norm_jvp, rms_norm, rms_norm_jvp

__all__ = ["Context", "run", "dense", "STEPS", "COTANGENTS", "back", "out_width",
           "check_blocks", "check_cotangents"]


@dataclass(frozen=True)
class Context:
    """Everything a step needs besides the sampler: the unit's blocks, φ, φ', the network's
    σ_w², σ_b², its width N (the unit for a dense block's ``width``), the token count T and an
    epsilon added to every normalization block's own (LayerNorm, RMSNorm)."""

    unit: tuple
    phi: Callable
    dphi: Callable
    weight_var: float
    bias_var: float
    ln_eps: float = 0.0
    width: int | None = None
    tokens: int = 1

    @property
    def uses_ln(self) -> bool:
        return any(b.normalizes for b in walk(self.unit))


def out_width(block, width: int) -> int:
    """The output width of a dense block on a network of width ``width`` (its ``width``
    multiple, which must give a whole number of neurons)."""
    r = getattr(block, "width", 1.0)
    if r == 1.0:
        return width
    n = round(r * width)
    if abs(r * width - n) > 1e-9 * r * width or n < 1:
        raise InvalidArgumentError(f"a dense block of width {r:g} x N needs a whole number of "
                                   f"neurons; N = {width} gives {r * width:g}")
    return int(n)


def _concat(sampler, a, b):
    bk = getattr(sampler, "bk", None)   # backend of the sampler (None: numpy float64)
    if bk is None:
        return np.concatenate([a, b], axis=-1)
    return bk.concat([a, b], axis=-1)


def dense(sampler, ctx: Context, x, t, block=None, tape=None):
    """``W [x, t] + [b, 0]``: (new representation, new tangents or None).

    ``block`` (a Dense block, optional; None: the stem) gives its own σ_w², σ_b² (else the
    network's) and its output width as a multiple of ``ctx.width`` (else the input's)."""
    n_in = x.shape[-1]
    if block is None:
        n, sw, sb = x.shape[-2], ctx.weight_var, ctx.bias_var
    else:
        sw, sb = block.variances(ctx.weight_var, ctx.bias_var)
        n = out_width(block, ctx.width or x.shape[-2])
    y = sampler.matmul(x if t is None else _concat(sampler, x, t), sw, n)
    h = y[..., :n_in] + sampler.bias(n, sb)
    if tape is not None:
        z = x[..., 0]
        tape.append(("dense", sampler.last_weight, np.einsum("bj,bj->b", z, z) / x.shape[-2]))
    return h, (None if t is None else y[..., n_in:])


def _per_token(t, T: int):
    """Tangents ``(B, N, P·T)`` as ``(B, P, N, T)`` (neurons on axis -2 per direction)."""
    B, N, PT = t.shape
    return np.moveaxis(t.reshape(B, N, PT // T, T), 2, 1)


def _columns(u):
    """The inverse of :func:`_per_token`."""
    B, P, N, T = u.shape
    return np.moveaxis(u, 1, 2).reshape(B, N, P * T)


def _phi(block, sampler, ctx: Context, x, t, tape):
    a = ctx.phi(x)
    if getattr(a, "shape", None) != x.shape and isinstance(x, np.ndarray):
        a = np.broadcast_to(a, x.shape).astype(x.dtype)     # a constant φ
    if tape is not None:
        tape.append(("phi", ctx.dphi(x)[..., 0]))
    if t is None:
        return a, None
    T = ctx.tokens
    d = ctx.dphi(x[..., :T])
    if T == 1:
        return a, d * t
    return a, (t.reshape(t.shape[0], t.shape[1], -1, T) * d[:, :, None, :]).reshape(t.shape)


def _normalization(forward, jvp):
    """The step of a normalization block from its forward map and its Jacobian-vector product
    (per column; tangents per token)."""

    def step(block, sampler, ctx: Context, x, t, tape):
        y, s = forward(x, block.eps + ctx.ln_eps)
        if tape is not None:
            tape.append((block.kind, y[..., 0], s[..., 0]))
        if t is None:
            return y, None
        T = ctx.tokens
        if T == 1:
            return y, jvp(y[..., :1], s[..., :1], t)
        return y, _columns(jvp(y[:, None, :, :T], s[:, None, :, :T], _per_token(t, T)))

    return step


_layernorm = _normalization(layer_norm, layer_norm_jvp)
_rmsnorm = _normalization(rms_norm, rms_norm_jvp)


def _residual(block, sampler, ctx: Context, x, t, tape):
    sub = None if tape is None else []
    x2, t2 = run(block.branch, sampler, ctx, x, t, sub)
    x2 += block.mu * x
    if t2 is not None:
        t2 += block.mu * t
    if tape is not None:
        tape.append(("residual", block.mu, sub))
    return x2, t2


def _mlp(block, sampler, ctx: Context, x, t, tape):
    """``φ(W₁ x + b₁)`` of width ``M N``, then ``W₂ · + b₂`` (the network's variances)."""
    return run((Dense(width=block.ratio), Phi(), Dense()), sampler, ctx, x, t, tape)


def _attention(block, sampler, ctx: Context, x, t, tape):
    if tape is not None:
        raise InvalidArgumentError("the simulator has no cotangent step for an attention block")
    B, n, T = x.shape
    H = block.heads
    if n % H:
        raise InvalidArgumentError(f"heads ({H}) must divide the width ({n})")
    C = n // H
    scale = 1.0 / math.sqrt(C) if block.logit_scale == "sqrt" else 1.0 / C
    xt = x if t is None else _concat(sampler, x, t)
    q, k, v = (sampler.matmul(xt, c, n) for c in (block.cq, block.ck, block.cv))
    P = 0 if t is None else t.shape[-1] // T

    def heads(a):       # (B, n, T) -> (B, H, C, T)
        return a.reshape(B, H, C, T)

    def dheads(a):      # (B, n, P·T) -> (B, H, C, P, T)
        return a.reshape(B, H, C, P, T)

    q0, k0, v0 = (heads(a[..., :T]) for a in (q, k, v))
    z = np.einsum("bhcs,bhcr->bhsr", q0, k0) * scale
    mask = np.tril(np.ones((T, T), dtype=bool)) if block.causal else np.ones((T, T), bool)
    z = np.where(mask, z, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    A = np.exp(z)
    A /= A.sum(axis=-1, keepdims=True)                                   # (B, H, T, T)
    o = np.einsum("bhsr,bhcr->bhcs", A, v0).reshape(B, n, T)
    if t is not None:
        dq, dk, dv = (dheads(a[..., T:]) for a in (q, k, v))
        dz = (np.einsum("bhcps,bhcr->bphsr", dq, k0)
              + np.einsum("bhcs,bhcpr->bphsr", q0, dk)) * scale
        dz = np.where(mask, dz, 0.0)
        Ap = A[:, None]
        dA = Ap * (dz - (Ap * dz).sum(axis=-1, keepdims=True))            # (B, P, H, T, T)
        do = (np.einsum("bphsr,bhcr->bhcps", dA, v0)
              + np.einsum("bhsr,bhcpr->bhcps", A, dv)).reshape(B, n, P * T)
        o = _concat(sampler, o, do)
    y = sampler.matmul(o, block.cu, n)
    return y[..., :T], (None if t is None else y[..., T:])


def _dense_step(block, sampler, ctx, x, t, tape):
    return dense(sampler, ctx, x, t, block, tape)


#: The forward and tangent step of each block kind: ``(block, sampler, ctx, x, t, tape) ->
#: (x', t')`` (``t`` None: no tangents; ``tape`` None: no record for a reverse pass).
STEPS = {"dense": _dense_step, "phi": _phi, "layernorm": _layernorm, "rmsnorm": _rmsnorm,
         "residual": _residual, "mlp": _mlp, "attention": _attention}


def check_blocks(blocks, what: str = "the simulator") -> None:
    """Refuse, by name, a block kind the interpreter has no step for."""
    for b in walk(blocks):
        if b.kind not in STEPS:
            raise InvalidArgumentError(f"{what} has no step for a {b.kind!r} block")


def run(blocks, sampler, ctx: Context, x, t=None, tape=None):
    """The blocks in order: ``(x, t) -> (x', t')`` (module docstring); a record of each step
    is appended to ``tape`` when given (for :func:`back`)."""
    for b in blocks:
        step = STEPS.get(b.kind)
        if step is None:
            raise InvalidArgumentError(f"the simulator has no step for a {b.kind!r} block")
        x, t = step(b, sampler, ctx, x, t, tape)
    return x, t


# ------------------------------------------------------------------ cotangents (reverse mode)
def _back_dense(op, g, rate):
    _, W, xn = op
    return g @ W, rate(xn)[:, None] * np.einsum("bkj,bkj->bk", g, g)


def _back_phi(op, g, rate):
    return g * op[1][:, None, :], 0.0


def _back_layernorm(op, g, rate):
    _, y, s = op
    y3 = y[:, None, :]
    return (g - g.mean(axis=2, keepdims=True)
            - y3 * (g * y3).mean(axis=2, keepdims=True)) / s[:, None, :], 0.0


def _back_rmsnorm(op, g, rate):
    _, y, r = op            # (I − yyᵀ/N)/r is symmetric: the cotangent step is the tangent's
    y3 = y[:, None, :]
    return (g - y3 * (g * y3).mean(axis=2, keepdims=True)) / r[:, None, :], 0.0


def _back_residual(op, g, rate):
    _, mu, sub = op
    gb, tb = back(sub, g, rate)
    return mu * g + gb, tb


#: The cotangent step of each recorded block kind: ``(record, g, rate) -> (g', Θ̂ share)``
#: with ``g`` the cotangents ``(B, k, N)`` of the block's output (a dense block adds
#: ``rate(|x|²/N_in) |g|²``, its share of the NTK diagonal).
COTANGENTS = {"dense": _back_dense, "phi": _back_phi, "layernorm": _back_layernorm,
              "rmsnorm": _back_rmsnorm, "residual": _back_residual}


#: Block kinds whose forward step is a composition of recorded kinds (no cotangent of their own).
_COMPOSED = frozenset({"mlp"})


def check_cotangents(blocks, what: str = "the simulator's reverse pass") -> None:
    """Refuse, by name, a block kind with no cotangent step (before any work)."""
    check_blocks(blocks, what)
    for b in walk(blocks):
        if b.kind not in COTANGENTS and b.kind not in _COMPOSED:
            raise InvalidArgumentError(f"{what} has no cotangent step for a {b.kind!r} block")


def back(tape, g, rate):
    """Reverse pass of one recorded layer: the cotangent of its input and the Θ̂ contributions
    of its dense blocks (``rate(xnorm) = λ_b + λ_W |x|²/n`` of this layer)."""
    theta = 0.0
    for op in reversed(tape):
        g, share = COTANGENTS[op[0]](op, g, rate)
        theta = theta + share
    return g, theta
