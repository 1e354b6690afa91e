"""The state the finite-width theory carries through the blocks of a layer.

For a representation ``y`` (n neurons, one input) of a network of width n, to first order in 1/n:

``K``    infinite-width second moment ``E[y_i²]`` (the mean-field kernel)
``K1``   its 1/n shift: ``E[y_i²] = K + K1/n + O(1/n²)``
``V``    the four-point vertex, ``n Cov(y_i², y_j²)`` for i ≠ j. For a preactivation (a dense
         block's output) the connected four-point function of one neuron is then
         ``E[y⁴] − 3E[y²]² = 3V/n`` [PDLT ch. 4: ⟨z z z z⟩_conn = (1/n)(V+V+V), one input]
``D``    ``Var(y_i²)`` at infinite width (2K² for a Gaussian y, E[φ⁴] − E[φ²]² for y = φ(h))
``P``    ``n E[y_i y_j]``, i ≠ j: the off-diagonal two-point function, 0 after a dense block,
         −1 after a LayerNorm (mean subtraction); None where no later rule reads it
``dK``   the tangent ``∂K/∂K_in`` (χ_∥ of the blocks so far; a residual rule needs its
         branch's)
``rep``  what ``y`` is: ``"gaussian"`` (a dense block's output, Gaussian to leading order with
         the cumulants above), ``"phi"`` (``φ(h)`` of such an h, ``q`` its variance),
         ``"normalized"`` (LayerNorm of a Gaussian-like vector: a point of the sphere of radius
         √n in the plane ``Σy = 0``), ``"normalized-phi"`` (LayerNorm of ``φ(h)``)

The fields are numpy arrays that broadcast together: ``K`` (and ``D``, ``dK``) over the depths
or the hyperparameter grid, ``K1`` and ``V`` possibly with a leading axis more (the depth
solver sends the basis (K1, V) = (0, 0), (1, 0), (0, 1) through one pass, since every rule is
affine in (K1, V)).

Examples
--------
>>> import numpy as np
>>> from critheory.theory.finitewidth.state import FWState
>>> s = FWState.start(2.0)
>>> float(s.K), float(s.V), float(s.D), s.rep
(2.0, 0.0, 8.0, 'gaussian')
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["FWState", "REPS"]

REPS = ("gaussian", "phi", "normalized", "normalized-phi")


@dataclass(frozen=True)
class FWState:
    """Fields of one representation at first order in 1/n (see the module docstring)."""

    K: np.ndarray
    K1: np.ndarray
    V: np.ndarray
    D: np.ndarray
    P: np.ndarray | None = None
    dK: np.ndarray | None = None
    rep: str = "gaussian"
    q: np.ndarray | None = None

    @property
    def gaussian(self) -> bool:
        return self.rep == "gaussian"

    def with_(self, **fields) -> "FWState":
        """A copy with some fields replaced."""
        return replace(self, **fields)

    @classmethod
    def start(cls, K, K1=0.0, V=0.0, *, tangents: bool = False) -> "FWState":
        """A Gaussian-like preactivation with kernel ``K``, shift ``K1`` and vertex ``V`` (the
        first layer, ``K^1 = σ_b² + σ_w² q0`` for a fixed input, has K1 = V = 0 exactly)."""
        K = np.asarray(K, dtype=float)
        return cls(K=K, K1=np.asarray(K1, dtype=float), V=np.asarray(V, dtype=float),
                   D=2.0 * K * K, P=np.zeros_like(K),
                   dK=np.ones_like(K) if tangents else None)
