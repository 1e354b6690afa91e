"""The exact posterior of actual finite networks: prior samples of the simulator, the last dense
block integrated exactly, weighted by the likelihood of a training set.

The check of the finite-width Bayesian theory (issue 28, items 4 and 7), which this module never
imports: it shares only the activation and the block description with the theory. Networks run
through the one block interpreter (:mod:`critheory.simulation.interpreter`) on a representation
of shape ``(B, N, m)``: B networks, N neurons, the m inputs as columns.

Conventions
-----------
``W ~ N(0, C_W/n_in)``, ``b ~ N(0, C_b)`` (a dense block with its own variances keeps them),
hidden widths all n, inputs ``x_α`` of dimension n0, depth L = L weight layers: layer 1 is the
stem dense block on the inputs (``K¹_αβ = C_b + C_W x_α·x_β/n0``), layers 2..L apply the
network's unit; the output is neuron 1 of layer L (targets are scalars; other output neurons
are i.i.d. copies given the layers below).

Rao–Blackwellization (exact)
---------------------------
Given everything below it, the last dense block ``z = W x + b`` (``x``: its input, of width
``n_in``) makes output neuron 1 on the m inputs exactly Gaussian: mean μ_s (0 for an MLP;
``μ · h_1`` for a residual unit ``μ h + branch(h)`` whose branch ends in that dense block) and
covariance

    ``Ĝ_s[a, b] = C_b + C_W (1/n_in) Σ_j x_{j,a} x_{j,b}``.

:func:`output_laws` stores ``(μ_s, Ĝ_s)`` per network s and never draws the last block: every
expectation over the output is then done in closed form, removing the output layer's noise
without any approximation.

Exact posterior (:func:`exact_posterior`)
-----------------------------------------
Training inputs A with targets y and observation noise variance ``σ_ε² >= 0``, test inputs B.
Per network, with ``M_s = Ĝ_AA + σ_ε² I`` and ``r_s = y − μ_A``:

* likelihood weight ``w_s = N(y; μ_A, M_s)`` (in the log domain, shifted by its maximum);
* the Gaussian posterior of the test outputs given the layers below:
  ``m_s = μ_B + Ĝ_BA M_s⁻¹ r_s`` and ``C_s = Ĝ_BB − Ĝ_BA M_s⁻¹ Ĝ_AB``.

With the self-normalized weights ``ŵ_s = w_s / Σ w``, the posterior of the finite network is
``mean = Σ ŵ m_s`` and ``cov = Σ ŵ (C_s + m_s m_sᵀ) − mean meanᵀ``: a consistent
(self-normalized importance sampling) estimator, the prior being the proposal.

Errors (delta method of a ratio estimator): the estimator ``R = Σ w f / Σ w`` has influence
``ŵ_s (f_s − R)`` per network, so ``se(R)² = Σ_s ŵ_s² (f_s − R)²``; the covariance, a smooth
function of two ratio estimators, has influence ``ŵ_s [(F_s − Q) − (m_s − mean) meanᵀ − mean
(m_s − mean)ᵀ]`` (``F_s = C_s + m_s m_sᵀ``, ``Q = Σ ŵ F``). The leading bias of a ratio
estimator, ``−Σ_s ŵ_s² (f_s − R)``, is reported beside (``mean_bias``).

Effective sample size ``ESS = (Σ w)² / Σ w²``. **Floor** (``MIN_ESS = 100``): by Cauchy–Schwarz
``|Σ ŵ² (f − R)| ≤ √(Σ ŵ²) √(Σ ŵ² (f − R)²) = se / √ESS``, so at ``ESS >= 100`` the leading
bias of every reported quantity is at most a tenth of its standard error (a z-score moves by
at most 0.1), and the delta-method error rests on at least 100 effective networks. Below the
floor :func:`exact_posterior` refuses (more networks, more noise or fewer training points).

The posterior change of the metric, ``E_w[Ĝ] − E[Ĝ]`` (the "representation learning" shift of
the Bayesian picture; zero for an infinite network, whose Ĝ does not fluctuate), comes with its
error from the influence ``ŵ_s (Ĝ_s − E_w Ĝ) − (Ĝ_s − E Ĝ)/S``.

Prior measurements (:func:`measured_kernel`, :func:`measured_vertex`): the output kernel
``E[z_a z_b] = E[Ĝ + μ μᵀ]`` and ``n · Cov(Ĝ_ab, Ĝ_cd)``. For an MLP the connected four-point
function of the output is exactly ``Cov(Ĝ_12, Ĝ_34) + Cov(Ĝ_13, Ĝ_24) + Cov(Ĝ_14, Ĝ_23)``, so
``n Cov(Ĝ_ab, Ĝ_cd)`` estimates the vertex ``V_(ab)(cd)`` of PDLT ch. 4 at layer L (at every
order in 1/n it *is* the exact metric covariance; V is its leading coefficient).

Random streams: networks are grouped in fixed *streams* of :data:`STREAM` consecutive networks,
each with its own generator ``SeedSequence(seed).spawn(⌈S/STREAM⌉)[k]``; a chunk of the run is a
whole number of streams, so the same seed gives the same numbers for any chunk size (and the
networks of whole streams, the first ``STREAM ⌊S/STREAM⌋``, are the same in a larger ensemble).

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> x = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
>>> laws = output_laws(network("mlp", "tanh"), 1.0, 0.1, x, depth=2, width=64,
...                    networks=800, seed=1)
>>> laws.metric.shape
(800, 3, 3)
>>> post = exact_posterior(laws, [0, 1], [2], [0.3, -0.2], 0.01)
>>> post.mean.shape, bool(post.ess > 100)
((1,), True)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from critheory.blocks.blocks import Dense, Phi, walk
from critheory.common import limits
from critheory.common.checks import (check_bias_var, check_int, check_nonnegative, check_real,
                                     check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.common.progress import Progress
from critheory.errors import InvalidArgumentError
from ._util import readonly
from .architectures import resolve_network
from .interpreter import Context, check_blocks, dense, run
from .sampling import gram_factor, small_matmul

__all__ = ["OutputLaws", "MeasuredPosterior", "MeasuredKernel", "MeasuredVertex",
           "output_laws", "exact_posterior", "measured_kernel", "measured_vertex",
           "bayes_work", "MIN_ESS", "STREAM", "MAX_CONDITION", "StreamSampler", "stream_chunks", "check_inputs"]

#: Networks per random stream (a chunk is a whole number of streams: module docstring).
STREAM = 64
#: Default floor of the effective sample size (module docstring: leading bias <= se/10).
MIN_ESS = 100.0
#: Largest condition number of ``Ĝ_AA + σ_ε² I`` accepted (beyond it the solve loses more than
#: 10 of float64's 16 digits: the training block is singular for the purpose).
MAX_CONDITION = 1e10
# a chunk holds about this many float64 per state array
_CHUNK_ELEMENTS = 1 << 22
_LOG_2PI = math.log(2.0 * math.pi)

STDERR_METHOD = ("delta method of the self-normalized (ratio) importance estimator: "
                 "se^2 = sum_s w_s^2 (f_s - R)^2 with normalized weights w")


# ---------------------------------------------------------------------------- sampler
class _StreamSampler:
    """Fresh Gaussian layers for a chunk of networks made of whole streams (one generator per
    :data:`STREAM` networks), exact in law: ``W @ X`` drawn as ``G R`` with ``RᵀR = XᵀX``
    (:mod:`critheory.simulation.sampling`) when the columns are few, else ``W`` itself."""

    def __init__(self, rngs: list, sizes: list):
        self.rngs, self.sizes = rngs, sizes
        self.b = int(sum(sizes))

    def _normals(self, tail: tuple) -> np.ndarray:
        out = np.empty((self.b,) + tail)
        lo = 0
        for rng, k in zip(self.rngs, self.sizes):
            rng.standard_normal(out=out[lo:lo + k])
            lo += k
        return out

    def bias(self, n: int, var: float) -> np.ndarray:
        """Biases ``(B, n, 1)`` (always drawn: the streams do not depend on the variances)."""
        b = self._normals((n, 1))
        b *= math.sqrt(var)
        return b

    def matmul(self, x: np.ndarray, var: float, n_out: int) -> np.ndarray:
        """``W @ x`` for ``x`` of shape (B, n_in, k), ``W ~ N(0, var/n_in)`` fresh."""
        _, n_in, k = x.shape
        if 4 * k > n_in:
            w = self._normals((n_out, n_in))
            w *= math.sqrt(var / n_in)
            return w @ x
        g = self._normals((n_out, k))
        g *= math.sqrt(var / n_in)
        return small_matmul(g, gram_factor(x))


#: public names of the stream sampler and the input check (shared with
#: :mod:`critheory.simulation.train`)
StreamSampler = _StreamSampler


def stream_chunks(root: np.random.SeedSequence, networks: int, per_chunk: int,
                  stream: int = STREAM):
    """The chunks of a run of ``networks`` networks in streams of ``stream`` (module
    docstring): yields ``(lo, sampler)``, the index of the chunk's first network and a
    :class:`StreamSampler` over ``per_chunk`` whole streams (fewer at the end). Spawns the
    streams from ``root`` (once: call it once per root)."""
    n_streams = -(-networks // stream)
    streams = root.spawn(n_streams)
    for c0 in range(0, n_streams, per_chunk):
        ids = range(c0, min(n_streams, c0 + per_chunk))
        sizes = [min(stream, networks - k * stream) for k in ids]
        yield c0 * stream, _StreamSampler(
            [np.random.Generator(np.random.SFC64(streams[k])) for k in ids], sizes)


# ---------------------------------------------------------------------------- last block
def _last_dense(block, sampler, ctx: Context, x):
    return 0.0, x, block


def _last_residual(block, sampler, ctx: Context, x):
    mean, xin, d = _to_last(block.branch, sampler, ctx, x)
    return block.mu * x + mean, xin, d


def _last_mlp(block, sampler, ctx: Context, x):
    return _to_last((Dense(width=block.ratio), Phi(), Dense()), sampler, ctx, x)


#: How a unit's last block is opened to reach the dense block that is integrated exactly.
_LAST = {"dense": _last_dense, "residual": _last_residual, "mlp": _last_mlp}


def _to_last(blocks, sampler, ctx: Context, x):
    """Run ``blocks`` but the last dense block: (mean of the output given the rest, that
    block's input, that block)."""
    last = blocks[-1]
    opener = _LAST.get(last.kind)
    if opener is None:
        raise InvalidArgumentError(
            f"the exact output law needs a unit that ends in a dense block (or a skip "
            f"connection around a branch that does); this one ends in a {last.kind!r} block")
    if len(blocks) > 1:
        x, _ = run(blocks[:-1], sampler, ctx, x)
    return opener(last, sampler, ctx, x)


def _check_last(blocks) -> None:
    """Refuse before any work a unit whose last block cannot be integrated (by kind)."""
    last = blocks[-1]
    if last.kind not in _LAST:
        raise InvalidArgumentError(
            f"the exact output law needs a unit that ends in a dense block (or a skip "
            f"connection around a branch that does); this one ends in a {last.kind!r} block")
    inner = getattr(last, "branch", None)
    if inner:
        _check_last(inner)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class OutputLaws:
    """The exact Gaussian law of output neuron 1 of each sampled network given its layers below.

    Attributes
    ----------
    mean : ndarray, shape (S, m)
        μ_s on the m inputs (zero for an MLP).
    metric : ndarray, shape (S, m, m)
        Ĝ_s (module docstring).
    width : int
        n (the hidden width; the vertex is ``width · Cov(Ĝ)``).
    inputs : ndarray (m, n0) or None
        The inputs (None for a law built by hand: duplicates are then found by index only).
    activation, arch : str
    weight_var, bias_var : float
    depth, seed : int
    elapsed : float
    """

    __repr__ = short_repr

    mean: np.ndarray
    metric: np.ndarray
    width: int = 0
    inputs: np.ndarray | None = None
    activation: str = ""
    arch: str = ""
    weight_var: float = math.nan
    bias_var: float = math.nan
    depth: int = 0
    seed: int = 0
    elapsed: float = 0.0

    def __post_init__(self):
        mean = np.array(self.mean, dtype=float)
        metric = np.array(self.metric, dtype=float)
        if metric.ndim != 3 or metric.shape[1] != metric.shape[2] or mean.shape != metric.shape[:2]:
            raise InvalidArgumentError(
                f"output laws need mean (S, m) and metric (S, m, m); got {mean.shape} and "
                f"{metric.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(metric))):
            raise InvalidArgumentError("output laws must be finite")
        object.__setattr__(self, "mean", readonly(mean))
        object.__setattr__(self, "metric", readonly(metric))
        if self.inputs is not None:
            object.__setattr__(self, "inputs", readonly(np.array(self.inputs, dtype=float)))

    @property
    def networks(self) -> int:
        """S, the number of sampled networks."""
        return self.metric.shape[0]

    @property
    def m(self) -> int:
        """The number of inputs."""
        return self.metric.shape[1]

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in (
            "activation", "arch", "weight_var", "bias_var", "depth", "width", "seed",
            "networks", "inputs", "elapsed")})


@dataclass(frozen=True, eq=False)
class MeasuredPosterior:
    """The importance-weighted posterior of finite networks (module docstring).

    Attributes
    ----------
    mean, mean_stderr, mean_bias : ndarray (b,)
        Posterior mean of the test outputs, its standard error and the estimated leading bias of
        the ratio estimator (``|bias| <= se/√ESS``).
    cov, cov_stderr : ndarray (b, b)
        Posterior covariance of the test outputs and its standard error.
    metric_shift, metric_shift_stderr : ndarray (m, m)
        ``E_w[Ĝ] − E[Ĝ]`` over all inputs and its standard error.
    prior_metric : ndarray (m, m)
        ``E[Ĝ]``.
    ess : float
        Effective sample size ``(Σw)²/Σw²``.
    networks : int
    min_ess : float
        The floor it was checked against.
    log_evidence : float
        ``log mean_s w_s``: the log marginal likelihood of the targets under the finite-network
        prior (a consistent estimate; biased low by ~ its relative variance / 2).
    train, test : tuple of int
        The training inputs used (duplicates at zero noise merged) and the test inputs.
    noise : float
        σ_ε².
    stderr_method : str
    dof : float
        Degrees of freedom of a t reference for the scores: ``ESS − 1`` (conservative against
        the normal limit of the delta method).
    """

    __repr__ = short_repr

    mean: np.ndarray
    mean_stderr: np.ndarray
    mean_bias: np.ndarray
    cov: np.ndarray
    cov_stderr: np.ndarray
    metric_shift: np.ndarray
    metric_shift_stderr: np.ndarray
    prior_metric: np.ndarray
    ess: float
    networks: int
    min_ess: float
    log_evidence: float
    train: tuple
    test: tuple
    noise: float
    stderr_method: str = STDERR_METHOD

    @property
    def dof(self) -> float:
        return max(self.ess - 1.0, 1.0)

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in (
            "mean", "mean_stderr", "mean_bias", "cov", "cov_stderr", "metric_shift",
            "metric_shift_stderr", "prior_metric", "ess", "networks", "min_ess",
            "log_evidence", "train", "test", "noise", "stderr_method", "dof")})


@dataclass(frozen=True, eq=False)
class MeasuredKernel:
    """``E[z_a z_b] = E[Ĝ + μ μᵀ]`` over the networks, with its standard error ``std/√S``."""

    __repr__ = short_repr

    kernel: np.ndarray
    stderr: np.ndarray
    networks: int

    @property
    def dof(self) -> float:
        return float(self.networks - 1)


@dataclass(frozen=True, eq=False)
class MeasuredVertex:
    """``n · Cov(Ĝ_ab, Ĝ_cd)`` (m, m, m, m) with its standard error (the spread of the products of
    centred metrics over the networks, ``std/√S``)."""

    __repr__ = short_repr

    vertex: np.ndarray
    stderr: np.ndarray
    width: int
    networks: int

    @property
    def dof(self) -> float:
        return float(self.networks - 1)


# ---------------------------------------------------------------------------- the laws
def bayes_work(networks: int, depth: int, width: int, m: int, n0: int, ratio: float = 1.0
               ) -> float:
    """Estimated work of :func:`output_laws`: networks × layers × widest layer × (m + the columns
    of a drawn weight matrix where ``4m > n_in``), compared with
    :data:`critheory.common.limits.MAX_FINITE_WIDTH_WORK`.

    >>> bayes_work(100, 3, 16, 5, 2) == 100 * 3 * 16 * (5 + 16)
    True
    """
    nmax = width * max(ratio, 1.0)
    drawn = nmax if 4 * m > width else m
    return float(networks) * depth * nmax * (m + drawn)


def _check_inputs(inputs) -> np.ndarray:
    try:
        x = np.array(inputs, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("inputs must be an (m, n0) array of numbers") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise InvalidArgumentError(f"inputs must be an (m, n0) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError("inputs must be finite")
    return x


check_inputs = _check_inputs


def output_laws(net, weight_var: float, bias_var: float, inputs, depth: int, width: int,
                networks: int, seed: int | None = None, *, chunk: int | None = None,
                progress: bool | Callable[[int, int], None] | None = None, arch=None,
                mu: float | None = None) -> OutputLaws:
    """Sample S networks and store the exact Gaussian law of output neuron 1 on the inputs.

    Parameters
    ----------
    net : Network, str or Activation
        A one-token network (:func:`critheory.blocks.registry.network`), or an activation with
        ``arch`` (registry name, default ``mlp``) and ``mu``.
    weight_var, bias_var : float
        C_W, C_b (dense blocks with their own variances keep theirs).
    inputs : array (m, n0)
        The m inputs (rows); ``K¹ = C_b + C_W x·x/n0``.
    depth : int
        L weight layers (1: the output is the stem dense block, Ĝ = K¹ in every network).
    width : int
        n, every hidden width.
    networks : int
        S (>= 2).
    seed : int or None
        Root seed (None: fresh entropy, recorded in the result).
    chunk : int or None
        Networks per vectorized chunk (rounded up to a multiple of :data:`STREAM`); None: sized
        from a memory budget. The numbers do not depend on it.
    progress : bool, callable or None
        :class:`critheory.common.progress.Progress` over networks.

    Returns
    -------
    OutputLaws

    Examples
    --------
    >>> import critheory as ct
    >>> laws = ct.output_laws(ct.network("mlp", "relu"), 2.0, 0.0, [[1.0, 0.0], [0.0, 1.0]],
    ...                       depth=2, width=16, networks=128, seed=0)
    >>> laws.mean.shape, laws.metric.shape
    ((128, 2), (128, 2, 2))
    """
    t0 = time.perf_counter()
    net, _ = resolve_network(net, arch, mu)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    x0 = _check_inputs(inputs)
    depth = check_int("depth", depth, 1)
    width = check_int("width", width, 1)
    S = check_int("networks", networks, 2)
    if net.tokens != 1 or net.capabilities.mixes_tokens:
        raise InvalidArgumentError(f"the exact output law runs one-token networks; "
                                   f"{net.describe()} acts on tokens")
    if net.capabilities.has_layernorm and width < 2:
        raise InvalidArgumentError("LayerNorm architectures need width >= 2")
    check_blocks(net.unit, "the exact output law")
    _check_last(net.unit)
    m, n0 = x0.shape
    ratio = max([1.0] + [float(getattr(b, "width", getattr(b, "ratio", 1.0)))
                         for b in walk(net.unit)])
    work = bayes_work(S, depth, width, m, n0, ratio)
    if work > limits.MAX_FINITE_WIDTH_WORK:
        raise InvalidArgumentError(
            f"simulation too large ({work:.1e} > {limits.MAX_FINITE_WIDTH_WORK:.0e} networks x "
            "depth x width x columns): fewer networks, a smaller width or depth")
    stored = 8.0 * S * m * (m + 1)
    if stored > limits.MAX_MATRIX_BYTES:
        raise InvalidArgumentError(
            f"the laws of {S} networks on {m} inputs need {stored / 2**30:.1f} GiB > "
            f"{limits.MAX_MATRIX_BYTES / 2**30:.0f} GiB: fewer networks or inputs")
    if seed is not None:
        seed = check_int("seed", seed, 0)
    root = np.random.SeedSequence(seed)
    nmax = int(math.ceil(width * ratio))
    per_net = nmax * (m + (max(nmax, n0) if 4 * m > min(width, n0) else m))
    if chunk is None:
        per_chunk = max(1, _CHUNK_ELEMENTS // (per_net * STREAM))
    else:
        per_chunk = -(-check_int("chunk", chunk, 1) // STREAM)
    ctx = Context(unit=net.unit, phi=net.activation.numpy_func(0),
                  dphi=net.activation.numpy_func(1), weight_var=sw, bias_var=sb, width=width)
    mean = np.zeros((S, m))
    metric = np.empty((S, m, m))
    bar = Progress(S, progress or False, unit="networks")
    with np.errstate(over="ignore", invalid="ignore"):
        for lo, sampler in stream_chunks(root, S, per_chunk):
            hi = lo + sampler.b
            xin = np.broadcast_to(x0.T, (sampler.b, n0, m))
            mu_c = 0.0
            if depth == 1:
                xin = np.ascontiguousarray(xin)
                d_last = None
            else:
                h, _ = dense(sampler, ctx, np.ascontiguousarray(xin), None, Dense())
                for _layer in range(depth - 2):
                    h, _ = run(net.unit, sampler, ctx, h)
                mu_c, xin, d_last = _to_last(net.unit, sampler, ctx, h)
            dw, db = (sw, sb) if d_last is None else d_last.variances(sw, sb)
            g = np.einsum("bja,bjc->bac", xin, xin) / xin.shape[1]
            metric[lo:hi] = db + dw * g
            if not np.isscalar(mu_c):
                mean[lo:hi] = mu_c[:, 0, :]
            bar.update(sampler.b)
    if not (np.all(np.isfinite(metric)) and np.all(np.isfinite(mean))):
        raise InvalidArgumentError(
            "the networks' representations left float64 (overflow): smaller weight/bias "
            "variances, inputs or depth")
    return OutputLaws(mean, metric, width, x0, net.activation.name, net.describe(), sw, sb,
                      depth, int(root.entropy), time.perf_counter() - t0)


# ---------------------------------------------------------------------------- posterior
def _indices(name: str, idx, m: int) -> tuple:
    try:
        arr = np.array(idx).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a sequence of input indices") from None
    if arr.size == 0:
        raise InvalidArgumentError(f"{name} needs at least one input index")
    out = []
    for v in arr.tolist():
        i = check_int(f"{name} index", v, 0)
        if i >= m:
            raise InvalidArgumentError(f"{name} index {i} is out of range: there are {m} inputs")
        out.append(i)
    return tuple(out)


def _merge_duplicates(laws: OutputLaws, train: tuple, y: np.ndarray):
    """At zero noise: repeated training inputs (same index, or identical input rows) with equal
    targets are one observation; with different targets the posterior does not exist."""
    keys = {}
    keep = []
    for k, i in enumerate(train):
        key = i if laws.inputs is None else laws.inputs[i].tobytes()
        if key in keys:
            j = keys[key]
            if y[k] != y[j]:
                raise InvalidArgumentError(
                    f"training inputs {train[j]} and {i} are the same input with different "
                    f"targets ({y[j]:g} != {y[k]:g}) at zero noise: no posterior exists "
                    "(give noise > 0)")
            continue
        keys[key] = k
        keep.append(k)
    return tuple(train[k] for k in keep), y[keep]


def _ratio_se(wn: np.ndarray, f: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``√(Σ_s ŵ_s² (f_s − R)²)`` (axis 0: networks)."""
    d = (f - R) * wn.reshape((-1,) + (1,) * (f.ndim - 1))
    return np.sqrt(np.einsum("s...,s...->...", d, d))


def exact_posterior(laws: OutputLaws, train: Sequence[int], test: Sequence[int],
                    targets, noise: float, *, min_ess: float = MIN_ESS) -> MeasuredPosterior:
    """The posterior of the finite networks on the test inputs given the training targets.

    Parameters
    ----------
    laws : OutputLaws
    train, test : sequences of int
        Indices of the training and test inputs among the laws' inputs.
    targets : array_like
        One per training input.
    noise : float
        Observation noise **variance** σ_ε² >= 0 (0: exact interpolation; needs a nonsingular
        Ĝ_AA in every network).
    min_ess : float
        Refuse below this effective sample size (default :data:`MIN_ESS`; module docstring).

    Returns
    -------
    MeasuredPosterior

    Raises
    ------
    InvalidArgumentError
        Bad indices or targets, noise < 0, a singular training block at zero noise, duplicate
        training inputs with different targets at zero noise, or ESS below ``min_ess``.

    Examples
    --------
    >>> import critheory as ct
    >>> laws = ct.output_laws(ct.network("mlp", "tanh"), 1.0, 0.1, [[1.0], [0.5]], depth=2,
    ...                       width=32, networks=1000, seed=0)
    >>> post = ct.exact_posterior(laws, [0], [1], [0.3], noise=0.05)
    >>> post.mean.shape, bool(post.ess > 100)
    ((1,), True)
    """
    if not isinstance(laws, OutputLaws):
        raise InvalidArgumentError("laws must be the OutputLaws of output_laws()")
    S, m = laws.networks, laws.m
    train = _indices("train", train, m)
    test = _indices("test", test, m)
    noise = check_nonnegative("noise (the observation noise variance)", noise)
    min_ess = check_real("min_ess", min_ess)
    if min_ess < 1.0:
        raise InvalidArgumentError(f"min_ess must be >= 1, got {min_ess:g}")
    try:
        y = np.array(targets, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidArgumentError("targets must be numbers") from None
    if y.size != len(train):
        raise InvalidArgumentError(f"{len(train)} training inputs but {y.size} targets")
    if not np.all(np.isfinite(y)):
        raise InvalidArgumentError("targets must be finite")
    if noise == 0.0:
        train, y = _merge_duplicates(laws, train, y)
    A, B = list(train), list(test)
    a = len(A)
    G, mu = laws.metric, laws.mean
    M = G[:, A][:, :, A] + noise * np.eye(a)
    lam, V = np.linalg.eigh(M)
    top = lam[:, -1]
    bad = ~(lam[:, 0] > top / MAX_CONDITION)
    if bad.any():
        why = "at zero noise" if noise == 0.0 else f"at noise {noise:g}"
        raise InvalidArgumentError(
            f"the training block G_AA + noise I is singular {why} in {int(bad.sum())} of {S} "
            f"networks (condition number > {MAX_CONDITION:.0e}): collinear or repeated training "
            "inputs; give noise > 0 or remove them")
    r = y[None, :] - mu[:, A]                                   # (S, a)
    Vr = np.einsum("sji,sj->si", V, r) / lam
    alpha = np.einsum("sij,sj->si", V, Vr)                      # M^-1 r
    quad = np.einsum("si,si->s", r, alpha)
    logw = -0.5 * quad - 0.5 * np.log(lam).sum(axis=1) - 0.5 * a * _LOG_2PI
    top_w = logw.max()
    w = np.exp(logw - top_w)
    sw_ = w.sum()
    wn = w / sw_
    ess = float(1.0 / np.dot(wn, wn))
    log_evidence = float(top_w + math.log(sw_ / S))
    if ess < min_ess:
        raise InvalidArgumentError(
            f"effective sample size {ess:.1f} of {S} networks is below the floor {min_ess:g} "
            "(the likelihood concentrates on too few networks): more networks, more noise or "
            "fewer training points")
    GBA = G[:, B][:, :, A]                                       # (S, b, a)
    ms = mu[:, B] + np.einsum("sba,sa->sb", GBA, alpha)
    # C_s = G_BB - G_BA M^-1 G_AB, with M^-1 = V diag(1/lam) V^T
    P = np.einsum("sba,sak->sbk", GBA, V)                       # (S, b, a)
    Cs = G[:, B][:, :, B] - np.einsum("sbk,sk,sck->sbc", P, 1.0 / lam, P)
    mean = wn @ ms
    F = Cs + ms[:, :, None] * ms[:, None, :]
    Q = np.einsum("s,sbc->bc", wn, F)
    cov = Q - np.outer(mean, mean)
    mean_se = _ratio_se(wn, ms, mean)
    mean_bias = -np.einsum("s,sb->b", wn * wn, ms - mean)
    dm = ms - mean
    infl = wn[:, None, None] * ((F - Q) - dm[:, :, None] * mean[None, None, :]
                                - mean[None, :, None] * dm[:, None, :])
    cov_se = np.sqrt(np.einsum("sbc,sbc->bc", infl, infl))
    prior = G.mean(axis=0)
    post_g = np.einsum("s,sab->ab", wn, G)
    ig = (wn[:, None, None] * (G - post_g) - (G - prior) / S)
    shift_se = np.sqrt(np.einsum("sab,sab->ab", ig, ig))
    out = (mean, mean_se, mean_bias, cov, cov_se, post_g - prior, shift_se, prior)
    if not all(np.all(np.isfinite(v)) for v in out):     # pragma: no cover - guarded above
        raise InvalidArgumentError("the posterior is not finite (ill-conditioned laws)")
    return MeasuredPosterior(*(readonly(v) for v in out), ess, S, min_ess, log_evidence,
                             tuple(train), tuple(test), noise)


# ---------------------------------------------------------------------------- prior
def measured_kernel(laws: OutputLaws) -> MeasuredKernel:
    """The output kernel ``E[z_a z_b] = E[Ĝ + μ μᵀ]`` (exact per network given its layers
    below) with the standard error ``std_s/√S``."""
    f = laws.metric + laws.mean[:, :, None] * laws.mean[:, None, :]
    S = laws.networks
    return MeasuredKernel(readonly(f.mean(axis=0)),
                          readonly(f.std(axis=0, ddof=1) / math.sqrt(S)), S)


def measured_vertex(laws: OutputLaws) -> MeasuredVertex:
    """``n · Cov(Ĝ_ab, Ĝ_cd)`` (unbiased sample covariance over networks) and its standard error
    ``n · std_s(d_ab d_cd)/√S`` with ``d = Ĝ − mean(Ĝ)`` (the delta method of a sample
    covariance: the centring adds O(1/S) only)."""
    S, n = laws.networks, laws.width
    if n < 1:
        raise InvalidArgumentError("the laws carry no width: the vertex is n Cov(G)")
    d = laws.metric - laws.metric.mean(axis=0)
    cov = np.einsum("sab,scd->abcd", d, d) / (S - 1)
    p2 = np.einsum("sab,scd->abcd", d * d, d * d) / S
    pbar = cov * (S - 1) / S
    var_p = np.maximum(p2 - pbar * pbar, 0.0) * S / (S - 1)
    return MeasuredVertex(readonly(n * cov), readonly(n * np.sqrt(var_p / S)), n, S)
