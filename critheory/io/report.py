"""Reports: the full analysis of an activation and architecture as one JSON-ready dict.

``analyze`` assembles the universality class, the critical points, the exponents (exact where the
theory gives them, and fitted from a deep iteration of the recursion as an independent check), a
summary of the critical line, and the point analysis at the (first) critical point. Every number
that does not exist is ``None`` (JSON ``null``), never NaN or infinity.

Examples
--------
>>> from critheory.io.report import analyze
>>> r = analyze("tanh", verify_depth=2000)
>>> r["universality_class"], r["critical_points"][0]["weight_var"], r["exponents"]["apjn"]
('K*=0', 1.0, 1.0)
"""
from __future__ import annotations

import numpy as np

from critheory.activation.symbolic import Activation
from critheory.common.jsonable import jsonable
from critheory.theory.meanfield.criticality import (Side, critical_line, critical_points,
                                                    universality)
from critheory.theory.meanfield.depth import depth_curves, fit_power_law
from critheory.theory.meanfield.fixed_points import analyze_point, fixed_point_at
from critheory.theory.meanfield.maps import architecture

__all__ = ["analyze", "verify_exponents", "point_report", "correlation_fields"]

#: The JSON name of the old ``correlation_length`` (1/|log χ_J(K*)|, the APJN's depth scale),
#: kept as a deprecated alias: Schoenholz et al.'s correlation depth scale is ``xi_c``.
DEPRECATED = {"correlation_length": "deprecated alias of jacobian_depth_scale = "
                                    "1/|log chi_J(K*)| (the APJN's depth scale); Schoenholz "
                                    "et al.'s correlation depth scale is xi_c"}


def correlation_fields(arch, weight_var: float, bias_var: float, fixed_point) -> dict:
    """``c_star``, ``chi_c``, ``chi_c_error``, ``xi_c`` of the correlation map at the kernel
    fixed point (:mod:`critheory.theory.meanfield.correlation`; all None without a finite
    fixed point; ``xi_c`` None where it diverges, at criticality)."""
    from critheory.theory.meanfield.correlation import correlation_fixed_point

    r = correlation_fixed_point(arch, weight_var, bias_var, fixed_point)
    if r is None:
        return {"c_star": None, "chi_c": None, "chi_c_error": None, "xi_c": None}
    return r.to_dict()




def verify_exponents(arch, univ, depth: int = 10000, q0: float = 1.0) -> dict | None:
    """Iterate the recursion at the critical point to ``depth`` and fit the power laws.

    K*=0 classes start from the input kernel ``K^1 = σ_w² q0``; the half-stable class starts on
    the attracting side at ``K* ± K*/2``; the fit window is the last 90 % of depths.
    """
    cp = univ.critical_point
    if cp is None or univ.kernel is None:
        return None
    sw, sb = cp.weight_var, cp.bias_var
    if univ.half_stable:
        start = cp.fixed_point * (1.5 if univ.attracting_side is Side.ABOVE else 0.5)
        q0 = (start - sb) / sw
        if q0 <= 0:
            return None
    d = depth_curves(arch, sw, sb, depth, q0=q0, input_correlation=None)
    y = d.kernel - (cp.fixed_point if univ.half_stable else 0.0)
    if univ.scale_invariant:
        kf = {"slope": 0.0 if np.allclose(d.kernel, d.kernel[0], rtol=1e-10) else None}
        jf = {"slope": 0.0 if np.allclose(d.apjn, 1.0, rtol=1e-10) else None}
        return {"depth": depth, "kernel": 0.0 if kf["slope"] is not None else None,
                "apjn": 0.0 if jf["slope"] is not None else None,
                "method": "iterated recursion; K and J constant to 1e-10"}
    kf = fit_power_law(d.depths, y)
    jf = fit_power_law(d.depths, d.apjn)
    out = {"depth": depth, "window": list(kf.window), "kernel": -kf.slope, "apjn": -jf.slope,
           "kernel_local": -kf.local_slope, "apjn_local": -jf.local_slope,
           "method": "least-squares slope of log K (or log|K - K*|) and log J vs log l"}
    tol = 0.05
    out["asymptotic_regime_reached"] = bool(
        abs(out["kernel_local"] - univ.kernel) <= tol * max(1.0, abs(univ.kernel))
        and abs(out["apjn_local"] - univ.apjn) <= tol * max(1.0, abs(univ.apjn)))
    return out


def point_report(arch, weight_var: float, bias_var: float, q0: float = 1.0) -> dict:
    """The ``critheory point`` contract: fixed points, χ's, phase and ξ at one point."""
    p = analyze_point(arch, weight_var, bias_var, q0)
    out = p.to_dict()
    out["jacobian_depth_scale"] = out.get("correlation_length")
    out.update(correlation_fields(arch, weight_var, bias_var, out.get("fixed_point")))
    out["deprecated"] = dict(DEPRECATED)
    return jsonable(out)


def _everywhere(a, out: dict, sw: float, sb: float, depth: int) -> None:
    from critheory.theory.meanfield.critical_sets import everywhere_apjn, everywhere_constants

    A, B = (float(v) for v in everywhere_constants(a, sw, sb))
    out["universality_class"] = "everywhere-critical"
    out["exponents"].update({
        "kernel": -1.0, "apjn": -B / A, "kernel_exact": "-1", "apjn_exact": None,
        "laws": {"kernel": f"K^l = K^1 + A (l - 1), A = {A:.12g}",
                 "apjn": f"J^(l0,l) = Gamma(x+B/A+n) Gamma(x) / (Gamma(x+B/A) Gamma(x+n)) "
                         f"~ l^(B/A), B/A = {B / A:.12g}",
                 "reference_point": {"weight_var": sw, "bias_var": sb}}})
    if depth:
        J, K = everywhere_apjn(a, sw, sb, depth)
        l = np.arange(1, depth + 1)
        f = fit_power_law(l, J)
        out["exponents"]["fit"] = {"depth": depth, "window": list(f.window), "apjn": -f.slope,
                                   "apjn_local": -f.local_slope,
                                   "method": "slope of log J (exact product) vs log l"}
    for k, v in (("weight_var", sw), ("bias_var", sb), ("fixed_point", None),
                 ("chi_parallel", 1.0), ("chi_perp", None), ("chi_jacobian", None),
                 ("correlation_length", None), ("jacobian_depth_scale", None),
                 ("phase", "critical")):
        out[k] = v


def analyze(activation, arch: str = "mlp", mu: float = 1.0, params=None, *,
            bias_vars=None, verify_depth: int = 10000, weight_var: float = 1.0,
            bias_var: float = 0.0) -> dict:
    """Full report for an activation and architecture (the ``critheory analyze`` command).

    Parameters
    ----------
    activation : str, sympy.Expr or Activation
    arch : str
        Architecture name (see :func:`critheory.theory.meanfield.maps.architecture`).
    mu : float
        Residual strength.
    params : dict, optional
        Values of free parameters of the activation.
    bias_vars : array_like, optional
        σ_b² grid of the critical-line summary (default ``linspace(0, 1, 11)``).
    verify_depth : int
        Depth of the iteration that checks the exponents (0 to skip).
    weight_var, bias_var : float
        Reference point for architectures whose exponents depend on the hyperparameters
        (everywhere-critical pre-LN residual networks; residual growth laws).

    Examples
    --------
    >>> import critheory as ct
    >>> report = ct.analyze("tanh", verify_depth=200)
    >>> report["universality_class"], report["phase"]
    ('K*=0', 'critical')
    """
    from critheory.theory.meanfield.critical_sets import (critical_set,
                                                          has_residual_growth_law,
                                                          residual_growth)
    act = Activation.get(activation, params)
    a = architecture(arch, act, mu)
    univ = universality(a)
    cps = critical_points(a)
    grid = np.linspace(0.0, 1.0, 11) if bias_vars is None else np.asarray(bias_vars, dtype=float)
    line = [p.to_dict() for p in critical_line(a, grid)]
    cset = critical_set(a)
    out = {
        "activation": act.name,
        "expr": act.expr_text,
        "arch": a.name,
        "mu": a.mu,
        "universality_class": univ.name,
        "critical_points": [c.to_dict() for c in cps],
        "exponents": {
            "kernel": univ.kernel, "apjn": univ.apjn,
            "kernel_exact": None if univ.kernel_exact is None else str(univ.kernel_exact),
            "apjn_exact": None if univ.apjn_exact is None else str(univ.apjn_exact),
            "convention": "K^l ~ l^(-kernel) (|K^l - K*| for half-stable), "
                          "J^(l0,l) ~ l^(-apjn)",
            "laws": univ.laws,
            "a1": None if univ.a1 is None else str(univ.a1),
            "b1": None if univ.b1 is None else str(univ.b1),
        },
        "line": line,
        "critical_set": cset.to_dict(),
        "note": univ.note,
    }
    if cset.everywhere:
        _everywhere(a, out, weight_var, bias_var, verify_depth)
        return jsonable(out)
    if has_residual_growth_law(a):
        out["growth"] = residual_growth(a, weight_var, bias_var)
        out["growth"]["reference_point"] = {"weight_var": weight_var, "bias_var": bias_var}
    if verify_depth and univ.critical_point is not None and univ.kernel is not None:
        out["exponents"]["fit"] = verify_exponents(a, univ, verify_depth)
    else:
        out["exponents"]["fit"] = None
    # the point analysis at the class's critical point (else the first critical point)
    cp = univ.critical_point or (cps[0] if cps else None)
    keys = ("weight_var", "bias_var", "fixed_point", "chi_parallel", "chi_perp", "chi_jacobian",
            "correlation_length", "phase")
    if cp is not None and np.isfinite(cp.weight_var):
        pr = analyze_point(a, cp.weight_var, cp.bias_var)
        d = pr.to_dict()
        for k in keys:
            out[k] = d[k]
        if cp.fixed_point is not None:
            # report the critical fixed point itself (the input may flow elsewhere)
            fp = fixed_point_at(a, cp.fixed_point, cp.weight_var, cp.bias_var)
            out["fixed_point"] = fp.K
            out["chi_parallel"], out["chi_perp"] = fp.chi_parallel, fp.chi_perp
            out["chi_jacobian"] = fp.chi_jacobian
            out["phase"] = "critical"
            out["correlation_length"] = None
        out["jacobian_depth_scale"] = out["correlation_length"]
    else:
        for k in keys:
            out[k] = None
        out["jacobian_depth_scale"] = None
        if a.caps.everywhere_critical:
            out["phase"] = "critical"
            out["note"] = ("everywhere critical: with LayerNorm and mu = 1 the APJN grows as "
                           "l^(B/A) for every (weight_var, bias_var)")
    return jsonable(out)
