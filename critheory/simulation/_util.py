"""Small helpers of the simulator modules (argument checks and JSON conversion live in
:mod:`critheory.common`)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["readonly", "PerNetworkSamples"]


class PerNetworkSamples:
    """Ensemble means and standard errors of per-network samples: a mixin for measurement
    results holding ``samples``, a dict of name -> array whose first axis runs over the S
    independent networks."""

    samples: dict

    def mean(self, name: str) -> np.ndarray:
        """Ensemble mean of a sample (over its first axis, the networks)."""
        return self.samples[name].mean(axis=0)

    def stderr(self, name: str) -> np.ndarray:
        """Standard error of :meth:`mean` (``s/√S``, S − 1 degrees of freedom)."""
        x = self.samples[name]
        return x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


def readonly(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` as a read-only float/int array (None passes through)."""
    if a is None:
        return None
    a = np.array(a)
    a.flags.writeable = False
    return a
