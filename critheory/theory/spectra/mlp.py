"""Spectrum of ``JJᵀ`` for a deep MLP at its fixed point, by S-transform composition.

Network (PSG 1711.04735): ``h^l = W^l x^{l−1} + b^l``, ``x^l = φ(h^l)``, ``l = 1..L``, input
at the fixed point (``h^l ~ N(0, q*)`` for every l); ``J = ∂x^L/∂x^0 = Π_l D_l W_l`` with
``D_l = diag φ'(h^l)``. At infinite width ``D_l²`` and ``W_lᵀW_l`` are free, so

    ``S_{JJᵀ}(m) = S_{D²}(m)^L S_{WᵀW}(m)^L``,   ``S_{WᵀW} = 1/(σ_w²(1+m))`` (Gaussian),
    ``σ_w^{-2}`` (orthogonal).

With ``M(z) = zG(z) − 1`` and ``M^{-1}(m) = (1+m)/(m S(m))``, and writing ``w = M_D^{-1}(m)``
(so ``m = M_D(w)``, ``1/S_D(m) = m w/(1+m)``), the point ``z`` of the spectrum at which
``M_{JJᵀ}(z) = m`` is an explicit function of ``w``:

    Gaussian:    ``z = f(w) = (1+m)/m · (σ_w² m w)^L``
    orthogonal:  ``z = f(w) = (1+m)/m · (σ_w² m w/(1+m))^L``,   ``m = M_D(w)``.

The density at real ``x`` is ``ρ(x) = −Im G(x+i0)/π = −Im m/(π x)`` at the root ``w`` of
``f(w) = x`` (continued from the edges, :mod:`critheory.theory.spectra.solver`); the edges are
the real critical points of ``f`` (upper edge: the minimum of ``f`` on ``w > max φ'²``; lower
edge: a maximum on ``w < min φ'²``, or 0 where none is positive — Gaussian weights). An atom
of ``φ'²`` at 0 (ReLU) is an atom of ``JJᵀ`` at 0 of the same mass.

Moments (exact at infinite width, from the first two coefficients of ``log S``):
``m₁ = (σ_w² μ₁)^L = χ_J^L``, ``(m₂ − m₁²)/m₁² = L (v_W + μ₂/μ₁² − 1)`` with ``μ_k = E[φ'^{2k}]``,
``v_W = 1`` (Gaussian), ``0`` (orthogonal).

Examples
--------
>>> import numpy as np
>>> from critheory.theory.spectra.law import derivative_law
>>> from critheory.theory.spectra.mlp import MLPResolvent
>>> R = MLPResolvent(derivative_law("x", 1.0), 1.0, 1, orthogonal=False)   # Marchenko–Pastur
>>> lo, hi = R.edges()
>>> lo, round(float(np.exp(hi[1])), 12)
(None, 4.0)
>>> x = np.array([0.5, 2.0])
>>> bool(np.allclose(R.density(x, lo, hi), np.sqrt(4 - x) / (2 * np.pi * np.sqrt(x))))
True
"""
from __future__ import annotations

import cmath

import numpy as np

from critheory.errors import ConvergenceError, CritheoryError, GrowthError
from critheory.theory.spectra.law import DerivativeLaw
from critheory.theory.spectra.solver import continue_root, edge_seed, real_critical_points

__all__ = ["MLPResolvent"]

#: largest |log λ| of an edge: beyond it the spectrum leaves float64
MAX_LOG = 700.0
#: mass of φ'² within a factor 2 of its minimum below which (0, min φ'²) is not a gap of the law
GAP_MASS = 1e-9
#: relative width of a gap of the law of φ'² (nodes of a continuous law are ~1e-3 apart)
GAP_WIDTH = 0.05
#: a lower-edge candidate is accepted when its density's mass is right to this accuracy (96
#: quadrature nodes reach ~1e-10 for square-root edges; wrong sheets miss > 1e-2)
SELECT_TOL = 1e-5
#: the density may be left unresolved (0) below the point x the continuation reached only where
#: the mass there, estimated as ρ(x)·x, is below this
UNRESOLVED_MASS = 1e-2


class MLPResolvent:
    """The equation ``f(w) = x`` of one MLP spectrum and its solution on the real axis."""

    def __init__(self, law: DerivativeLaw, weight_var: float, depth: int, orthogonal: bool):
        self.law, self.sw, self.L, self.orth = law, float(weight_var), int(depth), orthogonal
        #: x below which the density could not be continued (0: resolved everywhere)
        self.unresolved_below = 0.0
        #: estimate ρ(x)·x of the mass there
        self.unresolved_mass = 0.0
        #: Newton tolerance on ℓ = log f: L logarithms of O(1) numbers, each rounded to ~1e-16
        self.tol = 1e-13 + 1e-14 * self.L

    # ------------------------------------------------------------------ the equation
    def ell(self, w):
        """``(log f(w), d log f/dw)`` (complex, vectorized)."""
        w = np.asarray(w, dtype=complex)
        m, dm, one_m = self.law.transforms(w)
        L = self.L
        with np.errstate(all="ignore"):
            lg = np.log(one_m) - np.log(m) + L * np.log(self.sw * m * w)
            dl = dm / one_m - dm / m + L * (dm / m + 1.0 / w)
            if self.orth:
                lg = lg - L * np.log(one_m)
                dl = dl - L * dm / one_m
        return lg, dl

    def _ell_scalar(self, u: complex):
        """``ell`` at one point (the continuation's inner loop: plain complex arithmetic for a
        law of a few atoms, one vector pass over the nodes otherwise)."""
        law = self.law
        u = complex(u)
        if law.nodes.size <= 8:
            m = dm = g = 0j
            for d, p in zip(law.nodes.tolist(), law.weights.tolist()):
                inv = 1.0 / (u - d) if u != d else complex("inf")
                m += p * d * inv
                dm -= p * d * inv * inv
                g += p * inv
            one_m = u * g
        else:
            inv = 1.0 / (u - law.nodes)
            pinv = law.pd * inv
            m = complex(pinv.sum())
            dm = -complex((pinv * inv).sum())
            one_m = u * complex((law.weights * inv).sum())
        try:
            lg = cmath.log(one_m) - cmath.log(m) + self.L * cmath.log(self.sw * m * u)
            dl = dm / one_m - dm / m + self.L * (dm / m + 1.0 / u)
            if self.orth:
                lg -= self.L * cmath.log(one_m)
                dl -= self.L * dm / one_m
        except (ValueError, ZeroDivisionError, OverflowError):
            return complex("nan"), complex("nan")
        return lg, dl

    def density_of(self, w, x):
        m, _ = self.law.m_transform(w)
        with np.errstate(over="ignore"):
            return -np.imag(m) / (np.pi * x)

    def _good(self, u: complex) -> bool:
        m, _ = self.law.m_transform(np.array([u]))
        return bool(-m[0].imag >= -1e-12 * abs(m[0]))

    # ------------------------------------------------------------------ edges
    def _second(self, u: float) -> float:
        h = 1e-6 * max(abs(u), 1e-3)
        return float(((self.ell(u + h)[1] - self.ell(u - h)[1]) / (2 * h)).real)

    def _dl_real(self, w):
        lg, dl = self.ell(np.asarray(w, dtype=float))
        return np.where(np.abs(np.imag(lg) / np.pi - np.round(np.imag(lg) / np.pi)) < 1e-9,
                        dl.real, np.nan)

    def edges(self):
        """``((w_lo, log λ_lo) or None, (w_hi, log λ_hi))``: the real critical points of ``f``
        that bound the continuous part of the spectrum."""
        law = self.law
        dmax, dmin = law.d_max, law.d_min
        scale = max(dmax, 1.0)
        # upper edge: w > d_max, a minimum of f; the scan runs to 1e8·scale
        up = real_critical_points(self._dl_real, dmax, dmax + 1e8 * scale, log_side="lo")
        up = [u for u in up if self._second(u) > 0 and self._real_f(u)]
        if not up:
            raise ConvergenceError(
                "the spectrum has no square-root upper edge (f has no minimum above max "
                "phi'^2: e.g. orthogonal weights with depth <= 2 and an atomic law of phi'^2, "
                "where the edge is singular): not covered")
        w_hi = float(min(up, key=lambda u: self.ell(u)[0].real))
        hi = (w_hi, float(self.ell(w_hi)[0].real))
        # lower edge: w < d_min (both signs of w), a maximum of f with f real and > 0
        cands = []
        # (0, d_min) is a gap of the law only where d_min carries mass (an atom or an edge
        # reached at finite h); a quadrature node in the far Gaussian tail (mass ~1e-23) is not
        near = law.weights[law.nodes <= 2.0 * dmin].sum()
        intervals = [(-1e8 * scale, min(dmin, 0.0), ("hi",))]
        if near >= GAP_MASS:
            intervals.append((0.0, dmin, ("hi",)))
        intervals += [(a, b, ("lo", "hi")) for a, b in self._gaps()]
        for a, b, sides in intervals:
            if b - a <= 0:
                continue
            for side in sides:
                for u in real_critical_points(self._dl_real, a, b, log_side=side):
                    if (self._real_f(u) and self._second(u) < 0
                            and not any(abs(u - c) <= 1e-9 * (abs(c) + 1) for c in cands)):
                        cands.append(float(u))
        options = sorted(((float(self.ell(u)[0].real), float(u)) for u in cands),
                         reverse=True)
        options = [(u, v) for v, u in options if v < hi[1]] + [None]
        lo = self._select(options, hi) if len(options) > 1 else None
        for e in (lo, hi):
            if e is not None and abs(e[1]) > MAX_LOG:
                raise GrowthError(f"the Jacobian spectrum leaves float64 (edge exp({e[1]:.1f}));"
                                  " reduce the depth")
        return lo, hi

    def _select(self, options, hi):
        """The lower edge among the candidates (real maxima of ``f``, or 0): the one whose
        density carries the continuous mass ``1 − P(φ'² = 0)`` (a maximum of ``f`` on another
        sheet of ``f = x`` is no edge of this spectrum; its density misses mass)."""
        target = 1.0 - self.law.atom_zero
        best, best_err = None, np.inf
        for lo in options:
            try:
                err = abs(self._mass(lo, hi) - target)
            except ConvergenceError:
                continue
            if err < SELECT_TOL:
                return lo
            if err < best_err:
                best, best_err = lo, err
        if best_err == np.inf:
            raise ConvergenceError("no lower spectral edge carries the spectrum's mass")
        return best

    def _mass(self, lo, hi, n: int = 96) -> float:
        a = 0.0 if lo is None else np.exp(lo[1])
        b = np.exp(hi[1])
        p = min(self.L + 1, 8) if lo is None else 1
        t, w = np.polynomial.legendre.leggauss(n)
        th = (t + 1) * np.pi / 2
        u = (1 - np.cos(th)) / 2
        x = a + (b - a) * u ** p
        dx = (b - a) * p * u ** (p - 1) * np.sin(th) / 2 * w * np.pi / 2
        return float(dx @ self.density(x, lo, hi))

    def _gaps(self):
        """Gaps ``(d_k, d_{k+1})`` of the law of φ'² between two atoms or edges that carry
        mass (ReLU: (0, 1)); the spacing of quadrature nodes of a continuous law is no gap
        (a gap must span more than GAP_WIDTH of the range with GAP_MASS on both sides)."""
        d, p = self.law.nodes, self.law.weights
        rng = d[-1] - d[0]
        out = []
        for k in range(d.size - 1):
            if (d[k + 1] - d[k] > GAP_WIDTH * rng and p[k] >= GAP_MASS
                    and p[k + 1] >= GAP_MASS):
                out.append((float(d[k]), float(d[k + 1])))
        return out

    def _real_f(self, u: float) -> bool:
        lg = self.ell(np.array([u], dtype=float))[0][0]
        k = lg.imag / (2 * np.pi)
        return bool(np.isfinite(lg) and abs(k - round(k)) < 1e-9)

    # ------------------------------------------------------------------ density
    def density(self, x, lo, hi) -> np.ndarray:
        """``ρ(x)`` at points ``x`` (0 outside the open support ``(λ₋, λ₊)``)."""
        x = np.asarray(x, dtype=float)
        out = np.zeros(x.shape)
        lam_lo = 0.0 if lo is None else np.exp(lo[1])
        lam_hi = np.exp(hi[1])
        inside = (x > lam_lo) & (x < lam_hi)
        if not inside.any():
            return out
        xs = x[inside]
        s = np.log(xs)
        if lo is None:
            split = -np.inf
        else:
            split = 0.5 * (lo[1] + hi[1])
        res = np.empty(xs.shape)
        # from the upper edge down to the split, from the lower edge up to it
        for edge, sel, order in ((hi, s >= split, -1), (lo, s < split, 1)):
            if edge is None or not sel.any():
                continue
            idx = np.flatnonzero(sel)
            idx = idx[np.argsort(order * s[idx], kind="stable")]
            span = hi[1] - (lo[1] if lo is not None else s.min())
            d2 = self._second(edge[0])
            s0 = edge[1] + order * 1e-10 * max(span, 1e-3)
            u0 = edge_seed(self._ell_scalar, edge[0], edge[1], d2, s0, self._good, self.tol)
            roots = continue_root(self._ell_scalar, u0, s0, s[idx], self._good,
                                  h0=1e-3 * max(span, 1e-3), partial=lo is None,
                                  anchor=edge[0], tol=self.tol)
            miss = ~np.isfinite(roots)
            if miss.any():
                # towards λ₋ = 0 the root approaches the far tail of the discrete law of φ'²
                # (nodes of Gaussian mass ~1e-23): below the point reached the density is
                # set to 0, acceptable only far below the bulk
                reached = xs[idx][~miss]
                dens = np.zeros(idx.size)
                dens[~miss] = self.density_of(roots[~miss], reached)
                if not reached.size:
                    raise ConvergenceError("spectral density: continuation stalled at the "
                                           "upper edge")
                x_stop = float(reached.min())
                # mass left below x_stop, for a density not increasing towards 0
                lost = float(dens[~miss][np.argmin(reached)]) * x_stop
                if lost > UNRESOLVED_MASS:
                    raise ConvergenceError(f"spectral density: continuation stalled at "
                                           f"x = {x_stop:.6g} (mass below ~{lost:.1e})")
                self.unresolved_below = max(self.unresolved_below, x_stop)
                self.unresolved_mass = max(self.unresolved_mass, lost)
                res[idx] = dens
                continue
            dens = np.zeros(idx.size)
            dens[~miss] = self.density_of(roots[~miss], xs[idx][~miss])
            res[idx] = dens
        out[inside] = np.maximum(res, 0.0)
        return out


def check_law(law: DerivativeLaw, tol: float = 1e-8) -> None:
    """Refuse a discrete law whose quadrature misses μ₁ by more than ``tol`` (relative)."""
    if law.quadrature_error > tol:
        raise CritheoryError(f"the law of phi'(h)^2 is not resolved by the quadrature "
                             f"(relative error {law.quadrature_error:.1e} in E[phi'^2])")
