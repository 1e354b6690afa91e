"""Sub-command ``bayes``: Bayesian inference with a finite network — the Gaussian-process
posterior, its 1/n correction, and (with ``--simulate``) the exact posterior of finite networks
beside them.

Registered on the parser of :mod:`critheory.cli.main`::

    critheory bayes ACTIVATION --weight-var X --bias-var Y --depth L --width N
        (--inputs 'x1;x2;...' | --inputs-file FILE) --train-targets 'y1,...' [--noise S]
        [--arch A --mu M] [--param NAME=VALUE] [--simulate --seeds K [--seed SEED]]
        [--json] [--plot FILE]

Inputs are vectors of one dimension n0, comma-separated, separated by ``;`` (or the rows of a
text file: numbers separated by commas or spaces, ``#`` comments). The first
``len(train-targets)`` inputs are the training set, the others the test inputs. ``--noise`` is
the observation noise **variance** σ_ε² (default 0).

JSON output:

``kernel``                  K^L over all inputs (infinite width)
``kernel_correction``       K^{(1),L}: E[z_α z_β] = K + K^{(1)}/n + O(1/n²)
``kernel_nlo``              K^L + K^{(1),L}/n at the width n
``vertex``                  V^L_(α1α2)(α3α4) as nested lists (m × m × m × m)
``posterior_mean_gp``       posterior mean on the test inputs, Gaussian process (n = ∞)
``posterior_mean_nlo``      the same to first order in 1/n
``posterior_cov_gp``        posterior covariance on the test inputs (n = ∞)
``posterior_cov_nlo``       the same to first order in 1/n
``representation_shift``    E[Ĝ^L | y] − E[Ĝ^L] over all inputs (MLP; null for residual units)
``train``, ``test``         the indices of the training and test inputs
``correction_ratio``        the 1/n correction against the leading order on the test inputs
                            (above 0.5: a warning on stderr, the expansion does not hold)
with ``--simulate``:
``measured_posterior_mean``, ``measured_posterior_stderr``  the importance-weighted posterior
                            of ``--seeds`` finite networks of width n (last layer exact)
``measured_posterior_cov``, ``measured_posterior_cov_stderr``
``effective_sample_size``   (Σw)²/Σw² of the importance weights
``simulation``              z-scores and verdicts of the GP and NLO answers against the
                            measurement (Student-t, ESS − 1 degrees of freedom, Bonferroni),
                            the measured and predicted 1/n shift of the mean, and the measured
                            representation shift against the predicted one
"""
from __future__ import annotations

import json
import sys
import warnings

import numpy as np

from critheory.cli.args import SEED, bounded_int, common_arguments, finite, params, preflight
from critheory.common.limits import (MAX_DEPTH_DATA, MAX_INPUTS_FILE_BYTES, MAX_SEEDS_CLI,
                                     MAX_WIDTH_FINITE_WIDTH)
from critheory.errors import InvalidArgumentError

__all__ = ["register", "parse_inputs", "parse_targets", "read_inputs_file"]

def _numbers(text: str, what: str) -> list[float]:
    out = []
    for tok in text.replace(",", " ").split():
        try:
            v = float(tok)
        except ValueError:
            raise InvalidArgumentError(f"{what}: {tok!r} is not a number") from None
        if not np.isfinite(v):
            raise InvalidArgumentError(f"{what}: {tok!r} is not finite")
        out.append(v)
    return out


def _matrix(rows: list[list[float]], what: str) -> np.ndarray:
    if not rows:
        raise InvalidArgumentError(f"{what}: no inputs")
    dims = {len(r) for r in rows}
    if len(dims) != 1 or 0 in dims:
        raise InvalidArgumentError(f"{what}: every input must have the same dimension n0 >= 1 "
                                   f"(got dimensions {sorted(dims)})")
    return np.array(rows, dtype=float)


def parse_inputs(text: str) -> np.ndarray:
    """``'x1;x2;...'``, each a comma-separated vector, as an ``(m, n0)`` array.

    >>> parse_inputs("1,0; 0.5,0.5").tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    rows = [_numbers(part, "--inputs") for part in text.split(";")]
    return _matrix(rows, "--inputs")


def read_inputs_file(path: str) -> np.ndarray:
    """The rows of a text file (numbers separated by commas or spaces; ``#`` comments)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_INPUTS_FILE_BYTES + 1)
    except OSError as e:
        raise InvalidArgumentError(f"--inputs-file: cannot read {path!r} ({e.strerror})") from None
    if len(data) > MAX_INPUTS_FILE_BYTES:
        raise InvalidArgumentError(f"--inputs-file: {path!r} is larger than "
                                   f"{MAX_INPUTS_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"--inputs-file: {path!r} is not a text file") from None
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append(_numbers(line, f"--inputs-file {path}"))
    return _matrix(rows, f"--inputs-file {path}")


def parse_targets(text: str) -> np.ndarray:
    """``'y1,y2,...'`` as a float array.

    >>> parse_targets("0.5, -1").tolist()
    [0.5, -1.0]
    """
    v = _numbers(text, "--train-targets")
    if not v:
        raise InvalidArgumentError("--train-targets: no targets")
    return np.array(v)


def inputs_and_targets(args) -> tuple[np.ndarray, np.ndarray]:
    """The inputs (``--inputs`` or ``--inputs-file``, exactly one) and ``--train-targets``,
    with at least one test input after the training set."""
    if (args.inputs is None) == (args.inputs_file is None):
        raise InvalidArgumentError("give the inputs with exactly one of --inputs and "
                                   "--inputs-file")
    x = parse_inputs(args.inputs) if args.inputs is not None else read_inputs_file(
        args.inputs_file)
    y = parse_targets(args.train_targets)
    if y.size >= x.shape[0]:
        raise InvalidArgumentError(f"{y.size} targets for {x.shape[0]} inputs: the first "
                                   "len(targets) inputs are the training set and at least one "
                                   "test input must follow")
    return x, y


def _cmd_bayes(args) -> int:
    from critheory.common.jsonable import jsonable

    x, y = inputs_and_targets(args)
    if not args.noise >= 0:
        raise InvalidArgumentError(f"--noise is the noise variance and must be >= 0, got "
                                   f"{args.noise:g}")

    def budget():
        from critheory.common.limits import MAX_FINITE_WIDTH_WORK
        from critheory.simulation.bayes import bayes_work

        w = bayes_work(args.seeds, args.depth, args.width, x.shape[0], x.shape[1])
        if w > MAX_FINITE_WIDTH_WORK:
            raise InvalidArgumentError(
                f"--simulate: {args.seeds} networks x depth {args.depth} x width {args.width} "
                f"is {w:.3g} units of work, beyond the budget {MAX_FINITE_WIDTH_WORK:.0e}: "
                "fewer --seeds, a smaller width or depth")

    preflight(args, budget)
    from critheory.activation import Activation
    from critheory.theory.bayes.network import ExpansionWarning, bayes_posterior
    from critheory.theory.meanfield.maps import architecture

    act = Activation.get(args.activation, params(args.param))
    arch = architecture(args.arch, act, args.mu)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExpansionWarning)
        b = bayes_posterior(arch, args.weight_var, args.bias_var, x, y, args.depth, args.width,
                            args.noise, progress=not args.json and args.depth >= 200)
    for w in caught:                              # one line each on stderr; JSON: the ratio
        print(f"critheory: warning: {w.message}", file=sys.stderr)
    out = b.to_dict()
    sim = None
    if args.simulate:
        from critheory.simulation.bayes import exact_posterior, output_laws
        from critheory.validation.bayes import compare_metric_shift, compare_theories

        laws = output_laws(arch.network, args.weight_var, args.bias_var, x, args.depth,
                           args.width, args.seeds, args.seed, progress=False)
        meas = exact_posterior(laws, b.train, b.test, b.posterior.targets, args.noise)
        p = b.posterior
        cmp = compare_theories(meas, {"gp": (p.mean_gp, p.cov_gp),
                                      "nlo": (p.mean_nlo, p.cov_nlo)})
        out["measured_posterior_mean"] = meas.mean
        out["measured_posterior_stderr"] = meas.mean_stderr
        out["measured_posterior_cov"] = meas.cov
        out["measured_posterior_cov_stderr"] = meas.cov_stderr
        out["effective_sample_size"] = meas.ess
        sim = {"networks": meas.networks, "seed": args.seed,
               "stderr_method": meas.stderr_method,
               "gp": cmp["comparisons"]["gp"].to_dict(),
               "nlo": cmp["comparisons"]["nlo"].to_dict(),
               "shift": cmp["shifts"]["nlo"]}
        if b.representation_shift is not None:
            sim["representation_shift"] = compare_metric_shift(b.representation_shift.shift,
                                                               meas)
        out["simulation"] = jsonable(sim)
    if args.plot:
        from critheory.io.figures import plot_bayes

        plot_bayes(out, args.plot, title=f"{act.name} ({arch.describe()}), "
                                         f"$\\sigma_w^2$={args.weight_var:g}, "
                                         f"$\\sigma_b^2$={args.bias_var:g}, L={args.depth}, "
                                         f"n={args.width}")
    if args.json:
        print(json.dumps(jsonable(out), indent=2, allow_nan=False))
        return 0
    _print(out, act, arch, args)
    return 0


def _print(out: dict, act, arch, args) -> None:
    print(f"{act.name} ({arch.describe()}) at weight_var = {args.weight_var:g}, "
          f"bias_var = {args.bias_var:g}, depth L = {args.depth}, width n = {args.width}, "
          f"noise variance = {args.noise:g}")
    print(f"training inputs {list(out['train'])}, test inputs {list(out['test'])}")
    sim = out.get("simulation")
    head = f"{'test':>5} {'GP mean':>14} {'NLO mean':>14} {'GP var':>12} {'NLO var':>12}"
    if sim:
        head += f" {'measured':>22} {'z GP':>7} {'z NLO':>7}"
    print(head)
    for i, t in enumerate(out["test"]):
        row = (f"{t:>5} {out['posterior_mean_gp'][i]:>14.8g} {out['posterior_mean_nlo'][i]:>14.8g}"
               f" {out['posterior_cov_gp'][i][i]:>12.6g} {out['posterior_cov_nlo'][i][i]:>12.6g}")
        if sim:
            meas = (f"{out['measured_posterior_mean'][i]:.6g}"
                    f"±{out['measured_posterior_stderr'][i]:.2g}")
            row += (f" {meas:>22} {sim['gp']['mean_z'][i]:>7.2f}"
                    f" {sim['nlo']['mean_z'][i]:>7.2f}")
        print(row)
    if sim:
        print(f"simulation: {sim['networks']} networks, effective sample size "
              f"{out['effective_sample_size']:.0f}; GP: {sim['gp']['verdict']}, "
              f"NLO: {sim['nlo']['verdict']} (alpha = {sim['nlo']['alpha']:g}, Student-t, "
              "Bonferroni)")


def add_data_arguments(p) -> None:
    """``--inputs`` / ``--inputs-file`` and ``--train-targets`` (read by
    :func:`inputs_and_targets`)."""
    p.add_argument("--inputs", default=None, metavar="'x1;x2;...'",
                   help="inputs: comma-separated vectors of one dimension, separated by ';' "
                        "(the first len(train-targets) are the training set)")
    p.add_argument("--inputs-file", default=None, metavar="FILE",
                   help="inputs as the rows of a text file (instead of --inputs)")
    p.add_argument("--train-targets", required=True, metavar="'y1,...'",
                   help="training targets, one per training input")


def register(sub) -> None:
    """Add the ``bayes`` sub-command to an argparse sub-parser collection."""
    p = sub.add_parser("bayes", help="Bayesian inference with a finite network: GP posterior, "
                                     "its 1/n correction, the exact posterior of finite "
                                     "networks")
    common_arguments(p, plot=False)
    p.add_argument("--weight-var", type=finite, required=True)
    p.add_argument("--bias-var", type=finite, required=True)
    p.add_argument("--depth", type=bounded_int(1, MAX_DEPTH_DATA, "depth",
                                               "the several-input recursion is iterated layer "
                                               "by layer"), required=True)
    p.add_argument("--width", type=bounded_int(1, MAX_WIDTH_FINITE_WIDTH, "width"),
                   required=True, help="hidden width n")
    add_data_arguments(p)
    p.add_argument("--noise", type=finite, default=0.0,
                   help="observation noise variance sigma_eps^2 >= 0 (default 0)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE", help="write a figure (.png, .pdf, .svg)")
    p.add_argument("--simulate", action="store_true",
                   help="also the exact posterior of --seeds finite networks of width --width")
    p.add_argument("--seeds", type=bounded_int(2, MAX_SEEDS_CLI, "seeds"), default=20000,
                   help="networks sampled with --simulate (default 20000)")
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(func=_cmd_bayes)
