"""The finite-width theory through depth: the vertex V^l, the 1/n kernel K^{(1),l}, ν, the
predicted excess kurtosis and kernel at a width n, and a plain-words trust statement.

Depth index as everywhere: layer 1 is the first dense layer on the (fixed) input, exactly
Gaussian: ``K¹ = σ_b² + σ_w² q0``, ``V¹ = 0``, ``K^{(1),1} = 0``. The kernel ``K^l`` is the
mean-field depth curve (:func:`critheory.theory.meanfield.depth.depth_curves`, the same numbers
as ``critheory depth``). Every block rule is affine in (K1, V) at fixed K, so one vectorized pass
of the rules (:mod:`critheory.theory.finitewidth.rules`) over all the K^l gives, per layer,

    V^{l+1} = α_l V^l + β_l,        K^{(1),l+1} = a_l K^{(1),l} + b_l V^l + c_l

(MLP: α = χ_∥², β = σ_w⁴(E[φ⁴] − E[φ²]²), a = χ_∥, b = (σ_w²/2) d²E[φ²]/dK², c = 0), and the
recursion itself is a scalar loop. Where many layers share a half decade of K the five
coefficients are read from verified Chebyshev tables in log K (as the mean-field depth curves
read theirs; checked to 1e-10 of the largest coefficient on each piece).

At width n: ``E[z²] = K + K^{(1)}/n + O(1/n²)`` (``kernel_finite``) and the excess kurtosis of
one preactivation ``E[z⁴]/E[z²]² − 3 = 3V/(nK²) + O(1/n²)`` (``kurtosis``).

Examples
--------
>>> from critheory.theory.meanfield.maps import architecture
>>> from critheory.theory.finitewidth.curves import finite_width_curves
>>> c = finite_width_curves(architecture("mlp", "relu"), 2.0, 0.0, depth=4, width=100)
>>> c.vertex_normalized.tolist(), c.nu.value, c.nu.exact
([0.0, 5.0, 10.0, 15.0], 5.0, '3 A4/A2^2 - 1 = 5')
>>> [round(k, 12) for k in c.kurtosis.tolist()]         # 3V/(nK²)
[0.0, 0.15, 0.3, 0.45]
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.polynomial import chebyshev as C

from critheory.blocks.network import Network
from critheory.common.checks import check_hyper
from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError
from critheory.theory.finitewidth.rules import THEORY, check_network
from critheory.theory.fold import Ctx, fold
from critheory.theory.state import State
from critheory.theory.meanfield.depth import depth_curves
from critheory.theory.meanfield.maps import architecture
from critheory.common import limits
from critheory.common.reprs import short_repr

__all__ = ["FiniteWidthCurves", "Nu", "finite_width_curves", "trust_statement", "MAX_DEPTH",
           "MAX_WIDTH"]

#: Largest depth of the finite-width curves: the mean-field recursion (~40 us a layer) plus one
#: vectorized pass of the rules (~30 us a layer); 10^6 layers take about a minute.
MAX_DEPTH = limits.MAX_DEPTH_FINITE_WIDTH
#: Largest width (beyond it every 1/n correction is below float64 resolution of K).
MAX_WIDTH = limits.MAX_WIDTH_FINITE_WIDTH
_CHUNK = 8192
_N = 32      # Chebyshev degree of the coefficient tables


@dataclass(frozen=True)
class Nu:
    """The slope ν of ``V^l/(K^l)² ≈ ν l`` as l → ∞ along the actual kernel flow: value,
    exact expression (or None), and how; ``saturation`` = lim V/K² where the flow ends at a
    stable fixed point (ν = 0 there), ``fixed_point`` the limit kernel where one was found."""

    __repr__ = short_repr

    value: float | None
    exact: str | None
    method: str
    saturation: float | None = None
    fixed_point: float | None = None

    def to_dict(self) -> dict:
        return jsonable({"value": self.value, "exact": self.exact, "method": self.method,
                         "saturation": self.saturation, "fixed_point": self.fixed_point})


@dataclass(frozen=True)
class FiniteWidthCurves:
    """Finite-width depth profiles (see the module docstring). Absent numbers are None.

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.finite_width_curves(ct.architecture("mlp", "tanh"), 1.0, 0.0, depth=5)
    >>> isinstance(c, ct.FiniteWidthCurves)
    True
    """

    __repr__ = short_repr

    activation: str
    arch: str
    weight_var: float
    bias_var: float
    q0: float
    depths: np.ndarray
    kernel: np.ndarray
    vertex: np.ndarray
    vertex_normalized: np.ndarray
    nlo_kernel: np.ndarray
    nu: Nu
    width: int | None = None
    kurtosis: np.ndarray | None = None
    kernel_finite: np.ndarray | None = None
    kurtosis_exact: np.ndarray | None = None
    runaway_depth: int | None = None
    trust: str = ""

    @property
    def nu_reached(self) -> float | None:
        """How far the asymptote is reached: ``V^L/((K^L)² ν L)`` at the last depth, or
        ``(V^L/(K^L)²)/saturation`` where ν = 0 because V/K² saturates (1 when reached; None
        without either)."""
        v = self.nu.value
        last = self.vertex_normalized[-1]
        if v == 0 and self.nu.saturation and np.isfinite(last):
            return float(last / self.nu.saturation)
        if v is None or v == 0 or not np.isfinite(last):
            return None
        return float(last / (v * self.depths[-1]))

    def to_dict(self) -> dict:
        out = {"activation": self.activation, "arch": self.arch,
               "weight_var": self.weight_var, "bias_var": self.bias_var, "q0": self.q0,
               "depths": self.depths, "kernel": self.kernel, "vertex": self.vertex,
               "vertex_normalized": self.vertex_normalized, "nlo_kernel": self.nlo_kernel,
               "nu": self.nu.to_dict(), "nu_reached": self.nu_reached,
               "runaway_depth": self.runaway_depth, "trust": self.trust}
        if self.width is not None:
            out.update(width=self.width, kurtosis=self.kurtosis,
                       kernel_finite=self.kernel_finite, kurtosis_exact=self.kurtosis_exact)
        return jsonable(out)


def _coefficients(net: Network, K: np.ndarray, sw: float, sb: float, rtol: float = 1e-10):
    """Per-layer (α, β, a, b, c) at the kernels K; NaN where K is not finite and > 0.

    The coefficients are smooth (analytic: Gaussian smoothing) functions of K. On each half
    decade of K holding more than 200 of the kernels they are interpolated in log K by a
    Chebyshev polynomial of degree 32, accepted only where it matches the direct evaluation at
    the 32 interval midpoints to ``rtol`` times the coefficient's largest value on the piece
    (1e-10: above the noise of the direct values, e.g. the Stein route's ~1e-11 at K ~ 1e-7);
    elsewhere (and where it fails) every K is evaluated directly (:func:`_direct`)."""
    out = np.full((5, K.size), np.nan)
    ok = np.isfinite(K) & (K > 0)
    if not ok.any():
        return out
    t = np.log10(np.where(ok, K, 1.0))
    piece = np.floor(2 * t).astype(np.int64)
    j = np.arange(_N + 1)
    x = np.cos(np.pi * j / _N)[::-1]
    xm = np.cos(np.pi * (j[:-1] + 0.5) / _N)[::-1]
    u = np.concatenate([x, xm])
    direct = np.zeros(K.size, dtype=bool)
    tables = []
    for p in np.unique(piece[ok]):
        sel = ok & (piece == p)
        if sel.sum() <= 200:
            direct |= sel
        else:
            tables.append((p, sel))
    # one vectorized pass: the table nodes of every piece and the kernels read directly
    nodes = [10.0 ** (p / 2.0 + (u + 1) * 0.25) for p, _ in tables]
    allK = np.concatenate(nodes + [K[direct]])
    co_all = _direct(net, allK, sw, sb)
    m = len(u)
    out[:, direct] = co_all[:, m * len(tables):]
    retry = np.zeros(K.size, dtype=bool)
    for i, (p, sel) in enumerate(tables):
        co = co_all[:, i * m:(i + 1) * m]
        a, b = p / 2.0, (p + 1) / 2.0
        if not np.all(np.isfinite(co)):
            retry |= sel
            continue
        coef = C.chebfit(x, co[:, :_N + 1].T, _N)           # (N+1, 5)
        err = np.abs(C.chebval(xm, coef) - co[:, _N + 1:])
        scale = np.max(np.abs(co), axis=1, keepdims=True)
        if np.any(err > rtol * scale + 1e-300):
            retry |= sel
            continue
        out[:, sel] = C.chebval(2.0 * (t[sel] - a) / (b - a) - 1.0, coef)
    if retry.any():
        out[:, retry] = _direct(net, K[retry], sw, sb)
    return out


def _direct(net: Network, K: np.ndarray, sw: float, sb: float):
    """Per-layer (α, β, a, b, c) at the kernels K (one vectorized pass of the rules, by
    chunks); NaN where K is not finite and > 0."""
    n = K.size
    out = np.full((5, n), np.nan)
    ctx = Ctx(net.activation, sw, sb)
    basis_K1 = np.array([[0.0], [1.0], [0.0]])
    basis_V = np.array([[0.0], [0.0], [1.0]])
    ok = np.isfinite(K) & (K > 0)
    idx = np.flatnonzero(ok)
    for start in range(0, idx.size, _CHUNK):
        j = idx[start:start + _CHUNK]
        k = K[j]
        s = State(K=k, K1=basis_K1 * np.ones(k.size), V=basis_V * np.ones(k.size),
                  D=2.0 * k * k, P=np.zeros(k.size))
        r = fold(net.unit, s, ctx, THEORY)
        K1 = np.broadcast_to(r.K1, (3, k.size))
        V = np.broadcast_to(r.V, (3, k.size))
        c = K1[0]
        out[:, j] = (V[2] - V[0], V[0], K1[1] - c, K1[2] - c, c)
    return out


def _fraction(x: float) -> str:
    f = Fraction(x).limit_denominator(1000)
    return str(f) if abs(float(f) - x) <= 1e-12 * max(1.0, abs(x)) else f"{x:.12g}"


def _nu(net: Network, sw: float, sb: float, depths, vn, arch=None, K=None) -> Nu:
    caps = net.capabilities
    act = net.activation
    mu2 = caps.mu2
    plain = caps.single_dense and not caps.has_layernorm   # the branch is (phi, dense)
    if caps.scale_invariant and sb == 0.0:
        ap, am = act.homogeneous_slopes
        A2, A4 = (ap * ap + am * am) / 2, (ap ** 4 + am ** 4) / 2
        nu0 = 3 * A4 / A2 ** 2 - 1
        s = sw * A2
        v = (s * s * nu0 + 4 * mu2 * s) / (mu2 + s) ** 2
        exact = (f"3 A4/A2^2 - 1 = {_fraction(nu0)}" if mu2 == 0 else
                 f"(s^2 (3 A4/A2^2 - 1) + 4 mu^2 s)/(mu^2 + s)^2, s = sigma_w^2 A2: "
                 f"{_fraction(v)}")
        return Nu(v, exact, "exact: V^l/(K^l)^2 = nu (l - 1) at every depth (scale-invariant "
                            "activation, sigma_b^2 = 0)")
    t = act.taylor_float
    if plain and sb == 0.0 and t is not None and mu2 < 1.0:
        d = list(t[0][:4])
        if d[0] == 0.0 and d[1] != 0.0:
            a1 = d[3] / d[1] + 0.75 * (d[2] / d[1]) ** 2
            crit = (1.0 - mu2) / d[1] ** 2
            if a1 < 0 and abs(sw - crit) <= 1e-9 * crit:
                v = 2.0 / 3.0 * (1.0 - mu2 * mu2)
                return Nu(v, "2/3" if mu2 == 0 else "(2/3)(1 - mu^4)",
                          "asymptotic (K*=0 class at its critical point): V^l/(K^l)^2 ~ nu l, "
                          "approached slowly (relative corrections ~ log(l)/l); compare with "
                          "the recursion, not with nu l")
    limit = _flow_limit(arch, net, sw, sb, K) if arch is not None and K is not None else None
    if limit is not None:
        Kinf, alpha, beta = limit
        if alpha < 1.0 - _ALPHA_TOL:
            sat = beta / (1.0 - alpha) / Kinf ** 2
            return Nu(0.0, "0", (
                f"limit along the flow: the kernel flows to the stable fixed point K = "
                f"{Kinf:.10g}, where the vertex recursion contracts (alpha = chi_parallel^2-like "
                f"coefficient {alpha:.6g} < 1): V^l -> beta/(1 - alpha), V/K^2 saturates at "
                f"{sat:.6g} after ~{1.0 / (1.0 - alpha):.3g} layers, so nu = 0 (a slope over a "
                f"finite window only measures how far the flow still is from that point)"),
                saturation=float(sat), fixed_point=float(Kinf))
    L = depths.size
    if L < 8:
        return Nu(None, None, "numeric: depth too small (< 8) to estimate the slope of "
                              "V^l/(K^l)^2")
    a = int(depths[(3 * L) // 4 - 1])
    b = int(depths[-1])
    ya, yb = vn[a - 1], vn[b - 1]
    if not (np.isfinite(ya) and np.isfinite(yb)):
        return Nu(None, None, "numeric: V^l/(K^l)^2 is not finite at the last depths")
    where = ("the kernel ends at a marginal fixed point K = "
             f"{limit[0]:.10g} (vertex coefficient alpha = {limit[1]:.10g}): V/K^2 grows "
             "linearly, approached slowly" if limit is not None else
             "the kernel flow has no finite positive limit in reach (collapse to 0 or runaway)")
    return Nu(float((yb - ya) / (b - a)), None,
              f"numeric: slope of V^l/(K^l)^2 over l in [{a}, {b}]; {where}",
              fixed_point=None if limit is None else float(limit[0]))


#: Vertex coefficient alpha below 1 - _ALPHA_TOL: a stable fixed point (V saturates).
_ALPHA_TOL = 1e-9


def _flow_limit(arch, net: Network, sw: float, sb: float, K: np.ndarray):
    """The fixed point the kernel flow K^{l+1} = F(K^l) reaches from the last kernel, and the
    vertex coefficients (α, β) there; None where the flow leaves (0, ∞) or F is not monotone
    enough to bracket a fixed point.

    The map of one layer is increasing in K, so the flow is monotone: from K_L it moves in the
    direction of d = sign(F(K_L) − K_L) and stops at the first root of F(K) − K in that
    direction, bracketed by steps |F(K_L) − K_L|·2^j and refined by Brent's method."""
    from critheory.theory.roots import brent

    KL = float(K[-1])
    if not (np.isfinite(KL) and KL > 0):
        return None

    def g(k):
        with np.errstate(all="ignore"):
            return float(np.asarray(arch.kernel_map(np.array([k]), sw, sb)).reshape(-1)[0] - k)

    try:
        g0 = g(KL)
        if not np.isfinite(g0):
            return None
        if g0 == 0.0:
            Kinf = KL
        else:
            d = 1.0 if g0 > 0 else -1.0
            step = max(abs(g0), 1e-15 * KL)
            prev, Kinf = KL, None
            for _ in range(1100):
                cur = KL + d * step
                if not (np.isfinite(cur) and cur > 0):
                    return None
                gc = g(cur)
                if not np.isfinite(gc):
                    return None
                if gc == 0.0 or (gc > 0) != (d > 0):
                    Kinf = cur if gc == 0.0 else brent(g, min(prev, cur), max(prev, cur),
                                                          xtol=1e-15 * cur, rtol=1e-15)
                    break
                prev = cur
                step *= 2.0
            if Kinf is None:
                return None
        co = _direct(net, np.array([Kinf]), sw, sb)
    except Exception:   # noqa: BLE001 - a map that cannot be evaluated there: no limit claimed
        return None
    alpha, beta = float(co[0, 0]), float(co[1, 0])
    if not (np.isfinite(alpha) and np.isfinite(beta)):
        return None
    return Kinf, alpha, beta


def trust_statement(kurtosis_leading: float | None, depth: int, width: int | None,
                    ratio: float | None) -> str:
    """A plain-words statement of when the expansion in depth/width holds.

    ``ratio`` is ``3V^L/(K^L)²`` (so the leading kurtosis at width n is ratio/n).

    >>> trust_statement(0.03, 10, 1000, 30.0).split(":")[0]
    'reliable'
    """
    if ratio is None or not np.isfinite(ratio):
        return ("unknown: the vertex is not finite at the last depth (runaway or collapsed "
                "kernel)")
    need = 10.0 * ratio
    if width is None:
        return (f"the 1/n expansion at depth {depth} needs width n >> 3V/K^2 = {ratio:.3g}; "
                f"corrections are below ~10% for n >= {need:.3g}")
    eps = ratio / width
    msg = (f"at depth {depth} and width {width} (depth/width = {depth / width:.3g}) the "
           f"leading correction 3V/(nK^2) = {eps:.3g}")
    if eps < 0.1:
        return f"reliable: {msg}; the next order is ~{eps * eps:.2g} relative"
    if eps < 0.5:
        return (f"usable with care: {msg}; the next order (~eps^2) changes the kurtosis by "
                f"tens of percent; width n >= {need:.3g} for 10%")
    return (f"not trustworthy: {msg} is of order one: the network is far from Gaussian and the "
            "leading-order prediction underestimates the non-Gaussianity (the exact kurtosis "
            f"grows faster than linearly in depth/width); width n >= {need:.3g} for 10%")


def finite_width_curves(arch, weight_var: float, bias_var: float, depth: int, *,
                        width: int | None = None, q0: float = 1.0, nu: bool = True,
                        progress: bool = False) -> FiniteWidthCurves:
    """V^l, K^{(1),l}, ν and (with ``width``) the predicted kurtosis and kernel at width n.

    Parameters
    ----------
    arch : LayerMaps, Network or a registry name (ReLU then)
    weight_var, bias_var : float
    depth : int
        1 <= depth <= :data:`MAX_DEPTH`.
    width : int, optional
        Width n >= 1 for ``kurtosis`` and ``kernel_finite``.
    q0 : float
        Input norm ``|x|²/N_0`` > 0.
    nu : bool
        Compute ν (False: ``nu`` is a placeholder, for timing the curves alone).

    Raises
    ------
    InvalidArgumentError
        Bad arguments, or a block the finite-width rules do not cover.

    Examples
    --------
    >>> import critheory as ct
    >>> c = ct.finite_width_curves(ct.architecture("mlp", "relu"), 2.0, 0.0, depth=20, width=64)
    >>> c.nu.exact, c.kurtosis.shape
    ('3 A4/A2^2 - 1 = 5', (20,))
    """
    net = getattr(arch, "network", arch)
    if hasattr(net, "unit"):         # a network: this theory's refusal first, naming it
        check_network(net)
    arch = architecture(arch)        # a LayerMaps passes through, a Network is wrapped
    net = arch.network
    sw, sb = (float(v) for v in check_hyper(weight_var, bias_var))
    L = _check_int("depth", depth, 1, MAX_DEPTH)
    n = None if width is None else _check_int("width", width, 1, MAX_WIDTH)
    try:
        q0 = float(q0)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"input norm q0 must be a number, got {q0!r}") from None
    if not (np.isfinite(q0) and q0 > 0):
        raise InvalidArgumentError(f"input norm q0 must be finite and > 0, got {q0}")
    check_network(net)
    d = depth_curves(arch, sw, sb, L, q0=q0, input_correlation=None, progress=progress)
    K = d.kernel
    co = _coefficients(net, K[:-1], sw, sb)
    V = np.full(L, np.nan)
    K1 = np.full(L, np.nan)
    V[0] = K1[0] = 0.0
    al, be, a, b, c = (co[i].tolist() for i in range(5))
    v, k1 = 0.0, 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(L - 1):
            v, k1 = al[i] * v + be[i], a[i] * k1 + b[i] * v + c[i]
            V[i + 1] = v
            K1[i + 1] = k1
        vn = V / (K * K)
    V = np.where(np.isfinite(V), V, np.nan)
    K1 = np.where(np.isfinite(K1), K1, np.nan)
    vn = np.where(np.isfinite(vn), vn, np.nan)
    depths = np.arange(1, L + 1)
    nu_ = _nu(net, sw, sb, depths, vn, arch, K) if nu else Nu(None, None, "not computed")
    kurt = kfin = kex = None
    if n is not None:
        kurt = 3.0 * vn / n
        kfin = K + K1 / n
        if net.capabilities.scale_invariant and arch.mu is None:
            from critheory.theory.finitewidth.exact import exact_scale_invariant

            kex = exact_scale_invariant(arch.activation, sw, sb, L, n, q0).kurtosis
    last = vn[-1]
    trust = trust_statement(None if n is None else float(3 * last / n), L, n,
                            float(3 * last) if np.isfinite(last) else None)
    return FiniteWidthCurves(arch.activation.name, arch.describe(), sw, sb, q0, depths, K, V,
                             vn, K1, nu_, n, kurt, kfin, kex, d.runaway_depth, trust)


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    try:
        v = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}") from None
    if v != value:
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if v < lo:
        raise InvalidArgumentError(f"{name} must be >= {lo}, got {v}")
    if v > hi:
        raise InvalidArgumentError(f"{name} {v} is beyond the supported {hi:.0e} (the "
                                   "finite-width recursion is iterated layer by layer)")
    return v
