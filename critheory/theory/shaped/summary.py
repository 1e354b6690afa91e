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
        Estimated error of ``rho_mean`` (em: √(stderr² + step bias²); pde: grid difference).
    details : dict
        Method-specific numbers (steps, paths, projections, biases, ...). With ``em``,
        ``blown_up_fraction`` is the fraction of paths whose norm blew up before T (B > 0);
        the moments of ρ_T are then over the paths that stayed finite.
    solution : object
        The :class:`~critheory.theory.shaped.solve.Paths` or
        :class:`~critheory.theory.shaped.solve.RhoLaw` behind the numbers.
    """

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

    def to_dict(self) -> dict:
        """The JSON keys of ``critheory sde`` (NaN left to :func:`jsonable` → null)."""
        return {"T": self.T, "rho0": self.rho0, "rho_mean": self.rho_mean,
                "rho_std": self.rho_std,
                "rho_quantiles": {str(k): v for k, v in self.rho_quantiles.items()},
                "rho_ode": self.rho_ode, "drift": self.drift,
                "stability": {"B": self.stability.B, "verdict": self.stability.verdict},
                "method": self.method, "error": self.error, "details": self.details}


def solve_sde(shaping, T, rho0, *, method: str = "em", inputs: int = 2, paths: int = 10000,
              steps: int = 200, seed: int = 0, keep: int = 0, cells: int = 1200,
              pde_steps: int = 400) -> SDEResult:
    """Law of ρ_T by Euler–Maruyama (``method="em"``, any shaping, m inputs) or by the
    Fokker–Planck solver (``"pde"``, ReLU shaping, two inputs). Inputs are checked first."""
    import numpy as np

    T = check_T(T)
    rho0 = check_rho0(rho0)
    if method not in ("em", "pde"):
        raise InvalidArgumentError(f"method must be 'em' or 'pde', got {method!r}")
    if method == "pde" and inputs != 2:
        raise InvalidArgumentError("method 'pde' solves the correlation of two inputs "
                                   "(--inputs 2)")
    V0 = start_matrix(rho0, inputs)
    ode = rho_ode(shaping, rho0, T)
    st = stability(shaping)
    if method == "pde":
        law = fokker_planck(shaping, T, rho0, cells=cells, steps=pde_steps)
        return SDEResult(T, rho0, law.rho_mean, law.rho_std, law.quantiles, ode,
                         drift_text(shaping), st, "pde", law.error,
                         {"cells": cells, "steps": pde_steps, "errors": law.errors}, law)
    p = integrate(shaping, T, V0, paths=paths, steps=steps, seed=seed, keep=keep)
    r = p.rho[p.finite]
    rc = p.rho_coarse[np.isfinite(p.rho_coarse)]
    nan = float("nan")
    q = {k: (float(np.quantile(r, k)) if r.size else nan) for k in (0.1, 0.5, 0.9)}
    std = float(np.std(r, ddof=1)) if r.size > 1 else nan
    finite = bool(np.all(np.isfinite(p.V)))
    det = {"paths": paths, "steps": steps + steps % 2, "dt": p.dt, "seed": seed,
           "stderr": p.stderr, "step_bias": p.bias,
           "std_step_bias": float(abs(np.std(rc, ddof=1) - std)) if rc.size > 1 else nan,
           "projected": p.projected, "finite": finite, "blown_up_fraction": p.blown_up}
    return SDEResult(T, rho0, p.rho_mean, std, q, ode, drift_text(shaping), st, "em",
                     p.error if math.isfinite(p.error) else float("nan"), det, p)
