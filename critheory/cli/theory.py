"""Sub-commands of the theory engine: ``analyze``, ``line``, ``point``, ``depth``, ``phase``.

Registered on the parser of :mod:`critheory.cli.main`. JSON output uses the keys documented in the
README (``weight_var``, ``bias_var``, ``fixed_point``, ``chi_parallel``, ``chi_perp``,
``chi_jacobian``, ``jacobian_depth_scale`` (1/|log χ_J(K*)|; ``correlation_length`` is its
deprecated alias), ``c_star``, ``chi_c``, ``chi_c_error``, ``xi_c`` (the correlation map of
Schoenholz et al. 2017 at q*), ``phase``, ``universality_class``, ``critical_points``,
``exponents``, ``line``); absent quantities are ``null``.
"""
from __future__ import annotations

import csv
import io
import math
import sys
import warnings

import numpy as np

from critheory.cli.args import (bounded_int, common_arguments, correlation, dump, finite,
                                fmt, grid_size, nonnegative, params, parse_grid, positive,
                                value_range)
from critheory.common.limits import (MAX_DEPTH_MEANFIELD_CLI, MAX_PHASE_GRID_CLI,
                                     MAX_VERIFY_DEPTH_CLI)
from critheory.errors import CritheoryError, InvalidArgumentError

__all__ = ["register", "parse_grid"]


def _arch(args):
    from critheory.activation import Activation
    from critheory.theory.meanfield.maps import architecture

    act = Activation.get(args.activation, params(args.param))
    return architecture(args.arch, act, args.mu)


def _cmd_analyze(args) -> int:
    from critheory.cli import transformer

    net = transformer.token_network(args)
    if net is not None:
        return transformer.analyze(args, net)
    from critheory.io.report import analyze

    arch = _arch(args)
    grid = None
    if args.bias_var is not None:
        grid = parse_grid(args.bias_var)
    r = analyze(arch.activation, arch.name, args.mu, bias_vars=grid,
                verify_depth=args.verify_depth, weight_var=args.weight_var,
                bias_var=args.ref_bias_var)
    init = _initialization(arch, args)
    if init is not None:
        r["initialization"] = init
    if args.plot:
        from critheory.io.plots import plot_line

        plot_line(r["line"], args.plot, critical_points=r["critical_points"],
                  title=f"{r['activation']} ({r['arch']}): critical line")
    if args.json:
        dump(r)
        return 0
    print(f"activation  {r['activation']}: {r['expr']}")
    print(f"architecture {arch.describe()}")
    print(f"universality class: {r['universality_class']}")
    print(f"critical set: {r['critical_set']['kind']}: {r['critical_set']['description']}")
    if r.get("growth"):
        print(f"APJN growth: {r['growth']['law']}: {r['growth']['description']}")
    if r["note"]:
        print(f"  note: {r['note']}")
    if r["critical_points"]:
        print("critical points (weight_var, bias_var, K*):")
        for c in r["critical_points"]:
            print(f"  ({fmt(c['weight_var'])}, {fmt(c['bias_var'])}, {fmt(c['fixed_point'])})"
                  f"  {c['kind']}")
    else:
        print("critical points: none")
    e = r["exponents"]
    if e["kernel"] is not None:
        print(f"exponents ({e['convention']}):")
        print(f"  kernel {e['kernel_exact'] or fmt(e['kernel'])}   apjn "
              f"{e['apjn_exact'] or fmt(e['apjn'])}")
        for k, v in e["laws"].items():
            if isinstance(v, str):
                print(f"  {k}: {v}")
        if e.get("fit"):
            f = e["fit"]
            print(f"  check: recursion iterated to depth {f['depth']}: kernel "
                  f"{fmt(f.get('kernel'), '.4f')}, apjn {fmt(f.get('apjn'), '.4f')}"
                  + ("" if f.get("asymptotic_regime_reached", True)
                     else "  (asymptotic regime not reached at this depth)"))
    print("critical line (bias_var -> weight_var, K*):")
    for p in r["line"]:
        print(f"  {p['bias_var']:<8.4g} {fmt(p['weight_var']):>16} {fmt(p['fixed_point']):>16}"
              f"  {p.get('note', '')}")
    if init is not None and init["weight_var"] is None:
        print(f"what to set in an MLP: {init['point']}")
    elif init is not None:
        sw, sb = init["weight_var"], init["bias_var"]
        print(f"what to set in an MLP ({init['point']}):")
        if init["input_weight_var"] != sw:
            swi = init["input_weight_var"]
            print(f"  input layer weights: normal, std = sqrt({swi:.6g}/fan_in)   (gain "
                  f"{math.sqrt(swi):.6g})")
        print(f"  weights: normal, std = sqrt({sw:.6g}/fan_in)   (gain {math.sqrt(sw):.6g} = "
              f"std*sqrt(fan_in); torch: nn.init.normal_(w, std=math.sqrt({sw:.6g} / "
              "w.shape[1])))")
        print(f"  biases:  normal, std = {math.sqrt(sb):.6g}")
        print(f"  per-group learning rates: critheory recipe {args.activation} --width N "
              f"--depth L --q0 {init['q0']:g}; a PyTorch model: "
              f"critheory.torch.init_critical_(model, q0={init['q0']:g})")
        for w in init["warnings"]:
            print(f"  warning: {w}")
    return 0


#: depth horizon of the input-scale point that ``analyze`` suggests
INIT_DEPTH = 64


def _initialization(arch, args) -> dict | None:
    """What to set in an MLP: the point of the critical line that stays critical for inputs of
    second moment ``--q0`` (default 1) over :data:`INIT_DEPTH` layers
    (:func:`critheory.theory.meanfield.inputs.critical_point_for_inputs`), as standard
    deviations; None for other architectures or where the line offers no such point."""
    if not arch.caps.plain_mlp:
        if getattr(args, "q0", None) is not None:
            raise InvalidArgumentError("--q0 (what to set for inputs of that scale) is derived "
                                       "for --arch mlp only")
        return None
    from critheory.theory.meanfield.inputs import critical_point_for_inputs, warnings_for

    q0 = 1.0 if args.q0 is None else args.q0
    try:
        ip = critical_point_for_inputs(arch.activation, q0, depth=INIT_DEPTH)
    except CritheoryError as exc:
        if args.q0 is not None:
            raise
        return {"q0": q0, "weight_var": None, "bias_var": None, "input_weight_var": None,
                "point": str(exc), "warnings": []}
    warnings = [w.text() for w in warnings_for(ip)]
    return {"q0": q0, "weight_var": ip.weight_var, "bias_var": ip.bias_var,
            "weight_std": f"sqrt({ip.weight_var!r}/fan_in)", "bias_std": math.sqrt(ip.bias_var),
            "gain": math.sqrt(ip.weight_var), "input_gain": math.sqrt(ip.input_weight_var),
            "input_weight_var": ip.input_weight_var,
            "input_weight_std": f"sqrt({ip.input_weight_var!r}/fan_in)",
            "fixed_point": ip.fixed_point, "rule": ip.rule, "depth_horizon": INIT_DEPTH,
            "point": {"K*=K1": f"fixed point = input kernel for q0 = {q0:g}",
                      "critical": "the activation's critical point",
                      "reached": f"the flattest critical-line point reached from q0 = {q0:g} "
                                 f"over {INIT_DEPTH} layers",
                      "input layer": f"the most stable critical-line point, the input layer's "
                                     f"own weight variance putting inputs of q0 = {q0:g} on "
                                     "its fixed point"}.get(ip.rule, ip.rule),
            "warnings": warnings}


def _cmd_line(args) -> int:
    from critheory.theory.meanfield.criticality import (ResolutionWarning, critical_line,
                                                        critical_points)

    arch = _arch(args)
    grid = parse_grid(args.bias_var)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResolutionWarning)
        pts = [p.to_dict() for p in critical_line(arch, grid)]
    unresolved = [str(w.message) for w in caught if issubclass(w.category, ResolutionWarning)]
    for m in unresolved:                 # one stderr line; JSON: the key "unresolved"
        print(f"critheory: warning: {m}", file=sys.stderr)
    if args.plot:
        from critheory.io.plots import plot_line

        plot_line(pts, args.plot, critical_points=[c.to_dict() for c in critical_points(arch)],
                  title=f"{arch.activation.name} ({arch.describe()}): critical line")
    if args.csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["bias_var", "weight_var", "fixed_point", "chi_parallel", "branch"])
        for p in pts:
            w.writerow(["" if p[k] is None else repr(float(p[k])) if k != "branch" else p[k]
                        for k in ("bias_var", "weight_var", "fixed_point", "chi_parallel",
                                  "branch")])
        sys.stdout.write(buf.getvalue())
    elif args.json:
        out = {"activation": arch.activation.name, "arch": arch.name, "mu": arch.mu,
               "line": pts}
        if unresolved:
            out["unresolved"] = unresolved
        dump(out)
    else:
        print(f"{'bias_var':>12} {'weight_var':>20} {'fixed_point':>20} {'chi_parallel':>14} br")
        for p in pts:
            print(f"{p['bias_var']:>12.6g} {fmt(p['weight_var'], '.15g'):>20} "
                  f"{fmt(p['fixed_point'], '.15g'):>20} {fmt(p['chi_parallel'], '.8g'):>14} "
                  f"{p['branch']}")
        if not pts:
            print("no critical point with these bias variances")
    return 0


def _cmd_point(args) -> int:
    from critheory.io.report import point_report

    arch = _arch(args)
    r = point_report(arch, args.weight_var, args.bias_var, args.q0)
    if args.json:
        dump(r)
        return 0
    print(f"{arch.activation.name} ({arch.describe()}) at weight_var = {args.weight_var:g}, "
          f"bias_var = {args.bias_var:g}, input kernel K^1 = {r['input_kernel']:.10g}")
    print("fixed points:" if r["fixed_points"] else "fixed points: none")
    for fp in r["fixed_points"]:
        print(f"  K* = {fmt(fp['K'])}  chi_parallel = {fmt(fp['chi_parallel'])}  "
              f"chi_perp = {fmt(fp['chi_perp'])}  ({fp['stability']})")
    print(f"reached from the input: {fmt(r['fixed_point'])}"
          + (f"  (runaway: {r['runaway']})" if r["runaway"] else ""))
    print(f"chi_parallel = {fmt(r['chi_parallel'])}  chi_perp = chi_J = {fmt(r['chi_jacobian'])}")
    print(f"phase: {r['phase']}   Jacobian depth scale 1/|log chi_J| = "
          f"{fmt(r['jacobian_depth_scale'])}")
    print(_correlation_line(r))
    if r["note"]:
        print(f"note: {r['note']}")
    return 0


def _correlation_line(r: dict) -> str:
    """c*, χ_c and ξ_c (Schoenholz et al. 2017) in one line."""
    if r.get("c_star") is None:
        q = r.get("q_star", r.get("fixed_point"))
        if q == 0:
            return "correlation map: q* = 0, every input flows to zero (no c*, chi_c, xi_c)"
        return "correlation map: no finite kernel fixed point (no c*, chi_c, xi_c)"
    xi = "inf (critical)" if r["xi_c"] is None else fmt(r["xi_c"])
    return (f"correlation map at q*: c* = {fmt(r['c_star'])}  chi_c = {fmt(r['chi_c'])}  "
            f"xi_c = -1/log chi_c = {xi}")


def _cmd_depth(args) -> int:
    from critheory.cli import transformer

    net = transformer.token_network(args)
    if net is not None:
        return transformer.depth(args, net)
    from critheory.theory.meanfield.depth import depth_curves, fit_power_law

    arch = _arch(args)
    corr = args.corr
    d = depth_curves(arch, args.weight_var, args.bias_var, args.depth, l0=args.l0, q0=args.q0,
                     input_correlation=corr, progress=args.depth >= 2000 and not args.json)
    out = d.to_dict()
    fit = None
    if args.depth - args.l0 >= 10:
        try:
            fit = fit_power_law(d.depths[args.l0 - 1:], d.apjn[args.l0 - 1:]).to_dict()
        except InvalidArgumentError:
            fit = None
    out["apjn_fit"] = fit
    predicted = _predicted_exponents(arch, args.weight_var, args.bias_var)
    out["theory_exponents"] = predicted
    from critheory.io.report import correlation_fields
    from critheory.theory.meanfield.fixed_points import analyze_point

    att = analyze_point(arch, args.weight_var, args.bias_var, args.q0).attractor
    fp = None if att is None or not np.isfinite(att.K) else float(att.K)
    out["q_star"] = fp
    out.update(correlation_fields(arch, args.weight_var, args.bias_var, fp))
    if args.plot:
        from critheory.io.plots import plot_depth

        plot_depth(d, args.plot,
                   exponent=predicted["apjn"] if predicted else None,
                   kernel_exponent=predicted["kernel"] if predicted else None,
                   title=f"{arch.activation.name} ({arch.describe()}), "
                         f"$\\sigma_w^2$={args.weight_var:g}, $\\sigma_b^2$={args.bias_var:g}")
    if args.json:
        dump(out)
        return 0
    show = np.unique(np.round(np.geomspace(1, args.depth, min(args.depth, 20))).astype(int))
    print(f"{'l':>7} {'K^l':>20} {'c^l':>12} {'J^(l0,l)':>20}")
    for l in show:
        i = l - 1
        c = "-" if d.correlation is None else fmt(d.correlation[i], ".8f")
        print(f"{l:>7} {fmt(d.kernel[i], '.12g'):>20} {c:>12} {fmt(d.apjn[i], '.12g'):>20}")
    if fit:
        print(f"APJN power-law fit over l in {fit['window']}: J ~ l^{fit['slope']:.4f}")
    if d.runaway_depth:
        print(f"K exceeded 1e150 at depth {d.runaway_depth} (runaway)")
    print(_correlation_line(out))
    return 0


def _predicted_exponents(arch, sw: float, sb: float) -> dict | None:
    """The class's exponents if (sw, sb) is its critical point (to 1e-9), else None."""
    from critheory.theory.meanfield.criticality import universality

    try:
        u = universality(arch)
    except Exception:  # noqa: BLE001 - a prediction is optional here
        return None
    cp = u.critical_point
    if cp is None or u.kernel is None:
        return None
    if abs(cp.weight_var - sw) <= 1e-9 * cp.weight_var and abs(cp.bias_var - sb) <= 1e-9 * max(
            1.0, cp.bias_var):
        return {"kernel": u.kernel, "apjn": u.apjn, "class": u.name}
    return None


def _cmd_phase(args) -> int:
    from critheory.io.plots import check_path, plot_phase, plot_phase_mu
    from critheory.theory.meanfield.criticality import critical_line, critical_points
    from critheory.theory.meanfield.phase import phase_grid, phase_grid_mu

    if not args.plot:
        raise InvalidArgumentError("phase needs --plot FILE")
    check_path(args.plot)
    arch = _arch(args)
    if args.plane == "weight-mu":
        sw, mr = args.weight_range, args.mu_range
        if not arch.residual:
            raise InvalidArgumentError("the (weight_var, mu) plane needs a residual --arch")
        if sw[0] <= 0 or mr[0] < 0:
            raise InvalidArgumentError("ranges must be LO:HI with 0 < LO (weight) and "
                                       "0 <= LO (mu)")
        grid = phase_grid_mu(arch.name, arch.activation, sw, mr, args.at_bias_var, args.grid)
        path = plot_phase_mu(grid, args.plot, bias_var=args.at_bias_var,
                             title=f"{arch.activation.name} ({arch.name}), "
                                   f"$\\sigma_b^2$ = {args.at_bias_var:g}")
        print(f"wrote {path}")
        return 0
    sw, sb = args.weight_range, args.bias_range
    if sw[0] <= 0 or sb[0] < 0:
        raise InvalidArgumentError("ranges must be LO:HI with 0 < LO < HI (weight) and "
                                   "0 <= LO < HI (bias)")
    line = [p.to_dict() for p in critical_line(arch, np.linspace(sb[0], sb[1], 101))]
    path = plot_phase(phase_grid(arch, sw, sb, args.grid), args.plot, line=line,
                      critical_points=[c.to_dict() for c in critical_points(arch)],
                      title=f"{arch.activation.name} ({arch.describe()})")
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    """Add the theory sub-commands to an argparse sub-parser collection."""
    from critheory.cli.transformer import token_arguments

    a = sub.add_parser("analyze", help="universality class, critical points, exponents, line")
    common_arguments(a, tokens=True)
    a.add_argument("--bias-var", metavar="START:STOP:NUM",
                   help="grid of the critical-line summary (default 0:1:11)")
    a.add_argument("--verify-depth", type=bounded_int(0, MAX_VERIFY_DEPTH_CLI, "--verify-depth"),
                   default=10000,
                   help="depth of the recursion that checks the exponents (0: skip; at most "
                        f"{MAX_VERIFY_DEPTH_CLI})")
    a.add_argument("--weight-var", type=positive, default=1.0,
                   help="reference weight variance for hyperparameter-dependent exponents "
                        "(everywhere-critical / residual architectures; default 1)")
    a.add_argument("--ref-bias-var", type=nonnegative, default=0.0,
                   help="reference bias variance for the same (default 0)")
    a.add_argument("--q0", type=positive, default=None,
                   help="MLP: second moment |x|^2/N0 of the inputs for 'what to set' (default 1)")
    a.add_argument("--json", action="store_true")
    token_arguments(a)
    a.set_defaults(func=_cmd_analyze)

    ln = sub.add_parser("line", help="critical line chi_J(K*) = 1 on a grid of bias variances")
    common_arguments(ln)
    ln.add_argument("--bias-var", required=True, metavar="START:STOP:NUM",
                    help="grid of bias variances sigma_b^2 (NUM points from START to STOP)")
    g = ln.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--csv", action="store_true")
    ln.set_defaults(func=_cmd_line)

    pt = sub.add_parser("point", help="fixed points, chi's, phase and xi at one point")
    common_arguments(pt, plot=False)
    pt.add_argument("--weight-var", type=finite, required=True)
    pt.add_argument("--bias-var", type=finite, required=True)
    pt.add_argument("--q0", type=positive, default=1.0, help="input norm |x|^2/N0 (default 1)")
    pt.add_argument("--json", action="store_true")
    pt.set_defaults(func=_cmd_point)

    dp = sub.add_parser("depth", help="K^l, c^l and the APJN J^(l0,l) through depth")
    common_arguments(dp, tokens=True)
    dp.add_argument("--weight-var", type=finite, required=True)
    dp.add_argument("--bias-var", type=finite, required=True)
    dp.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_MEANFIELD_CLI, "--depth",
                                                "the recursion runs ~1e5 layers a few seconds"),
                    required=True, help=f"number of layers (at most {MAX_DEPTH_MEANFIELD_CLI:.0e})")
    dp.add_argument("--l0", type=bounded_int(1, MAX_DEPTH_MEANFIELD_CLI, "--l0"), default=1)
    dp.add_argument("--q0", type=positive, default=1.0, help="input norm |x|^2/N0 (default 1)")
    dp.add_argument("--corr", type=correlation, default=None,
                    help="correlation of a second input (default: no two-input curve)")
    dp.add_argument("--json", action="store_true")
    token_arguments(dp)
    dp.set_defaults(func=_cmd_depth)

    ph = sub.add_parser("phase", help="phase diagram in the (weight_var, bias_var) plane")
    common_arguments(ph)
    ph.add_argument("--weight-range", type=value_range, default=(0.25, 4.0), metavar="LO:HI")
    ph.add_argument("--bias-range", type=value_range, default=(0.0, 1.0), metavar="LO:HI")
    ph.add_argument("--grid", type=grid_size, default=41,
                    help=f"grid points per axis, 2..{MAX_PHASE_GRID_CLI} (default 41)")
    ph.add_argument("--plane", choices=["weight-bias", "weight-mu"], default="weight-bias",
                    help="which plane (default weight-bias)")
    ph.add_argument("--mu-range", type=value_range, default=(0.0, 1.0), metavar="LO:HI")
    ph.add_argument("--at-bias-var", type=finite, default=0.0,
                    help="bias variance of the (weight_var, mu) plane (default 0)")
    ph.set_defaults(func=_cmd_phase)
