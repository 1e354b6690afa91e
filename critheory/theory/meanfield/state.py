"""The state the mean-field theory iterates through the blocks of a layer.

One object carries every field a theory follows, as numpy arrays broadcast over the
hyperparameter grid; ``None`` marks a field nobody asked for (it is then never computed). The
fields of the infinite-width (mean-field) theory:

``K``      second moment ``E[x_i²]`` of the representation of input 1 (its variance where the
           representation is Gaussian)
``K22``, ``K12``   the same for input 2 and the covariance of the two inputs
``q``, ``q22``     where the representation is ``φ(h)``: the variance of the Gaussian ``h``
           (needed by a LayerNorm that follows, which subtracts ``E[φ(h)]``); None where the
           representation is Gaussian
``dK``     derivative of ``K`` with respect to the layer's input kernel (gives χ_∥)
``dK12``   derivative of ``K12`` with respect to the input covariance at coincident inputs
           (gives χ_⊥, from the covariance map itself)
``J``      the factor by which the layer multiplies ``‖t‖²/N`` of a tangent vector (gives χ_J)
``gap``    ``K₀·J − K`` with K₀ the kernel entering the layer: on the critical set of a
           single-dense network ``σ_b² = (1 − μ²)·gap/J`` at σ_w² = 1, σ_b² = 0, and following
           it block by block (the activation adds the Poincaré gap ``K E_K[φ'²] − E_K[φ²]``,
           computed without cancellation) keeps that difference accurate where ``K₀·J`` and
           ``K`` agree to every float64 digit (K* → 0 on the critical line of tanh)

Later theories add their fields here (the NTK Θ, the four-point vertex V, ...) and one rule per
block in their own room; the fixed-point and depth solvers do not change.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["State"]


@dataclass(frozen=True)
class State:
    """Fields of one representation (see the module docstring); arrays or None."""

    K: np.ndarray
    K22: np.ndarray | None = None
    K12: np.ndarray | None = None
    q: np.ndarray | None = None
    q22: np.ndarray | None = None
    dK: np.ndarray | None = None
    dK12: np.ndarray | None = None
    J: np.ndarray | None = None
    gap: np.ndarray | None = None

    @property
    def gaussian(self) -> bool:
        """True where the representation is a centred Gaussian vector (after a dense block, or
        a LayerNorm of one)."""
        return self.q is None

    def with_(self, **fields) -> "State":
        """A copy with some fields replaced."""
        return replace(self, **fields)

    @classmethod
    def start(cls, K, *, K12=None, K22=None, tangents: bool = False, perp: bool = False,
              jacobian: bool = False, gap: bool = False) -> "State":
        """The state entering a layer: kernel ``K`` (and a second input), with the unit tangent
        ``dK = 1`` where ``tangents``, ``dK12 = 1`` where ``perp`` (the derivative along the
        covariance at coincident inputs: the rules read it off ``K`` alone, so no second input
        is needed), ``J = 1`` where ``jacobian`` and ``gap = 0`` (with ``J = 1``) where ``gap``."""
        K = np.asarray(K, dtype=float)
        one = np.ones_like(K)
        two = K12 is not None
        return cls(K=K, K22=None if not two else np.asarray(K22, dtype=float),
                   K12=None if not two else np.asarray(K12, dtype=float),
                   dK=one if tangents else None, dK12=one if perp else None,
                   J=one if (jacobian or gap) else None,
                   gap=np.zeros_like(K) if gap else None)
