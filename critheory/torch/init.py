"""Critical initialization of PyTorch models, in the style of ``torch.nn.init``.

* :func:`init_critical_` — from the theory: the model is read (:func:`~critheory.torch.read.
  read_model`), critheory finds the critical point of its architecture and activation (or a
  point of the critical line at a chosen σ_b², or a point you give), and every Linear/Conv
  module is drawn in place as ``W ~ N(0, σ_w²/fan_in)``, ``b ~ N(0, σ_b²)``.
* :func:`tune_critical_` — data-driven, as in Doshi, He, Gromov (arXiv:2111.12143, §5,
  "Algorithm 1") and AutoInit (Bingham, Miikkulainen, arXiv:2206.13568): layer by layer from
  the bottom, the measured ``χ_J^l = J^{l−1,l}`` on a batch of inputs is driven to 1 by scaling
  that layer's weights, with a stopping rule and a report.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from critheory.torch import init_critical_
>>> m = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32))
>>> rep = init_critical_(m, seed=0)     # tanh: the critical point (σ_w², σ_b²) = (1, 0)
>>> rep
InitReport(weight_var=1, bias_var=0, 4 tensors drawn, 0 kept)
>>> sw, sb = rep
>>> float(m[2].bias.detach().abs().max())
0.0
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from critheory.activation import Activation
from critheory.blocks.blocks import Dense, Phi
from critheory.blocks.network import Network
from critheory.common.jsonable import jsonable
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.theory.meanfield.inputs import CriticalityWarning
from critheory.torch.graph import as_tuple, source_graph, split_call
from critheory.torch.measure import (LAYER_TYPES, apjn, layers_of_type, measuring,
                                     resolve_generator)
from critheory.torch.read import read_model, select, weight_tensors
from critheory.common.reprs import dataclass_dict, short_repr

__all__ = ["init_critical_", "tune_critical_", "TuneReport", "critical_hyperparameters",
           "critical_normal_", "InitReport", "TensorAction", "CriticalityWarning"]


def _point_of(point) -> tuple[float, float]:
    from critheory.common.checks import check_bias_var, check_weight_var

    if hasattr(point, "weight_var") and hasattr(point, "bias_var"):
        sw, sb = point.weight_var, point.bias_var
    else:
        try:
            sw, sb = point
        except (TypeError, ValueError):
            raise InvalidArgumentError("point must be (weight_var, bias_var), got "
                                       f"{point!r}") from None
    return check_weight_var(sw), check_bias_var(sb)


def _choose(model: nn.Module | None, activation, point, bias_var, q0, notes: list
            ) -> tuple[float, float, Any]:
    """(σ_w², σ_b², InputPoint or None) and notes; see :func:`init_critical_`."""
    if point is not None:
        if bias_var is not None or q0 is not None:
            raise InvalidArgumentError("give point, or bias_var / q0, not both")
        sw, sb = _point_of(point)
        notes.append(f"the point given: ({sw:.6g}, {sb:.6g})")
        return sw, sb, None
    if bias_var is not None and q0 is not None:
        raise InvalidArgumentError("give bias_var or q0, not both")
    reading = read_model(model) if model is not None else None
    structured = reading is not None and reading.structured
    if activation is not None:
        act = Activation.get(activation)
    elif reading is not None and len(reading.activations) == 1:
        act = reading.activations[0]
    else:
        raise InvalidArgumentError(
            "cannot choose a critical point: the model has "
            + ("no readable activation" if reading is None or not reading.activations
               else "several activations")
            + "; give activation=... or point=(weight_var, bias_var)")
    units = reading.units if structured else ()
    if structured and (not units or any(u != units[0] for u in units)):
        raise InvalidArgumentError("cannot choose a critical point: the layers after the first "
                                   "do not share one architecture; give point=(weight_var, "
                                   "bias_var)")
    if structured:
        net = Network("torch model", act, units[0])
    else:
        net = Network("mlp", act, (Phi(), Dense()))
        if reading is not None:
            notes.append(f"{reading.notes[0]}; the critical point of an MLP with {act.name} "
                         "is used")
    from critheory.theory.meanfield.criticality import critical_line, critical_points
    from critheory.theory.meanfield.maps import LayerMaps

    arch = LayerMaps(net)
    if q0 is not None:
        if structured and tuple(units[0]) != (Phi(), Dense()):
            raise InvalidArgumentError(f"q0= chooses a point for an MLP; this model is "
                                       f"{arch.describe()}: give bias_var= or point=")
        from critheory.theory.meanfield.inputs import critical_point_for_inputs

        depth = max(reading.depth if structured else 64, 2)
        ip = critical_point_for_inputs(act, q0, depth=min(depth, 2000))
        notes.append(f"point for inputs of q0 = {q0:g} ({ip.rule}): K* = {ip.fixed_point:.6g}, "
                     f"max |log J^(1,l)| = {ip.apjn_max_log:.3g} over {ip.depth} layers")
        notes.extend(ip.notes)
        from critheory.theory.meanfield.inputs import FLAT_TOL

        if ip.rule == "reached" and ip.apjn_max_log > math.log1p(FLAT_TOL):
            msg = (f"{act.name}: no point of the critical line keeps J^(1,l) within "
                   f"{FLAT_TOL:.0%} of flat for inputs of q0 = {q0:g} over {ip.depth} layers; "
                   f"the flattest reached one ({ip.weight_var:.6g}, {ip.bias_var:.6g}) stays "
                   f"within a factor {math.exp(ip.apjn_max_log):.3g}")
            notes.append(msg)
            warnings.warn(msg, CriticalityWarning, stacklevel=3)
        return ip.weight_var, ip.bias_var, ip
    if bias_var is not None:
        pts = [p for p in critical_line(arch, [float(bias_var)]) if p.weight_var is not None]
        if not pts:
            raise InvalidArgumentError(f"the critical line of {act.name} ({arch.describe()}) has "
                                       f"no point at bias_var = {bias_var:g}")
        return float(pts[0].weight_var), float(pts[0].bias_var), None
    pts = critical_points(arch)
    if not pts:
        raise InvalidArgumentError(
            f"{act.name} ({arch.describe()}) has no critical point (χ_J = χ_∥ = 1); choose a "
            "point of its critical line with bias_var=..., or give point=(weight_var, bias_var)")
    p = pts[0]
    if p.half_stable and p.fixed_point is not None:
        from critheory.theory.meanfield.inputs import critical_point_reach

        try:
            _, depth_lost = critical_point_reach(act, 1.0, depth=64)
            lost = ("" if depth_lost is None else
                    f"; with unit-norm inputs (q0 = 1, K1 = {p.bias_var + p.weight_var:.3g}) "
                    f"J^(1,l) is off by more than 10 % from depth {depth_lost}")
        except CritheoryError:
            lost = ""
        msg = (f"the critical point of {act.name} ({p.weight_var:.6g}, {p.bias_var:.6g}) is "
               f"half-stable: inputs whose K1 = bias_var + weight_var*q0 is below "
               f"K* = {p.fixed_point:.4g} do not reach it{lost}; pass q0= (the inputs' "
               "|x|^2/N0) for the point that is critical for them")
        notes.append(msg)
        warnings.warn(msg, CriticalityWarning, stacklevel=3)
    return float(p.weight_var), float(p.bias_var), None


def critical_hyperparameters(model: nn.Module, activation=None, point=None, *,
                             bias_var: float | None = None, q0: float | None = None
                             ) -> tuple[float, float]:
    """The (σ_w², σ_b²) :func:`init_critical_` would use (see there); nothing is changed."""
    sw, sb, _ = _choose(model if point is None else None, activation, point, bias_var, q0, [])
    return sw, sb


# ----------------------------------------------------------------------------- per tensor
def _fan_in_of(tensor: torch.Tensor, transposed: bool) -> int:
    if tensor.dim() < 2:
        raise InvalidArgumentError("a weight needs at least 2 dimensions (give fan_in= for a "
                                   f"tensor of shape {tuple(tensor.shape)})")
    if transposed:
        return int(tensor.shape[0])
    return int(tensor[0].numel())


def critical_normal_(tensor: torch.Tensor, activation=None, *, point=None,
                     bias_var: float | None = None, q0: float | None = None,
                     role: str = "weight", fan_in: int | None = None, transposed: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place from the critical distribution, in the style of
    ``torch.nn.init.normal_``: a weight ``N(0, σ_w²/fan_in)``, a bias ``N(0, σ_b²)``.

    Parameters
    ----------
    tensor : Tensor
        A weight (fan_in = the product of all dimensions but the first, as torch's
        ``kaiming_normal_``; ``transposed=True`` for weights stored ``(in, out)`` such as
        HuggingFace's ``Conv1D``: fan_in = the first dimension) or a bias (``role="bias"``).
        ``role="input_weight"``: the weight of the layer that sees the inputs, which the point
        for inputs ``q0`` may give its own σ_w² (rule ``"input layer"``; the others: σ_w²).
    activation : str, sympy expression or Activation, optional
        The activation whose MLP critical point (or point for inputs ``q0``, or critical-line
        point at ``bias_var``) is used; not with ``point``.
    point : (float, float), optional
        (σ_w², σ_b²) as they are.
    generator : torch.Generator, optional
        As in ``torch.nn.init``: default torch's global generator.

    Returns
    -------
    Tensor
        ``tensor``.

    Examples
    --------
    >>> import torch
    >>> w = torch.empty(512, 256)
    >>> _ = critical_normal_(w, "relu", generator=torch.Generator().manual_seed(0))
    >>> abs(float(w.pow(2).mean()) * 256 - 2.0) < 0.02       # σ_w² = 2 for ReLU
    True
    """
    if not isinstance(tensor, torch.Tensor):
        raise InvalidArgumentError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if role not in ("weight", "input_weight", "bias"):
        raise InvalidArgumentError(f"role must be 'weight', 'input_weight' or 'bias', got "
                                   f"{role!r}")
    if activation is None and point is None:
        raise InvalidArgumentError("give activation= or point=")
    sw, sb, ip = _choose(None, activation, point, bias_var, q0, [])
    gen = resolve_generator(None, generator, "weights")
    if role != "bias":
        n = _fan_in_of(tensor, transposed) if fan_in is None else int(fan_in)
        if n < 1:
            raise InvalidArgumentError(f"fan_in must be >= 1, got {fan_in!r}")
        if role == "input_weight" and ip is not None:
            sw = ip.input_weight_var
        std = math.sqrt(sw / n)
    else:
        std = math.sqrt(sb)
    _fill_normal(tensor, std, gen)
    return tensor


def _fill_normal(tensor: torch.Tensor, std: float, gen: torch.Generator) -> None:
    """``tensor ← N(0, std²)``, drawn in float64 on the generator's device and copied."""
    with torch.no_grad():
        z = torch.randn(tensor.shape, generator=gen, dtype=torch.float64, device=gen.device)
        tensor.copy_(z * std)


@dataclass(frozen=True)
class TensorAction:
    """What :func:`init_critical_` did to one parameter.

    Attributes
    ----------
    name : str
        The parameter's name (as in ``model.named_parameters()``).
    kind : str
        ``linear``, ``conv``, ``conv1d_hf``, ``attention_in_proj``, ``embedding`` (see
        :class:`~critheory.torch.read.WeightTensor`), or ``other``.
    action : str
        ``drawn`` or ``kept``.
    std : float or None
        The standard deviation drawn with.
    fan_in : int or None
    note : str

    Examples
    --------
    >>> import torch
    >>> r = init_critical_(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                                        torch.nn.Linear(8, 1)), seed=0)
    >>> t = r.tensors[0]
    >>> isinstance(t, TensorAction), t.name, t.action, t.std     # std = sqrt(1/4)
    (True, '0.weight', 'drawn', 0.5)
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    name: str
    kind: str
    action: str
    std: float | None
    fan_in: int | None
    note: str = ""


@dataclass(frozen=True)
class InitReport:
    """What :func:`init_critical_` did.

    Attributes
    ----------
    weight_var, bias_var : float
        The (σ_w², σ_b²) used (``sw, sb = init_critical_(...)`` unpacks them).
    tensors : tuple of TensorAction
        Every parameter of the model and what happened to it.
    q0 : float
        The input second moment embeddings were drawn for (their entries ``N(0, q0)``).
    input_point : InputPoint or None
        The point for inputs (``q0=``), with its diagnostics.
    notes : tuple of str
    input_weight_var : float or None
        σ_w² the input layer (the model's first weight tensor, unless an embedding) was drawn
        with where it differs from ``weight_var`` (the point for inputs, rule
        ``"input layer"``); None otherwise.

    Examples
    --------
    >>> import torch
    >>> r = init_critical_(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                                        torch.nn.Linear(8, 1)), seed=0)
    >>> isinstance(r, InitReport), r.kept
    (True, ())
    """

    weight_var: float
    bias_var: float
    tensors: tuple
    q0: float = 1.0
    input_point: Any = None
    notes: tuple = ()

    input_weight_var: float | None = None

    @property
    def point(self) -> tuple[float, float]:
        return self.weight_var, self.bias_var

    def __iter__(self):
        return iter(self.point)

    @property
    def drawn(self) -> tuple:
        """Names of the parameters drawn."""
        return tuple(t.name for t in self.tensors if t.action == "drawn")

    @property
    def kept(self) -> tuple:
        """Names of the parameters left as they were."""
        return tuple(t.name for t in self.tensors if t.action == "kept")

    def __repr__(self) -> str:
        inp = ("" if self.input_weight_var is None
               else f", input_weight_var={self.input_weight_var:.6g}")
        return (f"InitReport(weight_var={self.weight_var:.6g}, bias_var={self.bias_var:.6g}"
                f"{inp}, {len(self.drawn)} tensors drawn, {len(self.kept)} kept)")

    def to_dict(self) -> dict:
        return jsonable({"weight_var": self.weight_var, "bias_var": self.bias_var,
                         "input_weight_var": self.input_weight_var,
                         "q0": self.q0, "notes": list(self.notes),
                         "input_point": None if self.input_point is None
                         else self.input_point.to_dict(),
                         "tensors": [t.__dict__ for t in self.tensors]})


def init_critical_(model: nn.Module, activation=None, point=None, *,
                   bias_var: float | None = None, q0: float | None = None, layers=None,
                   generator: torch.Generator | None = None,
                   seed: int | None = None) -> InitReport:
    """Initialize the weight tensors of ``model`` in place at a critical (σ_w², σ_b²).

    Any module tree: every tensor of :func:`~critheory.torch.read.weight_tensors` (Linear,
    Conv, HuggingFace ``Conv1D``, the q/k/v input projections of ``nn.MultiheadAttention``
    and its output projection, embeddings) is drawn; every other parameter (normalization
    affine parameters, class tokens, positional embeddings held as bare parameters) is kept,
    and the returned report says so tensor by tensor.

    Parameters
    ----------
    model : nn.Module
    activation : str, sympy expression or Activation, optional
        The activation to take the critical point of (a zoo name or a formula), where the
        model's own cannot be read or should be overridden.
    point : tuple of float, CriticalPoint or LinePoint, optional
        Use this (σ_w², σ_b²) as it is (the model is not read).
    bias_var : float, optional
        The point of the critical line (χ_J(K*) = 1) at this σ_b² (the first branch, smallest
        σ_w²) instead of the critical point.
    q0 : float, optional
        The inputs' second moment ``|x|²/N₀``: the point that is critical for such inputs
        (:func:`critheory.theory.meanfield.inputs.critical_point_for_inputs`, MLP stacks);
        embeddings are drawn ``N(0, q0)`` (default 1). Without ``q0``, a half-stable critical
        point (GELU, SiLU) comes with a :class:`CriticalityWarning` saying from which inputs
        it is not reached.
    layers : str or sequence of str, optional
        Only the modules with these names or glob patterns (``"blocks.*.mlp.*"``) are drawn.
    generator : torch.Generator, optional
        Random numbers; default (PyTorch's rule) torch's global generator, so
        ``torch.manual_seed`` makes the initialization reproducible.
    seed : int, optional
        Instead of ``generator``: the ``"weights"`` stream of this seed
        (:func:`~critheory.torch.measure.seed_generator`), independent of the probes of
        ``apjn(..., seed=seed)``.

    Returns
    -------
    InitReport
        Unpacks as ``(σ_w², σ_b²)``.

    Notes
    -----
    Weights are drawn in float64 on the CPU and copied into the parameters (any dtype and
    device), under ``torch.no_grad()``.
    The structure is read (:func:`~critheory.torch.read.read_model`) to choose the critical
    point; a model critheory cannot read as a stack gets the critical point of an MLP with its
    one activation (or ``activation=``), with a note.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(),
    ...                             torch.nn.Linear(64, 1))
    >>> report = init_critical_(model, seed=0)          # tanh's critical point (1, 0)
    >>> report.weight_var, report.bias_var, report.drawn
    (1.0, 0.0, ('0.weight', '0.bias', '2.weight', '2.bias'))
    >>> report.tensors[0].std                           # sqrt(1/16)
    0.25
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    notes: list = []
    sw, sb, ip = _choose(model if point is None else None, activation, point, bias_var, q0,
                         notes)
    gen = resolve_generator(seed, generator, "weights")
    rows = weight_tensors(model)
    chosen = set(select(dict.fromkeys(r.module for r in rows), layers))
    qe = 1.0 if q0 is None else float(q0)
    # the input layer: the model's first weight tensor (module order) where it is not an
    # embedding; its own σ_w² where the point for the inputs gives one (rule "input layer")
    first = rows[0] if rows and rows[0].kind != "embedding" else None
    sw_in = sw if ip is None else ip.input_weight_var
    if sw_in != sw and first is None:
        msg = (f"the point for inputs of q0 = {qe:g} ({ip.rule}) needs the input layer drawn "
               f"with its own weight_var {sw_in:.6g} (K1 = K* = {ip.fixed_point:.6g}); this "
               "model starts with an embedding, so critheory cannot tell which layer sees the "
               f"inputs: every layer got {sw:.6g}; draw the input layer with "
               "input_point.input_weight_std(fan_in)")
        notes.append(msg)
        warnings.warn(msg, CriticalityWarning, stacklevel=2)
        sw_in = sw
    elif sw_in != sw:
        if first.module not in chosen:
            raise InvalidArgumentError(
                f"the point for inputs of q0 = {qe:g} ({ip.rule}) needs the input layer "
                f"{first.module!r} drawn with its own weight_var {sw_in:.6g}, and it is not "
                "among layers=; give bias_var= or point=")
        notes.append(f"input layer {first.module!r}: weight_var {sw_in:.6g} (K1 = K* = "
                     f"{ip.fixed_point:.6g} for inputs of q0 = {qe:g}), the other layers "
                     f"{sw:.6g}")
    done: dict = {}
    for r in rows:
        w, b = r.tensors(model)
        wname = f"{r.module}.{r.weight}" if r.module else r.weight
        bname = None if r.bias is None else (f"{r.module}.{r.bias}" if r.module else r.bias)
        if r.module not in chosen:
            done[wname] = TensorAction(wname, r.kind, "kept", None, r.fan_in, "not in layers=")
            if bname:
                done[bname] = TensorAction(bname, r.kind, "kept", None, None, "not in layers=")
            continue
        if r.kind == "embedding":
            std, note = math.sqrt(qe), "an input: entries N(0, q0)"
        elif r is first and sw_in != sw:
            std, note = math.sqrt(sw_in / r.fan_in), "input layer: N(0, input_weight_var/fan_in)"
        else:
            std, note = math.sqrt(sw / r.fan_in), "N(0, weight_var/fan_in)"
        _fill_normal(w, std, gen)
        done[wname] = TensorAction(wname, r.kind, "drawn", std, r.fan_in, note)
        if b is not None:
            _fill_normal(b, math.sqrt(sb), gen)
            done[bname] = TensorAction(bname, r.kind, "drawn", math.sqrt(sb), None,
                                       "N(0, bias_var)")
    tensors = []
    for name, _ in model.named_parameters():
        tensors.append(done.get(name) or TensorAction(
            name, "other", "kept", None, None,
            "not a weight critheory initializes (normalization affine, class token, "
            "positional embedding, transposed convolution...)"))
    return InitReport(weight_var=sw, bias_var=sb, tensors=tuple(tensors), q0=qe,
                      input_point=ip, notes=tuple(notes),
                      input_weight_var=None if sw_in == sw else sw_in)


@dataclass(frozen=True)
class TuneReport:
    """What :func:`tune_critical_` did, per tuned layer.

    Attributes
    ----------
    layers : tuple of str
        The layers ``l`` whose ``χ_J^l = J^{l−1,l}`` was tuned (outputs of submodules).
    scaled : tuple of str
        The weight each layer's scale was applied to.
    scales : tuple of float
        The factor each weight was multiplied by in total.
    chi, chi_stderr : tuple of float
        The last measured ``χ_J^l`` and its standard error (over probes).
    iterations : tuple of int
        Measurements per layer.
    converged : tuple of bool
        Whether the stopping rule was met: ``|χ − 1| <= max(tol, 2·stderr)``.
    tol : float
    probes : int
    notes : tuple of str

    Examples
    --------
    >>> import torch
    >>> m = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
    ...                         torch.nn.Tanh(), torch.nn.Linear(64, 1))
    >>> x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    >>> r = tune_critical_(m, x, seed=0)
    >>> isinstance(r, TuneReport), r.layers, all(r.converged)
    (True, ('2', '4'), True)
    """

    __repr__ = short_repr

    layers: tuple
    scaled: tuple
    scales: tuple
    chi: tuple
    chi_stderr: tuple
    iterations: tuple
    converged: tuple
    tol: float
    probes: int
    notes: tuple = ()

    @property
    def all_converged(self) -> bool:
        return all(self.converged)

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in (
            "layers", "scaled", "scales", "chi", "chi_stderr", "iterations", "converged", "tol",
            "probes", "notes")} | {"all_converged": self.all_converged})


def _source_for(model, inputs, earlier: list, layer: str) -> str | None:
    """The latest of ``earlier`` whose output ``layer``'s output depends on (by autograd), or
    None."""
    for src in reversed(earlier):
        h0, outs = source_graph(model, as_tuple(inputs), src, [layer])
        y = outs[layer]
        if y.requires_grad:
            (g,) = torch.autograd.grad(y.sum(), h0, allow_unused=True)
            if g is not None:
                return src
    return None


def tune_critical_(model: nn.Module, inputs, *, tol: float = 0.02, probes: int = 16,
                   max_iter: int = 20, seed: int | None = None,
                   generator: torch.Generator | None = None, batchnorm: str = "refuse",
                   progress=None) -> TuneReport:
    """Scale each layer's weights in place until its measured ``χ_J^l = J^{l−1,l}`` is 1.

    Layers are tuned from the bottom up (a layer's χ_J depends on the layers below through its
    input). For a readable model (:func:`~critheory.torch.read.read_model`) the layers are its
    ``h^l`` and the weight scaled is the last Linear/Conv of layer l; otherwise the layers are
    the consecutive Linear/Conv (and HuggingFace ``Conv1D``) modules in execution order and
    each one's own weight is scaled.

    Update: ``χ = μ² + s² B`` for a layer whose weight is scaled by s (μ the strength of a
    declared residual block, 0 otherwise; B the branch's share, exact for a
    positively homogeneous activation and a first-order step otherwise), so
    ``s ← s·sqrt((1 − μ²)/(χ − μ²))``. Stopping rule: ``|χ − 1| <= max(tol, 2·stderr)``
    (a tolerance below the probes' own noise cannot be met) or ``max_iter`` measurements;
    with μ >= 1 no scale reaches χ = 1 and the layer is reported as not converged.

    Parameters
    ----------
    model : nn.Module
    inputs : Tensor or tuple of Tensors
        The batch the χ's are measured on.
    tol : float
        Target ``|χ_J − 1|``.
    probes : int
        JVP/VJP probes per measurement (:func:`~critheory.torch.measure.apjn`).
    max_iter : int
        Measurements per layer at most.
    seed, generator
        Randomness of the probes, as :func:`~critheory.torch.measure.apjn` (default torch's
        global generator).
    batchnorm : {"refuse", "eval"}
        A model with BatchNorm is refused (in train mode its Jacobian mixes the samples of the
        batch, and the running statistics would move), unless ``"eval"``: measured in eval
        mode on the running statistics (whatever they are now); modes and buffers are
        restored afterwards.
    progress : bool or callable, optional
        True: a progress bar on stderr; a callable: ``progress(done, total)`` after each layer.

    Returns
    -------
    TuneReport

    Notes
    -----
    Every measurement runs in eval mode (Dropout off), and the model's modes and buffers are
    restored afterwards. A layer whose output does not depend on the layer before it (a
    parallel branch, such as the ``downsample`` convolution of a ResNet block, whose input is
    the block's input) is tuned against the latest earlier layer it does depend on, and the
    report says which; a layer that depends on none is skipped with a note.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> m = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
    ...                   nn.Linear(64, 64)).double()
    >>> rep = tune_critical_(m, torch.randn(32, 64, dtype=torch.float64))
    >>> rep.all_converged, [abs(c - 1) <= max(0.02, 2 * s) for c, s in zip(rep.chi,
    ...                                                                      rep.chi_stderr)]
    (True, [True, True])
    """
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise InvalidArgumentError(f"tol must be a number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InvalidArgumentError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if batchnorm not in ("refuse", "eval"):
        raise InvalidArgumentError(f"batchnorm must be 'refuse' or 'eval', got {batchnorm!r}")
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    if bns and batchnorm == "refuse":
        raise InvalidArgumentError(
            f"the model has BatchNorm ({bns[0]!r}{' and more' if len(bns) > 1 else ''}): tuning "
            "with batch statistics mixes the samples and moves the running statistics; pass "
            "batchnorm='eval' to tune in eval mode on the running statistics")
    gen = resolve_generator(seed, generator, "probes")
    from critheory.common.progress import Progress

    notes = []
    mods = dict(model.named_modules())
    with measuring(model, "eval"):
        reading = read_model(model)
        if reading.structured:
            layers = list(reading.layers)
            scaled = [names[-1] for names in reading.dense]
            mu2 = list(reading.skip_strengths2)
        else:
            notes.append(f"model not read ({reading.notes[0]}); tuning consecutive Linear/Conv "
                         "layers")
            layers = layers_of_type(model, inputs, LAYER_TYPES + ("Conv1D",))
            scaled = list(layers)
            mu2 = [0.0] * len(layers)
        if len(layers) < 2:
            raise InvalidArgumentError("tuning needs at least two layers")
        bar = Progress(len(layers) - 1, progress or False)
        out = {k: [] for k in ("layers", "scaled", "scales", "chi", "se", "it", "ok")}
        for k in range(1, len(layers)):
            src = _source_for(model, inputs, layers[:k], layers[k])
            bar.update(1)
            if src is None:
                notes.append(f"{layers[k]}: skipped, its output depends on none of the layers "
                             "before it (a parallel branch fed by the model's input)")
                continue
            if src != layers[k - 1]:
                notes.append(f"{layers[k]}: a parallel branch (it does not depend on "
                             f"{layers[k - 1]!r}); tuned as J^({src},{layers[k]})")
            w = mods[split_call(scaled[k])[0]].weight
            m = mu2[k]
            total, chi, se, it, ok = 1.0, math.nan, math.nan, 0, False
            for it in range(1, max_iter + 1):
                r = apjn(model, inputs, source=src, targets=[layers[k]], probes=probes,
                         generator=gen)
                chi, se = float(r.mean[0]), float(r.stderr[0])
                if abs(chi - 1.0) <= max(tol, 2.0 * (se if math.isfinite(se) else 0.0)):
                    ok = True
                    break
                if m >= 1.0:
                    notes.append(f"{layers[k]}: residual strength mu^2 = {m:g} >= 1, chi_J >= 1 "
                                 "at every scale")
                    break
                if not (math.isfinite(chi) and chi > m) or it == max_iter:
                    break
                s = math.sqrt((1.0 - m) / (chi - m))
                with torch.no_grad():
                    w.mul_(s)
                total *= s
            for key, v in zip(("layers", "scaled", "scales", "chi", "se", "it", "ok"),
                              (layers[k], scaled[k], total, chi, se, it, ok)):
                out[key].append(v)
    return TuneReport(layers=tuple(out["layers"]), scaled=tuple(out["scaled"]),
                      scales=tuple(out["scales"]), chi=tuple(out["chi"]),
                      chi_stderr=tuple(out["se"]), iterations=tuple(out["it"]),
                      converged=tuple(out["ok"]), tol=float(tol), probes=probes,
                      notes=tuple(notes))
