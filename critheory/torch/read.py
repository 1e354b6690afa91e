"""Read a PyTorch model into critheory: its blocks, its empirical σ_w², σ_b² per layer, and
critheory's prediction for it (phase, χ_J, the APJN curve).

What is read: ``nn.Sequential`` stacks (nested ones are flattened) of

=====================================  =====================================================
torch module                           critheory block
=====================================  =====================================================
``nn.Linear``, ``nn.Conv1d/2d/3d``     ``Dense`` with σ_w² = fan_in · mean(W²), σ_b² = mean(b²)
an activation (``nn.Tanh``, ``nn.ReLU``,  ``Phi`` with the activation of
``nn.GELU``, ``nn.SiLU``, ...,          :func:`~critheory.torch.activations.activation_of`
``TorchActivation``)
``nn.LayerNorm`` (affine at 1, 0)      ``LayerNorm``
:class:`Residual` ``(branch, mu)``     ``Residual(branch, mu)``: ``μ x + branch(x)``
``nn.Dropout``, ``nn.Identity``,        nothing (identity maps; dropout is the identity in
``nn.Flatten``                          eval mode)
=====================================  =====================================================

The first layer is the first Linear/Conv (``h¹ = W x + b``); every later layer ends with a
Linear/Conv or a :class:`Residual` block, whose output is ``h^l`` (the representation the
APJN is measured on); modules after the last layer are ignored. σ_w² uses the second moment
of the weights (the quantity the mean-field maps read; the variance for a centred
initialization). A convolution is read like a dense layer (its χ_J at infinite channel number
is the MLP's [DHG §3]; zero padding lowers the kernel at the borders, an effect of order
kernel size / image size that the theory leaves out).

Examples
--------
>>> import torch
>>> from torch import nn
>>> from critheory.torch import read_model
>>> m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
>>> r = read_model(m)
>>> r.layers, [b.kind for b in r.units[0]]
(('0', '2', '4'), ['phi', 'dense'])
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from critheory.activation import Activation
from critheory.blocks.blocks import Dense, LayerNorm, Phi
from critheory.blocks.blocks import Residual as ResidualBlock
from critheory.blocks.network import Network
from critheory.common.jsonable import jsonable
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.theory.fold import Ctx
from critheory.theory.meanfield.rules import rule
from critheory.theory.meanfield.state import State
from critheory.torch.activations import activation_of
from critheory.common.reprs import dataclass_dict, short_repr

__all__ = ["Residual", "ModelReading", "Prediction", "read_model", "predict", "DENSE_TYPES",
           "UNIFORM_RTOL", "CRITICAL_Z", "weight_var_of", "bias_var_of", "WeightTensor",
           "weight_tensors", "select"]

DENSE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_SKIP_TYPES = (nn.Dropout, nn.Identity, nn.Flatten, nn.AlphaDropout)
#: hidden layers whose empirical σ_w², σ_b² agree to this relative tolerance are "one
#: point" of the phase diagram. An N×N Gaussian matrix estimates σ_w² with relative standard
#: deviation sqrt(2/N²): 0.03 at N = 48; 0.1 leaves room for small widths and uniform inits.
UNIFORM_RTOL = 0.1
#: the phase is "critical" where |χ_J − 1| at the fixed point is within this many relative
#: standard deviations of the empirical σ_w² (see :class:`Prediction`)
CRITICAL_Z = 3.0


class Residual(nn.Module):
    """A declared residual block ``x -> mu * x + branch(x)`` (read by :func:`read_model`).

    Examples
    --------
    >>> from torch import nn
    >>> blk = Residual(nn.Sequential(nn.Tanh(), nn.Linear(3, 3)), mu=0.5)
    >>> blk
    Residual(
      mu=0.5
      (branch): Sequential(
        (0): Tanh()
        (1): Linear(in_features=3, out_features=3, bias=True)
      )
    )
    """

    def __init__(self, branch: nn.Module, mu: float = 1.0):
        super().__init__()
        mu = float(mu)
        if not math.isfinite(mu) or mu < 0:
            raise InvalidArgumentError(f"residual strength mu must be finite and >= 0, got {mu}")
        self.mu = mu
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.mu * x + self.branch(x)

    def extra_repr(self) -> str:
        return f"mu={self.mu:g}"


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class _Item:
    kind: str                      # dense, phi, layernorm, residual
    name: str
    module: nn.Module
    activation: Activation | None = None
    items: tuple = ()              # residual branch
    mu: float = 1.0


def _fan_in(m: nn.Module) -> int:
    return int(m.weight[0].numel())


def weight_var_of(m: nn.Module) -> float:
    """Empirical σ_w² = fan_in · mean(W²) of a Linear/Conv module."""
    w = m.weight.detach()
    return float(_fan_in(m) * torch.mean(w.double() ** 2))


def bias_var_of(m: nn.Module) -> float:
    """Empirical σ_b² = mean(b²) (0 without a bias)."""
    b = getattr(m, "bias", None)
    return 0.0 if b is None else float(torch.mean(b.detach().double() ** 2))


# ----------------------------------------------------------------------------- any module tree
@dataclass(frozen=True)
class WeightTensor:
    """A weight tensor of a module tree (with its bias) that critheory reads and initializes.

    Attributes
    ----------
    module : str
        The module's name (as in ``model.named_modules()``).
    weight, bias : str or None
        The parameter names within the module (``weight``/``bias``, ``in_proj_weight``/
        ``in_proj_bias`` of ``nn.MultiheadAttention``...); bias None if there is none.
    kind : str
        ``linear``, ``conv``, ``conv1d_hf`` (HuggingFace's ``Conv1D``, weight ``(in, out)``),
        ``attention_in_proj`` (the fused or separate q/k/v projections of
        ``nn.MultiheadAttention``; its ``out_proj`` is a ``linear``) or ``embedding``.
    fan_in : int
        Inputs of one output unit (1 for an embedding: its entries are the inputs).

    Examples
    --------
    >>> import torch
    >>> weight_tensors(torch.nn.Sequential(torch.nn.Linear(16, 4), torch.nn.Tanh()))[0]
    WeightTensor(module='0', weight='weight', bias='bias', kind='linear', fan_in=16)
    """

    module: str
    weight: str
    bias: str | None
    kind: str
    fan_in: int

    def tensors(self, model: nn.Module) -> tuple:
        """``(weight, bias or None)`` of ``model``."""
        mod = model.get_submodule(self.module)
        return getattr(mod, self.weight), (None if self.bias is None else
                                           getattr(mod, self.bias))


def _is_hf_conv1d(m: nn.Module) -> bool:
    """HuggingFace's ``Conv1D`` (GPT-2): ``y = x @ W + b`` with ``W`` of shape (in, out),
    recognized by its class name and attributes, without importing transformers."""
    w = getattr(m, "weight", None)
    return (any(c.__name__ == "Conv1D" for c in type(m).__mro__) and isinstance(w, torch.Tensor)
            and w.dim() == 2 and getattr(m, "nf", w.shape[1]) == w.shape[1])


def weight_tensors(model: nn.Module) -> list[WeightTensor]:
    """Every weight tensor of ``model`` that critheory reads and initializes, in the order of
    ``model.named_modules()``: Linear (and its subclasses, such as the ``out_proj`` of
    ``nn.MultiheadAttention``), Conv1d/2d/3d, HuggingFace ``Conv1D``, the input projections of
    ``nn.MultiheadAttention``, and ``nn.Embedding``. Other parameters (normalization affine
    parameters, class tokens, positional embeddings held as bare parameters, transposed
    convolutions, ``bias_k``/``bias_v``) are not among them.

    Examples
    --------
    >>> from torch import nn
    >>> [(t.module, t.weight, t.kind, t.fan_in) for t in weight_tensors(
    ...     nn.MultiheadAttention(8, 2))]
    [('', 'in_proj_weight', 'attention_in_proj', 8), ('out_proj', 'weight', 'linear', 8)]
    """
    out = []
    for name, m in model.named_modules():
        if isinstance(m, DENSE_TYPES) and isinstance(getattr(m, "weight", None), torch.Tensor):
            kind = "linear" if isinstance(m, nn.Linear) else "conv"
            out.append(WeightTensor(name, "weight", "bias" if m.bias is not None else None, kind,
                                    _fan_in(m)))
        elif _is_hf_conv1d(m):
            b = getattr(m, "bias", None)
            out.append(WeightTensor(name, "weight", "bias" if isinstance(b, torch.Tensor)
                                    else None, "conv1d_hf", int(m.weight.shape[0])))
        elif isinstance(m, nn.MultiheadAttention):
            has_b = m.in_proj_bias is not None
            if m.in_proj_weight is not None:
                out.append(WeightTensor(name, "in_proj_weight", "in_proj_bias" if has_b
                                        else None, "attention_in_proj",
                                        int(m.in_proj_weight.shape[1])))
            else:                # separate q/k/v weights; the one in_proj_bias with q
                for w in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                    out.append(WeightTensor(name, w, "in_proj_bias" if has_b and w[0] == "q"
                                            else None, "attention_in_proj",
                                            int(getattr(m, w).shape[1])))
        elif isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            out.append(WeightTensor(name, "weight", None, "embedding", 1))
    return out


def select(names, layers) -> list:
    """The names that match ``layers`` (module names or ``fnmatch`` glob patterns such as
    ``"blocks.*.mlp.*"``); every name when ``layers`` is None. A pattern that matches nothing
    is an error (a typo should not silently select nothing).

    >>> select(["a.0", "a.1", "b"], ["a.*"])
    ['a.0', 'a.1']
    """
    import fnmatch

    names = list(names)
    if layers is None:
        return names
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, (list, tuple)):
        raise InvalidArgumentError(f"layers must be names or glob patterns, got {layers!r}")
    pats = list(layers)
    if not pats or not all(isinstance(p, str) for p in pats):
        raise InvalidArgumentError(f"layers must be names or glob patterns, got {layers!r}")
    for p in pats:
        if not any(n == p or fnmatch.fnmatchcase(n, p) for n in names):
            some = ", ".join(repr(n) for n in names[:8])
            raise InvalidArgumentError(f"layers: {p!r} matches none of {some}"
                                       + (", ..." if len(names) > 8 else ""))
    return [n for n in names if any(n == p or fnmatch.fnmatchcase(n, p) for p in pats)]


def _flatten(module: nn.Module, prefix: str) -> list[_Item]:
    def join(n):
        return f"{prefix}.{n}" if prefix else n

    if isinstance(module, nn.Sequential):
        out = []
        for n, child in module._modules.items():      # every position, repeated modules too
            if child is not None:
                out += _flatten(child, join(n))
        return out
    if isinstance(module, Residual):
        items = tuple(_flatten(module.branch, join("branch")))
        return [_Item("residual", prefix, module, items=items, mu=module.mu)]
    if isinstance(module, DENSE_TYPES):
        return [_Item("dense", prefix, module)]
    if isinstance(module, nn.LayerNorm):
        if module.elementwise_affine:
            w = module.weight.detach()
            b = module.bias.detach() if module.bias is not None else torch.zeros_like(w)
            if not (torch.all(w == 1) and torch.all(b == 0)):
                raise InvalidArgumentError(
                    f"cannot read LayerNorm {prefix!r}: its affine parameters are not the "
                    "identity (weight 1, bias 0), and critheory's LayerNorm has none")
        return [_Item("layernorm", prefix, module)]
    act = activation_of(module)
    if act is not None:
        return [_Item("phi", prefix, module, activation=act)]
    if isinstance(module, _SKIP_TYPES):
        return []
    where = f"submodule {prefix!r}" if prefix else "the model"
    raise InvalidArgumentError(
        f"cannot read {where} of type {type(module).__name__}: critheory reads nn.Sequential "
        "stacks of Linear/Conv layers, activations, LayerNorm and critheory.torch.Residual "
        "blocks")


def _blocks(items) -> tuple:
    out = []
    for it in items:
        if it.kind == "dense":
            out.append(Dense())
        elif it.kind == "phi":
            out.append(Phi())
        elif it.kind == "layernorm":
            out.append(LayerNorm())
        else:
            out.append(ResidualBlock(_blocks(it.items), it.mu))
    return tuple(out)


def _walk(items):
    for it in items:
        yield it
        if it.kind == "residual":
            yield from _walk(it.items)


@dataclass(frozen=True, eq=False)
class ModelReading:
    """A model read into critheory's blocks.

    Attributes
    ----------
    layers : tuple of str
        Names of the submodules whose outputs are ``h¹, ..., h^L``.
    units : tuple of tuple of Block
        The blocks of layers 2..L (layer 1 is ``Dense``).
    weight_var, bias_var : tuple of tuple of float
        Per layer, the empirical σ_w², σ_b² of each of its dense modules (in order).
    dense : tuple of tuple of str
        Per layer, the names of its dense modules.
    activations : tuple of Activation
        The distinct activations, in order of appearance.
    network : Network or None
        The critheory network when every layer after the first has the same blocks and one
        activation (None otherwise).
    notes : tuple of str
    sizes : tuple of tuple of (int, int)
        Per layer and dense module, the numbers of weights and biases.
    hidden_weights : int
        Number of weights of the dense modules after the first (the sample behind the
        empirical σ_w² of :meth:`uniform_point`).
    structured : bool
        True for a stack read into critheory's blocks. False for any other module tree: then
        ``layers`` are its weight tensors' modules (:func:`weight_tensors`, definition order),
        each one a layer of its own with its σ_w², σ_b², ``units`` is empty, there is no
        theory for it (:func:`predict` refuses), and ``notes[0]`` says why.
    kinds : tuple of str
        Per layer, the :attr:`WeightTensor.kind` of its weight (unstructured readings).

    Examples
    --------
    >>> import torch
    >>> r = read_model(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                                    torch.nn.Linear(8, 1)))
    >>> isinstance(r, ModelReading), r.structured, r.activations[0].name
    (True, True, 'relu')
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    layers: tuple
    units: tuple
    weight_var: tuple
    bias_var: tuple
    dense: tuple
    activations: tuple
    network: Network | None
    notes: tuple = ()
    hidden_weights: int = 0
    sizes: tuple = ()
    structured: bool = True
    kinds: tuple = ()
    _items: tuple = field(default=(), repr=False)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def skip_strengths2(self) -> tuple:
        """μ² of the skip connection of each layer of a structured reading, in the order of
        :attr:`layers` (0.0 for the first layer and for a unit without one)."""
        out = []
        for unit in self._items:
            last = unit[-1] if isinstance(unit, tuple) and unit else None
            out.append(last.mu ** 2 if last is not None and last.kind == "residual" else 0.0)
        return tuple(out)

    def hyperparameters(self) -> list[dict]:
        """Per layer ``{"weight_var", "bias_var"}`` (numbers; lists for layers with several
        dense modules)."""
        def one(v):
            return v[0] if len(v) == 1 else list(v)
        return [{"weight_var": one(w), "bias_var": one(b)}
                for w, b in zip(self.weight_var, self.bias_var)]

    def uniform_point(self) -> tuple[float, float] | None:
        """(σ_w², σ_b²) shared by every dense module after the first, or None.

        Shared means: each module's value is within :data:`UNIFORM_RTOL` of the pooled mean,
        or within 4 sampling standard deviations of it (a mean of n squared Gaussians has
        relative standard deviation sqrt(2/n)), whichever is larger.
        """
        rows = [(w, b, nw, nb) for layer in range(1, len(self.weight_var))
                for w, b, (nw, nb) in zip(self.weight_var[layer], self.bias_var[layer],
                                          self.sizes[layer])]
        if not rows:
            return None
        sw = float(np.mean([r[0] for r in rows]))
        sb = float(np.mean([r[1] for r in rows]))
        for w, b, nw, nb in rows:
            if abs(w - sw) > max(UNIFORM_RTOL, 4 * math.sqrt(2 / max(nw, 1))) * sw:
                return None
            if abs(b - sb) > max(UNIFORM_RTOL, 4 * math.sqrt(2 / max(nb, 1))) * sb + 1e-12:
                return None
        return sw, sb


def read_model(model: nn.Module, *, layers=None) -> ModelReading:
    """Read ``model`` (see the module docstring for what is read).

    A stack critheory reads gives a structured reading (blocks, theory). Any other module tree
    (a ResNet with BatchNorm, a ViT, a GPT-2 with HuggingFace ``Conv1D``, weights tied across
    layers) gives an unstructured reading: σ_w², σ_b² of every weight tensor
    (:func:`weight_tensors`), no theory, and the reason in ``notes[0]``.

    Parameters
    ----------
    layers : str or sequence of str, optional
        Only these modules (names or glob patterns, :func:`select`); the reading is then
        unstructured.

    Raises
    ------
    InvalidArgumentError
        ``model`` is not a module, or it has no weight tensor critheory reads.

    Examples
    --------
    >>> import torch
    >>> r = read_model(torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(),
    ...                                    torch.nn.Linear(64, 1)))
    >>> r.structured, r.activations[0].name, r.network.describe()
    (True, 'tanh', ...)
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if layers is None:
        try:
            return _read_stack(model)
        except CritheoryError as exc:
            reason = str(exc)
    else:
        reason = "layers chosen with layers="
    rows = weight_tensors(model)
    if not rows:
        raise InvalidArgumentError(f"cannot read the model: no Linear/Conv layer ({reason})")
    keep = set(select(dict.fromkeys(r.module for r in rows), layers))
    rows = [r for r in rows if r.module in keep]
    by_module: dict = {}
    for r in rows:
        by_module.setdefault(r.module, []).append(r)
    wv, bv, sizes, kinds = [], [], [], []
    for name, rs in by_module.items():
        w_s, b_s, n_s = [], [], []
        for r in rs:
            w, b = r.tensors(model)
            w_s.append(float(r.fan_in * torch.mean(w.detach().double() ** 2)))
            b_s.append(0.0 if b is None else float(torch.mean(b.detach().double() ** 2)))
            n_s.append((w.numel(), 0 if b is None else b.numel()))
        wv.append(tuple(w_s))
        bv.append(tuple(b_s))
        sizes.append(tuple(n_s))
        kinds.append(rs[0].kind)
    names = tuple(by_module)
    return ModelReading(layers=names, units=(), weight_var=tuple(wv), bias_var=tuple(bv),
                        dense=tuple((n,) for n in names), activations=tuple(_tree_activations(
                            model)), network=None,
                        notes=(f"not a stack critheory reads ({reason}): per-tensor σ_w², σ_b² "
                               "only, no theory",),
                        hidden_weights=0, sizes=tuple(sizes), structured=False,
                        kinds=tuple(kinds))


def _tree_activations(model: nn.Module) -> list:
    acts = []
    for m in model.modules():
        a = activation_of(m)
        if a is not None and all(a != b for b in acts):
            acts.append(a)
    return acts


def _read_stack(model: nn.Module) -> ModelReading:
    items = _flatten(model, "")
    first = next((i for i, it in enumerate(items) if it.kind == "dense"), None)
    if first is None:
        raise InvalidArgumentError("cannot read the model: no Linear/Conv layer")
    if first != 0:
        what = items[0]
        raise InvalidArgumentError(f"cannot read the model: it starts with {what.kind} "
                                   f"{what.name!r} before its first Linear/Conv layer")
    notes = []
    layers = [items[0].name]
    units, dense_names, wv, bv, current = [], [[items[0].name]], [], [], []
    for it in items[1:]:
        current.append(it)
        if it.kind in ("dense", "residual"):
            units.append(tuple(current))
            layers.append(it.name)
            current = []
    if current:
        notes.append("ignored after the last layer: " + ", ".join(
            f"{it.name} ({it.kind})" for it in current))
    for unit in units:
        ds = [it for it in _walk(unit) if it.kind == "dense"]
        dense_names.append([d.name for d in ds])
    all_dense = {}
    for it in _walk(items):
        if it.kind == "dense":
            if any(m is it.module for m in all_dense.values()):
                first = next(n for n, m in all_dense.items() if m is it.module)
                raise InvalidArgumentError(
                    f"cannot read the model: module {first!r} is used again at {it.name!r} "
                    "(weights tied across layers); the mean-field theory assumes independent "
                    "weights in every layer")
            all_dense[it.name] = it.module
    for names in dense_names:
        wv.append(tuple(weight_var_of(all_dense[n]) for n in names))
        bv.append(tuple(bias_var_of(all_dense[n]) for n in names))
    block_units = tuple(_blocks(u) for u in units)
    # check what the mean-field rules can read, before any number
    for u, unit in zip(block_units, units):
        res = [it for it in unit if it.kind == "residual"]
        if res and len(unit) != 1:
            raise InvalidArgumentError(f"cannot read layer {unit[-1].name!r}: a residual block "
                                       "must follow a Linear/Conv layer directly")
        for it in _walk(unit):
            if it.kind == "residual" and (not it.items or it.items[-1].kind != "dense"):
                raise InvalidArgumentError(f"cannot read residual block {it.name!r}: its branch "
                                           "must end with a Linear/Conv layer")
    acts = []
    for it in _walk(items):
        if it.kind == "phi" and all(it.activation != a for a in acts):
            acts.append(it.activation)
    net = None
    if block_units and len(acts) == 1 and all(u == block_units[0] for u in block_units):
        try:
            net = Network("torch model", acts[0], block_units[0])
        except CritheoryError as exc:
            notes.append(f"no critheory network: {exc}")
    elif len(acts) > 1:
        notes.append("several activations: per-layer theory only")
    elif block_units and any(u != block_units[0] for u in block_units):
        notes.append("layers with different blocks: per-layer theory only")
    return ModelReading(layers=tuple(layers), units=block_units,
                        weight_var=tuple(wv), bias_var=tuple(bv),
                        dense=tuple(tuple(d) for d in dense_names),
                        activations=tuple(acts), network=net, notes=tuple(notes),
                        sizes=tuple(tuple((all_dense[n].weight.numel(),
                                           0 if all_dense[n].bias is None
                                           else all_dense[n].bias.numel()) for n in names)
                                    for names in dense_names),
                        hidden_weights=sum(all_dense[n].weight.numel()
                                           for names in dense_names[1:] for n in names),
                        _items=(items[0],) + tuple(units))


# ----------------------------------------------------------------------------- prediction
def _apply(items, s: State, hyper: dict, act: Activation | None):
    """Mean-field state after ``items``, each dense with its own (σ_w², σ_b²) from ``hyper``."""
    for it in items:
        if it.kind == "dense":
            sw, sb = hyper[it.name]
            s = rule(Dense())(Dense(), s, Ctx(act, sw, sb))
        elif it.kind == "phi":
            act = it.activation
            s = rule(Phi())(Phi(), s, Ctx(act))
        elif it.kind == "layernorm":
            s = rule(LayerNorm())(LayerNorm(), s, Ctx(act))
        else:
            b, _ = _apply(it.items, s, hyper, act)
            m = it.mu ** 2
            s = State(K=m * s.K + b.K, J=m * s.J + b.J)
    return s, act


@dataclass(frozen=True, eq=False)
class Prediction:
    """critheory's prediction for a model read by :func:`read_model`.

    Attributes
    ----------
    layers : tuple of str
        As :attr:`ModelReading.layers`.
    q0 : float
        Input second moment ``|x|²/N₀`` used for ``K¹``.
    kernel : ndarray, shape (L,)
        ``K^l`` (mean-field, with each layer's empirical σ_w², σ_b²).
    apjn : ndarray, shape (L,)
        ``J^{1,l}`` predicted at infinite width (1 at the first layer).
    chi_jacobian : ndarray, shape (L,)
        ``χ_J`` of each layer, ``J^{1,l}/J^{1,l−1}`` (NaN at the first layer).
    phase : str or None
        ``ordered``/``critical``/``chaotic`` at the model's (σ_w², σ_b²) when the layers share
        one point (:meth:`ModelReading.uniform_point`), else None. ``critical`` also where
        ``|χ_J − 1|`` at the fixed point is within the sampling error of the empirical σ_w²
        (:data:`CRITICAL_Z` relative standard deviations ``sqrt(2/M)`` of a mean of M squared
        Gaussian weights; χ_J is proportional to σ_w² at a fixed K).
    chi_jacobian_fixed_point : float or None
        χ_J at the fixed point the kernel flows to (with :attr:`phase`).
    point : tuple of float or None
        That shared (σ_w², σ_b²).
    reading : ModelReading

    Examples
    --------
    >>> import torch
    >>> p = predict(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(),
    ...                                 torch.nn.Linear(8, 1)), q0=1.0)
    >>> isinstance(p, Prediction), len(p.kernel) == len(p.apjn)
    (True, True)
    """

    __repr__ = short_repr

    layers: tuple
    q0: float
    kernel: np.ndarray
    apjn: np.ndarray
    chi_jacobian: np.ndarray
    phase: str | None
    chi_jacobian_fixed_point: float | None
    point: tuple | None
    reading: ModelReading

    def to_dict(self) -> dict:
        return jsonable({"layers": list(self.layers), "q0": self.q0, "kernel": self.kernel,
                         "apjn_theory": self.apjn, "chi_jacobian": self.chi_jacobian,
                         "phase": self.phase,
                         "chi_jacobian_fixed_point": self.chi_jacobian_fixed_point,
                         "point": None if self.point is None else list(self.point),
                         "hyperparameters": self.reading.hyperparameters(),
                         "notes": list(self.reading.notes)})


def _check_inputs_fit(model: nn.Module, first: str, inputs) -> None:
    """Refuse a batch that the model's first dense layer cannot take (its features: the last
    axis of a Linear's input, the channel axis of a convolution's)."""
    if not isinstance(inputs, torch.Tensor):
        raise InvalidArgumentError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    m = dict(model.named_modules()).get(first)
    n_in, axis = getattr(m, "in_features", None), -1
    if n_in is None and getattr(m, "in_channels", None) is not None:
        n_in, axis = m.in_channels, 1
    if n_in is None:
        return
    if inputs.ndim < (2 if axis == 1 else 1) or inputs.shape[axis] != n_in:
        raise InvalidArgumentError(
            f"inputs of shape {tuple(inputs.shape)} do not fit the first layer {first!r} "
            f"({n_in} {'channels' if axis == 1 else 'features'} per example)")


def predict(model: nn.Module | ModelReading, inputs: torch.Tensor | None = None, *,
            q0: float | None = None) -> Prediction:
    """critheory's prediction for ``model``: ``K^l``, χ_J per layer, the APJN ``J^{1,l}`` and,
    where the layers share one (σ_w², σ_b²), the phase.

    Parameters
    ----------
    model : nn.Module or ModelReading
    inputs : Tensor, optional
        A batch; ``q0 = mean(x²)`` (the input second moment per entry).
    q0 : float, optional
        ``|x|²/N₀`` directly (default 1 when neither is given).

    Examples
    --------
    >>> from torch import nn
    >>> from critheory.torch import init_critical_
    >>> m = nn.Sequential(*[nn.Linear(64, 64) if i % 2 == 0 else nn.ReLU() for i in range(7)])
    >>> _ = init_critical_(m, seed=0)            # ReLU: (σ_w², σ_b²) = (2, 0)
    >>> p = predict(m, q0=1.0)
    >>> p.phase, [round(float(c), 1) for c in p.chi_jacobian[1:]]
    ('critical', [1.0, 1.0, 1.0])
    """
    reading = model if isinstance(model, ModelReading) else read_model(model)
    if not reading.structured:
        raise InvalidArgumentError(f"no theory for this model: {reading.notes[0]}")
    if inputs is not None and isinstance(model, nn.Module):
        _check_inputs_fit(model, reading._items[0].name, inputs)
    if q0 is None:
        q0 = 1.0 if inputs is None else float(torch.mean(inputs.detach().double() ** 2))
    if not (math.isfinite(q0) and q0 >= 0):
        raise InvalidArgumentError(f"q0 must be finite and >= 0, got {q0}")
    items = reading._items
    hyper = {}
    for names, ws, bs in zip(reading.dense, reading.weight_var, reading.bias_var):
        for n, w, b in zip(names, ws, bs):
            hyper[n] = (w, b)
    sw1, sb1 = hyper[items[0].name]
    s = State.start(np.array(sb1 + sw1 * q0), jacobian=True)
    K, J = [float(s.K)], [1.0]
    act = reading.activations[0] if reading.activations else None
    with np.errstate(over="ignore", invalid="ignore"):
        for unit in items[1:]:
            s, act = _apply(unit, s, hyper, act)
            K.append(float(s.K))
            J.append(float(s.J))
    K, J = np.array(K), np.array(J)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.concatenate([[np.nan], J[1:] / J[:-1]])
    phase = chi_fp = None
    point = reading.uniform_point() if reading.network is not None else None
    if point is not None:
        from critheory.theory.meanfield.fixed_points import analyze_point
        from critheory.theory.meanfield.maps import LayerMaps

        try:
            # the input kernel of the theory's first layer is σ_b² + σ_w² q: match K¹
            q_eff = (K[0] - point[1]) / point[0] if K[0] > point[1] else q0
            pa = analyze_point(LayerMaps(reading.network), point[0], point[1],
                               q0=max(q_eff, 1e-12))
            phase, chi_fp = pa.phase, float(pa.chi_jacobian)
            m = max(reading.hidden_weights, 1)
            if abs(chi_fp - 1.0) <= CRITICAL_Z * math.sqrt(2.0 / m):
                phase = "critical"     # indistinguishable from 1 given the weights' sample
        except CritheoryError:
            phase = chi_fp = None
    return Prediction(layers=reading.layers, q0=q0, kernel=K, apjn=J, chi_jacobian=chi,
                      phase=phase, chi_jacobian_fixed_point=chi_fp, point=point,
                      reading=reading)
