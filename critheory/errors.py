"""Exception hierarchy of critheory.

Every error that critheory raises on bad input derives from :class:`CritheoryError`, so that
callers (and the command line) can catch one class and print one line.
"""
from __future__ import annotations

__all__ = [
    "CritheoryError",
    "ActivationError",
    "ActivationParseError",
    "FreeSymbolError",
    "DomainError",
    "GrowthError",
    "InvalidVarianceError",
    "InvalidArgumentError",
    "ConvergenceError",
]


class CritheoryError(Exception):
    """Base class of every error raised by critheory.

    Examples
    --------
    >>> import critheory as ct
    >>> try:
    ...     ct.simulate("tanh", 1.0, 0.0, width=0, depth=3)
    ... except ct.CritheoryError as e:
    ...     print(type(e).__name__, "-", e)
    InvalidArgumentError - width must be a whole number >= 1, got 0
    """


class ActivationError(CritheoryError):
    """An activation function could not be built from what was given.

    Examples
    --------
    >>> import critheory as ct
    >>> issubclass(ct.ActivationParseError, ct.ActivationError)
    True
    """


class ActivationParseError(ActivationError):
    """The activation's expression does not parse.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.Activation.get("tanh(")
    Traceback (most recent call last):
        ...
    critheory.errors.ActivationParseError: cannot parse activation 'tanh(': ...
    """


class FreeSymbolError(ActivationError):
    """The expression has a symbol other than ``x`` that was given no value.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.Activation.get("tanh(a*x)")
    Traceback (most recent call last):
        ...
    critheory.errors.FreeSymbolError: activation has free symbol(s) a without a value; ...
    """


class DomainError(ActivationError):
    """The activation is undefined, infinite or complex somewhere on the real line.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.Activation.get("log(x)")
    Traceback (most recent call last):
        ...
    critheory.errors.DomainError: activation log(x) is not defined (or not real) on all of ...
    """


class GrowthError(ActivationError):
    """The integrand grows too fast for its Gaussian expectation to exist.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.Activation.get("exp(x**2)")
    Traceback (most recent call last):
        ...
    critheory.errors.GrowthError: activation grows like exp(c*x**2) or faster: ...
    """


class InvalidVarianceError(CritheoryError, ValueError):
    """A variance or covariance matrix is not finite and positive (semi)definite.

    Examples
    --------
    >>> import critheory as ct
    >>> ct.depth_curves(ct.architecture("mlp", "tanh"), -1.0, 0.0, 10)
    Traceback (most recent call last):
        ...
    critheory.errors.InvalidVarianceError: weight variance must be > 0 (got -1)
    """


class InvalidArgumentError(CritheoryError, ValueError):
    """Any other argument out of its domain (negative hyperparameter, depth < 1, empty grid...).

    Examples
    --------
    >>> import critheory as ct
    >>> ct.network("nonexistent")
    Traceback (most recent call last):
        ...
    critheory.errors.InvalidArgumentError: unknown architecture 'nonexistent'; choose one of mlp, ...
    """


class ConvergenceError(CritheoryError, ArithmeticError):
    """A numerical method did not reach the requested accuracy.

    Examples
    --------
    >>> import critheory as ct
    >>> issubclass(ct.ConvergenceError, ArithmeticError)
    True
    >>> issubclass(ct.ConvergenceError, ct.CritheoryError)
    True
    """
