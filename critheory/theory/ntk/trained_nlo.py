"""The order-1/n shift of what a network trained by gradient descent predicts (PDLT ch. ∞).

At width n the ensemble mean of the trained outputs is ``E[z_δ(t)] = m_δ(t) + m1_δ(t)/n +
O(1/n²)``, ``m = M y`` the infinite-width prediction of :mod:`critheory.theory.ntk.trained`.
This module computes the coefficient ``m1`` by expanding the exact discrete gradient-descent
dynamics of the function to order 1/n around the infinite-width trajectory and taking the
expectation with the statistics at initialization (derivation: ``docs/ntk.md`` §10):

    z(t+1) = z − ηΘ̂ε + ½η² τ[ε, ε] − (η³/6) ω[ε, ε, ε]
    Θ̂(t+1) = Θ̂ − η dĤ[ε] + ½η² ∂²Θ̂[ε, ε],      τ(t+1) = τ − η ∂τ[ε]

(``ε = z_A − y`` on the training set A, ``τ_{αδβ} = g_αᵀ∇²z_δ g_β``, ``dĤ_{κij} = τ_{κij} +
τ_{κji}``, ``ω`` and ``∂τ``, ``∂²Θ̂`` built from the ddNTKs). What enters: the NTK's mean shift
``Θ1`` and its variance (``A``, ``B``), the dNTK–preactivation correlation (``X``, ``Y``, i.e.
``P``, ``Q``) and the ddNTK means (``R``, ``S``, ``T``, ``U``); by parity the NTK–preactivation
correlations ``D``, ``F`` and the kernel's shift ``K1`` do not enter the mean. Every order-1/n
quantity is multiplied by leading-order residuals, affine in the Gaussian ``z_A(0) ~ N(0,
K_AA)``; the linear recursions are iterated step by step (to ``steps``, or to convergence), so
the dependence on the step η is kept.

Regime: leading order in 1/n (the remainder is of relative order (L/n)², and the 1/n term
itself of relative order L/n: the expansion needs L ≪ n); a step inside the stable range
``0 < η < 2/λ_max(Θ_AA)``; networks of dense and phi blocks whose dNTK and ddNTK have rules
(:mod:`critheory.theory.ntk.dntk_data`: a smooth activation on several inputs).

Examples
--------
>>> import numpy as np
>>> from critheory.theory.ntk.trained_nlo import mean_shift
>>> # one training input, biases of a one-layer model only: Θ̂ = λ_b exactly, nothing moves
>>> z4 = np.zeros((2, 2, 2, 2))
>>> c = mean_shift(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2)), z4, z4, z4, z4, [1.0],
...                eta=0.5, steps=None)
>>> c.coefficient.tolist(), c.steps > 0
([0.0, 0.0], True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from critheory.errors import InvalidArgumentError

__all__ = ["NLOShift", "mean_shift", "output_statistics", "MAX_NLO_STEPS", "MAX_NLO_WORK"]

#: The most steps iterated (to ``steps`` or to convergence).
MAX_NLO_STEPS = 100_000
#: Budget (estimated seconds) of the statistics' four-point expectations.
MAX_NLO_WORK = 120.0
# the dNTK/ddNTK fold's expectations per layer, in units of the several-input finite-width
# theory's per-layer estimate (measured: tanh, 3 inputs, depth 3: ~10 s unloaded)
_WORK_FACTOR = 30.0
#: Convergence: the leading residual and the order-1/n state settle below this (relative).
_TOL = 1e-13


@dataclass(frozen=True, eq=False)
class NLOShift:
    """The order-1/n coefficient of the trained mean on every input.

    Attributes
    ----------
    coefficient : ndarray (m,)
        ``m1``: ``E[z_δ(t)] = m_δ(t) + m1_δ/n`` (training inputs included).
    terms : dict of ndarray (m,)
        ``m1`` split by source: ``ntk_mean`` (Θ1), ``ntk_variance`` (A, B), ``dntk`` (P, Q),
        ``ddntk`` (R, S, T, U) (they sum to ``coefficient``).
    steps : int
        Steps iterated.
    """

    coefficient: np.ndarray
    terms: dict
    steps: int


def _cubic(h, GKG, i, j, k):
    """``E[u_i u_j u_k]`` of Gaussian u with mean h and covariance GKG (index letters)."""
    return (np.einsum(f"{i},{j},{k}->{i}{j}{k}", h, h, h)
            + np.einsum(f"{i},{j}{k}->{i}{j}{k}", h, GKG)
            + np.einsum(f"{j},{i}{k}->{i}{j}{k}", h, GKG)
            + np.einsum(f"{k},{i}{j}->{i}{j}{k}", h, GKG))


def mean_shift(ntk, kernel, ntk_correction, ntk_cov, tau_z, omega, nu, targets, *,
               eta: float, steps: int | None) -> NLOShift:
    """The coefficient ``m1`` of the trained mean's 1/n shift, from the statistics of the output
    at initialization on m inputs (the first ``len(targets)`` the training set A).

    Parameters
    ----------
    ntk, kernel, ntk_correction : array (m, m)
        ``Θ``, ``K``, ``Θ1`` (``E[Θ̂] = Θ + Θ1/n``).
    ntk_cov : array (m, m, m, m)
        ``n Cov(Θ̂_{α1α2}, Θ̂_{α3α4})``.
    tau_z : array (m, m, m, m)
        ``n E[τ_{αβγ} z_δ]`` (``τ_{αβγ} = g_αᵀ∇²z_β g_γ``).
    omega : array (m, m, m, m)
        ``n E[∇³z_{δ0}[g_{δ1}, g_{δ2}, g_{δ3}]]``.
    nu : array (m, m, m, m)
        ``n E[(∇²z_i g_a)ᵀ λ (∇²z_j g_b)]`` indexed ``[i, j, a, b]``.
    targets : array (a,)
    eta : float
        The step (checked by the caller against the stable range).
    steps : int or None
        None: iterate to convergence (at most :data:`MAX_NLO_STEPS`).

    Returns
    -------
    NLOShift
    """
    Th = np.asarray(ntk, dtype=float)
    K = np.asarray(kernel, dtype=float)
    y = np.asarray(targets, dtype=float)
    a = y.size
    A = slice(0, a)
    eta = float(eta)
    C = np.asarray(ntk_cov, dtype=float)
    Tz = np.asarray(tau_z, dtype=float)[..., A]            # z index on the training set
    Om = np.asarray(omega, dtype=float)
    N = np.asarray(nu, dtype=float)
    T1 = np.asarray(ntk_correction, dtype=float)
    # the derivative of τ_{αδβ} along g_κ, and ∂²Θ̂_{ij} along g_a, g_b (×n)
    Lam = (Om.transpose(1, 0, 2, 3) + N.transpose(0, 1, 3, 2)
           + N.transpose(2, 0, 1, 3))                       # [α, δ, β, κ]
    LamA = Lam[A, :, A, A]                                  # α, β, κ on A
    Lamd = (Lam[A][:, :, A, A] + Lam[A].transpose(0, 2, 1, 3)[:, :, A, A])   # dĤ: [κ, i, α, μ]
    H2 = (Om.transpose(0, 3, 1, 2) + Om.transpose(1, 0, 2, 3) + N + N.transpose(0, 1, 3, 2))
    Dz = (Tz[A] + Tz[A].transpose(0, 2, 1, 3))[:, :, A]     # n E[dĤ_{κδα} z_μ], κ α μ on A
    TzA = Tz[A][:, :, A]                                    # [α, δ, β, μ], α β μ on A
    OmA = Om[:, A, A, A]
    KA = K[A, A]
    ThA = Th[:, A]
    ImA = np.eye(a) - eta * Th[A, A]
    m = Th.shape[0]
    G = np.eye(a)                      # ε0(t) = G z + h, z = z_A(0)
    h = -y.copy()
    ac, bc = np.zeros((a, a)), np.zeros(a)              # c(t) = −η Σ_{s<t} ε0(s) = ac z + bc
    W = np.zeros((m, a, a))            # n E[Δ_{δα} z1_κ(t)], κ on A (the feedback)
    Qc = [np.zeros((a, a, a, a)), np.zeros((a, a, a)), np.zeros((a, a))]   # Σ ε0_κ c_μ
    Qe = [np.zeros((a, a, a, a)), np.zeros((a, a, a)), np.zeros((a, a))]   # Σ ε0_κ ε0_μ
    names = ("ntk_mean", "ntk_variance", "dntk", "ddntk")
    m1 = {k: np.zeros(m) for k in names}
    scale = max(float(np.max(np.abs(y))), float(np.sqrt(np.max(np.diag(KA)))), 1e-300)
    limit = MAX_NLO_STEPS if steps is None else int(steps)
    if limit > MAX_NLO_STEPS:
        raise InvalidArgumentError(f"prediction_nlo iterates at most {MAX_NLO_STEPS} steps, "
                                   f"asked for {limit}")
    if steps is None:
        rho = float(np.max(np.abs(np.linalg.eigvals(ImA)))) if a else 0.0
        need = 0 if rho == 0.0 else 2.0 * np.log(_TOL) / np.log(min(rho, 1.0 - 1e-300))
        if not (rho < 1.0 and need <= MAX_NLO_STEPS):
            raise InvalidArgumentError(
                f"prediction_nlo: gradient descent at eta = {eta:g} does not converge within "
                f"{MAX_NLO_STEPS} steps (a step far below the stable limit, or an "
                "ill-conditioned training NTK): give the number of steps or a larger step")
    t = 0
    while t < limit:
        GKG = G @ KA @ G.T
        KGt = KA @ G.T
        aKG = ac @ KA @ G.T

        def q_eps(Q, h=h, KGt=KGt):
            """E[Q_κμ ε0_α(t)] of a quadratic accumulator, indexed [κ, μ, α]."""
            return (np.einsum("kmpq,pq->km", Q[0], KA)[..., None] * h
                    + np.einsum("kmp,pa->kma", Q[1], KGt) + Q[2][..., None] * h)
        src = {
            # (a) −η E[Δ] ε0
            "ntk_mean": -eta * T1[:, A] @ h,
            # (b) −η E[Δ_{δα} ε1_α]
            "ntk_variance": -eta * np.einsum("daa->d", W),
            # (c) the dNTK part of −η E[δΘ ε0] and (d) ½η² E[τ(0)[ε0, ε0]]
            "dntk": (-eta * (np.einsum("kdam,km,a->d", Dz, ac, h)
                             + np.einsum("kdam,k,am->d", Dz, bc, G))
                     + 0.5 * eta * eta * (np.einsum("adbm,am,b->d", TzA, G, h)
                                          + np.einsum("adbm,a,bm->d", TzA, h, G))),
            # (c), (d) ddNTK parts and (e) −(η³/6) ω[ε0, ε0, ε0]
            "ddntk": (-eta * (-eta * np.einsum("kdam,kma->d", Lamd, q_eps(Qc))
                              + 0.5 * eta * eta * np.einsum("dakm,kma->d", H2[:, A][:, :, A, A],
                                                            q_eps(Qe)))
                      + 0.5 * eta * eta * np.einsum(
                          "adbk,kab->d", LamA,
                          np.einsum("k,a,b->kab", bc, h, h) + np.einsum("k,ab->kab", bc, GKG)
                          + np.einsum("a,kb->kab", h, aKG) + np.einsum("b,ka->kab", h, aKG))
                      - eta ** 3 / 6.0 * np.einsum("dabc,abc->d", OmA,
                                                   _cubic(h, GKG, "a", "b", "c"))),
        }
        # updates to t + 1 (every right-hand side at t)
        W = (W - eta * np.einsum("kb,dab->dak", Th[A, A], W)
             - eta * np.einsum("dakb,b->dak", C[:, A][:, :, A, A], h))
        for k in names:
            m1[k] = m1[k] - eta * ThA @ m1[k][A] + src[k]
        Qc[0] += np.einsum("kp,mq->kmpq", G, ac)
        Qc[1] += np.einsum("kp,m->kmp", G, bc) + np.einsum("k,mp->kmp", h, ac)
        Qc[2] += np.outer(h, bc)
        Qe[0] += np.einsum("kp,mq->kmpq", G, G)
        Qe[1] += np.einsum("kp,m->kmp", G, h) + np.einsum("k,mp->kmp", h, G)
        Qe[2] += np.outer(h, h)
        ac, bc = ac - eta * G, bc - eta * h
        G, h = ImA @ G, ImA @ h
        t += 1
        if steps is None and t % 16 == 0:
            res = max(float(np.max(np.abs(G))), float(np.max(np.abs(h))) / scale)
            tot = sum(m1[k] for k in names)
            sz = sum(float(np.max(np.abs(src[k]))) for k in names)
            if (res < _TOL and sz < _TOL * max(1.0, float(np.max(np.abs(tot))))
                    and float(np.max(np.abs(tot[A]))) < 1e-10 * max(1.0, float(np.max(np.abs(tot))))):
                break
    else:
        if steps is None:
            raise InvalidArgumentError(
                f"prediction_nlo: the order-1/n state did not settle within {MAX_NLO_STEPS} "
                f"steps at eta = {eta:g}: give the number of steps")
    tot = sum(m1[k] for k in names)
    return NLOShift(tot, m1, t)


def output_statistics(net, weight_var: float, bias_var: float, gram, depth: int, lambda_b,
                      lambda_w) -> dict:
    """The statistics :func:`mean_shift` reads, at the output layer ``L`` on m inputs (Gram
    matrix ``x·x'/n0``), from one fold of the several-input dNTK theory (whose rules run the
    NTK's several-input finite-width rules first): ``ntk``, ``kernel``, ``ntk_correction``,
    ``ntk_cov``, ``tau_z``, ``omega``, ``nu``.

    Raises
    ------
    InvalidArgumentError
        What :func:`critheory.theory.ntk.dntk_data.check_network` refuses (a non-smooth
        activation on several inputs, blocks without rules), an activation without ddNTK, a
        problem beyond :data:`MAX_NLO_WORK`.

    Examples
    --------
    >>> import numpy as np
    >>> from critheory.blocks.registry import network
    >>> st = output_statistics(network("mlp", "linear"), 1.0, 0.0, np.eye(2), 2, np.ones(2),
    ...                        np.ones(2))
    >>> sorted(st), st["tau_z"].shape
    (['kernel', 'ntk', 'ntk_correction', 'ntk_cov', 'nu', 'omega', 'tau_z'], (2, 2, 2, 2))
    >>> float(st["ntk"][0, 0])          # Θ² = λ_b + λ_W K¹ + σ_w² Θ¹ = 1 + 1 + 2 (q = 1)
    4.0
    """
    from critheory.theory.fold import Ctx
    from critheory.theory.ntk import dntk as one
    from critheory.theory.ntk import dntk_data, finite_data

    G = np.asarray(gram, dtype=float)
    m = G.shape[0]
    try:
        dntk_data.check_network(net, max(m, 2))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"prediction_nlo: {exc}") from None
    act = net.activation
    from critheory.theory.finitewidth.data import seconds_per_layer

    est = (depth - 1) * _WORK_FACTOR * seconds_per_layer(act, m)
    if est > MAX_NLO_WORK:
        raise InvalidArgumentError(
            f"prediction_nlo: {m} distinct inputs to depth {depth} need about {est:.3g} s of "
            f"four-point expectations for {act.name}, beyond the budget {MAX_NLO_WORK:g} s: "
            "use fewer inputs or layers")
    if not one.ddntk_defined(act):
        raise InvalidArgumentError(f"prediction_nlo needs the ddNTK, undefined for {act.name} "
                                   "(a kink)")
    s = dntk_data.start(G, weight_var=weight_var, bias_var=bias_var, lambda_b=lambda_b[0],
                        lambda_w=lambda_w[0], second=True)
    for i in range(1, depth):
        s = dntk_data.apply(net, s, Ctx(act, weight_var, bias_var, lambda_b=lambda_b[i],
                                        lambda_w=lambda_w[i]))
    X, Y = s.dntk_sums[0], s.dntk_sums[1]
    R = s.ddntk_r
    out = dict(ntk=s.theta, kernel=s.K, ntk_correction=s.theta1,
               ntk_cov=finite_data.variance(s),
               tau_z=X + X.transpose(2, 1, 0, 3) + Y,
               omega=R + R.transpose(0, 2, 1, 3) + R.transpose(0, 2, 3, 1),
               nu=s.ddntk_s + s.ddntk_t + s.ddntk_u)
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise InvalidArgumentError("prediction_nlo: the order-1/n statistics left float64 at "
                                   "this depth")
    return out
