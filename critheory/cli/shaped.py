"""Sub-command ``sde``: the neural covariance SDE of shaped networks [LNR, arXiv:2206.02768].

Registered on the parser of :mod:`critheory.cli.main`::

    critheory sde ACT --shape relu|smooth [--c-plus C --c-minus C | --a A] --T T --rho0 R
        [--inputs M] [--paths P] [--steps S] [--bias-tol E] [--method em|pde] [--seed S]
        [--normalize]
        [--simulate --width N --seeds S] [--json] [--plot F]

JSON keys: ``T``, ``rho0``, ``rho_mean``, ``rho_std``, ``rho_quantiles`` (``0.1``, ``0.5``,
``0.9``), ``rho_quantile_errors``, ``rho_ode`` (infinite-width limit at T), ``drift`` (printed formula),
``warnings`` (step bias above tolerance or untrustworthy, PSD projections), ``stability``
(``B``, ``verdict``: ``stable`` or ``blows_up``), ``method``, ``error`` (estimated error of
``rho_mean``), plus ``shaping`` (one line), ``details`` (method numbers) and, with
``--simulate``, ``simulation`` (finite shaped networks of width N and depth round(TN): moments
with z-scores against the SDE, a Kolmogorov–Smirnov test, and the unshaped network's mean
correlation). Absent numbers are ``null``.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from critheory.cli.args import bounded_int, finite, positive, preflight
from critheory.cli.args import params as param_values
from critheory.common.limits import (MAX_SDE_PATH_STEPS, MAX_SDE_PATHS_CLI, MAX_SDE_SEEDS_CLI,
                                     MAX_SDE_STEPS_CLI, MAX_SDE_WIDTH_CLI)
from critheory.errors import InvalidArgumentError

__all__ = ["register"]


def _rho(text: str) -> float:
    v = finite(text)
    if abs(v) > 1:
        raise argparse.ArgumentTypeError(f"a correlation must lie in [-1, 1], got {text!r}")
    return v


def _bias_tol(text: str) -> float:
    v = finite(text)
    if not 1e-6 <= v <= 1:
        raise argparse.ArgumentTypeError(f"--bias-tol must lie in [1e-6, 1], got {text!r}")
    return v


def _cmd_sde(args) -> int:
    from critheory.common.jsonable import jsonable

    # every check before any work
    if args.method == "pde" and args.shape != "relu":
        raise InvalidArgumentError("--method pde needs --shape relu (for smooth shaping the "
                                   "correlation alone is not Markov)")
    if args.method == "pde" and args.inputs != 2:
        raise InvalidArgumentError("--method pde solves two inputs (--inputs 2)")
    if args.shape == "relu" and args.a is not None:
        raise InvalidArgumentError("--a is for --shape smooth; ReLU shaping takes --c-plus/--c-minus")
    if args.shape == "smooth" and (args.c_plus is not None or args.c_minus is not None):
        raise InvalidArgumentError("--c-plus/--c-minus are for --shape relu; smooth shaping "
                                   "takes --a")
    if args.inputs > 2 and args.rho0 < -1.0 / (args.inputs - 1):
        raise InvalidArgumentError(f"{args.inputs} inputs cannot all have correlation "
                                   f"{args.rho0:g} (needs rho0 >= {-1 / (args.inputs - 1):.4g})")
    if args.method == "pde" and abs(args.rho0) == 1:
        raise InvalidArgumentError("|rho0| = 1 is a fixed point of the correlation SDE")
    if (args.steps is not None
            and args.paths * (args.steps + 1) * args.inputs ** 2 > MAX_SDE_PATH_STEPS):
        raise InvalidArgumentError("--paths x --steps x inputs^2 is beyond the budget "
                                   + f"{MAX_SDE_PATH_STEPS:.0e}".replace("e+0", "e"))

    def budget():
        from critheory.simulation.shaped import check_budget

        check_budget(args.width, args.T, args.seeds, args.inputs)

    preflight(args, budget)
    from critheory.activation import Activation
    from critheory.theory.shaped import shape_relu, shape_smooth, solve_sde

    params = param_values(args.param)
    if args.shape == "relu":
        act = Activation.get(args.activation, params)
        shaping = shape_relu(0.0 if args.c_plus is None else args.c_plus,
                             -1.0 if args.c_minus is None else args.c_minus, act)
    else:
        shaping = shape_smooth(args.activation, 1.0 if args.a is None else args.a,
                               normalize=args.normalize, params=params)
        act = shaping.activation
    keep = 20 if args.plot else 0
    if args.method == "em":  # refuse before any work what the step budget cannot do
        from critheory.theory.shaped.solve import initial_steps, step_rate

        first = initial_steps(shaping, args.T) if args.steps is None else args.steps
        if args.paths * first * args.inputs ** 2 > MAX_SDE_PATH_STEPS:
            raise InvalidArgumentError(
                f"T = {args.T:g} at the SDE's rate {step_rate(shaping):.3g} needs {first} "
                f"steps; --paths x steps x inputs^2 = {args.paths * first * args.inputs ** 2:.1e}"
                f" is beyond the budget {MAX_SDE_PATH_STEPS:.0e} (use fewer --paths or a "
                "smaller T)")
        if first > MAX_SDE_STEPS_CLI:
            raise InvalidArgumentError(f"T = {args.T:g} needs {first} steps, beyond the limit "
                                       f"{MAX_SDE_STEPS_CLI} (use a smaller T)")
    res = solve_sde(shaping, args.T, args.rho0, method=args.method, inputs=args.inputs,
                    paths=args.paths, steps=args.steps, seed=args.seed, keep=keep,
                    bias_tol=args.bias_tol)
    out = {"shaping": shaping.describe()}
    out.update(res.to_dict())
    if shaping.note:
        out["normalization"] = shaping.note
    meas = uns = None
    if args.simulate or args.plot:
        from critheory.simulation.shaped import simulate_shaped

        width = args.width or 64
        nets = args.seeds if args.simulate else 200
        kw = ({"c_plus": shaping.c_plus, "c_minus": shaping.c_minus} if shaping.homogeneous
              else {"a": shaping.a})
        base = act if act is not None else Activation.get("relu")
        if args.simulate:
            meas = simulate_shaped(base, width=width, T=args.T, rho0=args.rho0,
                                   inputs=args.inputs, networks=nets, seed=args.seed + 1,
                                   keep=keep, **kw)
        uns = simulate_shaped(base, width=width, T=args.T, rho0=args.rho0, inputs=args.inputs,
                              networks=nets, seed=args.seed + 2, keep=keep)
        if meas is not None:
            from critheory.validation.shaped import compare_sde

            out["simulation"] = compare_sde(res, meas, uns).to_dict()
    if args.plot:
        from critheory.io.figures import plot_sde

        plot_sde(res, args.plot, shaped=meas, unshaped=uns,
                 title=f"{shaping.describe()}, T = {args.T:g}")
    if args.json:
        print(json.dumps(jsonable(out), indent=2, allow_nan=False))
        return 0

    def f(v, spec=".6g"):
        return "-" if v is None or not np.isfinite(v) else format(v, spec)

    print(out["shaping"])
    if shaping.note:
        print(f"activation {shaping.note}")
    print(f"drift: {res.drift}")
    print(f"stability: B = {res.stability.B:g} -> {res.stability.verdict} "
          f"({res.stability.reason})")
    print(f"T = {res.T:g}, rho0 = {res.rho0:g}, method {res.method}")
    print(f"  E[rho_T]  = {f(res.rho_mean, '.6f')} +- {f(res.error, '.1e')}")
    print(f"  sd        = {f(res.rho_std, '.6f')}")
    print("  quantiles = " + ", ".join(
        f"{k}: {f(v, '.5f')} +- {f(res.quantile_errors.get(k), '.1e')}"
        for k, v in res.rho_quantiles.items()))
    print(f"  ODE limit (infinite width) rho(T) = {f(res.rho_ode, '.6f')}")
    if res.method == "em":
        d = res.details
        print(f"  {d['paths']} paths, {d['steps']} steps "
              f"({'chosen from the problem' if d['auto_steps'] else 'given'}): stderr "
              f"{f(d['stderr'], '.1e')}, step bias {f(d['step_bias'], '.1e')} (tolerance "
              f"{f(d['step_bias_tol'], '.1e')}: {'ok' if d['step_bias_ok'] else 'EXCEEDED'}), "
              f"{d['projected']} PSD projections ({d['projected_fraction']:.2%} of the steps)")
        if d["blown_up_fraction"] > 0:
            print(f"  {d['blown_up_fraction']:.1%} of the paths blew up before T (moments over "
                  "the others)")
    for w in res.warnings:
        print(f"warning: {w}")
    sim = out.get("simulation")
    if sim:
        print(f"finite shaped networks (n = {sim['width']}, depth {sim['depth']}, "
              f"{sim['networks']} networks): E[rho] = {sim['rho_mean']:.5f} +- "
              f"{sim['rho_mean_stderr']:.1e} (z = {f(sim['z_mean'], '.2f')}), sd = "
              f"{sim['rho_std']:.5f} (z = {f(sim['z_std'], '.2f')}), KS p = "
              f"{sim['ks_pvalue']:.3g}; unshaped E[rho] = {sim['unshaped_rho_mean']:.5f}")
    return 0


def register(sub) -> None:
    """Add the ``sde`` sub-command to an argparse sub-parser collection."""
    p = sub.add_parser("sde", help="neural covariance SDE of shaped networks (depth/width = T)")
    p.add_argument("activation", help="zoo name or formula in x (relu for --shape relu)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    p.add_argument("--shape", choices=("relu", "smooth"), required=True)
    p.add_argument("--c-plus", type=finite, default=None, help="ReLU shaping c+ (default 0)")
    p.add_argument("--c-minus", type=finite, default=None, help="ReLU shaping c- (default -1)")
    p.add_argument("--a", type=positive, default=None, help="smooth shaping a (default 1)")
    p.add_argument("--normalize", action="store_true",
                   help="smooth shaping: use (phi(x) - phi(0))/phi'(0)")
    p.add_argument("--T", type=positive, required=True, help="depth-to-width ratio")
    p.add_argument("--rho0", type=_rho, required=True, help="initial correlation")
    p.add_argument("--inputs", type=bounded_int(2, 16, "inputs"), default=2)
    p.add_argument("--paths", type=bounded_int(2, MAX_SDE_PATHS_CLI, "paths"), default=20000)
    p.add_argument("--steps", type=bounded_int(2, MAX_SDE_STEPS_CLI, "steps"), default=None,
                   help="fine steps (default: chosen from T and the SDE's rates until the step "
                        "bias meets --bias-tol)")
    p.add_argument("--bias-tol", type=_bias_tol, default=5e-3,
                   help="tolerance of the step bias of E[rho_T] (default 5e-3; the standard "
                        "error if larger)")
    p.add_argument("--method", choices=("em", "pde"), default="em")
    p.add_argument("--seed", type=bounded_int(0, 2 ** 62, "seed"), default=0)
    p.add_argument("--simulate", action="store_true",
                   help="also simulate --seeds finite shaped networks of width --width")
    p.add_argument("--width", type=bounded_int(2, MAX_SDE_WIDTH_CLI, "width"), default=None)
    p.add_argument("--seeds", type=bounded_int(2, MAX_SDE_SEEDS_CLI, "seeds"), default=1000,
                   help="networks simulated with --simulate (default 1000)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")
    p.set_defaults(func=_cmd_sde)
