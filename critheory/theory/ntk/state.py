"""The state the NTK theory carries through the blocks of a layer.

At infinite width the NTK of a representation ``y`` is diagonal in its neurons and the same for
each of them: ``Σ_θ λ_θ ∂y_i(x_a)/∂θ ∂y_j(x_b)/∂θ = δ_ij Θ_ab``. The state holds the mean-field
state of ``y`` (:class:`~critheory.theory.meanfield.state.State`: the kernel ``K`` and, for two
inputs, ``K12``, ``K22``) and

``T``    Θ_11, the NTK of input 1
``T12``  Θ_12 across the two inputs (None with one input)
``T22``  Θ_22 (None with one input)

Fields broadcast together; a leading axis on ``T`` (e.g. the basis used by
:mod:`~critheory.theory.ntk.depth` to read off the affine coefficients of a layer) is carried
through, since every rule is affine in Θ.

Examples
--------
>>> from critheory.theory.ntk.state import NTKState
>>> s = NTKState.start(2.0, 0.5, 1.5, lambda_b=1.0, lambda_w=3.0)   # q0 = 2, q12 = 0.5, q22 = 1.5
>>> float(s.T), float(s.T12), float(s.T22)                           # Θ¹ = λ_b + λ_W q
(7.0, 2.5, 5.5)
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from critheory.theory.meanfield.state import State

__all__ = ["NTKState"]


@dataclass(frozen=True)
class NTKState:
    """The mean-field state ``mf`` of a representation and its NTK (see the module docstring)."""

    mf: State
    T: np.ndarray
    T12: np.ndarray | None = None
    T22: np.ndarray | None = None

    @property
    def two_inputs(self) -> bool:
        return self.T12 is not None

    def with_(self, **fields) -> "NTKState":
        """A copy with some fields replaced."""
        return replace(self, **fields)

    @classmethod
    def start(cls, q0, q12=None, q22=None, *, weight_var=1.0, bias_var=0.0, lambda_b=0.0,
              lambda_w=0.0) -> "NTKState":
        """The preactivations of layer 1, ``z = W x + b`` on an input with ``q0 = |x|²/n0``
        (and a second input: ``q12 = x₁·x₂/n0``, ``q22 = |x₂|²/n0``): ``K¹ = σ_b² + σ_w² q``,
        ``Θ¹ = λ_b + λ_W q`` [PDLT §8.1; ``docs/ntk.md`` §1]."""
        q0 = np.asarray(q0, dtype=float)
        two = q12 is not None
        sw, sb = float(weight_var), float(bias_var)
        lb, lw = np.asarray(lambda_b, dtype=float), np.asarray(lambda_w, dtype=float)
        if two:
            q12 = np.asarray(q12, dtype=float)
            q22 = np.asarray(q22, dtype=float)
            mf = State(K=sb + sw * q0, K12=sb + sw * q12, K22=sb + sw * q22)
            return cls(mf, lb + lw * q0, lb + lw * q12, lb + lw * q22)
        return cls(State(K=sb + sw * q0), lb + lw * q0)
