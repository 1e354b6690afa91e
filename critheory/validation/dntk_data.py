"""The dNTK and the ddNTK of type II on several inputs of finite networks against their
leading-order recursions: Student-t scores per entry of P, Q (and R, S, T, U for a smooth
activation) and a Bonferroni verdict.

The measurement is :func:`critheory.simulation.dntk_data.measure_dntk_data` (exact derivatives of
S networks on m inputs, the last layer), the theory
:func:`critheory.theory.ntk.dntk_data.dntk_data_statistics`. As in
:mod:`critheory.validation.dntk`: one width tests ``n × mean`` against the leading order (exact
at layer 2), two widths extrapolate it linearly in 1/n (:func:`~critheory.validation.dntk.extrapolate`,
Welch degrees of freedom).

Examples
--------
>>> c = compare_dntk_data("tanh", 1.0, 0.1, [[1.0, 0.0], [0.6, 0.8]], widths=(4,), depth=2,
...                       networks=400, seed=2)
>>> c.t["P"].shape, c.decision().verdict         # layer 2: the leading order is exact
((2, 2, 2, 2), 'consistent')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.common.jsonable import jsonable
from critheory.common.reprs import short_repr
from critheory.errors import InvalidArgumentError

__all__ = ["DNTKDataComparison", "compare_dntk_data"]


@dataclass(frozen=True, eq=False)
class DNTKDataComparison:
    """Measured against predicted P, Q (R, S, T, U) at the last layer (:func:`compare_dntk_data`).

    Attributes
    ----------
    widths : tuple of int
    networks, depth : int
    predicted, measured, stderr, t : dict of ``"P"``, ``"Q"`` (``"R"``, ``"S"``, ``"T"``, ``"U"``) -> ndarray (m, m, m, m)
        ``measured``: ``n × mean`` (one width) or its 1/n extrapolation (two).
    dof : float
        Degrees of freedom of the scores (the smallest).

    Examples
    --------
    >>> c = compare_dntk_data("tanh", 1.0, 0.1, [[1.0]], widths=(4,), depth=2, networks=50)
    >>> sorted(c.to_dict())[:3]
    ['depth', 'dof', 'measured']
    """

    __repr__ = short_repr

    widths: tuple
    networks: int
    depth: int
    predicted: dict
    measured: dict
    stderr: dict
    t: dict
    dof: float

    def decision(self, alpha: float = 0.01):
        """The Bonferroni verdict over every entry (:func:`critheory.validation.stats.decide`)."""
        from critheory.validation.stats import decide

        return decide([self.t[k] for k in sorted(self.t)], alpha, dof=self.dof)

    def to_dict(self, alpha: float = 0.01) -> dict:
        """JSON-ready dict with the verdict."""
        d = self.decision(alpha)
        return jsonable({"widths": list(self.widths), "networks": self.networks,
                         "depth": self.depth, "predicted": self.predicted,
                         "measured": self.measured, "stderr": self.stderr, "t": self.t,
                         "dof": self.dof, "verdict": d.verdict, "t_crit": d.crit})


def compare_dntk_data(activation, weight_var: float, bias_var: float, inputs, *, widths,
                      depth: int, networks: int, lambda_b=1.0, lambda_w=1.0,
                      seed: int = 0) -> DNTKDataComparison:
    """Measure P, Q (R, S, T, U for a smooth activation) at layer ``depth`` at one or two widths and score them (module docstring).

    Parameters
    ----------
    activation : str
        A smooth activation for m > 1 (an MLP).
    weight_var, bias_var : float
    inputs : array_like (m, n0)
    widths : tuple of one or two int
        Two widths ``n1 < n2``: extrapolated in 1/n.
    depth, networks : int
    lambda_b, lambda_w : float or array (L,)
    seed : int
        Width n uses seed ``seed + n``.

    Returns
    -------
    DNTKDataComparison

    Examples
    --------
    >>> c = compare_dntk_data("tanh", 1.0, 0.0, [[1.0]], widths=(4, 8), depth=2, networks=50)
    >>> c.widths
    (4, 8)
    """
    from critheory.simulation.dntk_data import measure_dntk_data
    from critheory.theory.ntk.dntk_data import dntk_data_statistics
    from critheory.validation.dntk import extrapolate
    from critheory.validation.stats import welch_dof

    widths = tuple(int(n) for n in widths)
    if len(widths) not in (1, 2):
        raise InvalidArgumentError(f"widths must hold one or two widths, got {widths}")
    th = dntk_data_statistics("mlp", activation, weight_var, bias_var, inputs, depth=depth,
                              lambda_b=lambda_b, lambda_w=lambda_w)
    ms = [measure_dntk_data(activation, weight_var, bias_var, inputs, width=n, depth=depth,
                            networks=networks, lambda_b=lambda_b, lambda_w=lambda_w,
                            seed=seed + n) for n in widths]
    pred, meas, se, t = {}, {}, {}, {}
    dofs = []
    names = [k for k in ("P", "Q", "R", "S", "T", "U") if k.lower() in ms[0].samples]
    for k in names:
        ys = [m.mean(k.lower()) * n for m, n in zip(ms, widths)]
        ss = [m.stderr(k.lower()) * n for m, n in zip(ms, widths)]
        if len(widths) == 1:
            y, e = ys[0], ss[0]
            dofs.append(float(networks - 1))
        else:
            n1, n2 = widths
            y, e = extrapolate(ys[0], ss[0], n1, ys[1], ss[1], n2)
            dofs.append(float(np.min(welch_dof(n2 * ss[1] / (n2 - n1), n1 * ss[0] / (n2 - n1),
                                               networks - 1, networks - 1))))
        p = getattr(th, k)[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            t[k] = np.where(e > 0, (y - p) / e, np.where(y == p, 0.0, np.inf))
        pred[k], meas[k], se[k] = p, y, e
    return DNTKDataComparison(widths, int(networks), int(depth), pred, meas, se, t, min(dofs))
