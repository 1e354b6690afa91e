"""critheory: criticality of wide and deep neural networks at initialization.

The public Python API is this package's namespace: ``import critheory as ct`` gives every
user-facing function and type (the table below, also ``ct.__all__`` and ``dir(ct)``). Names
are imported on first access, so ``import critheory`` (and every command line) stays free of
numpy, sympy and scipy. The modules behind the names are internals and may move.

* activations and expectations: :class:`Activation`, :func:`expect`, :func:`expect2`,
  :func:`moments`;
* networks and blocks: :class:`Network`, :class:`Dense`, :class:`Phi`, :class:`LayerNorm`,
  :class:`RMSNorm`, :class:`Residual`, :class:`Attention`, :class:`MLP`, :func:`network`,
  :func:`transformer`, :func:`network_names`, :func:`transformer_names`, and
  :func:`architecture` (a network's mean-field maps, the argument of the mean-field functions);
* mean field: :func:`analyze`, :func:`analyze_point`, :func:`fixed_points`,
  :func:`critical_points`, :func:`critical_line`, :func:`universality`, :func:`critical_set`,
  :func:`phase_grid`, :func:`correlation_fixed_point`, :func:`critical_point_for_inputs`,
  :func:`depth_curves`, :func:`fit_power_law`;
* finite width: :func:`finite_width_curves`, :func:`exact_scale_invariant`,
  :func:`data_statistics` (several inputs); Bayesian inference: :func:`bayes_posterior`,
  :class:`NearlyGaussian`, the exact posterior of finite networks :func:`output_laws`,
  :func:`exact_posterior`; NTK:
  :func:`ntk_curves`, :func:`ntk_data_statistics` (several inputs, order 1/n), the dNTK and
  ddNTK :func:`dntk_curves` (several inputs: :func:`dntk_data_statistics`); recipes: :func:`recipe`; transformers:
  :func:`transformer_depth`, :func:`one_token_exponent`, :func:`attention_kernel`;
* the shaped-network SDE: :func:`shape_relu`, :func:`shape_smooth`, :func:`solve_sde`,
  :func:`fokker_planck`, :func:`integrate`, :func:`rho_ode`, :func:`start_matrix`,
  :func:`stability`, :func:`drift_text`; spectra: :func:`jacobian_spectrum`;
* the simulator: :func:`simulate`, :func:`fit_simulated_power_law`, :func:`measure_ntk`,
  :func:`measure_dntk`, :func:`measure_dntk_data`,
  :func:`measure_finite_width`, :func:`simulate_shaped`, :func:`simulate_spectrum`,
  :func:`simulate_transformer`;
* validation: :func:`compare`, :func:`compare_transformer`, :func:`validate_spectrum`;
* the errors (:class:`CritheoryError` and its subclasses), and :mod:`critheory.torch` as
  ``ct.torch`` (PyTorch models; needs the ``torch`` extra when a name of it is used).

Examples
--------
>>> import critheory as ct
>>> u = ct.universality(ct.architecture("mlp", "tanh"))
>>> u.critical_point.weight_var, u.critical_point.bias_var
(1.0, 0.0)
>>> "simulate" in dir(ct), "numpy" in ct.__all__
(True, False)
"""
from critheory.errors import *  # noqa: F401,F403
from critheory.errors import __all__ as _ERRORS

__version__ = "0.1.0"

# public name -> (module, attribute in that module): the one table of the public API
_PUBLIC = {
    # activations and Gaussian expectations
    "Activation": ("critheory.activation.symbolic", "Activation"),
    "Expectation": ("critheory.expectations.gaussian", "Expectation"),
    "expect": ("critheory.expectations.gaussian", "expect"),
    "expect2": ("critheory.expectations.gaussian", "expect2"),
    "moments": ("critheory.expectations.gaussian", "moments"),
    # networks and blocks
    "Network": ("critheory.blocks.network", "Network"),
    "Dense": ("critheory.blocks.blocks", "Dense"),
    "Phi": ("critheory.blocks.blocks", "Phi"),
    "LayerNorm": ("critheory.blocks.blocks", "LayerNorm"),
    "RMSNorm": ("critheory.blocks.blocks", "RMSNorm"),
    "Residual": ("critheory.blocks.blocks", "Residual"),
    "Attention": ("critheory.blocks.transformer", "Attention"),
    "MLP": ("critheory.blocks.transformer", "MLP"),
    "network": ("critheory.blocks.registry", "network"),
    "network_names": ("critheory.blocks.registry", "names"),
    "transformer": ("critheory.blocks.transformer", "transformer"),
    "transformer_names": ("critheory.blocks.transformer", "transformer_names"),
    "architecture": ("critheory.theory.meanfield.maps", "architecture"),
    # mean field: fixed points, criticality, universality, depth
    "analyze": ("critheory.io.report", "analyze"),
    "analyze_point": ("critheory.theory.meanfield.fixed_points", "analyze_point"),
    "fixed_points": ("critheory.theory.meanfield.fixed_points", "fixed_points"),
    "FixedPoint": ("critheory.theory.meanfield.fixed_points", "FixedPoint"),
    "critical_points": ("critheory.theory.meanfield.criticality", "critical_points"),
    "critical_line": ("critheory.theory.meanfield.criticality", "critical_line"),
    "CriticalPoint": ("critheory.theory.meanfield.criticality", "CriticalPoint"),
    "LinePoint": ("critheory.theory.meanfield.criticality", "LinePoint"),
    "universality": ("critheory.theory.meanfield.criticality", "universality"),
    "Universality": ("critheory.theory.meanfield.criticality", "Universality"),
    "critical_set": ("critheory.theory.meanfield.critical_sets", "critical_set"),
    "phase_grid": ("critheory.theory.meanfield.phase", "phase_grid"),
    "correlation_fixed_point": ("critheory.theory.meanfield.correlation",
                                "correlation_fixed_point"),
    "critical_point_for_inputs": ("critheory.theory.meanfield.inputs",
                                  "critical_point_for_inputs"),
    "depth_curves": ("critheory.theory.meanfield.depth", "depth_curves"),
    "DepthCurves": ("critheory.theory.meanfield.depth", "DepthCurves"),
    "fit_power_law": ("critheory.theory.meanfield.depth", "fit_power_law"),
    # finite width, NTK, recipes, transformers
    "finite_width_curves": ("critheory.theory.finitewidth.curves", "finite_width_curves"),
    "FiniteWidthCurves": ("critheory.theory.finitewidth.curves", "FiniteWidthCurves"),
    "exact_scale_invariant": ("critheory.theory.finitewidth.exact", "exact_scale_invariant"),
    "data_statistics": ("critheory.theory.finitewidth.data", "data_statistics"),
    "DataStatistics": ("critheory.theory.finitewidth.data", "DataStatistics"),
    "bayes_posterior": ("critheory.theory.bayes.network", "bayes_posterior"),
    "BayesPrediction": ("critheory.theory.bayes.network", "BayesPrediction"),
    "NearlyGaussian": ("critheory.theory.bayes.nearly_gaussian", "NearlyGaussian"),
    "output_laws": ("critheory.simulation.bayes", "output_laws"),
    "exact_posterior": ("critheory.simulation.bayes", "exact_posterior"),
    "optimal_aspect_ratio": ("critheory.theory.finitewidth.aspect", "optimal_aspect_ratio"),
    "network_optimal_aspect_ratio": ("critheory.theory.finitewidth.aspect",
                                     "network_optimal_aspect_ratio"),
    "AspectRatio": ("critheory.theory.finitewidth.aspect", "AspectRatio"),
    "ntk_curves": ("critheory.theory.ntk.depth", "ntk_curves"),
    "NTKCurves": ("critheory.theory.ntk.depth", "NTKCurves"),
    "dntk_curves": ("critheory.theory.ntk.dntk", "dntk_curves"),
    "DNTKCurves": ("critheory.theory.ntk.dntk", "DNTKCurves"),
    "dntk_data_statistics": ("critheory.theory.ntk.dntk_data", "dntk_data_statistics"),
    "DNTKDataStatistics": ("critheory.theory.ntk.dntk_data", "DNTKDataStatistics"),
    "ntk_data_statistics": ("critheory.theory.ntk.finite_data", "ntk_data_statistics"),
    "NTKDataStatistics": ("critheory.theory.ntk.finite_data", "NTKDataStatistics"),
    "trained_prediction": ("critheory.theory.ntk.trained", "trained_prediction"),
    "TrainedPrediction": ("critheory.theory.ntk.trained", "TrainedPrediction"),
    "train_ensemble": ("critheory.simulation.train", "train_ensemble"),
    "TrainedEnsemble": ("critheory.simulation.train", "TrainedEnsemble"),
    "compare_trained": ("critheory.validation.train", "compare_trained"),
    "TrainedComparison": ("critheory.validation.train", "TrainedComparison"),
    "recipe": ("critheory.theory.recipes.recipe", "recipe"),
    "Recipe": ("critheory.theory.recipes.recipe", "Recipe"),
    "transformer_depth": ("critheory.theory.transformer.depth", "transformer_depth"),
    "one_token_exponent": ("critheory.theory.transformer.depth", "one_token_exponent"),
    "attention_kernel": ("critheory.theory.transformer.softmax", "attention_kernel"),
    # the shaped-network SDE
    "Shaping": ("critheory.theory.shaped.shaping", "Shaping"),
    "shape_relu": ("critheory.theory.shaped.shaping", "shape_relu"),
    "shape_smooth": ("critheory.theory.shaped.shaping", "shape_smooth"),
    "solve_sde": ("critheory.theory.shaped.summary", "solve_sde"),
    "fokker_planck": ("critheory.theory.shaped.solve", "fokker_planck"),
    "integrate": ("critheory.theory.shaped.solve", "integrate"),
    "rho_ode": ("critheory.theory.shaped.solve", "rho_ode"),
    "start_matrix": ("critheory.theory.shaped.solve", "start_matrix"),
    "stability": ("critheory.theory.shaped.sde", "stability"),
    "drift_text": ("critheory.theory.shaped.sde", "drift_text"),
    # Jacobian spectra
    "jacobian_spectrum": ("critheory.theory.spectra.spectrum", "jacobian_spectrum"),
    "JacobianSpectrum": ("critheory.theory.spectra.spectrum", "JacobianSpectrum"),
    # the simulator and its measurements
    "simulate": ("critheory.simulation.engine", "simulate"),
    "SimulationResult": ("critheory.simulation.engine", "SimulationResult"),
    "fit_simulated_power_law": ("critheory.simulation.fits", "fit_power_law"),
    "measure_ntk": ("critheory.simulation.ntk", "measure_ntk"),
    "measure_dntk": ("critheory.simulation.dntk", "measure_dntk"),
    "DNTKMeasurement": ("critheory.simulation.dntk", "DNTKMeasurement"),
    "measure_dntk_data": ("critheory.simulation.dntk_data", "measure_dntk_data"),
    "DNTKDataMeasurement": ("critheory.simulation.dntk_data", "DNTKDataMeasurement"),
    "measure_finite_width": ("critheory.simulation.finitewidth", "measure_finite_width"),
    "simulate_shaped": ("critheory.simulation.shaped", "simulate_shaped"),
    "simulate_spectrum": ("critheory.simulation.spectra", "simulate_spectrum"),
    "simulate_transformer": ("critheory.simulation.transformer", "simulate_transformer"),
    # theory against simulation
    "compare": ("critheory.validation.compare", "compare"),
    "Comparison": ("critheory.validation.compare", "Comparison"),
    "compare_transformer": ("critheory.validation.transformer", "compare_transformer"),
    "validate_spectrum": ("critheory.validation.spectra", "validate_spectrum"),
    # PyTorch models (the optional extra; names of it need torch when used)
    "torch": ("critheory.torch", None),
}

__all__ = sorted(_PUBLIC) + list(_ERRORS) + ["__version__"]


def __getattr__(name: str):
    # imported on first access: ``import critheory`` (and so every command line, ``critheory
    # --help`` included) stays free of numpy, sympy and scipy
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
