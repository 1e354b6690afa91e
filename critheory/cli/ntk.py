"""Sub-command ``ntk``: the infinite-width neural tangent kernel over depth, with learning-rate
schedules and an optional finite-width simulation beside it.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory ntk ACTIVATION --weight-var X --bias-var Y --depth L
        [--lambda-b B] [--lambda-w W] [--scaling constant|equivalence]
        [--arch A --mu M] [--q0 Q] [--q12 Q12 --q22 Q22] [--param NAME=VALUE]
        [--json] [--plot FILE] [--width N] [--simulate --width N --seeds S [--seed SEED]]

JSON output (absent numbers are ``null``):

``depths``        1..L
``kernel``        K^l
``ntk``           Θ^l (PDLT's convention: bias rate λ_b, weight rate λ_W/n_{l−1})
``lambda_b``, ``lambda_w``  the learning rates per layer, as used by the schedule
``scaling``       ``constant`` or ``equivalence`` (every layer contributes equally to Θ^L)
``exponents``     ``{"ntk": s, "lambda": t}``: Θ^l ∝ l^s (growth positive), λ^l ∝ l^t
``coefficients``  ``{"bias", "weight", "transfer"}``: B_l, W_l, c_l of
                  Θ^l = λ_b^l B_l + λ_W^l W_l + c_l Θ^{l−1}
``kernel12``, ``kernel22``, ``ntk12``, ``ntk22``  (with ``--q12 --q22``) the second input
``width``, ``ntk_mean_nlo``, ``ntk_variance``, ``ntk_finite_width``  (with ``--width N``, one
                  input: input 1) E[Θ̂^l] = Θ^l + Θ^{(1),l}/n, Var(Θ̂^l_ii) at width n, and the
                  order-1/n fields per layer (``theta1``, ``variance`` = n Var, ``cross`` =
                  n Cov(Θ̂, z²), ``A``, ``B``, ``D``, ``F``); ``exponents.ntk_variance``: the slope
                  s of n Var(Θ̂^l)/(Θ^l)² ∝ l^s
``dntk``, ``ddntk``, ``dntk_fields``  (with ``--width N``; :mod:`critheory.theory.ntk.dntk`,
                  ``docs/dntk.md``) the dNTK and ddNTK of one neuron of layer l at width n, as
                  dimensionless magnitudes: ``dntk`` = E[z_i dĤ_iii]/Θ² = (P + 2Q)/(nΘ²) (minus
                  the mean relative change of Θ̂_ii in one gradient step of size 1/Θ on ½z_i²),
                  ``ddntk`` = K E[∂²Θ̂_ii]/Θ³ = 2K(3R + S + T + U)/(nΘ³) (the NTK's second
                  derivative along that update, same units); ``dntk_fields``: PDLT's ``P``,
                  ``Q``, ``R``, ``S``, ``T``, ``U`` per layer and the two coefficients n·dntk,
                  n·ddntk; ``exponents.dntk``, ``exponents.ddntk``: the slopes s of
                  |n·dntk| ∝ l^s; null with a ``dntk_note`` where not defined (the ddNTK of a
                  kinked activation, a block without a dNTK rule)
``simulation``    (with ``--simulate``) ``ntk_mean``, ``ntk_stderr``, ``ntk_std``, ``ntk_theory``,
                  ``ntk_z``, ``kernel_mean``, ``kernel_stderr``, ``width``, ``seeds``, ``seed``
"""
from __future__ import annotations

import json

import numpy as np

from critheory.cli.args import (SEED, bounded_int, common_arguments, finite, nonnegative,
                                params, positive, preflight)
from critheory.common.limits import MAX_DEPTH_NTK, MAX_SEEDS_CLI, MAX_WIDTH_CLI
from critheory.errors import InvalidArgumentError

__all__ = ["register", "ntk_arguments", "ntk_check", "ntk_columns",
           "ntk_lines"]



def _cmd_ntk(args) -> int:
    from critheory.common.jsonable import jsonable
    from critheory.errors import InvalidArgumentError

    if (args.q12 is None) != (args.q22 is None):
        raise InvalidArgumentError("a second input needs both --q12 and --q22")
    def budget():
        from critheory.simulation.ntk import check_ntk_budget

        check_ntk_budget(args.width, args.depth, args.seeds, args.arch)

    preflight(args, budget)
    from critheory.activation import Activation
    from critheory.theory.meanfield.maps import architecture
    from critheory.theory.ntk.depth import ntk_curves

    act = Activation.get(args.activation, params(args.param))
    arch = architecture(args.arch, act, args.mu)
    c = ntk_curves(arch, act, args.weight_var, args.bias_var, args.depth,
                   lambda_b=args.lambda_b, lambda_w=args.lambda_w, scaling=args.scaling,
                   mu=args.mu, q0=args.q0, q12=args.q12, q22=args.q22, width=args.width)
    out = c.to_dict()
    if args.width is not None:
        _dntk_keys(out, arch.network, args, c)
    out.update(activation=act.name, arch=arch.name, weight_var=args.weight_var,
               bias_var=args.bias_var, q0=args.q0)
    if args.simulate:
        out["simulation"] = _compare(args, act, arch, c).simulation_dict()
    if args.plot:
        from critheory.io.figures import plot_ntk

        plot_ntk(out, args.plot, f"{act.name} ({arch.describe()}), $\\sigma_w^2$="
                              f"{args.weight_var:g}, $\\sigma_b^2$={args.bias_var:g}, "
                              f"{args.scaling}")
    out = jsonable(out)
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0

    def f(x, spec=".10g"):
        return "-" if x is None else format(x, spec)

    ex = out["exponents"]
    print(f"{act.name} ({arch.describe()}) at weight_var = {args.weight_var:g}, bias_var = "
          f"{args.bias_var:g}, q0 = {args.q0:g}; learning rates: {args.scaling} "
          f"(lambda_b = {args.lambda_b:g}, lambda_w = {args.lambda_w:g})")
    print(f"NTK exponent (Theta^l ~ l^s, growth positive): s = {f(ex['ntk'], '.4g')}; "
          f"schedule lambda^l ~ l^{f(ex['lambda'], '.4g')}")
    sim = out.get("simulation")
    nlo = out.get("ntk_mean_nlo")
    if nlo is not None:
        print(f"width n = {out['width']}: E[Theta^l] to order 1/n and Var(Theta^l) of one neuron "
              f"(input 1); n Var/Theta^2 ~ l^{f(ex.get('ntk_variance'), '.4g')}")
    if out.get("dntk_note"):
        print(f"note: {out['dntk_note']}")
    head = f"{'l':>7} {'K^l':>16} {'Theta^l':>16} {'lambda_b':>12} {'lambda_w':>12}"
    if nlo is not None:
        head += f" {'E[Theta]':>14} {'Var(Theta)':>12} {'dNTK':>11} {'ddNTK':>11}"
    if sim is not None:
        head += f" {'measured':>22} {'z':>6}"
    print(head)
    L = args.depth
    for l in np.unique(np.round(np.geomspace(1, L, min(L, 20))).astype(int)):
        i = l - 1
        row = (f"{l:>7} {f(out['kernel'][i]):>16} {f(out['ntk'][i]):>16} "
               f"{f(out['lambda_b'][i], '.6g'):>12} {f(out['lambda_w'][i], '.6g'):>12}")
        if nlo is not None:
            row += f" {f(nlo[i], '.8g'):>14} {f(out['ntk_variance'][i], '.6g'):>12}"
            for key in ("dntk", "ddntk"):
                v = out.get(key)
                row += f" {f(None if v is None else v[i], '.4g'):>11}"
        if sim is not None:
            meas = f"{f(sim['ntk_mean'][i], '.6g')}±{f(sim['ntk_stderr'][i], '.2g')}"
            row += f" {meas:>22} {f(sim['ntk_z'][i], '.2f'):>6}"
        print(row)
    if sim is not None:
        print(f"simulation: {sim['seeds']} networks of width {sim['width']} (mean over "
              f"{sim['neurons']} neurons each); deviations of order depth/width are the "
              "finite-width correction, not an error of the recursion")
    return 0


def _dntk_keys(out: dict, net, args, curves) -> None:
    """Add the dNTK and ddNTK keys of ``--width`` (module docstring) to ``out``, in place: null
    with a ``dntk_note`` where the dNTK theory refuses the network."""
    from critheory.theory.ntk.dntk import curves_at_rates, refusal

    why = refusal(net)
    if why is not None:
        out.update(dntk=None, ddntk=None, dntk_fields=None, dntk_note=why)
        out["exponents"].update(dntk=None, ddntk=None)
        return
    d = curves_at_rates(net, args.weight_var, args.bias_var, curves.lambda_b,
                        curves.lambda_w, args.q0, args.width, curves=curves).to_dict()
    out["exponents"].update(d.pop("exponents"))
    out.update(d)


# ------------------------------------------------------------------ ``simulate --ntk``
def ntk_arguments(p) -> None:
    """``--ntk`` and the learning-rate options of ``ntk`` (for ``simulate``)."""
    p.add_argument("--ntk", action="store_true",
                   help="also measure the NTK per depth (ntk_mean, ntk_stderr, ntk_theory)")
    p.add_argument("--lambda-b", type=nonnegative, default=None,
                   help="with --ntk: bias learning rate (default 1)")
    p.add_argument("--lambda-w", type=nonnegative, default=None,
                   help="with --ntk: weight learning rate per fan-in (default 1)")
    p.add_argument("--scaling", choices=("constant", "equivalence"), default=None,
                   help="with --ntk: per-layer schedule of the learning rates (default constant)")


def ntk_check(args) -> None:
    """Refuse, before the simulation starts, an NTK measurement over its budget (and NTK
    options without ``--ntk``, which would otherwise be silently ignored); fill in the
    defaults of the learning-rate options."""
    given = [o for o, v in (("--lambda-b", args.lambda_b), ("--lambda-w", args.lambda_w),
                            ("--scaling", args.scaling)) if v is not None]
    if given and not getattr(args, "ntk", False):
        many = len(given) > 1
        raise InvalidArgumentError(f"the NTK option{'s' if many else ''} {', '.join(given)} "
                                   f"require{'' if many else 's'} --ntk")
    args.lambda_b = 1.0 if args.lambda_b is None else args.lambda_b
    args.lambda_w = 1.0 if args.lambda_w is None else args.lambda_w
    args.scaling = "constant" if args.scaling is None else args.scaling
    if getattr(args, "ntk", False):
        from critheory.simulation.ntk import check_ntk_budget

        check_ntk_budget(args.width, args.depth, args.seeds, args.arch)


def _compare(args, act, arch, curves=None):
    """The measured NTK beside the recursion (:func:`critheory.validation.ntk.compare_ntk`)."""
    from critheory.validation.ntk import compare_ntk

    return compare_ntk(act, arch, args.weight_var, args.bias_var, width=args.width,
                       depth=args.depth, seeds=args.seeds, lambda_b=args.lambda_b,
                       lambda_w=args.lambda_w, scaling=args.scaling, mu=args.mu, q0=args.q0,
                       seed=args.seed, curves=curves)


def ntk_columns(args) -> dict:
    """The per-layer NTK columns of ``simulate --ntk``
    (:meth:`critheory.validation.ntk.NTKComparison.to_dict`)."""
    return ntk_measure(args)[0]


def ntk_measure(args):
    """The NTK columns of ``simulate --ntk`` and their comparison (for :func:`ntk_verdict`)."""
    from critheory.activation import Activation
    from critheory.theory.meanfield.maps import architecture

    act = Activation.get(args.activation, params(args.param))
    cmp = _compare(args, act, architecture(args.arch, act, args.mu))
    return cmp.to_dict(), cmp


def ntk_verdict(cols: dict, alpha: float, samples=None) -> dict:
    """The JSON keys of ``validate --ntk``'s NTK verdict
    (:func:`critheory.validation.ntk.ntk_verdict`)."""
    from critheory.validation.ntk import ntk_verdict as verdict

    return verdict(cols, alpha, samples).to_dict()


def ntk_lines(cols: dict) -> list[str]:
    """The text table of ``simulate --ntk``."""
    def f(x, spec):
        return "-" if x is None else format(x, spec)

    L = len(cols["ntk_mean"])
    out = [f"NTK ({cols['ntk_scaling']} learning rates): {'l':>5} {'measured':>24} "
           f"{'theory':>14} {'z':>7}"]
    for l in np.unique(np.round(np.geomspace(1, L, min(L, 15))).astype(int)):
        i = l - 1
        meas = f"{f(cols['ntk_mean'][i], '.6g')}+-{f(cols['ntk_stderr'][i], '.2g')}"
        out.append(f"{'':>35}{l:>5} {meas:>24} {f(cols['ntk_theory'][i], '.8g'):>14} "
                   f"{f(cols['ntk_z'][i], '.2f'):>7}")
    out.append("NTK: deviations of relative size O(l/width) are the finite-width correction")
    if "ntk_verdict" in cols:
        crit = cols["ntk_z_crit"]
        out.append(f"NTK verdict: {cols['ntk_verdict']} (Bonferroni threshold z_crit = "
                   f"{f(crit, '.3f')} over {cols['ntk_n_compared']} layers)")
    return out


def register(sub) -> None:
    """Add the ``ntk`` sub-command to an argparse sub-parser collection."""
    p = sub.add_parser("ntk", help="neural tangent kernel over depth and learning-rate "
                                   "schedules (infinite width; optional simulation)")
    common_arguments(p, plot=False)
    p.add_argument("--weight-var", type=finite, required=True)
    p.add_argument("--bias-var", type=finite, required=True)
    p.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_NTK, "depth"), required=True)
    p.add_argument("--lambda-b", type=nonnegative, default=1.0,
                   help="bias learning rate (default 1)")
    p.add_argument("--lambda-w", type=nonnegative, default=1.0,
                   help="weight learning rate per fan-in (default 1)")
    p.add_argument("--scaling", choices=("constant", "equivalence"), default="constant",
                   help="per-layer schedule of the learning rates (default constant)")
    p.add_argument("--q0", type=positive, default=1.0, help="input norm |x|^2/N0 (default 1)")
    p.add_argument("--q12", type=finite, default=None, help="x1.x2/N0 of a second input")
    p.add_argument("--q22", type=nonnegative, default=None, help="|x2|^2/N0 of a second input")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")
    p.add_argument("--simulate", action="store_true",
                   help="also measure the NTK of --seeds networks of width --width")
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_CLI, "width"), default=None,
                   help="the network's width n: adds the NTK's 1/n mean shift and variance "
                        "(ntk_mean_nlo, ntk_variance) and the dNTK and ddNTK (dntk, ddntk); "
                        "also the width of --simulate")
    p.add_argument("--seeds", type=bounded_int(2, MAX_SEEDS_CLI, "seeds"), default=200)
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=_cmd_ntk)
