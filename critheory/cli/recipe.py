"""Sub-command ``recipe``: initialization variances and learning-rate factors per parameter
group for a width, depth, family parameter and optimizer.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory recipe ACTIVATION --width N --depth L [--family S] [--optimizer sgd|adamw]
        [--arch mlp|<registry name>|transformer [--heads H] [--mlp-ratio M]]
        [--input-dim N0] [--output-dim NOUT] [--weight-var X --bias-var Y] [--param NAME=VALUE]
        [--json | --torch]

JSON output: ``groups`` (list of ``{name, init_variance, lr_factor, layers, layer_factors,
source}``; a layer's rate is ``lr_factor × layer_factors[i]`` where ``layer_factors`` is not
null), ``critical_point`` (``{weight_var, bias_var}``), ``family``, ``optimizer``, ``width``,
``depth``, ``input_dim``, ``output_dim``, ``heads``, ``mlp_ratio``, ``universality``,
``p_perp``, ``interaction`` (``L/n^(1-s)``), ``regime``, ``depth_rule``, ``sources``, ``point``
and, for the MLP, ``output_bias``; for the transformer ``head_bias``, ``attention_logit_scale``,
``tied_head_rescale``, ``layernorm``. ``--torch`` prints a PyTorch snippet defining
``apply_recipe(model, lr, weight_decay=0.0)``: it initializes the model's parameters with
``torch.nn.init.normal_`` and returns a ``torch.optim`` optimizer with one parameter group per
layer and kind. Weight decay follows [DYZ]'s decoupled convention: every parameter is multiplied
by ``1 − lr·weight_decay`` per step, with the global ``lr``; since torch multiplies a group's
``weight_decay`` by that group's rate ``lr × factor``, each group is given
``weight_decay / factor`` (one shared ``weight_decay`` would make the hidden-weight decay
weaker by the hidden factor, ~1/(n√n) with AdamW: 2·10⁴ times at width 512).
"""
from __future__ import annotations

import json
import sys

from critheory.cli.args import bounded_int, finite, params, positive, unit_interval
from critheory.common.limits import MAX_DEPTH_RECIPE, MAX_WIDTH_RECIPE

__all__ = ["register", "torch_snippet"]


def _lists(rec) -> dict:
    """Per-layer (1..L) weight and bias variances and rates of an MLP recipe."""
    L = rec.depth
    wv, wl, bv, bl = [0.0] * L, [0.0] * L, [0.0] * L, [0.0] * L
    for name in ("input", "hidden", "output"):
        g = rec.group(name)
        for l, f in zip(g.layers, g.layer_lr()):
            wv[l - 1], wl[l - 1] = g.init_variance, float(f)
    g = rec.group("bias")
    for l, f in zip(g.layers, g.layer_lr()):
        bv[l - 1], bl[l - 1] = g.init_variance, float(f)
    ob = rec.extras["output_bias"]
    bv[L - 1], bl[L - 1] = ob["init_variance"], ob["lr_factor"]
    return {"WEIGHT_VAR": wv, "WEIGHT_LR": wl, "BIAS_VAR": bv, "BIAS_LR": bl}


_MLP = '''\
# critheory recipe: {title}
# Usage: optimizer = apply_recipe(model, lr)   (model: {depth} nn.Linear layers in order,
#        input n0 = {n0} -> width {n} -> ... -> output {nout}; the global lr is yours to tune)
import math

import torch
from torch import nn

WIDTH, DEPTH, INPUT_DIM = {n}, {depth}, {n0}
WEIGHT_VAR = {WEIGHT_VAR!r}
WEIGHT_LR = {WEIGHT_LR!r}
BIAS_VAR = {BIAS_VAR!r}
BIAS_LR = {BIAS_LR!r}


def _group(param, lr, factor, weight_decay):
    # per-step decay lr * factor * (weight_decay / factor) = lr * weight_decay in every group
    return {{"params": [param], "lr": lr * factor, "weight_decay": weight_decay / factor}}


def apply_recipe(model, lr, weight_decay=0.0):
    """Initialize the nn.Linear layers of `model` and return the {opt} optimizer.

    weight_decay: every parameter shrinks by the factor (1 - lr * weight_decay) per step, the
    decoupled decay of Dinan-Yaida-Zhang with the GLOBAL rate lr (torch multiplies a group's
    weight_decay by the group's own rate, so each group gets weight_decay / its factor).
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(linears) != DEPTH:
        raise ValueError(f"the recipe is for {{DEPTH}} linear layers, the model has "
                         f"{{len(linears)}}")
    if linears[0].in_features != INPUT_DIM or any(m.out_features != WIDTH
                                                  for m in linears[:-1]):
        raise ValueError("the model's widths differ from the recipe's")
    groups = []
    with torch.no_grad():
        for i, m in enumerate(linears):
            nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(WEIGHT_VAR[i]))
            groups.append(_group(m.weight, lr, WEIGHT_LR[i], weight_decay))
            if m.bias is not None:
                if BIAS_VAR[i] > 0:
                    nn.init.normal_(m.bias, mean=0.0, std=math.sqrt(BIAS_VAR[i]))
                else:
                    nn.init.zeros_(m.bias)
                groups.append(_group(m.bias, lr, BIAS_LR[i], weight_decay))
    return {ctor}
'''

_TRANSFORMER = '''\
# critheory recipe: {title}
# Usage: optimizer = apply_recipe(model, lr)   (model: embedding dim {n}, {heads} heads, MLP
#        {mn} wide; query/key logits should be scaled by 1/sqrt(n/H) = {logit:.6g}, as
#        nn.MultiheadAttention does. Parameters are classified by module type, name and shape:
#        nn.Embedding -> embedding; in_proj_weight / q_proj, k_proj, v_proj -> q, k, v;
#        out_proj -> out_proj; nn.Linear n -> Mn -> mlp_in; Mn -> n -> mlp_out; the last
#        nn.Linear with in_features n -> head; 1-d parameters -> bias (head bias: zero);
#        LayerNorm parameters are left as they are and trained at the bias factor.)
import math

import torch
from torch import nn

WIDTH, MLP_WIDTH, OUTPUT_DIM = {n}, {mn}, {nout}
GROUPS = {groups!r}
HEAD_BIAS = {head_bias!r}


def _group(param, lr, factor, weight_decay):
    # per-step decay lr * factor * (weight_decay / factor) = lr * weight_decay in every group
    return {{"params": [param], "lr": lr * factor, "weight_decay": weight_decay / factor}}


def _kind(name, module, param, head):
    if isinstance(module, nn.Embedding):
        return "embedding"
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "in_proj_weight":
        return "q"           # packed q, k, v: one rule for all three
    if param.dim() < 2:
        return "head_bias" if module is head else "bias"
    parts = name.split(".")[:-1]
    for key in ("q", "k", "v"):
        if f"{{key}}_proj" in parts or key in parts:
            return key
    if "out_proj" in parts:
        return "out_proj"
    if module is head:
        return "head"
    if tuple(param.shape) == (MLP_WIDTH, WIDTH):
        return "mlp_in"
    if tuple(param.shape) == (WIDTH, MLP_WIDTH):
        return "mlp_out"
    raise ValueError(f"apply_recipe: cannot classify parameter {{name}} {{tuple(param.shape)}}")


def apply_recipe(model, lr, weight_decay=0.0):
    """Initialize the parameters of `model` and return the {opt} optimizer.

    weight_decay: every parameter shrinks by the factor (1 - lr * weight_decay) per step, the
    decoupled decay of Dinan-Yaida-Zhang with the GLOBAL rate lr (torch multiplies a group's
    weight_decay by the group's own rate, so each group gets weight_decay / its factor).
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)
               and not isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear)
               and m.in_features == WIDTH and m.out_features == OUTPUT_DIM]
    head = linears[-1] if linears else None
    groups = []
    with torch.no_grad():
        for mname, module in model.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                name = f"{{mname}}.{{pname}}" if mname else pname
                if isinstance(module, nn.LayerNorm):
                    groups.append(_group(p, lr, GROUPS["bias"][1], weight_decay))
                    continue
                kind = _kind(name, module, p, head)
                var, factor = HEAD_BIAS if kind == "head_bias" else GROUPS[kind]
                if var > 0:
                    nn.init.normal_(p, mean=0.0, std=math.sqrt(var))
                else:
                    nn.init.zeros_(p)
                groups.append(_group(p, lr, factor, weight_decay))
    return {ctor}
'''


def torch_snippet(rec) -> str:
    """A runnable PyTorch snippet applying a :class:`~critheory.theory.recipes.Recipe`."""
    ctor = ("torch.optim.SGD(groups, lr=lr)" if rec.optimizer == "sgd" else
            "torch.optim.AdamW(groups, lr=lr)")
    opt = "SGD" if rec.optimizer == "sgd" else "AdamW"
    title = (f"{rec.activation}, {rec.arch}, width {rec.width}, depth {rec.depth}, family "
             f"s = {rec.family:g}, {rec.optimizer}")
    if rec.attention:
        mn = int(round(rec.mlp_ratio * rec.width))
        groups = {g.name: (g.init_variance, g.lr_factor) for g in rec.groups}
        hb = rec.extras["head_bias"]
        return _TRANSFORMER.format(title=title, n=rec.width, mn=mn, heads=rec.heads,
                                   nout=rec.output_dim, groups=groups,
                                   head_bias=(hb["init_variance"], hb["lr_factor"]),
                                   logit=rec.extras["attention_logit_scale"], opt=opt,
                                   ctor=ctor)
    return _MLP.format(title=title, n=rec.width, depth=rec.depth, n0=rec.input_dim,
                       nout=rec.output_dim, opt=opt, ctor=ctor, **_lists(rec))


def _cmd_recipe(args) -> int:
    from critheory.errors import InvalidArgumentError
    from critheory.theory.recipes import recipe

    if (args.weight_var is None) and (args.bias_var is not None):
        raise InvalidArgumentError("--bias-var needs --weight-var")
    from critheory.blocks.registry import REGISTRY, canonical

    token = REGISTRY[canonical(args.arch)].token     # the registry says, not a name test
    if not token and (args.heads is not None or args.mlp_ratio is not None):
        raise InvalidArgumentError("--heads and --mlp-ratio need --arch transformer")
    import warnings

    from critheory.theory.meanfield.inputs import CriticalityWarning

    with warnings.catch_warnings():          # said once, below (stderr) and in the JSON
        warnings.simplefilter("ignore", CriticalityWarning)
        rec = recipe(args.activation, width=args.width, depth=args.depth, family=args.family,
                     optimizer=args.optimizer, arch=args.arch, heads=args.heads,
                     mlp_ratio=args.mlp_ratio, input_dim=args.input_dim,
                     output_dim=args.output_dim, weight_var=args.weight_var,
                     bias_var=args.bias_var, mu=args.mu, params=params(args.param), q0=args.q0)
    for w in rec.warnings:
        print(f"critheory: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2, allow_nan=False))
        return 0
    if args.torch:
        print(torch_snippet(rec), end="")
        return 0
    sw, sb = rec.critical_point
    extra = f", heads {rec.heads}, MLP ratio {rec.mlp_ratio:g}" if rec.heads else ""
    print(f"{rec.activation} ({rec.arch}{extra}): width {rec.width}, depth {rec.depth}, family "
          f"s = {rec.family:g} (0 neural tangent, 1 maximal update), optimizer {rec.optimizer}")
    pp = "" if rec.p_perp is None else f", p_perp = {rec.p_perp:g}"
    print(f"point: weight_var = {sw:.10g}, bias_var = {sb:.10g}: {rec.extras.get('point')} "
          f"(class {rec.universality}{pp})")
    print(f"{'group':<10} {'layers':>10} {'init_variance':>16} {'lr_factor':>16}  per layer")
    for g in rec.groups:
        lay = ("all" if not g.layers else f"{g.layers[0]}" if len(g.layers) == 1
               else f"{g.layers[0]}-{g.layers[-1]}" if g.layers else "-")
        per = "" if g.layer_factors is None else (
            f"x {g.layer_factors[0]:.4g} ... {g.layer_factors[-1]:.4g} (see --json)")
        print(f"{g.name:<10} {lay:>10} {g.init_variance:>16.6g} {g.lr_factor:>16.6g}  {per}")
    print(f"interaction L/n^(1-s) = {rec.interaction:.3g}: {rec.regime}")
    print(f"depth rule: {rec.depth_rule}")
    return 0


def register(sub) -> None:
    """Add the ``recipe`` sub-command to an argparse sub-parser collection."""
    from critheory.blocks.registry import names

    p = sub.add_parser("recipe", help="initialization variances and learning-rate factors per "
                                      "parameter group (SGD, AdamW; width, depth, family s)")
    p.add_argument("activation", help="zoo name (relu, tanh, gelu, ...) or a formula in x")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="value of a parameter of the activation (repeatable)")
    # the recipes cover the one-token names and the pre-LN transformer (its parameter groups)
    arches = names() + names(tokens=True)[:1]
    p.add_argument("--arch", default="mlp", choices=arches, help="architecture (default mlp)")
    p.add_argument("--mu", type=finite, default=None,
                   help="residual strength mu (default 1; residual architectures only)")
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_RECIPE, "width"), required=True)
    p.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_RECIPE, "depth"), required=True,
                   help="weight layers of an MLP (>= 2) or transformer blocks")
    p.add_argument("--family", type=unit_interval, default=0.0,
                   help="s in [0, 1]: 0 neural tangent, 1 maximal update (default 0)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--heads", type=bounded_int(1, MAX_WIDTH_RECIPE, "heads"), default=None,
                   help="transformer heads H (must divide --width; default 1)")
    p.add_argument("--mlp-ratio", type=positive, default=None,
                   help="transformer MLP multiplier M (default 4)")
    p.add_argument("--input-dim", type=bounded_int(1, MAX_WIDTH_RECIPE, "input-dim"), default=None,
                   help="input dimension n0 of an MLP (default: the width)")
    p.add_argument("--output-dim", type=bounded_int(1, MAX_WIDTH_RECIPE, "output-dim"), default=1,
                   help="output dimension (enters the AdamW head factor; default 1)")
    p.add_argument("--weight-var", type=finite, default=None,
                   help="use this weight variance instead of the critical point")
    p.add_argument("--bias-var", type=finite, default=None)
    p.add_argument("--q0", type=positive, default=None,
                   help="MLP: second moment |x|^2/N0 of the inputs; the point is then the one "
                        "of the critical line that stays critical for them (half-stable GELU, "
                        "SiLU: the activation's own critical point is not reached from q0 = 1)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--torch", action="store_true", help="print a PyTorch snippet")
    p.set_defaults(func=_cmd_recipe)
