"""Running a PyTorch model with hooks: the plumbing shared by the measurements
(:mod:`critheory.torch.measure`), critical initialization (:mod:`critheory.torch.init`) and the
Jacobian regularizer (:mod:`critheory.torch.regularizer`).

Submodules are designated by their names in ``model.named_modules()``; ``NAME@k`` is the k-th
call of a module that runs several times (a weight-tied stack). :func:`leaf_graph` is the one
forward pass that makes a representation ``h^{l0}`` a leaf of the autograd graph and records
later outputs; every hook is removed when the pass ends.

Examples
--------
>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2))
>>> h0, outs = source_graph(model, (torch.zeros(1, 3),), "0", ["2"])
>>> h0.requires_grad, outs["2"].shape
(True, torch.Size([1, 2]))
>>> split_call("blk@3"), call_label("blk", 3)
(('blk', 3), 'blk@3')
"""
from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
from torch import nn

from critheory.errors import InvalidArgumentError

__all__ = ["as_tuple", "first_tensor", "kept", "replace_first", "split_call", "call_label",
           "resolve_module", "forward_hooks", "run_forward", "is_forward_ad_gap", "leaf_graph",
           "source_graph"]


def as_tuple(inputs) -> tuple:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(inputs)
    raise InvalidArgumentError("inputs must be a tensor or a tuple of tensors, got "
                               f"{type(inputs).__name__}")


def first_tensor(out):
    """The tensor a module's output stands for (the first element of a tuple output)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def replace_first(out, new):
    if isinstance(out, torch.Tensor):
        return new
    return type(out)((new,) + tuple(out[1:])) if isinstance(out, tuple) else [new] + list(out[1:])


def _modules(model: nn.Module) -> dict:
    return dict(model.named_modules())


def split_call(name: str) -> tuple[str, int]:
    """``"blk@3"`` -> ``("blk", 3)``: the third call of a module that runs several times (a
    weight-tied stack); a plain name is the first call."""
    if isinstance(name, str):
        base, sep, k = name.rpartition("@")
        if sep and k.isdigit() and int(k) >= 1:
            return base, int(k)
    return name, 1


def call_label(base: str, call: int) -> str:
    return base if call == 1 else f"{base}@{call}"


def resolve_module(model: nn.Module, name: str, mods: dict | None = None) -> nn.Module:
    """The submodule ``name`` designates (``NAME@k``: the module ``NAME``); ``mods``:
    ``dict(model.named_modules())`` where the caller has it."""
    mods = _modules(model) if mods is None else mods
    base, _ = split_call(name)
    if not isinstance(name, str) or base not in mods:
        some = ", ".join(repr(n) for n in list(mods)[1:8])
        raise InvalidArgumentError(f"the model has no submodule named {name!r} (names are those "
                                   f"of model.named_modules(): {some}, ...; the k-th call of a "
                                   "module that runs several times is NAME@k)")
    return mods[base]


def _nth_call(fn: Callable, call: int) -> Callable:
    count = [0]

    def hook(mod, args, out):
        count[0] += 1
        return fn(mod, args, out) if count[0] == call else None
    return hook


@contextlib.contextmanager
def forward_hooks(model: nn.Module, hooks: Sequence[tuple[str, Callable]]):
    """Forward hooks ``(name, fn)`` for the duration of the block (``fn`` runs on the call of
    the module that ``name`` designates, see :func:`split_call`); always removed."""
    handles = []
    mods = _modules(model)
    try:
        for name, fn in hooks:
            handles.append(resolve_module(model, name, mods).register_forward_hook(
                _nth_call(fn, split_call(name)[1])))
        yield
    finally:
        for h in handles:
            h.remove()



def is_forward_ad_gap(exc: Exception) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, NotImplementedError) or "forward ad" in text
            or "forward-mode" in text or "double backward" in text
            or "derivative for" in text and "not implemented" in text)



def run_forward(model: nn.Module, inputs: tuple):
    try:
        return model(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        if is_forward_ad_gap(exc):
            raise                          # handled by apjn(method="auto")
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgumentError(f"the model fails on inputs of shape {shapes}: {msg}"
                                   ) from None



def kept(h):
    """``h`` as it is now: a copy (differentiable, and carrying forward-mode tangents) that
    later in-place operations of the model (``nn.ReLU(inplace=True)`` after a recorded layer)
    do not change; None stays None."""
    return None if h is None else h.clone()


def leaf_graph(model: nn.Module, inputs: tuple, source: str | None, targets: Sequence[str], *,
               keep_upstream: bool = False) -> tuple:
    """One forward pass keeping the graph, with ``h^{l0}`` (the output of submodule ``source``,
    or the first input where ``source`` is None or ``""``) a leaf of its own.

    Parameters
    ----------
    model : nn.Module
    inputs : tuple of torch.Tensor
        The positional inputs of ``model`` (see :func:`as_tuple`).
    source : str or None
        Name of the submodule whose output is ``h^{l0}``; None or ``""``: the first input.
    targets : sequence of str
        Submodules whose outputs are recorded (their first call, or ``NAME@k``).
    keep_upstream : bool
        Where ``h^{l0}`` already requires grad, keep it as it is (gradients then reach the
        parameters before the source: the differentiable regularizer); by default it is
        detached, so that ``h^{l0}`` is a leaf whatever came before (the measurements).

    Returns
    -------
    tuple
        ``(h0, {target: output}, model output)``; ``h0`` is None where ``source`` did not run,
        a target that did not run (or returns no tensor) is missing from the dictionary.
    """
    outs: dict = {}
    leaf: dict = {}

    def leaf_of(h):
        """``h^{l0}`` and the tensor that flows on: a copy of a new leaf, so that in-place
        operations of the model (``nn.ReLU(inplace=True)``) act on the copy, not on the leaf."""
        if keep_upstream and h.requires_grad:
            return h, h
        new = h.detach().requires_grad_(True)
        return new, new.clone()

    def src_hook(mod, args, out):
        if "h" in leaf:
            return None
        h = first_tensor(out)
        if h is None:
            raise InvalidArgumentError(f"submodule {source!r} does not return a tensor")
        leaf["h"], flow = leaf_of(h)
        return None if flow is h else replace_first(out, flow)

    def tgt_hook(name):
        def hook(mod, args, out):
            if name not in outs:
                outs[name] = kept(first_tensor(out))
            return None
        return hook

    at_input = source is None or source == ""
    hooks = [] if at_input else [(source, src_hook)]
    hooks += [(n, tgt_hook(n)) for n in targets]
    with forward_hooks(model, hooks), torch.enable_grad():
        ins = inputs
        if at_input:
            leaf["h"], flow = leaf_of(inputs[0])
            ins = (flow,) + tuple(inputs[1:])
        y = run_forward(model, ins)
    return leaf.get("h"), {k: v for k, v in outs.items() if v is not None}, y


def source_graph(model: nn.Module, inputs: tuple, source: str, targets: Sequence[str]) -> tuple:
    """:func:`leaf_graph` with ``h^{l0}`` always a leaf of its own, refusing a source or a
    target that did not run; returns ``(h0, {target: output})``."""
    h0, outs, _ = leaf_graph(model, inputs, source, targets)
    if h0 is None:
        raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs")
    for name in targets:
        if outs.get(name) is None:
            raise InvalidArgumentError(f"submodule {name!r} did not run on these inputs or "
                                       "returns no tensor")
    return h0, outs
