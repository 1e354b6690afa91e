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

* ``jvp``: ``v ~ N(0, I)`` in the shape of ``h^{l0}``, ``E‖J v‖² = ‖J‖_F²``; every later layer
  at once. The products ``J v`` come from one forward pass, one backward pass that keeps its
  graph, and one double-backward pass per probe (``J v = ∂(v·Jᵀu)/∂u``, "reverse over
  reverse"): on CPU builds of PyTorch several times faster than forward-mode AD for dense
  layers. ``forward`` computes the same products by ``torch.autograd.forward_ad`` (one pass
  per probe, no graph kept: the least memory);
* ``vjp``: ``u ~ N(0, I)`` in the shape of ``h^l``, ``E‖uᵀJ‖² = ‖J‖_F²``, one backward pass
  per probe and layer (for operations without a double-backward formula, such as the fused
  attention kernels of ``nn.TransformerEncoderLayer``);
* ``exact``: ``J e_j`` for every coordinate of ``h^{l0}`` (``numel(h^{l0})`` products,
  limited to :data:`MAX_EXACT`).

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

__all__ = ["APJNResult", "apjn", "apjn_pairs", "execution_order", "layers_of_type", "LAYER_TYPES",
           "MAX_EXACT", "MAX_PROBES"]

#: module types whose outputs are the "layers" when none are named
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: the exact mode runs one forward pass per coordinate of h^{l0}: at most this many
MAX_EXACT = 1 << 14
#: at most this many probes in one call
MAX_PROBES = 1 << 16
_METHODS = ("auto", "jvp", "forward", "vjp", "exact")


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
        ``"jvp"``, ``"forward"``, ``"vjp"`` or ``"exact"`` (what ran; ``auto`` resolves to
        ``jvp`` or ``vjp``).
    numel : tuple of int
        Number of entries of each target's output tensor (the normalization).
    """

    source: str
    layers: tuple
    mean: np.ndarray
    stderr: np.ndarray
    samples: np.ndarray
    probes: int | None
    method: str
    numel: tuple
    sources: tuple = ()

    def to_dict(self) -> dict:
        """JSON-ready summary (None for NaN)."""
        out = {"source": self.source, "layers": list(self.layers), "apjn_mean": self.mean,
               "apjn_stderr": self.stderr, "probes": self.probes, "method": self.method,
               "numel": list(self.numel)}
        if self.sources:
            out["sources"] = list(self.sources)
        return jsonable(out)


# ----------------------------------------------------------------------------- plumbing
def _as_tuple(inputs) -> tuple:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(inputs)
    raise InvalidArgumentError("inputs must be a tensor or a tuple of tensors, got "
                               f"{type(inputs).__name__}")


def _first(out):
    """The tensor a module's output stands for (the first element of a tuple output)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _replace_first(out, new):
    if isinstance(out, torch.Tensor):
        return new
    return type(out)((new,) + tuple(out[1:])) if isinstance(out, tuple) else [new] + list(out[1:])


def _modules(model: nn.Module) -> dict:
    return dict(model.named_modules())


def _resolve(model: nn.Module, name: str) -> nn.Module:
    mods = _modules(model)
    if not isinstance(name, str) or name not in mods:
        some = ", ".join(repr(n) for n in list(mods)[1:8])
        raise InvalidArgumentError(f"the model has no submodule named {name!r} (names are those "
                                   f"of model.named_modules(): {some}, ...)")
    return mods[name]


@contextlib.contextmanager
def _hooks(model: nn.Module, hooks: Sequence[tuple[str, Callable]]):
    """Forward hooks ``(name, fn)`` for the duration of the block; always removed."""
    handles = []
    try:
        for name, fn in hooks:
            handles.append(_resolve(model, name).register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


def _forward(model: nn.Module, inputs: tuple):
    try:
        return model(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        if _is_forward_ad_gap(exc):
            raise                          # handled by apjn(method="auto")
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgumentError(f"the model fails on inputs of shape {shapes}: {msg}"
                                   ) from None


def execution_order(model: nn.Module, inputs, names: Iterable[str] | None = None) -> list[str]:
    """Names of the submodules (all, or ``names``) in the order their forward first returns on
    ``inputs`` (one forward pass without gradients; submodules that do not run are left out).

    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    >>> execution_order(m, torch.zeros(1, 3))
    ['0', '1', '2', '']
    """
    inputs = _as_tuple(inputs)
    wanted = list(_modules(model)) if names is None else list(names)
    order: list[str] = []

    def rec(name):
        def hook(mod, args, out):
            if name not in order:
                order.append(name)
        return hook

    with _hooks(model, [(n, rec(n)) for n in wanted]), torch.no_grad():
        _forward(model, inputs)
    return order


def layers_of_type(model: nn.Module, inputs, types=LAYER_TYPES) -> list[str]:
    """Names of the submodules of the given types, in execution order on ``inputs``."""
    names = [n for n, m in model.named_modules() if isinstance(m, types)]
    return execution_order(model, inputs, names) if names else []


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise InvalidArgumentError("generator must be a torch.Generator")
        return generator
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidArgumentError(f"seed must be an integer >= 0, got {seed!r}")
        g.manual_seed(seed)
    return g


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
        h = _first(out)
        if h is None:
            raise InvalidArgumentError(f"submodule {source!r} does not return a tensor")
        done["src"] = True
        with warnings.catch_warnings():
            # torch's first make_dual loads its forward-mode decompositions through
            # torch.jit.script, which torch itself deprecates: not the caller's to act on
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated",
                                    category=DeprecationWarning)
            dual = fwAD.make_dual(h, tangent_for(h))
        return _replace_first(out, dual)

    def tgt_hook(name):
        def hook(mod, args, out):
            if name in sq:
                return None
            h = _first(out)
            if h is None:
                raise InvalidArgumentError(f"submodule {name!r} does not return a tensor")
            t = fwAD.unpack_dual(h).tangent
            numel[name] = h.numel()
            sq[name] = 0.0 if t is None else float(torch.sum(t.double() ** 2))
            return None
        return hook

    hooks = [] if source == "" else [(source, src_hook)]
    hooks += [(n, tgt_hook(n)) for n in targets]
    with _hooks(model, hooks), torch.no_grad(), fwAD.dual_level():
        ins = inputs
        if source == "":
            x = inputs[0]
            ins = (fwAD.make_dual(x, tangent_for(x)),) + inputs[1:]
        _forward(model, ins)
    return sq, numel


def _graph(model, inputs, source, targets) -> tuple:
    """One forward pass keeping the graph, with ``h^{l0}`` a leaf of its own; returns
    ``(h0, {target: output})``."""
    outs: dict = {}
    leaf: dict = {}

    def src_hook(mod, args, out):
        if "h" in leaf:
            return None
        h = _first(out)
        if h is None:
            raise InvalidArgumentError(f"submodule {source!r} does not return a tensor")
        leaf["h"] = h.detach().requires_grad_(True)
        return _replace_first(out, leaf["h"])

    def tgt_hook(name):
        def hook(mod, args, out):
            if name not in outs:
                outs[name] = _first(out)
            return None
        return hook

    hooks = [] if source == "" else [(source, src_hook)]
    hooks += [(n, tgt_hook(n)) for n in targets]
    with _hooks(model, hooks), torch.enable_grad():
        ins = inputs
        if source == "":
            leaf["h"] = inputs[0].detach().requires_grad_(True)
            ins = (leaf["h"],) + inputs[1:]
        _forward(model, ins)
    if leaf.get("h") is None:
        raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs")
    for name in targets:
        if outs.get(name) is None:
            raise InvalidArgumentError(f"submodule {name!r} did not run on these inputs or "
                                       "returns no tensor")
    return leaf["h"], outs


def _vjp(model, inputs, source, targets, probes, gen) -> tuple[np.ndarray, dict]:
    """Reverse mode: one forward pass keeping the graph, then one backward pass per probe and
    target (``E‖uᵀJ‖² = ‖J‖_F²``)."""
    h0, outs = _graph(model, inputs, source, targets)
    samples = np.zeros((probes, len(targets)))
    numel = {t: outs[t].numel() for t in targets}
    for k, name in enumerate(targets):
        y = outs[name]
        if not y.requires_grad or name == source:
            continue                      # does not depend on h^{l0} (J = 0), or J = 1
        for p in range(probes):
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
    h0, outs = _graph(model, inputs, source, targets)
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


def _is_forward_ad_gap(exc: Exception) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, NotImplementedError) or "forward ad" in text
            or "forward-mode" in text or "double backward" in text
            or "derivative for" in text and "not implemented" in text)


def apjn(model: nn.Module, inputs, *, source: str | None = None,
         targets: Sequence[str] | None = None, layer_type=LAYER_TYPES, probes: int = 8,
         method: str = "auto", seed: int | None = 0,
         generator: torch.Generator | None = None) -> APJNResult:
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
    targets : sequence of str, optional
        Submodules whose outputs are the ``h^l``. Default: every submodule of ``layer_type`` from
        the source on, in execution order.
    layer_type : type or tuple of types
        The layer types of the defaults (Linear and Conv).
    probes : int
        Random probes per estimate (ignored by ``method="exact"``).
    method : {"auto", "jvp", "forward", "vjp", "exact"}
        ``jvp``: products ``J v`` for every target from one forward pass, by differentiating
        the vector–Jacobian product (reverse over reverse; see :func:`_jvp_rr`); ``forward``:
        the same products by forward-mode AD (``torch.autograd.forward_ad``, one pass per probe,
        no graph kept: the least memory, slower on CPU); ``vjp``: ``uᵀ J``, one backward pass
        per probe and target; ``exact``: every column of the Jacobian. ``auto``: ``jvp``,
        falling back to ``vjp`` where an operation has no double-backward formula (the fused
        attention of ``nn.TransformerEncoderLayer``).
    seed : int or None
        Seed of the probes' generator (None: fresh entropy); ignored if ``generator`` is given.
    generator : torch.Generator, optional
        Generator of the probes (on CPU or the inputs' device).

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
    (('0', '2'), 'jvp', (4, 2))
    """
    _check(model, probes, method)
    inputs = _as_tuple(inputs)
    gen = _generator(seed, generator)
    if source is None or targets is None:
        default = layers_of_type(model, inputs, layer_type)
        if source is None:
            if not default:
                raise InvalidArgumentError("the model has no layer of the chosen type(s) to start "
                                           "from; name a source submodule")
            source = default[0]
        if targets is None:
            order = execution_order(model, inputs, [source] + default)
            if source not in order:
                raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs")
            start = order.index(source)
            targets = [n for n in order[start:] if n in default]
            if not targets:
                raise InvalidArgumentError(f"no layer of the chosen type(s) runs after {source!r}")
    else:
        execution_order(model, inputs, [])      # a dry run: bad inputs fail here, one line
    if source != "":
        _resolve(model, source)
    targets = list(targets)
    if not targets:
        raise InvalidArgumentError("no target layers")
    for t in targets:
        _resolve(model, t)

    if method == "exact":
        samples, numel = _exact(model, inputs, source, targets)
        probes_out = None
    else:
        def gaussians():
            for _ in range(probes):
                yield lambda h: _gaussian(h, gen)

        used = method
        if method in ("auto", "jvp"):
            try:
                samples, numel = _jvp_rr(model, inputs, source, targets, gaussians())
                used = "jvp"
            except (NotImplementedError, RuntimeError) as exc:
                if not _is_forward_ad_gap(exc):
                    raise
                if method == "jvp":
                    raise InvalidArgumentError("an operation of this model has no double-backward "
                                               f"formula ({str(exc).splitlines()[0]}); use "
                                               "method='vjp'") from None
                used = "vjp"
        elif method == "forward":
            rows, numel = [], {}
            try:
                for make in gaussians():
                    sq, numel = _jvp_pass(model, inputs, source, targets, make)
                    rows.append([sq.get(t, 0.0) for t in targets])
            except (NotImplementedError, RuntimeError) as exc:
                if not _is_forward_ad_gap(exc):
                    raise
                raise InvalidArgumentError("forward-mode AD is not available for an operation "
                                           f"of this model ({str(exc).splitlines()[0]}); use "
                                           "method='vjp'") from None
            samples = np.array(rows)
        if used in ("jvp", "forward"):
            samples = samples / np.array([numel[t] for t in targets], dtype=float)
        else:
            samples, numel = _vjp(model, inputs, source, targets, probes, gen)
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


def _exact(model, inputs, source, targets) -> tuple[np.ndarray, dict]:
    """Exact APJN: ``J e_j`` for every coordinate j of h^{l0} (the columns of the Jacobian),
    by :func:`_jvp_rr`."""
    shape: dict[str, Any] = {}

    def grab(mod, args, out):
        h = _first(out)
        if h is not None and "h" not in shape:
            shape["h"] = h
    if source == "":
        n0 = inputs[0].numel()
    else:
        with _hooks(model, [(source, grab)]), torch.no_grad():
            _forward(model, inputs)
        if "h" not in shape:
            raise InvalidArgumentError(f"submodule {source!r} did not run on these inputs")
        n0 = shape["h"].numel()
    if n0 > MAX_EXACT:
        raise InvalidArgumentError(f"the exact APJN needs {n0} forward passes (one per entry of "
                                   f"h^l0); at most {MAX_EXACT}: use probes")
    def basis():
        for j in range(n0):
            def e_j(h, j=j):
                e = torch.zeros(h.numel(), dtype=h.dtype, device=h.device)
                e[j] = 1.0
                return e.view(h.shape)
            yield e_j

    rows, numel = _jvp_rr(model, inputs, source, targets, basis())
    total = rows.sum(axis=0, keepdims=True)
    return total / np.array([numel[t] for t in targets], dtype=float), numel


def apjn_pairs(model: nn.Module, inputs, *, layers: Sequence[str] | None = None,
               layer_type=LAYER_TYPES, probes: int = 8, method: str = "auto",
               seed: int | None = 0) -> APJNResult:
    """``J^{l, l+1}`` for every pair of consecutive layers: each layer's measured χ_J.

    Parameters
    ----------
    layers : sequence of str, optional
        The layers in order (default: the submodules of ``layer_type`` in execution order).
    probes, method, seed
        As :func:`apjn` (pair k uses the seed ``seed + k``).

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
    inputs = _as_tuple(inputs)
    names = list(layers) if layers is not None else layers_of_type(model, inputs, layer_type)
    if len(names) < 2:
        raise InvalidArgumentError("consecutive pairs need at least two layers")
    rows, parts = [], []
    for k in range(len(names) - 1):
        r = apjn(model, inputs, source=names[k], targets=[names[k + 1]], probes=probes,
                 method=method, seed=None if seed is None else seed + k)
        parts.append(r)
        rows.append(r.samples[:, 0])
    samples = np.stack(rows, axis=1)
    return APJNResult(source=names[0], layers=tuple(names[1:]),
                      mean=np.array([r.mean[0] for r in parts]),
                      stderr=np.array([r.stderr[0] for r in parts]), samples=samples,
                      probes=parts[0].probes, method=parts[-1].method,
                      numel=tuple(r.numel[0] for r in parts), sources=tuple(names[:-1]))
