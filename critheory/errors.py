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
    """Base class of every error raised by critheory."""


class ActivationError(CritheoryError):
    """An activation function could not be built from what was given."""


class ActivationParseError(ActivationError):
    """The activation's expression does not parse."""


class FreeSymbolError(ActivationError):
    """The expression has a symbol other than ``x`` that was given no value."""


class DomainError(ActivationError):
    """The activation is undefined, infinite or complex somewhere on the real line."""


class GrowthError(ActivationError):
    """The integrand grows too fast for its Gaussian expectation to exist."""


class InvalidVarianceError(CritheoryError, ValueError):
    """A variance or covariance matrix is not finite and positive (semi)definite."""


class InvalidArgumentError(CritheoryError, ValueError):
    """Any other argument out of its domain (negative hyperparameter, depth < 1, empty grid...)."""


class ConvergenceError(CritheoryError, ArithmeticError):
    """A numerical method did not reach the requested accuracy."""
