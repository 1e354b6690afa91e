"""The token route of ``analyze``, ``depth``, ``simulate`` and ``validate``: networks that act
on several tokens or mix them (the registry's token architectures, ``names(tokens=True)``).

Those four commands offer every name of the registry (``names(tokens=None)``), add the token
options with :func:`token_arguments` and ask :func:`token_network` for the network their
arguments name: a network that takes tokens (:func:`critheory.cli.args.takes_tokens`) goes to
the functions here (:func:`analyze`, :func:`depth`, :func:`simulate`, :func:`validate`), any
other to the command's own route::

    --tokens T  --heads H  --mlp-ratio M  [--causal]  --cq --ck --cv --cu  [--logit-scale]
    [--corr C0]  [--points P] [--replicas R] [--tolerance TOL]

The token options are refused (one line, exit 2) with any other architecture, as are heads
that do not divide ``--width``, ``T < 1`` and the like.

``depth --json`` keeps the keys of the other architectures (``depths``, ``kernel`` = mean
diagonal of the token kernel, ``correlation`` = its mean off-diagonal correlation, ``apjn``,
``chi_jacobian``, ``apjn_fit``, ``theory_exponents``, ...) and adds ``kernel_tokens`` (T x T per
depth) with the quasi-Monte Carlo errors (``kernel_tokens_error``, ``kernel_error``,
``apjn_error``), ``chi_blocks`` (one-block APJN per layer and block), ``block_kinds``, ``qmc``
and ``settings``.
"""
from __future__ import annotations

import argparse

import numpy as np

from critheory.cli.args import (bounded_int, dump, finite, nonnegative, params, positive,
                                probes, rows, takes_tokens)
from critheory.cli.args import fmt_number as _f
from critheory.common.limits import (MAX_HEADS_CLI, MAX_QMC_POINTS, MAX_TOKENS,
                                     MAX_TRANSFORMER_WORK, MAX_TRANSFORMER_WORK_CLI)
from critheory.errors import InvalidArgumentError

__all__ = ["token_arguments", "token_network", "TRANSFORMER_OPTIONS", "analyze", "depth",
           "simulate", "validate"]

#: dest names of the token options (refused with other architectures).
TRANSFORMER_OPTIONS = ("tokens", "heads", "mlp_ratio", "causal", "cq", "ck", "cv", "cu",
                       "logit_scale", "points", "replicas", "tolerance", "tcorr")
#: Default depth of the recursion behind ``analyze`` (each layer is a QMC expectation).
ANALYZE_DEPTH = 32


def _points(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a power of 2, got {text!r}") from None
    if v < 2 or v & (v - 1) or v > MAX_QMC_POINTS:
        raise argparse.ArgumentTypeError(f"must be a power of 2 in [2, {MAX_QMC_POINTS}], got {v}")
    return v


def _token_names() -> str:
    from critheory.blocks.registry import names

    return ", ".join(names(tokens=True))


def token_arguments(parser) -> None:
    """Add the token options (group "transformer") to a command's parser."""
    g = parser.add_argument_group(f"transformer (--arch {' | '.join(_token_names().split(', '))})")
    g.add_argument("--tokens", type=bounded_int(1, MAX_TOKENS, "--tokens"), default=None,
                   help="number of tokens T (default 4)")
    g.add_argument("--heads", type=bounded_int(1, MAX_HEADS_CLI, "--heads"), default=None,
                   help="attention heads H; must divide --width (default 1)")
    g.add_argument("--mlp-ratio", type=positive, default=None,
                   help="hidden width of the MLP block / width (default 4)")
    g.add_argument("--causal", action="store_true", default=None, help="causal mask")
    for c, what in (("cq", "query"), ("ck", "key"), ("cv", "value"), ("cu", "output")):
        g.add_argument(f"--{c}", type=nonnegative, default=None,
                       help=f"variance C_{c[1].upper()} of the {what} weights (times 1/n; "
                            "default 1)")
    g.add_argument("--logit-scale", choices=("sqrt", "linear"), default=None,
                   help="logits q.k/sqrt(C) (default) or q.k/C")
    if "--corr" not in parser._option_string_actions:
        g.add_argument("--corr", dest="tcorr", type=finite, default=None,
                       help="pairwise correlation of the input tokens (default 0.5)")
    g.add_argument("--points", type=_points, default=None,
                   help="quasi-Monte Carlo points per randomization (power of 2; default 1024)")
    g.add_argument("--replicas", type=bounded_int(2, 64, "--replicas"), default=None,
                   help="independent scramblings for the error estimate (default 8)")
    g.add_argument("--tolerance", type=positive, default=None,
                   help="largest relative QMC error accepted (escalates --points, then refuses)")


def token_network(args):
    """The network the arguments name when it takes tokens (the token route), else None.

    Built by the registry; the token options are refused (one line) with a network that does
    not take tokens, and ``--ntk`` with one that does (no NTK rules for attention yet).
    """
    from critheory.activation import Activation
    from critheory.blocks.registry import TOKEN_OPTIONS, network

    act = Activation.get(args.activation, params(args.param))
    net = network(args.arch, act, _get(args, "mu", 1.0))
    if not takes_tokens(net):
        given = [o for o in TRANSFORMER_OPTIONS if getattr(args, o, None) is not None]
        if given:
            raise InvalidArgumentError(
                "--" + given[0].replace("tcorr", "corr").replace("_", "-")
                + " applies to --arch " + _token_names().replace(", ", " / ") + " only")
        return None
    if getattr(args, "ntk", False):
        raise InvalidArgumentError(f"--ntk is not available with --arch {net.name}")
    opts = {k: _get(args, k, v) for k, v in TOKEN_OPTIONS.items()}
    opts["causal"] = bool(opts["causal"])
    return network(args.arch, act, _get(args, "mu", 1.0), tokens=_get(args, "tokens", 4),
                   **opts)


# ------------------------------------------------------------------------------ helpers
def _get(args, name, default):
    v = getattr(args, name, None)
    return default if v is None else v


def _cli_budget(net, depth: int, qmc: dict) -> None:
    """Refuse at once a recursion whose attention expectations need more than
    :data:`~critheory.common.limits.MAX_TRANSFORMER_WORK_CLI` multiply-adds (about a minute;
    exact recursions, T = 1 or vanishing logits, cost nothing)."""
    from critheory.theory.transformer.depth import recursion_work

    work = recursion_work(net, depth, qmc["points"], qmc["replicas"])
    if work > MAX_TRANSFORMER_WORK_CLI:
        raise InvalidArgumentError(
            f"this transformer recursion (T = {net.tokens}, depth {depth}, {qmc['points']} "
            f"points x {qmc['replicas']} randomizations) needs more than "
            f"{MAX_TRANSFORMER_WORK_CLI:.0e} multiply-adds of attention expectations, over a "
            "minute: fewer tokens, layers, --points or --replicas (the library allows up to "
            f"{MAX_TRANSFORMER_WORK:.0e})")


def _corr(args) -> float:
    v = getattr(args, "tcorr", None)
    if v is None:
        v = getattr(args, "corr", None)
    return 0.5 if v is None else float(v)


def _qmc(args) -> dict:
    return {"points": _get(args, "points", 1024), "replicas": _get(args, "replicas", 8),
            "tolerance": getattr(args, "tolerance", None)}


def _pm(v, e, spec=".6g") -> str:
    return _f(v, spec) if not e else f"{_f(v, spec)} +- {_f(e, '.2g')}"


def _qmc_line(d) -> str:
    if d.exact:
        return "attention weights deterministic here (T = 1 or vanishing logits): exact"
    return (f"softmax expectations: scrambled Sobol, {d.points} points x {d.replicas} "
            f"randomizations (errors: std over randomizations / sqrt(R))")


def _fit(d):
    from critheory.theory.meanfield.depth import fit_power_law

    L = len(d.depths)
    if L - d.l0 < 10:
        return None
    try:
        return fit_power_law(d.depths[d.l0 - 1:], d.apjn[d.l0 - 1:]).to_dict()
    except InvalidArgumentError:
        return None


# ------------------------------------------------------------------------------ commands
def _plot_depth(theory, sim, path, title: str) -> str:
    from critheory.io.figures import plot_token_depth

    return plot_token_depth(theory, sim, path, title)


def depth(args, net) -> int:
    """``depth`` of a network that takes tokens."""
    from critheory.theory.transformer.depth import one_token_exponent, transformer_depth

    if args.plot:
        from critheory.io.plots import check_path

        check_path(args.plot)
    _cli_budget(net, args.depth, _qmc(args))
    d = transformer_depth(net, args.weight_var, args.bias_var, args.depth, l0=args.l0,
                          q0=args.q0, corr=_corr(args), seed=0, **_qmc(args))
    out = d.to_dict()
    out["apjn_fit"] = _fit(d)
    # the one-input correlation map (c*, chi_c, xi_c of `depth` for the other architectures)
    # is not defined through attention: the token kernel above replaces it
    for k in ("q_star", "c_star", "chi_c", "chi_c_error", "xi_c"):
        out.setdefault(k, None)
    zeta = one_token_exponent(net, args.weight_var, args.bias_var) if net.tokens == 1 else None
    out["theory_exponents"] = (None if zeta is None else
                               {"kernel": -1.0, "apjn": -zeta, "class": "everywhere-critical"})
    if args.plot:
        _plot_depth(d, None, args.plot, net.describe())
    if args.json:
        dump(out)
        return 0
    print(f"{net.activation.name}, {net.describe()} at weight_var = {args.weight_var:g}, "
          f"bias_var = {args.bias_var:g}; input tokens q0 = {args.q0:g}, corr = {_corr(args):g}")
    print(_qmc_line(d))
    print(f"{'l':>6} {'K^l (mean diag)':>26} {'c^l':>10} {'J^(l0,l)':>26} {'chi (layer)':>12}")
    for l in rows(args.depth, args.l0):
        i = l - 1
        c = "-" if d.correlation is None else _f(d.correlation[i], ".6f")
        print(f"{l:>6} {_pm(d.kernel[i], d.kernel_error[i]):>26} {c:>10} "
              f"{_pm(d.apjn[i], d.apjn_error[i]):>26} {_f(d.chi_jacobian[i], '.6g'):>12}")
    if out["apjn_fit"]:
        f = out["apjn_fit"]
        print(f"APJN power-law fit over l in {f['window']}: J ~ l^{f['slope']:.4f}")
    if zeta is not None:
        print(f"one-token theory: K^l grows linearly, J ~ l^{zeta:.6g}")
    print(f"token kernel G^{args.depth}:")
    for row in d.kernel_tokens[-1]:
        print("  " + " ".join(f"{v:12.6g}" for v in row))
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def analyze(args, net) -> int:
    """``analyze`` of a network that takes tokens."""
    from critheory.theory.transformer.depth import one_token_exponent, transformer_depth

    sw, sb = args.weight_var, args.ref_bias_var
    L = max(12, min(args.verify_depth, ANALYZE_DEPTH)) if args.verify_depth > 0 else 12
    _cli_budget(net, L, _qmc(args))
    d = transformer_depth(net, sw, sb, L, corr=_corr(args), **_qmc(args))
    crit = net.everywhere_critical
    zeta1 = one_token_exponent(net, sw, sb) if crit else None
    fit = _fit(d)
    i = L - 1
    local = float(np.log(d.apjn[i] / d.apjn[i - 1]) / np.log(L / (L - 1)))
    if crit:
        cls = "everywhere-critical"
        desc = ("every (weight_var, bias_var) is critical: LayerNorm feeds every branch a "
                "unit-variance input, each layer adds an O(1) amount to K^l (K^l ~ l) and "
                "multiplies J by 1 + O(1/K^l), so chi -> 1 and J^(l0,l) ~ l^zeta")
        exps = {"kernel": -1.0, "apjn": None if fit is None else -fit["slope"],
                "kernel_exact": "-1", "apjn_exact": None,
                "convention": "K^l ~ l^(-kernel), J^(l0,l) ~ l^(-apjn)",
                "laws": {"kernel": "K^l = K^1 + a (l - 1) + o(l)",
                         "apjn": "J^(l0,l) ~ l^zeta, zeta = lim l (chi^l - 1)",
                         "one_token_zeta": zeta1,
                         "one_token_apjn": ("zeta = (C_U C_V + sw^2 E[phi'^2]) / "
                                            "(C_U C_V + sw E[phi^2] + sb), E at variance "
                                            "sw + sb"),
                         "reference_point": {"weight_var": sw, "bias_var": sb}},
                "fit": {"depth": L, "window": None if fit is None else fit["window"],
                        "apjn": None if fit is None else -fit["slope"],
                        "apjn_local": -local,
                        "method": "slope of log J (token-kernel recursion) vs log l"}}
    else:
        cls = "not everywhere-critical"
        desc = ("post-LN renormalizes the kernel after every block; pre-LN with mu != 1 has a "
                "kernel fixed point (mu < 1) or exponential growth (mu > 1): chi^l tends to a "
                "constant chi*, J^(l0,l) ~ chi*^l (exponential unless chi* = 1)")
        exps = {"kernel": None, "apjn": None, "kernel_exact": None, "apjn_exact": None,
                "convention": "J^(l0,l) ~ chi*^l", "laws": {"chi_star": d.chi_jacobian[i],
                                                           "reference_point": {
                                                               "weight_var": sw,
                                                               "bias_var": sb}},
                "fit": {"depth": L, "chi_last": d.chi_jacobian[i], "apjn_local": -local}}
    r = {"activation": net.activation.name, "expr": net.activation.expr_text,
         "arch": net.name, "mu": _get(args, "mu", 1.0), "universality_class": cls,
         "critical_points": [], "exponents": exps, "line": [],
         "critical_set": {"kind": "everywhere" if crit else "none", "description": desc},
         "note": ("transformer: token-kernel recursion at the reference point (weight_var, "
                  "bias_var), depth %d; " % L) + _qmc_line(d),
         "weight_var": sw, "bias_var": sb, "tokens": net.tokens,
         "chi_blocks": {"block_kinds": list(d.block_kinds),
                        "layer_2": d.chi_blocks[1].tolist() if L > 1 else None,
                        f"layer_{L}": d.chi_blocks[i].tolist()},
         "chi_blocks_error": {"layer_2": d.chi_blocks_error[1].tolist() if L > 1 else None,
                              f"layer_{L}": d.chi_blocks_error[i].tolist()},
         "chi_jacobian": {"layer_2": d.chi_jacobian[1], f"layer_{L}": d.chi_jacobian[i]},
         "chi_jacobian_error": {"layer_2": d.chi_jacobian_error[1],
                                f"layer_{L}": d.chi_jacobian_error[i]},
         "kernel_tokens": d.kernel_tokens[i].tolist(),
         "kernel_tokens_error": d.kernel_tokens_error[i].tolist(),
         "settings": d.settings, "qmc": {"points": d.points, "replicas": d.replicas,
                                         "exact": d.exact}}
    if args.plot:
        _plot_depth(d, None, args.plot, net.describe())
    if args.json:
        dump(r)
        return 0
    print(f"activation  {r['activation']}: {r['expr']}")
    print(f"architecture {net.describe()}")
    print(f"universality class: {cls}")
    print(f"critical set: {r['critical_set']['kind']}: {desc}")
    print(f"reference point weight_var = {sw:g}, bias_var = {sb:g}; " + _qmc_line(d))
    print(f"one-block APJN (chi) of {', '.join(d.block_kinds)}:")
    for l in sorted({2, L} if L > 1 else {1}):
        print(f"  layer {l:>4}: " + "  ".join(_pm(v, e) for v, e in
                                             zip(d.chi_blocks[l - 1], d.chi_blocks_error[l - 1]))
              + f"   (layer chi {_pm(d.chi_jacobian[l - 1], d.chi_jacobian_error[l - 1])})")
    if crit:
        if fit is not None:
            print(f"APJN: J ~ l^{fit['slope']:.4f} (fit over {fit['window']}), local slope "
                  f"{local:.4f} at l = {L}")
        if zeta1 is not None:
            print(f"one-token closed form: J ~ l^{zeta1:.6g}"
                  + ("" if net.tokens == 1 else " (T = 1 reference)"))
    else:
        print(f"chi at l = {L}: {_f(d.chi_jacobian[i], '.6g')} (J grows/decays "
              f"exponentially unless it is 1)")
    print(f"token kernel G^{L}:")
    for row, err in zip(d.kernel_tokens[i], d.kernel_tokens_error[i]):
        print("  " + " ".join(f"{_pm(v, e):>22}" for v, e in zip(row, err)))
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _compare(args, net):
    from critheory.validation.transformer import compare_transformer

    if args.plot:
        from critheory.io.plots import check_path

        check_path(args.plot)
    n_probes = probes(args.probes)
    if args.width % net.attention.heads:
        raise InvalidArgumentError(f"--heads ({net.attention.heads}) must divide --width "
                                   f"({args.width})")
    _cli_budget(net, args.depth, _qmc(args))
    c = compare_transformer(net, args.weight_var, args.bias_var, width=args.width,
                            depth=args.depth, seeds=args.seeds, l0=args.l0, q0=args.q0,
                            corr=_corr(args), probes=n_probes, seed=args.seed, alpha=args.alpha,
                            **_qmc(args))
    if args.plot:
        _plot_depth(c.theory, c.simulation, args.plot, net.describe())
    return net, c


def _table(c, with_z: bool) -> list[str]:
    th, s = c.theory, c.simulation
    km, ks = s.kernel.mean(axis=0), s.kernel.std(axis=0, ddof=1) / np.sqrt(s.n_seeds) \
        if s.n_seeds > 1 else np.full(s.depth, np.nan)
    zc = f"{'z':>7}" if with_z else ""
    out = [f"{'l':>5} {'K sim':>12} {'+- s.e.':>9} {'K theory':>12} {'max|z| G':>9} "
           f"{'J sim':>12} {'+- s.e.':>9} {'J theory':>12}{zc}"]
    for l in rows(s.depth, s.l0):
        i = l - 1
        kz = c.kernel_z[i]
        kzs = _f(np.nanmax(np.abs(kz)), ".2f") if np.isfinite(kz).any() else "-"
        line = (f"{l:>5} {_f(km[i]):>12} {_f(ks[i], '.3g'):>9} {_f(th.kernel[i]):>12} "
                f"{kzs if with_z else '':>9} {_f(s.apjn_mean[i]):>12} "
                f"{_f(s.apjn_stderr[i], '.3g'):>9} {_f(th.apjn[i]):>12}")
        if with_z:
            line += f"{_f(c.apjn_z[i], '.2f'):>7}"
        out.append(line)
    return out


def _header(net, c) -> str:
    s, th = c.simulation, c.theory
    mode = "exact APJN" if s.probes is None else f"Hutchinson APJN ({s.probes} probes)"
    return (f"{s.activation}, {net.describe()} at weight_var = {s.weight_var:g}, bias_var = "
            f"{s.bias_var:g}\nwidth {s.width} (C = {s.width // s.heads} channels per head), "
            f"depth {s.depth}, {s.n_seeds} networks, l0 = {s.l0}, {mode}, seed {s.seed}, "
            f"{s.elapsed:.2f} s\ntheory: " + _qmc_line(th))


def simulate(args, net) -> int:
    """``simulate`` of a network that takes tokens."""
    net, c = _compare(args, net)
    if args.json:
        dump(c.to_dict())
        return 0
    print(_header(net, c))
    print("\n".join(_table(c, with_z=False)))
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def validate(args, net) -> int:
    """``validate`` of a network that takes tokens (z-scores, Bonferroni verdict)."""
    net, c = _compare(args, net)
    if args.json:
        dump(c.to_dict())
        return 0
    print(_header(net, c))
    print("\n".join(_table(c, with_z=True)))
    print(f"largest |z| = {_f(c.max_abs_z, '.2f')}; Bonferroni threshold z_crit = "
          f"{_f(c.z_crit, '.3f')} over {c.n_compared} comparisons (alpha = {c.alpha:g}; "
          f"token-kernel entries t <= s and APJN)")
    rel = c.relative_deviation[-1]
    print(f"finite width: (K sim - K theory)/K theory = {_f(rel, '.3g')} and (J sim - J "
          f"theory)/J theory = {_f(c.apjn_relative_deviation[-1], '.3g')} at l = "
          f"{c.simulation.depth} (corrections O(1/n), O(1/C) from non-Gaussian logits and "
          f"O(1/H) from the few random heads)")
    print(f"verdict: {c.verdict} (token kernel {c.kernel_verdict}, APJN {c.apjn_verdict})")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
