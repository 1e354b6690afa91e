"""One cell of a sweep: the simulation at (activation, σ_w², σ_b²), its fits and the theory.

:func:`run_cell` computes one cell and returns plain numbers; :func:`run_batch`, the task a Dask
worker runs (or the in-process loop), computes a batch of cells one after another with
:func:`run_cell` and returns their numbers as columns (the client writes them to the store in
one region write). A cell's numbers depend on its settings and its seed only
(:func:`~critheory.sweep.spec.cell_seed`), not on the batch it runs in. The measured quantities:

``chi_j``          ``exp(slope)`` of the exponential fit ``J^{1,l} ∝ exp(slope·l)`` of the mean
                   APJN over the fit window: the measured per-layer APJN factor
                   (:func:`critheory.simulation.fits.fit_exponential`)
``chi_j_stderr``   ``chi_j × stderr(slope)`` (bootstrap over the cell's networks)
``exponent``, ``exponent_stderr``   the power-law fit ``J ∝ l^(-exponent)`` over the same window
``chi_j_theory``   χ_J at the fixed point the input flows to
                   (:func:`critheory.theory.meanfield.fixed_points.analyze_point`)
``chi_j_theory_window``  ``exp`` of the OLS slope of the infinite-width ``log J^{1,l}``
                   (:func:`critheory.theory.meanfield.depth.depth_curves`) over the same window:
                   what the measurement estimates at infinite width, also where the kernel has
                   not yet converged to its fixed point (near the critical line)
``chi_j_z``        ``(log chi_j − log chi_j_theory_window) / sqrt(stderr(slope)² + 1/N²)``:
                   the bootstrap error of the measured log-factor combined in quadrature with
                   the finite-width correction, which is ``O(1/N)`` per layer (the APJN's
                   corrections are ``O(l/N)`` relative [Doshi et al. 2023, partial Jacobians,
                   §2; PDLT ch. 4–5]); its coefficient is taken as 1 (an allowance, not a
                   computed correction: at width 32, 1/N = 0.031 in ``log χ_J``)
``phase``          the theory's phase (:data:`PHASES`)
``observable``, ``observable_stderr``, ``observable_theory``   the ``--observable`` at the last
                   layer: ``kernel`` (``K^L``, theory from ``depth_curves``), ``kurtosis`` (excess
                   kurtosis of one preactivation; theory ``3V^L/(n (K^L)²)`` from
                   :func:`critheory.theory.finitewidth.curves.finite_width_curves` at the
                   sweep's width), ``ntk`` (the empirical NTK, rates λ_b = λ_W = 1,
                   of :func:`critheory.simulation.ntk.measure_ntk`, numpy only; theory: the
                   infinite-width recursion :func:`critheory.theory.ntk.depth.ntk_curves`);
                   NaN for ``apjn``
"""
from __future__ import annotations

import math
import time

import numpy as np

from critheory.errors import CritheoryError
from .spec import SweepSpec, cell_seed

__all__ = ["run_cell", "run_batch", "cell_network", "VARIABLES", "PHASES", "PHASE_FILL", "SCIENCE"]

#: Phase codes of the ``phase`` variable (``PHASE_FILL`` in cells not yet computed).
PHASES = {"ordered": -1, "critical": 0, "chaotic": 1, "unknown": 2}
PHASE_FILL = -128

#: Stored variables: name -> (dtype, fill value, description).
VARIABLES = {
    "chi_j": ("float64", math.nan, "measured per-layer APJN factor over the fit window"),
    "chi_j_stderr": ("float64", math.nan, "bootstrap standard error of chi_j"),
    "exponent": ("float64", math.nan, "power-law exponent, J ~ l^(-exponent), over the window"),
    "exponent_stderr": ("float64", math.nan, "bootstrap standard error of exponent"),
    "chi_j_theory": ("float64", math.nan, "chi_J at the attracting fixed point (mean field)"),
    "chi_j_theory_window": ("float64", math.nan,
                            "exp(OLS slope of the infinite-width log J over the fit window)"),
    "chi_j_z": ("float64", math.nan, "(log chi_j - log chi_j_theory_window)/"
                                     "sqrt(stderr(log chi_j)^2 + 1/width^2)"),
    "phase": ("int8", PHASE_FILL, "mean-field phase: -1 ordered, 0 critical, 1 chaotic, "
                                  "2 unknown"),
    "observable": ("float64", math.nan, "the --observable at the last layer"),
    "observable_stderr": ("float64", math.nan, "its standard error over networks"),
    "observable_theory": ("float64", math.nan, "its theory value (kernel, ntk: infinite "
                                               "width; kurtosis: leading 1/n order)"),
    "elapsed": ("float64", math.nan, "seconds the cell took on its worker"),
    "computed_at": ("float64", math.nan, "unix time the cell was computed"),
    "run": ("int32", 0, "which run of the sweep computed the cell (1 = first, 2 = first "
                        "resume, ...)"),
    "done": ("bool", False, "the cell is computed and written"),
}
#: The variables that are a function of the sweep's settings only (equal between an
#: interrupted-and-resumed sweep and an uninterrupted one).
SCIENCE = ("chi_j", "chi_j_stderr", "exponent", "exponent_stderr", "chi_j_theory",
           "chi_j_theory_window", "chi_j_z", "phase", "observable", "observable_stderr",
           "observable_theory")


def _fit(kind: str, sim, window, n_boot: int):
    from critheory.simulation.fits import fit_exponential, fit_power_law

    fn = fit_exponential if kind == "exp" else fit_power_law
    try:
        with np.errstate(all="ignore"):
            f = fn(sim, window=window, n_boot=n_boot, seed=0)
    except CritheoryError:
        return math.nan, math.nan
    return float(f.slope), float(f.stderr)


def cell_network(spec: SweepSpec, a: int):
    """The :class:`~critheory.blocks.network.Network` of activation ``a`` of the sweep: the
    sweep's architecture name resolved once (:func:`critheory.blocks.registry.as_network`);
    every simulation and theory of the cell takes it."""
    from critheory.blocks.registry import as_network

    return as_network(spec.arch, spec.activations[a], spec.mu)


def _theory(spec: SweepSpec, net, sw: float, sb: float) -> dict:
    from critheory.common.powerlaw import ols
    from critheory.theory.meanfield.depth import depth_curves
    from critheory.theory.meanfield.fixed_points import analyze_point
    from critheory.theory.meanfield.maps import architecture

    out = {"chi_j_theory": math.nan, "chi_j_theory_window": math.nan,
           "phase": PHASES["unknown"], "kernel_theory": math.nan}
    try:
        arch = architecture(net)
        p = analyze_point(arch, sw, sb, spec.q0)
        out["chi_j_theory"] = float(p.chi_jacobian)
        out["phase"] = PHASES.get(p.phase, PHASES["unknown"])
        curves = depth_curves(arch, sw, sb, spec.depth, l0=1, q0=spec.q0,
                              input_correlation=None)
        lo, hi = spec.window
        depths = np.arange(lo, hi + 1)
        with np.errstate(all="ignore"):
            y = np.log(np.asarray(curves.apjn, dtype=float)[lo - 1:hi])
        if np.all(np.isfinite(y)):
            out["chi_j_theory_window"] = float(math.exp(ols(depths, y)[0]))
        out["kernel_theory"] = float(np.asarray(curves.kernel, dtype=float)[-1])
    except CritheoryError:
        pass
    return out


def _kurtosis_theory(spec: SweepSpec, net, sw: float, sb: float) -> float:
    """Predicted excess kurtosis ``3V^L/(n (K^L)²)`` at the sweep's width (NaN if unavailable)."""
    from critheory.theory.finitewidth.curves import finite_width_curves
    from critheory.theory.meanfield.maps import architecture

    try:
        arch = architecture(net)
        c = finite_width_curves(arch, sw, sb, spec.depth, width=spec.width, q0=spec.q0)
        return float(np.asarray(c.kurtosis, dtype=float)[-1])
    except CritheoryError:
        return math.nan


def _ntk_theory(spec: SweepSpec, net, sw: float, sb: float) -> float:
    """The infinite-width NTK ``Θ^L`` at unit rates (NaN if unavailable)."""
    from critheory.theory.meanfield.maps import architecture
    from critheory.theory.ntk.depth import ntk_curves

    try:
        c = ntk_curves(architecture(net), net.activation, sw, sb, spec.depth,
                       lambda_b=1.0, lambda_w=1.0, mu=spec.mu, q0=spec.q0)
        return float(np.asarray(c.ntk, dtype=float)[-1])
    except CritheoryError:
        return math.nan


def run_cell(spec: SweepSpec, a: int, i: int, j: int, *, net=None) -> dict:
    """Simulate and fit cell ``(a, i, j)`` of ``spec`` and compute its theory (the Dask task).

    Parameters
    ----------
    spec : SweepSpec
    a, i, j : int
        The activation's position and the grid indices.
    net : Network, optional
        :func:`cell_network` of ``(spec, a)`` when the caller has it (a batch resolves it once).

    Returns
    -------
    dict
        ``{"cell": (a, i, j), <every SCIENCE variable>, "elapsed", "computed_at"}``.

    Examples
    --------
    >>> from critheory.sweep.spec import SweepSpec
    >>> spec = SweepSpec(("relu",), "mlp", 1.0, (1.0, 2.0, 2), (0.0, 0.0, 1), width=16,
    ...                  depth=6, seeds=4, window=(3, 6), n_boot=20)
    >>> r = run_cell(spec, 0, 1, 0)     # relu at (2, 0): critical, chi_J = 1 at infinite width
    >>> r["chi_j_theory"], r["phase"], bool(abs(r["chi_j_z"]) < 5)
    (1.0, 0, True)
    """
    from critheory.simulation.engine import simulate

    t0 = time.perf_counter()
    net = cell_network(spec, a) if net is None else net
    sw, sb = float(spec.weight_vars[i]), float(spec.bias_vars[j])
    seed = cell_seed(spec.root_seed, a, i, j)
    sim = simulate(net, sw, sb, width=spec.width, depth=spec.depth, seeds=spec.seeds, l0=1,
                   probes=spec.probes, seed=seed, q0=spec.q0, backend=spec.backend,
                   dtype=spec.dtype)
    window = tuple(spec.window)
    slope, se = _fit("exp", sim, window, spec.n_boot)
    pslope, pse = _fit("pow", sim, window, spec.n_boot)
    th = _theory(spec, net, sw, sb)
    with np.errstate(all="ignore"):
        chi = math.exp(slope) if np.isfinite(slope) and slope < 700 else math.nan
        ctw = th["chi_j_theory_window"]
        sigma = math.sqrt(se * se + 1.0 / spec.width ** 2)   # statistics + O(1/N) allowance
        z = (slope - math.log(ctw)) / sigma if (np.isfinite(slope) and ctw > 0
                                                and np.isfinite(se)) else math.nan
    obs = obs_se = obs_th = math.nan
    if spec.observable == "kernel":
        obs, obs_se = float(sim.kernel_mean[-1]), float(sim.kernel_stderr[-1])
        obs_th = th["kernel_theory"]
    elif spec.observable == "kurtosis":
        obs, obs_se = float(sim.kurtosis_mean[-1]), float(sim.kurtosis_stderr[-1])
        obs_th = _kurtosis_theory(spec, net, sw, sb)
    elif spec.observable == "ntk":
        from critheory.simulation.ntk import measure_ntk

        m = measure_ntk(net, sw, sb, width=spec.width, depth=spec.depth, seeds=spec.seeds,
                        q0=spec.q0, seed=seed)
        obs, obs_se = float(m.ntk_mean[-1]), float(m.ntk_stderr[-1])
        obs_th = _ntk_theory(spec, net, sw, sb)
    return {
        "cell": (a, i, j), "chi_j": chi, "chi_j_stderr": chi * se if np.isfinite(chi) else
        math.nan, "exponent": -pslope, "exponent_stderr": pse,
        "chi_j_theory": th["chi_j_theory"], "chi_j_theory_window": ctw, "chi_j_z": z,
        "phase": th["phase"], "observable": obs, "observable_stderr": obs_se,
        "observable_theory": obs_th, "elapsed": time.perf_counter() - t0,
        "computed_at": time.time(),
    }


#: The variables of a cell's result, in the order of :func:`run_batch`'s columns.
RESULT = SCIENCE + ("elapsed", "computed_at")


def run_batch(spec: SweepSpec, cells) -> dict:
    """Compute the cells ``cells`` (``(a, i, j)`` each) of ``spec`` one after another: the task
    of a sweep (one per batch, not per cell).

    Each cell is :func:`run_cell` with the cell's own seed, so its numbers do not depend on the
    batch (tested bit for bit against one cell per task). A cell that raises stops the batch:
    the cells before it are returned, and the error is named.

    Returns
    -------
    dict
        ``{"cells": int array (n, 3), <each name of RESULT>: float array (n,), "error": None or
        (cell, "Type: message")}`` with ``n`` the cells computed (all, unless ``error``).

    Examples
    --------
    >>> from critheory.sweep.spec import SweepSpec
    >>> spec = SweepSpec(("relu",), "mlp", 1.0, (1.0, 2.0, 2), (0.0, 0.0, 1), width=16,
    ...                  depth=6, seeds=4, window=(3, 6), n_boot=20)
    >>> b = run_batch(spec, [(0, 0, 0), (0, 1, 0)])
    >>> b["cells"].tolist(), b["chi_j_theory"].tolist(), b["error"]
    ([[0, 0, 0], [0, 1, 0]], [0.5, 1.0], None)
    >>> bool(b["chi_j"][1] == run_cell(spec, 0, 1, 0)["chi_j"])     # the same numbers alone
    True
    """
    cells = [tuple(int(x) for x in c) for c in cells]
    rows, error, nets = [], None, {}
    for c in cells:
        try:
            if c[0] not in nets:
                nets[c[0]] = cell_network(spec, c[0])
            rows.append(run_cell(spec, *c, net=nets[c[0]]))
        except Exception as exc:  # noqa: BLE001 - reported with its cell, the rest is kept
            msg = str(exc).splitlines()[0] if str(exc) else ""
            error = (c, f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__)
            break
    out = {"cells": np.array([r["cell"] for r in rows], dtype=np.int64).reshape(-1, 3),
           "error": error}
    for name in RESULT:
        out[name] = np.array([r[name] for r in rows], dtype=np.float64)
    return out
