"""The mean-field maps of a network: kernel and covariance maps and the susceptibilities.

:class:`LayerMaps` reads a :class:`~critheory.blocks.network.Network` through the block rules of
:mod:`critheory.theory.meanfield.rules`; every map is vectorized over arrays of ``K``, ``σ_w²``
(``sw``) and ``σ_b²`` (``sb``):

* ``kernel_map(K, sw, sb)``: the single-input kernel of the next layer, ``K^{l+1}``;
* ``covariance_map(K11, K12, K22, sw, sb)``: the two-input covariance of the next layer;
* ``chi_parallel``: ``χ_∥ = dK^{l+1}/dK^l``;
* ``chi_perp``: ``χ_⊥ = ∂K^{l+1}_{12}/∂K^l_{12}`` at coincident inputs, from the covariance map;
* ``chi_jacobian``: the APJN factor ``χ_J``, ``J^{l0,l+1} = χ_J(K^l) J^{l0,l}`` [DHG eq. (4)];
* ``critical_curve(t)``: where the network's capabilities give one, an explicit parametrization
  ``(σ_w², σ_b², K*)`` of the critical set ``χ_J(K*) = 1`` (see :meth:`LayerMaps.critical_curve`).

For the registry's architectures the rules give [PDLT §4–5; DHG §2–4]:

=====================  ==================================  ===================================
architecture           kernel map ``K -> K'``              ``χ_J``
=====================  ==================================  ===================================
``mlp``                ``σ_b² + σ_w² E_K[φ²]``             ``σ_w² E_K[φ'²]``
``residual``           ``μ²K + σ_b² + σ_w² E_K[φ²]``       ``μ² + σ_w² E_K[φ'²]``
``pre-ln``             ``A = σ_b² + σ_w² E_1[φ²]``         ``B/K``,  ``B = σ_w² E_1[φ'²]``
``post-ln``            ``σ_b² + σ_w²``                     ``σ_w² E_K[φ'²]/Var_K[φ]``
``pre-ln-residual``    ``μ²K + A``                         ``μ² + B/K``
``pre-ln-mlp-block``   ``μ²K + σ_b² + σ_w² E_q[φ²]``       ``μ² + σ_w⁴ E_q[φ'²]/K``
=====================  ==================================  ===================================

with ``q = σ_w² + σ_b²`` the variance of the MLP block's hidden preactivation; the LayerNorm
rows are re-derived in ``docs/architectures.md``.

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> mlp = architecture("mlp", "relu")
>>> float(mlp.chi_jacobian(3.0, 2.0, 0.1)), float(mlp.kernel_map(1.0, 2.0, 0.0))
(1.0, 1.0)
>>> t = architecture("mlp", "tanh")
>>> float(t.chi_perp(0.5, 1.3, 0.1)) == float(t.chi_jacobian(0.5, 1.3, 0.1))
True
"""
from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from critheory.blocks.network import Capabilities, Network
from critheory.blocks.registry import network as _network
from critheory.common.checks import check_hyper
from critheory.errors import InvalidArgumentError
from critheory.theory.fold import Ctx, check_one_token, fold
from critheory.theory.meanfield.rules import THEORY, check_composition
from critheory.theory.state import State

__all__ = ["LayerMaps", "architecture", "check_hyper"]


class LayerMaps:
    """The infinite-width maps of one network (see the module docstring)."""

    def __init__(self, net: Network):
        if not isinstance(net, Network):
            raise InvalidArgumentError(f"expected a Network, got {net!r}")
        self.network = net
        self.activation = net.activation
        self.name = net.name
        self.caps: Capabilities = net.capabilities
        self.mu = net.mu
        self.mu2 = self.caps.mu2
        check_one_token(net, THEORY.name)
        check_composition(net.unit)  # refuse what the rules cannot read (e.g. φ after φ)

    def __repr__(self) -> str:
        return f"LayerMaps({self.describe()}, {self.activation.name})"

    def __eq__(self, other) -> bool:
        return isinstance(other, LayerMaps) and other.network == self.network

    def __hash__(self) -> int:
        return hash(self.network)

    def describe(self) -> str:
        return self.network.describe()

    # ------------------------------------------------------------------ maps
    def _run(self, K, sw, sb, need_K: bool = True, **want) -> State:
        return fold(self.network.unit, State.start(K, **want),
                    Ctx(self.activation, sw, sb, need_K), THEORY)

    def kernel_map(self, K, sw, sb) -> np.ndarray:
        return self._run(K, sw, sb).K

    def covariance_map(self, K11, K12, K22, sw, sb):
        s = self._run(K11, sw, sb, K12=K12, K22=K22)
        return s.K, s.K12, s.K22

    def _tangent(self, field: str, K, sw, sb, **start) -> np.ndarray:
        """One tangent field of the layer's output state (the kernel itself is not computed
        where nothing downstream reads it), broadcast over K, σ_w², σ_b²."""
        s = self._run(K, sw, sb, False, **start)
        shape = np.broadcast(np.asarray(K), sw, sb).shape
        return np.broadcast_to(getattr(s, field), shape).astype(float)

    def chi_parallel(self, K, sw, sb) -> np.ndarray:
        return self._tangent("dK", K, sw, sb, tangents=True)

    def chi_perp(self, K, sw, sb) -> np.ndarray:
        return self._tangent("dK12", K, sw, sb, perp=True)

    def chi_jacobian(self, K, sw, sb) -> np.ndarray:
        return self._tangent("J", K, sw, sb, jacobian=True)

    def kernel_and_chi(self, K, sw, sb) -> tuple[np.ndarray, np.ndarray]:
        """``(kernel_map, chi_jacobian)`` in one pass through the blocks."""
        s = self._run(K, sw, sb, jacobian=True)
        return s.K, s.J

    def input_kernel(self, q0, sw, sb) -> np.ndarray:
        """K^1 = σ_b² + σ_w² q0 for an input with |x|²/N_0 = q0 (plain first layer)."""
        return np.asarray(sb, dtype=float) + np.asarray(sw, dtype=float) * q0

    # ------------------------------------------------------------------ capabilities
    @property
    def has_fixed_point(self) -> bool:
        return self.caps.has_fixed_point

    @property
    def residual(self) -> bool:
        return self.caps.residual_strength is not None

    def unit_constants(self, sw, sb) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) of a network with a normalized input: ``K' = μ²K + A``, ``χ_J = μ² + B/K``.

        Read off the maps at K = 1, which is exact for such networks.
        """
        if not self.caps.normalized_input:
            raise InvalidArgumentError(f"{self.name}: the kernel map is not of the form "
                                       "mu^2 K + A (no LayerNorm at the input of the layer)")
        sw, sb = np.asarray(sw, dtype=float), np.asarray(sb, dtype=float)
        return self._branch(np.ones(np.broadcast(sw, sb).shape), sw, sb)

    def _branch(self, K, sw, sb) -> tuple[np.ndarray, np.ndarray]:
        """(K', χ_J) of the blocks inside the skip connection alone."""
        s = fold(self.network.branch, State.start(K, jacobian=True),
                 Ctx(self.activation, sw, sb), THEORY)
        return s.K, s.J

    @cached_property
    def _unit_moments(self) -> tuple[float, float]:
        """(S, D) at unit hyperparameters and K = 1 for a single-dense network with a normalized
        input: ``A = σ_b² + σ_w² S`` and ``B = σ_w² D``."""
        A1, B1 = self.unit_constants(1.0, 0.0)
        return float(A1), float(B1)

    @property
    def line_slope(self) -> float:
        """dσ_b²/dσ_w² along the critical ray ``B = A`` of a single-dense network with a
        normalized input (pre-LN: ``E_1[φ'²] − E_1[φ²]``)."""
        S, D = self._unit_moments
        return D - S

    @property
    def curve_parameter(self) -> str:
        """The parameter of :meth:`critical_curve`: ``K*`` or ``sigma_w^2`` (rays)."""
        return "sigma_w^2" if self.caps.normalized_input else "K*"

    def critical_curve(self, t, *, noise: bool = False):
        """(σ_w², σ_b², K*) on the critical set χ_J(K*) = 1, parametrized by ``t``.

        Single-dense networks only: at fixed K their maps are ``K' = μ²K + σ_b² + σ_w² S(K)``
        and ``χ_J = μ² + σ_w² D(K)`` (S, D: the block rules at σ_w² = 1, σ_b² = 0), so with
        ``t = K*``: ``σ_w² = (1 − μ²)/D(K*)``, ``σ_b² = (1 − μ²)K* − σ_w² S(K*)``. With a
        normalized input the set is the ray ``σ_b² = (D − S) σ_w²`` (``t = σ_w²``,
        ``K* = σ_w² D/(1 − μ²)``). NaN where the parameter gives no point (μ >= 1, or an
        expectation overflowing float64). ``noise=True`` adds a fourth array: the rounding
        level of σ_b² (relative where the gap was resolved, else relative to K*).
        """
        t = np.asarray(t, dtype=float)
        if not self.caps.single_dense:
            raise InvalidArgumentError(f"{self.name} has no explicit parametrization of its "
                                       "critical set (more than one dense block)")
        if self.caps.unbounded_growth:
            nan = np.full(np.shape(t), np.nan)
            return (nan, nan, nan, nan) if noise else (nan, nan, nan)
        one = 1.0 - self.mu2
        if self.caps.normalized_input:
            S, D = self._unit_moments
            out = (t.copy(), t * (D - S), t * D / one)
            return out + (1e-12 * (np.abs(out[1]) + np.abs(out[2])),) if noise else out
        b = fold(self.network.branch, State.start(t, gap=True), Ctx(self.activation, 1.0, 0.0),
                 THEORY)
        S, D = b.K, b.J
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            sw = one / D
            # σ_b² = (1 − μ²)(K* − S/D) = (1 − μ²)·gap/D, gap = K*·D − S followed through the
            # blocks without cancellation (None through a LayerNorm: the difference then)
            diff = one * t - sw * S
            sb = diff if b.gap is None else np.where(np.isfinite(b.gap), one * b.gap / D, diff)
            resolved = np.zeros(np.shape(t), dtype=bool) if b.gap is None else np.isfinite(b.gap)
            # (each term scaled first: |t| + |σ_b²| overflows near the largest float)
            lvl = np.where(resolved, 1e-12 * np.abs(sb), 1e-12 * np.abs(t) + 1e-12 * np.abs(sb))
        return (sw, sb, t, lvl + 5e-324) if noise else (sw, sb, t)


def check_arch(maps) -> "LayerMaps":
    """The mean-field maps of a public function's network argument: ``maps`` itself, the maps
    of a :class:`~critheory.blocks.network.Network`, or an InvalidArgumentError naming what was
    given instead (a name such as ``"tanh"``, None, ...): an argument check, no solver
    decision."""
    if isinstance(maps, Network):
        return LayerMaps(maps)
    if not isinstance(maps, LayerMaps):
        raise InvalidArgumentError(
            f"expected a network or the mean-field maps of an architecture "
            f"(network('mlp', 'tanh'), architecture('mlp', 'tanh')), got {maps!r:.60}")
    return maps


def architecture(name: Any = "mlp", activation: Any = "relu", mu: float = 1.0,
                 params=None) -> LayerMaps:
    """The mean-field maps of a registered architecture (``mlp``, ``residual``, ``pre-ln``,
    ``post-ln``, ``pre-ln-residual``, ``pre-ln-mlp-block``, or an alias), or of a
    :class:`~critheory.blocks.network.Network`; ``mu`` is the residual strength (ignored
    without a skip connection).

    Examples
    --------
    >>> import critheory as ct
    >>> maps = ct.architecture("mlp", "tanh")
    >>> ct.critical_points(maps)[0].weight_var
    1.0
    """
    if isinstance(name, LayerMaps):
        return name
    if isinstance(name, Network):
        return LayerMaps(name)
    return LayerMaps(_network(name, activation, mu, params))
