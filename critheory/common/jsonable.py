"""One converter of results to JSON-safe Python values.

Examples
--------
>>> import numpy as np
>>> from critheory.common.jsonable import jsonable
>>> jsonable({"a": np.array([1.0, np.nan]), 2: (np.int64(3), np.float32(0.5), np.inf)})
{'a': [1.0, None], '2': [3, 0.5, None]}
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["jsonable", "finite_or_none"]


def jsonable(obj: Any) -> Any:
    """``obj`` with every part made JSON-safe, recursively.

    * NaN and ±inf (Python or numpy floats) become ``None`` (JSON ``null``);
    * numpy scalars become Python ``bool``/``int``/``float``, numpy arrays nested lists;
    * tuples (and lists) become lists, dict keys strings (``str(key)``);
    * ``None``, strings and anything else pass through unchanged.

    Other real numbers (``fractions.Fraction``, sympy numbers) become ``int`` or ``float``.
    The result is accepted by ``json.dumps(..., allow_nan=False)`` when ``obj`` holds only
    numbers, strings, None, arrays, lists, tuples and dicts.
    """
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def finite_or_none(x) -> float | None:
    """``float(x)``, or ``None`` for ``None``, NaN and ±inf (one number of a result's JSON).

    >>> finite_or_none(1), finite_or_none(float("nan")), finite_or_none(None)
    (1.0, None, None)
    """
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
