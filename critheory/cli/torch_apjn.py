"""Sub-command ``torch-apjn``: the APJN of a user's PyTorch model, beside critheory's theory.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory torch-apjn MODULE:FACTORY [--input-shape 16,64] [--probes P] [--seed S]
        [--method auto|jvp|forward|vjp|exact] [--json]

``MODULE`` is a module importable from the current directory (``models``, ``pkg.models``) or
the path of a ``.py`` file; ``FACTORY`` a callable in it (``make_model``, or a dotted path)
that returns an ``nn.Module`` when called without arguments. The input batch is
``N(0, 1)`` of shape ``--input-shape`` (default ``16,in_features`` of a first ``nn.Linear``), in
the dtype and on the device of the model's parameters, drawn with ``--seed``.

The APJN ``J^{1,l}`` is measured from the first layer to every later layer
(:func:`critheory.torch.apjn`); the layers are those :func:`critheory.torch.read_model` reads
(the outputs of Linear/Conv modules and declared residual blocks), or, where the model cannot
be read, its transformer layers (``nn.TransformerEncoderLayer``/``DecoderLayer``) if it has any,
else its Linear/Conv modules, in execution order (then ``apjn_theory`` is null).

JSON keys: ``layers`` (names), ``apjn_mean``, ``apjn_stderr``, ``apjn_theory`` (null where the
model cannot be read), ``hyperparameters`` (per layer ``weight_var``, ``bias_var`` as read:
fan_in · mean(W²) and mean(b²); null for a layer without a weight), ``z`` (per layer, the
probes' error only; null without theory or for the exact mode),
``phase``, ``chi_jacobian`` (at the fixed point, where the layers share one point), ``method``,
``probes``, ``seed``, ``input_shape``, ``theory_note``.

torch is imported inside the command: without it the command says, in one line, what to
install (exit status 2), and the rest of critheory does not notice.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from critheory.cli.theory import bounded_int
from critheory.errors import CritheoryError, InvalidArgumentError

__all__ = ["register", "MAX_INPUT_ELEMENTS", "MAX_CLI_PROBES", "INSTALL_MESSAGE"]

#: entries of the input batch at most (a float64 batch of 8·10⁷ bytes)
MAX_INPUT_ELEMENTS = 10 ** 7
MAX_CLI_PROBES = 4096
INSTALL_MESSAGE = "critheory torch-apjn needs PyTorch: pip install critheory[torch]"
_DEFAULT_BATCH = 16


def _shape(text: str) -> tuple:
    """argparse type: ``16,64`` or ``16x3x32x32``: positive integers, at most
    :data:`MAX_INPUT_ELEMENTS` entries in all."""
    parts = [p for p in str(text).replace("x", ",").split(",") if p.strip()]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 16,64, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive integers like 16,64, got {text!r}")
    n = math.prod(dims)
    if n > MAX_INPUT_ELEMENTS:
        raise argparse.ArgumentTypeError(f"an input of {n} entries; at most "
                                         f"{MAX_INPUT_ELEMENTS}")
    return dims


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_model(spec: str):
    """The model ``FACTORY()`` from ``MODULE:FACTORY`` (see the module docstring)."""
    import importlib
    import importlib.util

    from torch import nn

    if ":" not in spec:
        raise InvalidArgumentError(f"expected MODULE:FACTORY, got {spec!r}")
    mod_name, factory = spec.rsplit(":", 1)
    if not mod_name or not factory:
        raise InvalidArgumentError(f"expected MODULE:FACTORY, got {spec!r}")
    try:
        if mod_name.endswith(".py") or os.sep in mod_name:
            if not os.path.isfile(mod_name):
                raise InvalidArgumentError(f"no such file: {mod_name}")
            name = "_critheory_user_" + os.path.splitext(os.path.basename(mod_name))[0]
            sp = importlib.util.spec_from_file_location(name, mod_name)
            if sp is None or sp.loader is None:
                raise InvalidArgumentError(f"cannot load {mod_name} as a Python module")
            module = importlib.util.module_from_spec(sp)
            sys.modules[name] = module
            sp.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(mod_name)
    except CritheoryError:
        raise
    except ModuleNotFoundError as exc:
        raise InvalidArgumentError(f"cannot import {mod_name!r}: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module: any error, one line
        raise InvalidArgumentError(f"importing {mod_name!r} failed: {type(exc).__name__}: "
                                   f"{_first_line(exc)}") from None
    obj = module
    for part in factory.split("."):
        if not hasattr(obj, part):
            raise InvalidArgumentError(f"{mod_name!r} has no attribute {factory!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidArgumentError(f"{mod_name}:{factory} is not callable")
    try:
        model = obj()
    except Exception as exc:  # noqa: BLE001
        raise InvalidArgumentError(f"{factory}() failed: {type(exc).__name__}: "
                                   f"{_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(f"{factory}() returned {type(model).__name__}, not a "
                                   "torch.nn.Module")
    return model


def _cmd_torch_apjn(args) -> int:
    try:
        import torch
    except ImportError:
        raise CritheoryError(INSTALL_MESSAGE) from None
    from torch import nn

    from critheory.common.jsonable import jsonable
    from critheory.torch.measure import LAYER_TYPES, apjn, layers_of_type
    from critheory.torch.read import bias_var_of, predict, read_model, weight_var_of

    model = load_model(args.model)
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    shape = args.input_shape
    if shape is None:
        first = next((m for m in model.modules() if isinstance(m, LAYER_TYPES)), None)
        if not isinstance(first, nn.Linear):
            raise InvalidArgumentError("give --input-shape (the model does not start with an "
                                       "nn.Linear whose in_features would fix it)")
        shape = (_DEFAULT_BATCH, first.in_features)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)

    try:
        note = ""
        try:
            reading = read_model(model)
            layers = list(reading.layers)
        except CritheoryError as exc:
            reading, note = None, str(exc)
            # transformer layers where there are any (their inner Linear modules are parts of
            # one layer), else Linear/Conv
            layers = layers_of_type(model, x, (nn.TransformerEncoderLayer,
                                               nn.TransformerDecoderLayer))
            if not layers:
                layers = layers_of_type(model, x, LAYER_TYPES)
            if not layers:
                raise InvalidArgumentError(f"no layers to measure: {note}") from None
        res = apjn(model, x, source=layers[0], targets=layers, probes=args.probes,
                   method=args.method, seed=args.seed)
        pred = None
        if reading is not None:
            try:
                pred = predict(reading, x)
            except CritheoryError as exc:
                note = f"no theory: {exc}"
    except CritheoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model: any failure, one line
        raise InvalidArgumentError(f"the model failed: {type(exc).__name__}: "
                                   f"{_first_line(exc)}") from None

    mods = dict(model.named_modules())
    if reading is not None:
        hyper = reading.hyperparameters()
    else:
        hyper = []
        for n in layers:
            m = mods[n]
            ok = isinstance(m, LAYER_TYPES)
            hyper.append({"weight_var": weight_var_of(m) if ok else None,
                          "bias_var": bias_var_of(m) if ok else None})
    theory = None if pred is None else [float(v) for v in pred.apjn]
    z = None
    if theory is not None and res.probes is not None:   # z of the probes' error
        from critheory.validation.compare import z_scores

        z = z_scores(res.mean, res.stderr, theory)
    out = jsonable({
        "model": args.model, "input_shape": list(shape), "method": res.method,
        "probes": res.probes, "seed": args.seed, "layers": list(res.layers),
        "apjn_mean": res.mean, "apjn_stderr": res.stderr, "apjn_theory": theory, "z": z,
        "hyperparameters": hyper,
        "phase": None if pred is None else pred.phase,
        "chi_jacobian": None if pred is None else pred.chi_jacobian_fixed_point,
        "theory_note": note or None,
    })
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0

    def f(v, spec=".6g"):
        if v is None:
            return "-"
        if isinstance(v, str):
            return v
        if isinstance(v, list):
            return "[" + ", ".join(f(u, spec) for u in v) + "]"
        return format(v, spec)

    print(f"{args.model}: input {'x'.join(map(str, shape))} ({str(dtype).replace('torch.', '')}),"
          f" {res.method}" + ("" if res.probes is None else f", {res.probes} probes")
          + f", seed {args.seed}")
    if pred is not None:
        print(f"theory: phase {f(out['phase'])}, chi_J at the fixed point "
              f"{f(out['chi_jacobian'])}" + (" (layers at different points)"
                                             if out["phase"] is None else ""))
    else:
        print(f"theory: not available ({note})")
    print(f"{'layer':<24} {'weight_var':>10} {'bias_var':>10} {'J^(1,l) measured':>24} "
          f"{'theory':>12} {'z':>7}")
    for i, name in enumerate(out["layers"]):
        meas = f"{f(out['apjn_mean'][i])} ± {f(out['apjn_stderr'][i], '.2g')}"
        th = "-" if theory is None else f(out["apjn_theory"][i])
        zz = "-" if z is None else f(out["z"][i], ".2f")
        print(f"{name:<24} {f(hyper[i]['weight_var'], '.4g'):>10} "
              f"{f(hyper[i]['bias_var'], '.4g'):>10} {meas:>24} {th:>12} {zz:>7}")
    if theory is not None:
        print("(± and z: the probes' error for this one network; a finite network also differs "
              "from the infinite-width theory by O(depth/width))")
    return 0


def register(sub) -> None:
    """Add ``torch-apjn`` to the sub-parsers (imports nothing heavy)."""
    p = sub.add_parser("torch-apjn", help="APJN of a PyTorch model (MODULE:FACTORY) beside the "
                                          "theory (needs critheory[torch])")
    p.add_argument("model", metavar="MODULE:FACTORY",
                   help="importable module or .py file, and a callable returning the model")
    p.add_argument("--input-shape", type=_shape, default=None, metavar="B,D,...",
                   help="shape of the input batch (default 16,in_features of a first Linear)")
    p.add_argument("--probes", type=bounded_int(1, MAX_CLI_PROBES, "--probes"), default=8,
                   help="random probes (default 8)")
    p.add_argument("--seed", type=bounded_int(0, 2 ** 63 - 1, "--seed"), default=0,
                   help="seed of the input batch and the probes (default 0)")
    p.add_argument("--method", choices=("auto", "jvp", "forward", "vjp", "exact"),
                   default="auto",
                   help="forward-mode probes, reverse-mode probes or the exact APJN "
                        "(default auto: forward mode where the model supports it)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_torch_apjn)
