"""Bayesian inference with a finite network: the nearly-Gaussian output distribution on several
inputs and the posterior at leading (Gaussian-process) and next-to-leading order in 1/n.

Pure linear algebra on the multi-input statistics (K, K1, V, width); no network code.

``nearly_gaussian``  the distribution: cumulants, first-order (Edgeworth) density, moments,
                     sampler (:class:`NearlyGaussian`)
``mixture``          the Gaussian scale mixture that samples it, with the PSD bound
``hermite``          multivariate Hermite tensors with respect to a covariance
``posterior``        the GP and NLO posterior on test inputs, the representation shift, the
                     checks of a training set
``network``          a network's prior on its inputs conditioned on training targets
                     (:func:`bayes_posterior`)
"""
from critheory.theory.bayes.nearly_gaussian import Moments, NearlyGaussian
from critheory.theory.bayes.posterior import (GRAM_RTOL, Posterior, RepresentationShift,
                                              TrainingSet, posterior, representation_shift,
                                              training_set)

__all__ = ["NearlyGaussian", "Moments", "Posterior", "RepresentationShift", "TrainingSet",
           "posterior", "representation_shift", "training_set", "GRAM_RTOL"]
