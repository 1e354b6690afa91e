"""Jacobian spectra: the free-probability theory against explicit finite networks.

:func:`validate_spectrum` runs :func:`critheory.theory.spectra.jacobian_spectrum` and
:func:`critheory.simulation.spectra.simulate_spectrum` on the same network (MLP input at the
fixed point q*, ResNet input ``|x|²/N = q0``) and compares

* the moments ``m₁``, ``m₂`` (MLP: the exact depth-L moments; ResNet: the finite-depth moments
  of the theory, not the large-L law): ``z = (sim − theory)/stderr`` with the standard error
  over networks (needs ``seeds >= 2``). Finite width adds a bias: the leading correction to the
  moments is ``O(L/N)`` for an MLP (1/N per layer, accumulated over depth) and ``O(c/N)`` for
  a ResNet (``1/(NL)`` per block), so a moment is *consistent* when
  ``|sim − theory| <= Z_MAX·stderr + BIAS_FACTOR·(eff/N)·|theory|``, ``eff = L`` (MLP) or
  ``max(1, c)`` (ResNet); the bias allowance is reported next to each z;
* the density: the Kolmogorov–Smirnov distance between the pooled simulated squared singular
  values and the theory CDF (atoms included). The eigenvalues of one matrix repel, so the
  pooled sample is *more* regular than an i.i.d. sample of the same size: the i.i.d. critical
  value ``1.36/√n`` (5%) is conservative. At finite N the edges are smeared over
  ``O(N^{-2/3})``, the MLP's λ^L tail over ``O(L/N)``, and the large-L ResNet law differs from
  depth L by ``O(1/L)``: the distance is accepted up to ``KS_CRIT/√n`` plus these allowances.
  Squared singular values below the SVD's float64 resolution ``(N·eps·σ_max)²`` are round-off
  (GELU's φ'² has mass near 0, and the product over 10 layers puts ~4 % of the law below
  1e-40, where the computed values pile up at ~1e-36): the CDF is compared from that floor up.

For non-centred φ in ResNets (ReLU) each finite network has one outlier singular value above
the bulk (the direction of the accumulated mean of ``x``); it is removed before comparing
(``drop_top = 1``) and reported.

Examples
--------
>>> from critheory.validation.spectra import validate_spectrum
>>> v = validate_spectrum("x", 1.0, 0.0, depth=2, width=100, seeds=3, seed=1)
>>> v.verdict
'consistent'
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.errors import InvalidArgumentError
from critheory.common.reprs import short_repr

__all__ = ["validate_spectrum", "SpectrumValidation", "Z_MAX", "BIAS_FACTOR", "KS_CRIT",
           "ATOM_TOL"]

#: |z| above which a moment is inconsistent (4σ: a family of a few comparisons stays < 1e-3
#: false alarms)
Z_MAX = 4.0
#: finite-width bias allowance, in units of eff/N times the moment: the largest MLP deviation
#: seen (tanh orthogonal, L = 10, N = 400: m1 2.3% = 0.9·L/N high) doubled; ResNet deviations
#: (N = 800: m2 0.45% high) were within one standard error, where the z part decides
BIAS_FACTOR = 2.0
#: Kolmogorov–Smirnov 5% coefficient (i.i.d. samples: conservative for eigenvalues)
KS_CRIT = 1.36
#: relative distance within which a simulated λ is an atom of the theory (float64 round-off
#: of N·L products is ~1e-13; 1e-8 leaves room and is far below any continuous feature)
ATOM_TOL = 1e-8


@dataclass(frozen=True, eq=False)
class SpectrumValidation:
    """Theory, simulation and their comparison.

    Attributes
    ----------
    moments : dict
        ``{"m1": {...}, "m2": {...}}`` with ``theory``, ``simulation``, ``stderr``, ``z``,
        ``bias_allowance``, ``consistent``.
    ks : dict
        ``statistic``, ``n``, ``threshold``, ``consistent``.
    largest_singular_value : dict
        ``theory`` (``√λ₊``), ``simulation`` (mean over networks of the largest bulk singular
        value) and its ``stderr``: informational, finite N pulls the edge inside.
    verdict : str
        ``"consistent"``, ``"inconsistent"`` or ``"undetermined"`` (fewer than 2 networks).
    notes : tuple of str
    """

    __repr__ = short_repr

    theory: object
    simulation: object
    moments: dict
    ks: dict
    drop_top: int
    verdict: str
    notes: tuple
    largest_singular_value: dict | None = None

    def to_dict(self) -> dict:
        return {"moments": self.moments, "ks": self.ks, "drop_top": self.drop_top,
                "largest_singular_value": self.largest_singular_value,
                "verdict": self.verdict, "notes": list(self.notes),
                "theory": self.theory.to_dict()}


def validate_spectrum(activation, weight_var: float, bias_var: float, *, depth: int,
                      width: int, seeds: int = 4, arch: str = "mlp",
                      weights: str = "gaussian", seed: int | None = 0, q0: float = 1.0,
                      params=None, points: int = 400) -> SpectrumValidation:
    """Compare theory and simulation (module docstring); ``arch``: ``"mlp"``,
    ``"tarnowski-resnet"`` (``"resnet"``, deprecated) or a Network a spectrum solver covers
    (:func:`critheory.simulation.spectra.spectrum_network`, also in the activation's place),
    resolved once and handed to both.

    Examples
    --------
    >>> import critheory as ct
    >>> v = ct.validate_spectrum("relu", 2.0, 0.0, depth=4, width=64, seeds=2, weights="orthogonal")
    >>> v.verdict
    'consistent'
    """
    from critheory.simulation.spectra import (check_spectrum_args, simulate_spectrum,
                                              spectrum_network)
    from critheory.theory.spectra import jacobian_spectrum

    net = spectrum_network(activation, arch, params)

    # the simulation's arguments and budget first (and a network no solver covers): no theory
    # work for a refused run
    check_spectrum_args(weight_var, bias_var, depth, width, seeds, net, weights, seed, q0)
    th = jacobian_spectrum(net.activation, weight_var, bias_var, depth, arch=net,
                           weights=weights, q0=q0, points=points)
    input_var = q0 if th.residual else th.fixed_point
    if not th.residual and not input_var > 0:
        raise InvalidArgumentError("the fixed point is q* = 0: the simulated network would "
                                   "start at h = 0 exactly (use a bias variance > 0)")
    sim = simulate_spectrum(net, weight_var, bias_var, depth=depth, width=width,
                            seeds=seeds, weights=weights, seed=seed, input_var=input_var)
    notes = list(th.notes)
    drop = 0
    if th.outlier:
        drop = 1
        notes.append(f"the top squared singular value of each network (mean "
                     f"{sim.sq[:, 0].mean():.4g}; bulk edge {th.support[1]:.4g}) is the "
                     "outlier of a non-centred activation: removed before comparing")
    ref = th.finite_depth if th.finite_depth is not None else {"m1": th.m1, "m2": th.m2}
    L, N = th.depth, width
    # finite-width corrections: O(1/N) per layer of an MLP, accumulated over L layers; O(1/(NL))
    # per block of a ResNet (Var W = σ_w²/(NL)), O(c/N) in all
    eff = max(1.0, float(th.c)) if th.residual else float(L)
    moments = {}
    for k, key in ((1, "m1"), (2, "m2")):
        vals = sim.moments(k, drop)
        mean = float(vals.mean())
        se = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else None
        t = float(ref[key])
        allow = BIAS_FACTOR * eff / N * abs(t)
        z = (mean - t) / se if se and se > 0 else None
        ok = None if se is None else abs(mean - t) <= Z_MAX * se + allow
        moments[key] = {"theory": t, "simulation": mean, "stderr": se, "z": z,
                        "bias_allowance": allow, "consistent": ok}
    pooled = sim.pooled(drop)
    for a, mass in th.atoms:
        if mass * pooled.size < 1.0:
            continue    # an atom lighter than one sample: nothing of the sample belongs to it
        # an atom is hit up to rounding (the zero singular values of a ReLU network are
        # ~1e-30, the unit ones of an orthogonal linear network 1 ± 1e-15)
        pooled[np.abs(pooled - a) <= ATOM_TOL * max(1.0, abs(a))] = a
    n = pooled.size
    # float64 resolution of the SVD: a singular value below ~N·eps·σ_max is round-off (its
    # computed value sits near that floor whatever the true one); the CDF is compared only at
    # and above the floor (the *number* of values below it is still compared, through the
    # empirical CDF at the first point above)
    floor = float((N * np.finfo(float).eps * np.sqrt(max(pooled.max(), 0.0))) ** 2)
    below = float(np.mean(pooled < floor))
    u = np.unique(pooled)
    u = u[(u >= floor) | np.isin(u, [a for a, _ in th.atoms])]
    if u.size == 0:
        u = np.unique(pooled)[-1:]
    Fn_hi = np.searchsorted(pooled, u, "right") / n
    Fn_lo = np.searchsorted(pooled, u, "left") / n
    D = float(max(np.max(np.abs(Fn_hi - th.cdf(u))),
                  np.max(np.abs(Fn_lo - th.cdf(u, left=True)))))
    if below > 0:
        notes.append(f"{below:.2%} of the simulated squared singular values lie below the "
                     f"float64 resolution of the SVD, (N eps sigma_max)^2 = {floor:.2g}: "
                     "their values are round-off; the KS distance compares the CDF from there "
                     f"up (theory mass below it: {float(th.cdf(floor)):.3g})")
    edge = BIAS_FACTOR * eff / N + 2.0 * N ** (-2.0 / 3.0)
    if th.residual:
        edge += 1.0 / L
        notes.append("the density test compares the depth-L network with the large-L law: "
                     "O(1/L) allowed")
    thr = KS_CRIT / np.sqrt(n) + edge
    ks = {"statistic": D, "n": int(n), "threshold": float(thr), "consistent": bool(D <= thr),
          "resolution_floor": floor, "fraction_below_floor": below}
    # the largest bulk singular value: informational (finite N pulls it inside by O(N^{-2/3}))
    top = sim.sq[:, drop]
    largest = {"theory": th.largest_singular_value,
               "simulation": float(np.sqrt(top).mean()),
               "stderr": float(np.sqrt(top).std(ddof=1) / np.sqrt(top.size))
               if top.size > 1 else None}
    if any(m["consistent"] is None for m in moments.values()):
        verdict = "undetermined"
        notes.append("one network: no standard error (use seeds >= 2)")
    elif all(m["consistent"] for m in moments.values()) and ks["consistent"]:
        verdict = "consistent"
    else:
        verdict = "inconsistent"
    notes.append(f"finite width N = {N}: moments allowed a bias of {BIAS_FACTOR:g}·{eff:g}/N "
                 "(MLP: L/N; ResNet: max(1, c)/N), the edges are smeared over O(N^(-2/3))")
    return SpectrumValidation(th, sim, moments, ks, drop, verdict, tuple(notes), largest)


def plot_spectrum(theory, path, simulation=None) -> str:
    """Theory density (and atoms, as vertical bars of their mass) over the histogram of the
    simulated squared singular values (density-normalized, atoms excluded); drawing only."""
    from critheory.io.plots import check_path, figure, save

    check_path(path)
    fig, ax = figure(figsize=(5.0, 3.6))
    if simulation is not None:
        lam = simulation.sq.ravel()
        for a, _ in theory.atoms:
            lam = lam[np.abs(lam - a) > ATOM_TOL * max(1.0, abs(a))]
        if lam.size:
            # the range of the bulk (an outlier of a ReLU ResNet would squash it)
            hi = max(theory.support[1], float(np.quantile(lam, 0.99))) * 1.15
            w = np.full(lam.size, 1.0 / simulation.sq.size)
            ax.hist(lam, bins=80, range=(0.0, hi), weights=w * 80 / hi, color="0.75",
                    label=f"simulation (N = {simulation.width}, {simulation.seeds} nets)")
    if theory.x.size:
        ax.plot(theory.x, theory.y, "C0-", lw=1.5, label="free probability")
    for a, m in theory.atoms:
        ax.axvline(a, color="C3", lw=1.0, ls="--", label=f"atom {m:.3g} at {a:.3g}")
    ax.set_xlabel(r"squared singular value $\lambda$ of $J$")
    ax.set_ylabel("density")
    t = theory
    ax.set_title(f"{t.activation}, {t.arch}, {t.weights}, L = {t.depth}: "
                 f"m1 = {t.m1:.3g}, {t.isometry.verdict}", fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path)
