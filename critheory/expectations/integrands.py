"""Integrands of Gaussian expectations, built from an activation.

The theory needs a handful of named integrands; any sympy expression in ``x`` works too.

=============  ==========================  ==============================================
name           integrand                   where it appears
=============  ==========================  ==============================================
phi            φ                           mean activation, post-LN variance
phi2           φ²                          kernel map K' = σ_b² + σ_w² E[φ²]
dphi           φ'
dphi2          φ'²                         χ_⊥ = σ_w² E[φ'²]
phi_d2phi      φ φ''  (distributional)      χ_∥ = σ_w² E[φ'² + φ φ'']
phi4           φ⁴                          four-point vertex
h_phi_dphi     h φ φ'                      χ_∥ = (σ_w²/K) E[h φ φ']
phi_euler      φ (xφ' − φ), expanded       the Poincaré gap by parts (:mod:`.poincare`)
=============  ==========================  ==============================================

``phi_d2phi`` is taken in the sense of distributions: at a kink b where φ' jumps by Δ_b, φ''
contains Δ_b δ(x - b), which contributes φ(b) Δ_b p_K(b). With this convention the Gaussian
integration-by-parts identity E[φ'² + φφ''] = E[hφφ']/K holds for every continuous φ.

The K-derivatives of E[g] (:mod:`critheory.expectations.derivatives`) need x-derivatives and
x-power multiples of the named integrands; they are named too, ``"OP:name"`` with OP one of
:data:`DERIVED_OPS` (``dx2``: ∂²g/∂x², ``dx4``: ∂⁴g/∂x⁴, for smooth g only; ``x2``: x²g,
``x4``: x⁴g, whose point masses c·δ(x − b) become b²c·δ, b⁴c·δ), so that a zoo activation's
cache (:mod:`critheory.activation.cache`) holds them for the bases in
:data:`DERIVATIVE_BASES` and a command on it needs no sympy.
"""
from __future__ import annotations

import math
import time
from dataclasses import FrozenInstanceError
from functools import cached_property
from typing import Callable

import numpy as np

from critheory.activation import symbolic as _sym
from critheory.activation._lazy import LazyModule, on_import
from critheory.activation.budget import SYMBOLIC_SECONDS, within
from critheory.activation.analysis import growth, real_zeros, switch_functions
from critheory.activation.expressions import nonsmooth
from critheory.activation.numeric import mp_lambdify, wrap_numpy
from critheory.activation.symbolic import Activation
from critheory.errors import GrowthError, InvalidArgumentError

# imported on first use (a zoo activation from the zoo cache needs neither)
sp = LazyModule("sympy")
mpmath = LazyModule("mpmath")


def _on_import(name):
    def hook(mod):
        globals()[name] = mod
    return hook


on_import("sympy", _on_import("sp"))
on_import("mpmath", _on_import("mpmath"))

__all__ = ["Integrand", "Float64Noise", "integrand", "NAMED", "DERIVED_OPS", "DERIVATIVE_BASES",
           "NOISE_EMIN", "NOISE_EMAX"]

# binary octaves of |x| sampled by Integrand.float64_noise: 2^-30 <= |x| < 2^12
NOISE_EMIN, NOISE_EMAX = -29, 12

NAMED = ("phi", "phi2", "dphi", "dphi2", "phi_d2phi", "phi4", "h_phi_dphi", "d2phi",
         "phi_euler")

#: operations of the derived named integrands ``"OP:name"`` (module docstring)
DERIVED_OPS = ("dx2", "dx4", "x2", "x4")
#: the named integrands whose K-derivatives the theories take (E[φ²], E[φ'²], E[hφφ']): the zoo
#: cache holds their derived integrands
DERIVATIVE_BASES = ("phi2", "dphi2", "h_phi_dphi")


class Integrand:
    """A function g(x) built from an activation, with what quadrature needs to know about it.

    Immutable; the derived attributes are computed on first use (or taken from the zoo cache,
    :mod:`critheory.activation.cache`, for the named integrands of a cached zoo activation:
    then ``expr`` too is derived only when asked for).

    Attributes
    ----------
    activation : Activation
    name : str
        One of :data:`NAMED`, or the expression's text.
    expr : sympy.Expr
        g(x), almost everywhere.
    point_masses : tuple of (b, c)
        Distributional terms c·δ(x - b) added to g.
    """

    def __init__(self, activation: Activation, name: str, expr=None, point_masses: tuple = (),
                 *, _cached: dict | None = None):
        d = self.__dict__
        d["activation"] = activation
        d["name"] = name
        d["point_masses"] = tuple(point_masses)
        if expr is not None:
            d["expr"] = expr
        elif _cached is None:
            raise InvalidArgumentError("an Integrand needs an expression")
        if _cached is not None:
            d["_cached"] = _cached
            for key in ("breakpoints", "growth", "parity"):
                d[key] = _cached[key]
            d["_pw_terms"] = _cached["pw_terms"]

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return (f"Integrand(activation={self.activation!r}, name={self.name!r},"
                f" expr={self.expr!r}, point_masses={self.point_masses!r})")

    @cached_property
    def expr(self):
        """g(x) as a sympy expression (a cached named integrand: built on first use)."""
        return _named(self.activation, self.name)[0]

    def _cached_function(self, which: str, label: str):
        z = self.activation.__dict__["_zoo"]
        return z.function(self.__dict__["_cached"][which], f"{self.name} {label}")

    @cached_property
    def numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        if "_cached" in self.__dict__:
            return wrap_numpy(self._cached_function("np", "(numpy)"),
                              lambda: self._cached_function("mp_plain", "(mpmath)"))
        return self.activation.sympy_numpy(self.expr)

    @cached_property
    def mpmath(self) -> Callable:
        if "_cached" in self.__dict__:
            fn = self._cached_function("mp", "(mpmath, cse)")
        else:
            fn = mp_lambdify(self.expr)

        def f(t):
            v = fn(t)
            return v if isinstance(v, (mpmath.mpf, mpmath.mpc)) else mpmath.mpf(v)

        return f

    @cached_property
    def breakpoints(self) -> tuple[float, ...]:
        """The activation's breakpoints and those of the integrand's own non-smooth parts."""
        pts = set(self.activation.breakpoints)
        for atom in self.expr.atoms(*nonsmooth()):
            for g in switch_functions(atom):
                pts.update(real_zeros(g, self.activation.name))
        return tuple(sorted(pts))

    @cached_property
    def features(self):
        """Where and how narrow g's features are (:mod:`critheory.activation.features`): the
        activation's for a named integrand (built from φ and its derivatives, whose function
        arguments are φ's; so are their derived integrands, x-derivatives and x-power
        multiples), else read off the expression."""
        if self.name in NAMED or self.name.partition(":")[2] in NAMED:
            return self.activation.features
        from critheory.activation.features import features

        return features(self.expr)

    @cached_property
    def growth(self) -> tuple[float, float]:
        """Exponential growth rates (α_-, α_+) of |g| at ∓∞."""
        f = mp_lambdify(self.expr)
        try:
            return (growth(f, -1), growth(f, +1))
        except GrowthError:
            raise GrowthError(
                f"integrand {self.name} of {self.activation.name} grows like exp(c*x**2) or"
                " faster: its Gaussian expectation does not exist") from None

    @cached_property
    def float64_noise(self) -> "Float64Noise":
        """Estimated absolute error of :attr:`numpy` at x, measured against mpmath.

        float64 evaluation of a lambdified integrand can lose digits to cancellation (φφ'' of
        mish at x = 10 is computed with an absolute error of 2e-14 where the value is -1.5e-6),
        and no comparison of two quadrature rules sees that error, since both rules sample the
        same function. This measures it once: the error |g_float64(x) - g_mpmath(x)| (30
        digits) at points log-spaced in every binary octave 2^-30 <= |x| < 2^12 on each side
        (two per octave above 2^-4, one below). The model (:class:`Float64Noise`) is 4 × the
        largest error in the octave of x and its two neighbours (beyond the sampled octaves:
        the outermost).
        """
        cached = self.__dict__.get("_cached")
        if cached is not None:
            table = self.activation.__dict__["_zoo"].noise_table(self.name)
            if table is not None:
                return Float64Noise(table)
        e = np.arange(NOISE_EMIN, NOISE_EMAX + 1)
        two = e >= -3
        mags = np.concatenate([2.0 ** (e - 0.75), 2.0 ** (e[two] - 0.25)])
        octave = np.concatenate([e, e[two]]) - NOISE_EMIN
        table = np.zeros((2, e.size))
        for side, sign in enumerate((-1.0, 1.0)):
            x = sign * mags
            with np.errstate(all="ignore"):
                v = np.asarray(self.numpy(x), dtype=float)
            ref = np.empty(x.size)
            with mpmath.workdps(30):
                for i, xi in enumerate(x):
                    try:
                        ref[i] = float(self.mpmath(mpmath.mpf(xi)))
                    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                        ref[i] = np.nan
            with np.errstate(all="ignore"):
                err = np.abs(v - ref)
            err = np.where(np.isnan(err), np.inf, err)
            worst = np.zeros(e.size)
            np.maximum.at(worst, octave, err)
            p = np.concatenate([[worst[0]], worst, [worst[-1]]])
            table[side] = 4.0 * np.maximum(np.maximum(p[:-2], p[1:-1]), p[2:])
        return Float64Noise(table)

    @cached_property
    def even(self) -> bool:
        """True if g(-x) = g(x) is proven (:attr:`parity`); quadrature then evaluates g at one
        of each pair of mirror nodes ±h."""
        return self.parity == "even"

    @cached_property
    def parity(self) -> str:
        """'odd' or 'even' where sympy proves g(-x) = -g(x) (and g has no point masses) or
        g(-x) = g(x); 'none' otherwise.

        'odd' makes E[g] exactly 0 and 'even' lets quadrature skip the nodes -h, so neither is
        taken from numbers alone: a numerical check at 57 points (to 1e-14) only decides whether
        ``simplify`` is worth trying when the automatic simplification of g(-x) ± g(x) is not
        already 0 (tanh(x) + 1e-20 passes the numerical check and is not odd).
        """
        e = self.expr
        X = _sym.X
        m = e.subs(X, -X)
        diffs = {"odd": m + e, "even": m - e}
        if self.point_masses:
            del diffs["odd"]
        for kind, d in diffs.items():
            if d == 0:
                return kind
        t = np.linspace(0.011, 9.7, 57)
        with np.errstate(all="ignore"):
            a, b = self.numpy(t), self.numpy(-t)
        sc = np.maximum(1e-300, np.abs(a) + np.abs(b))
        numeric = {"odd": np.all(np.abs(a + b) <= 1e-14 * sc),
                   "even": np.all(np.abs(a - b) <= 1e-14 * sc)}
        deadline = time.monotonic() + SYMBOLIC_SECONDS    # for all attempts together
        if e.has(sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise):
            return self._piecewise_parity(numeric, deadline)
        for kind, d in diffs.items():
            if not numeric[kind]:
                continue
            forms = [d.rewrite(sp.exp)]
            if d.has(sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise):
                forms.append(d.rewrite(sp.Piecewise))      # hardtanh = Max(-1, Min(1, x))
            for f in forms:
                # simplify of nested piecewise expressions can take minutes (hardtanh φ'²: 11 s
                # at 21 operations): small ones only
                # (any non-smooth atom: Max(pi, x, Abs(x))**3's φ'² with Heaviside and sign,
                # 46 operations, did not finish in minutes); every attempt runs under a
                # wall-clock budget (critheory.activation.budget): out of time = not proven
                limit = 60 if not f.has(sp.Piecewise, sp.Max, sp.Min, sp.Abs, sp.Heaviside,
                                        sp.sign) else 15
                left = deadline - time.monotonic()
                if left <= 0:
                    return "none"
                try:
                    done, r = within(lambda f=f: sp.simplify(f) == 0, left,
                                     small=sp.count_ops(f) <= limit)
                    if done and r:
                        return kind
                except Exception:  # pragma: no cover - sympy failure: not proven
                    pass
        return "none"


    def _piecewise_parity(self, numeric: dict, deadline: float) -> str:
        """Parity of a piecewise g, proven piece by piece: between consecutive points of
        ±breakpoints every Max/Min/Abs/Heaviside/sign/Piecewise has one active branch, so g on
        (a, b) and g on (-b, -a) are smooth expressions whose sum (odd) or difference (even)
        simplifies to 0 quickly; the whole expression's rewrite and simplify can take minutes."""
        from critheory.expectations.closed_forms import active_branch

        X = _sym.X
        pos = sorted({abs(b) for b in self.breakpoints if b != 0.0})
        edges = [0.0] + pos + [math.inf]
        for kind in ("odd", "even"):
            if not numeric[kind] or (kind == "odd" and self.point_masses):
                continue
            proven = True
            for lo, hi in zip(edges[:-1], edges[1:]):
                t0 = lo + 1.0 if math.isinf(hi) else 0.5 * (lo + hi)
                try:
                    gp = active_branch(self.expr, t0)
                    gm = active_branch(self.expr, -t0).subs(X, -X)
                except Exception:  # noqa: BLE001 - a branch sympy cannot decide: not proven
                    return "none"
                d = gm + gp if kind == "odd" else gm - gp
                if d == 0:
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return "none"
                done, r = within(lambda d=d: sp.simplify(d.rewrite(sp.exp)) == 0, left,
                                 small=sp.count_ops(d) <= 60)
                if not (done and r):
                    proven = False
                    break
            if proven:
                return kind
        return "none"


_OCTAVE_MASS: list = []


class Float64Noise:
    """Octave table of the float64 evaluation error of an integrand (see
    :attr:`Integrand.float64_noise`).

    ``noise(x)`` is the table entry of x: row 0 for x <= 0, row 1 for x > 0; column k for the
    binary exponent ``frexp(x)[1] = k + E_min`` (|x| in [2^(k+E_min-1), 2^(k+E_min))), the first
    and last columns also for all smaller and larger |x|.

    ``gaussian(σ)`` is its Gaussian average E[noise(σz)], z ~ N(0, 1), which the quadrature
    adds to its error estimate. The table is piecewise constant, so the average is exact as a
    sum over octaves of table × Gaussian mass (differences of erfc); it is tabulated once on
    σ = 2^(j/4) and looked up as the larger of the two neighbouring values (between grid points
    the average changes by a fraction of an octave's mass).

    Examples
    --------
    >>> import numpy as np
    >>> n = Float64Noise(np.full((2, NOISE_EMAX - NOISE_EMIN + 1), 1e-16))
    >>> bool(np.allclose(n.gaussian(np.array([1e-3, 1.0, 1e3])), 1e-16))
    True
    """

    _STEPS_PER_OCTAVE = 4

    def __init__(self, table: np.ndarray):
        table = np.array(table, dtype=float)
        table.setflags(write=False)
        self.table = table
        j, mass = self.octave_mass()
        both = table[0] + table[1]
        # octaves without Gaussian mass add nothing, even where the table is inf (float64
        # overflow far out, e.g. exp(x) at 2^12)
        with np.errstate(invalid="ignore"):
            avg = np.where(mass > 0.0, mass * both, 0.0).sum(axis=1)
        # the larger of the averages at the grid points j and j + 1, looked up at floor(j)
        avg2 = np.maximum(avg, np.append(avg[1:], avg[-1]))
        avg2.setflags(write=False)
        self._j0 = int(j[0])
        self._avg2 = avg2

    @classmethod
    def octave_mass(cls) -> tuple[np.ndarray, np.ndarray]:
        """The σ grid (as exponents j, σ = 2^(j/4)) and the Gaussian mass of each octave at each
        σ: constants, computed once per process (with scipy.special.erfc; taken from the zoo
        cache where its float64 part applies, which spares importing scipy.special)."""
        if not _OCTAVE_MASS:
            # σ grid: four octaves beyond the table on either side, then constant
            j = np.arange(cls._STEPS_PER_OCTAVE * (NOISE_EMIN - 4),
                          cls._STEPS_PER_OCTAVE * (NOISE_EMAX + 4) + 1)
            from critheory.activation import cache

            cache.on_reset(_OCTAVE_MASS.clear)   # registering twice does nothing
            mass = cache.noise_mass()
            if mass is None or mass.shape != (j.size, NOISE_EMAX - NOISE_EMIN + 1):
                mass = cls._compute_octave_mass(j)
            _OCTAVE_MASS.append((j, mass))
        return _OCTAVE_MASS[0]

    @classmethod
    def _compute_octave_mass(cls, j: np.ndarray) -> np.ndarray:
        from scipy.special import erfc

        ex = np.arange(NOISE_EMIN, NOISE_EMAX + 1, dtype=float)
        lo = 2.0 ** (ex - 1)
        lo[0] = 0.0
        hi = 2.0 ** ex
        hi[-1] = np.inf
        sig = 2.0 ** (j / cls._STEPS_PER_OCTAVE)
        r = 1.0 / (np.sqrt(2.0) * sig[:, None])
        mass = 0.5 * (erfc(lo[None, :] * r) - erfc(hi[None, :] * r))   # P(a <= σz < b, z > 0)
        mass.setflags(write=False)
        return mass

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _, ex = np.frexp(x)
        k = np.minimum(np.maximum(ex, NOISE_EMIN), NOISE_EMAX) - NOISE_EMIN
        return self.table[(np.asarray(x) > 0).view(np.int8), k]

    def gaussian(self, std: np.ndarray) -> np.ndarray:
        """E[noise(σz)] for an array of σ > 0 (an upper estimate: see the class docstring)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.log2(np.asarray(std, dtype=float))
        f *= self._STEPS_PER_OCTAVE
        f -= self._j0
        np.fmin(np.fmax(f, 0.0, out=f), self._avg2.size - 1, out=f)     # clamp (NaN -> 0)
        return self._avg2[f.astype(np.intp)]


def _named(act: Activation, spec: str) -> tuple:
    """(g(x), point masses) of the named integrand ``spec`` of ``act``."""
    op, sep, base = spec.partition(":")
    if sep:
        if op not in DERIVED_OPS or base not in NAMED:
            raise InvalidArgumentError(
                f"unknown integrand {spec!r}; derived integrands are OP:NAME with OP one of "
                f"{', '.join(DERIVED_OPS)} and NAME one of {', '.join(NAMED)}")
        e, masses = _named(act, base)
        k = int(op[-1])
        if op.startswith("dx"):
            if masses or e.has(*nonsmooth()):
                raise InvalidArgumentError(f"the x-derivatives of E[{base}] of {act.name} need a "
                                           "smooth integrand")
            return sp.diff(e, _sym.X, k), ()
        return e * _sym.X ** k, tuple((b, b ** k * c) for b, c in masses if b != 0.0)
    phi, d1, d2 = act.expr, act.derivative(1), act.derivative(2)
    masses: tuple = ()
    if spec == "phi":
        e = phi
    elif spec == "phi2":
        e = phi ** 2
    elif spec == "dphi":
        act.check_continuous("expectations of phi'")
        e = d1
    elif spec == "d2phi":
        act.check_continuous("expectations of phi''")
        e = d2
        masses = tuple((b, jump) for b, _, jump in act.jumps if jump != 0.0)
    elif spec == "dphi2":
        act.check_continuous("expectations of phi'^2")
        e = d1 ** 2
    elif spec == "phi_d2phi":
        act.check_continuous("expectations of phi*phi''")
        e = phi * d2
        masses = tuple((b, val * jump) for b, val, jump in act.jumps if val * jump != 0.0)
    elif spec == "phi4":
        e = phi ** 4
    elif spec == "h_phi_dphi":
        act.check_continuous("expectations of h*phi*phi'")
        e = _sym.X * phi * d1
    elif spec == "phi_euler":
        # xφ' − φ expanded (Piecewise folded) so that the terms growing with x cancel
        # symbolically (GELU: x²e^{−x²/2}/√(2π)), under the symbolic budget
        act.check_continuous("expectations of phi*(h*phi' - phi)")
        ok, q = within(lambda: sp.piecewise_fold(sp.expand(_sym.X * d1 - phi)))
        if not ok:
            raise InvalidArgumentError(f"phi*(x*phi' - phi) of {act.name}: the symbolic "
                                       "expansion did not finish within its budget")
        e = phi * q
    else:
        raise InvalidArgumentError(
            f"unknown integrand {spec!r}; named integrands: {', '.join(NAMED)}")
    return e, masses


def integrand(act: Activation, spec) -> Integrand:
    """The integrand ``spec`` (a name from :data:`NAMED` or a sympy expression in x) of ``act``."""
    if isinstance(spec, Integrand):
        return spec
    cache = act.__dict__.setdefault("_intcache", {})
    if isinstance(spec, str):
        out = cache.get(spec)
        if out is not None:
            return out
        zoo = act.__dict__.get("_zoo")
        data = zoo.integrands.get(spec) if zoo is not None else None
        if data is not None:
            # a zoo activation from the zoo cache: no sympy
            out = cache[spec] = Integrand(act, spec, None, data["point_masses"], _cached=data)
            return out
        e, masses = _named(act, spec)
        out = cache[spec] = Integrand(act, spec, e, masses)
        return out
    key = sp.srepr(spec)
    if key in cache:
        return cache[key]
    if isinstance(spec, sp.Basic):
        e = sp.sympify(spec)
        extra = e.free_symbols - {_sym.X}
        if extra:
            raise InvalidArgumentError(f"integrand has free symbols {extra}")
        name = str(e)
    else:
        raise InvalidArgumentError(f"cannot use {spec!r} as an integrand")
    out = Integrand(act, name, e)
    cache[key] = out
    return out
