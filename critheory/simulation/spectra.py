"""Empirical Jacobian spectra: explicit input–output Jacobians of finite random networks.

Two units of the registry, with the conventions of :mod:`critheory.theory.spectra` (the
simulator shares only the activation and the block vocabulary with the theory: which
convention applies is asked of the network's blocks, :func:`critheory.blocks.spectra.solver_for`):

``mlp``     ``h^l = W^l x^{l−1} + b^l``, ``x^l = φ(h^l)``, ``l = 1..L``; the input is
            ``x^0 = φ(h^0)`` with ``h^0 ~ N(0, input_var)`` i.i.d. (pass the fixed point q*:
            every layer then sees its stationary preactivation law);
            ``J = ∂x^L/∂x^0 = Π D_l W_l``.
``tarnowski-resnet``  ``x_l = x_{l−1} + φ(W_l x_{l−1} + b_l)``, ``W`` of variance ``σ_w²/(N L)``; input
            ``x_0 ~ N(0, input_var)`` i.i.d.; ``J = Π (1 + D_l W_l)``.

Both are compositions of blocks run by the simulator's one interpreter
(:mod:`critheory.simulation.interpreter`; the Jacobian is its tangent along every input
direction). Weights: ``gaussian`` (i.i.d. ``N(0, σ²/N)``) or ``orthogonal`` (``σ`` times a Haar matrix:
the Q of a Gaussian matrix's QR with the signs of R's diagonal, Mezzadri 2007). Biases
``N(0, σ_b²)``. Each network ``i`` draws from its own ``numpy.random.Generator`` (PCG64),
spawned from ``SeedSequence(seed)``: network ``i`` is the same whatever the ensemble size.

Cost: ``L`` products of ``N × N`` matrices and one SVD per network, ``O(L N³)``; refused above
:data:`MAX_COST` (``seeds · (depth + 10) · width³``) and :data:`MAX_WIDTH`.

Examples
--------
>>> from critheory.simulation.spectra import simulate_spectrum
>>> r = simulate_spectrum("x", 1.0, 0.0, depth=3, width=50, seeds=2, weights="orthogonal")
>>> bool(abs(r.sq - 1.0).max() < 1e-12)                       # orthogonal linear: isometry
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.common.checks import check_bias_var, check_int, check_nonnegative, check_weight_var
from critheory.blocks.blocks import Dense, Phi, Residual
from critheory.blocks.network import Network
from critheory.blocks.spectra import solver_for
from critheory.blocks.spectra import spectrum_network as blocks_spectrum_network
from critheory.errors import InvalidArgumentError
from .interpreter import Context, run
from critheory.common import limits
from critheory.common.reprs import dataclass_dict, short_repr

__all__ = ["simulate_spectrum", "SimulatedSpectrum", "haar_orthogonal", "check_spectrum_args",
           "spectrum_network", "MAX_WIDTH",
           "MAX_COST", "MAX_SEEDS", "MAX_DEPTH"]

MAX_WIDTH = limits.MAX_WIDTH_SPECTRUM_SIM
MAX_SEEDS = limits.MAX_SEEDS_SPECTRUM_SIM
MAX_DEPTH = limits.MAX_DEPTH_SPECTRUM_SIM
#: seeds · (depth + 10) · width³ (≈ flops of the products and SVDs): ~1 minute on one core
MAX_COST = limits.MAX_SPECTRUM_SIM_WORK


@dataclass(frozen=True, eq=False)
class SimulatedSpectrum:
    """Squared singular values of the Jacobians of ``seeds`` networks.

    Attributes
    ----------
    sq : ndarray, shape (seeds, width)
        Squared singular values ``λ = σ²`` of each network's ``J`` (descending).
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    arch: str
    weights: str
    activation: str
    weight_var: float
    bias_var: float
    depth: int
    width: int
    seed: int | None
    input_var: float
    sq: np.ndarray

    @property
    def seeds(self) -> int:
        return self.sq.shape[0]

    def moments(self, k: int, drop_top: int = 0) -> np.ndarray:
        """Per-network ``(1/N) Σ λ_i^k`` (without the ``drop_top`` largest λ)."""
        v = self.sq[:, drop_top:]
        return (v ** k).mean(axis=1)

    def pooled(self, drop_top: int = 0) -> np.ndarray:
        return np.sort(self.sq[:, drop_top:].ravel())


def haar_orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Haar-distributed ``n × n`` orthogonal matrix."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _weight(rng, n, var, orthogonal):
    if orthogonal:
        return math.sqrt(var) * haar_orthogonal(rng, n)
    w = rng.standard_normal((n, n))
    w *= math.sqrt(var / n)
    return w


class _SpectrumSampler:
    """Fresh layers of one network: ``W`` Gaussian or σ times a Haar matrix, then the bias."""

    def __init__(self, rng, orthogonal: bool):
        self.rng, self.orthogonal = rng, orthogonal

    def matmul(self, x, var: float, n_out: int):
        return (_weight(self.rng, x.shape[-2], var, self.orthogonal) @ x[0])[None]

    def bias(self, n: int, var: float):
        return (math.sqrt(var) * self.rng.standard_normal(n))[None, :, None]


def spectrum_network(activation, arch="mlp", params=None) -> Network:
    """The network of a spectrum simulation: ``arch`` (a registry name, ``resnet`` being the
    deprecated spelling of ``tarnowski-resnet``, or a
    :class:`~critheory.blocks.network.Network`, also in the activation's place) resolved once
    (:func:`critheory.blocks.spectra.spectrum_network`; a conflicting activation is refused).
    Which convention simulates it is :func:`critheory.blocks.spectra.solver_for`'s answer,
    asked of its blocks: a network no spectrum solver covers is refused."""
    return blocks_spectrum_network(arch, activation, params)


def check_spectrum_args(weight_var, bias_var, depth, width, seeds, net, weights, seed,
                        input_var):
    """The arguments of :func:`simulate_spectrum`, checked (budgets included) before any work;
    ``net`` is the network (:func:`spectrum_network`), refused unless a spectrum solver covers
    it; returns ``(σ_w², σ_b², L, N, S, input_var, seed)``."""
    sw, sb = check_weight_var(weight_var), check_bias_var(bias_var)
    L = check_int("depth", depth, 1)
    N = check_int("width", width, 1)
    S = check_int("seeds", seeds, 1)
    q = check_nonnegative("input_var", input_var)
    solver_for(net)
    if weights not in ("gaussian", "orthogonal"):
        raise InvalidArgumentError(f"weights must be 'gaussian' or 'orthogonal', got {weights!r}")
    if L > MAX_DEPTH:
        raise InvalidArgumentError(f"depth must be <= {MAX_DEPTH}, got {L}")
    if N > MAX_WIDTH:
        raise InvalidArgumentError(f"width must be <= {MAX_WIDTH} for explicit Jacobians, got {N}")
    if S > MAX_SEEDS:
        raise InvalidArgumentError(f"seeds must be <= {MAX_SEEDS}, got {S}")
    cost = float(S) * (L + 10) * float(N) ** 3
    if cost > MAX_COST:
        raise InvalidArgumentError(f"seeds*(depth+10)*width^3 = {cost:.2g} exceeds the budget "
                                   f"{MAX_COST:.0e} (fewer seeds, layers or a smaller width)")
    if seed is not None:
        seed = check_int("seed", seed, 0)
    return sw, sb, L, N, S, q, seed


def simulate_spectrum(activation, weight_var: float, bias_var: float, *, depth: int,
                      width: int, seeds: int = 4, arch: str = "mlp",
                      weights: str = "gaussian", seed: int | None = 0,
                      input_var: float = 1.0, params=None) -> SimulatedSpectrum:
    """Squared singular values of the explicit Jacobians of ``seeds`` random networks
    (module docstring). ``arch``: ``"mlp"``, ``"tarnowski-resnet"`` (``"resnet"``, deprecated)
    or a :class:`~critheory.blocks.network.Network` that a spectrum solver covers
    (:func:`spectrum_network`; also in the activation's place). All arguments are checked
    before any work. The result's ``arch`` names the law (``mlp`` or ``resnet``), as the
    theory's does.

    Examples
    --------
    >>> import critheory as ct
    >>> s = ct.simulate_spectrum("tanh", 1.0, 0.1, depth=3, width=32, seeds=2)
    >>> s.sq.shape
    (2, 32)
    """
    net = spectrum_network(activation, arch, params)
    act = net.activation
    sw, sb, L, N, S, q, seed = check_spectrum_args(weight_var, bias_var, depth, width, seeds,
                                                   net, weights, seed, input_var)
    orth = weights == "orthogonal"
    # the spectra's conventions as blocks, run by the simulator's one interpreter: x -> φ(Wx + b)
    # (the MLP's unit φ -> dense, run from the post-activations x^0), or Tarnowski's
    # x + φ(W x + b) with σ_w²/L (the solver's depth_scaled weights)
    solver = solver_for(net)
    residual = solver.skip is not None
    unit = ((Residual((Dense(weight_var=sw / L if solver.depth_scaled else sw), Phi()),
                      solver.skip),) if residual else (Dense(), Phi()))
    ctx = Context(unit, act.numpy, act.numpy_func(1), sw, sb, width=N)
    out = np.empty((S, N))
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(S)):
        rng = np.random.Generator(np.random.PCG64(ss))
        sampler = _SpectrumSampler(rng, orth)
        h0 = math.sqrt(q) * rng.standard_normal(N)
        x = h0 if residual else np.broadcast_to(act.numpy(h0), (N,)).astype(float)
        x, t = x[None, :, None], np.eye(N)[None]
        for _ in range(L):
            x, t = run(unit, sampler, ctx, x, t)
        J = t[0]
        if not np.all(np.isfinite(J)):
            raise InvalidArgumentError("the simulated Jacobian overflows float64 (reduce the "
                                       "depth or the weight variance)")
        out[i] = np.linalg.svd(J, compute_uv=False) ** 2
    return SimulatedSpectrum(solver.law, weights, act.name, sw, sb, L, N, seed, q, out)
