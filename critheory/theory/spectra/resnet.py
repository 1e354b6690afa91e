"""Spectrum of ``JJᵀ`` for deep residual networks (Tarnowski et al., arXiv:1809.08848).

Network: ``x_l = φ(h_l) + x_{l−1}``, ``h_l = W_l x_{l−1} + b_l``, ``W_ij ~ N(0, σ_w²/(N L))``
(or ``σ_w/√L`` times a Haar orthogonal matrix), ``b_i ~ N(0, σ_b²)``, ``l = 1..L``;
``J = ∂x_L/∂x_0 = Π_l (1 + D_l W_l)``.

Mean-field recursion (infinite width; ``a_l = |x_l|²/N``, ``n_l`` the mean of ``x_l`` over
neurons; ``h_l`` is independent of ``x_{l−1}`` coordinate-wise because ``W_l`` is fresh):

    ``q_l = σ_w² a_{l−1}/L + σ_b²``,  ``a_l = a_{l−1} + E_{q_l}[φ²] + 2 n_{l−1} E_{q_l}[φ]``,
    ``n_l = n_{l−1} + E_{q_l}[φ]``,  ``a_0 = q0``, ``n_0 = 0``;

    ``c = (1/L) Σ_l σ_w² E_{q_l}[φ'²]``.

Large-L law: ``S(m) = exp(−c(1+2m))``, i.e. ``G(z) = (zG − 1) exp(c(1 − 2zG))``; with
``m = zG − 1`` the point of the spectrum is explicit, ``z = f(m) = (1+m)/m · e^{c(1+2m)}``;
edges at ``f'(M±) = 0``: ``M± = (−1 ± √(1 + 2/c))/2``, ``λ± = f(M±)``, ``λ₋λ₊ = 1``; moments
``m₁ = e^c``, ``m₂ = (1 + 2c) e^{2c}``.

Finite L (derived here): each factor ``A_l = 1 + D_l W_l`` with ``s = σ_w²/L`` has
``E tr A_lA_lᵀ/N = 1 + sμ₁`` and variance ``2sμ₁ + s²μ₂`` (Gaussian) or
``2sμ₁ + s²(μ₂ − μ₁²)`` (orthogonal), ``μ_k = E_{q_l}[φ'^{2k}]``; for free factors the means
multiply and the relative variances add. Their large-L limits are ``e^c`` and ``2c``.
"""
from __future__ import annotations

import numpy as np

from critheory.errors import ConvergenceError
from critheory.theory.spectra.solver import continue_root, edge_seed

__all__ = ["resnet_c", "ResNetResolvent", "resnet_moments"]


def resnet_c(act, weight_var: float, bias_var: float, depth: int, q0: float = 1.0):
    """``(c, q, mu1, mu2)``: the parameter c and the per-layer preactivation variances and
    moments ``E[φ'²]``, ``E[φ'⁴]`` along the mean-field recursion (module docstring).

    Examples
    --------
    >>> c, q, mu1, mu2 = resnet_c("x", 2.0, 0.0, 4)     # linear: c = σ_w² (E[φ'²] = 1)
    >>> round(c, 12)
    2.0
    """
    from critheory.activation import Activation
    from critheory.theory.spectra.law import gaussian_moments

    act = Activation.get(act)
    L = int(depth)
    a, n = float(q0), 0.0
    qs, m1s, m2s = np.empty(L), np.empty(L), np.empty(L)
    for l in range(L):
        q = weight_var * a / L + bias_var
        if not (np.isfinite(q) and q > 0):
            raise ConvergenceError(f"the preactivation variance of layer {l + 1} is {q:g}")
        g = gaussian_moments(act, q)
        qs[l], m1s[l], m2s[l] = q, g["dphi2"], g["dphi4"]
        a = a + g["phi2"] + 2.0 * n * g["phi"]
        n = n + g["phi"]
    c = float(weight_var * m1s.mean())
    return c, qs, m1s, m2s


def resnet_moments(weight_var: float, depth: int, mu1: np.ndarray, mu2: np.ndarray,
                   orthogonal: bool) -> tuple[float, float, float]:
    """Finite-L ``(m₁, m₂, variance)`` of ``JJᵀ`` (module docstring)."""
    s = weight_var / depth
    mean = 1.0 + s * mu1
    var = 2.0 * s * mu1 + s * s * (mu2 - mu1 * mu1 if orthogonal else mu2)
    m1 = float(np.prod(mean))
    rel = float(np.sum(var / mean ** 2))
    return m1, m1 * m1 * (1.0 + rel), m1 * m1 * rel


class ResNetResolvent:
    """``f(m) = (1+m)/m · e^{c(1+2m)} = x`` and its solution on the real axis."""

    def __init__(self, c: float):
        self.c = float(c)

    def ell(self, m):
        m = np.asarray(m, dtype=complex)
        with np.errstate(all="ignore"):
            return (np.log(1 + m) - np.log(m) + self.c * (1 + 2 * m),
                    1 / (1 + m) - 1 / m + 2 * self.c)

    def _ell_scalar(self, u):
        lg, dl = self.ell(np.array([u]))
        return complex(lg[0]), complex(dl[0])

    @staticmethod
    def _good(u) -> bool:
        return bool(-complex(u).imag >= -1e-12 * abs(u))

    def edges(self):
        """``((M₋, log λ₋), (M₊, log λ₊))``."""
        c = self.c
        r = np.sqrt(1.0 + 2.0 / c)
        out = []
        for M in ((-1.0 - r) / 2.0, (-1.0 + r) / 2.0):
            out.append((M, float(np.log((1 + M) / M) + c * (1 + 2 * M))))
        return out[0], out[1]

    def _second(self, m: float) -> float:
        return 1.0 / m ** 2 - 1.0 / (1 + m) ** 2

    def density(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.zeros(x.shape)
        lo, hi = self.edges()
        inside = (x > np.exp(lo[1])) & (x < np.exp(hi[1]))
        if not inside.any():
            return out
        xs = x[inside]
        s = np.log(xs)
        split = 0.5 * (lo[1] + hi[1])
        res = np.empty(xs.shape)
        span = hi[1] - lo[1]
        for edge, sel, order in ((hi, s >= split, -1), (lo, s < split, 1)):
            if not sel.any():
                continue
            idx = np.flatnonzero(sel)
            idx = idx[np.argsort(order * s[idx], kind="stable")]
            s0 = edge[1] + order * 1e-10 * span
            u0 = edge_seed(self._ell_scalar, edge[0], edge[1], self._second(edge[0]), s0,
                           self._good)
            roots = continue_root(self._ell_scalar, u0, s0, s[idx], self._good, 1e-3 * span,
                                  anchor=edge[0])
            res[idx] = -np.imag(roots) / (np.pi * xs[idx])
        out[inside] = np.maximum(res, 0.0)
        return out
