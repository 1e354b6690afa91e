"""The shaped-network theory: the neural covariance SDE [Li, Nica, Roy, arXiv:2206.02768].

``shaping``  shaping rules (ReLU slopes 1 + c±/√n; smooth s φ(x/s), s = a√n)
``sde``      drift (symbolic from the Taylor coefficients), diffusion, the correlation SDE,
             norm stability
``solve``    Euler–Maruyama for the covariance, Fokker–Planck for the correlation, ODE limits
``summary``  :func:`solve_sde`: law of ρ_T with its error (the ``critheory sde`` numbers)

See ``docs/shaped.md``.
"""
from critheory.theory.shaped.sde import (Stability, drift, drift_pair, drift_symbolic, drift_text,
                                         nu, rho_diffusion, rho_drift, stability, x_drift)
from critheory.theory.shaped.shaping import Shaping, shape_relu, shape_smooth
from critheory.theory.shaped.solve import (Paths, RhoLaw, fokker_planck, integrate, norm_ode,
                                           rho_ode, start_matrix)
from critheory.theory.shaped.summary import SDEResult, solve_sde

__all__ = ["Shaping", "shape_relu", "shape_smooth", "Stability", "drift", "drift_pair",
           "drift_symbolic", "drift_text", "nu", "rho_drift", "rho_diffusion", "x_drift",
           "stability", "Paths", "RhoLaw", "integrate", "fokker_planck", "rho_ode", "norm_ode",
           "start_matrix", "SDEResult", "solve_sde"]
