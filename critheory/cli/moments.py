"""Sub-command ``moments``: the Gaussian moments of an activation at a variance K
(``critheory moments ACTIVATION --var K [--json]``)."""
from __future__ import annotations

from critheory.cli.args import ACTIVATION_HELP, params

__all__ = ["register"]


def _cmd_moments(args) -> int:
    from critheory.activation.symbolic import Activation
    from critheory.expectations.gaussian import moments

    act = Activation.get(args.activation, params(args.param))
    res = moments(act, args.var)
    if args.json:
        import json

        print(json.dumps({"activation": act.name, "expr": act.expr_text, "var": args.var,
                          "moments": {k: {"value": r.value, "error": r.error, "method": r.method}
                                      for k, r in res.items()}}, indent=2))
    else:
        print(f"activation {act.name}: {act.expr_text}   K = {args.var:g}")
        labels = {"phi": "E[phi]", "phi2": "E[phi^2]", "dphi2": "E[phi'^2]",
                  "phi_d2phi": "E[phi phi'']"}
        for k, r in res.items():
            print(f"  {labels[k]:<14} {r.value: .16e}  +- {r.error:.1e}  ({r.method})")
    return 0


def register(sub) -> None:
    """Add the ``moments`` sub-command to an argparse sub-parser collection."""
    m = sub.add_parser("moments", help="Gaussian moments of an activation at variance K")
    m.add_argument("activation", help=ACTIVATION_HELP)
    m.add_argument("--var", type=float, default=1.0, help="variance K of the Gaussian (default 1)")
    m.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="value of a parameter of the activation (repeatable)")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.set_defaults(func=_cmd_moments)
