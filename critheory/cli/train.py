"""Sub-command ``train``: what a network trained by gradient descent on MSE predicts at infinite
width, with (``--simulate``) trained ensembles of finite networks beside it.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory train ACTIVATION --weight-var X --bias-var Y --depth L
        (--inputs 'x1;x2;...' | --inputs-file FILE) --train-targets 'y1,...'
        [--lambda-b B] [--lambda-w W] [--lr ETA] [--steps T] [--width N]
        [--simulate --width N --seeds K [--seed S] [--tol TOL] [--max-steps M]] [--json]

The first ``len(train-targets)`` inputs are the training set, the rest the test inputs (the
parsing of ``bayes``). ``--lr`` is the global step η multiplying the rates ``λ_b``, ``λ_W``
(default: half the stable limit, ``η = 1/λ_max(Θ_AA)``); ``--steps`` the number of full-batch
steps (default: convergence; with ``--simulate`` the ensemble then runs until every network has
converged or ``--max-steps``).

JSON output:

``prediction_kernel``       the ensemble mean of the trained outputs on the test inputs,
                            Θ_BA Θ_AA⁻¹ [I − (I − ηΘ_AA)^t] y (kernel regression with the NTK at
                            convergence)
``prediction_variance``     their variance (the diagonal of ``prediction_covariance``)
``prediction_covariance``   K_BB − M K_AB − K_BA Mᵀ + M K_AA Mᵀ
``kernel``, ``ntk``         K^L and Θ^L on all inputs
``eta``, ``eta_max``, ``steps``  the step used, 2/λ_max(Θ_AA), the steps (null: convergence)
``train``, ``test``         the indices of the training and test inputs
with ``--width N``:
``prediction_nlo``          the ensemble mean at width N to order 1/N, ``prediction_kernel +
                            m1/N`` (PDLT ch. ∞; :mod:`critheory.theory.ntk.trained_nlo`: the
                            NTK's mean shift and variance, the dNTK and the ddNTK, at this η
                            and number of steps); null with ``prediction_nlo_note`` (one line)
                            where it is not defined: a kinked activation (ReLU), N <= L
``prediction_nlo_coefficient``, ``prediction_nlo_terms``  ``m1``, and ``m1`` by source
                            (``ntk_mean``, ``ntk_variance``, ``dntk``, ``ddntk``)
``depth_to_width``          L/N (the expansion needs L/N << 1)
with ``--simulate``:
``measured_prediction_mean``, ``measured_prediction_stderr``  over ``--seeds`` trained networks
``measured_prediction_cov``, ``measured_prediction_cov_stderr``
``converged``               every network's residual fell below ``tol`` × its initial one
``simulation``              z-scores and verdicts (Student-t, S − 1 degrees of freedom,
                            Bonferroni) of the trained outputs and of the initial NTK
"""
from __future__ import annotations

import json

from critheory.cli.args import (SEED, bounded_int, common_arguments, finite, nonnegative,
                                params, positive, preflight)
from critheory.cli.bayes import add_data_arguments, inputs_and_targets
from critheory.common.limits import MAX_DEPTH_DATA, MAX_SEEDS_CLI, MAX_WIDTH_CLI
from critheory.errors import InvalidArgumentError

__all__ = ["register"]

#: step budget of ``--simulate`` without ``--steps``
DEFAULT_MAX_STEPS = 2000


def _cmd_train(args) -> int:
    from critheory.common.jsonable import jsonable

    x, y = inputs_and_targets(args)
    for opt in ("tol", "max_steps"):
        if getattr(args, opt) is not None and not args.simulate:
            raise InvalidArgumentError(f"--{opt.replace('_', '-')} needs --simulate")

    def budget():
        from critheory.blocks.registry import as_network
        from critheory.common.limits import MAX_TRAIN_WORK
        from critheory.simulation.train import network_ops, parameter_count, train_work

        net = as_network(args.arch, args.activation, args.mu, params(args.param))
        P = parameter_count(network_ops(net, args.depth, args.width, x.shape[1]))
        steps = args.steps if args.steps is not None else (args.max_steps or DEFAULT_MAX_STEPS)
        w = train_work(args.seeds, steps, P, x.shape[0], y.size)
        if w > MAX_TRAIN_WORK:
            raise InvalidArgumentError(
                f"--simulate: {args.seeds} networks x {steps} steps x {P} parameters is "
                f"{w:.3g} multiply-adds, beyond the budget {MAX_TRAIN_WORK:.0e}: fewer "
                "--seeds or --steps (or --max-steps), a smaller width or depth")

    preflight(args, budget)
    from critheory.activation import Activation
    from critheory.theory.meanfield.maps import architecture
    from critheory.theory.ntk.trained import trained_prediction

    act = Activation.get(args.activation, params(args.param))
    arch = architecture(args.arch, act, args.mu)
    kw = dict(lambda_b=args.lambda_b, lambda_w=args.lambda_w)
    conv = trained_prediction(arch, args.weight_var, args.bias_var, x, y, args.depth, **kw)
    eta = 0.5 * conv.eta_max if args.lr is None else args.lr
    if args.steps is None and args.lr is None:
        p = conv                                 # η = η_max/2 is stable: nothing to check
    elif args.steps is None:
        p = trained_prediction(arch, args.weight_var, args.bias_var, x, y, args.depth, eta=eta,
                               **kw)
    else:
        p = trained_prediction(arch, args.weight_var, args.bias_var, x, y, args.depth, eta=eta,
                               steps=args.steps, **kw)
    out = p.to_dict()
    out["eta"] = eta
    if args.width is not None:
        out["width"] = args.width
        try:
            q = trained_prediction(arch, args.weight_var, args.bias_var, x, y, args.depth,
                                   eta=eta, steps=args.steps, width=args.width, **kw)
        except InvalidArgumentError as exc:
            out["prediction_nlo_note"] = str(exc)
        else:
            d = q.to_dict()
            for k in ("prediction_nlo", "prediction_nlo_coefficient", "prediction_nlo_terms",
                      "depth_to_width"):
                out[k] = d[k]
    if args.simulate:
        from critheory.simulation.train import DEFAULT_TOL, train_ensemble
        from critheory.validation.train import compare_trained

        e = train_ensemble(arch.network, args.weight_var, args.bias_var, x, y, args.depth,
                           args.width, args.seeds, eta=eta, steps=args.steps,
                           tol=DEFAULT_TOL if args.tol is None else args.tol,
                           max_steps=(DEFAULT_MAX_STEPS if args.max_steps is None
                                      else args.max_steps),
                           seed=args.seed, progress=False, **kw)
        d = e.to_dict()
        for k in ("measured_prediction_mean", "measured_prediction_stderr",
                  "measured_prediction_cov", "measured_prediction_cov_stderr", "converged"):
            out[k] = d[k]
        sim = {"networks": e.networks, "seed": e.seed, "steps_run": e.steps, "tol": e.tol,
               "converged_fraction": d["converged_fraction"],
               "max_relative_residual": d["max_relative_residual"]}
        if args.steps is None and not e.converged.all():
            sim["comparison"] = None
            sim["note"] = (f"{int((~e.converged).sum())} of {e.networks} networks did not "
                           f"converge within {e.steps} steps: no comparison with the converged "
                           "prediction")
        else:
            c = compare_trained(p, e)
            sim["comparison"] = {k: v for k, v in c.to_dict().items() if k in (
                "mean_z", "cov_z", "verdict", "ntk_measured", "ntk_stderr", "ntk_z",
                "ntk_verdict", "ntk_mean_nlo", "ntk_mean_nlo_z", "ntk_variance_theory",
                "ntk_variance_measured", "ntk_variance_stderr", "ntk_variance_z", "z_crit",
                "dof", "alpha", "reference", "max_abs_z")}
        out["simulation"] = jsonable(sim)
    if args.json:
        print(json.dumps(jsonable(out), indent=2, allow_nan=False))
        return 0
    _print(out, act, arch, args)
    return 0


def _print(out: dict, act, arch, args) -> None:
    when = "convergence" if out["steps"] is None else f"{out['steps']} steps"
    print(f"{act.name} ({arch.describe()}) at weight_var = {args.weight_var:g}, "
          f"bias_var = {args.bias_var:g}, depth L = {args.depth}: gradient descent on MSE, "
          f"eta = {out['eta']:.6g} (stable below {out['eta_max']:.6g}), {when}, infinite width")
    print(f"training inputs {list(out['train'])}, test inputs {list(out['test'])}")
    sim = out.get("simulation")
    head = f"{'test':>5} {'mean':>14} {'variance':>14}"
    cmp = sim and sim.get("comparison")
    if sim:
        head += f" {'measured mean':>24} {'measured var':>14}"
    if cmp:
        head += f" {'z mean':>7} {'z var':>7}"
    print(head)
    for i, t in enumerate(out["test"]):
        row = f"{t:>5} {out['prediction_kernel'][i]:>14.8g} {out['prediction_variance'][i]:>14.6g}"
        if sim:
            meas = (f"{out['measured_prediction_mean'][i]:.6g}"
                    f"±{out['measured_prediction_stderr'][i]:.2g}")
            row += f" {meas:>24} {out['measured_prediction_cov'][i][i]:>14.6g}"
        if cmp:
            row += f" {cmp['mean_z'][i]:>7.2f} {cmp['cov_z'][i][i]:>7.2f}"
        print(row)
    if out.get("prediction_nlo") is not None:
        vals = ", ".join(f"{v:.8g}" for v in out["prediction_nlo"])
        print(f"mean to order 1/n at width {args.width} (L/n = {out['depth_to_width']:.3g}): "
              f"{vals}")
    elif out.get("prediction_nlo_note"):
        print(f"no order-1/n mean: {out['prediction_nlo_note']}")
    if sim:
        print(f"simulation: {sim['networks']} networks of width {args.width}, "
              f"{sim['steps_run']} steps, converged: {out['converged']} "
              f"({100 * sim['converged_fraction']:.0f} %)")
        if cmp:
            print(f"trained outputs: {cmp['verdict']}; initial NTK: {cmp['ntk_verdict']} "
                  f"(alpha = {cmp['alpha']:g}, Student-t, Bonferroni)")
        else:
            print(sim["note"])


def register(sub) -> None:
    """Add the ``train`` sub-command to an argparse sub-parser collection."""
    p = sub.add_parser("train", help="what a network trained by gradient descent predicts "
                                     "(infinite width), beside trained finite ensembles")
    common_arguments(p, plot=False)
    p.add_argument("--weight-var", type=finite, required=True)
    p.add_argument("--bias-var", type=finite, required=True)
    p.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_DATA, "depth",
                                               "every pair of inputs is iterated layer by "
                                               "layer"), required=True)
    add_data_arguments(p)
    p.add_argument("--lambda-b", type=nonnegative, default=1.0,
                   help="bias learning rate lambda_b (default 1)")
    p.add_argument("--lambda-w", type=nonnegative, default=1.0,
                   help="weight learning rate lambda_W, per fan-in (default 1)")
    p.add_argument("--lr", type=positive, default=None, metavar="ETA",
                   help="global step eta (default 1/lambda_max of the training NTK, half the "
                        "stable limit)")
    p.add_argument("--steps", type=bounded_int(0, 10 ** 9, "steps"), default=None,
                   help="gradient-descent steps (default: convergence)")
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_CLI, "width"), default=None,
                   help="hidden width n of the simulated networks")
    p.add_argument("--json", action="store_true")
    p.add_argument("--simulate", action="store_true",
                   help="also train --seeds finite networks of width --width")
    p.add_argument("--seeds", type=bounded_int(2, MAX_SEEDS_CLI, "seeds"), default=1000,
                   help="networks trained with --simulate (default 1000)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--tol", type=positive, default=None,
                   help="convergence tolerance on |z_A - y|/|z_A(0) - y| (default 1e-6; "
                        "--simulate)")
    p.add_argument("--max-steps", type=bounded_int(1, 10 ** 6, "max-steps"), default=None,
                   help="step budget of --simulate without --steps (default 2000)")
    p.set_defaults(func=_cmd_train)
