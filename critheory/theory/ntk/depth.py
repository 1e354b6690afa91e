"""The infinite-width NTK over depth, the learning-rate schedules and the depth exponent.

Every rule of :mod:`critheory.theory.ntk.rules` is affine in ``(λ_b, λ_W, Θ)``, so one layer
maps ``Θ^{l-1}`` to ``Θ^l = λ_b^l B_l + λ_W^l W_l + c_l Θ^{l-1}`` with coefficients that depend
on the kernel only. :func:`ntk_curves` sends the basis ``(1, 0, 0), (0, 1, 0), (0, 0, 1)``
through each layer once (the mean-field kernel is computed once) and then applies any
learning-rate schedule. For the MLP, ``B = 1``, ``W = E_{K^{l-1}}[φ²]`` and ``c = χ_⊥`` (PDLT
§8.1); layer 1 has ``B = 1``, ``W = q0``, ``c = 0``.

Learning-rate schedules (``docs/ntk.md`` §3):

``constant``     ``λ_b^l = λ_b``, ``λ_W^l = λ_W`` at every layer
``equivalence``  the learning-rate equivalence principle [PDLT §9.1–9.2]: every layer's
                 biases and every layer's weights contribute equally to Θ^L. Layer l's
                 contribution is ``(λ_b^l B_l + λ_W^l W_l) P_l`` with ``P_l = Π_{m>l} c_m`` (the
                 NTK transfer from layer l to L). The schedule is

                 ``λ_b^l = λ_b / (L P_l)``,  ``λ_W^l = λ_W w_l / (L P_l)``,
                 ``w_l = L^γ W_L / W_l``,

                 with ``γ`` the decay exponent of the weight coefficient (``W_l ∝ l^{-γ}``, fitted
                 over the last 90 % of the depths; 0 with fewer than 3 layers). Every layer's
                 biases then contribute ``λ_b B_l / L`` and every layer's weights
                 ``λ_W L^γ W_L / L``, so ``Θ^L = λ_b ⟨B⟩ + λ_W L^γ W_L``: of order one at any
                 depth, the weight part included. For the scale-invariant class at criticality
                 (``c = 1``, ``W`` constant, ``γ = 0``) this is exactly PDLT's ``λ/L``
                 (``Θ^L = λ_b + λ_W A₂ K*``); for the ``K* = 0`` class ``P_l ≈ (l/L)^{p_⊥}`` and
                 ``W_l ∝ 1/l`` give the book's ``λ_b^l ∝ L^{p_⊥−1} l^{−p_⊥}`` and
                 ``λ_W^l ∝ (L/l)^{p_⊥−1}`` (PDLT §9.2; the weight rate carries one more
                 factor ``l`` than the bias rate, which keeps the decaying weight contribution
                 ``λ_W^l E[φ²] ∝ λ_W^l/l`` from vanishing with depth).

Speed: beyond 64 layers, one input goes through verified Chebyshev tables of one layer in
``log K`` (:func:`layer_map` tabulated by :class:`~critheory.theory.meanfield.tabulated.
PiecewiseChebyshev`; every coefficient within 1e-12 relative of the exact rules, the exact
rules near the float64 limits), the machinery of
:func:`~critheory.theory.meanfield.depth.depth_curves`; two inputs are iterated layer by layer.
With ``width``, the order-1/n statistics beyond 64 layers go through verified tables of one
layer too (:func:`critheory.theory.ntk.finite.tabulated_fields`, ``docs/ntk.md`` §7.6).

Examples
--------
>>> from critheory.theory.ntk.depth import ntk_curves
>>> c = ntk_curves("mlp", "relu", 2.0, 0.0, 4, lambda_b=1.0, lambda_w=1.0)
>>> c.ntk.tolist()                     # Θ^l = l (λ_b + λ_W K*/2·2) = 2l at criticality
[2.0, 4.0, 6.0, 8.0]
>>> e = ntk_curves("mlp", "relu", 2.0, 0.0, 4, lambda_b=1.0, lambda_w=1.0,
...                scaling="equivalence")
>>> e.lambda_b.tolist(), float(e.ntk[-1])
([0.25, 0.25, 0.25, 0.25], 2.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from critheory.common.checks import (check_bias_var, check_int, check_nonnegative,
                                     check_weight_var)
from critheory.common.jsonable import jsonable
from critheory.common.powerlaw import fit_line, tail_window
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.theory.meanfield.maps import architecture
from critheory.theory.fold import Ctx, check_composition, check_one_token, fold
from critheory.theory.meanfield.tabulated import PiecewiseChebyshev
from critheory.theory.ntk.rules import THEORY
from critheory.theory.state import Rep, State
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["NTKCurves", "ntk_curves", "learning_rates", "layer_coefficients", "SCALINGS",
           "MAX_DEPTH", "MAX_DEPTH_FINITE", "layer_map", "layer_table", "tabulated_layer",
           "TABLE_RTOL", "network_maps"]

#: Depth budget (refused before any work): beyond 64 layers one input costs ~10-20 us a layer
#: (verified tables, as ``depth_curves``), two inputs ~0.2–2 ms (the cross terms per layer).
MAX_DEPTH = limits.MAX_DEPTH_NTK
#: Depth budget of the order-1/n NTK statistics (``width=``) by the per-layer route
#: (``tabulate=False``: eight Gaussian expectations and their K-derivatives per layer, ~2–20 ms
#: a layer); the tabulated route (verified tables of one layer,
#: :func:`critheory.theory.ntk.finite.tabulated_fields`) goes to :data:`MAX_DEPTH`
MAX_DEPTH_FINITE = 1000
SCALINGS = ("constant", "equivalence")


@dataclass(frozen=True)
class NTKCurves:
    """The NTK and the kernel per depth ``1..L`` at infinite width.

    Attributes
    ----------
    depths : ndarray of int
    kernel, ntk : ndarray
        ``K^l`` and ``Θ^l`` (input 1); NaN where the kernel overflows.
    kernel12, kernel22, ntk12, ntk22 : ndarray or None
        The same across inputs 1, 2 and for input 2 (None with one input).
    lambda_b, lambda_w : ndarray
        The learning rates used at each layer (weight rate per fan-in, PDLT's convention).
    bias_coef, weight_coef, transfer : ndarray
        ``B_l``, ``W_l``, ``c_l`` of ``Θ^l = λ_b^l B_l + λ_W^l W_l + c_l Θ^{l-1}``.
    scaling : str
    exponents : dict
        ``{"ntk": s}`` with ``Θ^l ∝ l^s`` fitted over the last 90 % of the depths (growth
        positive; None with fewer than 3 depths or a non-positive Θ), and ``"lambda"``: the
        slope of the schedule ``λ^l ∝ l^s`` likewise (0 for ``constant``).

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.ntk_curves("mlp", "tanh", 1.0, 0.0, 3)
    >>> isinstance(c, ct.NTKCurves), c.depths
    (True, array([1, 2, 3]))
    """

    __repr__ = short_repr

    depths: np.ndarray
    kernel: np.ndarray
    ntk: np.ndarray
    lambda_b: np.ndarray
    lambda_w: np.ndarray
    bias_coef: np.ndarray
    weight_coef: np.ndarray
    transfer: np.ndarray
    scaling: str
    exponents: dict = field(default_factory=dict)
    kernel12: np.ndarray | None = None
    kernel22: np.ndarray | None = None
    ntk12: np.ndarray | None = None
    ntk22: np.ndarray | None = None
    #: with ``width``: the network's width n, ``E[Θ̂^l] = Θ^l + Θ^{(1),l}/n`` and ``Var(Θ̂^l_ii)``
    #: of one neuron at width n (input 1), and the order-1/n fields per layer
    #: (:func:`critheory.theory.ntk.finite.finite_width_fields`: ``theta1``, ``A``, ``B``,
    #: ``D``, ``F``, ``variance`` = n Var, ``cross`` = n Cov(Θ̂, z²))
    width: int | None = None
    ntk_mean_nlo: np.ndarray | None = None
    ntk_variance: np.ndarray | None = None
    finite: dict | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN → None) with the keys of the ``ntk`` command."""
        out = {"depths": self.depths, "kernel": self.kernel, "ntk": self.ntk,
               "lambda_b": self.lambda_b, "lambda_w": self.lambda_w, "scaling": self.scaling,
               "exponents": self.exponents,
               "coefficients": {"bias": self.bias_coef, "weight": self.weight_coef,
                                "transfer": self.transfer}}
        if self.ntk12 is not None:
            out.update(kernel12=self.kernel12, kernel22=self.kernel22, ntk12=self.ntk12,
                       ntk22=self.ntk22)
        if self.width is not None:
            f = self.finite
            out.update(width=self.width, ntk_mean_nlo=self.ntk_mean_nlo,
                       ntk_variance=self.ntk_variance,
                       ntk_finite_width={k: f[k] for k in ("theta1", "variance", "cross", "A",
                                                            "B", "D", "F")})
        return jsonable(out)


def layer_coefficients(arch, sw: float, sb: float, depth: int, q0: float = 1.0,
                       q12=None, q22=None, *, tabulate: bool = True) -> dict:
    """The kernel and the affine coefficients ``B_l, W_l, c_l`` per layer (one pass).

    Returns a dict of arrays ``K``, ``B``, ``W``, ``c`` (shape (depth,)) and, with two inputs,
    ``K12``, ``K22`` and ``B12, W12, c12, B22, W22, c22``. Layers past an overflowing kernel
    are NaN. ``tabulate=False`` evaluates the rules at every layer (the reference route of the
    tables used beyond 64 layers on one input).
    """
    net = arch.network
    two = q12 is not None
    L = depth
    keys = ["K", "B", "W", "c"] + (["K12", "K22", "B12", "W12", "c12", "B22", "W22", "c22"]
                                   if two else [])
    out = {k: np.full(L, np.nan) for k in keys}
    s = State.start_ntk(q0, q12, q22, weight_var=sw, bias_var=sb)
    out["K"][0], out["B"][0], out["W"][0], out["c"][0] = float(s.K), 1.0, q0, 0.0
    if two:
        out["K12"][0], out["K22"][0] = float(s.K12), float(s.K22)
        out["B12"][0], out["W12"][0], out["c12"][0] = 1.0, q12, 0.0
        out["B22"][0], out["W22"][0], out["c22"][0] = 1.0, q22, 0.0
    lb, lw, T = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    if tabulate and not two and L > _TABLE_DEPTH and _markovian(arch, sw, sb, out["K"][0]):
        _tabulated_layers(arch, sw, sb, out)
        return out
    ctx = Ctx(net.activation, sw, sb, lambda_b=lb, lambda_w=lw)
    for i in range(1, L):
        if not (np.isfinite(s.K) and s.K > 0):
            break
        basis = s.with_(theta=T, theta12=T.copy() if two else None,
                        theta22=T.copy() if two else None)
        try:
            r = fold(net.unit, basis, ctx, THEORY)
        except CritheoryError:
            if np.isfinite(s.K) and s.K < 1e300:
                raise
            break
        out["K"][i] = float(r.K)
        out["B"][i], out["W"][i], out["c"][i] = r.theta
        if two:
            out["K12"][i], out["K22"][i] = float(r.K12), float(r.K22)
            out["B12"][i], out["W12"][i], out["c12"][i] = r.theta12
            out["B22"][i], out["W22"][i], out["c22"][i] = r.theta22
        s = r
    return out


#: Deeper than this, one input goes through verified Chebyshev tables of its layer map (as in
#: :func:`critheory.theory.meanfield.depth.depth_curves`).
_TABLE_DEPTH = 64
#: relative accuracy each row of an accepted table piece is checked to (the per-layer error
#: estimate of the tabulated route, on top of the quadrature's own)
TABLE_RTOL = 1e-12
_TABLE_RANGE = (1e-280, 1e280)
_BASIS = np.eye(3)[:, :, None]     # (λ_b, λ_W, Θ) basis, broadcast against a vector of K
#: the mean-field fields of the state (a layer is Markovian in K where all but K are None)
_MEAN_FIELD = ("K", "K22", "K12", "q", "q22", "dK", "dK12", "J", "gap")


def layer_map(arch, sw: float, sb: float, K) -> np.ndarray:
    """One layer on one input, vectorized over the kernel ``K`` entering it (1-D array):
    rows ``K_next, B, W, c`` of ``Θ_next = λ_b B + λ_W W + c Θ`` (shape (4, K.size))."""
    K = np.asarray(K, dtype=float).reshape(-1)
    net = arch.network
    r = fold(net.unit, State(K=K, theta=_BASIS[2]),
             Ctx(net.activation, sw, sb, lambda_b=_BASIS[0], lambda_w=_BASIS[1]), THEORY)
    T = np.broadcast_to(r.theta, (3, K.size))
    return np.vstack([np.broadcast_to(r.K, K.shape), T]).astype(float)


def _markovian(arch, sw: float, sb: float, K1: float) -> bool:
    """True where a layer's output state is its kernel alone (a Gaussian representation with no
    other field), so that layer ``l + 1`` is a function of ``K^l`` only and can be tabulated."""
    if not (math.isfinite(K1) and K1 > 0):
        return False
    net = arch.network
    try:
        r = fold(net.unit, State(K=np.array([K1]), theta=_BASIS[2]),
                 Ctx(net.activation, sw, sb, lambda_b=_BASIS[0], lambda_w=_BASIS[1]), THEORY)
    except CritheoryError:
        return False
    return r.rep is Rep.GAUSSIAN and all(getattr(r, f) is None for f in _MEAN_FIELD[1:])


def layer_table(arch, sw: float, sb: float) -> PiecewiseChebyshev:
    """The verified table of one layer the tabulated route iterates: :func:`layer_map` in
    ``x = log10 K`` with rows ``K_next/K, B, W/K, c`` (:class:`~critheory.theory.meanfield.
    tabulated.PiecewiseChebyshev`: each row of an accepted piece within :data:`TABLE_RTOL`
    relative of the exact map, the exact map elsewhere); :func:`tabulated_layer` reads it."""
    def scaled(t):
        # K_next/K and W/K (both of order one, exactly constant for the scale-invariant class
        # at σ_b = 0) keep the rounding of the interpolant relative to the kernel: a fixed
        # point K* stays put instead of drifting by the table's last digits per layer
        K = 10.0 ** t
        y = layer_map(arch, sw, sb, K)
        y[0] /= K
        y[2] /= K
        return y

    return PiecewiseChebyshev(scaled, 1.0, rtol=TABLE_RTOL, errors=(CritheoryError,))


def tabulated_layer(table: PiecewiseChebyshev, arch, sw: float, sb: float,
                    k: float) -> tuple[Sequence[float], bool]:
    """One layer at the kernel ``k > 0`` from ``table`` (:func:`layer_table`): the rows
    ``K_next, B, W, c`` (4 floats) and whether they came from the table (each within
    :data:`TABLE_RTOL` relative of the exact map) or, near the float64 limits (underflow towards
    K* = 0, overflow) and on a piece that failed the check, from the exact map
    (:func:`layer_map`)."""
    v = table.values(math.log10(k)) if _TABLE_RANGE[0] < k < _TABLE_RANGE[1] else None
    if v is None:
        return layer_map(arch, sw, sb, np.array([k]))[:, 0], False
    return (v[0] * k, v[1], v[2] * k, v[3]), True


def _tabulated_layers(arch, sw: float, sb: float, out: dict) -> None:
    """Layers ``2..L`` of :func:`layer_coefficients` for one input from :func:`layer_table`,
    filling ``out`` in place; stops where the per-layer route stops."""
    table = layer_table(arch, sw, sb)
    K, B, W, c = out["K"], out["B"], out["W"], out["c"]
    k = K[0]
    for i in range(1, K.size):
        if not (math.isfinite(k) and k > 0):
            break
        try:
            v, _ = tabulated_layer(table, arch, sw, sb, k)
        except CritheoryError:
            if k < 1e300:
                raise
            break
        k = K[i] = float(v[0])
        B[i], W[i], c[i] = v[1], v[2], v[3]


def learning_rates(transfer, lambda_b: float, lambda_w: float,
                   scaling: str = "constant", weight_coef=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer ``(λ_b^l, λ_W^l)`` for a schedule, given the NTK transfer ``c_l`` per layer and
    (for ``equivalence``) the weight coefficients ``W_l`` (module docstring; without them the
    weight rate shares the bias rate's depth factor, ``w_l = 1``).

    >>> lb, lw = learning_rates([0.0, 1.0, 1.0, 1.0], 1.0, 2.0, "equivalence")
    >>> lb.tolist(), lw.tolist()
    ([0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.5, 0.5])
    >>> lb, lw = learning_rates([0.0, 1.0, 1.0], 1.0, 1.0, "equivalence", [3.0, 1.5, 1.0])
    >>> np.round(lw, 12).tolist()          # W_l ∝ 1/l: w_l = L W_L / W_l = l
    [0.333333333333, 0.666666666667, 1.0]
    """
    if scaling not in SCALINGS:
        raise InvalidArgumentError(f"scaling must be one of {', '.join(SCALINGS)}, "
                                   f"got {scaling!r}")
    c = np.asarray(transfer, dtype=float)
    L = c.size
    if scaling == "constant":
        return lambda_b * np.ones(L), lambda_w * np.ones(L)
    # P_l = Π_{m>l} c_m, in logs (c_m > 0 for any non-degenerate layer)
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.where(c[1:] > 0, np.log(np.where(c[1:] > 0, c[1:], 1.0)), np.nan)
    suffix = np.concatenate([np.cumsum(logc[::-1])[::-1], [0.0]])
    with np.errstate(over="ignore"):
        f = np.exp(-suffix) / L
    w = np.ones(L)
    if weight_coef is not None:
        W = np.asarray(weight_coef, dtype=float)
        ok = np.isfinite(W) & (W > 0)
        if ok.all() and L >= 1:
            depths = np.arange(1, L + 1)
            s = _slope(depths, W)
            gamma = 0.0 if s is None else -s
            with np.errstate(over="ignore", invalid="ignore"):
                w = float(L) ** gamma * W[-1] / W
        elif ok.any():
            # a layer without weight contribution (W_l = 0, e.g. q0 = 0) keeps w_l = 1; the
            # normalization comes from the last layer that has one
            depths = np.arange(1, L + 1)[ok]
            s = _slope(depths, W[ok])
            gamma = 0.0 if s is None else -s
            last = np.flatnonzero(ok)[-1]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                w = np.where(ok, float(last + 1) ** gamma * W[last] / np.where(ok, W, 1.0),
                             1.0)
    return lambda_b * f, lambda_w * f * w


def _slope(depths, y) -> float | None:
    if len(depths) < 3:
        return None
    y = np.asarray(y, dtype=float)
    try:
        fit = fit_line(depths, y, tail_window(depths), min_points=3)
    except InvalidArgumentError:
        return None
    return fit.slope if math.isfinite(fit.slope) else None


def _network_maps(arch, activation, mu):
    """The mean-field maps of ``arch`` (a registry name with ``activation`` and ``mu``, or a
    network, which carries its own: a conflicting ``activation`` or ``mu`` is refused, not
    ignored), after the NTK theory's own check of its blocks."""
    from critheory.activation import Activation

    net = getattr(arch, "network", arch)
    if not hasattr(net, "unit"):       # a name: resolved once, here
        return architecture(arch, "relu" if activation is None else activation,
                            1.0 if mu is None else mu)
    check_one_token(net, THEORY.name)
    check_composition(net.unit, THEORY)
    if activation is not None and Activation.get(activation) != net.activation:
        raise InvalidArgumentError(f"activation {getattr(activation, 'name', activation)!r} "
                                   f"conflicts with the network's own "
                                   f"({net.activation.name!r}): give one of them")
    strengths = net.residual_strengths
    if mu is not None and strengths and any(float(mu) != m for m in strengths):
        raise InvalidArgumentError(f"mu = {mu!r} conflicts with the network's residual "
                                   f"strengths {', '.join(f'{m:g}' for m in strengths)}: give "
                                   "one of them")
    return architecture(net)


#: public name of the NTK theory's resolution of an architecture argument (shared with
#: :mod:`critheory.theory.ntk.trained`)
network_maps = _network_maps


def ntk_curves(arch="mlp", activation=None, weight_var=1.0, bias_var=0.0, depth: int = 10,
               *, lambda_b: float = 1.0, lambda_w: float = 1.0, scaling: str = "constant",
               mu: float | None = None, q0: float = 1.0, q12=None, q22=None,
               width: int | None = None, tabulate: bool = True) -> NTKCurves:
    """The infinite-width NTK ``Θ^l`` (and the kernel) for layers ``1..depth``.

    Parameters
    ----------
    arch : Network, LayerMaps or str
        The network (or its mean-field maps), or a registry name (see
        :func:`critheory.theory.meanfield.maps.architecture`). A network with T > 1 tokens or
        a block without an NTK rule (attention) is refused in one line naming it.
    activation : str or Activation
        With a name (default ``relu``); with a network, None or the network's own (a
        different one is refused).
    weight_var, bias_var : float
        σ_w², σ_b².
    depth : int
        Number of layers L (<= :data:`MAX_DEPTH`).
    lambda_b, lambda_w : float
        Bias and weight learning rates ``λ_b``, ``λ_W`` (>= 0); the schedule scales them.
    scaling : {"constant", "equivalence"}
    mu : float
        Residual strength of a name (default 1; ignored without a skip connection); with a
        network, None or its own.
    q0 : float
        ``|x|²/n0`` of input 1; ``q12``, ``q22`` (both or neither): a second input.
    width : int, optional
        The network's width n: adds the NTK's order-1/n statistics of input 1
        (``ntk_mean_nlo``, ``ntk_variance``, ``finite``; ``docs/ntk.md`` §7) and the exponent
        ``exponents["ntk_variance"]`` of ``n Var(Θ̂^l)/(Θ^l)² ∝ l^s``; a block without an
        order-1/n rule is refused in one line.
    tabulate : bool
        Beyond 64 layers on one input, iterate verified Chebyshev tables of one layer
        (:func:`layer_table`, each coefficient within :data:`TABLE_RTOL` relative of the exact
        rules; with ``width``, :func:`critheory.theory.ntk.finite.tabulated_fields`) instead
        of evaluating the rules' quadratures at every layer (with ``width``, depth <=
        :data:`MAX_DEPTH_FINITE` then).

    Returns
    -------
    NTKCurves

    Examples
    --------
    >>> c = ntk_curves("mlp", "linear", 1.0, 0.0, 3, lambda_b=0.0, lambda_w=1.0, q0=2.0)
    >>> c.ntk.tolist()                 # Θ^l = λ_W l q0 for the critical linear net
    [2.0, 4.0, 6.0]
    """
    sw = check_weight_var(weight_var)
    sb = check_bias_var(bias_var)
    depth = check_int("depth", depth, 1)
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(f"depth {depth} is beyond the supported {MAX_DEPTH:.0e} "
                                   "(the NTK recursion is iterated layer by layer)")
    lb = check_nonnegative("lambda_b", lambda_b)
    lw = check_nonnegative("lambda_w", lambda_w)
    q0 = check_nonnegative("q0", q0)
    if scaling not in SCALINGS:
        raise InvalidArgumentError(f"scaling must be one of {', '.join(SCALINGS)}, "
                                   f"got {scaling!r}")
    if (q12 is None) != (q22 is None):
        raise InvalidArgumentError("a second input needs both q12 and q22")
    if q12 is not None:
        q22 = check_nonnegative("q22", q22)
        q12 = float(q12)
        if not (math.isfinite(q12) and q12 * q12 <= q0 * q22 * (1 + 1e-12)):
            raise InvalidArgumentError(f"q12 must satisfy q12^2 <= q0 q22 (a Gram matrix), got "
                                       f"q12 = {q12!r}")
    if width is not None:
        width = check_int("width", width, 1)
        if depth > MAX_DEPTH_FINITE and not tabulate:
            raise InvalidArgumentError(f"depth {depth} is beyond the {MAX_DEPTH_FINITE} layers "
                                       "of the finite-width NTK recursion layer by layer (~10 "
                                       "ms a layer): use the tabulated route (tabulate=True)")
    maps = _network_maps(arch, activation, mu)
    if width is not None:
        from critheory.theory.ntk.finite import check_network

        check_network(maps.network)
    co = layer_coefficients(maps, sw, sb, depth, q0, q12, q22, tabulate=bool(tabulate))
    lam_b, lam_w = learning_rates(co["c"], lb, lw, scaling, co["W"])

    def run(B, W, c):
        T = np.empty(depth)
        prev = 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            for i in range(depth):
                prev = lam_b[i] * B[i] + lam_w[i] * W[i] + c[i] * prev
                T[i] = prev
        return T

    T = run(co["B"], co["W"], co["c"])
    depths = np.arange(1, depth + 1)
    lam_slope = 0.0 if scaling == "constant" else _slope(depths, lam_b if lb > 0 else lam_w)
    ex = {"ntk": _slope(depths, T), "lambda": lam_slope}
    kw = {}
    if q12 is not None:
        kw = dict(kernel12=co["K12"], kernel22=co["K22"], ntk12=run(co["B12"], co["W12"],
                  co["c12"]), ntk22=run(co["B22"], co["W22"], co["c22"]))
    if width is not None:
        from critheory.theory.ntk.finite import finite_width_fields, tabulated_fields

        if tabulate and depth > _TABLE_DEPTH:
            f = tabulated_fields(maps.network, sw, sb, co["K"], T, lam_w)
        else:
            f = finite_width_fields(maps.network, sw, sb, lam_b, lam_w, q0)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            rel = f["variance"] / (T * T)
        ex["ntk_variance"] = _slope(depths[1:], rel[1:]) if depth > 3 else None
        kw.update(width=width, ntk_mean_nlo=T + f["theta1"] / width,
                  ntk_variance=f["variance"] / width, finite=f)
    return NTKCurves(depths=depths, kernel=co["K"], ntk=T, lambda_b=lam_b, lambda_w=lam_w,
                     bias_coef=co["B"], weight_coef=co["W"], transfer=co["c"],
                     scaling=scaling, exponents=ex, **kw)
