"""The finite-width theory: the four-point vertex V, the 1/n shift of the kernel and the
depth-to-width ratio [PDLT ch. 4–5; Yaida arXiv:1910.00019].

``rules``   one rule per block kind (dense, phi, layernorm, residual) on the finite-width fields
            of the one state (:class:`critheory.theory.state.State`: K1, V, D, P, width)
``curves``  V^l, K^{(1),l}, ν and the predicted kurtosis through depth
``aspect``  the optimal aspect ratio r* = (L/n)* = 4/((20 + 3 n_L) ν) of the information
            argument (PDLT appendix on information), from ν
``exact``   exact finite-width moments of scale-invariant MLPs (the deep linear network of PDLT
            ch. 3 and its generalization), the check of the 1/n expansion
"""
from critheory.theory.finitewidth.curves import (FiniteWidthCurves, Nu, finite_width_curves,
                                                 trust_statement)
from critheory.theory.finitewidth.aspect import (AspectRatio, aspect_ratio_from_curves,
                                                 network_optimal_aspect_ratio,
                                                 optimal_aspect_ratio)
from critheory.theory.finitewidth.exact import ExactMoments, exact_scale_invariant
from critheory.theory.finitewidth.rules import RULES, THEORY, apply

__all__ = ["RULES", "THEORY", "apply", "FiniteWidthCurves", "Nu",
           "finite_width_curves", "trust_statement", "ExactMoments", "exact_scale_invariant",
           "AspectRatio", "optimal_aspect_ratio", "aspect_ratio_from_curves",
           "network_optimal_aspect_ratio"]
