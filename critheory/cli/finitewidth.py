"""Sub-command ``finite-width``: the four-point vertex, the 1/n kernel and the depth-to-width
ratio, with an optional simulation beside them.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory finite-width ACTIVATION --weight-var X --bias-var Y --depth L [--width N]
        [--arch A --mu M] [--q0 Q] [--param NAME=VALUE] [--json] [--plot FILE]
        [--simulate --seeds S [--seed SEED] [--probes P|exact]] [--outputs N_L]

JSON output (absent numbers are ``null``):

``depths``             1..L (layer 1 is the first dense layer: V¹ = 0)
``kernel``             K^l (infinite width)
``vertex``             V^l, with E[z⁴] − 3E[z²]² = 3V^l/n for one preactivation
``vertex_normalized``  V^l/(K^l)²
``nlo_kernel``         K^{(1),l}: E[z²] = K^l + K^{(1),l}/n + O(1/n²)
``nu``                 ``{"value", "exact", "method", "saturation", "fixed_point"}``:
                       V^l/(K^l)² ≈ ν l as l → ∞ along the actual kernel flow (0 with the
                       saturation value of V/K² where the flow ends at a stable fixed point)
``nu_reached``         V^L/((K^L)² ν L) at the last depth: how far the asymptote is reached
``kurtosis``           (with ``--width``) predicted excess kurtosis 3V^l/(n (K^l)²)
``kernel_finite``      (with ``--width``) K^l + K^{(1),l}/n
``kurtosis_exact``     (with ``--width``) exact finite-width kurtosis where known (scale-invariant
                       MLP), else null
``trust``              plain-words statement of when the depth/width expansion holds
``optimal_aspect_ratio`` r* = (L/n)* = 4/((20 + 3 n_L) ν) of the information argument for
                       ``--outputs`` n_L (default 2): ``{"value", "nu", "n_out", "epsilon",
                       "formula", "regime", "meaning", "reason", "width", "depth_estimate",
                       "depth_reached"}``; ``value`` null with ``reason`` where it does not apply
                       (ν = 0 or undetermined, no fixed point in reach)
``simulation``         (with ``--simulate``) measured ``kurtosis_mean``, ``kurtosis_stderr``
                       (jackknife over networks, ``kurtosis_dof``), ``kurtosis_theory`` (the
                       exact kurtosis where known, else the leading order; ``kurtosis_leading``
                       always), ``kurtosis_theory_stderr`` (exact standard error of the
                       estimator where known), ``kurtosis_reference``, ``kurtosis_z``,
                       ``kurtosis_p``, ``alpha``, ``verdict``, ``inconsistent_depths``,
                       ``kernel_mean``, ``kernel_stderr``,
                       ``kernel_theory`` (K + K1/n), ``kernel_z``, ``kernel_z_infinite_width``,
                       ``log_apjn_mean``, ``log_apjn_std`` (spread of log J^{1,l} across
                       networks), ``log_apjn_std_stderr``, ``regime``
"""
from __future__ import annotations

import json

import numpy as np

from critheory.cli.args import SEED, bounded_int, common_arguments, finite, params, preflight
from critheory.common.limits import (MAX_DEPTH_FINITE_WIDTH, MAX_SEEDS_CLI,
                                     MAX_WIDTH_FINITE_WIDTH)

__all__ = ["register"]



def _cmd_finite_width(args) -> int:
    from critheory.common.jsonable import jsonable

    def budget():
        from critheory.simulation.finitewidth import check_budget

        check_budget(args.width, args.depth, args.seeds, apjn=True, probes=args.probes)

    preflight(args, budget)
    from critheory.activation import Activation
    from critheory.theory.finitewidth.curves import finite_width_curves
    from critheory.theory.meanfield.maps import architecture

    act = Activation.get(args.activation, params(args.param))
    arch = architecture(args.arch, act, args.mu)
    c = finite_width_curves(arch, args.weight_var, args.bias_var, args.depth, width=args.width,
                            q0=args.q0, progress=args.depth >= 20000 and not args.json)
    out = c.to_dict()
    from critheory.theory.finitewidth.aspect import aspect_ratio_from_curves

    aspect = aspect_ratio_from_curves(c, args.outputs)
    out["optimal_aspect_ratio"] = aspect.to_dict()
    m = None
    if args.simulate:
        from critheory.simulation.finitewidth import measure_finite_width

        m = measure_finite_width(act, args.weight_var, args.bias_var, width=args.width,
                                 depth=args.depth, seeds=args.seeds, arch=arch.name,
                                 mu=args.mu, q0=args.q0, seed=args.seed, probes=args.probes)
        exact_se = None
        if out.get("kurtosis_exact") is not None:
            from critheory.theory.finitewidth.exact import exact_kurtosis_law

            exact_se = exact_kurtosis_law(act, args.weight_var, args.bias_var, args.depth,
                                          args.width, args.seeds, args.q0)
        from critheory.validation.finitewidth import compare_finite_width

        out["simulation"] = jsonable(compare_finite_width(out, m, exact_se))
    if args.plot:
        from critheory.io.figures import plot_finite_width

        plot_finite_width(out, args.plot, measured=out.get("simulation"),
                          title=f"{act.name} ({arch.describe()}), "
                                f"$\\sigma_w^2$={args.weight_var:g}, "
                                f"$\\sigma_b^2$={args.bias_var:g}")
    if args.json:
        print(json.dumps(jsonable(out), indent=2, allow_nan=False))
        return 0
    nu = out["nu"]
    print(f"{act.name} ({arch.describe()}) at weight_var = {args.weight_var:g}, "
          f"bias_var = {args.bias_var:g}, q0 = {args.q0:g}")
    print(f"nu = {'-' if nu['value'] is None else format(nu['value'], '.10g')}"
          + (f"  (exact: {nu['exact']})" if nu["exact"] else "") + f"  [{nu['method']}]")
    if out["nu_reached"] is not None:
        what = ("(V/K^2)/saturation" if nu["value"] == 0 and nu.get("saturation")
                else "V/(K^2 nu l)")
        print(f"{what} at the last depth: {out['nu_reached']:.6g} (1: asymptote reached)")
    head = f"{'l':>7} {'K^l':>16} {'V^l':>16} {'V/K^2':>12} {'K1^l':>14}"
    if c.width is not None:
        head += f" {'kurtosis':>12} {'K+K1/n':>16}"
    exact = c.kurtosis_exact
    if exact is not None:
        head += f" {'exact kurt.':>12}"
    if m is not None:
        head += f" {'measured':>18} {'z':>6}"
    print(head)
    L = args.depth
    show = np.unique(np.round(np.geomspace(1, L, min(L, 20))).astype(int))

    def f(x, spec):
        return "-" if x is None or not np.isfinite(x) else format(x, spec)

    sim = out.get("simulation")
    for l in show:
        i = l - 1
        row = (f"{l:>7} {f(c.kernel[i], '.10g'):>16} {f(c.vertex[i], '.10g'):>16} "
               f"{f(c.vertex_normalized[i], '.6g'):>12} {f(c.nlo_kernel[i], '.8g'):>14}")
        if c.width is not None:
            row += f" {f(c.kurtosis[i], '.6g'):>12} {f(c.kernel_finite[i], '.10g'):>16}"
        if exact is not None:
            row += f" {f(exact[i], '.6g'):>12}"
        if m is not None:
            se_i = (m.kurtosis_stderr[i] if sim["kurtosis_theory_stderr"] is None
                    else sim["kurtosis_theory_stderr"][i])
            meas = (f"{f(m.kurtosis_mean[i], '.4g')}±{f(se_i, '.2g')}")
            z = sim["kurtosis_z"][i]
            row += f" {meas:>18} {f(np.nan if z is None else z, '.2f'):>6}"
        print(row)
    print(f"trust: {c.trust}")
    if aspect.value is None:
        print(f"optimal aspect ratio (n_L = {aspect.n_out} outputs): - ({aspect.reason})")
    else:
        at = ("" if aspect.depth_estimate is None else
              f"; at width {aspect.width}: depth ~ {aspect.depth_estimate:.4g}"
              + ("" if aspect.depth_reached is None else
                 f", V/(nK^2) reaches {aspect.epsilon:.4g} at depth {aspect.depth_reached}"))
        print(f"optimal aspect ratio (n_L = {aspect.n_out} outputs): L/n ~ {aspect.value:.6g} "
              f"= {aspect.formula}{at} [an order-of-magnitude design scale; {aspect.regime}]")
    if m is not None:
        print(f"simulation: {m.seeds} networks of width {m.width}; spread of log J^(1,L) "
              f"across networks {f(m.log_apjn_std[-1], '.4g')} "
              f"± {f(m.log_apjn_std_stderr[-1], '.2g')}")
        print(f"kurtosis judged against the {sim['kurtosis_reference']}: {sim['verdict']} "
              f"(alpha = {sim['alpha']:g}, Bonferroni over the depths)")
        print(f"regime: {sim['regime']}")
    return 0


def register(sub) -> None:
    """Add the ``finite-width`` sub-command to an argparse sub-parser collection."""
    p = sub.add_parser("finite-width", help="four-point vertex, 1/n kernel and kurtosis at "
                                            "finite width (depth/width corrections)")
    common_arguments(p, plot=False)
    p.add_argument("--weight-var", type=finite, required=True)
    p.add_argument("--bias-var", type=finite, required=True)
    p.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_FINITE_WIDTH, "depth",
                                               "the finite-width recursion is iterated layer by "
                                               "layer"), required=True)
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_FINITE_WIDTH, "width"), default=None,
                   help="width n: adds the predicted kurtosis and kernel at this width")
    p.add_argument("--q0", type=finite, default=1.0, help="input norm |x|^2/N0 (default 1)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")
    p.add_argument("--simulate", action="store_true",
                   help="also simulate --seeds networks of width --width and compare")
    p.add_argument("--seeds", type=bounded_int(2, MAX_SEEDS_CLI, "seeds"), default=1000,
                   help="networks simulated with --simulate (default 1000)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--probes", default=None,
                   help="Hutchinson probes of the APJN (or 'exact'; default by cost)")
    # the bound is aspect.MAX_OUTPUTS (not imported here: the parser loads no numpy)
    p.add_argument("--outputs", type=bounded_int(2, 10 ** 6, "outputs"), default=2,
                   help="number of output neurons n_L (>= 2) for the optimal aspect ratio "
                        "(default 2)")
    p.set_defaults(func=_cmd_finite_width)
