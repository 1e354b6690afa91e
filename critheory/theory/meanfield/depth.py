"""Depth curves at infinite width: K^l, the correlation c^l of two inputs, and the APJN.

Iterates an architecture's maps from the input layer: ``K^1 = σ_b² + σ_w² q0`` with
``q0 = |x|²/N_0``, ``K^{l+1} = f(K^l)``; two inputs of correlation ``c^0`` give
``K^1_{12} = σ_b² + σ_w² c^0 q0`` and the covariance map; the APJN is
``J^{l0,l} = Π_{l'=l0}^{l-1} χ_J(K^{l'})`` with ``J^{l0,l0} = 1`` [DHG eq. (4)].

Also fits power laws to the computed curves (least squares in log–log over a depth window), which
is how the analytic depth laws of :mod:`critheory.theory.meanfield.criticality` are checked.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.meanfield.depth import depth_curves
>>> d = depth_curves(architecture("mlp", "relu"), 2.0, 0.0, depth=5)
>>> d.kernel.tolist(), d.apjn.tolist()
([2.0, 2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0])
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from critheory.errors import InvalidArgumentError
from critheory.common.checks import check_hyper
from critheory.theory.meanfield.maps import LayerMaps, check_arch
from critheory.theory.meanfield.tabulated import TabulatedMap
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["DepthCurves", "depth_curves", "fit_power_law", "PowerLawFit"]

_RUNAWAY = 1e150


@dataclass(frozen=True)
class DepthCurves:
    """Infinite-width depth profiles.

    Attributes
    ----------
    depths : ndarray
        1..L.
    kernel : ndarray
        K^l (NaN after a runaway beyond 1e150).
    correlation : ndarray or None
        c^l of two inputs (None if not requested).
    chi_jacobian : ndarray
        χ_J(K^l).
    apjn : ndarray
        J^{l0,l} for l >= l0 (NaN for l < l0).
    runaway_depth : int or None
        First depth where K exceeded 1e150.

    Examples
    --------
    >>> import critheory as ct
    >>> d = ct.depth_curves(ct.architecture("mlp", "relu"), 2.0, 0.0, 10)
    >>> isinstance(d, ct.DepthCurves), float(d.kernel[-1])
    (True, 2.0)
    """

    __repr__ = short_repr

    weight_var: float
    bias_var: float
    l0: int
    depths: np.ndarray
    kernel: np.ndarray
    correlation: np.ndarray | None
    chi_jacobian: np.ndarray
    apjn: np.ndarray
    runaway_depth: int | None = None

    def to_dict(self) -> dict:
        def lst(a):
            return None if a is None else [float(v) if np.isfinite(v) else None for v in a]

        return {"weight_var": self.weight_var, "bias_var": self.bias_var, "l0": self.l0,
                "depths": self.depths.tolist(), "kernel": lst(self.kernel),
                "correlation": lst(self.correlation), "chi_jacobian": lst(self.chi_jacobian),
                "apjn": lst(self.apjn), "runaway_depth": self.runaway_depth}


#: Largest depth iterated layer by layer (10^7 layers: ~8 minutes, 80 MB per stored curve).
MAX_DEPTH = limits.MAX_DEPTH_MEANFIELD


def depth_curves(arch: LayerMaps, weight_var: float, bias_var: float, depth: int, *,
                 l0: int = 1, q0: float = 1.0, input_correlation: float | None = 0.5,
                 progress: bool = False, tabulate: bool = True) -> DepthCurves:
    """K^l, c^l and J^{l0,l} for l = 1..depth (see module docstring).

    Parameters
    ----------
    arch : LayerMaps
    weight_var, bias_var : float
    depth : int
        Number of layers L >= 1.
    l0 : int
        Reference layer of the APJN, 1 <= l0 <= L.
    q0 : float
        Input norm ``|x|²/N_0`` > 0.
    input_correlation : float or None
        Correlation of the two inputs in [-1, 1]; None skips the two-input curve.
    progress : bool
        Print progress to stderr.
    tabulate : bool
        Evaluate the kernel map and χ_J from verified Chebyshev tables
        (:class:`critheory.theory.meanfield.tabulated.TabulatedMap`, relative error <= 1e-12) instead of
        quadrature at every layer; the two-input map is always evaluated directly.

    Examples
    --------
    >>> import critheory as ct
    >>> d = ct.depth_curves(ct.architecture("mlp", "tanh"), 1.0, 0.0, 100)
    >>> d.apjn.shape, round(float(ct.fit_power_law(d.depths, d.apjn, (50, 100)).slope), 2)
    ((100,), -1.02)
    """
    arch = check_arch(arch)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    try:
        L, l0 = int(depth), int(l0)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError("depth and l0 must be integers") from None
    if L != depth or L < 1:
        raise InvalidArgumentError(f"depth must be an integer >= 1, got {depth}")
    if L > MAX_DEPTH:
        raise InvalidArgumentError(
            f"depth {L} is beyond the supported {MAX_DEPTH:.0e} layers (the recursion is iterated"
            " layer by layer, ~50 us each); use the asymptotic laws of `critheory analyze`")
    if l0 != int(l0) or not 1 <= l0 <= L:
        raise InvalidArgumentError(f"l0 must satisfy 1 <= l0 <= depth, got l0 = {l0}, depth = {L}")
    if not (np.isfinite(q0) and q0 > 0):
        raise InvalidArgumentError(f"input norm q0 must be finite and > 0, got {q0}")
    if input_correlation is not None and not -1.0 <= input_correlation <= 1.0:
        raise InvalidArgumentError("input correlation must lie in [-1, 1]")
    K = np.full(L, np.nan)
    chi = np.full(L, np.nan)
    corr = None if input_correlation is None else np.full(L, np.nan)
    table = TabulatedMap(arch, sw, sb) if tabulate and L > 64 else None
    k = float(arch.input_kernel(q0, sw, sb))
    k12 = None if corr is None else sb + sw * input_correlation * q0
    runaway = None
    step = max(1, L // 50)
    for i in range(L):
        if not np.isfinite(k) or k > _RUNAWAY:
            runaway = i + 1
            break
        if k <= 0.0:  # collapsed onto the K* = 0 fixed point (underflow)
            K[i:] = 0.0
            break
        K[i] = k
        if table is not None:
            knext, chi[i] = table.both(k)
        else:
            kn, ch = arch.kernel_and_chi(k, sw, sb)
            knext, chi[i] = float(kn), float(ch)
        if corr is not None:
            corr[i] = np.clip(k12 / k, -1.0, 1.0)
        if i + 1 < L:
            if corr is not None:
                c = np.clip(k12 / k, -1.0, 1.0)
                _, k12n, _ = arch.covariance_map(k, c * k, k, sw, sb)
                k12 = float(k12n)
            k = knext
        if progress and (i % step == 0 or i == L - 1):
            print(f"\rdepth {i + 1}/{L}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    J = np.full(L, np.nan)
    J[l0 - 1] = 1.0
    if L > l0:
        J[l0:] = np.cumprod(chi[l0 - 1:L - 1])
    return DepthCurves(sw, sb, l0, np.arange(1, L + 1), K, corr, chi, J, runaway)


@dataclass(frozen=True)
class PowerLawFit:
    """y ≈ A l^{slope} by least squares of log y on log l over ``window``.

    ``slope`` and ``local_slope`` are signed (``d log y / d log l``): the decay exponent of the
    reports (``J ∝ l^(-exponent)``) is ``-slope``.
    """

    __repr__ = short_repr

    slope: float
    amplitude: float
    window: tuple[int, int]
    local_slope: float

    def to_dict(self) -> dict:
        return {"slope": self.slope, "amplitude": self.amplitude, "window": list(self.window),
                "local_slope": self.local_slope}


def fit_power_law(depths, values, window: tuple[int, int] | None = None) -> PowerLawFit:
    """Least-squares slope of log|y| against log l over the window (default: last 90 %), and the
    local slope d log|y|/d log l over the last 10 % of the window.

    A thin use of :func:`critheory.common.powerlaw.fit_line` (points where ``|y|`` is not finite
    and positive are left out; at least 3 must remain).

    Examples
    --------
    >>> import critheory as ct
    >>> import numpy as np
    >>> l = np.arange(1, 101)
    >>> round(ct.fit_power_law(l, 3.0 / l ** 2).slope, 12)
    -2.0
    """
    from critheory.common.powerlaw import fit_line, tail_window

    if np.size(depths) == 0 or np.size(depths) != np.size(values):
        raise InvalidArgumentError(f"need depths and values of the same, non-zero length (got "
                                   f"{np.size(depths)} and {np.size(values)})")
    if window is None:
        window = tail_window(depths)
    f = fit_line(depths, np.abs(np.asarray(values, dtype=float)), window, min_points=3)
    with np.errstate(over="ignore"):  # an exponential decay fitted in log-log: A = inf
        amplitude = float(np.exp(f.intercept))
    return PowerLawFit(f.slope, amplitude, (int(window[0]), int(window[1])), f.local_slope)
