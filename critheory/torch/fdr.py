"""Yaida's first fluctuation–dissipation relation (arXiv:1810.00004) for PyTorch's SGD, as a
stationarity monitor.

PyTorch's SGD (``torch.optim.SGD``, no Nesterov) updates, with learning rate η, momentum μ,
dampening τ and weight decay λ (``g̃ = ∇f_B(θ) + λθ``, the minibatch gradient of the
regularized loss)::

    b_{t+1} = μ b_t + (1 − τ) g̃_t,        θ_{t+1} = θ_t − η b_{t+1}.

Derivation (any fixed reference point c; write θ for θ − c). If (θ_t, b_t) is stationary,
⟨O(θ_{t+1}, b_{t+1})⟩ = ⟨O(θ_t, b_t)⟩ for every observable O:

* O = θ·θ:  θ_{t+1}² = θ_t² − 2η θ_t·b_{t+1} + η² b_{t+1}²  ⇒  2⟨θ_t·b_{t+1}⟩ = η⟨b²⟩;
* O = θ·b:  θ_{t+1}·b_{t+1} = θ_t·b_{t+1} − η b_{t+1}²  ⇒  ⟨θ_t·b_t⟩ = η⟨b²⟩/2 − η⟨b²⟩
  = −η⟨b²⟩/2;
* and θ_t·b_{t+1} = μ θ_t·b_t + (1 − τ) θ_t·g̃_t, so η⟨b²⟩/2 = −μη⟨b²⟩/2 + (1 − τ)⟨θ·g̃⟩:

    ``⟨θ·∇f⟩ = (η/2) (1 + μ)/(1 − τ) ⟨b·b⟩``   (FDR1; ⟨θ·∇f_B⟩ = ⟨θ·∇f⟩ since the minibatch is
    drawn independently of θ_t).

For μ = τ = 0 it is Yaida's ⟨θ·∇f⟩ = (η/2)⟨∇f_B·∇f_B⟩ [eq. 2.14 of 1810.00004]; with the
paper's velocity ``v = −η b`` (τ = 0) it reads ⟨θ·∇f⟩ = (1 + μ)/(2η) ⟨v·v⟩ [its eq. 2.25].
Parameter groups with their own (η, μ, τ, λ) add up: the monitor compares
``L = Σ_groups (1 − τ) θ·g̃`` with ``R = Σ_groups η(1 + μ)/2 |b|²``.

Over a finite window the same two identities telescope: ``Σ_t (L_t − R_t)`` is a boundary term
(``|θ_T − c|² − |θ_0 − c|²`` and ``θ·b`` at the two ends, divided by 2η), so the time-averaged
ratio ``⟨L⟩/⟨R⟩`` tends to 1 exactly when the iterates stop drifting: the relation is the
stationarity test. The monitor takes c = θ at the first recorded step (which keeps the
boundary term at the size of the fluctuations of θ, not of |θ|).

The monitor reads ``p.grad``, the parameters, the optimizer's hyperparameters and its
``momentum_buffer`` (``b_t``), without changing them: call :meth:`FDRMonitor.record` after
``loss.backward()`` and before ``optimizer.step()``; it forms ``b_{t+1}`` itself.

Examples
--------
>>> from critheory.torch.fdr import regression_example
>>> res = regression_example(seed=0)
>>> res.verdict, abs(res.ratio - 1) <= 3 * res.ratio_stderr
('stationary', True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from critheory.common.jsonable import jsonable
from critheory.errors import InvalidArgumentError
from critheory.common.reprs import short_repr

__all__ = ["FDRMonitor", "FDRResult", "regression_example", "Z_STATIONARY", "MAX_REL_ERROR"]

#: |ratio − 1| within this many standard errors: consistent with stationarity
Z_STATIONARY = 3.0
#: ... and the ratio known to this relative error at least (else "undetermined")
MAX_REL_ERROR = 0.1


@dataclass(frozen=True)
class FDRResult:
    """The first FDR over the recorded window.

    Attributes
    ----------
    steps : int
        Recorded steps (after the burn-in).
    lhs, rhs : float
        Time averages of ``L = Σ(1 − τ)(θ − c)·g̃`` and ``R = Σ η(1 + μ)/2 |b|²``.
    ratio, ratio_stderr : float
        ``lhs/rhs`` and its standard error by batch means over ``blocks`` consecutive blocks
        (delta method: ``std_k(L_k − ratio·R_k)/(√blocks · rhs)``).
    z : float
        ``(ratio − 1)/ratio_stderr``.
    verdict : str
        ``"stationary"`` (``|z|`` <= :data:`Z_STATIONARY` and a relative error <=
        :data:`MAX_REL_ERROR`), ``"not stationary"`` (``|z|`` larger) or ``"undetermined"``.
    blocks : int

    Examples
    --------
    >>> r = regression_example(steps=300, burn_in=100)
    >>> isinstance(r, FDRResult), r.steps, r.blocks
    (True, 300, 20)
    """

    __repr__ = short_repr

    steps: int
    lhs: float
    rhs: float
    ratio: float
    ratio_stderr: float
    z: float
    verdict: str
    blocks: int

    def to_dict(self) -> dict:
        return jsonable(self.__dict__.copy())


class FDRMonitor:
    """Accumulate the observables of the first fluctuation–dissipation relation during SGD.

    Parameters
    ----------
    optimizer : torch.optim.SGD
        Read only (hyperparameters, parameters, gradients, momentum buffers).
    burn_in : int
        Calls of :meth:`record` to skip before the window starts.
    blocks : int
        Blocks for the batch-means error (each block should be longer than the correlation
        time of the iterates).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, dampening=0.5)
    >>> mon = FDRMonitor(opt, burn_in=50, blocks=10)
    >>> X = torch.randn(256, 4, generator=g)
    >>> y = X.sum(1, keepdim=True) + 0.3 * torch.randn(256, 1, generator=g)
    >>> for _ in range(450):
    ...     idx = torch.randint(0, 256, (8,), generator=g)
    ...     opt.zero_grad()
    ...     torch.nn.functional.mse_loss(model(X[idx]), y[idx]).backward()
    ...     mon.record()                               # before the step
    ...     opt.step()
    >>> res = mon.result()
    >>> res.steps, res.verdict
    (400, 'stationary')
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, burn_in: int = 0, blocks: int = 20):
        if not isinstance(optimizer, torch.optim.SGD):
            raise InvalidArgumentError("the FDR monitor reads torch.optim.SGD (the relation is "
                                       f"derived for its update), got {type(optimizer).__name__}")
        for g in optimizer.param_groups:
            if g.get("nesterov"):
                raise InvalidArgumentError("Nesterov momentum has a different relation; the "
                                           "monitor supports nesterov=False")
            if g.get("maximize"):
                raise InvalidArgumentError("the monitor supports maximize=False")
            if float(g.get("momentum", 0.0)) != 0.0 and float(g.get("dampening", 0.0)) >= 1.0:
                raise InvalidArgumentError(
                    f"dampening must be < 1 with momentum (got {g.get('dampening')}): with "
                    "dampening 1 the gradient never enters the momentum buffer and the relation "
                    "divides by 1 - dampening = 0")
        if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
            raise InvalidArgumentError(f"burn_in must be an integer >= 0, got {burn_in!r}")
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 2:
            raise InvalidArgumentError(f"blocks must be an integer >= 2, got {blocks!r}")
        self.optimizer = optimizer
        self.burn_in = burn_in
        self.blocks = blocks
        self._seen = 0
        self._center: dict = {}
        self._L: list[float] = []
        self._R: list[float] = []

    @torch.no_grad()
    def record(self) -> None:
        """Read one step (after ``backward()``, before ``optimizer.step()``)."""
        self._seen += 1
        if self._seen <= self.burn_in:
            return
        first = not self._center
        L = R = 0.0
        for group in self.optimizer.param_groups:
            lr, mu = float(group["lr"]), float(group.get("momentum", 0.0))
            tau, wd = float(group.get("dampening", 0.0)), float(group.get("weight_decay", 0.0))
            for p in group["params"]:
                if p.grad is None:
                    continue
                if first:
                    self._center[p] = p.detach().clone()
                c = self._center.get(p)
                if c is None:          # a parameter that had no gradient at the first step
                    c = self._center[p] = p.detach().clone()
                g = p.grad.detach()
                if wd != 0.0:
                    g = g + wd * p.detach()
                buf = self.optimizer.state.get(p, {}).get("momentum_buffer") if mu else None
                b = g if buf is None else mu * buf + (1.0 - tau) * g
                L += (1.0 - tau) * float(torch.sum((p.detach() - c).double() * g.double()))
                R += 0.5 * lr * (1.0 + mu) * float(torch.sum(b.double() ** 2))
        self._L.append(L)
        self._R.append(R)

    @property
    def steps(self) -> int:
        """Recorded steps so far."""
        return len(self._L)

    def result(self) -> FDRResult:
        """The ratio over the recorded window, its error and the verdict."""
        n, k = len(self._L), self.blocks
        if n < 2 * k:
            return FDRResult(n, math.nan, math.nan, math.nan, math.nan, math.nan,
                             "undetermined", k)
        m = (n // k) * k                     # the most recent steps that fill k blocks
        L = np.asarray(self._L[n - m:]).reshape(k, -1).mean(axis=1)
        R = np.asarray(self._R[n - m:]).reshape(k, -1).mean(axis=1)
        lhs, rhs = float(L.mean()), float(R.mean())
        if not rhs > 0:
            return FDRResult(m, lhs, rhs, math.nan, math.nan, math.nan, "undetermined", k)
        ratio = lhs / rhs
        se = float(np.std(L - ratio * R, ddof=1) / math.sqrt(k) / rhs)
        z = (ratio - 1.0) / se if se > 0 else math.inf * np.sign(ratio - 1.0)
        if abs(z) > Z_STATIONARY:
            verdict = "not stationary"
        elif se <= MAX_REL_ERROR:
            verdict = "stationary"
        else:
            verdict = "undetermined"
        return FDRResult(m, lhs, rhs, ratio, se, float(z), verdict, k)


def regression_example(steps: int = 2000, *, burn_in: int = 500, seed: int = 0,
                       lr: float = 0.02, momentum: float = 0.9, dampening: float = 0.5,
                       weight_decay: float = 1e-3, batch: int = 8) -> FDRResult:
    """A runnable example: noisy linear regression (512 samples, 16 features, noise sd 0.5)
    trained by minibatch SGD with momentum, dampening and weight decay at a constant learning
    rate; the iterates settle into a stationary distribution around the minimum, where the
    FDR holds (a few seconds on a CPU).

    Examples
    --------
    >>> r = regression_example(steps=600, burn_in=200)
    >>> r.verdict, abs(r.z) < 3
    ('stationary', True)
    """
    g = torch.Generator().manual_seed(seed)
    n, d = 512, 16
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w_true = torch.randn(d, 1, generator=g, dtype=torch.float64)
    y = X @ w_true + 0.5 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    model = nn.Linear(d, 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, dampening=dampening,
                          weight_decay=weight_decay)
    mon = FDRMonitor(opt, burn_in=burn_in)
    loss_fn = nn.MSELoss()
    for _ in range(burn_in + steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        opt.zero_grad(set_to_none=False)
        loss_fn(model(X[idx]), y[idx]).backward()
        mon.record()
        opt.step()
    return mon.result()
