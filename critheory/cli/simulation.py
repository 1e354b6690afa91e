"""Sub-commands of the finite-width simulator: ``simulate`` and ``validate``.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory simulate ACTIVATION --weight-var X --bias-var Y --width N --depth L [--seeds S]
        [--arch A --mu M] [--l0 L0] [--probes P|exact] [--seed SEED] [--q0 Q] [--window LO:HI]
        [--param NAME=VALUE] [--json] [--plot FILE] [--progress | --no-progress]
        [--backend numpy|torch[:cuda]] [--dtype float64|float32]
    critheory validate ACTIVATION ...same options... [--alpha A]

Both simulate ``S`` random networks of width ``N`` (:func:`critheory.simulation.simulate`) and
compute the infinite-width theory (:func:`critheory.theory.meanfield.depth.depth_curves`) through
:func:`critheory.validation.compare`; ``simulate`` prints the simulation with the theory
alongside, ``validate`` adds per-depth z-scores and the verdict (Bonferroni at family-wise
level ``--alpha``, default 0.01). Finite-width corrections of relative size ``O(l/N)`` are
expected: keep ``depth << width`` when the verdict is meant as a check of the theory.

JSON output (``--json``; both commands; absent numbers are ``null``, never NaN):

``depths``         ``l0..L``, the depths of the APJN arrays
``layers``         ``1..L``, the layers of the kernel arrays
``apjn_mean``, ``apjn_stderr``, ``apjn_median``, ``log_apjn_mean``, ``log_apjn_std``
                   simulated ``J^{l0,l}`` statistics over networks
``apjn_theory``    infinite-width ``J^{l0,l}``
``apjn_z``         ``(apjn_mean - apjn_theory)/apjn_stderr``
``kernel_mean``, ``kernel_stderr``, ``kernel_theory``, ``kernel_z``   the same for ``K^l``
``fit``            power-law fit of the simulated APJN ``J ∝ l^(-exponent)`` (the convention of
                   ``critheory analyze``: tanh at (1, 0) has exponent 1, a growing APJN a
                   negative one): ``exponent``, ``stderr`` (bootstrap over networks),
                   ``ci_low``, ``ci_high`` (of the exponent), ``slope`` and ``slope_ci`` (the
                   signed ``d log J/d log l``), ``window``, ... (null when too few depths)
``theory_exponent``         asymptotic exponent in the same convention (null where the theory
                            has no power law); ``theory_slope`` is its signed slope
``theory_exponent_source``  why (or why not)
``theory_window_slope``     slope of the infinite-width curve over the fit window
``verdict``, ``apjn_verdict``, ``kernel_verdict``, ``z_crit``, ``alpha``, ``n_compared``,
``max_abs_z``, ``exponent_check``, ``settings``, ``notes``, ``elapsed``

Finite width (issue 14; :mod:`critheory.theory.finitewidth` at the simulated width n), per layer
``1..L``:

``kurtosis_mean``, ``kurtosis_stderr``   measured excess kurtosis of one preactivation,
                   ``mean_s(m4)/mean_s(m2)² − 3`` over networks and neurons, with a
                   jackknife standard error over min(S, 20) groups of networks (the neurons
                   of one network are correlated)
``kurtosis_theory``  predicted ``3V^l/(n (K^l)²)``; ``kurtosis_z`` its z-score
``kernel_finite_theory``, ``kernel_finite_z``   ``K^l + K^{(1),l}/n`` and the z-score of
                   ``kernel_mean`` against it
``kurtosis_meaningful``  whether the layer is in the regime of the leading order (predicted
                   kurtosis <= 0.1, its square below the standard error, >= 30 networks)
``finite_width_verdict``, ``finite_width_z_crit``, ``finite_width_n_compared``   the same
                   Bonferroni test over the meaningful layers only (``"not meaningful"`` when no
                   layer is); it never enters ``verdict``
``kurtosis_regime``  that regime in plain words
``log_apjn_std_stderr``  standard error of ``log_apjn_std`` (the spread of ``log J^{l0,l}``
                   across networks: run-to-run gradient-norm noise), ``std/√(2(S−1))``
``log_apjn_quantiles``   ``{"q10", "q50", "q90"}``: quantiles of ``log J^{l0,l}`` across networks

NTK (issue 15; ``simulate --ntk [--lambda-b B --lambda-w W --scaling constant|equivalence]``),
per layer ``1..L``: ``ntk_mean``, ``ntk_stderr``, ``ntk_std`` (the empirical NTK of
:mod:`critheory.simulation.ntk`), ``ntk_theory`` (the recursion of :mod:`critheory.theory.ntk`),
``ntk_z``, and the rates used: ``ntk_lambda_b``, ``ntk_lambda_w``, ``ntk_scaling``.
``validate --ntk`` adds the same columns and the NTK's own verdict: ``ntk_verdict``,
``ntk_z_crit`` (Bonferroni over the ``ntk_n_compared`` layers; the APJN/kernel ``verdict`` is
unchanged).
"""
from __future__ import annotations

import sys

import numpy as np

from critheory.cli.args import (backend_arguments, bounded_int, common_arguments, dump, params,
                                probes, progress_arguments, progress_enabled, rows, window)
from critheory.cli.args import fmt_number as _f
from critheory.common.limits import MAX_N_BOOT
__all__ = ["register"]



def _note_costly(message, category, filename, lineno, file=None, line=None, _show=None):
    """Show a :class:`SimulationCostWarning` as one ``critheory: note:`` line on stderr, at once
    (before the run it announces); any other warning as Python would."""
    from critheory.simulation.cost import SimulationCostWarning

    if issubclass(category, SimulationCostWarning):
        print(f"critheory: note: {message}", file=sys.stderr, flush=True)
    else:
        _show(message, category, filename, lineno, file, line)


def _run(args):
    import functools
    import warnings

    from critheory.validation.compare import compare, plot_comparison

    if args.plot:
        from critheory.io.plots import check_path

        check_path(args.plot)  # refused before a (possibly long) simulation
    with warnings.catch_warnings():
        warnings.showwarning = functools.partial(_note_costly, _show=warnings.showwarning)
        return _compare(args, compare, plot_comparison)


def _compare(args, compare, plot_comparison):
    c = compare(args.activation, args.weight_var, args.bias_var, width=args.width,
                depth=args.depth, seeds=args.seeds, arch=args.arch, mu=args.mu, l0=args.l0,
                probes=probes(args.probes), seed=args.seed, q0=args.q0,
                window=window(args.window), progress=progress_enabled(args),
                params=params(args.param), alpha=args.alpha, n_boot=args.n_boot,
                backend=args.backend, dtype=args.dtype)
    if args.plot:
        plot_comparison(c, args.plot)
    return c


def _header(c) -> str:
    s = c.simulation
    from critheory.blocks.registry import residual_names

    mu = f", mu = {s.mu:g}" if s.arch in residual_names() else ""
    mode = "exact APJN" if s.probes is None else f"Hutchinson APJN ({s.probes} probes)"
    return (f"{s.activation} ({s.arch}{mu}) at weight_var = {s.weight_var:g}, bias_var = "
            f"{s.bias_var:g}, q0 = {s.q0:g}\nwidth {s.width}, depth {s.depth}, {s.n_seeds} "
            f"networks, l0 = {s.l0}, {mode}, {s.method} sampling, seed {s.seed}, "
            f"{s.elapsed:.2f} s"
            + ("" if (s.backend, s.dtype) == ("numpy", "float64") else
               f", backend {s.backend} {s.dtype}"))


def _fit_lines(c) -> list[str]:
    out = []
    f = c.fit
    if f is not None:
        ci = (f"  ({100 * f.ci_level:g}% CI [{_f(f.ci_low, '.4f')}, {_f(f.ci_high, '.4f')}])"
              if np.isfinite(f.ci_low) else "")
        # the signed slope and its interval (the fit's ci_low/ci_high are the slope's)
        out.append(f"APJN power-law fit over l in [{f.window[0]}, {f.window[1]}]: "
                   f"J ~ l^{_f(f.slope, '.4f')} +- {_f(f.stderr, '.4f')}{ci}")
    if c.theory_exponent is not None:
        # printed as -slope, not as the exponent, so that a zero slope keeps printing "-0"
        out.append(f"theory: J ~ l^{_f(c.theory_slope, '.6g')}, exponent "
                   f"{_f(-c.theory_slope, '.6g')} in J ~ l^(-exponent)  "
                   f"({c.theory_exponent_source})")
    else:
        out.append(f"theory: no power law ({c.theory_exponent_source})")
    if c.theory_window_slope is not None and c.window is not None:
        out.append(f"infinite-width slope over [{c.window[0]}, {c.window[1]}]: "
                   f"{_f(c.theory_window_slope, '.4f')}")
    return out


def _table(c, with_z: bool) -> list[str]:
    s = c.simulation
    jm, js, jt, jz = s.apjn_mean, s.apjn_stderr, c.apjn_theory, c.apjn_z
    km, ks, kt, kz = s.kernel_mean, s.kernel_stderr, c.kernel_theory, c.kernel_z
    um, us, ut, uz = s.kurtosis_mean, s.kurtosis_stderr, c.kurtosis_theory, c.kurtosis_z
    ok = c.kurtosis_meaningful
    zc = f"{'z':>7}" if with_z else ""
    lines = [f"{'l':>6} {'J sim':>12} {'+- s.e.':>10} {'J theory':>12}{zc} "
             f"{'K sim':>12} {'+- s.e.':>10} {'K theory':>12}{zc} "
             f"{'kurt sim':>10} {'+- s.e.':>8} {'kurt 1/n':>9}{zc}"]
    for l in rows(s.depth, s.l0):
        k = l - 1
        if l >= s.l0:
            i = l - s.l0
            j = f"{_f(jm[i]):>12} {_f(js[i], '.3g'):>10} {_f(jt[i]):>12}"
            if with_z:
                j += f"{_f(jz[i], '.2f'):>7}"
        else:
            j = f"{'-':>12} {'-':>10} {'-':>12}" + (f"{'-':>7}" if with_z else "")
        kk = f"{_f(km[k]):>12} {_f(ks[k], '.3g'):>10} {_f(kt[k]):>12}"
        if with_z:
            kk += f"{_f(kz[k], '.2f'):>7}"
        uu = f"{_f(um[k], '.4g'):>10} {_f(us[k], '.3g'):>8} {_f(ut[k], '.4g'):>9}"
        if with_z:
            # a z-score outside the regime of the 1/n expansion is shown in parentheses
            z = _f(uz[k], '.2f')
            uu += f"{z if ok[k] or z == '-' else '(' + z + ')':>7}"
        lines.append(f"{l:>6} {j} {kk} {uu}")
    return lines


def _finite_width_lines(c, with_verdict: bool) -> list[str]:
    s = c.simulation
    out = [f"kurtosis vs the finite-width theory at width {s.width}: {c.kurtosis_regime}"]
    if with_verdict:
        zs = [(abs(z), l) for z, l, ok in zip(c.kurtosis_z, c.layers, c.kurtosis_meaningful)
              if ok and np.isfinite(z)]
        extra = f"; largest kurtosis |z| = {max(zs)[0]:.2f} at l = {max(zs)[1]}" if zs else ""
        out.append(f"finite-width verdict (kurtosis and K + K1/n at the meaningful layers, "
                   f"not part of the verdict below): {c.finite_width_verdict} "
                   f"(z_crit = {_f(c.finite_width_z_crit, '.3f')} over "
                   f"{c.finite_width_n_compared} comparisons{extra})")
    sd, se = s.log_apjn_std[-1], s.log_apjn_std_stderr[-1]
    q = s.log_apjn_quantiles[:, -1]
    out.append(f"spread of log J^({s.l0},{s.depth}) across networks: std {_f(sd, '.4g')} +- "
               f"{_f(se, '.2g')} (10%/50%/90% quantiles {_f(q[0], '.4g')} / {_f(q[1], '.4g')}"
               f" / {_f(q[2], '.4g')})")
    return out


def _cmd_simulate(args) -> int:
    from critheory.cli import transformer
    from critheory.cli.ntk import ntk_check, ntk_columns, ntk_lines

    net = transformer.token_network(args)
    if net is not None:
        return transformer.simulate(args, net)

    ntk_check(args)  # an NTK measurement over its budget is refused before any work
    c = _run(args)
    ntk = ntk_columns(args) if getattr(args, "ntk", False) else None
    if args.json:
        dump({**c.to_dict(), **(ntk or {})})
        return 0
    print(_header(c))
    print("\n".join(_table(c, with_z=False)))
    print("\n".join(_fit_lines(c)))
    print("\n".join(_finite_width_lines(c, with_verdict=False)))
    if ntk is not None:
        print("\n".join(ntk_lines(ntk)))
    for n in c.notes:
        print(f"note: {n}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _cmd_validate(args) -> int:
    from critheory.cli import transformer
    from critheory.cli.ntk import ntk_check, ntk_lines, ntk_measure

    net = transformer.token_network(args)
    if net is not None:
        return transformer.validate(args, net)

    ntk_check(args)  # an NTK measurement over its budget is refused before any work
    c = _run(args)
    ntk = None
    if getattr(args, "ntk", False):
        ntk, cmp = ntk_measure(args)
        ntk.update(cmp.verdict(args.alpha).to_dict())
    if args.json:
        dump({**c.to_dict(), **(ntk or {})})
        return 0
    print(_header(c))
    print("\n".join(_table(c, with_z=True)))
    print("\n".join(_fit_lines(c)))
    chk = c.exponent_check
    if chk["theory_in_ci"] is not None or chk["window_slope_in_ci"] is not None:
        parts = []
        if chk["theory_in_ci"] is not None:
            parts.append(f"theory exponent {'inside' if chk['theory_in_ci'] else 'outside'}")
        if chk["window_slope_in_ci"] is not None:
            parts.append(f"window slope {'inside' if chk['window_slope_in_ci'] else 'outside'}")
        print("exponent check: " + ", ".join(parts) + " the fit's confidence interval")
    zs = [(abs(z), "J", int(l)) for z, l in zip(c.apjn_z, c.depths) if np.isfinite(z)]
    zs += [(abs(z), "K", int(l)) for z, l in zip(c.kernel_z, c.layers) if np.isfinite(z)]
    if zs:
        zmax, q, l = max(zs)
        print(f"largest |z| = {zmax:.2f} ({q} at l = {l}); Bonferroni threshold z_crit = "
              f"{_f(c.z_crit, '.3f')} over {c.n_compared} comparisons (alpha = {c.alpha:g}; "
              f"Student-t with {_f(c.dof, 'g')} degrees of freedom, widened where the "
              "per-network values are skewed)")
    print("\n".join(_finite_width_lines(c, with_verdict=True)))
    print(f"verdict: {c.verdict} (APJN {c.apjn_verdict}, kernel {c.kernel_verdict})")
    if ntk is not None:
        print("\n".join(ntk_lines(ntk)))
    for n in c.notes:
        print(f"note: {n}")
    if c.verdict == "inconsistent" and not any("O(l/N)" in n for n in c.notes):
        print("note: finite-width corrections of relative size O(l/N) accumulate with depth; "
              "compare at depth << width before suspecting the theory")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _options(p) -> None:
    common_arguments(p, plot=False, tokens=True)
    p.add_argument("--weight-var", type=float, required=True, help="weight variance sigma_w^2")
    p.add_argument("--bias-var", type=float, required=True, help="bias variance sigma_b^2")
    p.add_argument("--width", type=int, required=True, help="width N")
    p.add_argument("--depth", type=int, required=True, help="number of layers L")
    p.add_argument("--seeds", type=int, default=8,
                   help="number of independent networks S (default 8)")
    p.add_argument("--l0", type=int, default=1, help="reference layer of J^(l0,l) (default 1)")
    p.add_argument("--probes", default=None, metavar="P|exact",
                   help="Hutchinson probes per network, or 'exact' (default: exact while its "
                        "estimated time is within 2.5 s, then as many probes as fit a time "
                        "falling from there, at least 8; the output says which; an exact APJN "
                        "estimated past 5 s is announced on stderr)")
    p.add_argument("--seed", type=int, default=0, help="root random seed (default 0)")
    p.add_argument("--q0", type=float, default=1.0, help="input norm |x|^2/N (default 1)")
    p.add_argument("--window", metavar="LO:HI",
                   help="depth window of the power-law fit (default: last half of l >= l0+1)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="family-wise level of the verdict (default 0.01)")
    p.add_argument("--n-boot", type=bounded_int(0, MAX_N_BOOT, "--n-boot"), default=1000,
                   help=f"bootstrap replicates of the fit (default 1000, at most {MAX_N_BOOT})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")
    backend_arguments(p)
    progress_arguments(p)


def register(sub) -> None:
    """Add ``simulate`` and ``validate`` to an argparse sub-parser collection."""
    from critheory.cli.ntk import ntk_arguments
    from critheory.cli.transformer import token_arguments

    s = sub.add_parser("simulate", help="finite-width simulation of K^l and the APJN, with the "
                                        "infinite-width theory alongside")
    _options(s)
    ntk_arguments(s)
    token_arguments(s)
    s.set_defaults(func=_cmd_simulate)
    v = sub.add_parser("validate", help="theory vs simulation: per-depth z-scores and a verdict")
    _options(v)
    ntk_arguments(v)
    token_arguments(v)
    v.set_defaults(func=_cmd_validate)
