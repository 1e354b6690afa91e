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
>>> init_critical_(m, seed=0)          # tanh: the critical point (σ_w², σ_b²) = (1, 0)
(1.0, 0.0)
>>> float(m[2].bias.detach().abs().max())
0.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from critheory.activation import Activation
from critheory.blocks.network import Network
from critheory.common.jsonable import jsonable
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.torch.measure import LAYER_TYPES, _generator, apjn, layers_of_type
from critheory.torch.read import read_model

__all__ = ["init_critical_", "tune_critical_", "TuneReport", "critical_hyperparameters"]


def critical_hyperparameters(model: nn.Module, activation=None, point=None, *,
                             bias_var: float | None = None) -> tuple[float, float]:
    """The (σ_w², σ_b²) :func:`init_critical_` would use (see there); nothing is changed."""
    reading = read_model(model)
    if point is not None:
        if bias_var is not None:
            raise InvalidArgumentError("give either point or bias_var, not both")
        if hasattr(point, "weight_var") and hasattr(point, "bias_var"):
            sw, sb = point.weight_var, point.bias_var
        else:
            try:
                sw, sb = point
            except (TypeError, ValueError):
                raise InvalidArgumentError("point must be (weight_var, bias_var), got "
                                           f"{point!r}") from None
        from critheory.common.checks import check_bias_var, check_weight_var

        return check_weight_var(sw), check_bias_var(sb)
    if activation is not None:
        act = Activation.get(activation)
    elif len(reading.activations) == 1:
        act = reading.activations[0]
    else:
        raise InvalidArgumentError(
            "cannot choose a critical point: the model has "
            + ("no readable activation" if not reading.activations else "several activations")
            + "; give activation=... or point=(weight_var, bias_var)")
    units = reading.units
    if not units or any(u != units[0] for u in units):
        raise InvalidArgumentError("cannot choose a critical point: the layers after the first "
                                   "do not share one architecture; give point=(weight_var, "
                                   "bias_var)")
    from critheory.theory.meanfield.criticality import critical_line, critical_points
    from critheory.theory.meanfield.maps import LayerMaps

    arch = LayerMaps(Network("torch model", act, units[0]))
    if bias_var is not None:
        pts = [p for p in critical_line(arch, [float(bias_var)]) if np.isfinite(p.weight_var)]
        if not pts:
            raise InvalidArgumentError(f"the critical line of {act.name} ({arch.describe()}) has "
                                       f"no point at bias_var = {bias_var:g}")
        return float(pts[0].weight_var), float(pts[0].bias_var)
    pts = critical_points(arch)
    if not pts:
        raise InvalidArgumentError(
            f"{act.name} ({arch.describe()}) has no critical point (χ_J = χ_∥ = 1); choose a "
            "point of its critical line with bias_var=..., or give point=(weight_var, bias_var)")
    return float(pts[0].weight_var), float(pts[0].bias_var)


def init_critical_(model: nn.Module, activation=None, point=None, *,
                   bias_var: float | None = None, generator: torch.Generator | None = None,
                   seed: int | None = None) -> tuple[float, float]:
    """Initialize every Linear/Conv module of ``model`` in place at a critical (σ_w², σ_b²).

    Parameters
    ----------
    model : nn.Module
        A model :func:`~critheory.torch.read.read_model` reads (its structure, and its
        activation unless ``activation`` is given).
    activation : str, sympy expression or Activation, optional
        The activation to take the critical point of (a zoo name or a formula), where the
        model's own cannot be read or should be overridden.
    point : (float, float) or CriticalPoint/LinePoint, optional
        Use this (σ_w², σ_b²) as it is.
    bias_var : float, optional
        The point of the critical line (χ_J(K*) = 1) at this σ_b² (the first branch, smallest
        σ_w²) instead of the critical point.
    generator : torch.Generator, optional
        Random numbers (CPU generator); else a generator seeded with ``seed`` (None: fresh
        entropy).

    Returns
    -------
    (float, float)
        The (σ_w², σ_b²) used.

    Notes
    -----
    Weights are drawn in float64 on the CPU and copied into the parameters (any dtype and
    device), under ``torch.no_grad()``; the same seed gives the same model. LayerNorm affine
    parameters are left as they are (1 and 0 at PyTorch's initialization).
    """
    sw, sb = critical_hyperparameters(model, activation, point, bias_var=bias_var)
    gen = _generator(seed, generator)
    reading = read_model(model)
    mods = dict(model.named_modules())
    with torch.no_grad():
        for names in reading.dense:
            for n in names:
                m = mods[n]
                fan_in = m.weight[0].numel()
                w = torch.randn(m.weight.shape, generator=gen, dtype=torch.float64)
                m.weight.copy_(w * math.sqrt(sw / fan_in))
                if m.bias is not None:
                    b = torch.randn(m.bias.shape, generator=gen, dtype=torch.float64)
                    m.bias.copy_(b * math.sqrt(sb))
    return sw, sb


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
    """

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


def tune_critical_(model: nn.Module, inputs, *, tol: float = 0.02, probes: int = 16,
                   max_iter: int = 20, seed: int | None = 0) -> TuneReport:
    """Scale each layer's weights in place until its measured ``χ_J^l = J^{l−1,l}`` is 1.

    Layers are tuned from the bottom up (a layer's χ_J depends on the layers below through its
    input). For a readable model (:func:`~critheory.torch.read.read_model`) the layers are its
    ``h^l`` and the weight scaled is the last Linear/Conv of layer l; otherwise the layers are
    the consecutive Linear/Conv modules and each one's own weight is scaled.

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
    seed : int or None
        Seed of the probes.

    Returns
    -------
    TuneReport

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> m = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
    ...                   nn.Linear(64, 64)).double()
    >>> rep = tune_critical_(m, torch.randn(32, 64, dtype=torch.float64), seed=1)
    >>> rep.all_converged, [abs(c - 1) <= max(0.02, 2 * s) for c, s in zip(rep.chi,
    ...                                                                      rep.chi_stderr)]
    (True, [True, True])
    """
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise InvalidArgumentError(f"tol must be a number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InvalidArgumentError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    notes = []
    mods = dict(model.named_modules())
    try:
        reading = read_model(model)
        layers = list(reading.layers)
        scaled = [names[-1] for names in reading.dense]
        mu2 = []
        for unit_items in reading._items:
            mu2.append(unit_items[-1].mu ** 2 if isinstance(unit_items, tuple)
                       and unit_items[-1].kind == "residual" else 0.0)
    except CritheoryError as exc:
        notes.append(f"model not read ({exc}); tuning consecutive Linear/Conv layers")
        layers = layers_of_type(model, inputs, LAYER_TYPES)
        scaled = list(layers)
        mu2 = [0.0] * len(layers)
    if len(layers) < 2:
        raise InvalidArgumentError("tuning needs at least two layers")
    out = {k: [] for k in ("layers", "scaled", "scales", "chi", "se", "it", "ok")}
    for k in range(1, len(layers)):
        w = mods[scaled[k]].weight
        m = mu2[k]
        total, chi, se, it, ok = 1.0, math.nan, math.nan, 0, False
        for it in range(1, max_iter + 1):
            r = apjn(model, inputs, source=layers[k - 1], targets=[layers[k]], probes=probes,
                     seed=None if seed is None else seed + 7919 * k + it)
            chi, se = float(r.mean[0]), float(r.stderr[0])
            if abs(chi - 1.0) <= max(tol, 2.0 * (se if math.isfinite(se) else 0.0)):
                ok = True
                break
            if m >= 1.0:
                notes.append(f"{layers[k]}: residual strength mu^2 = {m:g} >= 1, chi_J >= 1 at "
                             "every scale")
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
