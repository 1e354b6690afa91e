"""The dNTK and the ddNTK of finite networks, measured exactly (Taylor-mode arithmetic).

The check of :mod:`critheory.theory.ntk.dntk` (which this module never imports: it shares only
the activation and the block description with the theory). S networks of width n (the MLP of
:func:`critheory.simulation.train.network_ops`: ``W ~ N(0, σ_w²/n_in)``, ``b ~ N(0, σ_b²)``, one
fixed input with ``|x|²/n0 = q0``) are drawn; at each layer l two preactivations ``z_0``, ``z_1``
of the layer are followed, with the learning-rate tensor of PDLT (rate ``λ_b`` per bias,
``λ_W/n_in`` per weight; ``docs/ntk.md`` §1) and the *update directions*
``g_a = λ ∇z_a`` (the parameter step of one gradient step on ``z_a``, per unit step size).

Measured exactly, up to rounding (no finite differences):

* ``Θ̂_ij = ∇z_i · λ ∇z_j`` by one reverse pass (as :func:`~critheory.simulation.train.empirical_ntk`);
* the **dNTK** ``dĤ_{a ij} = g_a · ∇Θ̂_ij`` (the rate of change of the NTK along the update of
  ``z_a``) and the Hessian-vector products ``D_i^a = ∇²z_i g_a``, by a reverse pass in first-order
  Taylor (dual-number) arithmetic along ``g_a``: every array of the forward and the backward pass
  is carried as ``c₀ + ε c₁`` with ``θ → θ + ε g_a``;
* the **ddNTK** in PDLT's two parts: ``ω_{iabc} = ∇³z_i[g_a, g_b, g_c]`` (type I) from a forward
  pass in third-order Taylor arithmetic along ``g_0 ± g_1`` and ``g_a`` (cubic polarization:
  ``ω(a, b, b) = c₃(a + b) + c₃(a − b) − 2c₃(a)`` with ``c₃(u)`` the ε³ coefficient of
  ``z(θ + εu)``), and ``ν_{ijab} = D_i^a · λ D_j^b = g_aᵀ ∇²z_i λ ∇²z_j g_b`` (type II); the second
  derivative of the NTK along an update, ``∂²_{g_a g_a} Θ̂_ii = 2ω_{iaai} + 2ν_{iiaa}``.

Per network (symmetrized over the pair 0 ↔ 1), the samples whose ensemble means the theory
predicts (``docs/dntk.md``; ``n`` the width of the layer below):

==========  ==========================================  ==========================
name        per-network value                           mean (theory)
==========  ==========================================  ==========================
``p``       ``dĤ_{100} z_1``                            ``P/n``
``q``       ``dĤ_{001} z_1``                            ``Q/n``
``pq``      ``dĤ_{000} z_0``                            ``(P + 2Q)/n``
``dh``      ``dĤ_{000}``                                ``0`` (the dNTK is odd)
``r``       ``ω_{0011}``                                ``R/n``
``s``       ``ν_{0011}``                                ``S/n``
``t``       ``ν_{0101}``                                ``T/n``
``u``       ``ν_{0110}``                                ``U/n``
``ddh``     ``∂²_{g_0 g_0} Θ̂_00``                        ``(6R + 2S + 2T + 2U)/n``
``ntk``     ``Θ̂_00``                                    ``Θ``
``kernel``  ``z_0²``                                    ``K``
==========  ==========================================  ==========================

The derivatives of φ up to the third are evaluated pointwise (almost everywhere: a kink
contributes nothing, which for ReLU is the distributional answer since ``φ(0) = 0``).

Examples
--------
>>> m = measure_dntk("tanh", 1.0, 0.0, width=8, depth=3, networks=64, seed=0)
>>> m.samples["p"].shape, m.layers
((64, 3), (1, 2, 3))
>>> float(m.samples["p"][:, 0].max()) == 0.0          # layer 1 is linear in its parameters
True
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from critheory.common import limits
from critheory.common.checks import (check_bias_var, check_int, check_nonnegative,
                                     check_per_layer, check_real, check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError
from ._util import PerNetworkSamples
from .architectures import resolve_network
from .bayes import stream_chunks
from .train import STREAM, init_params, network_ops

__all__ = ["DNTKMeasurement", "measure_dntk", "dntk_work", "jets", "SAMPLES"]

#: the per-network samples (module docstring)
SAMPLES = ("p", "q", "pq", "dh", "r", "s", "t", "u", "ddh", "ntk", "kernel")
# a chunk holds about this many bytes of weights and directions
_CHUNK_BYTES = 1 << 26


@dataclass(frozen=True, eq=False)
class DNTKMeasurement(PerNetworkSamples):
    """Per-network samples of the dNTK and ddNTK statistics (module docstring).

    Attributes
    ----------
    samples : dict of name -> ndarray (S, len(layers))
    layers : tuple of int
        The (1-based) layers measured.
    width, depth, networks, seed : int
    activation : str
    weight_var, bias_var, q0 : float
    lambda_b, lambda_w : ndarray (L,)
    elapsed : float

    Examples
    --------
    >>> import critheory as ct
    >>> m = ct.measure_dntk("tanh", 1.0, 0.0, width=8, depth=2, networks=32, seed=1)
    >>> isinstance(m, ct.DNTKMeasurement), m.mean("p").shape, m.stderr("ntk")[0]
    (True, (2,), np.float64(0.0))
    """

    __repr__ = short_repr

    samples: dict
    layers: tuple
    width: int
    depth: int
    networks: int
    seed: int
    activation: str
    weight_var: float
    bias_var: float
    q0: float
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    elapsed: float

    def to_dict(self) -> dict:
        out = {"layers": list(self.layers), "width": self.width, "networks": self.networks,
               "seed": self.seed}
        for k in SAMPLES:
            out[f"{k}_mean"] = self.mean(k)
            out[f"{k}_stderr"] = self.stderr(k)
        return jsonable(out)


def dntk_work(networks: int, width: int, depth: int) -> float:
    """Estimated multiply-adds of :func:`measure_dntk`: per network and measured layer l about
    40 passes over the ``l`` layers' ``n²`` weights.

    >>> dntk_work(10, 8, 3) == 10 * 40 * 64 * (1 + 2 + 3)
    True
    """
    return float(networks) * 40.0 * width * width * depth * (depth + 1) / 2


# ------------------------------------------------------------------------- Taylor passes
def _phi_jet(fs, h):
    """``φ`` of a jet ``h = [h₀, h₁, …]`` (order ≤ 3) from the pointwise derivatives ``fs``."""
    d = [f(h[0]) for f in fs[:len(h)]]
    out = [d[0]]
    if len(h) > 1:
        out.append(d[1] * h[1])
    if len(h) > 2:
        out.append(d[1] * h[2] + 0.5 * d[2] * h[1] ** 2)
    if len(h) > 3:
        out.append(d[1] * h[3] + d[2] * h[1] * h[2] + d[3] * h[1] ** 3 / 6.0)
    return out


def forward_jet(ops, params, fs, x, direction, order: int):
    """The output of the network at ``θ + ε u`` as Taylor coefficients ``[c₀, …, c_order]``
    (each ``(B, n_out, 1)``); ``direction`` per op: ``(dW, db)`` or None."""
    h = [x] + [np.zeros_like(x) for _ in range(order)]
    for op, p, d in zip(ops, params, direction):
        if op[0] == "phi":
            h = _phi_jet(fs, h)
            continue
        W, b = p
        y = [W @ hk for hk in h]
        y[0] = y[0] + b
        if order:
            dW, db = d
            for k in range(1, order + 1):
                y[k] = y[k] + dW @ h[k - 1]
            y[1] = y[1] + db
        h = y
    return h


def taylor_backward(ops, params, fs, x, direction=None):
    """One forward and one reverse pass, in first-order Taylor arithmetic along ``direction``
    (None: plain). Returns, per dense op (in order), ``(δ, xin)`` with ``δ`` the cotangent
    ``∂z_i/∂y`` (B, n_out, 2) for the two followed outputs and ``xin`` the op's input
    (B, n_in, 1); each a list ``[c₀]`` or ``[c₀, c₁]``."""
    order = 0 if direction is None else 1
    h = [x] + ([np.zeros_like(x)] if order else [])
    tape = []
    for op, p, d in zip(ops, params, direction or [None] * len(ops)):
        tape.append(h)
        if op[0] == "phi":
            h = _phi_jet(fs, h)
            continue
        W, b = p
        y = [W @ hk for hk in h]
        y[0] = y[0] + b
        if order:
            y[1] = y[1] + d[0] @ h[0] + d[1]
        h = y
    B = x.shape[0]
    g = [np.broadcast_to(np.eye(2), (B, 2, 2)).copy()]
    if order:
        g.append(np.zeros((B, 2, 2)))
    out = []
    for op, p, d, hin in zip(reversed(ops), reversed(params),
                             reversed(direction or [None] * len(ops)), reversed(tape)):
        if op[0] == "phi":
            d1 = fs[1](hin[0])
            if order:
                g = [g[0] * d1, g[1] * d1 + g[0] * fs[2](hin[0]) * hin[1]]
            else:
                g = [g[0] * d1]
            continue
        out.append((g, hin))
        WT = np.swapaxes(p[0], 1, 2)
        if order:
            g = [WT @ g[0], WT @ g[1] + np.swapaxes(d[0], 1, 2) @ g[0]]
        else:
            g = [WT @ g[0]]
    out.reverse()
    return out


def layer_rates(ops, lambda_b, lambda_w):
    return [(lambda_b[op[4]], lambda_w[op[4]] / op[2]) if op[0] == "dense" else None
            for op in ops]


def update_directions(ops, rates, grads):
    """The update directions ``g_a = λ ∇z_a`` (a = 0, 1) per op: ``(dW (B, n_out, n_in, 2),
    db (B, n_out, 1, 2))`` or None."""
    out = []
    it = iter(grads)
    for op, r in zip(ops, rates):
        if op[0] == "phi":
            out.append(None)
            continue
        (g,), (xin,) = next(it)
        lb, lw = r
        dW = lw * g[:, :, None, :] * xin[:, None, :, :]       # (B, n_out, n_in, 2)
        db = lb * g[:, :, None, :]                            # (B, n_out, 1, 2)
        out.append((dW, db))
    return out


def combine_directions(dirs, c0: float, c1: float):
    return [None if d is None else (c0 * d[0][..., 0] + c1 * d[0][..., 1],
                                    c0 * d[1][..., 0] + c1 * d[1][..., 1]) for d in dirs]


def neuron_dot(a, b):
    """``Σ_j a_{bj i} b_{bj k}`` -> (B, i, k)."""
    return np.einsum("bji,bjk->bik", a, b)


def jets(ops, params, fs, x, lambda_b, lambda_w) -> dict:
    """The exact derivatives of one chunk of networks (module docstring) at the last op's two
    outputs: ``z`` (B, 2), ``ntk`` (B, 2, 2), ``dntk`` (B, 2, 2, 2) with ``dntk[:, a, i, j] =
    dĤ_{aij}``, ``nu`` (B, 2, 2, 2, 2) with ``nu[:, i, j, a, b] = ν_{ijab}``, ``omega0011`` and
    ``omega1100`` (B,), ``omega0000``, ``omega1111`` (B,)."""
    rates = layer_rates(ops, lambda_b, lambda_w)
    base = taylor_backward(ops, params, fs, x)
    dirs = update_directions(ops, rates, base)
    dense = [r for r in rates if r is not None]
    # plain NTK and outputs
    z = forward_jet(ops, params, fs, x, dirs, 0)[0][:, :, 0]
    ntk = 0.0
    for (g, xin), (lb, lw) in zip(base, dense):
        gg = neuron_dot(g[0], g[0])
        ntk = ntk + gg * (lb + lw * np.einsum("bjk,bjk->b", xin[0], xin[0])[:, None, None])
    # first-order reverse passes along g_0, g_1
    D = []               # D[a] = per dense op (δ₀, δ₁, x₀, x₁)
    for a in (0, 1):
        da = combine_directions(dirs, 1.0 - a, float(a))
        D.append([(g[0], g[1], xin[0], xin[1])
                  for g, xin in taylor_backward(ops, params, fs, x, da)])
    B = x.shape[0]
    dntk = np.zeros((B, 2, 2, 2))
    nu = np.zeros((B, 2, 2, 2, 2))
    for a in (0, 1):
        for (d0, d1, x0, x1), (lb, lw) in zip(D[a], dense):
            xx = np.einsum("bjk,bjk->b", x0, x0)[:, None, None]
            x01 = np.einsum("bjk,bjk->b", x0, x1)[:, None, None]
            s = neuron_dot(d1, d0)
            s = s + np.swapaxes(s, 1, 2)
            dntk[:, a] += lb * s + lw * (s * xx + 2.0 * neuron_dot(d0, d0) * x01)
    tau = np.zeros((B, 2, 2, 2))
    for b in (0, 1):
        for (d0, d1, x0, x1), (lb, lw) in zip(D[b], dense):
            xx = np.einsum("bjk,bjk->b", x0, x0)[:, None, None]
            x01 = np.einsum("bjk,bjk->b", x0, x1)[:, None, None]
            tau[:, :, :, b] += (lb + lw * xx) * neuron_dot(d0, d1) + lw * neuron_dot(d0, d0) * x01
    for a in (0, 1):
        for b in (0, 1):
            for (d0, da1, x0, xa1), (_, db1, _, xb1), (lb, lw) in zip(D[a], D[b], dense):
                xx = np.einsum("bjk,bjk->b", x0, x0)[:, None, None]
                x0b = np.einsum("bjk,bjk->b", x0, xb1)[:, None, None]
                xa0 = np.einsum("bjk,bjk->b", xa1, x0)[:, None, None]
                xab = np.einsum("bjk,bjk->b", xa1, xb1)[:, None, None]
                m = (lb + lw * xx) * neuron_dot(da1, db1) + lw * (neuron_dot(da1, d0) * x0b
                                                           + neuron_dot(d0, db1) * xa0
                                                           + neuron_dot(d0, d0) * xab)
                nu[:, :, :, a, b] += m
    # third-order forward passes: cubic polarization
    c3 = {}
    for key, (c0, c1) in {"+": (1.0, 1.0), "-": (1.0, -1.0), "0": (1.0, 0.0),
                          "1": (0.0, 1.0)}.items():
        c3[key] = forward_jet(ops, params, fs, x, combine_directions(dirs, c0, c1), 3)[3][:, :, 0]
    om0011 = c3["+"][:, 0] + c3["-"][:, 0] - 2.0 * c3["0"][:, 0]
    om1100 = c3["+"][:, 1] - c3["-"][:, 1] - 2.0 * c3["1"][:, 1]
    return {"z": z, "ntk": ntk, "dntk": dntk, "tau": tau, "nu": nu, "omega0011": om0011,
            "omega1100": om1100, "omega0000": 6.0 * c3["0"][:, 0],
            "omega1111": 6.0 * c3["1"][:, 1]}


def _samples(j) -> dict:
    z, dn, nu = j["z"], j["dntk"], j["nu"]
    z0, z1 = z[:, 0], z[:, 1]
    return {
        "p": 0.5 * (dn[:, 1, 0, 0] * z1 + dn[:, 0, 1, 1] * z0),
        "q": 0.5 * (dn[:, 0, 0, 1] * z1 + dn[:, 1, 1, 0] * z0),
        "pq": 0.5 * (dn[:, 0, 0, 0] * z0 + dn[:, 1, 1, 1] * z1),
        "dh": 0.5 * (dn[:, 0, 0, 0] + dn[:, 1, 1, 1]),
        "r": 0.5 * (j["omega0011"] + j["omega1100"]),
        "s": 0.5 * (nu[:, 0, 0, 1, 1] + nu[:, 1, 1, 0, 0]),
        "t": 0.5 * (nu[:, 0, 1, 0, 1] + nu[:, 1, 0, 1, 0]),
        "u": 0.5 * (nu[:, 0, 1, 1, 0] + nu[:, 1, 0, 0, 1]),
        "ddh": (j["omega0000"] + nu[:, 0, 0, 0, 0]) + (j["omega1111"] + nu[:, 1, 1, 1, 1]),
        "ntk": 0.5 * (j["ntk"][:, 0, 0] + j["ntk"][:, 1, 1]),
        "kernel": 0.5 * (z0 * z0 + z1 * z1),
    }


def truncate_to_layer(ops, params, layer: int):
    """The ops and parameters up to layer ``layer``'s last dense block, which keeps its first
    two output neurons."""
    last = max(i for i, op in enumerate(ops) if op[0] == "dense" and op[4] == layer - 1)
    o = list(ops[:last + 1])
    p = list(params[:last + 1])
    W, b = p[last]
    p[last] = (np.ascontiguousarray(W[:, :2]), np.ascontiguousarray(b[:, :2]))
    o[last] = o[last][:3] + (2,) + o[last][4:]
    return o, p


def measure_dntk(activation, weight_var: float, bias_var: float, *, width: int, depth: int,
                 networks: int, q0: float = 1.0, lambda_b=1.0, lambda_w=1.0,
                 layers=None, family: float = 0.0, seed: int | None = 0,
                 arch=None) -> DNTKMeasurement:
    """Measure the dNTK and ddNTK statistics of S networks exactly (module docstring).

    Parameters
    ----------
    activation : str, Activation or Network
        An MLP of dense and phi blocks (other blocks are refused naming the block).
    weight_var, bias_var : float
        σ_w², σ_b².
    width, depth, networks : int
        Hidden width n (>= 2), depth L, S networks (>= 2).
    q0 : float
        ``|x|²/n0`` of the input (``n0 = 1``).
    lambda_b, lambda_w : float or array (L,)
        Bias rate and weight rate per fan-in, per layer.
    layers : sequence of int or None
        Layers to measure (default all ``1..L``).
    family : float
        The meta-principled family's ``s`` (``recipe``): the rates of layers ``1..L−1``
        times ``n^s`` and the last layer's (the head's) weights and bias drawn with their
        variances divided by ``n^s`` (its rates unchanged); only layer L is then measured
        (``s = 0``: the plain network).
    seed : int or None

    Returns
    -------
    DNTKMeasurement

    Examples
    --------
    >>> m = measure_dntk("linear", 1.0, 0.0, width=4, depth=2, networks=32, lambda_b=0.0)
    >>> bool(np.allclose(m.samples["r"], 0.0))            # z is bilinear: ∇³z = 0
    True
    """
    t0 = time.perf_counter()
    net, _ = resolve_network(activation, arch, None)
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    n = check_int("width", width, 2)
    L = check_int("depth", depth, 1)
    S = check_int("networks", networks, 2)
    q0 = check_nonnegative("q0", q0)
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    family = check_real("family", family)
    if not 0.0 <= family <= 1.0:
        raise InvalidArgumentError(f"family s must be in [0, 1], got {family:g}")
    if family:
        lb, lw = lb.copy(), lw.copy()
        lb[:-1] *= float(n) ** family
        lw[:-1] *= float(n) ** family
        layers = (L,)
    layers = tuple(range(1, L + 1)) if layers is None else tuple(
        check_int("layer", l, 1) for l in layers)
    if any(l > L for l in layers):
        raise InvalidArgumentError(f"a measured layer is beyond the depth {L}")
    work = dntk_work(S, n, L)
    if work > limits.MAX_TRAIN_WORK:
        raise InvalidArgumentError(f"measuring the dNTK of {S} networks of width {n} and depth "
                                   f"{L} is {work:.3g} multiply-adds, beyond the budget "
                                   f"{limits.MAX_TRAIN_WORK:.0e}")
    ops = network_ops(net, L, n, 1)
    ops[-1] = ops[-1][:3] + (n,) + ops[-1][4:]           # keep the width: the layer is followed
    act = net.activation
    fs = [act.numpy_func(k) for k in range(4)]
    seed = None if seed is None else check_int("seed", seed, 0)
    root = np.random.SeedSequence(seed)
    per_chunk = max(1, _CHUNK_BYTES // (8 * 8 * n * n * STREAM))
    out = {k: np.empty((S, len(layers))) for k in SAMPLES}
    x1 = np.array([[math.sqrt(q0)]])
    with np.errstate(over="ignore", invalid="ignore"):
        for lo, sampler in stream_chunks(root, S, per_chunk, STREAM):
            Bn = sampler.b
            params = init_params(ops, sampler, sw, sb)
            if family:
                head = float(n) ** (-family / 2.0)
                params = [(p[0] * head, p[1] * head) if p is not None and op[4] == L - 1
                          else p for op, p in zip(ops, params)]
            x = np.ascontiguousarray(np.broadcast_to(x1, (Bn, 1, 1)))
            for c, layer in enumerate(layers):
                o, p = truncate_to_layer(ops, params, layer)
                smp = _samples(jets(o, p, fs, x, lb, lw))
                for k in SAMPLES:
                    out[k][lo:lo + Bn, c] = smp[k]
    for k in SAMPLES:
        out[k].flags.writeable = False
    return DNTKMeasurement(out, layers, n, L, S, int(root.entropy), act.name, float(sw),
                           float(sb), float(q0), lb, lw, time.perf_counter() - t0)
