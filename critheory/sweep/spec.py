"""What a sweep computes: the grid, the per-cell simulation settings, the seeds, the budget.

A sweep is a grid of cells ``(activation a, σ_w² index i, σ_b² index j)``; every cell is one
:func:`critheory.simulation.simulate` call (plus the theory at the same point). The settings that
define the numbers of a sweep are the fields of :class:`SweepSpec`; they are stored with the
results, and a resumed sweep must have the same ones.

Seeds
-----
Cell ``(a, i, j)`` simulates with the root seed

    ``seed = int.from_bytes(SeedSequence([root_seed, a, i, j]).generate_state(4, uint32), "little")``

(128 bits; ``a`` is the position of the activation in the sweep's list, ``i`` and ``j`` the
grid indices: no hashing of names, so the derivation is the same on every machine and Python
version). A cell therefore has the same networks whatever the scheduler, the number of workers,
the order in which cells finish, or whether the sweep was interrupted and resumed.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from critheory.common.checks import check_int
# the limits of one sweep, named with their reasons in the budget module
from critheory.common.limits import MAX_SWEEP_CELLS as MAX_CELLS
from critheory.common.limits import MAX_SWEEP_DRAWS
from critheory.errors import InvalidArgumentError

__all__ = ["SweepSpec", "cell_seed", "check_spec", "parse_range", "OBSERVABLES", "MAX_CELLS",
           "MAX_SWEEP_DRAWS"]

#: Observables a sweep can record besides χ_J (``apjn`` records χ_J and the exponent only).
OBSERVABLES = ("apjn", "kernel", "kurtosis", "ntk")


def parse_range(name: str, text: str, *, low: float, strict: bool) -> tuple[float, float, int]:
    """``"LO:HI:N"`` as ``(lo, hi, n)``: finite, ``LO <= HI`` (``LO < HI`` when ``N > 1``),
    ``N >= 1``, and ``LO`` above ``low`` (``strict``) or at least ``low``.

    >>> parse_range("--weight-var", "0.5:3:9", low=0.0, strict=True)
    (0.5, 3.0, 9)
    """
    parts = str(text).split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise InvalidArgumentError(f"{name} must be LO:HI:N (two numbers and a count), got "
                                   f"{text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InvalidArgumentError(f"{name}: LO and HI must be finite, got {text!r}")
    if n < 1:
        raise InvalidArgumentError(f"{name}: N must be >= 1, got {n}")
    if hi < lo or (n > 1 and hi == lo):
        raise InvalidArgumentError(f"{name}: need LO < HI (or N = 1 and LO = HI), got {text!r}")
    if lo < low or (strict and lo == low):
        raise InvalidArgumentError(f"{name}: LO must be {'>' if strict else '>='} {low:g}, "
                                   f"got {lo:g}")
    return lo, hi, n


@dataclass(frozen=True)
class SweepSpec:
    """The settings that determine a sweep's numbers (stored with the results).

    Attributes
    ----------
    activations : tuple of str
        Activation names (zoo names or formulas), in order: the ``activation`` coordinate.
    arch : str or Network
        Canonical architecture name; ``mu`` its residual strength. A
        :class:`~critheory.blocks.network.Network` is resolved once, here
        (:func:`critheory.blocks.registry.as_network`, :func:`~critheory.blocks.registry.registered`):
        it stands for the registry entry with the same blocks, stored by that name and μ (so that
        a spec made from a network equals the one made from the name, and a store written by
        either is resumed by the other); its activation is the sweep's (``activations`` empty,
        or naming that activation only), ``mu`` None or its skip strength. A composition the
        registry does not hold, several tokens, or an activation that its name does not rebuild
        (parameters) is refused in one line (the store records architectures by name).
    weight_var, bias_var : (lo, hi, n)
        The grids ``linspace(lo, hi, n)`` of σ_w² and σ_b².
    width, depth, seeds : int
        Width N, depth L and networks per cell S.
    observable : str
        One of :data:`OBSERVABLES`.
    root_seed : int
        Root of the per-cell seeds (:func:`cell_seed`).
    probes : int or None
        Hutchinson probes (None: the simulator's choice by cost, as in ``simulate``).
    window : (lo, hi)
        Depth window of the fits (default: the last half of the depths).
    n_boot : int
        Bootstrap replicates of the fits (over networks).
    q0 : float
        Input norm.
    backend, dtype : str
        Simulator backend and floating-point type.
    """

    activations: tuple
    arch: str
    mu: float
    weight_var: tuple
    bias_var: tuple
    width: int
    depth: int
    seeds: int
    observable: str = "apjn"
    root_seed: int = 0
    probes: int | None = None
    window: tuple = ()
    n_boot: int = 200
    q0: float = 1.0
    backend: str = "numpy"
    dtype: str = "float64"

    def __post_init__(self):
        from critheory.blocks.network import Network

        if isinstance(self.arch, Network):
            acts, name, mu = _network_settings(self.arch, self.activations, self.mu)
            object.__setattr__(self, "activations", acts)
            object.__setattr__(self, "arch", name)
            object.__setattr__(self, "mu", mu)

    # ------------------------------------------------------------------ grid
    @property
    def weight_vars(self) -> np.ndarray:
        """The σ_w² grid."""
        lo, hi, n = self.weight_var
        return np.linspace(lo, hi, int(n))

    @property
    def bias_vars(self) -> np.ndarray:
        """The σ_b² grid."""
        lo, hi, n = self.bias_var
        return np.linspace(lo, hi, int(n))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(activations, σ_w² points, σ_b² points)."""
        return len(self.activations), int(self.weight_var[2]), int(self.bias_var[2])

    @property
    def n_cells(self) -> int:
        a, w, b = self.shape
        return a * w * b

    def cells(self):
        """Every cell ``(a, i, j)`` in C order."""
        a, w, b = self.shape
        for k in range(a):
            for i in range(w):
                for j in range(b):
                    yield k, i, j

    # ------------------------------------------------------------------ storage
    def to_json(self) -> str:
        """Canonical JSON of the settings (stored in the zarr attributes)."""
        return json.dumps(_plain(asdict(self)), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SweepSpec":
        d = json.loads(text)
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InvalidArgumentError(f"stored sweep settings have unknown fields "
                                       f"{sorted(unknown)}")
        for k in ("activations", "weight_var", "bias_var", "window"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def differences(self, other: "SweepSpec") -> list[str]:
        """Human-readable ``name: stored -> requested`` for every differing setting."""
        a, b = _plain(asdict(self)), _plain(asdict(other))
        return [f"{k}: {a[k]!r} (stored) vs {b[k]!r} (requested)" for k in a if a[k] != b[k]]


def _network_settings(net, activations, mu) -> tuple:
    """``(activations, registry name, μ)`` of a sweep over a :class:`Network` (see
    :class:`SweepSpec`): refused in one line where the store could not record it by name."""
    from critheory.activation import Activation
    from critheory.blocks.registry import as_network, names, registered

    net = as_network(net, None, mu)          # a conflicting μ is refused here
    found = registered(net)
    if found is None:
        raise InvalidArgumentError(
            f"a sweep stores its architecture by registry name; {net.describe()} is none of "
            f"the registry's compositions it sweeps ({', '.join(names())})")
    act = net.activation
    if Activation.get(act.name) != act:
        raise InvalidArgumentError(f"a sweep stores activations by name; the network's "
                                   f"activation {act.name!r} is not rebuilt from its name "
                                   "(parameters): give the activation by name")
    acts = tuple(str(a).strip() for a in (activations or ()))
    if acts and any(Activation.get(a) != act for a in acts):
        raise InvalidArgumentError(f"the network {net.describe()} has activation {act.name}; "
                                   f"got the conflicting activations {', '.join(acts)}")
    return acts or (act.name,), found[0], found[1]


def _plain(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        out[k] = v
    return out


def cell_seed(root_seed: int, a: int, i: int, j: int) -> int:
    """The root seed of cell ``(a, i, j)`` (module notes): 128 bits from
    ``SeedSequence([root_seed, a, i, j])``.

    >>> cell_seed(0, 0, 1, 2) == cell_seed(0, 0, 1, 2) != cell_seed(0, 0, 2, 1)
    True
    """
    root_seed = check_int("seed", root_seed, 0)
    state = np.random.SeedSequence([root_seed, int(a), int(i), int(j)]).generate_state(
        4, np.uint32)
    return int.from_bytes(state.astype("<u4").tobytes(), "little")


def check_spec(spec: SweepSpec) -> SweepSpec:
    """Validate a spec and refuse at once a sweep over budget; returns the normalized spec.

    Every cell is checked by the simulator's own budget (memory of the ``N × N`` matrices,
    weight draws per simulation), the whole sweep by :data:`MAX_CELLS` and
    :data:`MAX_SWEEP_DRAWS`. The backend name is checked here; whether a torch backend (or CUDA)
    exists is the workers' business (the client may be a machine without a GPU).

    Raises
    ------
    InvalidArgumentError
        Anything that cannot be run.
    """
    from critheory.activation.symbolic import Activation
    from critheory.simulation.architectures import normalize_arch
    from critheory.simulation.backend import DTYPES, parse_backend
    from critheory.simulation.engine import check_simulation_budget, default_probes
    from critheory.simulation.ntk import check_ntk_budget
    from critheory.validation.compare import default_window

    acts = tuple(str(a).strip() for a in spec.activations)
    if not acts or any(not a for a in acts):
        raise InvalidArgumentError("give at least one activation (ACT[,ACT...])")
    if len(set(acts)) != len(acts):
        raise InvalidArgumentError(f"activations repeat: {','.join(acts)}")
    for a in acts:
        Activation.get(a)
    arch = normalize_arch(spec.arch)
    width = check_int("width", spec.width, 1)
    depth = check_int("depth", spec.depth, 3)
    seeds = check_int("seeds", spec.seeds, 2)
    n_boot = check_int("n_boot", spec.n_boot, 0)
    if spec.observable not in OBSERVABLES:
        raise InvalidArgumentError(f"observable must be one of {', '.join(OBSERVABLES)}, got "
                                   f"{spec.observable!r}")
    probes = None if spec.probes is None else check_int("probes", spec.probes, 1)
    if spec.window:
        lo, hi = (check_int("window", w, 1) for w in spec.window)
        if not 1 < lo < hi <= depth:
            raise InvalidArgumentError(f"window must satisfy 1 < LO < HI <= depth ({depth}), "
                                       f"got {lo}:{hi}")
        window = (lo, hi)
    else:
        window = default_window(depth, 1)     # the last half of the depths, as in validate
    name, device = parse_backend(spec.backend)
    if spec.dtype not in DTYPES:
        raise InvalidArgumentError(f"dtype must be float64 or float32, got {spec.dtype!r}")
    for k, (lo, hi, n) in (("weight_var", spec.weight_var), ("bias_var", spec.bias_var)):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi and int(n) >= 1):
            raise InvalidArgumentError(f"{k} grid must be (LO, HI, N) with LO <= HI, N >= 1")
    if spec.weight_var[0] <= 0 or spec.bias_var[0] < 0:
        raise InvalidArgumentError("need weight_var > 0 and bias_var >= 0 on the whole grid")
    out = SweepSpec(acts, arch, float(spec.mu), tuple(float(v) for v in spec.weight_var[:2])
                    + (int(spec.weight_var[2]),), tuple(float(v) for v in spec.bias_var[:2])
                    + (int(spec.bias_var[2]),), width, depth, seeds, spec.observable,
                    check_int("seed", spec.root_seed, 0), probes, window, n_boot,
                    float(spec.q0), "numpy" if name == "numpy" else f"torch:{device}",
                    spec.dtype)
    if out.n_cells > MAX_CELLS:
        raise InvalidArgumentError(f"{out.n_cells} cells; at most {MAX_CELLS} in one sweep")
    n_probes = default_probes(width, depth, 1, seeds) if probes is None else probes
    check_simulation_budget(width, depth, seeds, n_probes)           # one cell, the simulator's rule
    if spec.observable == "ntk":
        check_ntk_budget(width, depth, seeds, arch)
    total = float(out.n_cells) * seeds * depth * width * width
    if total > MAX_SWEEP_DRAWS:
        raise InvalidArgumentError(
            f"{out.n_cells} cells x seeds x depth x width^2 = {total:.2g} weight draws; at most "
            f"{MAX_SWEEP_DRAWS:.0e} in one sweep (a coarser grid, fewer seeds, smaller networks)")
    return out
