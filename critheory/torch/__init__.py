"""critheory inside a PyTorch workflow (optional: ``pip install 'critheory[torch]'``).

The core of critheory never imports torch; this package does, and only this package (and the
``torch-apjn`` command, inside its function).

* :func:`apjn` — the averaged partial Jacobian norm ``J^{l0,l}`` of any ``nn.Module`` between
  named submodules, by forward-mode (JVP) or reverse-mode (VJP) random probes, or exactly;
  :func:`apjn_pairs` — ``J^{l,l+1}`` for every pair of consecutive layers (each layer's χ_J);
* :func:`read_model`, :func:`predict` — read an ``nn.Sequential``-style stack into critheory's
  blocks with its empirical σ_w², σ_b² per layer, and critheory's prediction for it;
* :func:`init_critical_`, :func:`critical_normal_`, :func:`tune_critical_` — critical
  initialization of any module tree, with a per-tensor report (from the theory, for the
  inputs' scale with ``q0=``, or data-driven: each layer's scale tuned until its measured χ_J
  is 1);

Randomness follows PyTorch: a ``generator=`` argument, else torch's global generator (so
``torch.manual_seed`` makes every call reproducible); ``seed=`` gives independent streams for
weights, probes and inputs (:func:`seed_generator`).
* :func:`jacobian_penalty` — ½‖J‖_F² by random projections (Hoffman, Roberts, Yaida), unbiased
  and differentiable, with :func:`jacobian_norm_exact` for checks;
* :class:`FDRMonitor` — Yaida's first fluctuation–dissipation relation for PyTorch's SGD.

See ``docs/torch.md``.
"""
from __future__ import annotations

import importlib

# Names are imported on first access (module ``__getattr__``), so that ``import critheory.torch``
# itself works without torch (pytest collects this package's doctests only where torch is
# installed: see conftest.py here) and tells what to install when a name is used.
_WHERE = {
    "TorchActivation": "activations", "activation_of": "activations",
    "torch_function": "activations",
    "APJNResult": "measure", "apjn": "measure", "apjn_pairs": "measure",
    "execution_order": "measure",
    "layers_of_type": "measure",
    "FDRMonitor": "fdr", "FDRResult": "fdr", "regression_example": "fdr",
    "TuneReport": "init", "init_critical_": "init", "tune_critical_": "init",
    "critical_normal_": "init", "InitReport": "init", "TensorAction": "init",
    "CriticalityWarning": "init", "seed_generator": "measure", "measuring": "measure",
    "WeightTensor": "read", "weight_tensors": "read",
    "ModelReading": "read", "Prediction": "read", "Residual": "read", "predict": "read",
    "read_model": "read",
    "jacobian_norm_exact": "regularizer", "jacobian_penalty": "regularizer",
}

#: the one line shown when torch is missing
INSTALL_HINT = "critheory.torch needs PyTorch: pip install 'critheory[torch]'"

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'critheory.torch' has no attribute {name!r}")
    try:
        importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    value = getattr(importlib.import_module(f"critheory.torch.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
