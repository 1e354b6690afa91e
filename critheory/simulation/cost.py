"""Estimated seconds of a simulation, and the simulator's default APJN method chosen from them.

The APJN needs tangents: ``k = n_in + P`` columns per layer, with ``P = N`` for the exact APJN
(identity tangent) or ``P`` Hutchinson probes. Per network and layer a dense block costs

* dense sampler: ``N²`` normals and a ``N × N × k`` product;
* projected sampler: ``N k`` normals, the Gram ``XᵀX`` and ``G R`` (``4 N k²`` flops) and a
  ``k × k`` Cholesky;

plus ``O(N k)`` elementwise work on the tangents. :func:`estimate_seconds` adds these up with
the per-operation costs below, measured once (single BLAS thread, so an estimate is an upper
bound on a quiet machine with more threads) and recorded here:

    2026-12-07, 2-core shared x86-64 (AVX2, OpenBLAS 0.3.31 via numpy), load ~5,
    OPENBLAS_NUM_THREADS=1, best of 5: SFC64 normals 1.6e-8 s each; GEMM N×N×k 2.4-2.9e-11
    s/flop (N = 256..1024, k ≈ N), stacks of small products (16 × 256..1024 × 33..65)
    3.3-4.2e-11 s/flop (7.5e-11 at k = 9); tangent elementwise work ~2e-9 s per entry.

Default method (:func:`choose_probes`)
--------------------------------------
The exact APJN was the default while ``seeds·(depth − l0 + 1)·N³ <= 2e10``, and 8 probes
above: the run time jumped 112–323× between neighbouring widths (depth 100, 16 networks:
width 232 exact, 35 s under load; width 233 8 probes, 0.31 s). Now, with ``E`` the estimated
seconds of the exact APJN and ``B`` = :data:`EXACT_SECONDS`:

* ``E <= B``: exact (every setting the old rule made exact at a small cost stays exact);
* ``E > B``: Hutchinson probes, as many as fit in a target time ``B² / E`` (``B`` at the
  boundary, falling as the exact one grows), never fewer than :data:`DEFAULT_PROBES` (8) and
  fewer than ``N``. The time of the default is therefore continuous across the boundary
  (neighbouring widths, depths or network counts differ by their own cost ratio, not by the
  ratio of the two methods), and returns to 8 probes once those cost more than the target.

Every probe count at least 8 keeps the promise of the default: a Hutchinson error of relative
size ``sqrt(2/(N P))`` per network, small next to the network-to-network spread.
The exact APJN is never chosen past ``B`` seconds; when it is asked for (``probes="exact"``)
and estimated above :data:`ANNOUNCE_SECONDS`, :func:`announce_exact` says so (a
:class:`SimulationCostWarning`; one ``critheory: note:`` line on the command line).
"""
from __future__ import annotations

import warnings

__all__ = ["estimate_seconds", "choose_probes", "choose_method", "announce_exact",
           "exact_note", "SimulationCostWarning", "EXACT_SECONDS", "ANNOUNCE_SECONDS",
           "DEFAULT_PROBES", "SECONDS_PER"]

#: seconds per operation (module notes: measured 2026-12-07, single BLAS thread)
SECONDS_PER = {
    "normal": 1.6e-8,        # one standard normal (SFC64)
    "gemm_flop": 2.6e-11,    # a flop of a large product (dense sampler)
    "small_flop": 4.0e-11,   # a flop of the stacked small products (projected sampler)
    "lapack_flop": 1.0e-10,  # a flop of the stacked k × k Cholesky factorizations
    "entry": 2.0e-9,         # elementwise work per tangent entry and layer
    "neuron": 8.0e-8,        # per neuron, input and layer: φ, φ', bias, kernel, 4th moment
    "layer": 1.0e-5,         # fixed cost of one network-layer (bias draw, small arrays)
    "step_dense": 3.0e-4,    # fixed cost of one layer step of a batch (Python, dispatch)
    "step_projected": 8.0e-4,  # the same with the batched Gram factorization
}
# the projected sampler past 4k <= N only up to this many columns (choose_method)
_PROJECTED_MAX_EXTRA = 96
# a projected batch holds about this many float64 per state array (engine._BATCH_ELEMENTS)
_BATCH_ELEMENTS = 1 << 21
#: the exact APJN is the default while its estimate is at most this many seconds (the old rule,
#: seeds·(depth − l0 + 1)·N³ <= 2e10, was ~2.6 s by this model at the widths where it cut over)
EXACT_SECONDS = 2.5
#: an exact APJN asked for and estimated above this is announced
ANNOUNCE_SECONDS = 5.0
#: Hutchinson probes of the default, and its floor past the exact method
DEFAULT_PROBES = 8


class SimulationCostWarning(UserWarning):
    """A simulation estimated to take long (the exact APJN at a large width or depth)."""


def _layer_seconds(width: int, k: int, method: str, n_in: int = 1, batch: int = 1) -> float:
    """Seconds of one layer of one network (the step overhead shared by a batch)."""
    c = SECONDS_PER
    n, k = float(width), float(k)
    if method == "dense":
        work = c["normal"] * n * n + c["gemm_flop"] * 2.0 * n * n * k + c["step_dense"]
    else:
        work = (c["normal"] * n * k + c["small_flop"] * 4.0 * n * k * k
                + c["lapack_flop"] * k ** 3 / 3.0 + c["step_projected"] / batch)
    return work + c["entry"] * n * k + c["neuron"] * n * n_in + c["layer"]


def choose_method(width: int, k: int) -> str:
    """``"projected"`` or ``"dense"`` for a block of ``k`` columns at width ``N`` (``auto``).

    Projected when ``4k <= N`` (the old rule, kept), and also up to ``2k <= N`` with
    ``k <= 96`` where its estimate is the lower one (the dense sampler draws ``N²`` normals
    whatever ``k``: at width 256 it made 64 probes 3× slower than 63). Not beyond ``k = 96``:
    there the stacked ``k × k`` Cholesky factorizations go multi-threaded in LAPACK, and under
    load (width 312, k = 156, depth 100) the projected run took 5× the dense one.

    >>> choose_method(256, 9), choose_method(256, 65), choose_method(256, 129)
    ('projected', 'projected', 'dense')
    """
    if 4 * k <= width:
        return "projected"
    if 2 * k <= width and k <= _PROJECTED_MAX_EXTRA and _layer_seconds(
            width, k, "projected", batch=_batch(width, k, 8)) < _layer_seconds(width, k, "dense"):
        return "projected"
    return "dense"


def _batch(width: int, k: int, seeds: int) -> int:
    return max(1, min(seeds, _BATCH_ELEMENTS // (width * (k + 1))))


def estimate_seconds(width: int, depth: int, seeds: int, probes: int | None, *, l0: int = 1,
                     n_in: int = 1, blocks: float = 1.0, method: str = "auto") -> float:
    """Estimated seconds of :func:`critheory.simulation.simulate` (numpy, float64).

    Parameters
    ----------
    width, depth, seeds : int
        N, L, S.
    probes : int or None
        Hutchinson probes (None: the exact APJN, ``N`` tangent columns).
    l0 : int
        First layer carrying tangents.
    n_in : int
        Inputs (1, or 2 with a second input).
    blocks : float
        Dense blocks per layer (in units of an ``N × N`` one).
    method : {"auto", "dense", "projected"}

    >>> round(estimate_seconds(256, 100, 16, None) / estimate_seconds(256, 100, 16, 8))
    19
    """
    n_tan = width if probes is None else int(probes)
    k = n_in + n_tan
    m = choose_method(width, k) if method == "auto" else method    # one sampler per run
    with_tan = depth - l0 + 1
    b = _batch(width, k, seeds) if m == "projected" else 1
    per = (with_tan * _layer_seconds(width, k, m, n_in, b)
           + (depth - with_tan) * _layer_seconds(width, n_in, m, n_in, b))
    return float(seeds) * blocks * per


def choose_probes(width: int, depth: int, l0: int, seeds: int, *, n_in: int = 1,
                  blocks: float = 1.0) -> int | None:
    """The default APJN method: None (exact) or a number of probes (module notes).

    >>> choose_probes(64, 20, 1, 8) is None, choose_probes(200, 100, 1, 16) is None
    (True, True)
    >>> choose_probes(232, 100, 1, 16), choose_probes(1024, 100, 1, 16)   # past the exact one
    (95, 8)
    """
    kw = dict(l0=l0, n_in=n_in, blocks=blocks)
    exact = estimate_seconds(width, depth, seeds, None, **kw)
    if exact <= EXACT_SECONDS:
        return None
    target = EXACT_SECONDS * EXACT_SECONDS / exact
    lo, hi = DEFAULT_PROBES, max(DEFAULT_PROBES, width - 1)
    if estimate_seconds(width, depth, seeds, lo, **kw) >= target:
        return DEFAULT_PROBES
    # the largest P in [lo, hi] whose estimate fits the target (the estimate grows with P on
    # each side of the dense/projected switch; a bisection finds the last fit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if estimate_seconds(width, depth, seeds, mid, **kw) <= target:
            lo = mid
        else:
            hi = mid
    if estimate_seconds(width, depth, seeds, hi, **kw) <= target:
        lo = hi
    return lo


def exact_note(width: int, depth: int, seeds: int, *, l0: int = 1, n_in: int = 1,
               blocks: float = 1.0) -> str | None:
    """The announcement of an exact APJN estimated above :data:`ANNOUNCE_SECONDS` (or None).

    >>> exact_note(64, 10, 2) is None
    True
    >>> exact_note(1024, 200, 16)[:40]
    'the exact APJN (width 1024, depth 200, 1'
    """
    kw = dict(l0=l0, n_in=n_in, blocks=blocks)
    est = estimate_seconds(width, depth, seeds, None, **kw)
    if est <= ANNOUNCE_SECONDS:
        return None
    alt = estimate_seconds(width, depth, seeds, DEFAULT_PROBES, **kw)
    return (f"the exact APJN (width {width}, depth {depth}, {seeds} networks) is estimated at "
            f"{_clock(est)} on one BLAS thread; {DEFAULT_PROBES} Hutchinson probes at "
            f"{_clock(alt)} (--probes {DEFAULT_PROBES})")


def announce_exact(width: int, depth: int, seeds: int, **kw) -> str | None:
    """Warn (:class:`SimulationCostWarning`) with :func:`exact_note` where there is one."""
    note = exact_note(width, depth, seeds, **kw)
    if note is not None:
        warnings.warn(note, SimulationCostWarning, stacklevel=3)
    return note


def _clock(s: float) -> str:
    if s < 60:
        return f"{s:.2g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"

