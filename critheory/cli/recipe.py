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
``tied_head_rescale``, ``layernorm``. ``--torch`` prints a PyTorch snippet defining one
function ``apply_recipe(model, lr, weight_decay=0.0)`` (no other module-level name): it checks
the model's dimensions and activation modules, classifies its parameters (torch, timm ViT and
HuggingFace GPT-2 layouts: class token, positional embedding, fused qkv; anything else is a
``ValueError`` naming the parameter), initializes them with ``torch.nn.init.normal_`` and
returns a ``torch.optim`` optimizer with one parameter group per tensor (docs/recipes.md).
Weight decay follows [DYZ]'s decoupled convention: every parameter is multiplied
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

__all__ = ["register", "torch_snippet", "TORCH_ACTIVATION_CLASSES"]


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


#: the torch module class names of each zoo activation, for the snippet's activation check
#: (torch and HuggingFace transformers class names; the snippet runs without critheory)
TORCH_ACTIVATION_CLASSES: dict = {
    "relu": ("ReLU",), "tanh": ("Tanh",), "sigmoid": ("Sigmoid",), "elu": ("ELU",),
    "selu": ("SELU",), "celu": ("CELU",), "softplus": ("Softplus",), "mish": ("Mish",),
    "leaky_relu": ("LeakyReLU",), "relu6": ("ReLU6",), "softsign": ("Softsign",),
    "hardtanh": ("Hardtanh",),
    "gelu": ("GELU", "GELUActivation", "NewGELUActivation", "FastGELUActivation",
             "GELUTanh", "PytorchGELUTanh", "AccurateGELUActivation"),
    "silu": ("SiLU", "SiLUActivation"),
}
TORCH_ACTIVATION_CLASSES["gelu_tanh"] = TORCH_ACTIVATION_CLASSES["gelu"]
TORCH_ACTIVATION_CLASSES["swish"] = TORCH_ACTIVATION_CLASSES["silu"]

_COMMON = '''\
    import math
    import warnings

    import torch
    from torch import nn

    def group(param, factor):
        # per-step decay lr * factor * (weight_decay / factor) = lr * weight_decay in every group
        return {"params": [param], "lr": lr * factor, "weight_decay": weight_decay / factor}

    seen = sorted({type(m).__name__ for m in model.modules()
                   if type(m).__name__ in KNOWN_ACTIVATIONS})
    if ACTIVATION_CLASSES is None:
        warnings.warn(f"apply_recipe: the model's activation cannot be checked against "
                      f"{ACTIVATION!r}", stacklevel=2)
    elif not seen:
        warnings.warn(f"apply_recipe: the model has no activation module to check against the "
                      f"recipe's {ACTIVATION!r} (a functional call?)", stacklevel=2)
    elif set(seen) - set(ACTIVATION_CLASSES):
        raise ValueError(f"apply_recipe: the recipe is for {ACTIVATION!r}, the model uses "
                         f"{', '.join(seen)}")
'''

_MLP = '''\
# critheory recipe: @TITLE@
# Usage: optimizer = apply_recipe(model, lr)   (model: @DEPTH@ nn.Linear layers in order,
#        input n0 = @N0@ -> width @N@ -> ... -> output @NOUT@, activation @ACT@; the global
#        lr is yours to tune)


def apply_recipe(model, lr, weight_decay=0.0):
    """Initialize the nn.Linear layers of `model` and return the @OPT@ optimizer.

    Checks the number of layers, the input, hidden and output dimensions and the activation
    modules against the recipe (ValueError naming what differs).
    weight_decay: every parameter shrinks by the factor (1 - lr * weight_decay) per step, the
    decoupled decay of Dinan-Yaida-Zhang with the GLOBAL rate lr (torch multiplies a group's
    weight_decay by the group's own rate, so each group gets weight_decay / its factor).
    """
    WIDTH, DEPTH, INPUT_DIM, OUTPUT_DIM = @N@, @DEPTH@, @N0@, @NOUT@
    WEIGHT_VAR = @WEIGHT_VAR@
    WEIGHT_LR = @WEIGHT_LR@
    BIAS_VAR = @BIAS_VAR@
    BIAS_LR = @BIAS_LR@
    ACTIVATION, ACTIVATION_CLASSES = @ACTNAME@, @ACTCLASSES@
    KNOWN_ACTIVATIONS = @KNOWN@
@COMMON@
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(linears) != DEPTH:
        raise ValueError(f"apply_recipe: the recipe is for {DEPTH} linear layers, the model has "
                         f"{len(linears)}")
    if linears[0].in_features != INPUT_DIM:
        raise ValueError(f"apply_recipe: the recipe's input dimension is {INPUT_DIM}, the "
                         f"model's first layer takes {linears[0].in_features}")
    if linears[-1].out_features != OUTPUT_DIM:
        raise ValueError(f"apply_recipe: the recipe's output dimension is {OUTPUT_DIM}, the "
                         f"model's last layer gives {linears[-1].out_features}")
    for i, m in enumerate(linears):
        if (i > 0 and m.in_features != WIDTH) or (i < DEPTH - 1 and m.out_features != WIDTH):
            raise ValueError(f"apply_recipe: linear layer {i + 1} maps {m.in_features} -> "
                             f"{m.out_features}; the recipe's width is {WIDTH}")
    groups = []
    with torch.no_grad():
        for i, m in enumerate(linears):
            nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(WEIGHT_VAR[i]))
            groups.append(group(m.weight, WEIGHT_LR[i]))
            if m.bias is not None:
                if BIAS_VAR[i] > 0:
                    nn.init.normal_(m.bias, mean=0.0, std=math.sqrt(BIAS_VAR[i]))
                else:
                    nn.init.zeros_(m.bias)
                groups.append(group(m.bias, BIAS_LR[i]))
    return @CTOR@
'''

_TRANSFORMER = '''\
# critheory recipe: @TITLE@
# Usage: optimizer = apply_recipe(model, lr)   (model: embedding dim @N@, @HEADS@ heads, MLP
#        @MN@ wide, activation @ACT@; query/key logits should be scaled by 1/sqrt(n/H) =
#        @LOGIT@, as nn.MultiheadAttention, timm and HuggingFace do.)


def apply_recipe(model, lr, weight_decay=0.0):
    """Initialize the parameters of `model` and return the @OPT@ optimizer.

    Every parameter is classified by module type and shape (torch, timm and HuggingFace
    layouts), or refused with a ValueError that names it:
    nn.Embedding (word and positional) -> embedding; bare token parameters (timm's cls_token,
    dist_token, reg_token, pos_embed) -> embedding; a convolution or dense layer into the width
    from another dimension (timm's patch_embed.proj) -> the embedding rule over its fan-in;
    nn.MultiheadAttention's in_proj / q,k,v_proj -> q, k, v; a fused n -> 3n projection
    (timm's attn.qkv, HuggingFace's c_attn Conv1D, weight stored (in, out)) -> q, k, v;
    n -> n dense layers (out_proj, proj, c_proj of attention) -> attention; n -> Mn -> mlp_in;
    Mn -> n -> mlp_out; the model's last dense layer if it maps n -> output_dim -> head (a head
    tied to an embedding keeps the embedding's rule, with a warning); 1-d parameters -> bias
    (head bias: zero); LayerNorm parameters are left as they are and trained at the bias factor.
    The embedding width, the output dimension and the activation modules are checked.
    weight_decay: every parameter shrinks by the factor (1 - lr * weight_decay) per step, the
    decoupled decay of Dinan-Yaida-Zhang with the GLOBAL rate lr (torch multiplies a group's
    weight_decay by the group's own rate, so each group gets weight_decay / its factor).
    """
    WIDTH, MLP_WIDTH, OUTPUT_DIM = @N@, @MN@, @NOUT@
    GROUPS = @GROUPS@
    HEAD_BIAS = @HEAD_BIAS@
    TIED_HEAD_RESCALE = @TIED@
    ACTIVATION, ACTIVATION_CLASSES = @ACTNAME@, @ACTCLASSES@
    KNOWN_ACTIVATIONS = @KNOWN@
    TOKEN_PARAMETERS = ("cls_token", "dist_token", "reg_token", "pos_embed")
@COMMON@
    def dense(m):
        """(in, out) of a Linear or a HuggingFace Conv1D (weight (in, out)), else None."""
        if isinstance(m, nn.Linear):
            return m.in_features, m.out_features
        w = getattr(m, "weight", None)
        if any(c.__name__ == "Conv1D" for c in type(m).__mro__) and isinstance(
                w, torch.Tensor) and w.dim() == 2:
            return int(w.shape[0]), int(w.shape[1])
        return None

    def refuse(name, p, why):
        raise ValueError(f"apply_recipe: cannot classify parameter {name} {tuple(p.shape)}: "
                         f"{why}")

    denses = [(n, m) for n, m in model.named_modules() if dense(m) is not None]
    if not denses:
        raise ValueError("apply_recipe: the model has no Linear or Conv1D layer")
    last_name, last = denses[-1]
    head = last if dense(last) == (WIDTH, OUTPUT_DIM) else None
    if head is None:
        warnings.warn(f"apply_recipe: the last dense layer {last_name} maps "
                      f"{dense(last)[0]} -> {dense(last)[1]}, not a head {WIDTH} -> "
                      f"{OUTPUT_DIM}: no parameter gets the head rule", stacklevel=2)
    norms = tuple(c for c in (nn.LayerNorm, getattr(nn, "RMSNorm", None)) if c is not None)
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    groups, done = [], {}
    with torch.no_grad():
        for mname, module in model.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                name = f"{mname}.{pname}" if mname else pname
                if id(p) in done:                     # a tied weight: drawn once
                    if module is head:
                        warnings.warn(f"apply_recipe: the head {name} is tied to "
                                      f"{done[id(p)]}, which keeps the embedding rule; "
                                      f"multiply the logits by {TIED_HEAD_RESCALE!r} "
                                      "([DYZ]'s tied-head rescale)", stacklevel=2)
                    continue
                done[id(p)] = name
                scale = 1
                if isinstance(module, norms):
                    groups.append(group(p, GROUPS["bias"][1]))
                    continue
                if isinstance(module, nn.Embedding):
                    if module.embedding_dim != WIDTH:
                        refuse(name, p, f"an embedding of dimension {module.embedding_dim}, "
                               f"the recipe's width is {WIDTH}")
                    kind = "embedding"
                elif isinstance(module, nn.MultiheadAttention):
                    if module.embed_dim != WIDTH:
                        refuse(name, p, f"attention of width {module.embed_dim}, the "
                               f"recipe's is {WIDTH}")
                    kind = "bias" if p.dim() < 2 else "q"
                elif isinstance(module, convs):
                    if module.out_channels != WIDTH:
                        refuse(name, p, f"a convolution with {module.out_channels} output "
                               f"channels; only a stem into the width {WIDTH} is classified")
                    kind = "bias" if p.dim() < 2 else "stem"
                    scale = p[0].numel()
                elif dense(module) is not None:
                    i, o = dense(module)
                    fused = any(k in name for k in ("qkv", "c_attn", "in_proj"))
                    if p.dim() < 2:
                        kind = "head_bias" if module is head else "bias"
                    elif module is head:
                        kind = "head"
                    elif (i, o) == (WIDTH, 3 * WIDTH) and (fused or MLP_WIDTH != 3 * WIDTH):
                        kind = "q"                    # fused q, k, v: one rule for all three
                    elif (i, o) == (WIDTH, MLP_WIDTH):
                        kind = "mlp_in"
                    elif (i, o) == (MLP_WIDTH, WIDTH):
                        kind = "mlp_out"
                    elif (i, o) == (WIDTH, WIDTH):
                        kind = "out_proj"             # q, k, v, out_proj: one rule
                    elif o == WIDTH:
                        kind, scale = "stem", i       # a dense stem into the width
                    else:
                        refuse(name, p, f"a dense layer {i} -> {o}; the recipe's width is "
                               f"{WIDTH}, MLP width {MLP_WIDTH}, output {OUTPUT_DIM}")
                elif pname in TOKEN_PARAMETERS:
                    if p.shape[-1] != WIDTH:
                        refuse(name, p, f"a token parameter of width {p.shape[-1]}, the "
                               f"recipe's is {WIDTH}")
                    kind = "embedding"                # learned input vectors ([DYZ])
                else:
                    refuse(name, p, f"a parameter of {type(module).__name__} that the recipe "
                           "does not know")
                if kind == "stem":                    # the embedding rule over a fan-in
                    var, factor = GROUPS["embedding"][0] / scale, GROUPS["embedding"][1] / scale
                else:
                    var, factor = HEAD_BIAS if kind == "head_bias" else GROUPS[kind]
                if var > 0:
                    nn.init.normal_(p, mean=0.0, std=math.sqrt(var))
                else:
                    nn.init.zeros_(p)
                groups.append(group(p, factor))
    return @CTOR@
'''


def _fill(template: str, **values) -> str:
    """``template`` with every ``@NAME@`` replaced by ``values[NAME]`` (strings as they are,
    other values by their repr)."""
    for k, v in values.items():
        template = template.replace(f"@{k}@", v if isinstance(v, str) else repr(v))
    return template


def torch_snippet(rec) -> str:
    """A runnable PyTorch snippet applying a :class:`~critheory.theory.recipes.Recipe`: one
    function ``apply_recipe(model, lr, weight_decay=0.0)`` and no other module-level name."""
    ctor = ("torch.optim.SGD(groups, lr=lr)" if rec.optimizer == "sgd" else
            "torch.optim.AdamW(groups, lr=lr)")
    opt = "SGD" if rec.optimizer == "sgd" else "AdamW"
    title = (f"{rec.activation}, {rec.arch}, width {rec.width}, depth {rec.depth}, family "
             f"s = {rec.family:g}, {rec.optimizer}")
    known = tuple(sorted({c for v in TORCH_ACTIVATION_CLASSES.values() for c in v}))
    common = dict(ACT=rec.activation, ACTNAME=repr(rec.activation), KNOWN=known,
                  ACTCLASSES=TORCH_ACTIVATION_CLASSES.get(rec.activation), OPT=opt, CTOR=ctor,
                  TITLE=title)
    if rec.attention:
        hb = rec.extras["head_bias"]
        body = _fill(_TRANSFORMER, COMMON=_COMMON, N=rec.width,
                     MN=int(round(rec.mlp_ratio * rec.width)), HEADS=rec.heads,
                     NOUT=rec.output_dim,
                     GROUPS={g.name: (g.init_variance, g.lr_factor) for g in rec.groups},
                     HEAD_BIAS=(hb["init_variance"], hb["lr_factor"]),
                     TIED=rec.extras["tied_head_rescale"],
                     LOGIT=f"{rec.extras['attention_logit_scale']:.6g}")
    else:
        body = _fill(_MLP, COMMON=_COMMON, N=rec.width, DEPTH=rec.depth, N0=rec.input_dim,
                     NOUT=rec.output_dim, **_lists(rec))
    return _fill(body, **common)


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
