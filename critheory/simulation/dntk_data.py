"""The dNTK of finite networks on several inputs, measured exactly (the Taylor-mode passes of
:mod:`critheory.simulation.dntk`, one per input and update direction).

The check of :mod:`critheory.theory.ntk.dntk_data` (never imported here). S networks of width
n (the MLP of :func:`critheory.simulation.train.network_ops`) on m fixed inputs ``x_α``
(rows of ``inputs``, ``n0`` their dimension); at layer L two neurons ``z_0``, ``z_1`` are
followed. For each input α and neuron a the update direction ``g_{a;α} = λ∇z_{a;α}`` comes
from one reverse pass at ``x_α``; for each direction and each input β one reverse pass in
dual-number arithmetic along it gives the cotangents and their directional derivatives, hence
exactly (no finite differences)

    dĤ_{a i j;αβγ} = g_{a;α}·∇Θ̂_{ij;βγ},   Θ̂_{ij;βγ} = Σ_layers (δ_{i;β}·δ_{j;γ})(λ_b + λ_W x_β·x_γ/n_in).

Samples per network (symmetrized over the neurons 0 ↔ 1), arrays ``(S, m, m, m, m)`` indexed
``[δ0, δ1, δ2, δ3]``: ``p = dĤ_{100;δ0δ1δ2} z_{1;δ3}`` (mean ``P/n``) and
``q = dĤ_{001;δ0δ1δ2} z_{1;δ3}`` (mean ``Q/n``); for a smooth activation also the ddNTK of
type II ``ν_{ijab;δiδjδaδb} = (∇²z_{i;δi} g_{a;δa})ᵀ λ (∇²z_{j;δj} g_{b;δb})`` (from the same
dual-number passes: ``∇²z_{i;β} g_{a;α}`` is the directional derivative of the gradient):
``r = ω_{0011} = ∇³z_{0;δ0}[g_{0;δ1}, g_{1;δ2}, g_{1;δ3}]`` (mean ``R/n``; third-order Taylor
forward passes, trilinear polarization), ``s = ν_{0011}`` (mean ``S/n``), ``t = ν_{0101}`` (``T/n``), ``u = ν_{0110}`` (``U/n``), indexed
``[δi, δj, δa, δb]``.

Examples
--------
>>> m = measure_dntk_data("tanh", 1.0, 0.1, [[1.0, 0.0], [0.6, 0.8]], width=4, depth=2,
...                       networks=32, seed=0)
>>> m.samples["p"].shape, m.mean("p").shape
((32, 2, 2, 2, 2), (2, 2, 2, 2))
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from critheory.common import limits
from critheory.common.checks import (check_bias_var, check_int, check_per_layer,
                                     check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError
from ._util import PerNetworkSamples
from .architectures import resolve_network
from .bayes import stream_chunks
from .dntk import taylor_backward, combine_directions, update_directions, neuron_dot, forward_jet, layer_rates, truncate_to_layer
from .train import STREAM, init_params, network_ops

__all__ = ["DNTKDataMeasurement", "measure_dntk_data", "dntk_data_jets"]


@dataclass(frozen=True, eq=False)
class DNTKDataMeasurement(PerNetworkSamples):
    """Per-network samples ``p``, ``q`` (module docstring) at layer ``depth``.

    Attributes
    ----------
    samples : dict of name -> ndarray (S, m, m, m, m)
    inputs : ndarray (m, n0)
    width, depth, networks, seed : int
    activation : str
    weight_var, bias_var : float
    lambda_b, lambda_w : ndarray (L,)
    elapsed : float

    Examples
    --------
    >>> m = measure_dntk_data("tanh", 1.0, 0.1, [[1.0]], width=4, depth=2, networks=8)
    >>> isinstance(m, DNTKDataMeasurement), m.stderr("q").shape
    (True, (1, 1, 1, 1))
    """

    __repr__ = short_repr

    samples: dict
    inputs: np.ndarray
    width: int
    depth: int
    networks: int
    seed: int
    activation: str
    weight_var: float
    bias_var: float
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    elapsed: float

    def to_dict(self) -> dict:
        """JSON-ready means and standard errors."""
        out = {"width": self.width, "depth": self.depth, "networks": self.networks,
               "seed": self.seed}
        for k in self.samples:
            out[f"{k}_mean"] = self.mean(k)
            out[f"{k}_stderr"] = self.stderr(k)
        return jsonable(out)


def _mix(dirs, terms):
    """The direction ``Σ c g_{a;δ}`` over ``terms`` ``(c, δ, a)`` (per op, None for φ)."""
    out = []
    for k, d in enumerate(dirs[0]):
        if d is None:
            out.append(None)
            continue
        out.append((sum(c * dirs[de][k][0][..., a] for c, de, a in terms),
                    sum(c * dirs[de][k][1][..., a] for c, de, a in terms)))
    return out


def dntk_data_jets(ops, params, fs, xs, lambda_b, lambda_w, second: bool = False) -> dict:
    """The outputs ``z`` (B, 2, m) and the dNTK ``dntk`` (B, 2, m, 2, m, 2, m) indexed
    ``[b, a, α, i, β, j, γ]`` = ``dĤ_{aij;αβγ}`` of one chunk of networks at the last op's two
    outputs, for inputs ``xs`` (a list of m arrays (B, n0, 1)); with ``second`` also ``nu``
    (B, 2, m, 2, m, 2, m, 2, m) indexed ``[b, i, β, j, γ, a, α, b', δ]`` = ``ν_{ijab';βγαδ}``
    and ``omega`` (B, 2, m, m, m, m) indexed ``[b, i, δ0, δ1, δ2, δ3]`` =
    ``ω_{i i b b;δ0δ1δ2δ3}`` with ``b = 1 − i``."""
    rates = layer_rates(ops, lambda_b, lambda_w)
    dense = [r for r in rates if r is not None]
    m = len(xs)
    B = xs[0].shape[0]
    z = np.stack([forward_jet(ops, params, fs, x, [None] * len(ops), 0)[0][:, :, 0]
                  for x in xs], -1)
    dirs = [update_directions(ops, rates, taylor_backward(ops, params, fs, x)) for x in xs]
    dntk = np.zeros((B, 2, m, 2, m, 2, m))
    # D[(a, α)][β]: per dense op the cotangents at x_β and the op's inputs, in dual numbers
    # along g_{a;α}
    D = {(a, al): [taylor_backward(ops, params, fs, x, combine_directions(dirs[al], 1.0 - a,
                                                                        float(a)))
                   for x in xs] for al in range(m) for a in (0, 1)}
    for (a, al), Da in D.items():
        for be in range(m):
            for ga in range(m):
                acc = 0.0
                for (gb, xb), (gc, xc), (lb, lw) in zip(Da[be], Da[ga], dense):
                    xx = np.einsum("bjk,bjk->b", xb[0], xc[0])[:, None, None]
                    dx = (np.einsum("bjk,bjk->b", xb[1], xc[0])
                          + np.einsum("bjk,bjk->b", xb[0], xc[1]))[:, None, None]
                    acc = acc + ((neuron_dot(gb[1], gc[0]) + neuron_dot(gb[0], gc[1]))
                                 * (lb + lw * xx) + lw * neuron_dot(gb[0], gc[0]) * dx)
                dntk[:, a, al, :, be, :, ga] = acc
    out = {"z": z, "dntk": dntk}
    if second:
        # ν_{ijab;βγαδ} = (∇²z_{i;β} g_{a;α})ᵀ λ (∇²z_{j;γ} g_{b;δ}): per dense op the W part
        # d1 ⊗ x0 + d0 ⊗ x1 and the bias part d1 of each Hessian-vector product
        nu = np.zeros((B, 2, m, 2, m, 2, m, 2, m))
        for (a, al), Da in D.items():
            for (b, de), Db in D.items():
                for be in range(m):
                    for ga in range(m):
                        acc = 0.0
                        for (g1, x1), (g2, x2), (lb, lw) in zip(Da[be], Db[ga], dense):
                            def dot(u, v):
                                return np.einsum("bjk,bjk->b", u, v)[:, None, None]
                            acc = acc + (lb + lw * dot(x1[0], x2[0])) * neuron_dot(g1[1], g2[1]) \
                                + lw * (neuron_dot(g1[1], g2[0]) * dot(x1[0], x2[1])
                                        + neuron_dot(g1[0], g2[1]) * dot(x1[1], x2[0])
                                        + neuron_dot(g1[0], g2[0]) * dot(x1[1], x2[1]))
                        nu[:, :, be, :, ga, a, al, b, de] = acc
        out["nu"] = nu
        # ω_{i i b b;δ0δ1δ2δ3} = ∇³z_{i;δ0}[g_{i;δ1}, g_{b;δ2}, g_{b;δ3}] (b = 1 − i) by trilinear
        # polarization: T(u, v, w) = ¼ Σ_{e,f=±1} e f c₃(u + e v + f w), c₃ the ε³ coefficient
        omega = np.zeros((B, 2) + (m,) * 4)
        xall = np.concatenate(xs, axis=2)            # every input as a column: one pass
        for i in (0, 1):
            for d1 in range(m):
                for d2 in range(m):
                    for d3 in range(d2, m):
                        for e in (1.0, -1.0):
                            for f in (1.0, -1.0):
                                u = _mix(dirs, [(1.0, d1, i), (e, d2, 1 - i), (f, d3, 1 - i)])
                                c3 = forward_jet(ops, params, fs, xall, u, 3)[3][:, i, :]
                                omega[:, i, :, d1, d2, d3] += 0.25 * e * f * c3
                        omega[:, i, :, d1, d3, d2] = omega[:, i, :, d1, d2, d3]
        out["omega"] = omega
    return out


def measure_dntk_data(activation, weight_var: float, bias_var: float, inputs, *, width: int,
                      depth: int, networks: int, lambda_b=1.0, lambda_w=1.0,
                      seed: int | None = 0) -> DNTKDataMeasurement:
    """Measure ``n × (p, q)`` sample means of S networks on m inputs (module docstring).

    Parameters
    ----------
    activation : str, Activation or Network
        An MLP of dense and phi blocks.
    weight_var, bias_var : float
        σ_w², σ_b².
    inputs : array_like (m, n0)
    width, depth, networks : int
        Hidden width n (>= 2), depth L (the measured layer), S networks (>= 2).
    lambda_b, lambda_w : float or array (L,)
        Bias rate and weight rate per fan-in, per layer.
    seed : int or None

    Returns
    -------
    DNTKDataMeasurement

    Examples
    --------
    >>> m = measure_dntk_data("linear", 1.0, 0.0, [[1.0], [2.0]], width=4, depth=1,
    ...                       networks=4, lambda_b=0.0)
    >>> bool(np.all(m.samples["p"] == 0.0))           # layer 1 is linear in its parameters
    True
    """
    t0 = time.perf_counter()
    net, _ = resolve_network(activation, None, None)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    n = check_int("width", width, 2)
    L = check_int("depth", depth, 1)
    S = check_int("networks", networks, 2)
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise InvalidArgumentError("inputs must be a finite (m, n0) array")
    m, n0 = x.shape
    work = float(S) * 40.0 * n * n * L * m * (2 * m + 1) * (1 + m)
    if work > limits.MAX_TRAIN_WORK:
        raise InvalidArgumentError(f"measuring the dNTK of {S} networks of width {n}, depth {L} "
                                   f"on {m} inputs is {work:.3g} multiply-adds, beyond the "
                                   f"budget {limits.MAX_TRAIN_WORK:.0e}")
    ops = network_ops(net, L, n, n0)
    ops[-1] = ops[-1][:3] + (n,) + ops[-1][4:]
    act = net.activation
    fs = [act.numpy_func(k) for k in range(4)]
    seed = None if seed is None else check_int("seed", seed, 0)
    root = np.random.SeedSequence(seed)
    per_chunk = max(1, (1 << 26) // (8 * 8 * n * n * STREAM))
    second = bool(act.is_smooth)
    names = ("p", "q", "r", "s", "t", "u") if second else ("p", "q")
    out = {k: np.empty((S,) + (m,) * 4) for k in names}
    with np.errstate(over="ignore", invalid="ignore"):
        for lo, sampler in stream_chunks(root, S, per_chunk, STREAM):
            Bn = sampler.b
            params = init_params(ops, sampler, sw, sb)
            o, p = truncate_to_layer(ops, params, L)
            xs = [np.ascontiguousarray(np.broadcast_to(xa[None, :, None], (Bn, n0, 1)))
                  for xa in x]
            j = dntk_data_jets(o, p, fs, xs, lb, lw, second)
            z, dn = j["z"], j["dntk"]
            # p = dĤ_{100} z_1 (and 0 ↔ 1), q = dĤ_{001} z_1 (and 0 ↔ 1)
            out["p"][lo:lo + Bn] = 0.5 * (
                np.einsum("bxyz,bw->bxyzw", dn[:, 1, :, 0, :, 0, :], z[:, 1])
                + np.einsum("bxyz,bw->bxyzw", dn[:, 0, :, 1, :, 1, :], z[:, 0]))
            out["q"][lo:lo + Bn] = 0.5 * (
                np.einsum("bxyz,bw->bxyzw", dn[:, 0, :, 0, :, 1, :], z[:, 1])
                + np.einsum("bxyz,bw->bxyzw", dn[:, 1, :, 1, :, 0, :], z[:, 0]))
            if second:
                out["r"][lo:lo + Bn] = 0.5 * (j["omega"][:, 0] + j["omega"][:, 1])
                nu = j["nu"]                  # [b, i, β, j, γ, a, α, b', δ]
                for k, (i, jj, a, b) in {"s": (0, 0, 1, 1), "t": (0, 1, 0, 1),
                                         "u": (0, 1, 1, 0)}.items():
                    out[k][lo:lo + Bn] = 0.5 * (nu[:, i, :, jj, :, a, :, b, :]
                                                + nu[:, 1 - i, :, 1 - jj, :, 1 - a, :, 1 - b, :])
    for k in out:
        out[k].flags.writeable = False
    return DNTKDataMeasurement(out, x, n, L, S, int(root.entropy), act.name, float(sw),
                               float(sb), lb, lw, time.perf_counter() - t0)
