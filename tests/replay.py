"""Test helper: a sampler for the simulator's one interpreter that draws the same weights on
every run (same seed, same shapes), so that the interpreter's forward map is a fixed function
(for finite differences) and the last weight matrix can be read back."""
from __future__ import annotations

import numpy as np


class ReplaySampler:
    """The interpreter's sampler protocol (``matmul``, ``bias``) from a fixed seed."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.last_weight = None

    def matmul(self, x, var, n_out):
        W = self.rng.standard_normal((x.shape[0], n_out, x.shape[-2])) * np.sqrt(
            var / x.shape[-2])
        self.last_weight = W
        return W @ x

    def bias(self, n, var):
        return self.rng.standard_normal((1, n, 1)) * np.sqrt(var)
