"""Finite shaped networks in numpy: the covariance of m inputs after d = Tn layers.

``h^{l+1} = √(c/n) W^{l+1} φ_s(h^l)``, ``W_ij ~ N(0, 1)``, ``c⁻¹ = E[φ_s(g)²]``, starting from
inputs with ``<x_a, x_b>/n = V₀`` (unit norms, pairwise correlation ρ₀). Shaping:

* ``relu``: ``φ_s = s₊ max(x,0) + s₋ min(x,0)``, ``s± = 1 + c±/√n``, c = 2/(s₊² + s₋²);
* ``smooth``: ``φ_s(x) = s φ(x/s)``, ``s = a√n``; c by 160-point Gauss–Hermite (numpy);
* unshaped: φ itself (``c_plus=None``/``a=None``), c as above — the network that collapses.

The network as blocks: each layer is the unit ``Phi -> Dense(σ_w² = c, σ_b² = 0)``
(:func:`shaped_unit`: the dense block carries its own variance c, no bias), run by the
simulator's one interpreter (:func:`critheory.simulation.interpreter.run`) on the ``m`` inputs
as columns, with the shaped ``φ_s`` as the interpreter's φ (the shaping depends on the width n,
so it is the simulated network's φ, not an :class:`~critheory.activation.Activation`).

Sampler (:class:`_ShapedSampler`): the rows of ``W φ`` are iid N(0, φᵀφ) given φ, so the next
layer is ``G Lᵀ`` with ``LLᵀ = (c/n) φᵀφ`` and G an n×m Gaussian matrix — exactly the law of the
network's outputs at O(n m) per layer instead of O(n² m). ``dense=True`` draws the full W (the
reference; the tests check that both agree). The random streams are those of the loop this
replaced (one ``default_rng(seed)``: the inputs, then one draw per layer, no bias draws).

This module imports only errors, common, activation and blocks: it is an independent check of
:mod:`critheory.theory.shaped`.

Examples
--------
>>> from critheory.simulation.shaped import simulate_shaped
>>> r = simulate_shaped("relu", width=16, T=0.5, rho0=0.5, c_plus=0.0, c_minus=-1.0,
...                     networks=200, seed=0)
>>> r.V.shape, r.depth
((200, 2, 2), 8)
>>> bool(-1 <= r.rho.min() and r.rho.max() <= 1)
True
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from critheory.blocks.blocks import Dense, Phi
from critheory.errors import InvalidArgumentError
from critheory.common import limits
from critheory.common.reprs import dataclass_dict, short_repr
from .interpreter import Context, run

__all__ = ["ShapedMeasurement", "simulate_shaped", "check_budget", "shaped_unit", "MAX_WORK"]

#: Budget: networks × depth × width × m (× width with ``dense``) refused above (~1 minute).
MAX_WORK = limits.MAX_SHAPED_SIM_WORK


def check_budget(width, T, networks, inputs=2, dense=False) -> int:
    """Refuse (before any work) a simulation beyond :data:`MAX_WORK`; returns the depth."""
    if int(width) != width or width < 2:
        raise InvalidArgumentError(f"width must be an integer >= 2, got {width}")
    if int(networks) != networks or networks < 2:
        raise InvalidArgumentError(f"networks must be an integer >= 2, got {networks}")
    if not (math.isfinite(float(T)) and T > 0):
        raise InvalidArgumentError(f"the depth-to-width ratio T must be finite and > 0, got {T}")
    depth = max(1, int(round(T * width)))
    work = networks * depth * width * inputs * (width if dense else 1)
    if work > MAX_WORK:
        raise InvalidArgumentError(f"simulation of {networks} networks of width {width} and depth "
                                   f"{depth} is beyond the budget ({work:.1e} > {MAX_WORK:.0e})")
    return depth


@dataclass(frozen=True)
class ShapedMeasurement:
    """Covariances measured at the output of ``networks`` independent networks.

    Attributes
    ----------
    V : ndarray (networks, m, m)
        ``<h^d_a, h^d_b>/n`` at depth d.
    rho : ndarray (networks,)
        Correlation of inputs 1 and 2 at depth d.
    log_norm : ndarray (networks,)
        ``log V_11``.
    width, depth, T : int, int, float
        n, d = round(T n) and d/n.
    times, rho_paths : ndarray
        l/n and ρ₁₂ along the first ``keep`` networks (for plots).
    seed, elapsed : int, float
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    V: np.ndarray
    rho: np.ndarray
    log_norm: np.ndarray
    width: int
    depth: int
    T: float
    times: np.ndarray
    rho_paths: np.ndarray
    seed: int
    elapsed: float


def shaped_unit(c: float) -> tuple:
    """One layer of the shaped MLP as blocks: ``h -> √(c/n) W φ_s(h)``, i.e. φ then a dense
    block with its own ``σ_w² = c`` and no bias.

    >>> shaped_unit(2.0)
    (Phi(), Dense(weight_var=2.0, bias_var=0.0, width=1.0))
    """
    return (Phi(), Dense(weight_var=c, bias_var=0.0))


class _ShapedSampler:
    """The shaped networks' weights for the interpreter's dense step: the full ``W`` (``dense``)
    or the row sampler ``G Lᵀ`` with ``LLᵀ = (var/n) xᵀx`` (module docstring); no biases."""

    def __init__(self, rng, dense: bool):
        self.rng, self.dense = rng, dense

    def matmul(self, x, var: float, n_out: int):
        rng = self.rng
        B, n, m = x.shape
        if self.dense:
            W = rng.standard_normal((B, n_out, n))
            return math.sqrt(var / n) * (W @ x)
        K = (var / n) * np.einsum("pna,pnb->pab", x, x)
        # Cholesky with a PSD guard (K is PSD; rank-deficient when inputs coincide)
        if m == 2:
            k00 = np.maximum(K[:, 0, 0], 1e-300)
            L = np.zeros_like(K)
            L[:, 0, 0] = np.sqrt(k00)
            L[:, 1, 0] = K[:, 0, 1] / L[:, 0, 0]
            L[:, 1, 1] = np.sqrt(np.maximum(K[:, 1, 1] - K[:, 0, 1] ** 2 / k00, 0.0))
        else:
            wk, Uk = np.linalg.eigh(K)
            L = Uk * np.sqrt(np.maximum(wk, 0.0))[:, None, :]
        G = rng.standard_normal((B, n_out, m))
        return G @ np.swapaxes(L, -1, -2)

    def bias(self, n: int, var: float):
        if var != 0.0:
            raise InvalidArgumentError("the shaped networks have no biases")
        return 0.0


def _hermite_c(phi) -> float:
    x, w = np.polynomial.hermite_e.hermegauss(160)
    return 1.0 / float(np.sum(w * phi(x) ** 2) / math.sqrt(2 * math.pi))


def simulate_shaped(activation, *, width: int, T: float, rho0: float, inputs: int = 2,
                    c_plus: float | None = None, c_minus: float | None = None,
                    a: float | None = None, networks: int = 1000, seed: int = 0,
                    dense: bool = False, keep: int = 0, params=None) -> ShapedMeasurement:
    """Simulate ``networks`` shaped networks and measure the output covariance.

    Parameters
    ----------
    activation : str or Activation
        Base activation. With ``c_plus``/``c_minus``: ReLU shaping (the activation is then
        unused except as the unshaped comparison). With ``a``: smooth shaping ``s φ(x/s)``
        (φ should have φ(0) = 0, φ'(0) = 1). With neither: the unshaped network.
    width, T, rho0, inputs : int, float, float, int
        n, depth-to-width ratio (depth round(Tn)), initial pairwise correlation, m.
    networks, seed : int
        Number of independent networks; seed of ``numpy.random.default_rng``.
    dense : bool
        Draw the full n×n weight matrices (slow reference) instead of the row sampler.
    keep : int
        Record ρ₁₂ through depth for the first ``keep`` networks.

    Examples
    --------
    >>> import critheory as ct
    >>> m = ct.simulate_shaped("relu", width=16, T=0.5, rho0=0.5, c_plus=0.0, c_minus=-1.0,
    ...                        networks=50)
    >>> m.rho.shape
    (50,)
    """
    from critheory.activation import Activation

    depth = check_budget(width, T, networks, inputs, dense)
    if not (math.isfinite(rho0) and abs(rho0) <= 1):
        raise InvalidArgumentError(f"rho0 must lie in [-1, 1], got {rho0}")
    m = int(inputs)
    if m < 2 or (m > 2 and rho0 < -1.0 / (m - 1)):
        raise InvalidArgumentError(f"{m} inputs at pairwise correlation {rho0} are impossible")
    n = int(width)
    if c_plus is not None or c_minus is not None:
        sp_ = 1.0 + (c_plus or 0.0) / math.sqrt(n)
        sm = 1.0 + (c_minus or 0.0) / math.sqrt(n)

        def phi(x):
            return np.where(x > 0, sp_ * x, sm * x)
        c = 2.0 / (sp_ ** 2 + sm ** 2)
    else:
        act = activation if hasattr(activation, "numpy") else Activation.get(activation, params)
        f = act.numpy
        if a is not None:
            if not a > 0:
                raise InvalidArgumentError(f"a must be > 0, got {a}")
            s = a * math.sqrt(n)

            def phi(x):
                return s * f(x / s)
        else:
            phi = f
        c = _hermite_c(phi)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    V0 = np.full((m, m), float(rho0))
    np.fill_diagonal(V0, 1.0)
    w, U = np.linalg.eigh(V0)
    L0 = U * np.sqrt(np.maximum(w, 0.0))
    # inputs with <x_a, x_b>/n = V0 exactly: x = √n Q L0ᵀ, Q with orthonormal columns
    Q, _ = np.linalg.qr(rng.standard_normal((networks, n, m)))
    h = math.sqrt(n) * Q @ L0.T
    keep = min(int(keep), networks)
    rp = []

    def rho_of(hh):
        g = np.einsum("pna,pnb->pab", hh, hh)
        return np.clip(g[:, 0, 1] / np.sqrt(np.maximum(g[:, 0, 0] * g[:, 1, 1], 1e-300)), -1, 1)

    if keep:
        rp.append(rho_of(h[:keep]))
    unit = shaped_unit(c)
    # the shaped φ_s is the interpreter's φ; no tangents are carried (no φ' needed)
    ctx = Context(unit, phi, None, c, 0.0, width=n)
    sampler = _ShapedSampler(rng, dense)
    for _ in range(depth):
        h, _ = run(unit, sampler, ctx, h)
        if keep:
            rp.append(rho_of(h[:keep]))
    V = np.einsum("pna,pnb->pab", h, h) / n
    rho = np.clip(V[:, 0, 1] / np.sqrt(np.maximum(V[:, 0, 0] * V[:, 1, 1], 1e-300)), -1, 1)
    with np.errstate(divide="ignore"):
        log_norm = np.log(V[:, 0, 0])
    return ShapedMeasurement(V=V, rho=rho, log_norm=log_norm, width=n, depth=depth,
                             T=depth / n, times=np.arange(depth + 1) / n if keep else
                             np.zeros(0), rho_paths=np.array(rp), seed=int(seed),
                             elapsed=time.perf_counter() - t0)
