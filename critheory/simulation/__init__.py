"""Finite-width numpy simulator of random networks at initialization.

An independent check of the theory: it shares only the activation
(:class:`critheory.activation.symbolic.Activation`) with the theory modules. Networks are sampled layer by
layer, run forward, and differentiated with forward-mode tangents.

Modules
-------
``engine``         :func:`simulate` and :class:`SimulationResult`
``architectures``  the layer maps (mlp, residual, pre-/post-LayerNorm, pre-LN MLP block)
``layernorm``      LayerNorm forward, Jacobian-vector product and explicit Jacobian
``sampling``       seed streams; dense and (exact-in-law) projected Gaussian layers
``cost``           estimated seconds of a simulation; the default APJN method chosen from them
``fits``           power-law / exponential fits with a bootstrap over networks
``naive``          explicit Jacobian-chain reference (tests, benchmark)
``bayes``          exact output laws of finite networks and their importance-weighted posterior

Examples
--------
>>> from critheory.simulation import simulate, fit_power_law
>>> res = simulate("tanh", 1.0, 0.0, width=64, depth=40, seeds=4, probes=4, seed=0)
>>> res.apjn.shape
(4, 40)
>>> fit = fit_power_law(res, window=(10, 40), n_boot=100)
>>> 0.0 < fit.exponent < 2.0      # decay exponent: J ~ l^(-exponent), slope = -exponent
True
"""
from .architectures import ARCHITECTURES, normalize_arch
from .bayes import (MeasuredPosterior, OutputLaws, exact_posterior, measured_kernel,
                    measured_vertex, output_laws)
from .engine import (DEFAULT_PROBES, EXACT_COST_BUDGET, SimulationResult, default_probes,
                     simulate)
from .fits import FitResult, fit_exponential, fit_power_law
from .naive import ChainResult, explicit_jacobian_chain

__all__ = [
    "simulate", "SimulationResult", "fit_power_law", "fit_exponential", "FitResult",
    "explicit_jacobian_chain", "ChainResult", "ARCHITECTURES", "normalize_arch",
    "EXACT_COST_BUDGET", "DEFAULT_PROBES", "default_probes",
    "output_laws", "OutputLaws", "exact_posterior", "MeasuredPosterior", "measured_kernel",
    "measured_vertex",
]
