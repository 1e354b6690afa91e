"""The law of ``D² = φ'(h)²`` for ``h ~ N(0, q)``: moments and Stieltjes transform.

Free probability needs two things from the activation (PSG 1711.04735 §2):

* the moments ``μ_k = E_q[φ'(h)^{2k}]`` (``k = 1, 2``), from the Gaussian expectation engine
  (:func:`critheory.expectations.gaussian.expect` of the sympy expressions ``φ'²``, ``φ'⁴``);
* the Stieltjes transform ``G_D(w) = E[1/(w − φ'(h)²)]`` and the moment generating function
  ``M_D(w) = w G_D(w) − 1 = E[φ'² / (w − φ'²)]`` at complex ``w``.

The transforms are integrals over ``h``; they are computed by composite Gauss–Legendre
quadrature of ``1/(w − φ'(h)²)`` against the Gaussian density, on ``|h| <= 10 √q`` (the mass
outside is ``1.5e-23``) split at the activation's breakpoints. The quadrature is a discrete
law: nodes ``d_k = φ'(h_k)²`` with weights ``p_k``; equal nodes are merged (a ReLU is the two
atoms 0 and 1). Its accuracy is reported: ``quadrature_error`` compares ``Σ p_k d_k`` with
``μ₁`` from the expectation engine (a number, not an assumption).

Examples
--------
>>> from critheory.theory.spectra.law import derivative_law
>>> law = derivative_law("relu", 1.0)
>>> law.nodes.tolist(), law.weights.round(14).tolist()   # two atoms φ'² = 0, 1 of mass 1/2
([0.0, 1.0], [0.5, 0.5])
>>> round(complex(law.m_transform(2.0)[0]).real, 14)   # M(w) = (1/2)·1/(w − 1)
0.5
>>> t = derivative_law("tanh", 0.5)
>>> t.quadrature_error < 1e-13
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from critheory.activation import Activation
from critheory.errors import CritheoryError, InvalidArgumentError

__all__ = ["DerivativeLaw", "derivative_law", "T_MAX", "PANELS_PER_UNIT", "NODES_PER_PANEL"]

#: the quadrature covers |h| <= T_MAX·√q (Gaussian mass outside: 1.5e-23)
T_MAX = 10.0
#: panels per unit of the standard normal variable t = h/√q, and Gauss–Legendre nodes per panel
PANELS_PER_UNIT = 2
NODES_PER_PANEL = 12


@lru_cache(maxsize=4)
def _legendre(n: int):
    return np.polynomial.legendre.leggauss(n)


@dataclass(frozen=True, eq=False)
class DerivativeLaw:
    """The law of ``φ'(h)²``, ``h ~ N(0, q)``, as a discrete quadrature law.

    Attributes
    ----------
    q : float
        Variance of the preactivation (0: the point mass(es) ``φ'(0±)²``).
    nodes, weights : ndarray
        Distinct values ``d_k`` (ascending) and their masses ``p_k`` (sum 1).
    mu1, mu2 : float
        ``E[φ'²]`` and ``E[φ'⁴]`` from the Gaussian expectation engine.
    quadrature_error : float
        ``|Σ p_k d_k − μ₁| / μ₁``: the accuracy of the discrete law.
    """

    q: float
    nodes: np.ndarray
    weights: np.ndarray
    mu1: float
    mu2: float
    quadrature_error: float
    activation: str = field(default="")

    @property
    def pd(self) -> np.ndarray:
        """``p_k d_k``."""
        v = self.__dict__.get("_pd")
        if v is None:
            v = self.weights * self.nodes
            object.__setattr__(self, "_pd", v)
        return v

    @property
    def atom_zero(self) -> float:
        """Mass of ``φ'(h)² = 0`` (a flat part of φ: ReLU's half line)."""
        return float(self.weights[self.nodes == 0.0].sum())

    @property
    def d_min(self) -> float:
        return float(self.nodes[0])

    @property
    def d_max(self) -> float:
        return float(self.nodes[-1])

    @property
    def is_point_mass(self) -> bool:
        """One value of φ'² only (a linear activation, or q = 0 at a smooth point)."""
        return self.nodes.size == 1

    def m_transform(self, w):
        """``(M_D(w), M_D'(w))`` with ``M_D(w) = Σ p_k d_k/(w − d_k)`` for complex ``w``."""
        w = np.asarray(w, dtype=complex)
        inv = 1.0 / (w[..., None] - self.nodes)
        pd = self.weights * self.nodes
        return (inv * pd).sum(-1), -(inv * inv * pd).sum(-1)

    def transforms(self, w):
        """``(M_D, M_D', 1 + M_D)`` at complex ``w``; ``1 + M_D = w G_D(w)`` is summed
        directly (no cancellation where ``M_D → −1``, i.e. at the bottom of the spectrum)."""
        w = np.asarray(w, dtype=complex)
        inv = 1.0 / (w[..., None] - self.nodes)
        pd = self.weights * self.nodes
        return (inv * pd).sum(-1), -(inv * inv * pd).sum(-1), w * (inv * self.weights).sum(-1)

    def stieltjes(self, w):
        """``G_D(w) = Σ p_k/(w − d_k)``."""
        w = np.asarray(w, dtype=complex)
        return (self.weights / (w[..., None] - self.nodes)).sum(-1)


def _nodes_t(act: Activation, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights of ``t = h/√q`` on [-T_MAX, T_MAX], split at the
    breakpoints of φ, with the standard normal density folded into the weights."""
    s = np.sqrt(q)
    cuts = sorted({-T_MAX, T_MAX} | {b / s for b in act.breakpoints if abs(b / s) < T_MAX})
    x, w = _legendre(NODES_PER_PANEL)
    ts, ws = [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        n = max(1, int(np.ceil((b - a) * PANELS_PER_UNIT)))
        edges = np.linspace(a, b, n + 1)
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        ts.append((mid[:, None] + half[:, None] * x).ravel())
        ws.append((half[:, None] * w).ravel())
    t, wt = np.concatenate(ts), np.concatenate(ws)
    return t, wt * np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi)


#: decimal digits tried, in turn, to tell a round-off zero of φ'(h) from a true one
_ZERO_DPS = (40, 120, 400)


def _resolve_zeros(act: Activation, h: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Re-evaluate with mpmath the nodes where float64 gives ``φ'(h)² = 0`` exactly.

    A flat part of φ (ReLU's half line) is a true atom of φ'² at 0; but a float64 formula can
    also return 0 by cancellation (GELU's ``erf(x/√2)/2 + 1/2 + xφ(x)`` is 0 for x < −8.7,
    where the truth is ~ −x e^{−x²/2}/√(2π)). Such a spurious atom (mass 2.3e-7 at GELU's q* =
    3.035) made the validation snap every simulated λ < 1e-8 to 0 (issue 31). Each zero node is
    evaluated at 40, 120, 400 digits; a nonzero value replaces the 0 (a value below the
    float64 range stays 0)."""
    zero = np.flatnonzero(d == 0.0)
    if zero.size == 0:
        return d
    try:
        import mpmath
        import sympy as sp

        expr = act.derivative(1)
        syms = sorted(expr.free_symbols, key=str)
        if len(syms) != 1:
            return d
        f = sp.lambdify(syms[0], expr, "mpmath")
    except Exception:   # noqa: BLE001 - no mpmath form: the float64 values stand
        return d
    d = d.copy()
    for i in zero:
        for dps in _ZERO_DPS:
            try:
                with mpmath.workdps(dps):
                    v = f(mpmath.mpf(float(h[i])))
                    if v != 0:
                        d[i] = float(v * v)
                        break
            except Exception:   # noqa: BLE001
                break
    return d


def derivative_law(activation, q: float) -> DerivativeLaw:
    """The law of ``φ'(h)²`` for ``h ~ N(0, q)`` (see the module docstring).

    Parameters
    ----------
    activation : str, sympy expression or Activation
    q : float
        Preactivation variance, finite and ``>= 0``.
    """
    from critheory.expectations.gaussian import expect

    act = Activation.get(activation)
    q = float(q)
    if not (np.isfinite(q) and q >= 0):
        raise InvalidArgumentError(f"preactivation variance q must be finite and >= 0, got {q}")
    dphi = act.numpy_func(1)
    if q == 0.0:
        # h -> 0: φ'(0±) with mass 1/2 each (one atom where φ' is continuous at 0)
        from critheory.theory.meanfield.taylor import one_sided_derivatives

        vals = np.asarray(one_sided_derivatives(act, 1)[1], dtype=float) ** 2
        d, p = vals, np.array([0.5, 0.5])
        mu1, mu2 = float(p @ d), float(p @ d ** 2)
    else:
        t, wt = _nodes_t(act, q)
        with np.errstate(all="ignore"):
            d = np.asarray(dphi(np.sqrt(q) * t), dtype=float) ** 2
        d = np.broadcast_to(d, t.shape).astype(float)
        d = _resolve_zeros(act, np.sqrt(q) * t, d)
        if not np.all(np.isfinite(d)):
            raise CritheoryError(f"phi'(h)^2 of {act.name} is not finite on the quadrature "
                                 f"nodes at q = {q:g}")
        p = wt / wt.sum()
        d1 = act.derivative(1)
        mu1 = float(expect(act, d1 ** 2, q).value)
        mu2 = float(expect(act, d1 ** 4, q).value)
    # merge equal nodes (atoms): exact ties only
    order = np.argsort(d, kind="stable")
    d, p = d[order], p[order]
    uniq, inv = np.unique(d, return_inverse=True)
    pw = np.bincount(inv, weights=p)
    keep = pw > 0
    uniq, pw = uniq[keep], pw[keep]
    pw = pw / pw.sum()
    disc = float(pw @ uniq)
    err = abs(disc - mu1) / mu1 if mu1 > 0 else abs(disc)
    if not mu1 > 0:
        raise CritheoryError(f"E[phi'^2] = 0 for {act.name} at q = {q:g}: the Jacobian vanishes")
    return DerivativeLaw(q, uniq, pw, mu1, mu2, float(err), act.name)


def gaussian_moments(activation, q: float) -> dict:
    """``E[φ]``, ``E[φ²]``, ``E[φ'²]``, ``E[φ'⁴]`` at ``h ~ N(0, q)`` by the composite
    Gauss–Legendre rule of the law (no symbolic work: the ResNet recursion calls it once per
    layer; ``tests/test_spectra.py`` checks it against the expectation engine).

    Examples
    --------
    >>> m = gaussian_moments("relu", 2.0)
    >>> round(m["phi2"], 14), round(m["dphi2"], 14)
    (1.0, 0.5)
    """
    act = Activation.get(activation)
    t, wt = _nodes_t(act, q)
    h = np.sqrt(q) * t
    with np.errstate(all="ignore"):
        f = np.broadcast_to(np.asarray(act.numpy(h), dtype=float), h.shape)
        d = np.broadcast_to(np.asarray(act.numpy_func(1)(h), dtype=float), h.shape) ** 2
    wt = wt / wt.sum()
    out = {"phi": float(wt @ f), "phi2": float(wt @ (f * f)), "dphi2": float(wt @ d),
           "dphi4": float(wt @ (d * d))}
    if not all(np.isfinite(v) for v in out.values()):
        raise CritheoryError(f"Gaussian moments of {act.name} are not finite at q = {q:g}")
    return out
