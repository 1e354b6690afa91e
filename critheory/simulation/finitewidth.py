"""Finite-width measurements: the excess kurtosis of one preactivation, the mean kernel and the
spread of the APJN across networks, per depth.

The check of :mod:`critheory.theory.finitewidth` (which this module never imports: it shares
only the activation and the block description with the theory). Networks are run forward with
the simulator's block steps (:func:`critheory.simulation.architectures.step`), every ``W @ X``
drawn exactly in law as ``G R`` with ``RᵀR = XᵀX`` (:mod:`critheory.simulation.sampling`); here
one generator serves a whole batch of networks, so that ten thousand narrow networks cost a few
vectorized draws per layer.

Estimators, per depth l, over S independent networks of width n:

* ``m2_s = (1/n) Σ_i (z_i^l)²`` and ``m4_s = (1/n) Σ_i (z_i^l)⁴`` per network s. The neurons of
  one network are correlated (they share the layer below), the networks are independent, so
  every error bar is computed over networks only.
* excess kurtosis ``κ = mean_s(m4)/mean_s(m2)² − 3`` (a ratio of ensemble means: E[z⁴]/E[z²]² − 3
  of one preactivation), with a delete-a-group jackknife standard error over G = min(S, 20)
  groups of networks (``kurtosis_dof`` = G − 1 degrees of freedom: the statistic
  (κ − κ_true)/se is Student-t with G − 1 degrees of freedom when the group estimates are
  near normal). It includes both the sampling of the neurons and the network-to-network
  fluctuation of the layer's variance. (The delta-method standard error used before was
  unstable for heavy tails: at ReLU depth 10, width 32 it swung with the few largest networks.
  Like every sample-based error it still misses rare networks that dominate the variance of
  m4 when log Ĝ is very spread; where the theory has the exact law, compare with its exact
  standard error, :func:`critheory.theory.finitewidth.exact.exact_kurtosis_stderr`.)
* kernel ``mean_s(m2)`` ± ``std_s(m2)/√S``.
* ``log J^{1,l}`` per network (exact Frobenius norm of the Jacobian from layer 1, or a
  Hutchinson estimate with ``probes`` Gaussian probes) and its spread ``std_s(log J)`` across
  networks: the run-to-run gradient-norm noise. Its standard error is ``std/√(2(S−1))``
  (Gaussian approximation).

Examples
--------
>>> from critheory.simulation.finitewidth import measure_finite_width
>>> m = measure_finite_width("linear", 1.0, 0.0, width=8, depth=3, seeds=4000, seed=1)
>>> m.kurtosis_mean.shape, float(m.kurtosis_mean[0]) < 0.1   # layer 1 is Gaussian
((3,), True)
>>> bool(abs(m.kurtosis_mean[2] - 3 * ((1 + 2 / 8) ** 2 - 1)) < 4 * m.kurtosis_stderr[2])
True
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from critheory.common.checks import (check_bias_var, check_int, check_nonnegative,
                                     check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError, InvalidVarianceError
from ._util import readonly
from .architectures import LayerSpec, resolve_network, step
from .sampling import gram_factor, small_matmul
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["FiniteWidthMeasurement", "measure_finite_width", "check_budget", "MAX_COST"]

#: Largest simulation accepted: networks × depth × width × (1 + tangent columns) (~1 min).
MAX_COST = limits.MAX_FINITE_WIDTH_WORK
# a batch holds about this many float64 per state array
_BATCH_ELEMENTS = 1 << 22
_RESCALE_HI, _RESCALE_LO = 1e100, 1e-100


class _BatchSampler:
    """Fresh Gaussian layers for a batch of B networks from one generator (exact in law)."""

    def __init__(self, rng: np.random.Generator, b: int):
        self.rng, self.b = rng, b

    def bias(self, n: int, var: float) -> np.ndarray:
        return self.rng.standard_normal((self.b, n, 1)) * math.sqrt(var)

    def matmul(self, x: np.ndarray, var: float, n_out: int) -> np.ndarray:
        b, n_in, k = x.shape
        if 4 * k > n_in:  # many columns (the exact APJN): draw W itself
            w = self.rng.standard_normal((b, n_out, n_in))
            w *= math.sqrt(var / n_in)
            return w @ x
        g = self.rng.standard_normal((b, n_out, k))
        g *= math.sqrt(var / n_in)
        if k == 1:      # W x = |x| g in law
            return g * np.sqrt(np.einsum("bik,bik->bk", x, x))[:, None, :]
        return small_matmul(g, gram_factor(x))


@dataclass(frozen=True, eq=False)
class FiniteWidthMeasurement:
    """Per-depth finite-width measurements (see the module docstring); arrays of shape (L,)."""

    __repr__ = short_repr

    activation: str
    arch: str
    weight_var: float
    bias_var: float
    mu: float
    q0: float
    width: int
    depth: int
    seeds: int
    seed: int
    probes: int | None
    depths: np.ndarray
    kurtosis_mean: np.ndarray
    kurtosis_stderr: np.ndarray
    kernel_mean: np.ndarray
    kernel_stderr: np.ndarray
    log_apjn_mean: np.ndarray | None
    log_apjn_std: np.ndarray | None
    log_apjn_std_stderr: np.ndarray | None
    elapsed: float = 0.0
    kurtosis_dof: int = 0

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in (
            "activation", "arch", "weight_var", "bias_var", "mu", "q0", "width", "depth",
            "seeds", "seed", "probes", "depths", "kurtosis_mean", "kurtosis_stderr",
            "kernel_mean", "kernel_stderr", "log_apjn_mean", "log_apjn_std",
            "log_apjn_std_stderr", "elapsed", "kurtosis_dof")})


#: Groups of networks of the jackknife standard error of the kurtosis.
JACKKNIFE_GROUPS = 20


def excess_kurtosis(m2: np.ndarray, m4: np.ndarray, groups: int = JACKKNIFE_GROUPS
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Excess kurtosis ``E[z⁴]/E[z²]² − 3`` from per-network second and fourth moments (axis 0:
    networks): the ratio estimator, its delete-a-group jackknife standard error and that
    error's degrees of freedom.

    The S networks are split into G = min(S, groups) contiguous groups (the networks are iid,
    so any split is random); ``κ_(g)`` is the estimator without group g and
    ``se² = (G − 1)/G Σ_g (κ_(g) − κ̄)²``, with G − 1 degrees of freedom (a verdict uses the
    Student-t quantile with them). The delta-method error used before was unstable for the
    heavy-tailed per-network fourth moments (issue 31). NaN and 0 degrees of freedom for S = 1.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); z = rng.normal(size=(400, 64))
    >>> k, se, dof = excess_kurtosis((z ** 2).mean(1), (z ** 4).mean(1))
    >>> bool(abs(k) < 4 * se), dof
    (True, 19)
    """
    s = m2.shape[0]
    M2, M4 = m2.mean(axis=0), m4.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        k = M4 / (M2 * M2) - 3.0
        g = min(s, int(groups))
        if g < 2:
            return k, np.full(M2.shape, np.nan), 0
        edges = np.linspace(0, s, g + 1).round().astype(int)
        s2 = np.add.reduceat(m2, edges[:-1], axis=0)
        s4 = np.add.reduceat(m4, edges[:-1], axis=0)
        cnt = np.diff(edges).astype(float).reshape((-1,) + (1,) * (m2.ndim - 1))
        T2, T4 = m2.sum(axis=0), m4.sum(axis=0)
        rest = s - cnt
        a2, a4 = (T2 - s2) / rest, (T4 - s4) / rest
        kg = a4 / (a2 * a2) - 3.0
        se = np.sqrt((g - 1) / g * np.sum((kg - kg.mean(axis=0)) ** 2, axis=0))
    return k, se, g - 1


def check_budget(width, depth, seeds, *, apjn: bool = True, probes=None) -> tuple:
    """``(probes, tangent columns)`` of a simulation, refused (InvalidArgumentError) before any
    work when its cost networks × depth × width × tangent work exceeds :data:`MAX_COST`.

    >>> check_budget(64, 10, 100)
    (None, 64)
    """
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    seeds = check_int("seeds", seeds, 1)
    if not apjn:
        n_probes, n_tan = None, 0
    elif probes is None:
        n_probes = None if seeds * depth * float(width) ** 3 <= 2e10 else 8
        n_tan = width if n_probes is None else n_probes
    elif isinstance(probes, str) and probes.strip().lower() == "exact":
        n_probes, n_tan = None, width
    else:
        if isinstance(probes, str):
            try:
                probes = int(probes)
            except ValueError:
                raise InvalidArgumentError(f"probes must be a positive integer or 'exact', "
                                           f"got {probes!r}") from None
        n_probes = check_int("probes", probes, 1)
        n_tan = n_probes
    cost = float(seeds) * depth * width * (1 + n_tan) * (1 + (n_tan if n_tan > 1 else 0))
    if cost > MAX_COST:
        raise InvalidArgumentError(f"simulation too large ({cost:.1e} > {MAX_COST:.0e} "
                                   "networks x depth x width x tangent work): fewer seeds, a "
                                   "smaller width or depth, or fewer probes")
    return n_probes, n_tan


def measure_finite_width(activation, weight_var: float, bias_var: float, *, width: int,
                         depth: int, seeds: int, arch=None, mu: float | None = None,
                         q0: float = 1.0, seed: int | None = 0, apjn: bool = True,
                         probes: int | str | None = None, params=None) -> FiniteWidthMeasurement:
    """Measure kurtosis, kernel and the APJN spread of ``seeds`` random networks per depth.

    Parameters
    ----------
    activation : str, Activation or Network
        (a Network here stands for ``arch``)
    weight_var, bias_var : float
        The network's σ_w², σ_b² (dense blocks with their own keep theirs).
    width, depth, seeds : int
        Width n (also the input width), layers L, networks S (>= 2 for error bars).
    arch : Network or str
        A one-token network or a registry name (default ``mlp``) with ``mu`` its residual
        strength (:func:`critheory.blocks.registry.as_network`).
    q0 : float
        Input norm ``|x|²/n`` (the input is any fixed vector of that norm: layer 1 is exact).
    seed : int or None
        Root seed (None: fresh entropy, recorded in the result).
    apjn : bool
        Also carry tangents from layer 1 and measure log J^{1,l}.
    probes : int, "exact" or None
        Hutchinson probes for the APJN; None: exact while S·L·n³ <= 2e10, else 8.

    Examples
    --------
    >>> import critheory as ct
    >>> m = ct.measure_finite_width("relu", 2.0, 0.0, width=16, depth=3, seeds=64, apjn=False)
    >>> m.kurtosis_mean.shape
    (3,)
    """
    t0 = time.perf_counter()
    net, mu = resolve_network(activation, arch, mu, params)
    act = net.activation
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    q0 = check_nonnegative("q0", q0, error=InvalidVarianceError)
    width = check_int("width", width, 1)
    depth = check_int("depth", depth, 1)
    seeds = check_int("seeds", seeds, 1)
    if net.tokens != 1 or net.capabilities.mixes_tokens:
        raise InvalidArgumentError(f"the finite-width measurement runs one-token networks; "
                                   f"{net.describe()} acts on tokens")
    blocks = net.unit
    if net.capabilities.has_layernorm and width < 2:
        raise InvalidArgumentError("LayerNorm architectures need width >= 2")
    n_probes, n_tan = check_budget(width, depth, seeds, apjn=apjn, probes=probes)
    if seed is not None:
        seed = check_int("seed", seed, 0)
    root = np.random.SeedSequence(seed)
    spec = LayerSpec(unit=blocks, phi=act.numpy_func(0), dphi=act.numpy_func(1),
                     weight_var=sw, bias_var=sb, width=width)
    batch = max(1, min(seeds, _BATCH_ELEMENTS // (width * (1 + n_tan))))
    n_batches = -(-seeds // batch)
    m2 = np.empty((seeds, depth))
    m4 = np.empty((seeds, depth))
    logj = np.empty((seeds, depth)) if apjn else None
    norm = math.log(width) if n_probes is None else math.log(width * n_probes)
    with np.errstate(over="ignore", invalid="ignore"):
        for bi, ss in enumerate(root.spawn(n_batches)):
            rng = np.random.Generator(np.random.SFC64(ss))
            lo, hi = bi * batch, min(seeds, (bi + 1) * batch)
            nb = hi - lo
            sampler = _BatchSampler(rng, nb)
            x = np.full((nb, width, 1), math.sqrt(q0))
            h = sampler.matmul(x, sw, width) + sampler.bias(width, sb)
            t = None
            if apjn:
                t = (np.broadcast_to(np.eye(width), (nb, width, width)).copy()
                     if n_probes is None else rng.standard_normal((nb, width, n_probes)))
            log_scale = np.zeros(nb)
            for layer in range(depth):
                if layer:
                    h, t = step(sampler, spec, h, t)
                z = h[:, :, 0]
                z2 = z * z
                m2[lo:hi, layer] = z2.mean(axis=1)
                m4[lo:hi, layer] = (z2 * z2).mean(axis=1)
                if t is not None:
                    sq = np.einsum("bij,bij->b", t, t)
                    with np.errstate(divide="ignore"):
                        logj[lo:hi, layer] = np.log(sq) + log_scale - norm
                    out = np.isfinite(sq) & (sq > 0) & ((sq > _RESCALE_HI) | (sq < _RESCALE_LO))
                    if out.any():
                        f = np.where(out, np.sqrt(sq / math.exp(norm)), 1.0)
                        t /= f[:, None, None]
                        log_scale += 2.0 * np.log(f)
    kurt, kse, kdof = excess_kurtosis(m2, m4)
    kmean = m2.mean(axis=0)
    kse2 = m2.std(axis=0, ddof=1) / math.sqrt(seeds) if seeds > 1 else np.full(depth, np.nan)
    lj_mean = lj_std = lj_se = None
    if apjn:
        lj_mean = logj.mean(axis=0)
        if seeds > 1:
            lj_std = logj.std(axis=0, ddof=1)
            lj_se = lj_std / math.sqrt(2.0 * (seeds - 1))
        else:
            lj_std = lj_se = np.full(depth, np.nan)
    return FiniteWidthMeasurement(
        act.name, net.name, sw, sb, mu, q0, width, depth, seeds, int(root.entropy), n_probes,
        readonly(np.arange(1, depth + 1)), readonly(kurt), readonly(kse), readonly(kmean),
        readonly(kse2), readonly(lj_mean), readonly(lj_std), readonly(lj_se),
        time.perf_counter() - t0, kdof)
