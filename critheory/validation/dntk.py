"""The dNTK and ddNTK of finite networks against their leading-order recursions: per-layer
Student-t scores and a Bonferroni verdict.

The measurement is :func:`critheory.simulation.dntk.measure_dntk` (exact derivatives of S
networks), the theory :func:`critheory.theory.ntk.dntk.dntk_fields` at the same rates; the
statistics are the shared ones of :mod:`critheory.validation.stats`.

The theory gives the coefficient of ``1/n``: ``n E[dĤ_{100} z_1] → P`` etc. as ``n → ∞``, with a
remainder of relative order ``L/n``. Two routes:

* one width (``widths=(n,)``): the score ``t = (n·mean − P)/(n·se)`` tests the leading order
  itself, which is **exact at layer 2** (every sum over the layer below is then exact: the NTK
  of layer 1 is diagonal and its dNTK zero) and carries the ``O(L/n)`` remainder beyond;
* two widths ``n₁ < n₂``: the measured ``y(n) = n·mean`` is extrapolated linearly in ``1/n``,
  ``y(∞) = (n₂y₂ − n₁y₁)/(n₂ − n₁)`` with standard error ``√(n₂²se₂² + n₁²se₁²)/(n₂ − n₁)``
  (Welch–Satterthwaite degrees of freedom), which removes the ``1/n`` remainder and leaves
  ``O(1/n²)``.

Examples
--------
>>> c = compare_dntk("tanh", 1.0, 0.0, widths=(8,), depth=2, networks=400, seed=2)
>>> c.layers, sorted(c.predicted)[:3]
((2,), ['P', 'Q', 'R'])
>>> c.decision().verdict                      # layer 2: the leading order is exact
'consistent'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError

__all__ = ["DNTKComparison", "compare_dntk", "extrapolate", "SAMPLE_OF"]

#: theory coefficient -> the measured sample whose n × mean estimates it
SAMPLE_OF = {"P": "p", "Q": "q", "R": "r", "S": "s", "T": "t", "U": "u"}


def extrapolate(y1, se1, n1: int, y2, se2, n2: int):
    """``y(∞)`` and its standard error from ``y = a + b/n`` at two widths (module docstring).

    >>> float(extrapolate(3.0, 0.1, 10, 2.5, 0.1, 20)[0])
    2.0
    """
    if not n2 > n1:
        raise InvalidArgumentError(f"extrapolation needs n2 > n1, got {n1}, {n2}")
    a = (n2 * np.asarray(y2, dtype=float) - n1 * np.asarray(y1, dtype=float)) / (n2 - n1)
    se = np.sqrt((n2 * np.asarray(se2)) ** 2 + (n1 * np.asarray(se1)) ** 2) / (n2 - n1)
    return a, se


@dataclass(frozen=True, eq=False)
class DNTKComparison:
    """Measured against predicted leading coefficients per layer (:func:`compare_dntk`).

    Attributes
    ----------
    layers : tuple of int
    widths : tuple of int
    networks : int
        Networks per width.
    predicted, measured, stderr, t, dof : dict of name -> ndarray (len(layers),)
        Per coefficient (``P`` … ``U``; the ddNTK only where it is defined): the theory, the
        measured (or extrapolated) ``n × mean``, its standard error, the score and its degrees
        of freedom.
    activation : str
    """

    __repr__ = short_repr

    layers: tuple
    widths: tuple
    networks: int
    predicted: dict
    measured: dict
    stderr: dict
    t: dict
    dof: dict
    activation: str

    def decision(self, alpha: float = 0.01):
        """The Bonferroni verdict over every score (:func:`critheory.validation.stats.decide`,
        at the smallest degrees of freedom)."""
        from critheory.validation.stats import decide

        names = sorted(self.t)
        dof = min(float(np.nanmin(self.dof[k])) for k in names)
        return decide([self.t[k] for k in names], alpha, dof=dof)

    def to_dict(self, alpha: float = 0.01) -> dict:
        d = self.decision(alpha)
        return jsonable({"layers": list(self.layers), "widths": list(self.widths),
                         "networks": self.networks, "predicted": self.predicted,
                         "measured": self.measured, "stderr": self.stderr, "t": self.t,
                         "verdict": d.verdict, "t_crit": d.crit,
                         "n_compared": d.n_compared})


def compare_dntk(activation, weight_var: float, bias_var: float, *, widths, depth: int,
                 networks: int, lambda_b=1.0, lambda_w=1.0, q0: float = 1.0, layers=None,
                 seed: int = 0) -> DNTKComparison:
    """Measure the dNTK and ddNTK at one or two widths and set them beside the theory.

    Parameters
    ----------
    activation : str or Activation
        An MLP's activation.
    weight_var, bias_var : float
    widths : sequence of one or two int
        One width: the leading order directly; two (increasing): extrapolated in ``1/n``.
    depth, networks : int
    lambda_b, lambda_w : float or array (L,)
    q0 : float
    layers : sequence of int or None
        Layers compared (default ``2..L``; layer 1 is 0 exactly on both sides).
    seed : int
        Root seed (width ``n`` uses ``seed + n``).

    Returns
    -------
    DNTKComparison

    Examples
    --------
    >>> c = compare_dntk("relu", 2.0, 0.0, widths=(8,), depth=2, networks=200, seed=1)
    >>> sorted(c.predicted)                  # the ddNTK of ReLU is not defined
    ['P', 'Q']
    """
    from critheory.blocks.registry import network
    from critheory.common.checks import check_int, check_per_layer
    from critheory.simulation.dntk import measure_dntk
    from critheory.theory.ntk.dntk import ddntk_defined, dntk_fields

    widths = tuple(check_int("width", w, 2) for w in widths)
    if len(widths) not in (1, 2) or (len(widths) == 2 and widths[1] <= widths[0]):
        raise InvalidArgumentError("widths must be one width or two increasing widths")
    L = check_int("depth", depth, 2)
    lb = check_per_layer("lambda_b", lambda_b, L)
    lw = check_per_layer("lambda_w", lambda_w, L)
    net = network("mlp", activation)
    layers = tuple(range(2, L + 1)) if layers is None else tuple(int(l) for l in layers)
    f = dntk_fields(net, float(weight_var), float(bias_var), lb, lw, q0)
    names = ["P", "Q"] + (["R", "S", "T", "U"] if ddntk_defined(net.activation) else [])
    idx = [l - 1 for l in layers]
    ms = [measure_dntk(net, weight_var, bias_var, width=n, depth=L, networks=networks, q0=q0,
                       lambda_b=lb, lambda_w=lw, layers=layers, seed=seed + n)
          for n in widths]
    pred, meas, se, t, dof = {}, {}, {}, {}, {}
    for k in names:
        smp = SAMPLE_OF[k]
        ys = [m.mean(smp) * n for m, n in zip(ms, widths)]
        ss = [m.stderr(smp) * n for m, n in zip(ms, widths)]
        if len(widths) == 1:
            y, e = ys[0], ss[0]
            d = np.full(len(layers), float(networks - 1))
        else:
            from critheory.validation.stats import welch_dof

            (n1, n2) = widths
            y, e = extrapolate(ys[0], ss[0], n1, ys[1], ss[1], n2)
            d = welch_dof(n2 * ss[1] / (n2 - n1), n1 * ss[0] / (n2 - n1), networks - 1,
                          networks - 1)
        p = f[k][idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            t[k] = np.where(e > 0, (y - p) / e, np.where(y == p, 0.0, math.inf))
        pred[k], meas[k], se[k], dof[k] = p, y, e, np.asarray(d, dtype=float)
    return DNTKComparison(layers, widths, int(networks), pred, meas, se, t, dof,
                          net.activation.name)
