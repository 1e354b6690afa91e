"""Argument checks shared by the theory, the simulator and the validation layer.

One rule for the hyperparameters everywhere:

* weight variance ``σ_w²``: finite and ``> 0`` (``>= 0`` with ``allow_zero_weight=True``, for a
  caller that legitimately needs the degenerate network whose layers ignore their input);
* bias variance ``σ_b²``: finite and ``>= 0``.

:func:`check_hyper` applies it to arrays (the theory's vectorized maps),
:func:`check_weight_var` / :func:`check_bias_var` to single numbers, with messages that name the
argument. Bad variances raise :class:`~critheory.errors.InvalidVarianceError`; other bad
arguments :class:`~critheory.errors.InvalidArgumentError`. Booleans and strings are not
numbers here.

Examples
--------
>>> from critheory.common.checks import check_hyper, check_weight_var
>>> sw, sb = check_hyper([1.0, 2.0], 0.0)
>>> sw.tolist(), float(sb)
([1.0, 2.0], 0.0)
>>> check_weight_var(0.0)
Traceback (most recent call last):
...
critheory.errors.InvalidVarianceError: weight_var must be a finite number > 0 (the weight variance sigma_w^2), got 0.0
>>> check_weight_var(0.0, allow_zero_weight=True)
0.0
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from critheory.errors import InvalidArgumentError, InvalidVarianceError

__all__ = ["check_hyper", "check_weight_var", "check_bias_var", "check_nonnegative",
           "check_int", "check_real", "check_layers"]


# ----------------------------------------------------------------------------- the rule
def _weight_ok(sw, allow_zero_weight: bool):
    """Sign part of the weight-variance rule (finiteness is checked separately)."""
    return sw >= 0 if allow_zero_weight else sw > 0


def _bias_ok(sb):
    """Sign part of the bias-variance rule."""
    return sb >= 0


def _weight_bound(allow_zero_weight: bool) -> str:
    return ">= 0" if allow_zero_weight else "> 0"


# ----------------------------------------------------------------------------- arrays
def check_hyper(sw, sb, *, allow_zero_weight: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias variances as float arrays: finite, σ_w² > 0 (or >= 0), σ_b² >= 0.

    Vectorized (any shapes; they are not broadcast against each other here). Raises
    :class:`InvalidVarianceError` (or :class:`InvalidArgumentError` for an empty array) naming
    the first offending value.

    >>> check_hyper(1.0, -0.5)
    Traceback (most recent call last):
    ...
    critheory.errors.InvalidVarianceError: bias variance must be >= 0 (got -0.5)
    """
    try:
        sw = np.asarray(sw, dtype=float)
        sb = np.asarray(sb, dtype=float)
    except (TypeError, ValueError):
        raise InvalidVarianceError("weight and bias variances must be numbers") from None
    if sw.size == 0 or sb.size == 0:
        raise InvalidArgumentError("empty array of weight or bias variances")
    if not (np.all(np.isfinite(sw)) and np.all(np.isfinite(sb))):
        raise InvalidVarianceError("weight and bias variances must be finite")
    bad = ~_bias_ok(sb)
    if np.any(bad):
        raise InvalidVarianceError(f"bias variance must be >= 0 (got {sb[bad].ravel()[0]:g})")
    bad = ~_weight_ok(sw, allow_zero_weight)
    if np.any(bad):
        raise InvalidVarianceError(f"weight variance must be {_weight_bound(allow_zero_weight)} "
                                   f"(got {sw[bad].ravel()[0]:g})")
    return sw, sb


# ----------------------------------------------------------------------------- scalars
def _number(name: str, value: Any, error: type, what: str) -> float:
    """``value`` as a float (not necessarily finite); bools, strings and arrays are refused."""
    if (isinstance(value, (bool, np.bool_, str, bytes)) or value is None
            or np.ndim(value) != 0):
        raise error(f"{name} must be {what}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{name} must be {what}, got {value!r}") from None


def check_weight_var(value: Any, name: str = "weight_var", *,
                     allow_zero_weight: bool = False) -> float:
    """A single weight variance σ_w² as a float: finite and > 0 (>= 0 with
    ``allow_zero_weight``); :class:`InvalidVarianceError` otherwise.

    >>> check_weight_var(2)
    2.0
    """
    what = (f"a finite number {_weight_bound(allow_zero_weight)} "
            "(the weight variance sigma_w^2)")
    v = _number(name, value, InvalidVarianceError, what)
    if not (math.isfinite(v) and _weight_ok(v, allow_zero_weight)):
        raise InvalidVarianceError(f"{name} must be {what}, got {value!r}")
    return v


def check_bias_var(value: Any, name: str = "bias_var") -> float:
    """A single bias variance σ_b² as a float: finite and >= 0; :class:`InvalidVarianceError`
    otherwise.

    >>> check_bias_var(0)
    0.0
    """
    what = "a finite number >= 0 (the bias variance sigma_b^2)"
    v = _number(name, value, InvalidVarianceError, what)
    if not (math.isfinite(v) and _bias_ok(v)):
        raise InvalidVarianceError(f"{name} must be {what}, got {value!r}")
    return v


def check_nonnegative(name: str, value: Any, *,
                      error: type = InvalidArgumentError) -> float:
    """``value`` as a finite float ``>= 0`` (input norms, epsilons); raises ``error``."""
    what = "a finite number >= 0"
    v = _number(name, value, error, what)
    if not (math.isfinite(v) and v >= 0):
        raise error(f"{name} must be {what}, got {value!r}")
    return v


def check_real(name: str, value: Any) -> float:
    """``value`` as a finite float; :class:`InvalidArgumentError` otherwise.

    >>> check_real("mu", 0.5)
    0.5
    """
    v = _number(name, value, InvalidArgumentError, "a finite number")
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r}")
    return v


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; integral floats (``3.0``) are accepted, bools and
    other numbers refused with :class:`InvalidArgumentError`.

    >>> check_int("depth", 3.0, 1)
    3
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                and float(value).is_integer()):
            value = int(value)
        else:
            raise InvalidArgumentError(
                f"{name} must be a whole number >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be a whole number >= {minimum}, got {value}")
    return value


def check_layers(width: Any, depth: Any, l0: Any) -> tuple[int, int, int]:
    """(width, depth, l0) as ints with width, depth >= 1 and 1 <= l0 <= depth.

    >>> check_layers(8, 4, 2)
    (8, 4, 2)
    """
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    l0 = check_int("l0", l0, 1)
    if l0 > depth:
        raise InvalidArgumentError(
            f"l0 must be between 1 and depth ({depth}), got {l0}: the APJN J^(l0,l) starts "
            "at one of the network's layers")
    return width, depth, l0


def check_per_layer(name: str, value: Any, depth: int) -> np.ndarray:
    """A number >= 0 or ``depth`` such numbers (one per layer) as a float array ``(depth,)``.

    >>> check_per_layer("lambda_b", 0.5, 3).tolist()
    [0.5, 0.5, 0.5]
    """
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number or {depth} numbers") from None
    if arr.ndim == 0:
        arr = np.full(depth, float(arr))
    if arr.shape != (depth,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidArgumentError(f"{name} must be a number >= 0 or {depth} such numbers "
                                   "(one per layer)")
    return arr


def check_targets(targets: Any, m: int) -> np.ndarray:
    """Training targets for m inputs (the first ``len(targets)`` are the training set, at least
    one test input after them) as a float array.

    >>> check_targets([0.5, -1], 3).tolist()
    [0.5, -1.0]
    """
    try:
        y = np.atleast_1d(np.array(targets, dtype=float))
    except (TypeError, ValueError):
        raise InvalidArgumentError("targets must be numbers") from None
    if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        raise InvalidArgumentError("targets must be a non-empty list of finite numbers (one "
                                   "per training input)")
    if y.size >= m:
        raise InvalidArgumentError(f"{y.size} targets for {m} inputs: the first len(targets) "
                                   "inputs are the training set and at least one test input "
                                   "must follow")
    return y
