"""Finite-width Monte Carlo simulation of kernels and APJN at initialization.

The simulator shares only the activation with the theory modules: networks are sampled, run
forward, and differentiated by forward-mode tangents, with no Gaussian expectations anywhere.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.common.checks import (check_bias_var, check_int, check_layers, check_nonnegative,
                                     check_real, check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.progress import Progress
from critheory.errors import InvalidArgumentError, InvalidVarianceError
from ._util import readonly
from critheory.blocks.network import Network
from .architectures import LayerSpec, resolve_network, step
from .backend import get_backend
from .finitewidth import excess_kurtosis
from .cost import DEFAULT_PROBES, announce_exact, choose_method, choose_probes
from .sampling import METHODS, DenseSampler, ProjectedSampler, seed_streams
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["simulate", "SimulationResult", "EXACT_COST_BUDGET", "DEFAULT_PROBES",
           "default_probes",
           "make_inputs"]

#: The old default's budget, seeds·(depth − l0 + 1)·width³ (kept for the record and for callers
#: that still read it; the default now follows the cost model of :mod:`.cost`).
EXACT_COST_BUDGET = limits.EXACT_APJN_WORK


def default_probes(width: int, depth: int, l0: int, seeds: int, n_in: int = 1) -> int | None:
    """The default APJN method: None (exact) while its estimated time is within
    :data:`~critheory.simulation.cost.EXACT_SECONDS`, else Hutchinson probes, as many as fit a
    target time that falls continuously from there, at least :data:`DEFAULT_PROBES`
    (:func:`critheory.simulation.cost.choose_probes`: no jump in run time between neighbouring
    settings).

    >>> default_probes(256, 20, 1, 8) is None, default_probes(256, 1000, 1, 8)
    (True, 8)
    """
    return choose_probes(width, depth, l0, seeds, n_in=n_in)


# a batch of networks holds about this many float64 per state array (projected method)
_BATCH_ELEMENTS = 1 << 21
# tangents are renormalized (exactly, the scale kept in log space) outside a range of ‖T‖²:
# [1e-100, 1e100] in float64, narrower in float32 (Backend.rescale_bounds)


def _stderr(a: np.ndarray) -> np.ndarray:
    s = a.shape[0]
    if s < 2:
        return np.full(a.shape[1:], np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.std(a, axis=0, ddof=1) / math.sqrt(s)


def _std(a: np.ndarray) -> np.ndarray:
    if a.shape[0] < 2:
        return np.full(a.shape[1:], np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.std(a, axis=0, ddof=1)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Per-network, per-layer measurements of an ensemble of random networks.

    Attributes
    ----------
    activation, arch : str
        Activation name and canonical architecture name.
    weight_var, bias_var, mu, q0 : float
        σ_w², σ_b², residual strength, input norm ``|x|²/N₀``.
    width, depth, l0 : int
        Width N, number of recorded layers L, layer the APJN is taken from.
    probes : int or None
        Hutchinson probes per network (None: exact APJN).
    method : str
        ``"dense"`` or ``"projected"`` (see :mod:`critheory.simulation.sampling`).
    seed : int
        Root entropy (repeat the run by passing it back as ``seed``).
    second_input_corr : float or None
        Correlation ``x₁·x₂/|x|²`` of the second input, if one was simulated.
    ln_eps : float
        LayerNorm epsilon.
    depths : ndarray of int, shape (D,)
        ``l0, l0+1, ..., L``: the layers ``l`` of ``J^{l0,l}``.
    apjn : ndarray, shape (S, D)
        ``J^{l0,l} = ‖∂h^l/∂h^{l0}‖_F² / N`` per network (exact or Hutchinson estimate).
    log_apjn : ndarray, shape (S, D)
        Its natural log (kept separately: tangents are renormalized so that it stays finite
        when ``apjn`` overflows).
    kernel : ndarray, shape (S, L)
        ``K^l = (1/N) Σ_i (h_i^l)²`` for layers 1..L (first input).
    kernel_second, covariance : ndarray, shape (S, L), or None
        Same for the second input, and ``(1/N) Σ_i h_i^l(x₁) h_i^l(x₂)``.
    fourth_moment : ndarray, shape (S, L), or None
        ``(1/N) Σ_i (h_i^l)⁴`` for layers 1..L (first input): with :attr:`kernel`, the excess
        kurtosis of one preactivation (:attr:`kurtosis_mean`). Computed from the same forward
        pass (no extra random numbers).
    elapsed : float
        Wall-clock seconds of the simulation.
    backend, dtype : str
        Array backend (``numpy``, ``torch:cpu``, ``torch:cuda``...) and floating-point type of
        the simulation (:mod:`critheory.simulation.backend`); the recorded arrays are float64.
    network : Network or None
        The simulated network (its blocks; not in :meth:`to_dict`).

    Examples
    --------
    >>> import critheory as ct
    >>> res = ct.simulate("relu", 2.0, 0.0, width=32, depth=5, seeds=2, seed=0)
    >>> isinstance(res, ct.SimulationResult), res.apjn_mean.shape
    (True, (5,))
    """

    __repr__ = short_repr

    activation: str
    arch: str
    weight_var: float
    bias_var: float
    mu: float
    width: int
    depth: int
    l0: int
    probes: int | None
    method: str
    seed: int
    q0: float
    second_input_corr: float | None
    ln_eps: float
    depths: np.ndarray
    apjn: np.ndarray
    log_apjn: np.ndarray
    kernel: np.ndarray
    kernel_second: np.ndarray | None = None
    covariance: np.ndarray | None = None
    elapsed: float = field(default=0.0)
    fourth_moment: np.ndarray | None = None
    backend: str = "numpy"
    dtype: str = "float64"
    #: the simulated :class:`~critheory.blocks.network.Network` (not in :meth:`to_dict`)
    network: Network | None = None

    # ---------------------------------------------------------------- shapes
    @property
    def n_seeds(self) -> int:
        """Number of networks S."""
        return int(self.apjn.shape[0])

    @property
    def layers(self) -> np.ndarray:
        """``1, ..., L``: the layers of :attr:`kernel`."""
        return np.arange(1, self.depth + 1)

    @property
    def exact(self) -> bool:
        """Whether the APJN is exact (identity tangent) rather than a Hutchinson estimate."""
        return self.probes is None

    # ---------------------------------------------------------------- APJN statistics
    @property
    def apjn_mean(self) -> np.ndarray:
        """Mean of ``J^{l0,l}`` over networks, shape (D,)."""
        with np.errstate(invalid="ignore", over="ignore"):
            return self.apjn.mean(axis=0)

    @property
    def apjn_stderr(self) -> np.ndarray:
        """Standard error of :attr:`apjn_mean` (``std(ddof=1)/√S``; NaN for S = 1)."""
        return _stderr(self.apjn)

    @property
    def apjn_median(self) -> np.ndarray:
        """Median of ``J^{l0,l}`` over networks."""
        return np.median(self.apjn, axis=0)

    @property
    def log_apjn_mean(self) -> np.ndarray:
        """Mean of ``log J^{l0,l}`` over networks (log of the geometric mean)."""
        return self.log_apjn.mean(axis=0)

    @property
    def log_apjn_std(self) -> np.ndarray:
        """Spread (std, ddof=1) of ``log J^{l0,l}`` across networks; NaN for S = 1."""
        return _std(self.log_apjn)

    @property
    def log_apjn_std_stderr(self) -> np.ndarray:
        """Standard error of :attr:`log_apjn_std`, ``std/√(2(S−1))`` (Gaussian approximation);
        NaN for S = 1."""
        s = self.n_seeds
        if s < 2:
            return np.full(self.log_apjn.shape[1:], np.nan)
        return self.log_apjn_std / math.sqrt(2.0 * (s - 1))

    @property
    def log_apjn_quantiles(self) -> np.ndarray:
        """The 10 %, 50 % and 90 % quantiles of ``log J^{l0,l}`` across networks, shape (3, D)
        (the distribution of the run-to-run gradient-norm noise; NaN where not finite)."""
        with np.errstate(invalid="ignore"):
            q = np.quantile(self.log_apjn, [0.1, 0.5, 0.9], axis=0)
        ok = np.all(np.isfinite(self.log_apjn), axis=0)
        return np.where(ok, q, np.nan)

    # ---------------------------------------------------------------- kernel statistics
    @property
    def kernel_mean(self) -> np.ndarray:
        """Mean of ``K^l`` over networks, shape (L,)."""
        return self.kernel.mean(axis=0)

    @property
    def kernel_stderr(self) -> np.ndarray:
        """Standard error of :attr:`kernel_mean`."""
        return _stderr(self.kernel)

    # ---------------------------------------------------------------- non-Gaussianity
    def _kurt(self) -> tuple[np.ndarray, np.ndarray, int]:
        if self.fourth_moment is None:
            nan = np.full(self.kernel.shape[1:], np.nan)
            return nan, nan, 0
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return excess_kurtosis(self.kernel, self.fourth_moment)

    @property
    def kurtosis_mean(self) -> np.ndarray:
        """Excess kurtosis of one preactivation per layer, shape (L,): the ratio of ensemble
        means ``mean_s(m4)/mean_s(m2)² − 3`` over networks s and neurons (``m2``, ``m4`` the
        per-network means of ``(h_i^l)²`` and ``(h_i^l)⁴``); NaN where undefined."""
        return self._kurt()[0]

    @property
    def kurtosis_stderr(self) -> np.ndarray:
        """Jackknife standard error of :attr:`kurtosis_mean` over groups of networks (the
        neurons of one network are correlated: they share the layer below), so it includes the
        network-to-network fluctuation of the layer's variance; NaN for S = 1. Its degrees of
        freedom are :attr:`kurtosis_dof`."""
        return self._kurt()[1]

    @property
    def kurtosis_dof(self) -> int:
        """Degrees of freedom of :attr:`kurtosis_stderr`: min(S, 20) − 1 (0 for S = 1)."""
        return self._kurt()[2]

    @property
    def covariance_mean(self) -> np.ndarray | None:
        return None if self.covariance is None else self.covariance.mean(axis=0)

    @property
    def covariance_stderr(self) -> np.ndarray | None:
        return None if self.covariance is None else _stderr(self.covariance)

    @property
    def correlation(self) -> np.ndarray | None:
        """Per-network correlation ``cov / sqrt(K₁ K₂)``, shape (S, L), or None."""
        if self.covariance is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.covariance / np.sqrt(self.kernel * self.kernel_second)

    def apjn_at(self, layer: int) -> np.ndarray:
        """``J^{l0,layer}`` for every network, shape (S,)."""
        if not self.l0 <= layer <= self.depth:
            raise InvalidArgumentError(f"layer must be in [{self.l0}, {self.depth}], got {layer}")
        return self.apjn[:, layer - self.l0]

    # ---------------------------------------------------------------- export
    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        """JSON-safe summary (None for NaN/inf); per-network arrays too with ``samples=True``."""
        out: dict[str, Any] = {
            "activation": self.activation, "arch": self.arch,
            "weight_var": self.weight_var, "bias_var": self.bias_var, "mu": self.mu,
            "width": self.width, "depth": self.depth, "l0": self.l0,
            "probes": self.probes, "exact": self.exact, "method": self.method,
            "seed": self.seed, "n_seeds": self.n_seeds, "q0": self.q0,
            "second_input_corr": self.second_input_corr, "ln_eps": self.ln_eps,
            "elapsed": self.elapsed, "backend": self.backend, "dtype": self.dtype,
            "depths": self.depths, "apjn_mean": self.apjn_mean,
            "apjn_stderr": self.apjn_stderr, "apjn_median": self.apjn_median,
            "log_apjn_mean": self.log_apjn_mean, "log_apjn_std": self.log_apjn_std,
            "layers": self.layers, "kernel_mean": self.kernel_mean,
            "kernel_stderr": self.kernel_stderr,
            "covariance_mean": self.covariance_mean,
            "covariance_stderr": self.covariance_stderr,
            "log_apjn_std_stderr": self.log_apjn_std_stderr,
            "kurtosis_mean": self.kurtosis_mean, "kurtosis_stderr": self.kurtosis_stderr,
        }
        if samples:
            out.update(apjn=self.apjn, log_apjn=self.log_apjn, kernel=self.kernel,
                       kernel_second=self.kernel_second, covariance=self.covariance,
                       fourth_moment=self.fourth_moment)
        return jsonable(out)


# -------------------------------------------------------------------- inputs
def make_inputs(rng: np.random.Generator, n0: int, q0: float,
                corr: float | None = None) -> np.ndarray:
    """Input column(s) with ``|x|²/n0 = q0`` exactly, and ``x₁·x₂/n0 = corr·q0``.

    Returns an array of shape (n0, 1) or (n0, 2).
    """
    g = rng.standard_normal(n0)
    scale = math.sqrt(n0 * q0)
    x1 = g * (scale / np.linalg.norm(g))
    if corr is None:
        return x1[:, None]
    g2 = rng.standard_normal(n0)
    u = g2 - x1 * (x1 @ g2) / (x1 @ x1) if q0 > 0 else g2
    u *= scale / np.linalg.norm(u)
    x2 = corr * x1 + math.sqrt(max(0.0, 1.0 - corr * corr)) * u
    return np.stack([x1, x2], axis=1)


# -------------------------------------------------------------------- simulation
#: bytes of float64 N×N matrices one simulation may hold at once (a weight matrix, and for the
#: exact APJN the Jacobian product and its update)
MAX_MATRIX_BYTES = limits.MAX_MATRIX_BYTES
#: random numbers drawn for the weights, seeds·depth·N²: ~1e11 is a few minutes of RNG
MAX_WEIGHT_DRAWS = limits.MAX_WEIGHT_DRAWS


def check_simulation_budget(width: int, depth: int, seeds: int, n_probes) -> None:
    """Refuse at once a simulation that cannot fit in memory or finish in reasonable time."""
    mats = 3 if n_probes is None else 1
    need = 8.0 * width * width * mats
    if need > MAX_MATRIX_BYTES:
        raise InvalidArgumentError(
            f"width {width} needs {need / 2 ** 30:.1f} GiB of {width}x{width} matrices"
            f"{' (exact APJN)' if n_probes is None else ''}; the limit is "
            f"{MAX_MATRIX_BYTES / 2 ** 30:.0f} GiB"
            + (": use probes instead of 'exact'" if n_probes is None else ": use a smaller width"))
    draws = float(seeds) * depth * width * width
    if draws > MAX_WEIGHT_DRAWS:
        raise InvalidArgumentError(
            f"seeds x depth x width^2 = {draws:.2g} weight draws; at most {MAX_WEIGHT_DRAWS:.0e}"
            " per simulation (fewer seeds, a smaller depth or width)")


def simulate(activation: str | Activation | Network, weight_var: float, bias_var: float, *,
             width: int, depth: int, seeds: int = 1, arch: str | Network | None = None,
             mu: float | None = None,
             l0: int = 1, probes: int | str | None = None, seed: int | None = 0,
             q0: float = 1.0, second_input_corr: float | None = None, ln_eps: float = 0.0,
             method: str = "auto", params: Mapping[str, float] | None = None,
             progress: bool | Callable[[int, int], None] = False, backend: Any = "numpy",
             dtype: str = "float64") -> SimulationResult:
    """Simulate an ensemble of random finite-width networks; record kernels and APJN.

    Layers: ``h¹ = W⁰ x + b⁰`` (input of width N with ``|x|²/N = q0``), then
    ``h^{l+1} = F_l(h^l)`` for the chosen architecture (see
    :mod:`critheory.simulation.architectures`), with fresh ``W ~ N(0, σ_w²/N)`` and
    ``b ~ N(0, σ_b²)`` at every layer, for ``l = 1, ..., depth``.

    The APJN ``J^{l0,l} = ‖∂h^l/∂h^{l0}‖_F² / N`` is obtained for every ``l >= l0`` in one
    forward pass by carrying a tangent matrix ``T`` (``N × P``) from ``h^{l0}``:

    * exact mode (``P = N``, ``T = I``): ``J = ‖T‖_F² / N``;
    * Hutchinson mode (``P`` probes ``v ~ N(0, I_N)``, drawn from their own stream):
      ``J ≈ (1/(N P)) Σ_p ‖J v_p‖²``, unbiased, with variance
      ``2 ‖JᵀJ‖_F² / (N² P)`` (each ``‖Jv‖²`` has variance ``2‖JᵀJ‖_F²``). For a
      well-conditioned Jacobian ``‖JᵀJ‖_F² ≈ N J²``, i.e. a relative standard deviation of
      about ``sqrt(2/(N P))`` per network, small next to the network-to-network spread.

    Parameters
    ----------
    activation : str, Activation or Network
        Zoo name (``"tanh"``, ``"relu"``...) or a formula in ``x``; ``params`` fills its
        parameters. A :class:`~critheory.blocks.network.Network` here stands for ``arch``.
    weight_var, bias_var : float
        σ_w² ``> 0`` and σ_b² ``>= 0`` (:mod:`critheory.common.checks`): the network's, used
        by every dense block that does not carry its own.
    width, depth : int
        Width N (also the input width) and number of layers L (``>= 1``).
    seeds : int
        Number of independent networks S.
    arch : Network or str
        A network (:mod:`critheory.blocks`; one token) or a registry name (default ``mlp``):
        ``mlp``, ``residual``, ``pre-ln``, ``post-ln``, ``pre-ln-residual``,
        ``pre-ln-mlp-block``. Resolved once by
        :func:`critheory.blocks.registry.as_network` (a Network with a conflicting
        ``activation`` or ``mu`` is refused).
    mu : float, optional
        Residual strength μ of a registry name (default 1).
    l0 : int
        Layer the Jacobian starts from (``1 <= l0 <= depth``).
    probes : int, "exact" or None
        Number of Hutchinson probes, or ``"exact"``; None: chosen by estimated time
        (:func:`default_probes`, :mod:`critheory.simulation.cost`: exact while its estimate is
        within 2.5 s, then probes, as many as fit a target that falls continuously from there,
        at least 8). An exact APJN estimated above 5 s is announced by a
        :class:`~critheory.simulation.cost.SimulationCostWarning`.
    seed : int or None
        Root seed; network ``i`` uses ``SeedSequence(seed).spawn(S)[i]`` and is the same for
        every ensemble size. None draws fresh entropy (stored in the result's ``seed``).
    q0 : float
        Input norm ``|x|²/N`` (the input is a random vector rescaled exactly).
    second_input_corr : float, optional
        Also propagate a second input with ``x₁·x₂ / |x₁|² = second_input_corr`` (same norm) and
        record its kernel and the covariance with the first.
    ln_eps : float
        LayerNorm epsilon under the square root (default 0: exact normalization).
    method : {"auto", "dense", "projected"}
        ``dense`` draws every weight matrix; ``projected`` draws ``W X`` directly as
        ``G R`` with ``RᵀR = XᵀX`` for the block ``X`` (``N × k``) it multiplies, which has
        exactly the same law (see :mod:`critheory.simulation.sampling`) at ``O(N k²)`` cost.
        ``auto``: projected when the block has at most N/4 columns, or at most N/2 (and 96)
        where its estimated cost is lower (:func:`critheory.simulation.cost.choose_method`),
        else dense.
        Results are reproducible for a given method; the two methods use different streams.
    params : mapping, optional
        Parameters of the activation.
    progress : bool or callable
        True: a progress bar on stderr; a callable: called as ``progress(done, total)`` in
        units of network-layers.
    backend : str or Backend
        ``"numpy"`` (default), ``"torch"`` / ``"torch:cpu"``, ``"torch:cuda[:i]"``
        (:mod:`critheory.simulation.backend`). The random numbers are drawn by numpy on the host
        whatever the backend, so every backend simulates the same networks.
    dtype : {"float64", "float32"}
        Floating-point type of the forward pass (the recorded arrays are float64). numpy with
        float64 is the reference path.

    Returns
    -------
    SimulationResult

    Notes
    -----
    Memory: one network holds its state, tangents and at most one ``N × N`` weight matrix at
    a time (``O(N² + N P)``); the projected method batches networks, ``O(B N (P + 2))``.
    Tangents are renormalized exactly when their norm leaves ``[1e-100, 1e100]``, so
    ``log_apjn`` stays finite for deep ordered or chaotic networks; the forward
    preactivations are not rescaled (a network whose kernel overflows gives inf/NaN).

    Examples
    --------
    >>> res = simulate("relu", 2.0, 0.0, width=32, depth=4, seeds=3, seed=1)
    >>> res.apjn.shape, res.kernel.shape, res.depths.tolist()
    ((3, 4), (3, 4), [1, 2, 3, 4])
    >>> float(res.apjn[0, 0])   # J^{l0,l0} = 1 in exact mode
    1.0
    """
    t_start = time.perf_counter()
    bk = get_backend(backend, dtype)
    net, mu = resolve_network(activation, arch, mu, params)
    act = net.activation
    weight_var = check_weight_var(weight_var)
    bias_var = check_bias_var(bias_var)
    q0 = check_nonnegative("q0", q0, error=InvalidVarianceError)
    ln_eps = check_nonnegative("ln_eps", ln_eps, error=InvalidVarianceError)
    width, depth, l0 = check_layers(width, depth, l0)
    seeds = check_int("seeds", seeds, 1)
    if seed is not None:
        seed = check_int("seed", seed, 0)
    if net.tokens != 1 or net.capabilities.mixes_tokens:
        raise InvalidArgumentError(f"simulate runs one-token networks; {net.describe()} acts on "
                                   "tokens (critheory.simulation.transformer.simulate_transformer)")
    blocks = net.unit
    if net.capabilities.has_layernorm and width < 2:
        raise InvalidArgumentError("LayerNorm architectures need width >= 2")
    if second_input_corr is not None:
        second_input_corr = check_real("second_input_corr", second_input_corr)
        if not -1.0 <= second_input_corr <= 1.0:
            raise InvalidArgumentError(
                f"second_input_corr must be in [-1, 1], got {second_input_corr}")
        if width < 2:
            raise InvalidArgumentError("a second input needs width >= 2")
    if isinstance(probes, str):
        if probes.strip().lower() != "exact":
            raise InvalidArgumentError(f"probes must be a positive integer or 'exact', got "
                                       f"{probes!r}")
        n_probes = None
    elif probes is None:
        n_probes = default_probes(width, depth, l0, seeds,
                                  1 if second_input_corr is None else 2)
    else:
        n_probes = check_int("probes", probes, 1)
    check_simulation_budget(width, depth, seeds, n_probes)
    if n_probes is None and bk.is_reference:       # the exact APJN estimated past a few seconds
        announce_exact(width, depth, seeds, l0=l0, n_in=1 if second_input_corr is None else 2)
    if not isinstance(method, str) or method.strip().lower() not in METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    method = method.strip().lower()
    n_in = 1 if second_input_corr is None else 2
    n_tan = width if n_probes is None else n_probes
    if method == "auto":
        method = choose_method(width, n_in + n_tan)

    spec = LayerSpec(unit=blocks, phi=bk.activation(act, 0), dphi=bk.activation(act, 1),
                     weight_var=weight_var, bias_var=bias_var, ln_eps=ln_eps, width=width)
    # without a seed, the torch backend takes its root seed from torch's global generator
    # (torch.manual_seed then makes the run reproducible); numpy draws fresh entropy
    entropy, streams = seed_streams(bk.resolve_seed(seed), seeds)
    n_depths = depth - l0 + 1
    log_apjn = np.empty((seeds, n_depths))
    kernel = np.empty((seeds, depth, n_in))
    fourth = np.empty((seeds, depth))
    cov = np.empty((seeds, depth)) if n_in == 2 else None
    norm = math.log(width) if n_probes is None else math.log(width * n_probes)
    rescale_hi, rescale_lo = bk.rescale_bounds
    host = bk.to_numpy

    if method == "dense":
        batch = 1
        sampler_cls = DenseSampler
    else:
        batch = max(1, min(seeds, _BATCH_ELEMENTS // (width * (n_in + n_tan + 1))))
        sampler_cls = ProjectedSampler
    bar = Progress(seeds * depth, progress, unit="layers")

    # a network whose activations run away (exp(x), huge σ_w²) overflows to inf/NaN by design:
    # such entries are recorded as non-finite (null in JSON, counted out of the comparisons)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, seeds, batch):
            idx = slice(start, min(seeds, start + batch))
            chunk = streams[idx]
            nb = len(chunk)
            sampler = sampler_cls([s[1] for s in chunk], bk)
            x = bk.asarray(
                np.stack([make_inputs(s[0], width, q0, second_input_corr) for s in chunk]))
            h = sampler.matmul(x, weight_var, width) + sampler.bias(width, bias_var)
            t = None
            log_scale = np.zeros(nb)
            for layer in range(1, depth + 1):
                if layer > 1:
                    h, t = step(sampler, spec, h, t)
                if layer == l0:
                    if n_probes is None:
                        t = bk.eye_batch(nb, width)
                    else:
                        t = bk.asarray(
                            np.stack([s[2].standard_normal((width, n_probes)) for s in chunk]))
                k = bk.einsum("bij,bij->bj", h, h) / width
                kernel[idx, layer - 1] = host(k)
                z2 = h[:, :, 0] * h[:, :, 0]
                fourth[idx, layer - 1] = host((z2 * z2).mean(axis=1))
                if cov is not None:
                    cov[idx, layer - 1] = host(
                        bk.einsum("bi,bi->b", h[:, :, 0], h[:, :, 1]) / width)
                if t is not None:
                    sq = host(bk.einsum("bij,bij->b", t, t))
                    with np.errstate(divide="ignore", invalid="ignore"):
                        log_apjn[idx, layer - l0] = np.log(sq) + log_scale - norm
                        out_of_range = np.isfinite(sq) & (sq > 0) & (
                            (sq > rescale_hi) | (sq < rescale_lo))
                    if out_of_range.any():
                        factor = np.where(out_of_range, np.sqrt(sq / math.exp(norm)), 1.0)
                        t /= bk.asarray(factor)[:, None, None]
                        log_scale += 2.0 * np.log(factor)
                bar.update(nb)

    with np.errstate(over="ignore"):
        apjn = np.exp(log_apjn)
    return SimulationResult(
        activation=act.name, arch=net.name, weight_var=weight_var, bias_var=bias_var, mu=mu,
        width=width, depth=depth, l0=l0, probes=n_probes, method=method, seed=entropy, q0=q0,
        second_input_corr=second_input_corr, ln_eps=ln_eps,
        depths=readonly(np.arange(l0, depth + 1)), apjn=readonly(apjn),
        log_apjn=readonly(log_apjn), kernel=readonly(kernel[:, :, 0]),
        kernel_second=readonly(kernel[:, :, 1]) if n_in == 2 else None,
        covariance=readonly(cov), elapsed=time.perf_counter() - t_start,
        fourth_moment=readonly(fourth), backend=bk.label, dtype=bk.dtype, network=net)
