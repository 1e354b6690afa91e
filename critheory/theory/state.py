"""The one state every theory carries through the blocks of a network.

A rule maps the state of a block's input to the state of its output
(:mod:`critheory.theory.fold`). One object carries the fields of every theory, as numpy arrays
that broadcast over the hyperparameter grid (or the depths, or a leading basis axis); ``None``
marks a field nobody asked for, which is then never computed. A theory fills its own fields and
leaves the others ``None``.

Representation (:class:`Rep`): what the vector is, read by the one composition grammar
(:data:`critheory.theory.fold.GRAMMAR`): ``GAUSSIAN`` (a dense block's output: a centred
Gaussian at infinite width), ``PHI`` (``φ(h)`` of such an ``h``, ``q`` its variance),
``NORMALIZED`` (a LayerNorm or an RMSNorm of a Gaussian vector: the same at infinite width;
the finite-width ``P`` tells them apart),
``NORMALIZED_PHI`` (a LayerNorm of ``φ(h)``: centred, unit variance), ``SCALED_PHI`` (an
RMSNorm of ``φ(h)``: ``φ(h)/√E_q[φ²]``, unit second moment but not centred; ``q`` stays the
variance of ``h``).

Mean field (infinite width):

``K``      second moment ``E[x_i²]`` of the representation of input 1. With T tokens it has
           trailing ``(T, T)`` axes: the token kernel ``G_ts = lim (1/n) Σ_i x_{t,i} x_{s,i}``
           (at T = 1 the scalar kernel)
``K22``, ``K12``   the same for input 2 and the covariance of the two inputs
``q``, ``q22``     where the representation is ``φ(h)``: the variance of the Gaussian ``h``
``dK``     derivative of ``K`` with respect to the layer's input kernel (χ_∥)
``dK12``   derivative of ``K12`` with respect to the input covariance at coincident inputs (χ_⊥)
``J``      the factor by which the blocks multiply ``‖t‖²/N`` of a tangent vector (χ_J); with T
           tokens the tangent kernel ``Θ_ts = lim (1/n) Σ_i δx_{t,i} δx_{s,i}`` with trailing
           ``(T, T)`` axes (started at the identity: ``tr Θ / T`` is the APJN)
``gap``    ``K₀·J − K`` (K₀ the kernel entering the layer), followed without cancellation

Finite width (first order in 1/n, n the network's width):

``K1``     the 1/n shift of the kernel: ``E[y_i²] = K + K1/n``
``V``      the four-point vertex ``n Cov(y_i², y_j²)``, i ≠ j
``D``      ``Var(y_i²)`` at infinite width
``P``      ``n E[y_i y_j]``, i ≠ j (−1 after a LayerNorm)
``width``  the width of the representation as a multiple of n (a dense block's ``width``)

NTK (infinite width): ``theta`` (Θ_11), ``theta12``, ``theta22`` (two inputs).

NTK at order 1/n (one input; :mod:`critheory.theory.ntk.finite`, ``docs/ntk.md`` §7), for
distinct neurons i ≠ j of the representation and its NTK matrix ``Θ̂_ij``:

``theta1``   the 1/n shift of the mean: ``E[Θ̂_ii] = theta + theta1/n``
``theta_a``  ``n Cov(Θ̂_ii, Θ̂_jj)`` (PDLT's A)
``theta_b``  ``n E[Θ̂_ij²]`` (PDLT's B); a Gaussian representation has ``n Var(Θ̂_ii) = A + 2B``
``theta_d``  ``n Cov(Θ̂_ii, x_j²)`` (PDLT's D)
``theta_f``  ``n E[Θ̂_ij x_i x_j]`` (PDLT's F); a Gaussian representation has
             ``n Cov(Θ̂_ii, x_i²) = D + 2F``
``theta_s``, ``theta_sx``  one neuron at infinite width: ``Var(Θ̂_ii)`` and ``Cov(Θ̂_ii, x_i²)``
             (0 for a Gaussian representation; ``Θ² Var(φ'²)``, ``Θ Cov(φ'², φ²)`` after φ)

dNTK and ddNTK at leading order 1/n (one input; :mod:`critheory.theory.ntk.dntk`,
``docs/dntk.md``), for a Gaussian representation (a dense block's output) with update
directions ``g_a = λ∇z_a``, ``dĤ_{a ij} = g_a·∇Θ̂_ij``, ``ω_{iabc} = ∇³z_i[g_a, g_b, g_c]`` and
``ν_{ijab} = g_aᵀ∇²z_i λ ∇²z_j g_b``:

``dntk_p``, ``dntk_q``   ``n E[dĤ_{i0 i1 i2} z_{i3}] = δ_{i0i3}δ_{i1i2} P + (δ_{i0i1}δ_{i2i3}
             + δ_{i0i2}δ_{i1i3}) Q`` (PDLT's P, Q)
``ddntk_r``  ``n E[ω_{iabc}] = R (δ_ia δ_bc + δ_ib δ_ac + δ_ic δ_ab)``
``ddntk_s``, ``ddntk_t``, ``ddntk_u``  ``n E[ν_{ijab}] = S δ_ij δ_ab + T δ_ia δ_jb + U δ_ib δ_ja``
``dntk_sums`` after φ: the eight neuron sums ``Ξ₁…Ξ₈`` the next dense block reads (a tuple;
             None elsewhere)

On m inputs (:mod:`critheory.theory.ntk.finite_data`) the same fields carry trailing input axes:
``theta``, ``theta1`` ``(m, m)``, the others ``(m, m, m, m)`` with the index convention stated
there (``A``, ``D`` by pair; ``B``, ``F`` by neuron), beside the several-input ``K``, ``K1``,
``V``, ``D`` of :mod:`critheory.theory.finitewidth.data_rules`.

Examples
--------
>>> from critheory.theory.state import Rep, State
>>> s = State.start(2.0, jacobian=True)
>>> float(s.K), float(s.J), s.rep is Rep.GAUSSIAN, s.V is None
(2.0, 1.0, True, True)
>>> f = State.start_finite_width(2.0)
>>> float(f.K), float(f.V), float(f.D), f.rep.value
(2.0, 0.0, 8.0, 'gaussian')
>>> n = State.start_ntk(2.0, 0.5, 1.5, lambda_b=1.0, lambda_w=3.0)   # Θ¹ = λ_b + λ_W q
>>> float(n.theta), float(n.theta12), float(n.theta22)
(7.0, 2.5, 5.5)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["State", "Rep"]


class Rep(enum.Enum):
    """What a representation is (see the module docstring)."""

    GAUSSIAN = "gaussian"
    PHI = "phi"
    NORMALIZED = "normalized"
    NORMALIZED_PHI = "normalized-phi"
    SCALED_PHI = "scaled-phi"


@dataclass(frozen=True, eq=False)
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
    K1: np.ndarray | None = None
    V: np.ndarray | None = None
    D: np.ndarray | None = None
    P: np.ndarray | None = None
    theta: np.ndarray | None = None
    theta12: np.ndarray | None = None
    theta22: np.ndarray | None = None
    theta1: np.ndarray | None = None
    theta_a: np.ndarray | None = None
    theta_b: np.ndarray | None = None
    theta_d: np.ndarray | None = None
    theta_f: np.ndarray | None = None
    theta_s: np.ndarray | None = None
    theta_sx: np.ndarray | None = None
    dntk_p: np.ndarray | None = None
    dntk_q: np.ndarray | None = None
    ddntk_r: np.ndarray | None = None
    ddntk_s: np.ndarray | None = None
    ddntk_t: np.ndarray | None = None
    ddntk_u: np.ndarray | None = None
    dntk_sums: tuple | None = None
    rep: Rep = Rep.GAUSSIAN
    width: float = 1.0

    @property
    def gaussian(self) -> bool:
        """True where the representation is a dense block's output (a centred Gaussian)."""
        return self.rep is Rep.GAUSSIAN

    @property
    def two_inputs(self) -> bool:
        return self.K12 is not None

    def with_(self, **fields) -> "State":
        """A copy with some fields replaced."""
        return replace(self, **fields)

    @classmethod
    def start(cls, K, *, K12=None, K22=None, tangents: bool = False, perp: bool = False,
              jacobian: bool = False, gap: bool = False) -> "State":
        """The mean-field state entering a layer: kernel ``K`` (and a second input), with the
        unit tangent ``dK = 1`` where ``tangents``, ``dK12 = 1`` where ``perp`` (the derivative
        along the covariance at coincident inputs: the rules read it off ``K`` alone, so no
        second input is needed), ``J = 1`` where ``jacobian`` and ``gap = 0`` (with ``J = 1``)
        where ``gap``."""
        K = np.asarray(K, dtype=float)
        one = np.ones_like(K)
        two = K12 is not None
        return cls(K=K, K22=None if not two else np.asarray(K22, dtype=float),
                   K12=None if not two else np.asarray(K12, dtype=float),
                   dK=one if tangents else None, dK12=one if perp else None,
                   J=one if (jacobian or gap) else None,
                   gap=np.zeros_like(K) if gap else None)

    @classmethod
    def start_finite_width(cls, K, K1=0.0, V=0.0, *, tangents: bool = False) -> "State":
        """A dense block's output at the network's width with kernel ``K``, shift ``K1`` and
        vertex ``V`` (the first layer, ``K¹ = σ_b² + σ_w² q0`` for a fixed input, has
        K1 = V = 0 exactly); ``D = 2K²``, ``P = 0``."""
        K = np.asarray(K, dtype=float)
        return cls(K=K, K1=np.asarray(K1, dtype=float), V=np.asarray(V, dtype=float),
                   D=2.0 * K * K, P=np.zeros_like(K),
                   dK=np.ones_like(K) if tangents else None)

    @classmethod
    def start_ntk(cls, q0, q12=None, q22=None, *, weight_var=1.0, bias_var=0.0, lambda_b=0.0,
                  lambda_w=0.0) -> "State":
        """The preactivations of layer 1, ``z = W x + b`` on an input with ``q0 = |x|²/n0``
        (and a second input: ``q12 = x₁·x₂/n0``, ``q22 = |x₂|²/n0``): ``K¹ = σ_b² + σ_w² q``,
        ``Θ¹ = λ_b + λ_W q`` [PDLT §8.1; ``docs/ntk.md`` §1]."""
        q0 = np.asarray(q0, dtype=float)
        sw, sb = float(weight_var), float(bias_var)
        lb, lw = np.asarray(lambda_b, dtype=float), np.asarray(lambda_w, dtype=float)
        if q12 is not None:
            q12 = np.asarray(q12, dtype=float)
            q22 = np.asarray(q22, dtype=float)
            return cls(K=sb + sw * q0, K12=sb + sw * q12, K22=sb + sw * q22,
                       theta=lb + lw * q0, theta12=lb + lw * q12, theta22=lb + lw * q22)
        return cls(K=sb + sw * q0, theta=lb + lw * q0)

    @classmethod
    def start_tokens(cls, G, Theta) -> "State":
        """The token state: kernel ``G`` (``(..., T, T)``) and tangent kernels ``Θ``."""
        return cls(K=G, J=Theta)
