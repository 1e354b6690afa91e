"""Ensembles of finite networks trained by full-batch gradient descent on MSE.

The check of :mod:`critheory.theory.ntk.trained` (which this module never imports: it shares
only the activation and the block description with the theory). S networks of width n are
trained at once, vectorized: every dense block's weights are one array ``(S, n_out, n_in)`` and
each step is a few batched matrix products, with explicit back-propagation (no autograd).

Conventions (``docs/ntk.md``)
-----------------------------
Layer 1 is ``z = W x + b`` on the inputs (``n0 → n``); layers ``2..L`` apply the network's unit
(dense and phi blocks only; any other block is refused in one line naming it), whose last block
must be dense; the last layer's last dense block has **one** output neuron, the network's scalar
output ``z(x)``. ``W ~ N(0, σ_w²/n_in)``, ``b ~ N(0, σ_b²)`` (a dense block with its own
variances keeps them; biases are trained even where σ_b² = 0). Gradient descent on
``L = ½ Σ_{α∈A} (z_α − y_α)²`` with step ``η`` and the per-parameter rates of PDLT:

    b ← b − η λ_b^l ∂L/∂b,        W ← W − η (λ_W^l/n_in) ∂L/∂W

(``l`` the layer the block belongs to). The empirical NTK at initialization on all inputs is
``Θ̂_ab = Σ_blocks Σ_j J_ja J_jb (λ_b + λ_W x_a·x_b/n_in)`` with ``J_ja = ∂z_a/∂y_j`` (the block's
output ``y``, input ``x``), by one reverse pass: no per-parameter gradient is materialized.

Convergence: a network is ``converged`` when ``|z_A(T) − y| <= tol |z_A(0) − y|`` after its
``T`` steps (``tol`` recorded). With ``steps=None`` the ensemble runs until every network has
converged or ``max_steps`` is reached (checked every :data:`CHECK_EVERY` steps).

Random streams: as :mod:`critheory.simulation.bayes`: networks come in streams of
:data:`STREAM`, each with its generator ``SeedSequence(seed).spawn(⌈S/STREAM⌉)[k]``; a chunk is a
whole number of streams, so the numbers do not depend on the chunk size.

Examples
--------
>>> import numpy as np
>>> from critheory.blocks.registry import network
>>> x = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
>>> e = train_ensemble(network("mlp", "tanh"), 1.0, 0.0, x, [0.5, -0.5], depth=2, width=32,
...                    networks=32, eta=0.2, steps=200, seed=0)
>>> e.outputs.shape, e.ntk.shape, bool(e.converged.all())
((32, 1), (32, 3, 3), True)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from critheory.blocks.blocks import Dense, walk
from critheory.common import limits
from critheory.common.checks import (check_bias_var, check_int, check_per_layer, check_real,
                                     check_targets, check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.progress import Progress
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError
from ._util import readonly
from .architectures import resolve_network
from .bayes import StreamSampler, check_inputs
from .interpreter import out_width

__all__ = ["TrainedEnsemble", "train_ensemble", "train_work", "network_ops", "parameter_count", "init_params",
           "forward", "empirical_ntk", "gd_step", "STREAM", "CHECK_EVERY", "DEFAULT_TOL"]

#: Networks per random stream (module docstring).
STREAM = 16
#: With ``steps=None``, convergence is checked every this many steps.
CHECK_EVERY = 10
#: Default convergence tolerance on ``|z_A(T) − y| / |z_A(0) − y|``.
DEFAULT_TOL = 1e-6
# a chunk holds about this many bytes of weights (times ~2 with the gradient)
_CHUNK_BYTES = 1 << 27
_KINDS = ("dense", "phi")


@dataclass(frozen=True, eq=False)
class TrainedEnsemble:
    """S finite networks trained by gradient descent (module docstring).

    Attributes
    ----------
    outputs : ndarray (S, b)
        Trained outputs on the test inputs.
    train_outputs : ndarray (S, a)
        Trained outputs on the training inputs.
    initial_outputs : ndarray (S, m)
        Outputs at initialization on all inputs.
    ntk : ndarray (S, m, m)
        The empirical NTK of each network at initialization on all inputs.
    residual_norm, initial_residual_norm : ndarray (S,)
        ``|z_A − y|`` after training and at initialization.
    converged : ndarray of bool (S,)
        ``residual_norm <= tol * initial_residual_norm``.
    tol : float
    steps : int
        Gradient-descent steps every network ran.
    eta : float
    lambda_b, lambda_w : ndarray (L,)
    train, test : tuple of int
    targets : ndarray (a,)
    inputs : ndarray (m, n0)
    width, depth, seed : int
    activation, arch : str
    weight_var, bias_var : float
    elapsed : float

    Examples
    --------
    >>> import critheory as ct
    >>> e = ct.train_ensemble(ct.network("mlp", "relu"), 2.0, 0.0, [[1.0], [-1.0], [0.5]],
    ...                       [1.0, 0.0], depth=1, width=8, networks=16, eta=0.5, steps=100)
    >>> isinstance(e, ct.TrainedEnsemble), e.networks, e.mean.shape
    (True, 16, (1,))
    """

    __repr__ = short_repr

    outputs: np.ndarray
    train_outputs: np.ndarray
    initial_outputs: np.ndarray
    ntk: np.ndarray
    residual_norm: np.ndarray
    initial_residual_norm: np.ndarray
    converged: np.ndarray
    tol: float
    steps: int
    eta: float
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    train: tuple
    test: tuple
    targets: np.ndarray
    inputs: np.ndarray
    width: int
    depth: int
    seed: int
    activation: str
    arch: str
    weight_var: float
    bias_var: float
    elapsed: float

    @property
    def networks(self) -> int:
        """S."""
        return self.outputs.shape[0]

    @property
    def dof(self) -> float:
        """Degrees of freedom of a mean over the independent networks, ``S − 1``."""
        return float(self.networks - 1)

    @property
    def mean(self) -> np.ndarray:
        """Ensemble mean of the trained test outputs."""
        return self.outputs.mean(axis=0)

    @property
    def mean_stderr(self) -> np.ndarray:
        """``std/√S`` of the trained test outputs."""
        return self.outputs.std(axis=0, ddof=1) / math.sqrt(self.networks)

    @property
    def covariance(self) -> np.ndarray:
        """Sample covariance (``S − 1``) of the trained test outputs."""
        d = self.outputs - self.mean
        return d.T @ d / (self.networks - 1)

    @property
    def covariance_stderr(self) -> np.ndarray:
        """Standard error of :attr:`covariance`: the spread of the products of centred outputs
        over the networks, ``std_s(d_i d_j)/√S`` (the delta method; the centring adds O(1/S))."""
        d = self.outputs - self.mean
        p = d[:, :, None] * d[:, None, :]
        return p.std(axis=0, ddof=1) / math.sqrt(self.networks)

    @property
    def ntk_mean(self) -> np.ndarray:
        """Mean empirical NTK at initialization (m, m)."""
        return self.ntk.mean(axis=0)

    @property
    def ntk_stderr(self) -> np.ndarray:
        """Its standard error ``std/√S``."""
        return self.ntk.std(axis=0, ddof=1) / math.sqrt(self.networks)

    @property
    def ntk_variance(self) -> np.ndarray:
        """Variance of the empirical NTK over the networks (m, m)."""
        return self.ntk.var(axis=0, ddof=1)

    def to_dict(self) -> dict:
        """JSON-ready summary (the per-network arrays summarized by their means and errors)."""
        return jsonable({
            "activation": self.activation, "arch": self.arch, "weight_var": self.weight_var,
            "bias_var": self.bias_var, "depth": self.depth, "width": self.width,
            "networks": self.networks, "seed": self.seed, "eta": self.eta, "steps": self.steps,
            "tol": self.tol, "lambda_b": self.lambda_b, "lambda_w": self.lambda_w,
            "train": self.train, "test": self.test, "train_targets": self.targets,
            "measured_prediction_mean": self.mean,
            "measured_prediction_stderr": self.mean_stderr,
            "measured_prediction_cov": self.covariance,
            "measured_prediction_cov_stderr": self.covariance_stderr,
            "converged": bool(self.converged.all()),
            "converged_fraction": float(self.converged.mean()),
            "max_relative_residual": float(np.max(self.residual_norm / np.maximum(
                self.initial_residual_norm, np.finfo(float).tiny))),
            "ntk_mean": self.ntk_mean, "ntk_stderr": self.ntk_stderr,
            "elapsed": self.elapsed})


# ---------------------------------------------------------------------------- the network
def network_ops(net, depth: int, width: int, n0: int) -> list:
    """The ops of the network as ``("dense", block, n_in, n_out, layer)`` and ``("phi",)``
    (module docstring: stem, L − 1 units, one output neuron)."""
    bad = [b.kind for b in walk(net.unit) if b.kind not in _KINDS]
    if bad:
        raise InvalidArgumentError(f"the trainer runs dense and phi blocks only; this network "
                                   f"has a {bad[0]!r} block")
    if net.tokens != 1:
        raise InvalidArgumentError(f"the trainer runs one-token networks; {net.describe()} "
                                   f"acts on {net.tokens} tokens")
    # only dense and phi blocks remain: a weighted block is a dense one
    if depth > 1 and not net.unit[-1].weighted:
        raise InvalidArgumentError("the trainer needs a unit that ends in a dense block (the "
                                   f"output neuron); this one ends in a {net.unit[-1].kind!r} "
                                   "block")
    ops = [["dense", Dense(), n0, width, 0]]
    n = width
    for layer in range(1, depth):
        for blk in net.unit:
            if blk.weighted:
                n_out = out_width(blk, width)
                ops.append(["dense", blk, n, n_out, layer])
                n = n_out
            else:
                ops.append(["phi"])
    ops[-1][3] = 1            # the output neuron
    return [tuple(o) for o in ops]


def parameter_count(ops) -> int:
    """Weights and biases of one network of :func:`network_ops`."""
    return int(sum(o[2] * o[3] + o[3] for o in ops if o[0] == "dense"))


def train_work(networks: int, steps: int, params: int, m: int, a: int) -> float:
    """Estimated multiply-adds of :func:`train_ensemble`: per network and parameter, three per
    training input and step (forward, back-propagated gradient, weight gradient) and three per
    input for the initial outputs and NTK.

    >>> train_work(10, 100, 1000, 3, 2) == 10 * 1000 * (3 * 2 * 100 + 3 * 3)
    True
    """
    return float(networks) * params * (3.0 * a * steps + 3.0 * m)


def init_params(ops, sampler, weight_var: float, bias_var: float) -> list:
    """Fresh parameters of the ops for the sampler's B networks: per dense op ``(W, b)`` with
    ``W`` (B, n_out, n_in) ~ N(0, σ_w²/n_in) and ``b`` (B, n_out, 1) ~ N(0, σ_b²) (the block's
    own variances where it has them), None per phi op."""
    params = []
    for op in ops:
        if op[0] == "phi":
            params.append(None)
            continue
        dw, db = op[1].variances(weight_var, bias_var)
        W = sampler._normals((op[3], op[2]))
        W *= math.sqrt(dw / op[2])
        params.append((W, sampler.bias(op[3], db)))
    return params


def forward(ops, params, phi, x, tape: list | None = None) -> np.ndarray:
    """The network on ``x`` (B, n0, k): the output (B, 1, k). The tape (if given) keeps each
    op's input (a dense block's input, a phi block's pre-activation)."""
    h = x
    for op, p in zip(ops, params):
        if tape is not None:
            tape.append(h)
        if op[0] == "phi":
            h = phi(h)
        else:
            h = p[0] @ h + p[1]
    return h


def empirical_ntk(ops, params, phi, dphi, x, lambda_b, lambda_w
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``z`` (B, k) and the empirical NTK ``Θ̂`` (B, k, k) on the k columns of ``x``:
    ``Σ_dense (λ_b + λ_W x_a·x_b/n_in) Σ_j J_ja J_jb`` by one reverse pass (module docstring)."""
    tape: list = []
    z = forward(ops, params, phi, x, tape)
    B, _, k = z.shape
    g = np.ones((B, 1, k))
    T = np.zeros((B, k, k))
    for op, p in zip(reversed(ops), reversed(params)):
        h = tape.pop()
        if op[0] == "phi":
            g = g * dphi(h)
            continue
        layer, n_in = op[4], op[2]
        gx = np.einsum("bka,bkc->bac", h, h) / n_in
        T += np.einsum("bja,bjc->bac", g, g) * (lambda_b[layer] + lambda_w[layer] * gx)
        g = np.swapaxes(p[0], 1, 2) @ g
    return z[:, 0, :], T


def gd_step(ops, params, phi, dphi, x, y, eta: float, lambda_b, lambda_w) -> np.ndarray:
    """One full-batch gradient-descent step on ``½ Σ_a (z_a − y_a)²`` over the columns of ``x``
    (B, n0, a), in place: ``W −= η (λ_W/n_in) ∂L/∂W``, ``b −= η λ_b ∂L/∂b`` (the rates of the
    op's layer). Returns the residual ``z − y`` (B, a) before the step."""
    tape: list = []
    z = forward(ops, params, phi, x, tape)
    r = z[:, 0, :] - y
    g = r[:, None, :]
    for i in range(len(ops) - 1, -1, -1):
        op, p, h = ops[i], params[i], tape[i]
        if op[0] == "phi":
            g = g * dphi(h)
            continue
        W, b = p
        layer, n_in = op[4], op[2]
        g_in = np.swapaxes(W, 1, 2) @ g if i > 0 else None     # before W moves
        W -= (eta * lambda_w[layer] / n_in) * (g @ np.swapaxes(h, 1, 2))
        b -= (eta * lambda_b[layer]) * g.sum(axis=2, keepdims=True)
        g = g_in
    return r


def train_ensemble(net, weight_var: float, bias_var: float, inputs, targets, depth: int,
                   width: int, networks: int, *, eta: float, steps: int | None = None,
                   lambda_b=1.0, lambda_w=1.0, tol: float = DEFAULT_TOL,
                   max_steps: int = 10_000, seed: int | None = 0, chunk: int | None = None,
                   progress: bool | Callable[[int, int], None] | None = None, arch=None,
                   mu: float | None = None) -> TrainedEnsemble:
    """Train S networks of width n by full-batch gradient descent on MSE.

    Parameters
    ----------
    net : Network, str or Activation
        A one-token network of dense and phi blocks (an MLP), or an activation with ``arch``.
    weight_var, bias_var : float
        σ_w², σ_b².
    inputs : array (m, n0)
        The first ``len(targets)`` are the training inputs, the rest the test inputs.
    targets : array (a,)
    depth, width, networks : int
        L weight layers, hidden width n, S networks (>= 2).
    eta : float
        Global step η (> 0) multiplying every rate.
    steps : int or None
        Steps; None: until every network has converged (at most ``max_steps``).
    lambda_b, lambda_w : float or array (L,)
        Bias rate and weight rate per fan-in, per layer.
    tol : float
        Convergence tolerance on the relative residual (module docstring).
    max_steps : int
        The step budget with ``steps=None``.
    seed : int or None
        Root seed (None: fresh entropy, recorded).
    chunk : int or None
        Networks per vectorized chunk (rounded up to whole streams); None: from a memory budget.
    progress : bool, callable or None
        :class:`critheory.common.progress.Progress` over networks.

    Returns
    -------
    TrainedEnsemble

    Raises
    ------
    InvalidArgumentError
        Bad arguments, a block other than dense/phi, a unit not ending in a dense block, a run
        beyond :data:`critheory.common.limits.MAX_TRAIN_WORK` (refused before any work), or
        outputs that leave float64 (a diverging step size).

    Examples
    --------
    >>> import critheory as ct
    >>> # one layer z = w x + b is a linear model: trained on x = 1 -> 1, it predicts at x = 0
    >>> # the trained bias, b(∞) = b(0) − (z(0) − 1)/2 (Θ = λ_b + λ_W x² = 2 at x = 1)
    >>> e = ct.train_ensemble("linear", 1.0, 1.0, [[1.0], [0.0]], [1.0], depth=1, width=4,
    ...                       networks=4000, eta=0.5, steps=None, seed=3)
    >>> bool(e.converged.all()), bool(abs(e.mean[0] - 0.5) < 4 * e.mean_stderr[0])
    (True, True)
    """
    t0 = time.perf_counter()
    net, _ = resolve_network(net, arch, mu)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    x0 = check_inputs(inputs)
    m, n0 = x0.shape
    y = check_targets(targets, m)
    L = check_int("depth", depth, 1)
    n = check_int("width", width, 1)
    S = check_int("networks", networks, 2)
    eta = check_real("eta", eta)
    if not eta > 0:
        raise InvalidArgumentError(f"eta must be > 0, got {eta:g}")
    tol = check_real("tol", tol)
    if not tol > 0:
        raise InvalidArgumentError(f"tol must be > 0, got {tol:g}")
    budget_steps = check_int("max_steps", max_steps, 1) if steps is None else check_int(
        "steps", steps, 0)
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    ops = network_ops(net, L, n, n0)
    P = parameter_count(ops)
    a = y.size
    work = train_work(S, budget_steps, P, m, a)
    if work > limits.MAX_TRAIN_WORK:
        raise InvalidArgumentError(
            f"training {S} networks of {P} parameters for {budget_steps} steps is {work:.3g} "
            f"multiply-adds, beyond the budget {limits.MAX_TRAIN_WORK:.0e}: fewer networks, "
            "steps, or a smaller width or depth")
    stored = 8.0 * S * (m * m + 2 * m)
    if stored > limits.MAX_MATRIX_BYTES:
        raise InvalidArgumentError(f"the NTKs of {S} networks on {m} inputs need "
                                   f"{stored / 2**30:.1f} GiB: fewer networks or inputs")
    if seed is not None:
        seed = check_int("seed", seed, 0)
    root = np.random.SeedSequence(seed)
    n_streams = -(-S // STREAM)
    streams = root.spawn(n_streams)
    if chunk is None:
        per_chunk = max(1, _CHUNK_BYTES // (16 * P * STREAM))
    else:
        per_chunk = -(-check_int("chunk", chunk, 1) // STREAM)
    act = net.activation
    phi, dphi = act.numpy_func(0), act.numpy_func(1)
    A = list(range(a))
    Bt = list(range(a, m))
    out_test = np.empty((S, m - a))
    out_train = np.empty((S, a))
    out_init = np.empty((S, m))
    ntk = np.zeros((S, m, m))
    res = np.empty(S)
    res0 = np.empty(S)
    ran = 0
    bar = Progress(S, progress or False, unit="networks")
    xall = x0.T                                                  # (n0, m)
    with np.errstate(over="ignore", invalid="ignore"):
        for c0 in range(0, n_streams, per_chunk):
            ids = range(c0, min(n_streams, c0 + per_chunk))
            sizes = [min(STREAM, S - k * STREAM) for k in ids]
            sampler = StreamSampler([np.random.Generator(np.random.SFC64(streams[k]))
                                      for k in ids], sizes)
            B = sampler.b
            lo, hi = c0 * STREAM, c0 * STREAM + B
            params = init_params(ops, sampler, sw, sb)
            # initial outputs and NTK on all inputs (one reverse pass, cotangent 1 per column)
            x = np.ascontiguousarray(np.broadcast_to(xall, (B, n0, m)))
            z, T = empirical_ntk(ops, params, phi, dphi, x, lb, lw)
            out_init[lo:hi] = z
            ntk[lo:hi] = T
            # gradient descent on the training inputs
            xa = np.ascontiguousarray(x[:, :, A])
            r0 = out_init[lo:hi, A] - y
            n0r = np.sqrt(np.einsum("ba,ba->b", r0, r0))
            res0[lo:hi] = n0r
            t = 0
            while t < budget_steps:
                if steps is None and t % CHECK_EVERY == 0:
                    r = forward(ops, params, phi, xa)[:, 0, :] - y
                    if np.all(np.sqrt(np.einsum("ba,ba->b", r, r)) <= tol * n0r):
                        break
                gd_step(ops, params, phi, dphi, xa, y, eta, lb, lw)
                t += 1
            ran = max(ran, t)
            zt = forward(ops, params, phi, x)[:, 0, :]
            out_test[lo:hi] = zt[:, Bt]
            out_train[lo:hi] = zt[:, A]
            r = zt[:, A] - y
            res[lo:hi] = np.sqrt(np.einsum("ba,ba->b", r, r))
            bar.update(B)
    if not (np.all(np.isfinite(out_test)) and np.all(np.isfinite(out_train))
            and np.all(np.isfinite(ntk))):
        raise InvalidArgumentError(
            "the trained outputs left float64: the step size is beyond the stable range "
            "(eta < 2/lambda_max of the training NTK) or the kernel runs away")
    conv = res <= tol * res0
    return TrainedEnsemble(
        readonly(out_test), readonly(out_train), readonly(out_init), readonly(ntk),
        readonly(res), readonly(res0), readonly(conv), float(tol), int(ran), float(eta),
        readonly(lb), readonly(lw), tuple(A), tuple(Bt), readonly(y), readonly(x0), n, L,
        int(root.entropy), act.name, net.describe(), float(sw), float(sb),
        time.perf_counter() - t0)
