"""Jacobian regularization by random projections (Hoffman, Roberts, Yaida, arXiv:1908.02729).

The penalty is ``½ ‖J‖_F²`` per sample, ``J = ∂h^l/∂h^{l0}`` (input–output by default, or a
partial Jacobian between two named submodules). With ``v`` uniform on the unit sphere of one
sample's output space (dimension C), ``E[v vᵀ] = I/C``, so [HRY eq. 5]

    ``‖J‖_F² = C · E_v ‖vᵀ J‖²``,

one vector–Jacobian product per projection: the estimate with ``n_proj`` projections is
unbiased for every ``n_proj >= 1``, and differentiable (``create_graph=True``) so it can be
added to a loss. ``distribution="gaussian"`` uses ``v ~ N(0, I)`` over the whole batch tensor
(``E‖vᵀJ‖² = ‖J‖_F²``, no per-sample structure assumed; a larger variance).

The batch is the first dimension; the per-sample estimate assumes samples do not interact
(the Jacobian of the batch is block diagonal), as in every model in eval mode.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from critheory.torch import jacobian_norm_exact, jacobian_penalty
>>> lin = nn.Linear(3, 2, bias=False)
>>> x = torch.randn(5, 3)
>>> exact = jacobian_norm_exact(lin, x)        # ‖W‖_F² for every sample
>>> abs(exact - float(lin.weight.detach().pow(2).sum())) < 1e-5
True
>>> pen = jacobian_penalty(lin, x, n_proj=2, seed=0)
>>> pen.requires_grad, pen.shape
(True, torch.Size([]))
"""
from __future__ import annotations

import torch
from torch import nn

from critheory.errors import InvalidArgumentError
from critheory.torch.graph import as_tuple, first_tensor, leaf_graph
from critheory.torch.measure import resolve_generator
from critheory.common import limits

__all__ = ["jacobian_penalty", "jacobian_norm_exact", "MAX_EXACT_OUTPUTS"]

#: :func:`jacobian_norm_exact` runs one backward pass per output entry: at most this many
MAX_EXACT_OUTPUTS = limits.MAX_TORCH_EXACT_OUTPUTS


def _penalty_graph(model, inputs, source, target):
    """One forward pass; returns (h^{l0} requiring grad, h^l), gradients reaching the
    parameters before the source (:func:`~critheory.torch.graph.leaf_graph`)."""
    h0, outs, y = leaf_graph(model, as_tuple(inputs), source, [] if target is None else [target],
                             keep_upstream=True)
    h = first_tensor(y) if target is None else outs.get(target)
    if h0 is None or h is None:
        raise InvalidArgumentError("the source or the target submodule did not run")
    if not h.requires_grad:
        raise InvalidArgumentError("the target does not depend on the source")
    return h0, h


def jacobian_penalty(model: nn.Module, inputs, *, n_proj: int = 1, source: str | None = None,
                     target: str | None = None, distribution: str = "sphere",
                     reduction: str = "mean", seed: int | None = None,
                     generator: torch.Generator | None = None,
                     create_graph: bool = True) -> torch.Tensor:
    """``½‖J‖_F²`` estimated with ``n_proj`` random projections (unbiased, differentiable).

    Parameters
    ----------
    model : nn.Module
    inputs : Tensor or tuple of Tensors
        A batch (first dimension); for ``source=None`` the Jacobian is taken with respect to
        the first tensor.
    n_proj : int
        Random projections (one backward pass each).
    source, target : str, optional
        Named submodules for a partial Jacobian ``∂h^target/∂h^source`` (default: the model's
        input and output).
    distribution : {"sphere", "gaussian"}
        ``v`` uniform on each sample's unit sphere (scaled by C, [HRY]) or ``N(0, I)``.
    reduction : {"mean", "sum"}
        Average or sum over the samples of the batch.
    seed, generator
        Randomness of the projections: a CPU ``torch.Generator``, or a seed (its
        ``"projections"`` stream, :func:`~critheory.torch.measure.seed_generator`); neither:
        torch's global generator (``torch.manual_seed`` makes it reproducible).
    create_graph : bool
        Keep the graph (True: the penalty can be back-propagated into the parameters).

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(),
    ...                             torch.nn.Linear(32, 4))
    >>> x = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    >>> p = jacobian_penalty(model, x, n_proj=4, seed=0)
    >>> p.ndim, p.requires_grad                         # add it to the loss
    (0, True)
    """
    if isinstance(n_proj, bool) or not isinstance(n_proj, int) or n_proj < 1:
        raise InvalidArgumentError(f"n_proj must be an integer >= 1, got {n_proj!r}")
    if distribution not in ("sphere", "gaussian"):
        raise InvalidArgumentError(f"distribution must be 'sphere' or 'gaussian', got "
                                   f"{distribution!r}")
    if reduction not in ("mean", "sum"):
        raise InvalidArgumentError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    gen = resolve_generator(seed, generator, "projections")
    h0, h = _penalty_graph(model, inputs, source, target)
    batch = h.shape[0] if h.dim() > 0 else 1
    total = h.new_zeros(())
    for p in range(n_proj):
        v = torch.randn(h.shape, generator=gen, dtype=torch.float64, device=gen.device)
        if distribution == "sphere":
            flat = v.reshape(batch, -1)
            c = flat.shape[1]
            v = (flat / flat.norm(dim=1, keepdim=True) * c ** 0.5).reshape(h.shape)
        v = v.to(dtype=h.dtype, device=h.device)
        (g,) = torch.autograd.grad(h, h0, v, create_graph=create_graph,
                                   retain_graph=create_graph or p < n_proj - 1)
        total = total + g.pow(2).sum()
    est = total / n_proj
    if reduction == "mean":
        est = est / batch
    return 0.5 * est


def jacobian_norm_exact(model: nn.Module, inputs, *, source: str | None = None,
                        target: str | None = None, reduction: str = "mean") -> float:
    """Exact ``‖J‖_F²`` (per sample, averaged or summed over the batch): one backward pass per
    entry of the output, at most :data:`MAX_EXACT_OUTPUTS`. :func:`jacobian_penalty`
    estimates half of it.

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]))
    >>> jacobian_norm_exact(lin, torch.ones(5, 3))      # ‖W‖_F² for a linear map
    7.0
    """
    if reduction not in ("mean", "sum"):
        raise InvalidArgumentError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    h0, h = _penalty_graph(model, inputs, source, target)
    n = h.numel()
    if n > MAX_EXACT_OUTPUTS:
        raise InvalidArgumentError(f"the exact Jacobian needs {n} backward passes; at most "
                                   f"{MAX_EXACT_OUTPUTS}: use jacobian_penalty")
    total = 0.0
    flat_grad = torch.zeros(n, dtype=h.dtype, device=h.device)
    for i in range(n):
        flat_grad.zero_()
        flat_grad[i] = 1.0
        (g,) = torch.autograd.grad(h, h0, flat_grad.view(h.shape), retain_graph=i < n - 1)
        total += float(g.double().pow(2).sum())
    batch = h.shape[0] if h.dim() > 0 else 1
    return total / batch if reduction == "mean" else total

