"""Per-group hyperparameter recipes: initialization variances and learning-rate factors for a
width ``n``, depth ``L``, family ``s`` and optimizer (SGD or AdamW).

A recipe is the width/family rule of each group (:mod:`critheory.theory.recipes.rules`) times
depth factors and, for the MLP, the activation's critical point ``(σ_w², σ_b²)`` (the
mean-field room, :func:`critheory.theory.meanfield.criticality.universality`).

Depth factors (MLP, learning-rate equivalence [PDLT §9.1–9.2])
--------------------------------------------------------------
SGD: the per-layer bias and weight factors are the ``equivalence`` schedule of
:func:`critheory.theory.ntk.depth.learning_rates` at the critical point (``λ_b = λ_W = 1``,
``q0 = 1``): every layer's biases (the output layer's bias included, at its depth factor
``λ_b^L``) and every layer's weights contribute equally to Θ^L. For the
scale-invariant class they are exactly ``1/L`` (PDLT's ``λ/L``) and are folded into
``lr_factor``; for the ``K* = 0`` class they follow the book's power laws
``λ_b^l ∝ L^{p_⊥−1} l^{−p_⊥}``, ``λ_W^l ∝ (L/l)^{p_⊥−1}`` (tanh, ``p_⊥ = 1``: biases ``1/l``,
weights flat) and are listed per layer (``layer_factors``). AdamW: a layer's NTK contribution
is ``∝ λ̃ Σ_μ |∂f/∂θ_μ|``, i.e. ``λ̃ √(N · S_l)`` with ``S_l`` its contribution at unit SGD rate
(the [DYZ] §I.2 B step ``λ̃ ∼ λ |g|`` applied per layer), so equal contributions need
``λ̃^l = √(f_l/L)`` with ``f_l`` the SGD factor: ``1/L`` again for the scale-invariant class
(derived here, not printed in the sources). Transformers: no depth factor ([DYZ] stays at
the meta level; with LayerNorm and skip connections every block is critical).

Interaction strength and regime
-------------------------------
``r = L/n^{1−s}`` is the size of the leading finite-width effects: the NTK's fluctuations at
initialization and its change during training ([Y]; PDLT's ``L/n`` at ``s = 0``; [DYZ]
footnote 21: the corrections scale as ``1/n^{1−s}``, never perturbative at ``s = 1``). Regimes
(relative size of the corrections, a convention of this package): ``r < 0.1`` near the
infinite-width limit (corrections below ~10 %), ``0.1 <= r < 1`` weakly interacting
(corrections of relative size ``r``: the NTK moves a little during training, first-order
perturbation theory applies), ``r >= 1`` strongly interacting (the NTK moves at order one;
the 1/n expansion is not reliable).

Examples
--------
>>> from critheory.theory.recipes import recipe
>>> r = recipe("relu", width=256, depth=8, family=0.0, optimizer="sgd")
>>> r.critical_point, r.group("hidden").init_variance == 2.0 / 256
((2.0, 0.0), True)
>>> r.group("hidden").lr_factor == (1 / 256) / 8            # 1/n (NTK) × 1/L (equivalence)
True
>>> round(r.interaction, 6), r.regime
(0.03125, 'near the infinite-width limit')
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError
from critheory.theory.recipes import rules
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["ParameterGroup", "Recipe", "recipe", "interaction", "regime", "MLP_GROUPS",
           "TRANSFORMER_GROUPS", "MAX_DEPTH", "MAX_WIDTH"]

MLP_GROUPS = ("input", "hidden", "bias", "output")
TRANSFORMER_GROUPS = ("embedding", "q", "k", "v", "out_proj", "mlp_in", "mlp_out", "head", "bias")
#: Budgets: the depth factors iterate the NTK recursion once (~0.2 ms a layer).
MAX_DEPTH = limits.MAX_DEPTH_RECIPE
MAX_WIDTH = limits.MAX_WIDTH_RECIPE
NEAR, STRONG = 0.1, 1.0

SOURCES = {
    "PDLT": "Roberts, Yaida, Hanin, The Principles of Deep Learning Theory (arXiv:2106.10165)",
    "Y": "Yaida, Meta-principled family of hyperparameter scaling strategies "
         "(arXiv:2210.04909)",
    "DYZ": "Dinan, Yaida, Zhang, Effective theory of transformers at initialization "
           "(arXiv:2304.02034)",
}


@dataclass(frozen=True)
class ParameterGroup:
    """One parameter group of a recipe.

    Attributes
    ----------
    name : str
    init_variance : float
        Variance of ONE entry at initialization (fan-in division included).
    lr_factor : float
        Multiplier of the global learning rate (width/family rule times the depth factor common
        to the group's layers).
    layers : tuple of int
        The (1-based) layers of the group (MLP); empty for transformer groups (every block).
    layer_factors : tuple of float or None
        Per-layer extra multipliers (one per entry of ``layers``) where the depth factor is not
        uniform; None where it is.
    source : str
        The equations the rule comes from.
    """

    __repr__ = short_repr

    name: str
    init_variance: float
    lr_factor: float
    layers: tuple = ()
    layer_factors: tuple | None = None
    source: str = ""

    def layer_lr(self) -> np.ndarray:
        """The learning-rate multiplier of each layer of the group (``lr_factor`` times the
        layer factor)."""
        f = np.ones(max(len(self.layers), 1)) if self.layer_factors is None \
            else np.asarray(self.layer_factors, dtype=float)
        return self.lr_factor * f

    def to_dict(self) -> dict:
        return jsonable({"name": self.name, "init_variance": self.init_variance,
                         "lr_factor": self.lr_factor, "layers": list(self.layers),
                         "layer_factors": None if self.layer_factors is None
                         else list(self.layer_factors), "source": self.source})


@dataclass(frozen=True)
class Recipe:
    """Initialization variances and learning-rate factors of every parameter group.

    Examples
    --------
    >>> import critheory as ct
    >>> r = ct.recipe("relu", width=64, depth=4)
    >>> isinstance(r, ct.Recipe), [g.name for g in r.groups]
    (True, ['input', 'hidden', 'bias', 'output'])
    """


    arch: str
    activation: str
    optimizer: str
    family: float
    width: int
    depth: int
    input_dim: int
    output_dim: int
    critical_point: tuple
    universality: str
    groups: tuple
    interaction: float
    regime: str
    depth_rule: str
    heads: int | None = None
    mlp_ratio: float | None = None
    p_perp: float | None = None
    extras: dict = field(default_factory=dict)
    sources: tuple = ()
    warnings: tuple = ()

    @property
    def attention(self) -> bool:
        """Whether this is the transformer recipe (attention heads, an MLP block)."""
        return self.heads is not None

    def __repr__(self) -> str:
        sw, sb = self.critical_point
        return (f"Recipe({self.activation}, {self.arch}, {self.optimizer}, s={self.family:g}, "
                f"width={self.width}, depth={self.depth}, point=({sw:.6g}, {sb:.6g}), groups="
                f"{'/'.join(g.name for g in self.groups)}, interaction={self.interaction:.3g}"
                + (f", {len(self.warnings)} warning(s)" if self.warnings else "") + ")")

    def group(self, name: str) -> ParameterGroup:
        """The group called ``name`` (KeyError if absent)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def to_dict(self) -> dict:
        """JSON-ready dict (keys of the ``recipe`` command)."""
        return jsonable({
            "arch": self.arch, "activation": self.activation, "optimizer": self.optimizer,
            "family": self.family, "width": self.width, "depth": self.depth,
            "input_dim": self.input_dim, "output_dim": self.output_dim,
            "heads": self.heads, "mlp_ratio": self.mlp_ratio,
            "critical_point": {"weight_var": self.critical_point[0],
                               "bias_var": self.critical_point[1]},
            "universality": self.universality, "p_perp": self.p_perp,
            "groups": [g.to_dict() for g in self.groups],
            "interaction": self.interaction, "interaction_formula": "L/n^(1-s)",
            "regime": self.regime, "depth_rule": self.depth_rule, **self.extras,
            "warnings": list(self.warnings), "sources": list(self.sources)})


def interaction(width: int, depth: int, family: float) -> float:
    """The interaction strength ``L/n^{1−s}`` ([Y]; [DYZ] footnote 21).

    >>> interaction(1024, 32, 0.0), interaction(1024, 32, 1.0)
    (0.03125, 32.0)
    """
    return float(depth) / float(width) ** (1.0 - family)


def regime(r: float) -> str:
    """A plain statement of the regime of interaction strength ``r`` (module docstring).

    >>> regime(0.06), regime(0.5), regime(3.0)
    ('near the infinite-width limit', 'weakly interacting: finite-width corrections of relative size 0.5', 'strongly interacting: the NTK moves at order one during training')
    """
    if r < NEAR:
        return "near the infinite-width limit"
    if r < STRONG:
        return f"weakly interacting: finite-width corrections of relative size {r:.2g}"
    return "strongly interacting: the NTK moves at order one during training"


def _check_int(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} must be an integer in [{lo}, {hi:.0e}], got {v!r}")
    return int(v)


def _critical(arch_maps, weight_var, bias_var):
    """``(σ_w², σ_b², universality)``: the user's point or the activation's critical point,
    with the activation's :class:`~critheory.theory.meanfield.criticality.Universality`."""
    from critheory.theory.meanfield.criticality import universality

    u = universality(arch_maps)
    if weight_var is not None:
        from critheory.common.checks import check_bias_var, check_weight_var

        sw = check_weight_var(weight_var)
        sb = check_bias_var(0.0 if bias_var is None else bias_var)
        return sw, sb, u
    if u.critical_point is None:
        raise InvalidArgumentError(
            f"{arch_maps.activation.name} on {arch_maps.describe()} has no critical point "
            f"({u.name}); give a weight and a bias variance explicitly (--weight-var, "
            "--bias-var)")
    return float(u.critical_point.weight_var), float(u.critical_point.bias_var), u


def _depth_factors(arch_maps, sw, sb, L, optimizer, q0: float = 1.0, sw_in=None):
    """Per-layer (bias, weight) depth factors of layers 1..L (module docstring), for inputs of
    second moment ``q0``. An input layer with its own σ_w,in² (``sw_in``) is the network with
    σ_w² everywhere and inputs of ``q_eff = σ_w,in² q0/σ_w²`` (the same law of h¹), whose
    input-weight NTK term ``λ_W^1 q_eff`` is the real one ``λ_W^1 q0`` times ``q_eff/q0``: the
    real input layer's weight factor is the equivalent network's times ``q_eff/q0``."""
    from critheory.theory.ntk.depth import ntk_curves

    q_eff = q0 if sw_in is None else sw_in * q0 / sw
    c = ntk_curves(arch_maps, arch_maps.activation, sw, sb, L, lambda_b=1.0, lambda_w=1.0,
                   scaling="equivalence", q0=q_eff)
    fb, fw = np.asarray(c.lambda_b, float), np.array(c.lambda_w, float)
    fw[0] *= q_eff / q0
    if not (np.all(np.isfinite(fb)) and np.all(np.isfinite(fw))):
        raise InvalidArgumentError("the NTK recursion overflows at this point: no depth factors")
    if optimizer == "adamw":
        fb, fw = np.sqrt(fb / L), np.sqrt(fw / L)
    return fb, fw


def _split(f: np.ndarray) -> tuple[float, tuple | None]:
    """A uniform profile folds into one factor; otherwise (1, per-layer factors)."""
    if f.size == 0:
        return 1.0, None
    if np.allclose(f, f[0], rtol=1e-12, atol=0.0):
        return float(f[0]), None
    return 1.0, tuple(float(x) for x in f)


#: The registry's token architectures whose recipe is derived here ([DYZ]: the pre-LN stack).
TRANSFORMER_RECIPES = frozenset({"transformer"})


def _is_transformer(name) -> bool:
    """Whether ``name`` (a registry name, or the network :func:`_network_arguments` left) takes
    the transformer recipe: the registry's pre-LN transformer."""
    if not isinstance(name, str):
        return False
    from critheory.blocks.registry import canonical

    try:
        return canonical(name) in TRANSFORMER_RECIPES
    except InvalidArgumentError:
        return False


def _network_arguments(activation, arch, heads, mlp_ratio, mu, params):
    """``(activation, arch, heads, mlp_ratio, mu)`` of :func:`recipe` with a Network (given as
    ``arch`` or in the activation's place) resolved once: a one-token network stays a network
    (its mean-field maps), a network whose unit is the registry's pre-LN transformer unit
    becomes ``"transformer"`` with its heads and MLP ratio; any other token network, or a
    conflicting activation, μ, ``heads`` or ``mlp_ratio``, is refused."""
    from critheory.blocks.network import Network
    from critheory.blocks.registry import as_network, network

    if not any(isinstance(v, Network) for v in (activation, arch)):
        return activation, "mlp" if arch is None else arch, heads, mlp_ratio, mu
    net = as_network(arch, activation, mu, params)
    if not net.capabilities.mixes_tokens:
        return net.activation, net, heads, mlp_ratio, None
    a, M = net.attention, net.mlp_ratio
    ref = network("transformer", net.activation, tokens=net.tokens, heads=a.heads,
                  mlp_ratio=M if M is not None else 4.0)
    if net.unit != ref.unit:
        raise InvalidArgumentError(f"the transformer recipe covers the pre-LN transformer unit "
                                   f"(registry 'transformer'); {net.describe()} is not one")
    for name, given, own in (("heads", heads, a.heads), ("mlp_ratio", mlp_ratio, M)):
        if given is not None and float(given) != float(own):
            raise InvalidArgumentError(f"{name} = {given!r} conflicts with the network's "
                                       f"{name} = {own:g}")
    return net.activation, "transformer", a.heads, M, None


def recipe(activation="tanh", *, width: int, depth: int, family: float = 0.0,
           optimizer: str = "sgd", arch=None, heads: int | None = None,
           mlp_ratio: float | None = None, input_dim: int | None = None, output_dim: int = 1,
           weight_var: float | None = None, bias_var: float | None = None,
           mu: float | None = None, params=None, q0: float | None = None) -> Recipe:
    """The recipe for ``activation`` at width ``n``, depth ``L`` and family ``s``.

    Parameters
    ----------
    activation : str, Activation or Network
        (a Network here stands for ``arch``)
    width, depth : int
        ``n`` (>= 1) and ``L``: the number of weight layers of an MLP (>= 2: layer 1 the input
        layer, layer L the output layer) or of transformer blocks (>= 1).
    family : float
        ``s`` in [0, 1].
    optimizer : {"sgd", "adamw"}
    arch : str or Network
        ``transformer``, a registered mean-field architecture (``mlp``, the default,
        ``residual``, ...), or a Network (resolved once by
        :func:`critheory.blocks.registry.as_network`; the transformer recipe is the one of a
        network whose unit is the pre-LN transformer's, with its heads and MLP ratio).
    heads, mlp_ratio : int, float
        Transformer: ``H`` (must divide ``n``) and ``M`` (``Mn`` an integer); with a Network,
        its own (a conflicting value is refused).
    mu : float, optional
        Residual strength of a registry name (default 1).
    input_dim, output_dim : int
        ``n_0`` (default ``n``) and ``n_out`` (default 1; enters the AdamW head factor).
    weight_var, bias_var : float, optional
        Use this point instead of the activation's critical point.
    q0 : float, optional
        MLP: the second moment ``|x|²/N₀`` of the inputs; the point is then the one of the
        critical line that stays critical for such inputs
        (:func:`critheory.theory.meanfield.inputs.critical_point_for_inputs`). Without it a
        half-stable critical point (GELU, SiLU) that unit-norm inputs do not reach is used with
        a :class:`~critheory.theory.meanfield.inputs.CriticalityWarning` (also in
        ``warnings``).

    Returns
    -------
    Recipe

    Examples
    --------
    >>> import critheory as ct
    >>> r = ct.recipe("tanh", width=256, depth=16, family=0.0)
    >>> r.critical_point, r.group("hidden").init_variance == 1 / 256
    ((1.0, 0.0), True)
    """
    from critheory.activation import Activation

    activation, arch, heads, mlp_ratio, mu = _network_arguments(activation, arch, heads,
                                                                mlp_ratio, mu, params)
    if not isinstance(activation, str):
        params = None
    s = rules.check_family(family)
    if optimizer not in rules.OPTIMIZERS:
        raise InvalidArgumentError(f"optimizer must be one of {', '.join(rules.OPTIMIZERS)}, "
                                   f"got {optimizer!r}")
    n = _check_int("width", width, 1, MAX_WIDTH)
    n0 = n if input_dim is None else _check_int("input_dim", input_dim, 1, MAX_WIDTH)
    n_out = _check_int("output_dim", output_dim, 1, MAX_WIDTH)
    act = activation if isinstance(activation, Activation) else Activation.get(activation,
                                                                               params or {})
    r = interaction(n, depth if isinstance(depth, (int, np.integer)) else 1, s)
    src = tuple(SOURCES.values())
    if _is_transformer(arch):
        L = _check_int("depth", depth, 1, MAX_DEPTH)
        H = _check_int("heads", 1 if heads is None else heads, 1, MAX_WIDTH)
        if n % H:
            raise InvalidArgumentError(f"heads {H} must divide width {n} (C = n/H channels "
                                       "per head)")
        M = 4.0 if mlp_ratio is None else float(mlp_ratio)
        if not (math.isfinite(M) and M > 0 and abs(M * n - round(M * n)) < 1e-9 * M * n
                and round(M * n) >= 1):
            raise InvalidArgumentError(f"mlp_ratio must be > 0 with mlp_ratio*width an "
                                       f"integer, got {mlp_ratio!r}")
        from critheory.theory.meanfield.maps import architecture

        try:
            sw, sb, u = _critical(architecture("mlp", act), weight_var, bias_var)
        except InvalidArgumentError:
            if weight_var is not None:
                raise
            sw, sb, u = 1.0, 0.0, None   # LayerNorm keeps signals of order one
        uname, p = ("none", None) if u is None else (u.name, u.p_perp)
        groups = []
        for name in TRANSFORMER_GROUPS:
            if name == "embedding":
                v, lr = rules.transformer_embedding(n, s, 1.0, optimizer)
                srcs = "[DYZ] (1.25), (1.99), (1.108), fn. 26"
            elif name in ("q", "k", "v", "out_proj"):
                v, lr = rules.transformer_attention(n, s, 1.0, optimizer)
                eq = {"q": (27, 101, 110), "k": (28, 102, 111), "v": (29, 103, 112),
                      "out_proj": (30, 104, 113)}[name]
                srcs = f"[DYZ] (1.{eq[0]}), (1.{eq[1]}), (1.{eq[2]}), fn. 26"
            elif name == "mlp_in":
                v, lr = rules.transformer_mlp_in(n, M, s, sw, optimizer)
                srcs = "[DYZ] (1.31) with C_W = critical sigma_w^2, (1.105), (1.114), fn. 26"
            elif name == "mlp_out":
                v, lr = rules.transformer_mlp_out(n, M, s, 1.0, optimizer)
                srcs = "[DYZ] (1.32), (1.106), (1.115), fn. 26"
            elif name == "head":
                v, lr = rules.transformer_head(n, n_out, s, 1.0, optimizer)
                srcs = "[DYZ] (1.33)-(1.34), (1.107), (1.116)"
            else:
                v, lr = rules.transformer_bias(n, s, 0.0, optimizer)
                srcs = "[DYZ] zero init (after (1.59)), (1.100), (1.109), fn. 26"
            groups.append(ParameterGroup(name, v, lr, (), None, srcs))
        head_bias_lr = 1.0 if optimizer == "sgd" else 1.0 / math.sqrt(n_out)
        extras = {"point": "given" if weight_var is not None
                  else "critical point of the MLP activation" if u is not None
                  else "none (no critical point: C_W = 1, LayerNorm keeps signals of order one)",
                  "attention_logit_scale": 1.0 / math.sqrt(n / H),
                  "tied_head_rescale": math.sqrt(1.0 / n ** (1.0 + s)),
                  "head_bias": {"init_variance": 0.0, "lr_factor": head_bias_lr,
                                "source": "[DYZ] (1.33), (1.107), (1.116)"},
                  "layernorm": "no affine parameters ([DYZ] §I.0 B)"}
        return Recipe("transformer", act.name, optimizer, s, n, L, n0, n_out, (sw, sb), uname,
                      tuple(groups), r, regime(r),
                      "none: LayerNorm and skip connections make every block critical "
                      "([DYZ] fn. 9); no depth factor", heads=H, mlp_ratio=M, p_perp=p,
                      extras=extras, sources=src)
    # ---------------------------------------------------------------- MLP-like networks
    from critheory.theory.meanfield.criticality import UniversalityKind
    from critheory.theory.meanfield.maps import architecture

    L = _check_int("depth", depth, 2, MAX_DEPTH)
    maps = architecture(arch, act, 1.0 if mu is None else mu)
    sw, sb, u = _critical(maps, weight_var, bias_var)
    uname, p = u.name, u.p_perp
    point, notes, input_point = _input_point(maps, act, L, sw, sb, u.half_stable, q0,
                                             weight_var)
    sw_in, qf = sw, 1.0
    if input_point is not None:
        sw, sb = input_point.weight_var, input_point.bias_var
        sw_in, qf = input_point.input_weight_var, input_point.q0   # rule "input layer": own
    fb, fw = _depth_factors(maps, sw, sb, L, optimizer, qf, None if sw_in == sw else sw_in)
    rows = {"input": ((1,), rules.mlp_input(n, n0, s, sw_in, optimizer), fw[:1],
                      "[PDLT] §7-8; [DYZ] (1.25), (1.99), (1.108), fn. 26"),
            "hidden": (tuple(range(2, L)), rules.mlp_hidden(n, s, sw, optimizer), fw[1:L - 1],
                       "[PDLT] §7-8; [DYZ] (1.31), (1.105), (1.110)-(1.113), fn. 26"),
            "bias": (tuple(range(1, L)), rules.mlp_bias(n, s, sb, optimizer), fb[:L - 1],
                     "[PDLT] §7-8; [DYZ] (1.100), (1.109), fn. 26"),
            "output": ((L,), rules.mlp_output(n, n_out, s, sw, optimizer), fw[L - 1:],
                       "[DYZ] (1.34) (fn. 8), (1.107), (1.116)")}
    groups = []
    for name in MLP_GROUPS:
        layers, (v, lr), f, srcs = rows[name]
        common, per = _split(np.asarray(f, dtype=float))
        groups.append(ParameterGroup(name, v, lr * common, layers, per,
                                     srcs + "; depth: [PDLT] §9 equivalence"))
    rule = ("learning-rate equivalence [PDLT §9]: every layer's biases and weights contribute "
            "equally to the NTK")
    if u.scale_invariant:
        rule += " (scale-invariant class: 1/L)"
    elif u.kind is UniversalityKind.ZERO and p is not None:
        rule += (f" (K*=0 class, p_perp = {p:g}: bias ~ L^(p-1) l^(-p), weight ~ (L/l)^(p-1)"
                 + (", AdamW: square root of the SGD factor over L" if optimizer == "adamw"
                    else "") + ")")
    # the output bias is a bias of layer L: inside the equivalence schedule (its depth factor
    # fb[L-1], so that at s = 0 it contributes to the NTK as much as every other layer's
    # biases), at the head-bias width rule (no family factor: [DYZ] fn. 26)
    head_bias = 1.0 if optimizer == "sgd" else 1 / math.sqrt(n_out)
    extras = {"point": point,
              "input_point": None if input_point is None else input_point.to_dict(),
              "output_bias": {"init_variance": 0.0,
                              "lr_factor": head_bias * float(fb[L - 1]),
                              "depth_factor": float(fb[L - 1]),
                              "source": "[DYZ] (1.33), (1.107), (1.116) (head bias); depth: "
                                        "[PDLT] §9 equivalence (layer L's bias)"}}
    return Recipe(maps.name, act.name, optimizer, s, n, L, n0, n_out, (sw, sb), uname,
                  tuple(groups), r, regime(r), rule, p_perp=p, extras=extras, sources=src,
                  warnings=notes)


def _input_point(maps, act, L: int, sw: float, sb: float, half_stable: bool, q0, weight_var):
    """``(description of the point, warnings, InputPoint or None)`` of an MLP recipe: the point
    critical for inputs of second moment ``q0`` when asked for; else, at a half-stable critical
    point, a warning when unit-norm inputs do not reach it (with the depth at which it
    matters)."""
    import warnings

    from critheory.theory.meanfield.inputs import (MAX_DEPTH as INPUT_DEPTH, CriticalityWarning,
                                                   InputWarningKind, critical_point_for_inputs,
                                                   reach_warning, warnings_for)

    horizon = max(2, min(L, INPUT_DEPTH))
    if q0 is not None:
        if weight_var is not None:
            raise InvalidArgumentError("q0 chooses the point: give q0 or weight_var/bias_var, "
                                       "not both")
        if not maps.caps.plain_mlp:
            raise InvalidArgumentError(f"q0 (the point critical for inputs of that scale) is "
                                       f"derived for --arch mlp, not {maps.name}")
        ip = critical_point_for_inputs(act, q0, depth=horizon)
        notes = ()
        for w in warnings_for(ip):
            if w.kind is InputWarningKind.NOT_FLAT:
                msg = w.text(f"the flattest point of the critical line reached from "
                             f"q0 = {ip.q0:g}")
                warnings.warn(msg, CriticalityWarning, stacklevel=3)
                notes = (msg,)
        return (f"critical for inputs of second moment q0 = {ip.q0:g} (rule {ip.rule})",
                notes, ip)
    if weight_var is not None:
        return "given", (), None
    notes: tuple = ()
    if half_stable and maps.caps.plain_mlp:
        w = reach_warning(act, 1.0, depth=horizon)
        if w is not None:
            lost = w.depth_lost
            msg = (f"the critical point ({sw:.6g}, {sb:.6g}) of {act.name} is half-stable and "
                   "inputs with |x|^2/N0 = 1 do not reach its fixed point: they flow to the "
                   "ordered phase" + ("" if lost is None else
                                      f" (J^(1,l) off by more than 10 % from layer {lost})")
                   + "; give q0 (--q0) for the point that stays critical for your inputs")
            warnings.warn(msg, CriticalityWarning, stacklevel=3)
            notes = (msg,)
    return "critical point of the activation", notes, None
