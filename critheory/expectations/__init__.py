"""Gaussian expectations ``E_K[g(h)]``, ``h ~ N(0, K)``, of functions of an activation.

``gaussian``      :func:`expect`, :func:`expect2`, :func:`moments` (the public entry points)
``integrands``    named integrands (``phi2``, ``dphi2``, ...) and their analysis
``closed_forms``  exact results where they exist
``de_quadrature`` double-exponential rules with error estimates
``quadrature``    composite Gauss-Legendre fallback and 2-D rules
``reference``     mpmath references at arbitrary precision
``multipoint``    :func:`expect_product` (3-4 correlated coordinates), :func:`four_point`, :func:`two_point`
"""
from critheory.expectations.gaussian import Expectation, expect, expect2, moments

__all__ = ["Expectation", "expect", "expect2", "moments", "expect_product", "four_point",
           "two_point"]

_MULTIPOINT = ("expect_product", "four_point", "two_point")


def __getattr__(name: str):
    # multi-point expectations on first use: they need scipy.special, which the single-input
    # commands' start-up does not load
    if name in _MULTIPOINT:
        from critheory.expectations import multipoint

        return getattr(multipoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
