"""The averaged partial Jacobian norm (APJN) of any ``nn.Module``, measured with random probes.

Definition (the convention of critheory's simulator, :mod:`critheory.simulation.engine`, and of
Doshi, He, Gromov, arXiv:2111.12143, eq. 2): for representations ``h^{l0}`` and ``h^l`` (the
outputs of two submodules on a batch of inputs)

    ``J^{l0,l} = ‖∂h^l/∂h^{l0}‖_F² / numel(h^l)``,

with the Jacobian of the whole batch tensor. Where the samples of a batch do not interact (every
model here in eval mode; not BatchNorm in training mode) that Jacobian is block diagonal, so
``J^{l0,l}`` is the mean over samples of ``(1/N_l) Σ_ij (∂h^l_i/∂h^{l0}_j)²``, with ``N_l`` the
size of one sample's representation (channels × positions for a CNN, tokens × width for a
transformer) — the paper's APJN averaged over the batch.

Estimators [Hoffman, Roberts, Yaida, arXiv:1908.02729, §2]:

* ``vmap`` (the default where the model allows it): ``v ~ N(0, I)`` in the shape of ``h^{l0}``,
  ``E‖J v‖² = ‖J‖_F²``; every later layer at once. The products ``J v`` of all probes come
  from one forward pass of ``torch.func.jvp`` batched over the probes by ``torch.func.vmap``
  (in batches of at most :data:`MAX_VMAP_BYTES` of tangents), after one plain forward pass
  that finds ``h^{l0}``;
* ``jvp``: the same products from one forward pass, one backward pass that keeps its graph,
  and one double-backward pass per probe (``J v = ∂(v·Jᵀu)/∂u``, "reverse over reverse"):
  on CPU builds of PyTorch several times faster than unbatched forward-mode AD for dense
  layers. ``forward`` computes them by ``torch.autograd.forward_ad`` (one pass per probe, no
  graph kept: the least memory);
* ``vjp``: ``u ~ N(0, I)`` in the shape of ``h^l``, ``E‖uᵀJ‖² = ‖J‖_F²``, one backward pass
  per probe and layer (for operations without a double-backward formula, such as the fused
  attention kernels of ``nn.TransformerEncoderLayer``);
* ``exact``: ``J e_j`` for every coordinate of ``h^{l0}`` (``numel(h^{l0})`` products,
  limited to :data:`MAX_EXACT`).

With the same generator the three routes draw the same probes, so they give the same
estimates to rounding; ``auto`` takes ``vmap``, the fastest where it runs (benchmarks/
bench_torch_apjn.py), and falls back to ``jvp`` where ``torch.func`` refuses the model
(in-place updates of captured tensors: BatchNorm or Dropout in training mode, buffers written
in the forward pass; operations without a forward-mode formula), then to ``vjp``.

Each probe gives an unbiased estimate; the result holds their mean and standard error over
probes (the Monte Carlo error of the estimate for this model and batch; the spread between
random networks is a different quantity, measured by repeating over models).

The model is not changed: forward hooks are registered for one call and removed in a
``finally`` clause, parameters and their ``.grad`` are not touched, train/eval mode is kept.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from critheory.torch import apjn
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Identity(), nn.Linear(8, 8, bias=False))
>>> with torch.no_grad():
...     _ = model[2].weight.copy_(torch.eye(8))
>>> res = apjn(model, torch.randn(4, 8), source="0", targets=["0", "2"], method="exact")
>>> res.mean.tolist()          # an identity layer: J = 1 exactly
[1.0, 1.0]
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
import torch.autograd.forward_ad as fwAD

from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError
from critheory.torch.graph import (as_tuple, call_label, first_tensor, forward_hooks, kept,
                                   is_forward_ad_gap, replace_first, resolve_module, run_forward,
                                   source_graph, split_call)
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["APJNResult", "apjn", "apjn_pairs", "execution_order", "layers_of_type", "LAYER_TYPES",
           "MAX_EXACT", "MAX_PROBES", "STREAMS", "seed_generator", "resolve_generator",
           "measuring"]

#: module types whose outputs are the "layers" when none are named
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: the exact mode runs one forward pass per coordinate of h^{l0}: at most this many
MAX_EXACT = limits.MAX_TORCH_EXACT_COORDINATES
#: at most this many probes in one call
MAX_PROBES = limits.MAX_TORCH_PROBES
#: method="vmap" pushes at most this many bytes of tangents through the model at once
MAX_VMAP_BYTES = limits.MAX_TORCH_VMAP_BYTES
_METHODS = ("auto", "vmap", "jvp", "forward", "vjp", "exact")


@dataclass(frozen=True, eq=False)
class APJNResult:
    """APJN ``J^{source,l}`` for each target layer ``l``.

    Attributes
    ----------
    source : str
        Name of the submodule whose output is ``h^{l0}`` (``""``: the model's input).
    layers : tuple of str
        Target submodules, in the order given (execution order by default).
    mean, stderr : ndarray, shape (T,)
        Mean of the per-probe estimates and its standard error (``std(ddof=1)/√P``; 0 for the
        exact mode, NaN for one probe).
    samples : ndarray, shape (P, T)
        The per-probe estimates (one row for the exact mode).
    probes : int or None
        Number of probes P (None: exact).
    method : str
        ``"vmap"``, ``"jvp"``, ``"forward"``, ``"vjp"`` or ``"exact"`` (what ran; ``auto``
        resolves to ``vmap``, ``jvp`` or ``vjp``).
    numel : tuple of int
        Number of entries of each target's output tensor (the normalization).
    sources : tuple of str
        :func:`apjn_pairs`: the first layer of each pair (empty otherwise).
    mode : str
        ``"eval"`` or ``"train"``: the mode the model was measured in (``train`` only where
        some module was in training mode).

    Examples
    --------
    >>> import torch
    >>> from critheory.torch import apjn
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(),
    ...                             torch.nn.Linear(64, 1))
    >>> r = apjn(model, torch.randn(8, 16, generator=torch.Generator().manual_seed(0)), seed=0)
    >>> isinstance(r, APJNResult), r.layers, r.method, float(r.mean[0])   # J^(0,0) = 1
    (True, ('0', '2'), 'vmap', 1.0)
    """

    __repr__ = short_repr

    source: str
    layers: tuple
    mean: np.ndarray
    stderr: np.ndarray
    samples: np.ndarray
    probes: int | None
    method: str
    numel: tuple
    sources: tuple = ()
    mode: str = "eval"

    def to_dict(self) -> dict:
        """JSON-ready summary (None for NaN)."""
        out = {"source": self.source, "layers": list(self.layers), "apjn_mean": self.mean,
               "apjn_stderr": self.stderr, "probes": self.probes, "method": self.method,
               "numel": list(self.numel), "mode": self.mode}
        if self.sources:
            out["sources"] = list(self.sources)
        return jsonable(out)


@contextlib.contextmanager
def measuring(model: nn.Module, mode: str = "eval"):
    """Run a measurement on ``model`` without changing it: in eval mode (``mode="eval"``: the
    default of every measurement, Dropout off and BatchNorm on its running statistics) or in
    the mode it is in (``"train"``); afterwards every module's train/eval flag is restored and
    every buffer (BatchNorm running statistics, ``num_batches_tracked``) is put back bit for
    bit.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).train()
    >>> before = m[1].running_mean.clone()
    >>> with measuring(m, "train"):
    ...     _ = m(torch.randn(4, 3))
    >>> bool(torch.equal(before, m[1].running_mean)), m.training
    (True, True)
    """
    if mode not in ("eval", "train"):
        raise InvalidArgumentError(f"mode must be 'eval' or 'train', got {mode!r}")
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(owner, name, b, b.detach().clone()) for owner in model.modules()
               for name, b in owner.named_buffers(recurse=False) if b is not None]
    try:
        if mode == "eval":
            model.eval()
        yield
    finally:
        with torch.no_grad():
            for owner, name, b, saved in buffers:
                if getattr(owner, name, None) is not b:   # replaced rather than updated
                    setattr(owner, name, b)
                b.copy_(saved)
        for m, flag in flags:
            m.training = flag


def execution_order(model: nn.Module, inputs, names: Iterable[str] | None = None) -> list[str]:
    """Names of the submodules (all, or ``names``) in the order their forward first returns on
    ``inputs`` (one forward pass without gradients; submodules that do not run are left out).

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    >>> execution_order(m, torch.zeros(1, 3))
    ['0', '1', '2', '']

    A module that runs several times (weights tied across layers) is listed once per call,
    ``NAME@k`` for its k-th call (a plain name in ``names`` stands for all its calls):

    >>> lin = nn.Linear(3, 3)
    >>> execution_order(nn.Sequential(lin, nn.Tanh(), lin), torch.zeros(1, 3), ["0"])
    ['0', '0@2']
    """
    inputs = as_tuple(inputs)
    wanted = list(dict(model.named_modules())) if names is None else list(names)
    with measuring(model, "train"):                       # mode kept, buffers restored
        return _scout(model, inputs, wanted).order


@dataclass(frozen=True)
class _Scout:
    """What one forward pass without gradients saw: the calls of the wanted submodules in the
    order they returned, the size of each call's output (entries, bytes) and ``h^{l0}``."""

    order: list
    numel: dict
    nbytes: dict
    h0: Any


def _scout(model: nn.Module, inputs: tuple, wanted: Sequence[str],
           source: str | None = None, first_of: Iterable[str] = ()) -> _Scout:
    """One forward pass without gradients recording the calls of ``wanted`` (see
    :func:`execution_order`) and ``h^{l0}``: the output of ``source`` (the first input for
    ``""``), or where ``source`` is None the output of the first call of a module named in
    ``first_of`` to return (the default source). The model's mode and buffers are the
    caller's to keep."""
    first_of = set(first_of)
    wanted = list(wanted) + ([source] if source else [])
    exact = set(wanted)
    plain = {n for n in wanted if split_call(n)[1] == 1 and "@" not in n}
    bases = list(dict.fromkeys(split_call(n)[0] for n in wanted))
    order: list[str] = []
    numel: dict = {}
    nbytes: dict = {}
    seen: dict = {"h0": inputs[0] if source == "" else None}

    def rec(base):
        count = [0]

        def hook(mod, args, out):
            count[0] += 1
            label = call_label(base, count[0])
            if label not in order and (label in exact or base in plain):
                order.append(label)
                h = first_tensor(out)
                if h is not None:
                    numel[label] = h.numel()
                    nbytes[label] = h.numel() * h.element_size()
                    if label == source or (source is None and seen["h0"] is None
                                           and base in first_of):
                        seen["h0"] = h.detach().clone()     # later in-place ops change h
        return hook

    handles = []
    mods = dict(model.named_modules())
    try:
        for b in bases:
            handles.append(resolve_module(model, b, mods).register_forward_hook(rec(b)))
        with torch.no_grad():
            run_forward(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return _Scout(order, numel, nbytes, seen["h0"])


def is_type(module: nn.Module, types) -> bool:
    """Whether ``module`` is one of ``types``: classes, or class names (``"Conv1D"`` matches
    HuggingFace's ``transformers.pytorch_utils.Conv1D`` without importing it; the names of the
    module's base classes count too)."""
    types = types if isinstance(types, (tuple, list)) else (types,)
    names = {c.__name__ for c in type(module).__mro__}
    return any(isinstance(module, t) if isinstance(t, type) else t in names for t in types)


def _check_types(types) -> tuple:
    types = tuple(types) if isinstance(types, (tuple, list)) else (types,)
    if not types or not all(isinstance(t, (type, str)) and t for t in types):
        raise InvalidArgumentError("layer_type must be a module class, a class name or a tuple "
                                   f"of them, got {types!r}")
    return types


def _names_of_type(model: nn.Module, types) -> list[str]:
    types = _check_types(types)
    return [n for n, m in model.named_modules() if is_type(m, types)]


def layers_of_type(model: nn.Module, inputs, types=LAYER_TYPES) -> list[str]:
    """Names of the submodules of the given types (classes or class names, see
    :func:`is_type`), in execution order on ``inputs``; a module that runs several times is
    listed once per call (``NAME@k``, see :func:`execution_order`).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(),
    ...                             torch.nn.Linear(64, 1))
    >>> layers_of_type(model, torch.zeros(2, 16))
    ['0', '2']
    """
    names = _names_of_type(model, types)
    return execution_order(model, inputs, names) if names else []


#: the independent random streams of one seed: ``SeedSequence(seed).spawn(len(STREAMS))[i]``
#: seeds the torch generator of stream ``STREAMS[i]``
STREAMS = ("weights", "probes", "inputs", "projections")


def seed_generator(seed: int, stream: str, device: str | torch.device = "cpu"
                   ) -> torch.Generator:
    """A torch generator for one of the independent streams (:data:`STREAMS`) of ``seed``.

    The streams of one seed are the children of ``numpy.random.SeedSequence(seed)``, so the
    weights drawn by ``init_critical_(model, seed=0)`` and the probes of ``apjn(..., seed=0)``
    are independent (the same fresh generator for both would make the probes equal to the
    first weights).

    Examples
    --------
    >>> a = torch.randn(3, generator=seed_generator(0, "weights"), dtype=torch.float64)
    >>> b = torch.randn(3, generator=seed_generator(0, "probes"), dtype=torch.float64)
    >>> bool(torch.equal(a, b)), bool(torch.equal(a, torch.randn(
    ...     3, generator=seed_generator(0, "weights"), dtype=torch.float64)))
    (False, True)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed must be an integer >= 0, got {seed!r}")
    if stream not in STREAMS:
        raise InvalidArgumentError(f"stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    child = np.random.SeedSequence(int(seed)).spawn(len(STREAMS))[STREAMS.index(stream)]
    g = torch.Generator(device=device)
    g.manual_seed(int(child.generate_state(1, np.uint64)[0]))
    return g


def resolve_generator(seed: int | None, generator: torch.Generator | None,
               stream: str = "probes") -> torch.Generator:
    """PyTorch's rule: ``generator`` if given; else, with a ``seed``, the generator of that
    seed's ``stream`` (:func:`seed_generator`); else torch's global (default CPU) generator,
    so that ``torch.manual_seed`` alone makes a run reproducible."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise InvalidArgumentError("generator must be a torch.Generator, got "
                                       f"{type(generator).__name__}")
        if seed is not None:
            raise InvalidArgumentError("give seed or generator, not both")
        return generator
    if seed is None:
        return torch.default_generator
    return seed_generator(seed, stream)


def _gaussian(like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """N(0, I) in the shape, dtype and device of ``like`` (drawn on the generator's device)."""
    z = torch.randn(like.shape, generator=gen, dtype=torch.float64, device=gen.device)
    return z.to(dtype=like.dtype, device=like.device)


def _check(model, probes, method):
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(method, str) or method not in _METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    if method != "exact":
        if isinstance(probes, bool) or not isinstance(probes, int) or not 1 <= probes <= MAX_PROBES:
            raise InvalidArgumentError(f"probes must be an integer in [1, {MAX_PROBES}], got "
                                       f"{probes!r}")


# ----------------------------------------------------------------------------- passes
def _jvp_pass(model, inputs, source, targets, tangent_for) -> tuple[dict, dict]:
    """One forward pass with the tangent ``tangent_for(h^{l0})`` entering at ``source``;
    returns ``{target: ‖tangent‖²}`` and ``{target: numel}``."""
    sq: dict = {}
    numel: dict = {}
    done = {"src": False}

    def src_hook(mod, args, out):
        if done["src"]:
            return None
        h = first_tensor(out)
        if h is None:
            raise InvalidArgumentError(f"submodule {source!r} does not return a tensor")
        done["src"] = True
        with warnings.catch_warnings():
            # torch's first make_dual loads its forward-mode decompositions through
            # torch.jit.script, which torch itself deprecates: not the caller's to act on
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated",
                                    category=DeprecationWarning)
            dual = fwAD.make_dual(h.clone(), tangent_for(h))   # in-place ops act on a copy
        return replace_first(out, dual)

    def tgt_hook(name):
        def hook(mod, args, out):
            if name in sq:
                return None
            h = first_tensor(out)
            if h is None:
                raise InvalidArgumentError(f"submodule {name!r} does not return a tensor")
            t = fwAD.unpack_dual(h).tangent
            numel[name] = h.numel()
            sq[name] = 0.0 if t is None else float(torch.sum(t.double() ** 2))
            return None
        return hook

    hooks = [] if source == "" else [(source, src_hook)]
    hooks += [(n, tgt_hook(n)) for n in targets]
    with forward_hooks(model, hooks), torch.no_grad(), fwAD.dual_level():
        ins = inputs
        if source == "":
            x = inputs[0]
            ins = (fwAD.make_dual(x, tangent_for(x)),) + inputs[1:]
        run_forward(model, ins)
    return sq, numel


def _vjp(model, inputs, source, targets, probes, gen, tick=None) -> tuple[np.ndarray, dict]:
    """Reverse mode: one forward pass keeping the graph, then one backward pass per probe and
    target (``E‖uᵀJ‖² = ‖J‖_F²``)."""
    h0, outs = source_graph(model, inputs, source, targets)
    samples = np.zeros((probes, len(targets)))
    numel = {t: outs[t].numel() for t in targets}
    for k, name in enumerate(targets):
        y = outs[name]
        if not y.requires_grad or name == source:
            continue                      # does not depend on h^{l0} (J = 0), or J = 1
        for p in range(probes):
            if tick is not None:
                tick()
            u = _gaussian(y, gen)
            (g,) = torch.autograd.grad(y, h0, u, retain_graph=True, allow_unused=True)
            samples[p, k] = 0.0 if g is None else float(torch.sum(g.double() ** 2)) / y.numel()
    return samples, numel


def _jvp_rr(model, inputs, source, targets, tangents) -> tuple[np.ndarray, dict]:
    """``J v`` for every target at once by differentiating the VJP ("reverse over reverse"):
    ``g(u) = Σ_k J_kᵀ u_k`` is linear in the dummy cotangents ``u_k``, so
    ``∂(g·v)/∂u_k = J_k v``. One forward pass, one backward pass with ``create_graph``, then one
    double-backward pass per tangent ``v`` in ``tangents`` (an iterable of functions of h0).
    On CPU builds of PyTorch this is several times faster than ``torch.autograd.forward_ad``
    for dense layers (measured on 64 tanh layers of ``nn.Linear`` 1024×1024: ~15 ms per layer
    and probe for forward mode, ~2 ms for the three passes together)."""
    h0, outs = source_graph(model, inputs, source, targets)
    numel = {t: outs[t].numel() for t in targets}
    dep = [t for t in targets if t != source and outs[t].requires_grad]
    rows = []
    if not dep:
        for _ in tangents:
            rows.append([0.0] * len(targets))
        return np.array(rows), numel
    us = [torch.zeros_like(outs[t], requires_grad=True) for t in dep]
    (g,) = torch.autograd.grad([outs[t] for t in dep], h0, us, create_graph=True,
                               allow_unused=True)
    for make in tangents:
        v = make(h0)
        if g is None or not g.requires_grad:
            jvs = [None] * len(dep)           # J does not depend on the input: J v = 0
        else:
            jvs = torch.autograd.grad(g, us, v, retain_graph=True, allow_unused=True)
        sq = {t: (0.0 if jv is None else float(torch.sum(jv.double() ** 2)))
              for t, jv in zip(dep, jvs)}
        rows.append([sq.get(t, 0.0) for t in targets])
    return np.array(rows), numel


class _VmapRefused(Exception):
    """``torch.func`` cannot run the model (the first line of its reason is the message)."""


def _jvp_vmap(model, inputs, source, targets, tangents, scout: _Scout | None = None
              ) -> tuple[np.ndarray, dict]:
    """``J v`` for every target at once by ``torch.func.jvp`` of the map ``h^{l0} -> (h^l)_l``,
    batched over the tangents by ``torch.func.vmap``: the primal pass runs once, the tangents
    of a batch of probes run through each layer together (one batched product where the
    other routes run one per probe). ``tangents`` is an iterable of functions of ``h^{l0}``
    (as for :func:`_jvp_rr`), consumed in batches of at most :data:`MAX_VMAP_BYTES` of
    tangents at the targets.

    One plain forward pass without gradients (``scout``, where the caller has made it) first
    finds ``h^{l0}`` and checks that the source and the targets run; an error of the model
    there is the model's (one line, as everywhere). An error inside the transforms raises
    :class:`_VmapRefused`.

    >>> m = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    >>> x = torch.randn(4, 3, dtype=torch.float64)
    >>> basis = [lambda h, j=j: torch.eye(12, dtype=h.dtype)[j].view(h.shape) for j in range(12)]
    >>> a, _ = _jvp_vmap(m, (x,), "0", ["2"], basis)
    >>> b, _ = _jvp_rr(m, (x,), "0", ["2"], basis)
    >>> bool(np.allclose(a, b, rtol=1e-12, atol=0))
    True
    """
    if scout is None:
        scout = _scout(model, inputs, targets, source)
    h0 = scout.h0
    if h0 is None:
        raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs or "
                                   "returns no tensor")
    for name in targets:
        if name not in scout.numel:
            raise InvalidArgumentError(f"submodule {name!r} did not run on these inputs or "
                                       "returns no tensor")
    numel = {t: scout.numel[t] for t in targets}
    at_input = source == ""
    h0 = h0.detach()
    # tangents held at once per probe: every target's, and about as much again while the
    # layers run
    per_probe = 2 * (sum(scout.nbytes[t] for t in dict.fromkeys(targets))
                     + h0.numel() * h0.element_size())
    chunk = max(1, int(MAX_VMAP_BYTES // per_probe))

    def f(h):
        outs: dict = {}

        def replace(mod, args, out):
            return replace_first(out, h)

        def record(name):
            def hook(mod, args, out):
                if name not in outs:
                    outs[name] = kept(first_tensor(out))
            return hook

        hooks = [] if at_input else [(source, replace)]
        hooks += [(t, record(t)) for t in dict.fromkeys(targets)]
        with forward_hooks(model, hooks):
            model(*(((h,) + tuple(inputs[1:])) if at_input else inputs))
        return tuple(outs[t] for t in targets)

    def squares(v):
        _, jvs = torch.func.jvp(f, (h0,), (v,))
        return torch.stack([torch.sum(jv.to(torch.float64) ** 2) for jv in jvs])

    batched = torch.func.vmap(squares)
    rows = []
    tangents = iter(tangents)
    while True:
        vs = [make(h0) for make in itertools.islice(tangents, chunk)]
        if not vs:
            break
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated",
                                        category=DeprecationWarning)
                rows.append(batched(torch.stack(vs)).cpu().numpy())
        except (RuntimeError, NotImplementedError, TypeError, ValueError, KeyError,
                IndexError, InvalidArgumentError) as exc:
            text = str(exc).strip().splitlines()
            raise _VmapRefused(text[0] if text else type(exc).__name__) from exc
    if not rows:
        return np.zeros((0, len(targets))), numel
    return np.concatenate(rows, axis=0), numel


def apjn(model: nn.Module, inputs, *, source: str | None = None,
         targets: Sequence[str] | None = None, layer_type=LAYER_TYPES, probes: int = 8,
         method: str = "auto", seed: int | None = None,
         generator: torch.Generator | None = None, mode: str = "eval",
         progress=None) -> APJNResult:
    """APJN ``J^{source,l}`` of ``model`` on ``inputs`` for every target submodule ``l``.

    Parameters
    ----------
    model : nn.Module
        Any module; it is run as ``model(*inputs)``.
    inputs : Tensor or tuple of Tensors
        A batch of inputs (for ``source=""`` the Jacobian is taken with respect to the first).
    source : str, optional
        Name (as in ``model.named_modules()``) of the submodule whose output is ``h^{l0}``;
        ``""`` for the model's input. Default: the first submodule of ``layer_type`` to run.
        ``NAME@k`` is the k-th call of a module that runs several times (weights tied across
        layers); a plain name is its first call.
    targets : sequence of str, optional
        Submodules whose outputs are the ``h^l``. Default: every call of a submodule of
        ``layer_type`` from the source on, in execution order.
    layer_type : type, str or tuple
        The layer types of the defaults (Linear and Conv); a class name such as ``"Conv1D"``
        matches by name (:func:`is_type`).
    probes : int
        Random probes per estimate (ignored by ``method="exact"``).
    method : {"auto", "vmap", "jvp", "forward", "vjp", "exact"}
        ``vmap``: products ``J v`` for every target, ``torch.func.jvp`` batched over the
        probes by ``torch.func.vmap`` (see :func:`_jvp_vmap`); ``jvp``: the same products by
        differentiating the vector–Jacobian product (reverse over reverse; see
        :func:`_jvp_rr`); ``forward``: by forward-mode AD one probe at a time
        (``torch.autograd.forward_ad``, no graph kept: the least memory, slower on CPU); the
        three give the same estimates to rounding. ``vjp``: ``uᵀ J``, one backward pass per
        probe and target; ``exact``: every column of the Jacobian (batched like ``vmap`` where
        the model allows). ``auto``: ``vmap``, the fastest; ``jvp`` where ``torch.func``
        refuses the model (BatchNorm or Dropout in training mode, buffers written during the
        forward pass); ``vjp`` where an operation has no double-backward formula either (the
        fused attention of ``nn.TransformerEncoderLayer``).
    seed : int or None
        Seed of the probes: the ``"probes"`` stream of :func:`seed_generator`, independent of
        the weights ``init_critical_(..., seed=seed)`` draws. None (default): ``generator``, or
        torch's global generator (PyTorch's rule: ``torch.manual_seed`` makes it reproducible).
    generator : torch.Generator, optional
        Generator of the probes (on CPU or the inputs' device); not with ``seed``.
    mode : {"eval", "train"}
        ``eval`` (default): measured in eval mode (Dropout off, BatchNorm on its running
        statistics), whatever mode the model is in; ``train``: in the model's own mode. Either
        way the modes and every buffer are restored afterwards (:func:`measuring`).
    progress : bool or callable, optional
        True: a progress bar on stderr; a callable: ``progress(done, total)`` per probe (per
        probe and target for ``vjp``, per column for ``exact``).

    Returns
    -------
    APJNResult

    Examples
    --------
    >>> from torch import nn
    >>> torch.manual_seed(1)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> m = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16)).double()
    >>> r = apjn(m, torch.randn(8, 16, dtype=torch.float64), probes=4)
    >>> r.layers, r.method, r.samples.shape
    (('0', '2'), 'vmap', (4, 2))
    >>> rr = apjn(m, torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)),
    ...           probes=4, seed=3, method="jvp")
    >>> rv = apjn(m, torch.randn(8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)),
    ...           probes=4, seed=3)                   # the same probes: the same estimates
    >>> bool(np.allclose(rr.samples, rv.samples, rtol=1e-12, atol=0))
    True
    """
    _check(model, probes, method)
    inputs = as_tuple(inputs)
    gen = resolve_generator(seed, generator, "probes")
    with measuring(model, mode):
        res = _apjn(model, inputs, source, targets, layer_type, probes, method, gen, progress)
    return dataclasses.replace(res, mode=_mode_used(model, mode))


def _mode_used(model: nn.Module, mode: str) -> str:
    """``train`` only where some module really ran in training mode."""
    return "train" if mode == "train" and any(m.training for m in model.modules()) else "eval"


def _ticker(progress, total: int):
    """A function to call once per unit of work: ``progress(done, total)`` for a callable,
    a bar on stderr for True (the simulator's), nothing for None/False."""
    if not progress:
        return None
    from critheory.common.progress import Progress

    bar = Progress(max(int(total), 1), progress)
    return lambda: bar.update(1)


def _apjn(model, inputs, source, targets, layer_type, probes, method, gen,
          progress=None) -> APJNResult:
    type_names = _names_of_type(model, layer_type) if source is None or targets is None else []
    if source is None and not type_names:
        raise InvalidArgumentError("the model has no layer of the chosen type(s) to start "
                                   "from; name a source submodule")
    # one forward pass: the order of the calls, h^{l0} and the size of every target
    scout = _scout(model, inputs, type_names + list(targets or ()), source, type_names)
    of_type = set(type_names)
    default = [n for n in scout.order if split_call(n)[0] in of_type]
    if source is None:
        if not default:
            raise InvalidArgumentError("no layer of the chosen type(s) runs on these inputs; "
                                       "name a source submodule")
        source = default[0]
    if targets is None:
        if source == "":
            start = 0
        elif source not in scout.order:
            raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs")
        else:
            start = scout.order.index(source)
        targets = [n for n in scout.order[start:] if n in default]
        if not targets:
            raise InvalidArgumentError(f"no layer of the chosen type(s) runs after {source!r}")
    targets = list(targets)
    if not targets:
        raise InvalidArgumentError("no target layers")

    if method == "exact":
        samples, numel = _exact(model, inputs, source, targets, progress, scout)
        probes_out = None
    else:
        per_probe = len(targets) if method == "vjp" else 1
        tick = _ticker(progress, probes * per_probe)

        def gaussians():
            for _ in range(probes):
                if tick is not None:
                    tick()
                yield lambda h: _gaussian(h, gen)

        used = method
        state = gen.get_state()               # each fallback starts from the same probes
        if method in ("auto", "vmap"):
            try:
                samples, numel = _jvp_vmap(model, inputs, source, targets, gaussians(), scout)
                used = "vmap"
            except _VmapRefused as exc:
                if method == "vmap":
                    raise InvalidArgumentError(f"torch.func.vmap/jvp cannot run this model ({exc}"
                                               "); use method='jvp' or 'vjp'") from None
                gen.set_state(state)
                tick = _ticker(progress, probes)
                used = "jvp"
        if used in ("auto", "jvp"):
            try:
                samples, numel = _jvp_rr(model, inputs, source, targets, gaussians())
                used = "jvp"
            except (NotImplementedError, RuntimeError) as exc:
                if not is_forward_ad_gap(exc):
                    raise
                if method == "jvp":
                    raise InvalidArgumentError("an operation of this model has no double-backward "
                                               f"formula ({str(exc).splitlines()[0]}); use "
                                               "method='vjp'") from None
                gen.set_state(state)
                used = "vjp"
        elif method == "forward":
            rows, numel = [], {}
            try:
                for make in gaussians():
                    sq, numel = _jvp_pass(model, inputs, source, targets, make)
                    rows.append([sq.get(t, 0.0) for t in targets])
            except (NotImplementedError, RuntimeError) as exc:
                if not is_forward_ad_gap(exc):
                    raise
                raise InvalidArgumentError("forward-mode AD is not available for an operation "
                                           f"of this model ({str(exc).splitlines()[0]}); use "
                                           "method='vjp'") from None
            samples = np.array(rows)
        if used in ("vmap", "jvp", "forward"):
            samples = samples / np.array([numel[t] for t in targets], dtype=float)
        else:
            if used != method:                # auto fell back: count the vjp passes
                tick = _ticker(progress, probes * len(targets))
            samples, numel = _vjp(model, inputs, source, targets, probes, gen, tick)
        method = used
        probes_out = probes
    missing = [t for t in targets if t not in numel]
    if missing:
        raise InvalidArgumentError(f"submodule(s) {', '.join(map(repr, missing))} did not run "
                                   "on these inputs")
    for k, t in enumerate(targets):
        if t == source:
            samples[:, k] = 1.0           # J^{l0,l0} = 1 exactly
    mean = samples.mean(axis=0)
    if probes_out is None:
        stderr = np.zeros(len(targets))
    elif samples.shape[0] < 2:
        stderr = np.full(len(targets), np.nan)
    else:
        stderr = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    return APJNResult(source=source, layers=tuple(targets), mean=mean, stderr=stderr,
                      samples=samples, probes=probes_out, method=method,
                      numel=tuple(int(numel[t]) for t in targets))


def _exact(model, inputs, source, targets, progress=None, scout: _Scout | None = None
           ) -> tuple[np.ndarray, dict]:
    """Exact APJN: ``J e_j`` for every coordinate j of h^{l0} (the columns of the Jacobian),
    by :func:`_jvp_vmap`, or :func:`_jvp_rr` where ``torch.func`` refuses the model."""
    if scout is None:
        scout = _scout(model, inputs, targets, source)
    if scout.h0 is None:
        raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs")
    n0 = scout.h0.numel()
    if n0 > MAX_EXACT:
        raise InvalidArgumentError(f"the exact APJN needs {n0} forward passes (one per entry of "
                                   f"h^l0); at most {MAX_EXACT}: use probes")
    tick = _ticker(progress, n0)

    def basis():
        for j in range(n0):
            if tick is not None:
                tick()
            def e_j(h, j=j):
                e = torch.zeros(h.numel(), dtype=h.dtype, device=h.device)
                e[j] = 1.0
                return e.view(h.shape)
            yield e_j

    try:
        rows, numel = _jvp_vmap(model, inputs, source, targets, basis(), scout)
    except _VmapRefused:
        tick = _ticker(progress, n0)
        rows, numel = _jvp_rr(model, inputs, source, targets, basis())
    total = rows.sum(axis=0, keepdims=True)
    return total / np.array([numel[t] for t in targets], dtype=float), numel


def apjn_pairs(model: nn.Module, inputs, *, layers: Sequence[str] | None = None,
               layer_type=LAYER_TYPES, probes: int = 8, method: str = "auto",
               seed: int | None = None, generator: torch.Generator | None = None,
               mode: str = "eval",
               progress: Callable[[int, int], None] | None = None) -> APJNResult:
    """``J^{l, l+1}`` for every pair of consecutive layers: each layer's measured χ_J.

    Parameters
    ----------
    layers : sequence of str, optional
        The layers in order (default: the submodules of ``layer_type`` in execution order).
    probes, method, seed, generator, mode
        As :func:`apjn` (the pairs draw their probes one after the other from one generator).
    progress : callable, optional
        Called as ``progress(done, total)`` after each pair.

    Returns
    -------
    APJNResult
        ``layers`` the second layer of each pair, ``sources`` the first, ``mean[k] =
        J^{sources[k], layers[k]}``.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)).double()
    >>> with torch.no_grad():
    ...     _ = m[1].weight.copy_(2 * torch.eye(4))
    >>> r = apjn_pairs(m, torch.randn(3, 4, dtype=torch.float64), method="exact")
    >>> r.sources, r.layers, r.mean.tolist()      # J = ‖2 I‖_F² / 4 = 4
    (('0',), ('1',), [4.0])
    """
    _check(model, probes, method)
    inputs = as_tuple(inputs)
    gen = resolve_generator(seed, generator, "probes")
    with measuring(model, mode):
        names = list(layers) if layers is not None else layers_of_type(model, inputs,
                                                                        layer_type)
        if len(names) < 2:
            raise InvalidArgumentError("consecutive pairs need at least two layers")
        rows, parts = [], []
        for k in range(len(names) - 1):
            r = _apjn(model, inputs, names[k], [names[k + 1]], layer_type, probes, method, gen)
            parts.append(r)
            rows.append(r.samples[:, 0])
            if progress is not None:
                progress(k + 1, len(names) - 1)
    samples = np.stack(rows, axis=1)
    return APJNResult(source=names[0], layers=tuple(names[1:]),
                      mean=np.array([r.mean[0] for r in parts]),
                      stderr=np.array([r.stderr[0] for r in parts]), samples=samples,
                      probes=parts[0].probes, method=parts[-1].method,
                      numel=tuple(r.numel[0] for r in parts), sources=tuple(names[:-1]),
                      mode=_mode_used(model, mode))
