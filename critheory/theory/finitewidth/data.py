"""Finite-width statistics of a network on several inputs: the kernel ``K^l``, its 1/n shift
``K^{(1),l}`` and the four-point vertex ``V^l`` over a set of inputs, layer by layer
(the rules are :mod:`critheory.theory.finitewidth.data_rules`).

Conventions (PDLT ch. 4): ``W ~ N(0, σ_w²/n_in)``, ``b ~ N(0, σ_b²)``, hidden widths n, input
dimension n0; "depth L" is L weight layers with the output ``z^(L)``; the first layer's
kernel is ``K¹_αβ = σ_b² + σ_w² x_α·x_β/n0`` exactly (``K^{(1),1} = V¹ = 0``). A preactivation
of layer l on the inputs has, to order 1/n, mean zero, covariance ``K^l + K^{(1),l}/n`` and
connected four-point function ``(V_(α1α2)(α3α4) + V_(α1α3)(α2α4) + V_(α1α4)(α2α3))/n``.

Equal inputs give equal rows exactly: the recursion runs on the distinct inputs only. A
positively homogeneous network (a scale-invariant activation, no biases anywhere) maps ``c x``
to ``c z(x)`` for c > 0, so inputs that are positive multiples of each other are one input
scaled (K, K1 scale by ``c_α c_β``, V by ``c_α c_β c_γ c_δ``): they are merged too (their
kernel derivatives are singular at correlation 1 for a kinked φ).

Examples
--------
>>> import numpy as np
>>> import critheory as ct
>>> x = np.array([[1.0, 0.0], [0.6, 0.8]])
>>> s = ct.data_statistics(ct.network("mlp", "relu"), 2.0, 0.0, x, depth=3)
>>> s.kernel.shape, s.vertex.shape
((3, 2, 2), (3, 2, 2, 2, 2))
>>> round(float(s.vertex[-1, 0, 0, 0, 0] / s.kernel[-1, 0, 0] ** 2), 12)   # ν (l − 1), ν = 5
10.0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.common.checks import check_hyper
from critheory.common.jsonable import jsonable
from critheory.common.limits import (MAX_DATA_WORK, MAX_DEPTH_DATA, MAX_INPUT_DIM,
                                     MAX_INPUTS_DATA)
from critheory.common.progress import Progress
from critheory.errors import InvalidArgumentError
from critheory.theory.finitewidth.data_rules import apply, check_network, start
from critheory.theory.fold import Ctx
from critheory.theory.meanfield.maps import architecture

__all__ = ["DataStatistics", "data_statistics", "check_inputs", "seconds_per_layer",
           "reduce_inputs"]


@dataclass(frozen=True)
class DataStatistics:
    """Kernel, 1/n kernel shift and vertex of a network on m inputs at depths ``1..L``.

    Attributes
    ----------
    activation, arch : str
    weight_var, bias_var : float
    inputs : ndarray, shape (m, n0)
    depths : ndarray, shape (L,)
    kernel : ndarray, shape (L, m, m)
        ``K^l_αβ`` (infinite width).
    kernel_correction : ndarray, shape (L, m, m)
        ``K^{(1),l}_αβ``: ``E[z_α z_β] = K + K^{(1)}/n + O(1/n²)``.
    vertex : ndarray, shape (L, m, m, m, m)
        ``V^l_(αβ)(γδ)``.

    Examples
    --------
    >>> import critheory as ct
    >>> s = ct.data_statistics("mlp", 2.0, 0.0, [[1.0, 0.0], [0.0, 1.0]], depth=2)
    >>> isinstance(s, ct.DataStatistics), s.metric(64).shape, s.cumulant4(64).shape
    (True, (2, 2), (2, 2, 2, 2))
    """

    activation: str
    arch: str
    weight_var: float
    bias_var: float
    inputs: np.ndarray
    depths: np.ndarray
    kernel: np.ndarray
    kernel_correction: np.ndarray
    vertex: np.ndarray

    def __repr__(self) -> str:
        m = self.kernel.shape[-1]
        return (f"DataStatistics({self.arch}, {self.activation}, σ_w²={self.weight_var:g}, "
                f"σ_b²={self.bias_var:g}, {m} inputs, depth {len(self.depths)})")

    def metric(self, width: float, layer: int = -1) -> np.ndarray:
        """``K + K^{(1)}/n`` at a layer (default the last): the covariance to order 1/n."""
        return self.kernel[layer] + self.kernel_correction[layer] / float(width)

    def cumulant4(self, width: float, layer: int = -1) -> np.ndarray:
        """The connected four-point function of one neuron to order 1/n,
        ``(V_(αβ)(γδ) + V_(αγ)(βδ) + V_(αδ)(βγ))/n``."""
        V = self.vertex[layer]
        return (V + V.transpose(0, 2, 1, 3) + V.transpose(0, 3, 2, 1)) / float(width)

    def to_dict(self) -> dict:
        return jsonable({"activation": self.activation, "arch": self.arch,
                         "weight_var": self.weight_var, "bias_var": self.bias_var,
                         "inputs": self.inputs, "depths": self.depths, "kernel": self.kernel,
                         "kernel_correction": self.kernel_correction, "vertex": self.vertex})


def check_inputs(inputs) -> np.ndarray:
    """Inputs as a float array ``(m, n0)``: finite, 1 <= m <= MAX_INPUTS_DATA."""
    try:
        x = np.asarray(inputs, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgumentError("inputs must be an (m, n0) array of numbers") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.size == 0:
        raise InvalidArgumentError(f"inputs must be an (m, n0) array (m inputs of dimension "
                                   f"n0), got shape {x.shape}")
    m, n0 = x.shape
    if m > MAX_INPUTS_DATA:
        raise InvalidArgumentError(f"{m} inputs is beyond the supported {MAX_INPUTS_DATA} (the "
                                   "vertex has m^4 entries)")
    if n0 > MAX_INPUT_DIM:
        raise InvalidArgumentError(f"input dimension {n0} is beyond the supported "
                                   f"{MAX_INPUT_DIM:.0e}")
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError("inputs must be finite")
    return x


def reduce_inputs(x: np.ndarray, homogeneous: bool):
    """Representative inputs, the index of each input's representative and its scale: equal
    rows always, positive multiples of a row for a positively homogeneous network."""
    if homogeneous:
        r = np.linalg.norm(x, axis=1)
        u = x / np.where(r > 0, r, 1.0)[:, None]
    else:
        r, u = np.ones(x.shape[0]), x
    reps: list[int] = []
    where = np.empty(x.shape[0], dtype=int)
    for i in range(x.shape[0]):
        for k, j in enumerate(reps):
            same = (np.array_equal(u[i], u[j]) if not homogeneous
                    else np.max(np.abs(u[i] - u[j])) <= 1e-13 and r[i] > 0 and r[j] > 0)
            if same:
                where[i] = k
                break
        else:
            where[i] = len(reps)
            reps.append(i)
    reps_arr = np.array(reps)
    scale = r / r[reps_arr][where] if homogeneous else np.ones(x.shape[0])
    return x[reps_arr], where, scale


#: measured cost of one four-point entry (2-core shared VM, 2026-12-07): the closed-form
#: conditioned route with its radial integral in closed form (one angle left) 0.07-0.15 ms
#: (m = 8 and 16, ReLU, leaky ReLU, erf; a layer's kernel derivatives included), taken as
#: 0.3 ms; the general quadrature 0.3-7 s (4-D) and 0.01-0.1 s (3-D)
_SECONDS_FAST, _SECONDS_4D, _SECONDS_3D = 3e-4, 2.0, 0.05


def seconds_per_layer(act, m: int, conditioned: bool | None = None) -> float:
    """Estimated seconds of one layer's four-point functions over m distinct inputs (by the
    conditioned route where ``act`` has one, unless ``conditioned`` says otherwise: the
    four-point functions of φ' go by the general quadratures)."""
    from critheory.expectations.multipoint import has_conditioned_route

    quads = m * (m + 1) * (m + 2) * (m + 3) / 24
    if has_conditioned_route(act) if conditioned is None else conditioned:
        return quads * _SECONDS_FAST
    n4 = m * (m - 1) * (m - 2) * (m - 3) / 24
    n3 = m * (m - 1) * (m - 2) / 2
    return quads * _SECONDS_FAST + n4 * _SECONDS_4D + n3 * _SECONDS_3D


def _homogeneous(net, sw: float, sb: float) -> bool:
    """A positively homogeneous network: scale-invariant φ, every bias variance 0."""
    from critheory.blocks.blocks import walk

    if net.activation.homogeneous_slopes is None or sb != 0:
        return False
    return all(b.variances(sw, sb)[1] == 0 for b in walk(net.unit)
               if hasattr(b, "variances"))


def data_statistics(arch, weight_var: float, bias_var: float, inputs, depth: int, *,
                    progress: bool = False) -> DataStatistics:
    """Kernel, 1/n kernel shift and four-point vertex over several inputs at depths ``1..L``.

    Parameters
    ----------
    arch : Network, LayerMaps or a registry name (ReLU then)
        A one-token network whose blocks the several-input rules cover (dense, activation,
        residual; LayerNorm and RMSNorm are refused in one line).
    weight_var, bias_var : float
        σ_w² (> 0) and σ_b² (>= 0) of every dense block without its own.
    inputs : array_like, shape (m, n0)
        The inputs (rows); ``K¹ = σ_b² + σ_w² x xᵀ/n0``.
    depth : int
        Number of weight layers L (the output is ``z^(L)``).
    progress : bool
        A progress line on stderr.

    Raises
    ------
    InvalidArgumentError
        Bad arguments, a block without a rule, or a problem beyond the work budget.

    Examples
    --------
    >>> import critheory as ct
    >>> s = ct.data_statistics(ct.network("mlp", "tanh"), 1.0, 0.0, [[1.0], [-0.5]], depth=2)
    >>> bool(s.vertex[-1, 0, 0, 1, 1] > 0)
    True
    """
    net = getattr(arch, "network", arch)
    if hasattr(net, "unit"):
        check_network(net)
    net = architecture(arch).network
    check_network(net)
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise InvalidArgumentError(f"depth must be an integer, got {depth!r}")
    L = int(depth)
    if not 1 <= L <= MAX_DEPTH_DATA:
        raise InvalidArgumentError(f"depth must be between 1 and {MAX_DEPTH_DATA}, got {L}")
    x = check_inputs(inputs)
    xu, where, c = reduce_inputs(x, _homogeneous(net, sw, sb))
    m = xu.shape[0]
    est = L * seconds_per_layer(net.activation, m)
    if est > MAX_DATA_WORK:
        raise InvalidArgumentError(
            f"{m} distinct inputs to depth {L} need about {est:.3g} s of four-point "
            f"expectations for {net.activation.name}, beyond the budget {MAX_DATA_WORK:g} s: "
            "use fewer inputs or layers")
    K = sb + sw * (xu @ xu.T) / xu.shape[1]
    if np.any(np.diag(K) <= 0):
        raise InvalidArgumentError("an input has zero kernel K¹ = σ_b² + σ_w²|x|²/n0 = 0 (a "
                                   "zero input without bias): its preactivations are all zero")
    ctx = Ctx(net.activation, sw, sb)
    s = start(K)
    Ks, K1s, Vs = [s.K], [s.K1], [s.V]
    bar = Progress(L, progress, unit="layers")
    bar.update()
    for _ in range(L - 1):
        s = apply(net, s, ctx)
        if not (np.all(np.isfinite(s.K)) and np.all(np.isfinite(s.V))
                and np.all(np.isfinite(s.K1))):
            raise InvalidArgumentError(
                f"the kernel or vertex left float64 at layer {len(Ks) + 1} (a runaway or "
                "collapsed kernel): no finite-width statistics there")
        Ks.append(s.K)
        K1s.append(s.K1)
        Vs.append(s.V)
        bar.update()
    ix = np.ix_(where, where)
    c2 = np.outer(c, c)
    Kf = np.stack([k[ix] * c2 for k in Ks])
    K1f = np.stack([k[ix] * c2 for k in K1s])
    i4 = np.ix_(where, where, where, where)
    c4 = np.einsum("ab,cd->abcd", c2, c2)
    Vf = np.stack([v[i4] * c4 for v in Vs])
    return DataStatistics(net.activation.name, architecture(arch).describe(), sw, sb, x,
                          np.arange(1, L + 1), Kf, K1f, Vf)
