"""One call: the law of the output correlation at depth-to-width ratio T, with its error.

Examples
--------
>>> from critheory.theory.shaped.shaping import shape_relu
>>> from critheory.theory.shaped.summary import solve_sde
>>> r = solve_sde(shape_relu(0, -1), T=1.0, rho0=0.5, method="pde")
>>> round(r.rho_mean, 3), r.error < 1e-4, r.stability.verdict
(0.481, True, 'stable')
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from critheory.errors import InvalidArgumentError
from critheory.theory.shaped.sde import Stability, drift_text, stability
from critheory.theory.shaped.solve import (check_T, check_rho0, fokker_planck, integrate,
                                           rho_ode, start_matrix)
from critheory.common.reprs import short_repr

__all__ = ["SDEResult", "solve_sde"]


@dataclass(frozen=True)
class SDEResult:
    """Law of ρ_T (inputs 1 and 2) from the covariance SDE.

    Attributes
    ----------
    T, rho0 : float
    rho_mean, rho_std : float
    rho_quantiles : dict
        ``{0.1: ., 0.5: ., 0.9: .}``.
    rho_ode : float
        Infinite-width (ODE) limit at T.
    drift : str
        The printed drift.
    stability : Stability
    method : str
        ``"em"`` or ``"pde"``.
    error : float
        Estimated error of ``rho_mean`` (em: √(stderr² + step bias² + unseen²), unseen =
        (1 + |mean|)/paths for probability no path visited; pde: grid difference).
    quantile_errors : dict
        Errors of ``rho_quantiles`` (em: the order-statistic 1σ band combined with the
        quantile's step bias; pde: grid difference).
    details : dict
        Method-specific numbers (steps, paths, projections, biases, ...). With ``em``,
        ``blown_up_fraction`` is the fraction of paths whose norm blew up before T (B > 0);
        the moments of ρ_T are then over the paths that stayed finite.
    solution : object
        The :class:`~critheory.theory.shaped.solve.Paths` or
        :class:`~critheory.theory.shaped.solve.RhoLaw` behind the numbers.
    """

    __repr__ = short_repr

    T: float
    rho0: float
    rho_mean: float
    rho_std: float
    rho_quantiles: dict
    rho_ode: float
    drift: str
    stability: Stability
    method: str
    error: float
    details: dict = field(default_factory=dict)
    solution: object = None
    quantile_errors: dict = field(default_factory=dict)

    @property
    def warnings(self) -> list:
        """Warnings of the run (step bias above tolerance, material PSD projections)."""
        return list(self.details.get("warnings", []))

    def to_dict(self) -> dict:
        """The JSON keys of ``critheory sde`` (NaN left to :func:`jsonable` → null)."""
        return {"T": self.T, "rho0": self.rho0, "rho_mean": self.rho_mean,
                "rho_std": self.rho_std,
                "rho_quantiles": {str(k): v for k, v in self.rho_quantiles.items()},
                "rho_quantile_errors": {str(k): v for k, v in self.quantile_errors.items()},
                "rho_ode": self.rho_ode, "drift": self.drift,
                "stability": {"B": self.stability.B, "verdict": self.stability.verdict},
                "method": self.method, "error": self.error, "warnings": self.warnings,
                "details": self.details}


#: Default tolerance of the step bias of E[ρ_T] (absolute; the standard error if larger).
BIAS_TOL = 5e-3
#: Fraction of steps with a PSD projection above which the result carries a warning.
PROJECTION_WARN = 1e-3
#: Largest dt × :func:`step_rate` at which the dt/2dt comparison is trusted (weak-order regime).
MAX_DT_RATE = 0.25
#: Runs of the automatic step selection (the first, then at most two refinements).
_MAX_RUNS = 3


def solve_sde(shaping, T, rho0, *, method: str = "em", inputs: int = 2, paths: int = 10000,
              steps: int | None = None, seed: int = 0, keep: int = 0, cells: int = 1200,
              pde_steps: int = 400, bias_tol: float = BIAS_TOL) -> SDEResult:
    """Law of ρ_T by the Monte Carlo integrator (``method="em"``, any shaping, m inputs) or by
    the Fokker–Planck solver (``"pde"``, ReLU shaping, two inputs). Inputs are checked first.

    With ``steps=None`` (default) the step is chosen from the problem: the first run uses
    :func:`~critheory.theory.shaped.solve.initial_steps` (dt ≤ 0.05 over the SDE's fastest
    rate); while the step bias (fine − coarse run) exceeds ``max(bias_tol, stderr)`` the number
    of steps is scaled by the ratio (weak order 1: the bias is proportional to dt), or
    doubled while more than ``PROJECTION_WARN`` of the steps needed a PSD projection, at most
    twice and within the budget. A run whose bias still exceeds the tolerance (or with given
    ``steps``) is reported with ``details["step_bias_ok"] = False`` and a warning. Refused
    (:class:`InvalidArgumentError`) before any work when the first run is beyond the budget.

    Examples
    --------
    >>> import critheory as ct
    >>> r = ct.solve_sde(ct.shape_relu(0.0, -1.0), 1.0, 0.5, paths=2000, seed=0)
    >>> -1.0 <= r.rho_mean <= 1.0
    True
    """
    import numpy as np

    from critheory.theory.shaped.solve import (MAX_PATH_STEPS, initial_steps, quantile_errors,
                                               step_rate)

    T = check_T(T)
    rho0 = check_rho0(rho0)
    if method not in ("em", "pde"):
        raise InvalidArgumentError(f"method must be 'em' or 'pde', got {method!r}")
    if method == "pde" and inputs != 2:
        raise InvalidArgumentError("method 'pde' solves the correlation of two inputs "
                                   "(--inputs 2)")
    bias_tol = float(bias_tol)
    if not (math.isfinite(bias_tol) and bias_tol > 0):
        raise InvalidArgumentError(f"the step-bias tolerance must be finite and > 0, "
                                   f"got {bias_tol!r}")
    V0 = start_matrix(rho0, inputs)
    auto = steps is None
    if method == "em":
        first = initial_steps(shaping, T) if auto else int(steps) + int(steps) % 2
        cost = paths * first * inputs ** 2
        if cost > MAX_PATH_STEPS:
            raise InvalidArgumentError(
                f"T = {T:g} at the SDE's rate {step_rate(shaping):.3g} needs {first} steps "
                f"(dt <= {T / first:.3g}); paths x steps x inputs^2 = {cost:.1e} is beyond the "
                f"budget {MAX_PATH_STEPS:.0e} (use fewer paths or a smaller T)")
    ode = rho_ode(shaping, rho0, T)
    st = stability(shaping)
    if method == "pde":
        law = fokker_planck(shaping, T, rho0, cells=cells, steps=pde_steps)
        qe = dict(law.errors["quantiles"])
        return SDEResult(T, rho0, law.rho_mean, law.rho_std, law.quantiles, ode,
                         drift_text(shaping), st, "pde", law.error,
                         {"cells": cells, "steps": pde_steps, "errors": law.errors,
                          "warnings": []}, law, qe)
    n = first
    runs = []
    while True:
        p = integrate(shaping, T, V0, paths=paths, steps=n, seed=seed, keep=keep)
        tol = max(bias_tol, p.stderr) if math.isfinite(p.stderr) else bias_tol
        proj_ok = p.projected_fraction <= PROJECTION_WARN
        regime = p.dt * step_rate(shaping) <= MAX_DT_RATE
        ok = bool(math.isfinite(p.bias) and p.bias <= tol and proj_ok and regime)
        runs.append({"steps": p.steps, "step_bias": p.bias,
                     "projected_fraction": p.projected_fraction})
        if (ok and proj_ok) or not auto or len(runs) >= _MAX_RUNS:
            break
        factor = 1.25 * p.bias / tol if math.isfinite(p.bias) else 4.0
        nxt = math.ceil(p.steps * min(max(factor, 2.0), 16.0))
        nxt += nxt % 2
        nxt = min(nxt, MAX_PATH_STEPS // (paths * inputs ** 2))
        nxt -= nxt % 2
        if nxt <= p.steps:
            break
        n = nxt
    r = p.rho[p.finite]
    rc = p.rho_coarse[np.isfinite(p.rho_coarse)]
    nan = float("nan")
    qs = (0.1, 0.5, 0.9)
    q = {k: (float(np.quantile(r, k)) if r.size else nan) for k in qs}
    qc = {k: (float(np.quantile(rc, k)) if rc.size else nan) for k in qs}
    qstat = quantile_errors(r, qs) if r.size > 1 else {k: nan for k in qs}
    qerr = {k: math.hypot(qstat[k], abs(q[k] - qc[k])) for k in qs}
    std = float(np.std(r, ddof=1)) if r.size > 1 else nan
    finite = bool(np.all(np.isfinite(p.V)))
    warnings = []
    if not regime:
        warnings.append(
            f"dt = {p.dt:.3g} is {p.dt * step_rate(shaping):.2g} times the SDE's fastest time "
            f"scale (above {MAX_DT_RATE:g}): outside the range where comparing dt with 2dt "
            f"estimates the step bias; use more steps")
    elif not ok and p.bias > tol:
        warnings.append(
            f"step bias {p.bias:.2g} of E[rho_T] exceeds the tolerance {tol:.2g} at "
            f"{p.steps} steps (dt = {p.dt:.3g})" + ("" if auto else "; the steps were given")
            + ": the error bar is dominated by the step bias; use more steps")
    if p.projected_fraction > PROJECTION_WARN:
        warnings.append(
            f"{p.projected_fraction:.1%} of the steps left the positive semidefinite cone "
            f"(explicit drift) and were projected back: the result carries an extra bias "
            f"beyond the step-bias estimate; use more steps")
    det = {"paths": paths, "steps": p.steps, "dt": p.dt, "seed": seed, "auto_steps": auto,
           "runs": runs, "stderr": p.stderr, "unseen_mass": p.unseen, "step_bias": p.bias,
           "step_bias_tol": tol,
           "step_bias_ok": ok,
           "std_step_bias": float(abs(np.std(rc, ddof=1) - std)) if rc.size > 1 else nan,
           "quantile_errors": {str(k): v for k, v in qerr.items()},
           "projected": p.projected, "projected_fraction": p.projected_fraction,
           "finite": finite, "blown_up_fraction": p.blown_up, "warnings": warnings}
    return SDEResult(T, rho0, p.rho_mean, std, q, ode, drift_text(shaping), st, "em",
                     p.error if math.isfinite(p.error) else float("nan"), det, p, qerr)
