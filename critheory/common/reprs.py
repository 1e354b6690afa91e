"""Short representations of result objects (issue 26 item 7).

A frozen result dataclass gets ``__repr__ = short_repr``: the dataclass's own representation,
field by field, except that an array, list, tuple or dict of more than :data:`MAX_ITEMS`
items shows its shape or length instead of its items and a long string is cut (a
simulation's repr was 4000 characters). Results that hold only numbers and short fields read
exactly as before.
:func:`dataclass_dict` is the matching ``to_dict`` of a result without one of its own.

Examples
--------
>>> import numpy as np
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class R:
...     name: str
...     values: np.ndarray
...     __repr__ = short_repr
>>> R("a", np.zeros((3, 100)))
R(name='a', values=<array (3, 100) float64>)
>>> R("b", np.array([1.0, 2.0]))
R(name='b', values=array([1., 2.]))
>>> dataclass_dict(R("b", np.array([1.0, np.nan])))
{'name': 'b', 'values': [1.0, None]}
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from critheory.common.jsonable import jsonable

__all__ = ["short_repr", "short_value", "dataclass_dict", "MAX_ITEMS", "MAX_CHARS"]

#: an array, list, tuple or dict with more items than this shows its shape or length
MAX_ITEMS = 8
#: a string longer than this is cut
MAX_CHARS = 48


def short_value(v: Any) -> str:
    """``repr(v)``, or a summary: a long array (``<array (3, 100) float64>``), list, tuple or
    dict (``<list of 40>``) by its shape or length, a string of more than :data:`MAX_CHARS`
    characters cut (``'...…'``); short lists, tuples and dicts item by item."""
    if isinstance(v, np.ndarray) and v.size > MAX_ITEMS:
        return f"<array {v.shape} {v.dtype}>"
    if isinstance(v, (list, tuple, dict)) and len(v) > MAX_ITEMS:
        return f"<{type(v).__name__} of {len(v)}>"
    if isinstance(v, str) and len(v) > MAX_CHARS:
        return repr(v[:MAX_CHARS - 1] + "…")
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {short_value(x)}" for k, x in v.items()) + "}"
    if type(v) in (list, tuple):
        inner = ", ".join(short_value(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
    return repr(v)


def short_repr(self) -> str:
    """The dataclass representation of ``self`` with long values summarized
    (:func:`short_value`) and nested results by their type (``<SimulationResult>``); fields
    with ``repr=False`` are left out, as dataclasses do."""
    def one(v):
        if dataclasses.is_dataclass(v) and type(v).__repr__ is short_repr:
            return f"<{type(v).__qualname__}>"      # a nested result: its own repr says more
        return short_value(v)
    parts = [f"{f.name}={one(getattr(self, f.name))}" for f in dataclasses.fields(self)
             if f.repr]
    return f"{type(self).__qualname__}({', '.join(parts)})"


def dataclass_dict(obj: Any) -> dict:
    """Every field of a dataclass, JSON-safe (:func:`~critheory.common.jsonable.jsonable`);
    nested results by their own ``to_dict`` (or field by field), enums by their value, other
    objects by ``str``."""
    def conv(v):
        if hasattr(v, "to_dict") and callable(v.to_dict):
            return v.to_dict()
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclass_dict(v)
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if v is None or isinstance(v, (str, bool, int, float, np.ndarray, np.generic)):
            return v
        name = getattr(v, "name", None)          # an Activation: by its name
        return name if isinstance(name, str) else str(v)
    return jsonable({f.name: conv(getattr(obj, f.name)) for f in dataclasses.fields(obj)})
