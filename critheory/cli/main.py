"""Command-line interface: ``critheory moments ACTIVATION --var K [--json]``."""
from __future__ import annotations

# Start-up: this module builds the parser of every sub-command; it imports nothing heavy
# (numpy, sympy, scipy, matplotlib are imported by the commands that use them, inside their
# functions), so that ``critheory --help`` and argument errors are fast.
import argparse
import os
import sys

from critheory.errors import CritheoryError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2) for every sub-parser."""

    def error(self, message):  # noqa: D102
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


DESCRIPTION = """\
critheory: criticality of wide and deep neural networks at initialization, and from there
finite width, the neural tangent kernel, learning-rate recipes, shaped networks, Jacobian
spectra and transformers. Give an activation (a zoo name such as tanh, relu, gelu, or any
formula in x) and get its fixed points, susceptibilities, order/chaos boundary, universality
class and exponents, with error bars; simulate finite networks beside the theory.

examples:
  critheory analyze tanh                 class, critical points, exponents, what to set
  critheory point gelu --weight-var 2 --bias-var 0.1 --json
  critheory validate tanh --weight-var 1 --bias-var 0 --width 64 --depth 20 --seeds 8
  critheory recipe gelu --width 512 --depth 32 --q0 1 --torch
"""

#: help of options that several commands share, where a command gives none of its own
_SHARED_HELP = {
    "--json": "machine-readable output (JSON) instead of text",
    "--csv": "comma-separated values instead of text",
    "--weight-var": "weight variance sigma_w^2 (per fan-in: W ~ N(0, sigma_w^2/fan_in))",
    "--bias-var": "bias variance sigma_b^2",
    "--depth": "depth L (number of layers)",
    "--width": "width n of the finite networks",
    "--seed": "root seed of the random numbers (the same seed gives the same networks)",
    "--seeds": "number of independent networks",
    "--l0": "first layer l0 of the APJN J^(l0,l) (default 1)",
    "--no-progress": "no progress bar on stderr",
    "--param": "value of a parameter of the activation (repeatable)",
    "--optimizer": "optimizer the learning rates are for (default sgd)",
    "--weight-range": "sigma_w^2 range of the phase diagram (default 0.25:4)",
    "--bias-range": "sigma_b^2 range of the phase diagram (default 0:1)",
    "--mu-range": "residual-strength range of the weight-mu plane (default 0:1)",
    "--weights": "weight matrices: gaussian (default) or Haar-orthogonal",
    "--shape": "shaping of the activation: relu (c+/c-) or smooth (a)",
    "--inputs": "number of inputs whose covariance the SDE follows (default 2)",
    "--paths": "Monte Carlo paths of the SDE (default 20000)",
    "--method": "em: the SDE by Monte Carlo; pde: the Fokker-Planck equation of the "
                "correlation (relu shaping)",
}


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """Give every option of every sub-command a help text (the shared ones above where the
    command has none of its own)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_help(sub)
        elif not action.help and action.option_strings:
            for opt in action.option_strings:
                if opt in _SHARED_HELP:
                    action.help = _SHARED_HELP[opt]
                    break


def build_parser() -> argparse.ArgumentParser:
    import critheory

    p = _Parser(prog="critheory", description=DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"critheory {critheory.__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    from critheory.cli.moments import register as register_moments

    register_moments(sub)
    from critheory.cli.theory import register

    register(sub)
    try:
        from critheory.cli.simulation import register as register_sim
    except ImportError:  # pragma: no cover - simulator commands not installed
        register_sim = None
    if register_sim is not None:
        register_sim(sub)
    from critheory.cli.finitewidth import register as register_finite_width

    register_finite_width(sub)
    from critheory.cli.bayes import register as register_bayes

    register_bayes(sub)
    from critheory.cli.train import register as register_train

    register_train(sub)
    from critheory.cli.spectrum import register as register_spectrum

    register_spectrum(sub)
    from critheory.cli.ntk import register as register_ntk

    register_ntk(sub)
    from critheory.cli.recipe import register as register_recipe

    register_recipe(sub)
    from critheory.cli.shaped import register as register_shaped

    register_shaped(sub)
    from critheory.cli.torch_apjn import register as register_torch_apjn

    register_torch_apjn(sub)
    from critheory.cli.sweep import register as register_sweep

    register_sweep(sub)
    _fill_help(p)
    return p


def _fill_zoo_cache(args) -> None:
    """Derive and store, once per machine, the zoo-cache entry of the zoo activation(s) this
    command uses (see :mod:`critheory.activation.cache`): later runs need no sympy. Only
    zoo names with default parameters; one line on standard error if the folder cannot be
    written (the command then takes the live path, with the same results)."""
    name = getattr(args, "activation", None)
    if not isinstance(name, str) or getattr(args, "param", None):
        return
    from critheory.activation import cache

    if cache.DISABLED:
        return
    from critheory.activation.zoo import ZOO

    names = [n.strip().lower() for n in name.split(",")]
    if not any(n in ZOO and cache.entry(n) is None for n in names):
        return
    from critheory.expectations import build_zoo_cache

    try:
        build_zoo_cache.ensure(names)
    except (OSError, RuntimeError) as exc:
        print(f"critheory: note: the zoo cache could not be written ({exc}); start-up stays"
              " slow (set CRITHEORY_CACHE_DIR to a writable folder)", file=sys.stderr)


def _check_mu(args) -> None:
    """``--mu`` only where the architecture has a residual strength (residual architectures
    and transformers), finite and >= 0; its default 1 filled in here (parsers default to None
    so that a value given with an architecture that ignores it is refused, not dropped)."""
    if not hasattr(args, "mu"):
        return
    if args.mu is None:
        args.mu = 1.0
        return
    from critheory.blocks.blocks import check_mu
    from critheory.blocks.registry import REGISTRY, canonical

    check_mu(args.mu)
    arch = getattr(args, "arch", None)
    try:
        residual = arch is None or REGISTRY[canonical(arch)].residual
    except CritheoryError:
        residual = True                       # names outside the registry: the command refuses
    if not residual:
        raise CritheoryError(f"--mu applies to residual architectures only (--arch {arch} has "
                             "no residual strength)")


def _run_json(args) -> int:
    """Run a command with ``--json`` and print its JSON with the self-description of
    :func:`critheory.io.jsonout.describe_json` (version, command, activation, arch, inputs)."""
    import contextlib
    import io

    from critheory.io.jsonout import describe_json

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = args.func(args)
    sys.stdout.write(describe_json(buf.getvalue(), vars(args)))
    return rc


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_mu(args)
        _fill_zoo_cache(args)
        # no blanket silencing of numpy here: the library handles (and documents) the overflows
        # it expects, so a warning that reaches the command line is one a user should see
        if getattr(args, "json", False):
            return _run_json(args)
        return args.func(args)
    except CritheoryError as exc:
        print(f"critheory: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a closed reader (e.g. head)
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("critheory: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback on the command line
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(f"critheory: internal error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
