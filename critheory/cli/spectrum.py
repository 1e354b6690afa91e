"""The ``spectrum`` command: the Jacobian singular-value spectrum by free probability.

``critheory spectrum ACT --weight-var X --bias-var Y --depth L [--arch mlp|tarnowski-resnet]
[--weights gaussian|orthogonal] [--json] [--plot F] [--simulate --width N --seeds S]``

``--arch resnet`` is the deprecated spelling of ``tarnowski-resnet`` (Tarnowski's unit
x + phi(W x + b); the registry's ``residual`` is mu h + W phi(h) + b): it still works, with one
line on standard error, and the same output.

JSON keys: ``arch`` (the law: ``mlp`` or ``resnet``, Tarnowski's), ``moments`` (``m1``, ``m2``,
``variance``), ``support`` ([low, high]), ``density`` (``x``, ``y``), ``fixed_point`` (MLP: q*),
``c`` (ResNet), ``atoms``, ``isometry``; with ``--simulate`` also ``validation``. Absent numbers
are ``null``.
"""
from __future__ import annotations

import sys

from critheory.cli.args import SEED, bounded_int, finite, params, preflight
from critheory.common.limits import (MAX_DEPTH_SPECTRUM, MAX_SEEDS_SPECTRUM_SIM,
                                     MAX_SPECTRUM_POINTS, MAX_SPECTRUM_SIM_WORK,
                                     MAX_WIDTH_SPECTRUM_SIM)

__all__ = ["register"]

def _arch_choices() -> tuple:
    """The names ``--arch`` takes: the registry's names a spectrum solver needs
    (:func:`critheory.blocks.spectra.spectrum_names`), then the spectra's deprecated
    spellings."""
    from critheory.blocks.spectra import DEPRECATED, spectrum_names

    return spectrum_names() + tuple(DEPRECATED)


def _arch(name: str) -> str:
    """The registry name of ``--arch``; a deprecated spelling says so in one line on stderr."""
    from critheory.blocks.spectra import DEPRECATED, canonical_spectrum_name

    if name in DEPRECATED:
        print(f"critheory: warning: {DEPRECATED[name][1]}", file=sys.stderr)
    return canonical_spectrum_name(name, warn=False)


def _cmd_spectrum(args) -> int:
    import json

    from critheory.activation import Activation
    from critheory.common.jsonable import jsonable
    from critheory.errors import InvalidArgumentError
    from critheory.theory.spectra import jacobian_spectrum

    def budget():
        cost = float(args.seeds) * (args.depth + 10) * float(args.width) ** 3
        if cost > MAX_SPECTRUM_SIM_WORK:
            raise InvalidArgumentError(f"seeds*(depth+10)*width^3 = {cost:.2g} exceeds the "
                                       f"simulation budget {MAX_SPECTRUM_SIM_WORK:.0e}")
        if args.seeds < 2:
            raise InvalidArgumentError("--simulate needs --seeds >= 2 (standard errors)")

    arch = _arch(args.arch)
    preflight(args, budget)
    act = Activation.get(args.activation, params(args.param))
    val = None
    if args.simulate:
        from critheory.validation.spectra import validate_spectrum

        val = validate_spectrum(act, args.weight_var, args.bias_var, depth=args.depth,
                                width=args.width, seeds=args.seeds, arch=arch,
                                weights=args.weights, seed=args.seed, q0=args.input_var,
                                points=args.points)
        th = val.theory
    else:
        th = jacobian_spectrum(act, args.weight_var, args.bias_var, args.depth, arch=arch,
                               weights=args.weights, q0=args.input_var, points=args.points)
    if args.plot:
        from critheory.validation.spectra import plot_spectrum

        plot_spectrum(th, args.plot, None if val is None else val.simulation)
    if args.json:
        d = th.to_dict()
        if val is not None:
            v = val.to_dict()
            v.pop("theory")
            d["validation"] = v
        print(json.dumps(jsonable(d), indent=2, allow_nan=False))
        return 0
    f = lambda v: "-" if v is None else f"{v:.10g}"  # noqa: E731
    print(f"activation {th.activation}   arch {th.arch}   weights {th.weights}   "
          f"weight_var {th.weight_var:g}   bias_var {th.bias_var:g}   depth {th.depth}")
    if th.fixed_point is not None:
        print(f"fixed point q* = {f(th.fixed_point)}")
    if th.c is not None:
        print(f"c = {f(th.c)}")
    print(f"moments of JJ^T: m1 = {f(th.m1)}   m2 = {f(th.m2)}   variance = {f(th.variance)}")
    if th.finite_depth is not None:
        fd = th.finite_depth
        print(f"  at depth {th.depth}: m1 = {f(fd['m1'])}   m2 = {f(fd['m2'])}   "
              f"variance = {f(fd['variance'])}")
    print(f"support [{f(th.support[0])}, {f(th.support[1])}]   largest singular value "
          f"{f(th.largest_singular_value)}")
    for a, m in th.atoms:
        print(f"atom at {f(a)} with mass {f(m)}")
    i = th.isometry
    print(f"dynamical isometry: {i.verdict} (m1 = {i.m1:.4g}, relative variance "
          f"{i.relative_variance:.4g}, thresholds |log m1| <= {i.mean_tol:g}, "
          f"<= {i.spread_tol:g})")
    for n in th.notes:
        print(f"  note: {n}")
    if val is not None:
        print(f"simulation: width {args.width}, {args.seeds} networks: {val.verdict}")
        for k, m in val.moments.items():
            z = "-" if m["z"] is None else f"{m['z']:+.2f}"
            print(f"  {k}: theory {f(m['theory'])}  simulation {f(m['simulation'])}  "
                  f"+- {f(m['stderr'])}  z {z}")
        ks = val.ks
        print(f"  KS distance {ks['statistic']:.4f} (threshold {ks['threshold']:.4f}, "
              f"n = {ks['n']})")
        lg = val.largest_singular_value
        print(f"  largest singular value: theory {f(lg['theory'])}  simulation "
              f"{f(lg['simulation'])} +- {f(lg['stderr'])}")
        for n in val.notes[len(th.notes):]:
            print(f"  note: {n}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def register(sub) -> None:
    """Add the ``spectrum`` sub-command to the parser's sub-parsers."""
    p = sub.add_parser("spectrum", help="Jacobian singular-value spectrum (free probability)")
    p.add_argument("activation", help="zoo name (relu, tanh, ...) or a formula in x")
    p.add_argument("--weight-var", type=finite, required=True, help="sigma_w^2")
    p.add_argument("--bias-var", type=finite, required=True, help="sigma_b^2")
    p.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_SPECTRUM, "depth"), required=True,
                   help="depth L")
    p.add_argument("--arch", choices=_arch_choices(), default="mlp",
                   help="mlp (at its fixed point) or tarnowski-resnet (Tarnowski: x + phi(Wx + "
                        "b), Var W = sigma_w^2/(N L); 'resnet' is its deprecated spelling)")
    p.add_argument("--weights", choices=("gaussian", "orthogonal"), default="gaussian")
    p.add_argument("--input-var", type=finite, default=1.0,
                   help="|x|^2/N of the input (default 1)")
    p.add_argument("--points", type=bounded_int(2, MAX_SPECTRUM_POINTS, "points"), default=400,
                   help="points of the density (default 400)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="value of a parameter of the activation (repeatable)")
    p.add_argument("--simulate", action="store_true",
                   help="compare with explicit Jacobians of finite networks")
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_SPECTRUM_SIM, "width"),
                   default=None,
                   help=f"width N of the simulated networks (<= {MAX_WIDTH_SPECTRUM_SIM})")
    p.add_argument("--seeds", type=bounded_int(1, MAX_SEEDS_SPECTRUM_SIM, "seeds"), default=4,
                   help="number of simulated networks (default 4)")
    p.add_argument("--seed", type=SEED, default=0, help="root seed")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")
    p.set_defaults(func=_cmd_spectrum)
