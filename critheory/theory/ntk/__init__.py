"""The neural tangent kernel at infinite width: its forward recursion through the blocks of a
layer, its depth behaviour and the learning-rate schedules that keep it of order one.

Modules: :mod:`~critheory.theory.ntk.rules` (one rule per block kind on the Θ fields of the one
state, :class:`critheory.theory.state.State`) and
:mod:`~critheory.theory.ntk.depth` (the recursion over depth, the learning-rate schedules and
the power-law exponent of Θ^l). Derivation and conventions: ``docs/ntk.md``.
"""
from critheory.theory.ntk.depth import NTKCurves, learning_rates, ntk_curves

__all__ = ["NTKCurves", "learning_rates", "ntk_curves"]
