"""Array backends of the simulator: numpy (default) or torch (CPU or CUDA), float64 or float32.

The simulator's forward pass (dense layers, φ, LayerNorm, residual sums, kernels, tangents) is
written against the small array API of a :class:`Backend`: ``@``, elementwise arithmetic,
``.mean(axis=..., keepdims=...)``, ``einsum`` and the few methods below, which numpy arrays and
torch tensors share or which the backend translates.

Random numbers
--------------
Every random number (inputs, weights, biases, Hutchinson probes, the ``G`` of the projected
sampler) is drawn by numpy's ``Generator`` on the host in float64, from the same streams as
always (:func:`critheory.simulation.sampling.seed_streams`), and only then converted to the
backend's dtype and device. Every backend therefore simulates *the same networks*: results agree
to rounding (float64: ~1e-13 relative over moderate depths; float32: ~depth·ε₃₂) and all
statistics are those of the numpy run. The price is that on a GPU the host draws the ``O(N²)``
normals of each dense layer while the device does the ``O(N² k)`` products; the device pays off
for the exact APJN (``k = N + 1`` columns), much less for a few Hutchinson probes.

The projected sampler factors the ``k × k`` Gram matrix of each block on the host in float64
(:func:`critheory.simulation.sampling.gram_factor`); only the ``N × k`` products run on the
device.

φ and φ' on torch are the activation's formula compiled for tensors
(:func:`critheory.activation.torch_eval.compile_torch`, ``Heaviside`` with its ``H(0)``, 1/2
by default as in numpy); where it fails or returns non-finite values for finite arguments
(the numpy evaluator repairs such values in extended precision) the values are computed by the
numpy evaluator on the host instead. With float32 on numpy, φ is evaluated in float64 and
rounded to float32.

Tangents are renormalized when ``‖T‖²`` leaves ``[1e-100, 1e100]`` in float64; float32 uses
``[1e-15, 1e15]`` (the squared norm of ``N × P`` entries must stay below float32's 3.4e38).

Without a seed, a torch backend takes the root seed from torch's global generator
(:meth:`Backend.resolve_seed`; ``torch.manual_seed`` then makes the run reproducible), numpy
from fresh entropy.

torch is imported only when a torch backend is asked for; without it the request is a one-line
:class:`~critheory.errors.InvalidArgumentError`.

Examples
--------
>>> from critheory.simulation.backend import get_backend
>>> bk = get_backend("numpy", "float32")
>>> bk.name, bk.device, bk.dtype, bk.is_reference
('numpy', 'cpu', 'float32', False)
>>> get_backend().is_reference       # numpy float64: the reference path, bit for bit as before
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from critheory.errors import InvalidArgumentError

__all__ = ["Backend", "get_backend", "BACKENDS", "DTYPES", "parse_backend"]

#: Backend names (``torch`` takes an optional device: ``torch:cpu``, ``torch:cuda``,
#: ``torch:cuda:1``).
BACKENDS = ("numpy", "torch")
#: Floating-point types of the simulation.
DTYPES = ("float64", "float32")

_RESCALE = {"float64": (1e100, 1e-100), "float32": (1e15, 1e-15)}


def parse_backend(spec: str | None) -> tuple[str, str]:
    """``(name, device)`` from ``"numpy"``, ``"torch"``, ``"torch:cpu"``, ``"torch:cuda[:i]"``.

    >>> parse_backend("torch:cuda"), parse_backend(None)
    (('torch', 'cuda'), ('numpy', 'cpu'))
    """
    if spec is None:
        return "numpy", "cpu"
    if not isinstance(spec, str):
        raise InvalidArgumentError(f"backend must be a string, got {spec!r}")
    s = spec.strip().lower()
    name, _, device = s.partition(":")
    if name == "numpy" and not device:
        return "numpy", "cpu"
    if name == "torch":
        device = device or "cpu"
        head, _, idx = device.partition(":")
        if head in ("cpu", "cuda") and (not idx or (head == "cuda" and idx.isdigit())):
            return "torch", device
    raise InvalidArgumentError(f"backend must be numpy, torch, torch:cpu or torch:cuda[:i], "
                               f"got {spec!r}")


@dataclass(frozen=True, eq=False)
class Backend:
    """An array backend: library, device and floating-point type.

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"torch"``.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
    dtype : str
        ``"float64"`` or ``"float32"``.
    """

    name: str
    device: str
    dtype: str
    _torch: Any = field(default=None, repr=False)

    # ---------------------------------------------------------------- description
    @property
    def is_reference(self) -> bool:
        """numpy float64: the original code path (results bit-identical to earlier versions)."""
        return self.name == "numpy" and self.dtype == "float64"

    @property
    def label(self) -> str:
        """``"numpy"``, ``"torch:cpu"``, ``"torch:cuda"``..."""
        return "numpy" if self.name == "numpy" else f"torch:{self.device}"

    @property
    def rescale_bounds(self) -> tuple[float, float]:
        """(high, low) of ``‖T‖²`` outside which tangents are renormalized."""
        return _RESCALE[self.dtype]

    @property
    def eps(self) -> float:
        """Machine epsilon of :attr:`dtype`."""
        return float(np.finfo(self.dtype).eps)

    # ---------------------------------------------------------------- randomness
    def resolve_seed(self, seed: int | None, generator: Any = None) -> int | None:
        """The root seed of a simulation on this backend, PyTorch's way for torch.

        A given ``seed`` is returned as it is (every backend then simulates the same networks,
        see the module docstring). Without one, the torch backend draws the root seed from
        ``generator`` (a ``torch.Generator``) or torch's global generator, so that
        ``torch.manual_seed`` alone makes a torch-backend run reproducible; numpy returns None
        (fresh entropy, recorded in the result). The numbers themselves still come from the
        independent numpy streams of that root seed (inputs, weights, probes per network).

        >>> get_backend("numpy").resolve_seed(None) is None, get_backend().resolve_seed(7)
        (True, 7)
        """
        if seed is not None:
            return seed
        if generator is not None and self.name != "torch":
            raise InvalidArgumentError("generator= is for the torch backend")
        if self.name != "torch":
            return None
        t = self._torch
        if generator is not None and not isinstance(generator, t.Generator):
            raise InvalidArgumentError("generator must be a torch.Generator, got "
                                       f"{type(generator).__name__}")
        gen = t.default_generator if generator is None else generator
        return int(t.randint(0, 2 ** 62, (1,), generator=gen, device=gen.device).item())

    # ---------------------------------------------------------------- conversions
    def asarray(self, a: np.ndarray):
        """A host array (float64) as a backend array of :attr:`dtype` on :attr:`device`
        (numpy float64: ``a`` itself, no copy)."""
        if self.name == "numpy":
            return a if self.dtype == "float64" and a.dtype == np.float64 else \
                np.asarray(a, dtype=self.dtype)
        t = self._torch
        return t.as_tensor(np.ascontiguousarray(a), dtype=getattr(t, self.dtype),
                           device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        """A backend array as a host float64 numpy array (numpy float64: ``a`` itself)."""
        if self.name == "numpy":
            return a if a.dtype == np.float64 else a.astype(np.float64)
        return a.detach().to("cpu", dtype=self._torch.float64).numpy()

    # ---------------------------------------------------------------- array functions
    def concat(self, arrays, axis: int = -1):
        """Concatenate along ``axis``."""
        if self.name == "numpy":
            return np.concatenate(arrays, axis=axis)
        return self._torch.cat(arrays, dim=axis)

    def einsum(self, spec: str, *arrays):
        """``einsum`` of the backend."""
        if self.name == "numpy":
            return np.einsum(spec, *arrays)
        return self._torch.einsum(spec, *arrays)

    def eye_batch(self, b: int, n: int):
        """``b`` copies of the ``n × n`` identity, shape (b, n, n), writeable."""
        if self.name == "numpy":
            out = np.broadcast_to(np.eye(n), (b, n, n)).copy()
            return out if self.dtype == "float64" else out.astype(self.dtype)
        t = self._torch
        return t.eye(n, dtype=getattr(t, self.dtype), device=self.device).expand(b, n, n).clone()

    def empty(self, shape: tuple):
        """An uninitialized array of :attr:`dtype`."""
        if self.name == "numpy":
            return np.empty(shape, dtype=self.dtype)
        t = self._torch
        return t.empty(shape, dtype=getattr(t, self.dtype), device=self.device)

    def gram(self, x):
        """``Xᵀ X`` per batch entry of ``x`` (B, n, k), as a host float64 array (B, k, k)."""
        if self.name == "numpy":
            return np.swapaxes(x, -1, -2) @ x
        return self.to_numpy(x.transpose(-1, -2) @ x)

    # ---------------------------------------------------------------- activations
    def activation(self, act, n: int = 0) -> Callable:
        """φ^{(n)} of an :class:`~critheory.activation.symbolic.Activation` on backend arrays."""
        host = act.numpy_func(n)
        if self.is_reference:
            return host
        if self.name == "numpy":
            dt = np.dtype(self.dtype)
            return lambda z: host(z).astype(dt)
        return _torch_activation(self, act, n, host)


def _torch_activation(bk: Backend, act, n: int, host: Callable) -> Callable:
    t = bk._torch
    from critheory.activation.symbolic import X
    from critheory.activation.torch_eval import compile_torch
    from critheory.errors import ActivationError

    try:
        fn = compile_torch(act.derivative(n), X)
    except ActivationError:  # no torch translation: evaluate on the host
        fn = None

    def on_host(z):
        return bk.asarray(host(bk.to_numpy(z)))

    if fn is None:
        return on_host

    def f(z):
        try:
            y = fn(z)
        except Exception:  # noqa: BLE001 - a torch operation that fails on these values
            return on_host(z)
        if not isinstance(y, t.Tensor) or y.shape != z.shape:
            y = t.as_tensor(y, dtype=z.dtype, device=z.device).expand(z.shape).clone()
        # one reduction: the sum is finite only if every value is (an overflowing sum of
        # finite values only costs the exact check below)
        if not bool(t.isfinite(y.sum())):
            if not bool(t.isfinite(y).all()) and bool(t.isfinite(z).all()):
                return on_host(z)
        return y

    return f


def get_backend(backend: "str | Backend | None" = "numpy", dtype: str | None = "float64"
                ) -> Backend:
    """The :class:`Backend` for a name (``numpy``, ``torch``, ``torch:cpu``, ``torch:cuda[:i]``)
    and a dtype (``float64``, ``float32``); a :class:`Backend` passes through.

    Raises
    ------
    InvalidArgumentError
        An unknown name or dtype; torch not installed; CUDA asked for and not available.
    """
    if isinstance(backend, Backend):
        return backend
    name, device = parse_backend(backend)
    dt = "float64" if dtype is None else str(dtype).strip().lower()
    if dt not in DTYPES:
        raise InvalidArgumentError(f"dtype must be float64 or float32, got {dtype!r}")
    if name == "numpy":
        return Backend("numpy", "cpu", dt)
    try:
        import torch
    except ImportError:
        raise InvalidArgumentError("the torch backend needs PyTorch: pip install "
                                   "'critheory[torch]'") from None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidArgumentError(f"backend torch:{device}: CUDA is not available on this "
                                       "machine (use torch:cpu or numpy)")
        idx = int(device.partition(":")[2] or 0)
        if idx >= torch.cuda.device_count():
            raise InvalidArgumentError(f"backend torch:{device}: only "
                                       f"{torch.cuda.device_count()} CUDA device(s)")
    return Backend("torch", device, dt, torch)
