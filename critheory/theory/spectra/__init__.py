"""Jacobian singular-value spectra at infinite width, by free probability.

``spectrum``  :func:`jacobian_spectrum`, :class:`JacobianSpectrum`, the isometry verdict
``law``       the law of φ'(h)² under the fixed-point Gaussian (moments, Stieltjes transform)
``mlp``       PSG's S-transform product for MLPs, Gaussian and orthogonal weights
``resnet``    Tarnowski et al.'s law for residual networks, with finite-depth moments
``solver``    continuation of the resolvent equation along the real axis from an edge

Derivations and conventions: ``docs/spectra.md``.
"""
from critheory.theory.spectra.spectrum import (Isometry, JacobianSpectrum, isometry_verdict,
                                               jacobian_spectrum, resnet_network)

__all__ = ["jacobian_spectrum", "JacobianSpectrum", "Isometry", "isometry_verdict",
           "resnet_network"]
