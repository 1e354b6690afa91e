"""Small helpers shared by the simulator modules: argument checks and JSON conversion."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from critheory.errors import InvalidArgumentError, InvalidVarianceError

__all__ = ["check_int", "check_layers", "check_variance", "check_real", "json_safe", "readonly"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (bools and non-integral numbers are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
                and float(value).is_integer():
            value = int(value)
        else:
            raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_layers(width: Any, depth: Any, l0: Any) -> tuple[int, int, int]:
    """(width, depth, l0) as ints with width, depth >= 1 and 1 <= l0 <= depth."""
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    l0 = check_int("l0", l0, 1)
    if l0 > depth:
        raise InvalidArgumentError(f"l0 must be <= depth ({depth}), got {l0}")
    return width, depth, l0


def check_real(name: str, value: Any) -> float:
    """``value`` as a finite float."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}")
    return v


def check_variance(name: str, value: Any) -> float:
    """``value`` as a finite float ``>= 0``; raises :class:`InvalidVarianceError` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidVarianceError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidVarianceError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise InvalidVarianceError(f"{name} must be finite and >= 0, got {value!r}")
    return v


def json_safe(value: Any) -> Any:
    """Numbers, arrays, tuples and dicts as JSON-safe Python values (None for NaN and ±inf)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def readonly(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` as a read-only float/int array (None passes through)."""
    if a is None:
        return None
    a = np.array(a)
    a.flags.writeable = False
    return a
