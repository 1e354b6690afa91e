"""The one budget module: every limit of a command or a library function, named once, with its
reason.

Each command (and each library function with a budget) refuses at once, in one line, what it
cannot do within the limit it reads here (README "Resource limits"). One naming scheme:
``MAX_<WHAT>_<ROOM>`` for a count (depth, seeds, points, ...) and ``MAX_<ROOM>_WORK`` /
``MAX_<ROOM>_BYTES`` for an estimated cost; the command line's own, tighter limits end in
``_CLI``. The :data:`LIMITS` table holds every name with its value and reason (for the docs and
the tests).

This module is rank 0 (like :mod:`critheory.errors`) and imports nothing itself, so that every
module (the parser of the command line at start-up included) may read it.

Examples
--------
>>> from critheory.common import limits
>>> limits.MAX_DEPTH_NTK
100000
>>> limits.LIMITS["MAX_DEPTH_MEANFIELD_CLI"].value
1000000
>>> "minute" in limits.LIMITS["MAX_DEPTH_MEANFIELD_CLI"].reason
True
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Limit", "LIMITS"]


class Limit(NamedTuple):
    """A named limit: its value and why it is there."""

    value: float
    reason: str


LIMITS: dict[str, Limit] = {}


def _limit(name: str, value, reason: str):
    LIMITS[name] = Limit(value, reason)
    __all__.append(name)
    return value


# ------------------------------------------------------------------ mean field (analyze, line,
# point, depth, phase)
MAX_DEPTH_MEANFIELD = _limit(
    "MAX_DEPTH_MEANFIELD", 10 ** 7,
    "layers iterated one by one by depth_curves: ~8 minutes, 80 MB per stored curve")
MAX_DEPTH_MEANFIELD_CLI = _limit(
    "MAX_DEPTH_MEANFIELD_CLI", 10 ** 6,
    "layers of the `depth` command: about a minute (the recursion runs ~1e5 layers in a few "
    "seconds)")
MAX_VERIFY_DEPTH_CLI = _limit(
    "MAX_VERIFY_DEPTH_CLI", 10 ** 6,
    "layers of the exponent check of `analyze` (--verify-depth): about a minute")
MAX_LINE_POINTS = _limit(
    "MAX_LINE_POINTS", 100_000,
    "bias variances of one critical line (the scan holds ~200 floats per value)")
MAX_PHASE_GRID_CLI = _limit(
    "MAX_PHASE_GRID_CLI", 401,
    "points per axis of the `phase` command's diagram (401² = 1.6e5 points, ~1 minute)")
MAX_PHASE_POINTS = _limit(
    "MAX_PHASE_POINTS", 1_000_000,
    "grid points of one phase diagram (n² <= 1e6: ~1e8 kernel-map evaluations)")
MAX_DEPTH_INPUTS = _limit(
    "MAX_DEPTH_INPUTS", 2000,
    "depth horizon of the input-scale scan (one vectorized expectation per map and layer)")

# ------------------------------------------------------------------ finite width
MAX_DEPTH_FINITE_WIDTH = _limit(
    "MAX_DEPTH_FINITE_WIDTH", 10 ** 6,
    "layers of the finite-width curves (~70 us a layer with the vertex and the 1/n kernel: "
    "10^6 layers take about a minute)")
MAX_WIDTH_FINITE_WIDTH = _limit(
    "MAX_WIDTH_FINITE_WIDTH", 10 ** 15,
    "width beyond which every 1/n correction is below the float64 resolution of K")
MAX_FINITE_WIDTH_WORK = _limit(
    "MAX_FINITE_WIDTH_WORK", 4e10,
    "networks x depth x width x (1 + tangent columns) of one finite-width simulation (~1 min)")

# ------------------------------------------------------------------ several inputs (bayes)
MAX_INPUTS_DATA = _limit(
    "MAX_INPUTS_DATA", 16,
    "the several-input finite-width theory carries an m^4 vertex and m^4/24 four-point "
    "expectations per layer (m = 16: 65536 entries, ~3000 integrals per layer)")
MAX_DEPTH_DATA = _limit(
    "MAX_DEPTH_DATA", 10 ** 4,
    "the several-input recursion evaluates its two- and four-point expectations layer by layer")
MAX_DATA_WORK = _limit(
    "MAX_DATA_WORK", 1200.0,
    "estimated seconds of the several-input theory on one core: depth x (4 ms per four-point "
    "expectation by the closed-form conditioned route (ReLU family, erf), or 2 s per "
    "four-dimensional and 50 ms per three-dimensional quadrature otherwise)")
MAX_INPUTS_FILE_BYTES = _limit(
    "MAX_INPUTS_FILE_BYTES", 1 << 20, "the largest --inputs-file read (a text file of inputs)")
MAX_INPUT_DIM = _limit(
    "MAX_INPUT_DIM", 10 ** 6, "the input dimension n0 of the inputs' Gram matrix")

# ------------------------------------------------------------------ NTK
MAX_DEPTH_NTK = _limit(
    "MAX_DEPTH_NTK", 10 ** 5,
    "layers of the NTK recursion: ~0.1 ms a layer for one input, ~0.2-2 ms for two")
MAX_NTK_WORK = _limit(
    "MAX_NTK_WORK", 3e10,
    "flops of the NTK measurement's back-propagations (seeds k n² L²/2 per dense block), "
    "about half a minute")
MAX_TRAIN_WORK = _limit(
    "MAX_TRAIN_WORK", 6e10,
    "multiply-adds of an ensemble trained by gradient descent (networks x parameters x 3 x "
    "(training inputs x steps + inputs)): ~1.2e9 a second in batched narrow products, under "
    "a minute")

#: networks of a simulation (finite-width and ntk commands); the work limits above bound it
#: with the width and depth
MAX_SEEDS_CLI = _limit(
    "MAX_SEEDS_CLI", 10 ** 6,
    "networks of the finite-width and ntk simulations (the work limits bound the product)")
MAX_WIDTH_CLI = _limit(
    "MAX_WIDTH_CLI", 10 ** 6,
    "width of a simulation given on the command line (ntk, sweep; the work limits bound the "
    "product with the depth and the networks)")

# ------------------------------------------------------------------ simulator (simulate,
# validate, sweep cells)
EXACT_APJN_WORK = _limit(
    "EXACT_APJN_WORK", 2e10,
    "flops seeds (depth - l0 + 1) width³ of the exact APJN, the default below it (~3 s); "
    "Hutchinson probes above")
MAX_MATRIX_BYTES = _limit(
    "MAX_MATRIX_BYTES", 4 * 2 ** 30,
    "bytes of float64 N x N matrices one simulation holds at once")
MAX_WEIGHT_DRAWS = _limit(
    "MAX_WEIGHT_DRAWS", 1e11,
    "random weights seeds x depth x N² of one simulation: a few minutes of RNG")
MAX_N_BOOT = _limit(
    "MAX_N_BOOT", 100_000,
    "bootstrap replicates of the power-law fit (cost n_boot x seeds x window)")

# ------------------------------------------------------------------ transformer
MAX_TOKENS = _limit(
    "MAX_TOKENS", 128,
    "tokens T (the token theory's expectations cost ~T² per quasi-Monte Carlo point without a "
    "causal mask, ~T³ with one; its Sobol points have T² coordinates, at most 21201 in scipy)")
MAX_DEPTH_TRANSFORMER = _limit(
    "MAX_DEPTH_TRANSFORMER", 2000,
    "layers of the token-kernel recursion (a quasi-Monte Carlo expectation per attention "
    "block and layer)")
MAX_HEADS_CLI = _limit(
    "MAX_HEADS_CLI", 1 << 20,
    "attention heads on the command line (they must divide the width, which bounds them)")
MAX_TRANSFORMER_WORK = _limit(
    "MAX_TRANSFORMER_WORK", 1e12,
    "multiply-adds of one token-kernel recursion's attention expectations (about 5 minutes at "
    "the rate below)")
MAX_TRANSFORMER_WORK_CLI = _limit(
    "MAX_TRANSFORMER_WORK_CLI", 1.5e11,
    "the same for one command: about a minute (measured on a loaded 2-core machine, load 3-5, "
    "32 layers: general route T = 16, 5.8e10, 20 s; T = 24, 1.4e11, 39 s; exchangeable route "
    "T = 64, 7.4e10, 14-25 s CPU; T = 128 at 256 points, 1.0e11, 25 s CPU)")
MAX_QMC_POINTS = _limit(
    "MAX_QMC_POINTS", 2 ** 16,
    "quasi-Monte Carlo points per randomization (the escalation stops here)")
MAX_QMC_CACHE_FLOATS = _limit(
    "MAX_QMC_CACHE_FLOATS", 1 << 25,
    "normals a quasi-Monte Carlo sampler keeps between attention blocks (256 MiB: T = 64 at "
    "1024 points x 8 randomizations); beyond it every block draws them again (counted by "
    "transformer_recursion_work)")
MAX_SOFTMAX_WORK = _limit(
    "MAX_SOFTMAX_WORK", 4e10,
    "points x replicas x T³ x tangents multiply-adds of one attention expectation")
MAX_TRANSFORMER_SIM_WORK = _limit(
    "MAX_TRANSFORMER_SIM_WORK", 2e11,
    "multiply-adds of one transformer simulation (seeds x layers x tangents x products)")
MAX_TRANSFORMER_SIM_BYTES = _limit(
    "MAX_TRANSFORMER_SIM_BYTES", 2 * 2 ** 30,
    "bytes of one simulated transformer's weights plus its tangent arrays")

# ------------------------------------------------------------------ recipes
MAX_DEPTH_RECIPE = _limit(
    "MAX_DEPTH_RECIPE", 10 ** 5,
    "layers of a recipe's depth factors (one NTK recursion, ~0.2 ms a layer)")
MAX_WIDTH_RECIPE = _limit(
    "MAX_WIDTH_RECIPE", 10 ** 9,
    "width of a recipe (beyond it the 1/n corrections are below float64 resolution)")

# ------------------------------------------------------------------ shaped networks (sde)
MAX_SDE_PATHS_CLI = _limit(
    "MAX_SDE_PATHS_CLI", 10 ** 6,
    "Monte Carlo paths of the SDE (--paths): memory paths x inputs² floats")
MAX_SDE_STEPS_CLI = _limit(
    "MAX_SDE_STEPS_CLI", 10 ** 5,
    "Euler-Maruyama steps of the SDE (--steps)")
MAX_SDE_WIDTH_CLI = _limit(
    "MAX_SDE_WIDTH_CLI", 4096,
    "width of the shaped networks simulated beside the SDE (--width)")
MAX_SDE_SEEDS_CLI = _limit(
    "MAX_SDE_SEEDS_CLI", 10 ** 5,
    "shaped networks simulated beside the SDE (--networks)")
MAX_SDE_PATH_STEPS = _limit(
    "MAX_SDE_PATH_STEPS", 4 * 10 ** 9,
    "paths x steps x inputs² of one SDE solve")
MAX_SHAPED_SIM_WORK = _limit(
    "MAX_SHAPED_SIM_WORK", 2 * 10 ** 10,
    "networks x depth x width x inputs (x width, dense) of one shaped simulation (~1 minute)")

# ------------------------------------------------------------------ spectra
MAX_DEPTH_SPECTRUM = _limit(
    "MAX_DEPTH_SPECTRUM", 10_000,
    "layers of the spectrum: the MLP solver's cost does not depend on L but lambda^L leaves "
    "float64; the Tarnowski ResNet recursion is one quadrature per layer")
MAX_SPECTRUM_POINTS = _limit(
    "MAX_SPECTRUM_POINTS", 20_000,
    "points of one spectral density (one root continuation step each)")
MAX_SPECTRUM_STEPS = _limit(
    "MAX_SPECTRUM_STEPS", 20_000,
    "predictor-corrector steps of one branch beyond one per target point (never reached in "
    "tests)")
MAX_WIDTH_SPECTRUM_SIM = _limit(
    "MAX_WIDTH_SPECTRUM_SIM", 2048,
    "width of the simulated Jacobian spectra (an SVD of N x N per network)")
MAX_SEEDS_SPECTRUM_SIM = _limit(
    "MAX_SEEDS_SPECTRUM_SIM", 1000,
    "networks of the simulated Jacobian spectra")
MAX_DEPTH_SPECTRUM_SIM = _limit(
    "MAX_DEPTH_SPECTRUM_SIM", 10_000,
    "layers of the simulated Jacobian spectra")
MAX_SPECTRUM_SIM_WORK = _limit(
    "MAX_SPECTRUM_SIM_WORK", 2e11,
    "seeds (depth + 10) width³ flops of the simulated spectra: ~1 minute on one core")

# ------------------------------------------------------------------ torch-apjn
MAX_INPUT_ELEMENTS_CLI = _limit(
    "MAX_INPUT_ELEMENTS_CLI", 10 ** 7,
    "entries of the input batch of torch-apjn (a float64 batch of 8e7 bytes)")
MAX_PROBES_CLI = _limit(
    "MAX_PROBES_CLI", 4096,
    "Hutchinson probes of torch-apjn (each is one backward pass of the model)")

# ------------------------------------------------------------------ torch (library)
MAX_TORCH_EXACT_COORDINATES = _limit(
    "MAX_TORCH_EXACT_COORDINATES", 1 << 14,
    "coordinates of h^{l0} of the exact APJN of a PyTorch model (one forward pass each)")
MAX_TORCH_PROBES = _limit(
    "MAX_TORCH_PROBES", 1 << 16,
    "Hutchinson probes of one APJN call on a PyTorch model")
MAX_TORCH_VMAP_BYTES = _limit(
    "MAX_TORCH_VMAP_BYTES", 1 << 29,
    "tangent bytes of one batch of probes that apjn(method='vmap') pushes through a PyTorch "
    "model together (more probes run in several batches)")
MAX_TORCH_EXACT_OUTPUTS = _limit(
    "MAX_TORCH_EXACT_OUTPUTS", 1 << 14,
    "output entries of the exact Jacobian norm of the regularizer (one backward pass each)")

# ------------------------------------------------------------------ sweeps
MAX_SWEEP_CELLS = _limit(
    "MAX_SWEEP_CELLS", 100_000,
    "cells of one sweep (the store holds a chunk per cell and variable)")
MAX_DEPTH_SWEEP_CLI = _limit(
    "MAX_DEPTH_SWEEP_CLI", 10 ** 6,
    "layers of a sweep's networks (MAX_SWEEP_DRAWS bounds the product)")
MAX_N_BOOT_SWEEP_CLI = _limit(
    "MAX_N_BOOT_SWEEP_CLI", 10 ** 4,
    "bootstrap replicates of each sweep cell's fits (the cost is per cell)")
MAX_SWEEP_DRAWS = _limit(
    "MAX_SWEEP_DRAWS", 1e14,
    "weight draws cells x seeds x depth x width² of one sweep: days of one machine's RNG, a "
    "cluster's worth of work")


# ------------------------------------------------------------------ work estimates
#: Multiply-add equivalents per token pair and point of the exchangeable attention route
#: (logits, softmax and the sums of its statistics: elementwise passes), beside its one
#: ``T x T`` product per point, counted as T³/4 (one BLAS product runs ~4x the rate of the
#: general route's batched small ones). Fitted to the general route's rate (measured on a
#: loaded 2-core machine, CPU time per block, R = 8, three tangents: general 2.8e9 at T = 16,
#: 4.7e9 at T = 64 units/s; exchangeable with these weights 3.4e9 and 7.8e9).
EXCHANGEABLE_PASSES = 40
#: Multiply-add equivalents of one normal of the quasi-Monte Carlo nodes (scrambled Sobol
#: point, Φ⁻¹ and the exchangeable route's contrasts: ~70 ns, measured likewise) and of the
#: scrambling of one Sobol dimension for one randomization (~33 µs: 8 randomizations of T²
#: dimensions take 1.1 s at T = 64, 4.3 s at T = 128).
NORMAL_COST = 300
SCRAMBLE_COST = 1.3e5


def attention_work(tokens: int, points: int, replicas: int, tangents: int,
                   exchangeable: bool = False) -> float:
    """Multiply-adds of one attention expectation (compared with :data:`MAX_SOFTMAX_WORK`):
    ``points x replicas x`` per point ``T³ (6 + 8 tangents)`` on the general route (products
    ``A X`` and ``(·) Aᵀ`` of every tangent), ``T³/4 + EXCHANGEABLE_PASSES T²`` on the
    exchangeable one (non-causal weights of kernels ``a I + b 11ᵀ``: elementwise passes and one
    product ``AᵀA``, whatever the number of tangents); at least 5e7 (numpy's per-call
    overhead).

    >>> attention_work(4, 4096, 8, 3) == 4096 * 8 * 64 * 30
    True
    >>> attention_work(64, 1024, 8, 3, exchangeable=True) == 1024 * 8 * (64 ** 3 / 4 + 40 * 64 ** 2)
    True
    """
    T = tokens
    per = (T ** 3 / 4 + EXCHANGEABLE_PASSES * T ** 2 if exchangeable
           else T ** 3 * (6 + 8 * tangents))
    return max(points * replicas * per, 5e7)


def transformer_recursion_work(tokens: int, attention_blocks: int, blocks: int, depth: int,
                               points: int, replicas: int, exchangeable: bool = False) -> float:
    """Multiply-adds of the attention expectations of one token-kernel recursion, compared with
    :data:`MAX_TRANSFORMER_WORK` (library) and :data:`MAX_TRANSFORMER_WORK_CLI` (a command):
    ``depth x attention blocks x`` :func:`attention_work` (with ``2 + blocks`` tangents), plus
    the ``points x replicas x T²`` normals at :data:`NORMAL_COST` each and the scrambling of
    ``replicas x T²`` dimensions at :data:`SCRAMBLE_COST`, drawn once, or once a block where
    there are more than :data:`MAX_QMC_CACHE_FLOATS` normals.

    >>> n = 4096 * 8 * 16
    >>> w = transformer_recursion_work(4, 1, 4, 10, 4096, 8)
    >>> w == 10 * 4096 * 8 * 64 * 54 + 300 * n + 1.3e5 * 8 * 16
    True
    >>> transformer_recursion_work(1, 1, 4, 10, 2, 2)      # the per-call floor
    500261200.0
    """
    per = attention_work(tokens, points, replicas, 2 + blocks, exchangeable)
    normals = (points * NORMAL_COST + SCRAMBLE_COST) * replicas * tokens ** 2
    if points * replicas * tokens ** 2 > MAX_QMC_CACHE_FLOATS:
        return depth * attention_blocks * (per + normals)
    return depth * attention_blocks * per + normals


__all__ += ["attention_work", "EXCHANGEABLE_PASSES", "NORMAL_COST", "SCRAMBLE_COST"]
__all__.append("transformer_recursion_work")
