"""Closed-form Gaussian expectations.

Three families, each returning values together with a round-off error estimate (so that a
caller can fall back to quadrature where a closed form cancels catastrophically):

* **piecewise exponential-polynomial** integrands ``Σ c x^p e^{αx}`` on the intervals between
  breakpoints — polynomials (Isserlis/Wick), ReLU, leaky ReLU, |x|, hardtanh, ReLU6, ELU/SELU/CELU
  powers, and (α imaginary, no breakpoints) sin, cos, exp, sinh, cosh. With x ~ N(0, K) and
  c = αK, ``E[x^p e^{αx} 1{a<x<b}] = e^{α²K/2} Σ_j C(p,j) c^{p-j} K^{j/2} T_j``, where
  ``T_j = ∫ z^j ϕ(z) dz`` over ((a-c)/√K, (b-c)/√K) follows from the recursion
  ``U_j(t) = t^{j-1}ϕ(t) + (j-1) U_{j-2}(t)`` for the upper tails.
  Two points: ``E[h_1^p h_2^q e^{αh_1+βh_2}] = e^{(α²K_11+2αβK_12+β²K_22)/2}
  E[(h_1+m_1)^p (h_2+m_2)^q]`` with Isserlis' pairing sum.
* **arc-cosine kernels** (Cho & Saul 2009) for positively homogeneous φ = a_+ relu(x) - a_- relu(-x):
  ``E[relu(h_1) relu(h_2)] = √(K_11K_22)(sin θ + (π-θ)cos θ)/(2π)``,
  ``E[Θ(h_1)Θ(h_2)] = (π-θ)/(2π)``, cos θ = ρ.
* **erf** (Williams 1997): for φ = c·erf(a x), ``E[φ(h_1)φ(h_2)] = c² (2/π) arcsin(2a²K_12 /
  √((1+2a²K_11)(1+2a²K_22)))``, ``E[φ'²] = 4a²c²/(π√(1+4a²K))``, and
  ``E[φφ''] = -8a⁴c²K/(π(1+2a²K)√(1+4a²K))`` (from d/dK of E[φ²], derived).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from critheory.activation import symbolic as _sym
from critheory.activation._lazy import LazyModule, on_import
from critheory.errors import GrowthError
from critheory.expectations.integrands import Integrand
from critheory.expectations.quadrature import det2

__all__ = ["closed_form_1d", "closed_form_2d", "piecewise_terms", "active_branch", "erf_params"]

# imported on first use: the structural analysis (sympy) is cached for zoo activations, and
# scipy.special (erfc) serves only the piecewise closed forms
sp = LazyModule("sympy")
sc = LazyModule("scipy.special")


def _on_sympy(mod) -> None:
    global sp, _EXP_LIKE
    sp = mod
    _EXP_LIKE = (mod.exp, mod.sin, mod.cos, mod.sinh, mod.cosh)


def _on_special(mod) -> None:
    global sc
    sc = mod


on_import("sympy", _on_sympy)
on_import("scipy.special", _on_special)

_EPS = np.finfo(float).eps
_TINY = float(np.finfo(float).tiny)       # the smallest normal float64


# ---------------------------------------------------------------------- structure
def active_branch(e: sp.Expr, t0: float) -> sp.Expr:
    """The smooth branch of a piecewise expression that is active at x = t0."""
    X = _sym.X
    if not e.args or not e.has(sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise):
        return e
    val = lambda a: float(sp.N(a.subs(X, t0), 20))  # noqa: E731
    if isinstance(e, (sp.Max, sp.Min)):
        args = [active_branch(a, t0) for a in e.args]
        vals = [val(a) for a in args]
        i = int(np.argmax(vals) if isinstance(e, sp.Max) else np.argmin(vals))
        return args[i]
    if isinstance(e, sp.Abs):
        a = active_branch(e.args[0], t0)
        return a if val(a) >= 0 else -a
    if isinstance(e, sp.Heaviside):
        return sp.S.One if val(active_branch(e.args[0], t0)) > 0 else sp.S.Zero
    if isinstance(e, sp.sign):
        return sp.S.One if val(active_branch(e.args[0], t0)) > 0 else -sp.S.One
    if isinstance(e, sp.Piecewise):
        for branch, cond in e.args:
            c = cond.subs(X, t0)
            if c == sp.true or c is True:
                return active_branch(branch, t0)
        raise ValueError("no Piecewise branch active")
    return e.func(*[active_branch(a, t0) for a in e.args])



def _could_be_exp_poly(e: sp.Expr) -> bool:
    """Cheap structural test: e is built from x, constants, +, ×, non-negative integer powers
    and exp/sin/cos/sinh/cosh (or c**(...)) of expressions linear in x.

    Anything else (tanh, log, erf, division by a function of x, ...) is not treated as an
    exponential polynomial; this avoids sympy's very slow ``expand(rewrite(exp))`` on large
    derivative expressions (seconds for mish or gelu_tanh) that would end in None anyway.
    """
    X = _sym.X
    if not e.has(X):
        return True
    if e == X:
        return True
    if isinstance(e, (sp.Add, sp.Mul)):
        return all(_could_be_exp_poly(a) for a in e.args)
    if isinstance(e, _EXP_LIKE):
        return _is_linear(e.args[0])
    if e.is_Pow:
        base, ex = e.args
        if not base.has(X):
            return _is_linear(ex)
        return bool(ex.is_Integer and ex >= 0 and _could_be_exp_poly(base))
    return False


def _is_linear(arg: sp.Expr) -> bool:
    X = _sym.X
    try:
        return not sp.diff(arg, X).has(X)
    except Exception:  # pragma: no cover - defensive
        return False


def _exp_poly_terms(e: sp.Expr):
    """Write e as Σ c x^p e^{αx} (c, α complex); None if impossible."""
    X = _sym.X
    if not _could_be_exp_poly(e):
        return None
    e = sp.expand(sp.powsimp(sp.expand(e.rewrite(sp.exp)), combine="exp"))
    terms = []
    if e == 0:
        return terms
    for term in sp.Add.make_args(e):
        coef, rest = term.as_independent(X, as_Add=False)
        p, alpha = 0, sp.S.Zero
        for fac in sp.Mul.make_args(sp.powsimp(rest, combine="exp")):
            if fac == 1:
                continue
            if fac == X:
                p += 1
            elif fac.is_Pow and fac.base == X and fac.exp.is_Integer and fac.exp >= 0:
                p += int(fac.exp)
            elif isinstance(fac, sp.exp) or (fac.is_Pow and fac.base == sp.E):
                arg = fac.args[0] if isinstance(fac, sp.exp) else fac.exp
                arg = sp.expand(arg)
                a1 = arg.coeff(X, 1)
                a0 = sp.expand(arg - a1 * X)
                if a0.has(X) or a1.has(X):
                    return None
                alpha += a1
                coef *= sp.exp(a0)
            else:
                return None
        try:
            c30 = sp.N(coef, 30)
            c = complex(c30)
            a = complex(sp.N(alpha, 30))
        except (TypeError, ValueError):
            return None
        if not (np.isfinite(c) and np.isfinite(a)):
            return None
        if c30 != 0 and abs(c) < _TINY:
            # below float64's normal range: exp(10304.4x − 750) is written 1.9e-326·exp(10304.4x),
            # whose coefficient rounds to 0 (the term would be dropped: E = 7e-6 of celu(...) at
            # K = 30 went missing) or to a few bits: no closed form
            return None
        if c != 0:
            terms.append((c, p, a))
    return terms


def piecewise_terms(itg: Integrand):
    """[(lo, hi, terms)] pieces of the integrand between breakpoints; None if not exp-poly."""
    cache = itg.__dict__
    if "_pw_terms" in cache:
        return cache["_pw_terms"]
    out = None
    try:
        bps = list(itg.breakpoints)
        edges = [-math.inf] + bps + [math.inf]
        pieces = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            if math.isinf(lo) and math.isinf(hi):
                t0 = 0.5
            elif math.isinf(lo):
                t0 = hi - 1.0
            elif math.isinf(hi):
                t0 = lo + 1.0
            else:
                t0 = 0.5 * (lo + hi)
            terms = _exp_poly_terms(active_branch(itg.expr, t0))
            if terms is None:
                break
            if len(edges) > 2 and any(a.imag != 0 for _, _, a in terms):
                break
            pieces.append((lo, hi, terms))
        else:
            out = pieces
    except Exception:
        out = None
    cache["_pw_terms"] = out
    return out


# ---------------------------------------------------------------------- 1-D pieces
def _upper_tails(t: np.ndarray, jmax: int) -> list[np.ndarray]:
    """U_j(t) = ∫_t^∞ z^j ϕ(z) dz for j = 0..jmax (t finite or ±inf)."""
    t = np.clip(t, -40.0, 40.0)
    pdf = np.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    U = [0.5 * sc.erfc(t / math.sqrt(2.0)), pdf]
    for j in range(2, jmax + 1):
        U.append(t ** (j - 1) * pdf + (j - 1) * U[j - 2])
    return U[: jmax + 1]


@lru_cache(maxsize=None)
def _full_moment(j: int) -> float:
    """E[z^j], z ~ N(0, 1): (j-1)!! for even j, 0 for odd j; GrowthError where (j-1)!!
    overflows float64 (j >= 302: a polynomial activation of degree >= 151 in E[φ²])."""
    if j % 2:
        return 0.0
    try:
        return float(math.prod(range(j - 1, 0, -2)))
    except OverflowError:
        raise GrowthError(f"E[z^{j}] = {j - 1}!! overflows float64: the activation's polynomial "
                          "degree is too high for float64 Gaussian moments") from None


_SEG_PANELS = 8
#: half-width of the part of a finite segment that is integrated, around its point nearest 0
#: (see _segment_moments)
_SEG_REACH = 12.0
_SEG_FRAC = np.linspace(0.0, 1.0, _SEG_PANELS + 1)


@lru_cache(maxsize=None)
def _seg_rule() -> tuple[np.ndarray, np.ndarray]:
    """The 20-node Gauss–Legendre rule of the finite segments (numpy.polynomial is imported
    here, on first use, not with this module)."""
    return np.polynomial.legendre.leggauss(20)


def _segment_moments(a: np.ndarray, b: np.ndarray, jmax: int
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """T_j(a, b) = ∫_a^b z^j ϕ(z) dz for j = 0..jmax, and the sizes ∫_a^b |z|^j ϕ(z) dz that
    their round-off is relative to.

    Segments with an infinite end use the tail recursion (no cancellation: the tail is taken
    on the side where it is small); finite segments are integrated directly by a composite
    Gauss–Legendre rule (8 panels of 20 nodes) over [a, b] ∩ [-40, 40] ∩ [c - 12, c + 12], c the
    point of [a, b] nearest 0 (the rest holds < 1e-18 of the integral for j <= 20), panels of
    length at most 3 on which z^j ϕ(z) is resolved to machine precision (the differences of
    tails would cancel). The rounding of that rule is relative to ∫|z^j|ϕ over the segment,
    not to T_j: ∫_{-1e4}^{10} z ϕ(z) dz = -ϕ(10) ≈ -8e-23 comes out as ~1e-17 (the sizes
    returned say so; the tails of infinite segments are accurate relative to themselves).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out, size = [], []
    finite = np.isfinite(a) & np.isfinite(b)
    # tails: at most one end finite
    Ua = _upper_tails(np.where(np.isfinite(a), a, -40.0), jmax)
    Ub_m = _upper_tails(np.where(np.isfinite(b), -b, -40.0), jmax)
    # finite segments: composite rule (only where some segment is finite: the quadrature
    # dominates the cost of a closed-form call)
    any_finite = bool(np.any(finite))
    if any_finite:
        lo = np.clip(a, -40.0, 40.0)
        hi = np.clip(b, -40.0, 40.0)
        near = np.minimum(np.maximum(lo, 0.0), hi)
        lo = np.maximum(lo, near - _SEG_REACH)
        hi = np.minimum(hi, near + _SEG_REACH)
        edges = lo[..., None] + (hi - lo)[..., None] * _SEG_FRAC
        mid = 0.5 * (edges[..., 1:] + edges[..., :-1])
        half = 0.5 * (edges[..., 1:] - edges[..., :-1])
        seg_t, seg_w = _seg_rule()
        Z = mid[..., None] + half[..., None] * seg_t          # (..., panels, nodes)
        W = half[..., None] * seg_w * np.exp(-0.5 * Z * Z) / math.sqrt(2 * math.pi)
        Zj = np.ones_like(Z)
    for j in range(jmax + 1):
        sgn = -1.0 if j % 2 else 1.0
        upper = Ua[j]                  # ∫_a^∞ (b = +∞)
        lower = sgn * Ub_m[j]          # ∫_{-∞}^b (a = -∞)
        both = np.full(a.shape, _full_moment(j))
        if any_finite:
            if j:
                Zj = Zj * Z
            seg = np.sum(W * Zj, axis=(-1, -2))
            seg_abs = np.sum(W * np.abs(Zj), axis=(-1, -2))
        else:
            seg = seg_abs = 0.0
        tail = np.where(np.isinf(b) & np.isinf(a), both, np.where(np.isinf(b), upper, lower))
        out.append(np.where(finite, seg, tail))
        # the composite rule's rounding reaches ~10 ulps of its size (its nodes and weights
        # round with one sign in every panel: T_2 over [-31.6, 31.6] came out 2.2e-15 off, past
        # the caller's 8 ulps; found by the long fuzz profile), so its size counts twice
        size.append(np.where(finite, 2.0 * seg_abs, np.abs(tail)))
    return out, size


def _fcomb(p: int, j: int) -> float:
    """C(p, j) as a float; GrowthError where it overflows float64 (a polynomial activation of
    degree ~1000: x**1000 has C(2000, 1000) ~ 2e600 in E[φ²])."""
    try:
        return float(math.comb(p, j))
    except OverflowError:
        raise GrowthError(f"the binomial coefficient C({p}, {j}) overflows float64: the "
                          "activation's polynomial degree is too high for float64 "
                          "expectations") from None


def _sqrtK_pow(K, sK, j: int):
    """K^{j/2}, with exact integer powers of K for even j (√K² rounds; E[relu²] = K/2)."""
    return K ** (j // 2) * sK if j % 2 else K ** (j // 2)


def _piece_1d(lo: float, hi: float, terms, K: np.ndarray):
    """Σ_terms E[c x^p e^{αx} 1{lo<x<hi}], x ~ N(0,K); returns (value, size), the size being
    what the rounding is relative to (8 ulps of it is the caller's error estimate).

    The size holds Σ|parts| and the conditioning of the two transcendental factors of each
    part: e^{y}, y = α²K/2, carries the relative error |y|·ε of its rounded argument, and a
    Gaussian tail or segment at distance t from 0 (in z) the relative error t²·ε of its
    rounded end (d ln erfc(t/√2)/dt ≈ −t). ELU's E[φφ''] at K = 100 (y = 200, t = 20) is off
    by 1.4e-14 relative through them, where Σ|parts| alone promised 5e-15.
    """
    sK = np.sqrt(K)
    val = np.zeros(K.shape, dtype=complex)
    mag = np.zeros(K.shape)
    for c, p, a in terms:
        shift = a * K
        y = np.abs(0.5 * a * a * K)
        pref = c * np.exp(0.5 * a * a * K)
        if math.isinf(lo) and math.isinf(hi):
            for j in range(0, p + 1, 2):
                part = (pref * _fcomb(p, j) * shift ** (p - j) * _sqrtK_pow(K, sK, j)
                        * _full_moment(j))
                val += part
                mag += np.abs(part) * (1.0 + 0.5 * y)
            continue
        ar = (lo - shift.real) / sK
        br = (hi - shift.real) / sK
        near = np.where((ar <= 0) & (br >= 0), 0.0,
                        np.minimum(np.abs(ar), np.abs(br)))
        cond = 0.5 * (y + np.minimum(near, 40.0) ** 2)
        T, S = _segment_moments(ar, br, p)
        for j in range(p + 1):
            coef = pref * _fcomb(p, j) * shift ** (p - j) * _sqrtK_pow(K, sK, j)
            val += coef * T[j]
            mag += np.abs(coef) * S[j] + np.abs(coef * T[j]) * cond
    return val, mag


def closed_form_1d(itg: Integrand, K: np.ndarray):
    """(value, error estimate) of E_K[g] for every entry of K, or None if no closed form."""
    K = np.asarray(K, dtype=float)
    special = _erf_1d(itg, K)
    if special is not None:
        return special
    special = _homogeneous_1d(itg, K)
    if special is not None:
        return special
    pieces = piecewise_terms(itg)
    if pieces is None:
        return None
    val = np.zeros(K.shape, dtype=complex)
    mag = np.zeros(K.shape)
    with np.errstate(all="ignore"):
        for lo, hi, terms in pieces:
            v, m = _piece_1d(lo, hi, terms, K)
            val += v
            mag += m
        for b, cmass in itg.point_masses:
            pm = cmass * np.exp(-0.5 * b * b / K) / np.sqrt(2 * math.pi * K)
            val += pm
            mag += np.abs(pm)
    err = 8 * _EPS * mag + np.abs(val.imag)
    return val.real, err


# ---------------------------------------------------------------------- ReLU family
def _homogeneous_1d(itg: Integrand, K: np.ndarray):
    """φ = a₊ relu(x) − a₋ relu(−x) (linear, relu, leaky_relu, abs): the named moments are
    monomials in K (E[relu(h)^p] = E[|h|^p]/2), a fast path for the commonest activations."""
    name = itg.name
    if name not in ("phi", "phi2", "dphi", "dphi2", "phi_d2phi", "phi4", "h_phi_dphi"):
        return None
    hs = itg.activation.homogeneous_slopes
    if hs is None:
        return None
    ap, am = hs
    with np.errstate(all="ignore"):
        if name == "phi":           # E[|h|]/2 = √(K/2π)
            v = (ap - am) * np.sqrt(K / (2 * math.pi))
        elif name in ("phi2", "h_phi_dphi"):   # h φ φ' = φ² for homogeneous φ
            v = (ap * ap + am * am) * K / 2
        elif name == "dphi":
            v = np.full(K.shape, (ap + am) / 2)
        elif name == "dphi2":
            v = np.full(K.shape, (ap * ap + am * am) / 2)
        elif name == "phi_d2phi":   # φ'' = 0 a.e., point mass φ(0)Δ = 0
            v = np.zeros(K.shape)
        else:                       # E[h^4]/2 = 3K²/2
            v = (ap ** 4 + am ** 4) * 1.5 * K * K
    return v, 8 * _EPS * (np.abs(v) + np.abs(ap * am) * np.where(name == "phi", np.sqrt(K), 0))


# ---------------------------------------------------------------------- erf family
def erf_params(act) -> tuple[float, float] | None:
    """``(c, a)`` when the activation is ``c·erf(a x)`` (the erf family with closed-form
    expectations), else None; kept on the activation after the first call."""
    cache = act.__dict__
    if "_erf_params" not in cache:
        X = _sym.X
        c, a = sp.Wild("c", exclude=[X]), sp.Wild("a", exclude=[X])
        m = act.expr.match(c * sp.erf(a * X))
        res = None
        if m and m.get(a, 0) != 0 and m.get(c, 0) != 0:
            try:
                res = (float(m[c]), float(m[a]))
            except TypeError:
                res = None
        cache["_erf_params"] = res
    return cache["_erf_params"]


def _erf_1d(itg: Integrand, K: np.ndarray):
    p = erf_params(itg.activation)
    if p is None or itg.name not in ("phi2", "dphi2", "phi_d2phi", "h_phi_dphi", "phi", "dphi"):
        return None
    c, a = p
    a2 = a * a
    with np.errstate(all="ignore"):
        if itg.name == "phi":
            v = np.zeros_like(K)
        elif itg.name == "phi2":
            # arcsin(s/(1 + s)), s = 2a²K, as arctan(s/√(1 + 2s)): arcsin's argument tends to
            # 1 where its slope 1/√(1 − u²) ~ √s amplifies the rounding of u (erf(1e7 x) at
            # K = 1: 6e-9 absolute instead of 1e-16), arctan's slope is at most 1
            sK = 2 * a2 * K
            w = np.sqrt(sK) / np.sqrt(1 / sK + 2)
            v = c * c * (2 / math.pi) * np.arctan(w)
        elif itg.name == "dphi":
            v = c * 2 * abs(a) / math.sqrt(math.pi) / np.sqrt(1 + 2 * a2 * K) * np.sign(a)
        elif itg.name == "dphi2":
            v = c * c * 4 * a2 / (math.pi * np.sqrt(1 + 4 * a2 * K))
        elif itg.name == "phi_d2phi":
            v = -c * c * 8 * a2 * a2 * K / (math.pi * (1 + 2 * a2 * K) * np.sqrt(1 + 4 * a2 * K))
        else:  # h_phi_dphi = K d/dK E[phi^2]
            v = c * c * 4 * a2 * K / (math.pi * (1 + 2 * a2 * K) * np.sqrt(1 + 4 * a2 * K))
    return v, 16 * _EPS * np.abs(v)


# ---------------------------------------------------------------------- 2-D
def _pair_moment(i: int, j: int, K11, K12, K22):
    """E[h1^i h2^j] for a centred Gaussian pair (Isserlis' pairing count)."""
    if (i + j) % 2:
        return np.zeros(np.broadcast(K11, K12, K22).shape)
    tot = 0.0
    for k in range(i % 2, min(i, j) + 1, 2):
        a, b = (i - k) // 2, (j - k) // 2
        cnt = math.factorial(i) * math.factorial(j) / (
            math.factorial(k) * math.factorial(a) * math.factorial(b) * 2 ** (a + b))
        tot = tot + cnt * K12 ** k * K11 ** a * K22 ** b
    return tot


def _exp_poly_2d(tf, tg, K11, K12, K22):
    val = 0j
    mag = 0.0
    for c1, p, a in tf:
        for c2, q, b in tg:
            pref = c1 * c2 * np.exp(0.5 * (a * a * K11 + 2 * a * b * K12 + b * b * K22))
            m1 = a * K11 + b * K12
            m2 = a * K12 + b * K22
            for i in range(p + 1):
                for j in range(q + 1):
                    mom = _pair_moment(i, j, K11, K12, K22)
                    part = pref * math.comb(p, i) * math.comb(q, j) * m1 ** (p - i) * m2 ** (q - j) * mom
                    val = val + part
                    mag = mag + np.abs(part)
    return val, mag


def closed_form_2d(f: Integrand, g: Integrand, K11, K12, K22):
    """(value, error) of E[f(h1) g(h2)] or None."""
    act_f, act_g = f.activation, g.activation
    if act_f == act_g:
        act = act_f
        hs = act.homogeneous_slopes
        names = {f.name, g.name}
        if hs is not None and names in ({"phi"}, {"dphi"}):
            ap, am = hs
            # θ = arccos ρ from atan2(√det, K12): arccos amplifies the rounding of
            # ρ = K12/√(K11 K22) near |ρ| = 1 to √eps (E[relu'(h1) relu'(h2)] came out
            # 0.49999999807 instead of 0.5 at K11 = K12 = K22 = 97.04); the determinant of an
            # exactly singular input is 0, so θ is exactly 0 or π there.
            det = np.maximum(det2(K11, K12, K22), 0.0)
            theta = np.arctan2(np.sqrt(det), K12)
            thetam = np.pi - theta
            if names == {"phi"}:
                k1 = lambda th: (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)  # noqa: E731
                v = np.sqrt(K11 * K22) * ((ap * ap + am * am) * k1(theta) - 2 * ap * am * k1(thetam))
            else:
                k0 = lambda th: (np.pi - th) / (2 * np.pi)  # noqa: E731
                v = (ap * ap + am * am) * k0(theta) + 2 * ap * am * k0(thetam)
            scale = np.sqrt(K11 * K22) if names == {"phi"} else 1.0   # φ' kernels are O(1)
            return v, 64 * _EPS * (np.abs(v) + scale * (ap * ap + am * am))
        ep = erf_params(act)
        if ep is not None and names in ({"phi"}, {"dphi"}):
            c, a = ep
            a2 = a * a
            if names == {"phi"}:
                arg = 2 * a2 * K12 / np.sqrt((1 + 2 * a2 * K11) * (1 + 2 * a2 * K22))
                v = c * c * (2 / np.pi) * np.arcsin(np.clip(arg, -1, 1))
                # arcsin is ill-conditioned near |arg| = 1 (large K, |ρ| ~ 1)
                cond = np.abs(arg) / np.sqrt(np.maximum(1 - arg * arg, 1e-300))
                return v, 64 * _EPS * (np.abs(v) + c * c * cond)
            else:
                det = (1 + 2 * a2 * K11) * (1 + 2 * a2 * K22) - 4 * a2 * a2 * K12 * K12
                v = c * c * 4 * a2 / (np.pi * np.sqrt(det))
                # the determinant cancels for large K at |ρ| ~ 1
                cond = (1 + 2 * a2 * K11) * (1 + 2 * a2 * K22) / det
                return v, 64 * _EPS * np.abs(v) * (1 + cond)
    pf, pg = piecewise_terms(f), piecewise_terms(g)
    if pf is None or pg is None or len(pf) != 1 or len(pg) != 1:
        return None
    with np.errstate(all="ignore"):
        val, mag = _exp_poly_2d(pf[0][2], pg[0][2], K11, K12, K22)
    return np.real(val), 16 * _EPS * mag + np.abs(np.imag(val))
