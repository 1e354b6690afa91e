"""Shared utilities at the base of the package: argument checks, JSON conversion, power-law fits.

Depends on numpy and :mod:`critheory.errors` only, so that every other sub-package (the theory,
the simulator, validation, io, the command line) may import it without breaking the one-way
import order.

Modules
-------
``checks``     argument checks: integers, reals, layer counts, weight/bias variances
``jsonable``   :func:`~critheory.common.jsonable.jsonable`: any result as JSON-safe Python values
``powerlaw``   least-squares core of the power-law (and exponential) fits of depth curves
"""
from .checks import (check_bias_var, check_hyper, check_int, check_layers, check_nonnegative,
                     check_real, check_weight_var)
from .jsonable import jsonable
from .powerlaw import LineFit, fit_line, local_slope, ols, tail_window, window_mask

__all__ = ["check_hyper", "check_weight_var", "check_bias_var", "check_nonnegative",
           "check_int", "check_real", "check_layers", "jsonable", "ols", "window_mask",
           "tail_window", "local_slope", "fit_line", "LineFit"]
