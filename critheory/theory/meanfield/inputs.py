"""The point of the critical line that is critical *for given inputs* (MLP).

The critical point of an activation with a half-stable fixed point (GELU, SiLU/swish,
QuickGELU ``x·σ(1.702x)``) is critical only for inputs that reach its fixed point ``K*_c``:
it attracts from above and repels below. Unit-norm inputs (``q0 = |x|²/N₀ = 1``) start at
``K¹ = σ_b² + σ_w² q0`` (2.18 for QuickGELU, against ``K*_c`` = 4.94), flow to the ordered fixed
point below and the APJN collapses (``J^{1,64}`` = 0.13 for QuickGELU, 0.22 for GELU, 0.011
for SiLU). The critical line ``χ_J(K*) = 1`` is parametrized by its fixed point [DHG §2]:

    ``σ_w²(K*) = 1/E_{K*}[φ'²]``,    ``σ_b²(K*) = K* − σ_w² E_{K*}[φ²]``,

and :func:`critical_point_for_inputs` chooses on it, for inputs of second moment ``q0``:

1. the point whose fixed point *is* the input kernel, ``K* = K¹``: with
   ``K¹ = σ_b² + σ_w² q0`` and the fixed-point equation this is ``E_{K*}[φ²] = q0``; it is
   used when it exists with ``σ_b² >= 0`` and is stable (``χ_∥(K*) <= 1``, so that the
   finite-width fluctuations of the kernel die out instead of growing like ``χ_∥^l``);
2. otherwise the activation's own critical point unless it is half-stable (tanh, erf: the
   K*=0 class attracts every input; its APJN follows the critical power law);
3. otherwise a stable line point (``χ_∥ <= 1``, ``σ_b² >= 0``):

   a. the one the inputs *reach* with the flattest APJN: the stable line points are scanned
      and the one with the smallest ``max_{l <= depth} |log J^{1,l}|`` (the mean-field APJN
      from ``K¹``, exact iteration of the kernel map; the smallest K* among those within 1e-3
      of the flattest) is refined on a finer grid (rule ``"reached"``). It is used when it is
      flat to :data:`FLAT_EXACT` (linear, abs, SELU, cos: ``K¹`` is at or next to its K*);
   b. otherwise the *input layer* puts the inputs on the fixed point (rule ``"input layer"``):
      the hidden layers at the line point with the smallest ``χ_∥`` (the most stable one: the
      kernel's finite-width fluctuations die fastest, like ``χ_∥^l``), the input layer at
      ``σ_w,in² = (K* − σ_b²)/q0`` so that ``K¹ = σ_b² + σ_w,in² q0 = K*``. Its mean-field
      ``J^{1,l}`` is 1 at every depth (no horizon). This is the case of the half-stable
      class: the stable branch starts at ``K*_c > K¹``, and every line point reached from
      ``K¹`` gets there only after a transient of hundreds of layers (at l = 64 the kernel is
      at about half its K*) along which ``χ_J != 1``; its flatness over 64 layers is a
      balance of that transient (SiLU: 16 % off at best; GELU's J^{1,128}: 1.18). It is
      used where ``χ_∥`` has its minimum inside the scanned range (else 3a's point is kept).

   At the K*=K¹ point of a half-stable activation (``K¹ < K*_c``) ``χ_∥ > 1`` (GELU at
   q0 = 1: 1.022 per layer), so 3 is the common case there.

It also says whether the activation's own critical point is reached from these inputs and at
which depth its APJN is off by more than 10 % (``depth_lost``).

Everything uses the expectation engine (:mod:`critheory.expectations`); ``tests/test_torch.py``
checks the result against mpmath quadrature and against the APJN of torch networks.

Examples
--------
>>> p = critical_point_for_inputs("gelu", 1.0, depth=64)
>>> round(p.weight_var, 3), round(p.bias_var, 3), round(p.input_weight_var, 2), p.rule
(1.957, 0.388, 13.42, 'input layer')
>>> p.critical_reached, p.depth_lost
(False, 6)
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from critheory.activation import Activation
from critheory.common.jsonable import jsonable
from critheory.errors import CritheoryError, InvalidArgumentError
from critheory.expectations import expect
from critheory.common import limits
from critheory.common.reprs import dataclass_dict, short_repr

__all__ = ["InputPoint", "critical_point_for_inputs", "critical_point_reach",
           "CriticalityWarning", "InputWarning", "InputWarningKind", "warnings_for",
           "reach_warning", "MAX_DEPTH", "FLAT_TOL", "FLAT_EXACT"]

#: the depth horizon of the scan at most (each layer is one vectorized expectation per map)
MAX_DEPTH = limits.MAX_DEPTH_INPUTS
#: |J^{1,l} − 1| beyond this fraction "matters" (depth_lost)
FLAT_TOL = 0.1
#: a reached line point with ``max_l |log J^{1,l}|`` at most this keeps the network's σ_w² in the
#: input layer (rule "reached"); beyond it the input layer gets its own (rule "input layer")
FLAT_EXACT = 1e-3
_GRID = np.logspace(-3, 3.5, 131)


class CriticalityWarning(UserWarning):
    """A critical initialization that the inputs will not see as critical.

    Examples
    --------
    >>> issubclass(CriticalityWarning, UserWarning)
    True
    """


@dataclass(frozen=True)
class InputPoint:
    """A point of the critical line chosen for inputs of second moment ``q0``.

    Attributes
    ----------
    activation : str
    q0 : float
        Input second moment per coordinate, ``|x|²/N₀``.
    weight_var, bias_var : float
        σ_w², σ_b² of the layers after the input layer (χ_J(K*) = 1 at them).
    fixed_point : float
        K* of this point.
    input_kernel : float
        ``K¹ = σ_b² + σ_w,in² q0``.
    chi_parallel : float
        χ_∥ at K* (<= 1: stable).
    rule : str
        ``"K*=K1"`` (the fixed point is the input kernel), ``"critical"`` (the activation's
        critical point, reached from these inputs), ``"reached"`` (a line point the inputs
        flow to) or ``"input layer"`` (the input layer's own σ_w² puts the inputs on K*); see
        the module docstring.
    depth : int
        The depth horizon of the choice.
    apjn_max_log : float
        ``max_{l <= depth} |log J^{1,l}|`` at this point from K¹ (mean field; 0 for K*=K1).
    critical_point : tuple or None
        (σ_w², σ_b², K*) of the activation's own critical point, if it has one at K* > 0.
    critical_reached : bool or None
        Whether K¹ at the critical point comes within ``FLAT_TOL·max(K*, K¹)`` of its K* by
        ``depth`` (None without a critical point at finite K*).
    depth_lost : int or None
        At the critical point, from these inputs: the first depth ``l <= depth`` at which
        ``|J^{1,l} − 1| > FLAT_TOL`` (None if it stays within it).
    input_weight_var : float
        σ_w,in² of the input layer (fan-in ``N₀``): ``weight_var`` except for the rule
        ``"input layer"``, where it is ``(K* − σ_b²)/q0``.
    notes : tuple of str
    """

    activation: str
    q0: float
    weight_var: float
    bias_var: float
    fixed_point: float
    input_kernel: float
    chi_parallel: float
    rule: str
    depth: int
    apjn_max_log: float
    critical_point: tuple | None
    critical_reached: bool | None
    depth_lost: int | None
    input_weight_var: float
    notes: tuple = ()

    def __repr__(self) -> str:
        s = (f"InputPoint({self.activation}, q0={self.q0:g}, rule={self.rule!r}, "
             f"weight_var={self.weight_var:.6g}, bias_var={self.bias_var:.6g}")
        if self.input_weight_var != self.weight_var:
            s += f", input_weight_var={self.input_weight_var:.6g}"
        return s + f", K*={self.fixed_point:.6g})"

    def weight_std(self, fan_in: int) -> float:
        """The standard deviation of the weights of a layer after the input layer with
        ``fan_in`` inputs, ``sqrt(σ_w²/fan_in)`` (``torch.nn.init.normal_(w, std=...)``)."""
        return math.sqrt(self.weight_var / _fan_in(fan_in))

    def input_weight_std(self, fan_in: int) -> float:
        """The standard deviation of the input layer's weights, ``sqrt(σ_w,in²/fan_in)``."""
        return math.sqrt(self.input_weight_var / _fan_in(fan_in))

    @property
    def bias_std(self) -> float:
        """``sqrt(σ_b²)``."""
        return math.sqrt(self.bias_var)

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})


def _fan_in(fan_in) -> int:
    if isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) or fan_in < 1:
        raise InvalidArgumentError(f"fan_in must be an integer >= 1, got {fan_in!r}")
    return int(fan_in)


class InputWarningKind(enum.Enum):
    """Why a point is not critical for the inputs it was chosen for."""

    #: the activation's own critical point: the inputs do not reach its fixed point
    CRITICAL_NOT_REACHED = "critical point not reached"
    #: even the flattest reachable line point leaves J^{1,l} off by more than FLAT_TOL
    NOT_FLAT = "not flat"


@dataclass(frozen=True)
class InputWarning:
    """One warning about a point chosen for inputs of second moment ``q0``.

    Attributes
    ----------
    kind : InputWarningKind
    q0 : float
    depth : int
        The depth horizon of the judgement.
    depth_lost : int or None
        ``CRITICAL_NOT_REACHED``: the first depth at which ``J^{1,l}`` at the critical point is
        off by more than :data:`FLAT_TOL` (None if it stays within it).
    apjn_off : float or None
        ``NOT_FLAT``: ``max_{l <= depth} J^{1,l}`` off from 1 by this fraction
        (``expm1(apjn_max_log)``).
    """

    __repr__ = short_repr
    to_dict = dataclass_dict

    kind: InputWarningKind
    q0: float
    depth: int
    depth_lost: int | None = None
    apjn_off: float | None = None

    def text(self, subject: str = "this point") -> str:
        """The warning in words (``subject``: what ``NOT_FLAT`` speaks of)."""
        if self.kind is InputWarningKind.NOT_FLAT:
            return (f"even {subject} leaves J^(1,l) off by up to {self.apjn_off:.0%} within "
                    f"{self.depth} layers")
        return ("the activation's critical point is not reached from these inputs (they flow "
                "to the ordered phase" + ("" if self.depth_lost is None else
                                          f"; J^(1,l) off by more than 10 % from layer "
                                          f"{self.depth_lost}") + ")")


def warnings_for(point: InputPoint) -> tuple[InputWarning, ...]:
    """The warnings a chosen point carries: the activation's critical point is not reached
    from the inputs (``CRITICAL_NOT_REACHED``), and the point is a ``"reached"`` one whose
    ``J^{1,l}`` is still off by more than :data:`FLAT_TOL` within its depth (``NOT_FLAT``)."""
    out = []
    if point.critical_point is not None and point.critical_reached is False:
        out.append(InputWarning(InputWarningKind.CRITICAL_NOT_REACHED, point.q0, point.depth,
                                depth_lost=point.depth_lost))
    if point.rule == "reached" and point.apjn_max_log > math.log1p(FLAT_TOL):
        out.append(InputWarning(InputWarningKind.NOT_FLAT, point.q0, point.depth,
                                apjn_off=math.expm1(point.apjn_max_log)))
    return tuple(out)


def reach_warning(activation, q0: float = 1.0, *, depth: int = 64, params=None
                  ) -> InputWarning | None:
    """``CRITICAL_NOT_REACHED`` where inputs of second moment ``q0`` do not reach the fixed
    point of the activation's (MLP) critical point within ``depth`` layers, else None (the
    activation's own point kept, without choosing another: :func:`critical_point_reach`)."""
    reached, lost = critical_point_reach(activation, q0, depth=depth, params=params)
    if reached is not False:
        return None
    return InputWarning(InputWarningKind.CRITICAL_NOT_REACHED, float(q0), int(depth),
                        depth_lost=lost)


def _line(act, K):
    """σ_w², σ_b², χ_∥ of the critical-line points with fixed points K (vectorized)."""
    e2 = np.asarray(expect(act, "phi2", K).value, float)
    d2 = np.asarray(expect(act, "dphi2", K).value, float)
    pd = np.asarray(expect(act, "phi_d2phi", K).value, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        sw = 1.0 / d2
        sb = K - sw * e2
        chi_par = sw * (d2 + pd)
    return sw, sb, chi_par


def _flow(act, sw, sb, q0: float, depth: int):
    """Mean-field iteration from K¹ = σ_b² + σ_w² q0 (vectorized over points): the kernels
    K^1..K^{depth} and log J^{1,l} for l = 1..depth."""
    sw, sb = np.asarray(sw, float), np.asarray(sb, float)
    K = sb + sw * q0
    Ks, logJ = [K], [np.zeros_like(K)]
    tiny = np.finfo(float).tiny
    for _ in range(depth - 1):
        Kc = np.maximum(K, tiny)
        logJ.append(logJ[-1] + np.log(sw * np.asarray(expect(act, "dphi2", Kc).value, float)))
        K = sb + sw * np.asarray(expect(act, "phi2", Kc).value, float)
        Ks.append(K)
    return np.array(Ks), np.array(logJ)


def _k1_point(act, q0: float):
    """The K* with E_{K*}[φ²] = q0 (every root on the grid, refined), or []."""
    from critheory.theory.roots import brent

    f = np.asarray(expect(act, "phi2", _GRID).value, float) - q0
    roots = []
    for i in np.nonzero(np.sign(f[:-1]) * np.sign(f[1:]) < 0)[0]:
        roots.append(brent(lambda k: float(expect(act, "phi2", k).value) - q0, _GRID[i],
                            _GRID[i + 1], xtol=1e-15, rtol=1e-15))
    return roots


def _critical_reach(act, q0: float, depth: int):
    """(critical point (σ_w², σ_b², K*) or None, half-stable?, reached?, depth lost)."""
    try:
        from critheory.theory.meanfield.criticality import critical_points
        from critheory.theory.meanfield.maps import architecture

        pts = [p for p in critical_points(architecture("mlp", act))
               if p.fixed_point is not None and np.isfinite(p.weight_var)]
    except CritheoryError:
        pts = []
    if not pts:
        return None, False, None, None
    c = pts[0]
    Ks, logJ = _flow(act, np.array([c.weight_var]), np.array([c.bias_var]), q0, depth)
    reached = bool(abs(Ks[-1, 0] - c.fixed_point) <= FLAT_TOL * max(c.fixed_point, Ks[0, 0]))
    off = np.nonzero(np.abs(np.expm1(logJ[:, 0])) > FLAT_TOL)[0]
    lost = int(off[0]) + 1 if off.size else None
    return ((float(c.weight_var), float(c.bias_var), float(c.fixed_point)),
            c.half_stable, reached, lost)


def critical_point_reach(activation, q0: float = 1.0, *, depth: int = 64, params=None
                         ) -> tuple[bool | None, int | None]:
    """Whether inputs of second moment ``q0`` reach the fixed point of the activation's (MLP)
    critical point within ``depth`` layers, and the first depth at which ``J^{1,l}`` there is
    off by more than :data:`FLAT_TOL` (None, None without a critical point at finite K*)."""
    _, _, reached, lost = _critical_reach(Activation.get(activation, params), float(q0),
                                          int(depth))
    return reached, lost


def critical_point_for_inputs(activation, q0: float = 1.0, *, depth: int = 64, params=None
                              ) -> InputPoint:
    """The point of an MLP's critical line that is critical for inputs of second moment
    ``q0`` (see the module docstring for the rule).

    Parameters
    ----------
    activation : str, sympy expression or Activation
    q0 : float
        ``|x|²/N₀`` of the inputs (1 for unit-norm inputs in the ``x·x/N₀`` convention).
    depth : int
        Depth horizon (the network's number of layers): the flatness of ``J^{1,l}`` is judged
        for ``l <= depth``, at most :data:`MAX_DEPTH`.
    params : mapping, optional
        Parameters of the activation.

    Returns
    -------
    InputPoint

    Raises
    ------
    InvalidArgumentError
        Bad q0 or depth; or no stable point of the critical line with σ_b² >= 0 is reached
        from these inputs (the message says what the line offers).

    Examples
    --------
    >>> import critheory as ct
    >>> p = ct.critical_point_for_inputs("tanh", q0=1.0)
    >>> p.weight_var, p.bias_var
    (1.0, 0.0)
    """
    act = Activation.get(activation, params)
    if isinstance(q0, bool) or not isinstance(q0, (int, float, np.floating)) or \
            not (math.isfinite(q0) and q0 > 0):
        raise InvalidArgumentError(f"q0 must be a finite number > 0, got {q0!r}")
    q0 = float(q0)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or \
            not 2 <= depth <= MAX_DEPTH:
        raise InvalidArgumentError(f"depth must be an integer in [2, {MAX_DEPTH}], got "
                                   f"{depth!r}")
    depth = int(depth)
    notes = []
    crit, half_stable, reached, lost = _critical_reach(act, q0, depth)

    def pack(sw, sb, K, chi_par, rule, worst, sw_in=None):
        sw_in = float(sw if sw_in is None else sw_in)
        return InputPoint(activation=act.name, q0=q0, weight_var=float(sw), bias_var=float(sb),
                          fixed_point=float(K), input_kernel=float(sb + sw_in * q0),
                          chi_parallel=float(chi_par), rule=rule, depth=depth,
                          apjn_max_log=float(worst), critical_point=crit,
                          critical_reached=reached, depth_lost=lost, input_weight_var=sw_in,
                          notes=tuple(notes))

    # 1. K* = K¹
    for K in _k1_point(act, q0):
        sw, sb, chi_par = (float(v[0]) for v in _line(act, np.array([K])))
        if sb >= 0 and chi_par <= 1 + 1e-9 and np.isfinite(sw):
            return pack(sw, sb, K, chi_par, "K*=K1", 0.0)
        notes.append(f"the line point with K* = K1 = {K:.6g} is "
                     + ("unstable (chi_par = {:.6g} > 1: finite-width fluctuations of the kernel "
                        "grow like chi_par^l)".format(chi_par) if sb >= 0 else
                        f"out of reach (its bias variance would be {sb:.3g} < 0)"))
    # 2. the activation's critical point, unless it is half-stable
    if crit is not None and not half_stable:
        sw, sb, K = crit
        with np.errstate(all="ignore"):
            _, logJ = _flow(act, np.array([sw]), np.array([sb]), q0, depth)
        return pack(sw, sb, K, 1.0, "critical", float(np.max(np.abs(logJ[:, 0]))))
    # 3. the stable line point reached with the flattest APJN
    sw, sb, chi_par = _line(act, _GRID)
    ok = np.isfinite(sw) & (sw > 0) & (sb >= 0) & (chi_par <= 1 + 1e-9)
    if not ok.any():
        raise InvalidArgumentError(
            f"{act.name}: no stable point of the critical line with bias_var >= 0 (chi_par <= 1)"
            f" for K* in [{_GRID[0]:g}, {_GRID[-1]:g}]: no initialization keeps inputs of "
            f"q0 = {q0:g} critical" + (f"; {notes[0]}" if notes else ""))
    idx = np.nonzero(ok)[0]
    with np.errstate(all="ignore"):
        _, logJ = _flow(act, sw[idx], sb[idx], q0, depth)
        worst = np.nanmax(np.abs(logJ), axis=0)
    worst[~np.isfinite(worst)] = np.inf
    # the flattest; among equally flat ones (within 1e-3) the smallest K*, the nearest the
    # inputs (a huge K* is flat in mean field only because every unit saturates)
    best = int(np.nonzero(worst <= worst.min() + 1e-3)[0][0])
    # refine between the neighbours of the best grid point
    i = idx[best]
    flat = (sw[i], sb[i], _GRID[i], chi_par[i], worst[best])
    fine = _neighbourhood(i)
    fsw, fsb, fchi = _line(act, fine)
    fok = np.isfinite(fsw) & (fsw > 0) & (fsb >= 0) & (fchi <= 1 + 1e-9)
    if fok.any():
        with np.errstate(all="ignore"):
            _, flog = _flow(act, fsw[fok], fsb[fok], q0, depth)
            fworst = np.nanmax(np.abs(flog), axis=0)
        fworst[~np.isfinite(fworst)] = np.inf
        j = int(np.nonzero(fworst <= fworst.min() + 1e-3)[0][0])
        if fworst[j] <= worst[best]:
            k = np.nonzero(fok)[0][j]
            flat = (fsw[k], fsb[k], fine[k], fchi[k], fworst[j])
    if flat[4] <= FLAT_EXACT:
        return pack(*flat[:4], "reached", flat[4])
    # 3b. the most stable line point, the inputs put on its fixed point by the input layer
    stable = _most_stable(act, sw, sb, chi_par, ok)
    if stable is None:
        return pack(*flat[:4], "reached", flat[4])
    ssw, ssb, sK, schi = stable
    sw_in = (sK - ssb) / q0
    with np.errstate(all="ignore"):
        _, slog = _flow(act, np.array([ssw]), np.array([ssb]), (sK - ssb) / ssw, depth)  # K1 = K*
    notes.append(f"the flattest line point reached from K1 ({flat[0]:.6g}, {flat[1]:.6g}) "
                 f"leaves J^(1,l) off by up to {math.expm1(flat[4]):.1%} within {depth} layers "
                 f"(a transient towards its K* = {flat[2]:.4g}); the input layer's own weight "
                 f"variance {sw_in:.6g} puts the inputs on the fixed point instead")
    return pack(ssw, ssb, sK, schi, "input layer", float(np.max(np.abs(slog[:, 0]))), sw_in)


def _neighbourhood(i: int, n: int = 41) -> np.ndarray:
    """A finer geometric grid between the neighbours of grid point ``i``."""
    return np.geomspace(_GRID[max(i - 1, 0)], _GRID[min(i + 1, len(_GRID) - 1)], n)


def _most_stable(act, sw, sb, chi_par, ok):
    """(σ_w², σ_b², K*, χ_∥) of the stable line point with the smallest χ_∥, refined on a finer
    grid, or None where the minimum is at the end of the scanned range (χ_∥ still falling:
    no finite most stable point)."""
    c = np.where(ok, chi_par, np.inf)
    i = int(np.argmin(c))
    if not np.isfinite(c[i]) or i == len(_GRID) - 1:
        return None
    fine = _neighbourhood(i)
    fsw, fsb, fchi = _line(act, fine)
    fc = np.where(np.isfinite(fsw) & (fsw > 0) & (fsb >= 0) & (fchi <= 1 + 1e-9), fchi, np.inf)
    k = int(np.argmin(fc))
    if not fc[k] <= c[i]:
        return float(sw[i]), float(sb[i]), float(_GRID[i]), float(chi_par[i])
    return float(fsw[k]), float(fsb[k]), float(fine[k]), float(fchi[k])
