"""Gaussian expectations ``E_K[g(h)]``, ``h ~ N(0, K)``, of functions of an activation.

``gaussian``      :func:`expect`, :func:`expect2`, :func:`moments` (the public entry points)
``integrands``    named integrands (``phi2``, ``dphi2``, ...) and their analysis
``closed_forms``  exact results where they exist
``de_quadrature`` double-exponential rules with error estimates
``quadrature``    composite Gauss-Legendre fallback and 2-D rules
``reference``     mpmath references at arbitrary precision
"""
from critheory.expectations.gaussian import Expectation, expect, expect2, moments

__all__ = ["Expectation", "expect", "expect2", "moments"]
