"""Sub-command ``torch-apjn``: the APJN of a user's PyTorch model, beside critheory's theory.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory torch-apjn MODULE:FACTORY [--input-shape 16,64] [--tokens VOCAB] [--q0 Q]
        [--source NAME] [--targets NAME,GLOB,...] [--layer-type TYPE,...] [--pairs]
        [--probes P] [--seed S] [--method auto|jvp|forward|vjp|exact] [--train-mode]
        [--progress | --no-progress] [--json]

``MODULE`` is a module importable from the current directory (``models``, ``pkg.models``) or
the path of a ``.py`` file; ``FACTORY`` a callable in it (``make_model``, or a dotted path)
that returns an ``nn.Module`` when called without arguments. **The command imports that module
and runs its code and the factory** (as ``python -c "import models"`` would): the current
directory (for a module name) or the file's folder (for a ``.py`` path) is put first on
``sys.path``, so the file's own imports of its neighbours work. What the user code does is
contained as far as a process can contain it: what it prints goes to stderr (the output stays
the command's own), and any exception, ``SystemExit`` (``sys.exit(0)`` too: a factory that
exits has not returned a model) or other ``BaseException`` (but ``KeyboardInterrupt``), raised
while importing, in the factory or in the model's forward pass, becomes one line and exit
status 2; ``os.abort()``, ``os._exit`` or a crash in
a C extension end the process and cannot be caught in-process.

The input batch is ``N(0, q0)`` (``--q0``, default 1) of shape ``--input-shape`` (default
``16,in_features`` of a first ``nn.Linear``), in the dtype and on the device of the model's
parameters; with ``--tokens VOCAB`` it is integer tokens uniform in ``[0, VOCAB)`` (for models
that start with an embedding; the Jacobians are then taken from ``--source`` on, which must be
named). Inputs and probes come from independent streams of ``--seed``
(:func:`critheory.torch.measure.seed_generator`).

Layers: ``--source`` (one submodule; ``""`` is the model's input) and ``--targets`` (names or
glob patterns, matched against ``model.named_modules()``; ``NAME@k`` is the k-th call of a
module that runs several times) choose them as :func:`critheory.torch.apjn` does;
``--layer-type`` restricts the defaults to modules of these classes (torch class names such
as ``Linear``, ``Conv2d``, ``TransformerEncoderLayer``, or any class name, e.g. HuggingFace's
``Conv1D``); ``--pairs`` measures ``J^{l,l+1}`` for consecutive layers (each layer's χ_J,
:func:`critheory.torch.apjn_pairs`) instead of ``J^{1,l}``. The model is measured in eval mode
(Dropout off, BatchNorm on its running statistics) unless ``--train-mode``; its modes and
buffers are restored.

The APJN ``J^{1,l}`` is measured from the first layer to every later layer
(:func:`critheory.torch.apjn`); the layers are those :func:`critheory.torch.read_model` reads
(the outputs of Linear/Conv modules and declared residual blocks), or, where the model cannot
be read, its transformer layers (``nn.TransformerEncoderLayer``/``DecoderLayer``) if it has any,
else its Linear/Conv (and HuggingFace ``Conv1D``) modules, in execution order, a module that
runs several times once per call (then ``apjn_theory`` is null).

JSON keys: ``layers`` (names), ``apjn_mean``, ``apjn_stderr``, ``apjn_theory`` (null where the
model cannot be read), ``hyperparameters`` (per layer ``weight_var``, ``bias_var`` as read:
fan_in · mean(W²) and mean(b²); null for a layer without a weight), ``z`` (per layer, the
probes' error only; null without theory or for the exact mode),
``phase``, ``chi_jacobian`` (at the fixed point, where the layers share one point), ``method``,
``probes``, ``seed``, ``input_shape``, ``theory_note``, ``mode`` (``eval``/``train``), ``pairs``
and ``sources`` (the first layer of each pair with ``--pairs``).

torch is imported inside the command: without it the command says, in one line, what to
install (exit status 2), and the rest of critheory does not notice.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from critheory.cli.args import bounded_int, positive, progress_arguments
from critheory.common.limits import MAX_INPUT_ELEMENTS_CLI, MAX_PROBES_CLI
from critheory.errors import CritheoryError, InvalidArgumentError

__all__ = ["register", "INSTALL_MESSAGE"]

INSTALL_MESSAGE = "critheory torch-apjn needs PyTorch: pip install critheory[torch]"
_DEFAULT_BATCH = 16


def _shape(text: str) -> tuple:
    """argparse type: ``16,64`` or ``16x3x32x32``: positive integers, at most
    :data:`MAX_INPUT_ELEMENTS_CLI` entries in all."""
    parts = [p for p in str(text).replace("x", ",").split(",") if p.strip()]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 16,64, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive integers like 16,64, got {text!r}")
    n = math.prod(dims)
    if n > MAX_INPUT_ELEMENTS_CLI:
        raise argparse.ArgumentTypeError(f"an input of {n} entries; at most "
                                         f"{MAX_INPUT_ELEMENTS_CLI}")
    return dims


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _what(exc: BaseException) -> str:
    """One line for an exception raised by user code (``sys.exit`` included)."""
    if isinstance(exc, SystemExit):
        return (f"it called sys.exit({exc.code!r}) (user code runs inside critheory: an exit is "
                "an error here, whatever its status)")
    return f"{type(exc).__name__}: {_first_line(exc)}"


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
            folder = os.path.dirname(os.path.abspath(mod_name))
            if folder not in sys.path:
                sys.path.insert(0, folder)          # its own imports of its neighbours
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
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's module: anything, one line
        raise InvalidArgumentError(f"importing {mod_name!r} failed: {_what(exc)}") from None
    obj = module
    for part in factory.split("."):
        if not hasattr(obj, part):
            raise InvalidArgumentError(f"{mod_name!r} has no attribute {factory!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidArgumentError(f"{mod_name}:{factory} is not callable")
    try:
        model = obj()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - user code: SystemExit too, one line
        raise InvalidArgumentError(f"{factory}() failed: {_what(exc)}") from None
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
    from critheory.common.progress import Progress
    from critheory.torch.measure import (LAYER_TYPES, apjn, apjn_pairs, layers_of_type,
                                         measuring, seed_generator)
    from critheory.torch.read import predict, read_model, weight_tensors

    import contextlib

    with contextlib.redirect_stdout(sys.stderr):     # what user code prints stays off stdout
        model = load_model(args.model)
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    shape = args.input_shape
    if shape is None:
        first = next((m for m in model.modules() if isinstance(m, LAYER_TYPES)), None)
        if args.tokens is not None or not isinstance(first, nn.Linear):
            raise InvalidArgumentError("give --input-shape (the model does not start with an "
                                       "nn.Linear whose in_features would fix it)")
        shape = (_DEFAULT_BATCH, first.in_features)
    if args.tokens is not None:
        if args.source is None or args.source == "":
            raise InvalidArgumentError("with --tokens the inputs are integers: name the --source "
                                       "submodule (e.g. the embedding) the Jacobians start from")
        x = torch.randint(0, args.tokens, shape, generator=seed_generator(args.seed, "inputs"),
                          dtype=torch.long).to(device)
    else:
        x = (torch.randn(shape, generator=seed_generator(args.seed, "inputs"),
                         dtype=torch.float64) * math.sqrt(args.q0)).to(dtype=dtype,
                                                                     device=device)
    mode = "train" if args.train_mode else "eval"
    types = tuple(_layer_type(t) for t in args.layer_type) if args.layer_type else None
    show = args.progress if args.progress is not None else (sys.stderr.isatty() and not args.json)

    try:
        note = ""
        reading = None
        with measuring(model, mode):
            names = [n for n, _ in model.named_modules()]
            targets = None
            if args.targets is not None:
                targets = _expand(model, x, args.targets, names)
            if types is None and args.source is None and targets is None:
                reading = read_model(model)
                if reading.structured:
                    layers = list(reading.layers)
                else:
                    note = reading.notes[0]
                    reading = None
                    # transformer layers where there are any (their inner Linear modules are
                    # parts of one layer), else Linear/Conv and HF Conv1D
                    layers = layers_of_type(model, x, (nn.TransformerEncoderLayer,
                                                       nn.TransformerDecoderLayer))
                    if not layers:
                        layers = layers_of_type(model, x, LAYER_TYPES + ("Conv1D",))
                    if not layers:
                        raise InvalidArgumentError(f"no layers to measure: {note}") from None
            else:
                note = "layers chosen on the command line: no theory"
                kinds = types or LAYER_TYPES + ("Conv1D",)
                layers = targets if targets is not None else layers_of_type(model, x, kinds)
                if targets is None and args.source not in (None, ""):
                    # the defaults: from the source on (J^{source,source} = 1 first)
                    layers = (layers[layers.index(args.source):] if args.source in layers
                              else [args.source] + layers)
                if not layers:
                    raise InvalidArgumentError("no layers of the chosen type(s) run on these "
                                               "inputs")
            source = layers[0] if args.source is None else args.source
            if args.pairs:
                if args.source is not None and args.source not in layers:
                    layers = [args.source] + layers
                tick = Progress(len(layers) - 1, bool(show))
                res = apjn_pairs(model, x, layers=layers, probes=args.probes, method=args.method,
                                 seed=args.seed, mode=mode,
                                 progress=lambda d, t: tick.update(1))
            else:
                res = apjn(model, x, source=source, targets=layers, probes=args.probes,
                           method=args.method, seed=args.seed, mode=mode,
                           progress=bool(show))
        pred = None
        if reading is not None and not args.pairs:
            try:
                pred = predict(reading, x)
            except CritheoryError as exc:
                note = f"no theory: {exc}"
    except CritheoryError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's model: any failure, one line
        raise InvalidArgumentError(f"the model failed: {_what(exc)}") from None

    if reading is not None:
        hyper = reading.hyperparameters()
    else:
        read = {t.module: t for t in weight_tensors(model)}
        hyper = []
        for n in res.layers:
            t = read.get(n.rpartition("@")[0] if "@" in n else n)
            if t is None:
                hyper.append({"weight_var": None, "bias_var": None})
                continue
            w, b = t.tensors(model)
            hyper.append({"weight_var": float(t.fan_in * torch.mean(w.detach().double() ** 2)),
                          "bias_var": 0.0 if b is None else
                          float(torch.mean(b.detach().double() ** 2))})
    theory = None if pred is None else [float(v) for v in pred.apjn]
    z = None
    if theory is not None and res.probes is not None:   # z of the probes' error
        from critheory.validation.compare import z_scores

        z = z_scores(res.mean, res.stderr, theory)
    out = jsonable({
        "model": args.model, "input_shape": list(shape), "method": res.method,
        "probes": res.probes, "seed": args.seed, "layers": list(res.layers),
        "mode": res.mode, "pairs": bool(args.pairs), "sources": list(res.sources) or None,
        "source": res.source, "q0": None if args.tokens is not None else args.q0,
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

    print(f"{args.model}: input {'x'.join(map(str, shape))} "
          f"({'tokens' if args.tokens is not None else str(dtype).replace('torch.', '')}),"
          f" {res.method}" + ("" if res.probes is None else f", {res.probes} probes")
          + f", seed {args.seed}, measured in {res.mode} mode")
    if pred is not None:
        print(f"theory: phase {f(out['phase'])}, chi_J at the fixed point "
              f"{f(out['chi_jacobian'])}" + (" (layers at different points)"
                                             if out["phase"] is None else ""))
    else:
        print(f"theory: not available ({note})")
    head = ("J^(l,l+1) measured" if args.pairs else "J^(1,l) measured" if args.source is None
            else f"J^({res.source or 'input'},l) measured")
    print(f"{'layer':<24} {'weight_var':>10} {'bias_var':>10} {head:>24} "
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


def _layer_type(name: str):
    """A ``torch.nn`` class for a torch class name, else the name itself (matched against the
    class names of the modules, e.g. HuggingFace's ``Conv1D``)."""
    from torch import nn

    t = getattr(nn, name, None)
    return t if isinstance(t, type) and issubclass(t, nn.Module) else name


def _expand(model, x, specs, names) -> list:
    """--targets: names, NAME@k or glob patterns, in execution order."""
    import fnmatch

    from critheory.torch.measure import execution_order

    wanted = []
    for spec in specs:
        if spec in names or ("@" in spec and spec.rpartition("@")[0] in names):
            wanted.append(spec)
            continue
        hits = [n for n in names if fnmatch.fnmatchcase(n, spec)]
        if not hits:
            raise InvalidArgumentError(f"--targets: {spec!r} matches no submodule")
        wanted += hits
    return execution_order(model, x, list(dict.fromkeys(wanted)))


def _names(text: str) -> list:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return parts


def register(sub) -> None:
    """Add ``torch-apjn`` to the sub-parsers (imports nothing heavy)."""
    p = sub.add_parser("torch-apjn", help="APJN of a PyTorch model (MODULE:FACTORY) beside the "
                                          "theory (needs critheory[torch])")
    p.add_argument("model", metavar="MODULE:FACTORY",
                   help="importable module or .py file, and a callable returning the model")
    p.add_argument("--input-shape", type=_shape, default=None, metavar="B,D,...",
                   help="shape of the input batch (default 16,in_features of a first Linear)")
    p.add_argument("--probes", type=bounded_int(1, MAX_PROBES_CLI, "--probes"), default=8,
                   help="random probes (default 8)")
    p.add_argument("--seed", type=bounded_int(0, 2 ** 63 - 1, "--seed"), default=0,
                   help="seed of the input batch and the probes, independent streams "
                        "(default 0)")
    p.add_argument("--method", choices=("auto", "vmap", "jvp", "forward", "vjp", "exact"),
                   default="auto",
                   help="probes J v batched by torch.func (vmap), by reverse over reverse "
                        "(jvp) or one at a time by forward AD (forward), reverse-mode probes "
                        "(vjp), or the exact APJN (default auto: vmap, else jvp, else vjp)")
    p.add_argument("--source", default=None, metavar="NAME",
                   help="submodule whose output is h^l0 ('' for the input; default the first "
                        "layer)")
    p.add_argument("--targets", type=_names, default=None, metavar="NAME,GLOB,...",
                   help="target submodules: names, NAME@k or glob patterns (execution order)")
    p.add_argument("--layer-type", type=_names, default=None, metavar="TYPE,...",
                   help="layers of these classes (Linear, Conv2d, TransformerEncoderLayer, "
                        "HuggingFace Conv1D, any class name)")
    p.add_argument("--pairs", action="store_true",
                   help="J^(l,l+1) for consecutive layers (each layer's chi_J)")
    p.add_argument("--tokens", type=bounded_int(1, 2 ** 31 - 1, "--tokens"), default=None,
                   metavar="VOCAB", help="integer token inputs in [0, VOCAB) (embedding models; "
                                         "needs --source)")
    p.add_argument("--q0", type=positive, default=1.0,
                   help="second moment of the Gaussian inputs, |x|^2/N0 (default 1)")
    p.add_argument("--train-mode", action="store_true",
                   help="measure in the model's own (train) mode instead of eval mode")

    progress_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_torch_apjn)
