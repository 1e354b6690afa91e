"""Self-describing JSON (issue 26 item 7): every command's JSON output carries the critheory
version, the command, the activation, the architecture and the inputs that determine it.

The command line prints a command's JSON through :func:`describe_json` (in
:func:`critheory.cli.main.main`, for every command at once): the keys

``critheory_version``
    :data:`critheory.__version__`;
``command``
    the sub-command (``point``, ``validate``, ...);
``activation``, ``arch``
    as the command reports them where it does (its own keys are kept), else as given on the
    command line (``arch`` null for commands without one, such as ``moments``);
``inputs``
    every option of the command line that can change the result, by its argparse name
    (output options such as ``--json``, ``--plot``, ``--progress`` left out; defaults filled
    in), so that the JSON alone says how to recompute it

come first; the command's own keys follow unchanged. Output that is not a JSON object (a list,
text) is passed through as it is.

Examples
--------
>>> import json
>>> out = describe_json('{"phase": "ordered"}', {"command": "point", "activation": "tanh",
...                                                 "arch": "mlp", "weight_var": 0.5})
>>> d = json.loads(out)
>>> list(d)[:5], d["inputs"]["weight_var"], d["phase"]
(['critheory_version', 'command', 'activation', 'arch', 'inputs'], 0.5, 'ordered')
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from critheory.common.jsonable import jsonable

__all__ = ["describe_json", "OUTPUT_OPTIONS"]

#: argparse names of options that change how a result is shown, not what it is.
OUTPUT_OPTIONS = frozenset({"func", "json", "csv", "plot", "progress", "command"})


def describe_json(text: str, inputs: Mapping[str, Any]) -> str:
    """``text`` (a command's JSON output) with the self-description keys in front.

    ``inputs``: the parsed command line (``vars(args)``), including ``command``; callables and
    :data:`OUTPUT_OPTIONS` are left out of ``inputs``.
    """
    from critheory import __version__

    try:
        out = json.loads(text)
    except ValueError:
        return text
    if not isinstance(out, dict):
        return text
    given = {k: v for k, v in inputs.items() if k not in OUTPUT_OPTIONS and not callable(v)}
    act = inputs.get("activation", inputs.get("activations"))
    head = {"critheory_version": __version__, "command": inputs.get("command"),
            "activation": out.get("activation", act), "arch": out.get("arch",
                                                                       inputs.get("arch")),
            "inputs": jsonable(given)}
    for k in ("activation", "arch"):
        out.pop(k, None)
    end = "\n" if text.endswith("\n") else ""
    return json.dumps({**head, **out}, indent=2, allow_nan=False) + end
