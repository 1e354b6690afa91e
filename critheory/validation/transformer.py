"""Transformer theory against finite-width simulation: token kernels and APJN, with z-scores.

:func:`compare_transformer` runs :func:`critheory.simulation.transformer.simulate_transformer`
and :func:`critheory.theory.transformer.transformer_depth` with the same network, input and
reference layer, and scores every layer ``l``:

* each entry ``t <= s`` of the token kernel ``G^l`` and the APJN ``J^{l0,l}``:
  ``z = (mean_sim − theory)/√(stderr_sim² + err_theory²)`` (standard error over networks; the
  theory's quasi-Monte Carlo error), the denominator floored at ``1e-12 |theory|`` (entries exact
  in every network, such as the post-LN diagonal ``G_tt = 1``, have rounding-noise errors);
* a verdict at family-wise level α by Bonferroni over all the scored entries, with the shared
  statistics of :mod:`critheory.validation.stats` as ``critheory validate`` does: the scores
  are Student-t with the Welch–Satterthwaite degrees of freedom of ``stderr² + err²`` (``S − 1``
  for the networks, ``R − 1`` for ``R`` QMC replicas; the smallest over the scored entries), and
  the thresholds of positive, skewed entries get the lognormal calibration.

Finite width. The theory is the limit ``n → ∞`` with ``C = n/H → ∞`` channels per head. At
finite width three effects shift the simulated means: the usual ``O(1/n)`` per layer of the
MLP and LayerNorm blocks; non-Gaussian logits (a logit is a sum of C products, excess kurtosis
``6/C``: corrections ``O(1/C)``, large when ``C_Q C_K`` saturates the softmax); and the random
attention pattern of each head: the attention output's kernel is an average over only H heads of
random matrices, so the token kernel fluctuates by ``O(1/√H)`` from network to network (this is
in the standard error) and, through the nonlinear maps of later layers, its mean moves by
``O(1/H)`` per layer. ``relative_deviation`` reports ``(mean_sim − theory)/theory`` per layer:
it shrinks as width and heads grow (``tests/test_transformer.py`` checks that).

Examples
--------
>>> from critheory.blocks.transformer import transformer
>>> from critheory.validation.transformer import compare_transformer
>>> net = transformer("transformer", "relu", tokens=2, heads=2, mlp_ratio=1)
>>> c = compare_transformer(net, 2.0, 0.0, width=32, depth=3, seeds=16, seed=0)
>>> c.verdict
'consistent'
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.validation.compare import ALPHA
from critheory.validation.stats import decide, verdict_of, welch_dof
from critheory.common.reprs import short_repr

__all__ = ["TransformerComparison", "compare_transformer"]

_FLOOR = 1e-12


@dataclass(frozen=True)
class TransformerComparison:
    """Theory and simulation of one transformer, with z-scores per layer and the verdict."""

    __repr__ = short_repr

    theory: object
    simulation: object
    kernel_z: np.ndarray           # (L, T, T), NaN below the diagonal
    apjn_z: np.ndarray             # (L,), NaN for l < l0
    relative_deviation: np.ndarray  # (L,): (mean diagonal of G, APJN) relative deviations
    apjn_relative_deviation: np.ndarray
    z_crit: float
    n_compared: int
    alpha: float
    verdict: str
    kernel_verdict: str
    apjn_verdict: str

    @property
    def max_abs_z(self) -> float:
        zs = np.concatenate([self.kernel_z[np.isfinite(self.kernel_z)],
                             self.apjn_z[np.isfinite(self.apjn_z)]])
        return float(np.abs(zs).max()) if zs.size else float("nan")

    def to_dict(self) -> dict:
        th, s = self.theory, self.simulation

        def lst(a):
            a = np.asarray(a, dtype=float)
            if a.ndim > 1:
                return [lst(x) for x in a]
            return [float(v) if np.isfinite(v) else None for v in a]

        def num(x):
            return float(x) if x is not None and np.isfinite(x) else None

        return {
            "arch": s.arch, "activation": s.activation, "weight_var": s.weight_var,
            "bias_var": s.bias_var, "width": s.width, "depth": s.depth, "tokens": s.tokens,
            "heads": s.heads, "l0": s.l0, "seeds": s.n_seeds,
            "probes": "exact" if s.probes is None else s.probes, "seed": s.seed,
            "layers": th.depths.tolist(),
            "kernel_tokens_mean": lst(s.kernel_tokens_mean),
            "kernel_tokens_stderr": lst(s.kernel_tokens_stderr),
            "kernel_tokens_theory": lst(th.kernel_tokens),
            "kernel_tokens_theory_error": lst(th.kernel_tokens_error),
            "kernel_tokens_z": lst(self.kernel_z),
            "kernel_mean": lst(s.kernel.mean(axis=0)), "kernel_theory": lst(th.kernel),
            "apjn_mean": lst(s.apjn_mean), "apjn_stderr": lst(s.apjn_stderr),
            "apjn_theory": lst(th.apjn), "apjn_theory_error": lst(th.apjn_error),
            "apjn_z": lst(self.apjn_z),
            "relative_deviation": lst(self.relative_deviation),
            "apjn_relative_deviation": lst(self.apjn_relative_deviation),
            "z_crit": num(self.z_crit), "n_compared": self.n_compared, "alpha": self.alpha,
            "max_abs_z": num(self.max_abs_z), "verdict": self.verdict,
            "kernel_verdict": self.kernel_verdict, "apjn_verdict": self.apjn_verdict,
            "qmc": {"points": th.points, "replicas": th.replicas, "exact": th.exact},
            "settings": dict(th.settings, width=s.width, seeds=s.n_seeds),
            "elapsed": s.elapsed,
        }


def _z(mean, se, theory, err):
    den = np.sqrt(np.square(se) + np.square(err))
    den = np.maximum(den, _FLOOR * np.abs(theory))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (mean - theory) / den
    return np.where(np.isfinite(z), z, np.nan)


def _verdict(z, lo, hi) -> str:
    keep = np.isfinite(z)
    if not keep.any():
        return "undetermined"
    return verdict_of([z[keep]], hi[keep], lo[keep])


def compare_transformer(net, weight_var: float, bias_var: float, *, width: int, depth: int,
                        seeds: int = 8, l0: int = 1, q0: float = 1.0, corr: float = 0.5,
                        probes=None, seed: int = 0, alpha: float = ALPHA, points: int = 1024,
                        replicas: int = 8, tolerance: float | None = None
                        ) -> TransformerComparison:
    """Simulate and compute the theory of one transformer; z-scores and a verdict.

    Examples
    --------
    >>> import critheory as ct
    >>> net = ct.transformer("transformer", "relu", tokens=2, heads=1, mlp_ratio=1)
    >>> c = ct.compare_transformer(net, 2.0, 0.0, width=16, depth=1, seeds=8, seed=0, points=128)
    >>> c.verdict
    'consistent'
    """
    from critheory.errors import InvalidArgumentError
    from critheory.simulation.transformer import check_transformer_budget, resolve_probes
    from critheory.simulation.transformer import simulate_transformer
    from critheory.theory.transformer.depth import transformer_depth

    if not (np.isfinite(alpha) and 0 < alpha < 1):
        raise InvalidArgumentError(f"alpha must lie in (0, 1), got {alpha}")
    check_transformer_budget(net, width, depth, seeds, resolve_probes(net, width, probes))
    th = transformer_depth(net, weight_var, bias_var, depth, l0=l0, q0=q0, corr=corr,
                           points=points, replicas=replicas, tolerance=tolerance, seed=seed)
    s = simulate_transformer(net, weight_var, bias_var, width=width, depth=depth, seeds=seeds,
                             l0=l0, q0=q0, corr=corr, probes=probes, seed=seed)
    T = net.tokens
    upper = np.triu(np.ones((T, T), dtype=bool))
    kz = _z(s.kernel_tokens_mean, s.kernel_tokens_stderr, th.kernel_tokens,
            th.kernel_tokens_error)
    kz = np.where(upper, kz, np.nan)
    jz = _z(s.apjn_mean, s.apjn_stderr, th.apjn, th.apjn_error)
    if s.probes is None:
        jz[l0 - 1] = np.nan      # J^{l0,l0} = 1 exactly in both: nothing to test
    m = int(np.isfinite(kz).sum() + np.isfinite(jz).sum())
    S = s.n_seeds
    dof_err = None if th.exact else max(int(th.replicas) - 1, 1)
    dofs = [welch_dof(s.kernel_tokens_stderr, th.kernel_tokens_error, S - 1, dof_err)[
        np.isfinite(kz)], welch_dof(s.apjn_stderr, th.apjn_error, S - 1, dof_err)[
        np.isfinite(jz)]] if S > 1 else []
    dofs = np.concatenate(dofs) if dofs else np.array([])
    dofs = dofs[np.isfinite(dofs)]
    dof = float(dofs.min()) if dofs.size else (float(S - 1) if S > 1 else None)
    if S > 1:
        dec = decide([kz, jz], alpha, dof, samples=[
            s.kernel_tokens.reshape(S, -1), np.asarray(s.apjn, dtype=float).reshape(S, -1)])
        zc = dec.crit
        (klo, khi), (jlo, jhi) = dec.parts([kz.size, jz.size])
        klo, khi = klo.reshape(kz.shape), khi.reshape(kz.shape)
    else:
        zc = float("nan")
        klo = khi = np.full(kz.shape, np.nan)
        jlo = jhi = np.full(jz.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = s.kernel.mean(axis=0) / th.kernel - 1.0
        jrel = s.apjn_mean / th.apjn - 1.0
    kv, jv = _verdict(kz, klo, khi), _verdict(jz, jlo, jhi)
    verdict = ("undetermined" if "undetermined" in (kv,) and jv == "undetermined" else
               "inconsistent" if "inconsistent" in (kv, jv) else
               "consistent" if "consistent" in (kv, jv) else "undetermined")
    return TransformerComparison(th, s, kz, jz, rel, jrel, zc, m, float(alpha), verdict, kv, jv)
