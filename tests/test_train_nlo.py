"""The order-1/n shift of the trained prediction (critheory.theory.ntk.trained_nlo; docs/ntk.md
§10) against independent routes.

* The NTK-fluctuation part at convergence (``ntk_mean`` + ``ntk_variance``: a linear model
  with the network's own random NTK, frozen) against the closed-form second-order expansion of
  ``E[Θ̂_BA Θ̂_AA⁻¹] y`` in the NTK's mean shift and covariance (no iteration; to the
  iteration's stopping tolerance, 1e-10 absolute on coefficients of size 1e-3).
* Exact structure: no steps, no shift; a linear network trained through its biases only is a
  linear model in its parameters (no dNTK, no ddNTK: exactly 0); rescaling every rate by c and
  the step by 1/c leaves the dynamics unchanged; a duplicated test input repeats its entry.
* Trained ensembles (control variates: the network's own frozen-NTK linear model, whose mean
  the theory predicts separately, so that the dNTK/ddNTK part is measured with the small
  spread of ``z − z_lin``): Student-t scores with S − 1 degrees of freedom, |t| <= 3.5 for
  one or two scores. The remainder of the 1/n expansion is of relative order L/n with a large
  coefficient for the dynamical part (measured: docs/ntk.md §10.4), so the ensemble tests run
  at n = 512 (depth 2, two steps: the default run) and n = 64 (depth 3, convergence, the total
  shift only: slow-marked).
"""
from __future__ import annotations

import numpy as np
import pytest

import critheory as ct
from critheory.errors import CritheoryError
from critheory.simulation.train import train_ensemble
from critheory.theory.ntk.trained import trained_prediction
from critheory.theory.ntk.trained_nlo import mean_shift, output_statistics

X3 = np.array([[1.0, 0.3], [-0.4, 1.0], [0.7, 0.6]])
Y2 = np.array([0.6, -0.4])


def _stats(act, sw, sb, x, L, lb=1.0, lw=1.0):
    net = ct.network("mlp", act)
    x = np.asarray(x, dtype=float)
    return output_statistics(net, sw, sb, x @ x.T / x.shape[1], L, np.full(L, lb),
                             np.full(L, lw))


def _shift(st, y, eta, steps):
    return mean_shift(st["ntk"], st["kernel"], st["ntk_correction"], st["ntk_cov"],
                      st["tau_z"], st["omega"], st["nu"], y, eta=eta, steps=steps)


def test_frozen_ntk_part_is_the_expansion_of_the_kernel_regression():
    """At convergence the NTK-fluctuation terms are n × the 1/n part of
    ``E[Θ̂_BA Θ̂_AA⁻¹] y`` with ``Θ̂ = Θ + Δ``, ``E[Δ] = Θ1/n``, ``n Cov(Δ, Δ) = C``:
    ``E[Δ_BA]Θ⁻¹y − Θ_BAΘ⁻¹E[Δ_AA]Θ⁻¹y − E[Δ_BA Θ⁻¹ Δ_AA]Θ⁻¹y + Θ_BAΘ⁻¹E[Δ_AA Θ⁻¹ Δ_AA]Θ⁻¹y``,
    independent of η."""
    x = np.array([[1.0, 0.3, 0.1], [-0.4, 1.0, 0.5], [0.2, -0.9, 0.3], [0.7, 0.6, -0.2],
                  [-0.5, -0.5, 0.8]])
    y = np.array([0.6, -0.4, 0.3])
    st = _stats("linear", 1.0, 0.1, x, 3)           # many inputs: the cheap expectations
    A, B = [0, 1, 2], [3, 4]
    T, C, T1 = st["ntk"], st["ntk_cov"], st["ntk_correction"]
    Ti = np.linalg.inv(T[np.ix_(A, A)])
    w = Ti @ y
    CBA_AA = C[np.ix_(B, A, A, A)]                   # [b, α, κ, β] = n Cov(Δ_bα, Δ_κβ)
    CAA_AA = C[np.ix_(A, A, A, A)]
    want = (T1[np.ix_(B, A)] @ w - T[np.ix_(B, A)] @ Ti @ T1[np.ix_(A, A)] @ w
            - np.einsum("bakc,ak,c->b", CBA_AA, Ti, w)
            + T[np.ix_(B, A)] @ Ti @ np.einsum("iakc,ak,c->i", CAA_AA, Ti, w))
    for eta_frac in (0.3, 0.5, 0.9):
        eta = eta_frac * 2.0 / np.linalg.eigvalsh(T[np.ix_(A, A)])[-1]
        s = _shift(st, y, eta, None)
        got = (s.terms["ntk_mean"] + s.terms["ntk_variance"])[B]
        # the iteration stops once a step's sources fall below 1e-13: the untaken tail of a
        # geometric series of rate ρ < 1 is below 1e-13/(1 − ρ) (ρ ≈ 0.9 here)
        assert got == pytest.approx(want, rel=0, abs=1e-10)
        assert s.coefficient[A] == pytest.approx(np.zeros(3), abs=1e-9)  # training set fitted


def test_exact_structure():
    st = _stats("linear", 1.0, 0.2, X3, 3)
    assert np.all(_shift(st, Y2, 0.2, 0).coefficient == 0.0)
    # a linear network trained through its biases only: linear in its trained parameters
    sl = _stats("linear", 1.0, 0.2, X3, 3, lw=0.0)
    s = _shift(sl, Y2, 0.1, 40)
    assert np.all(s.terms["dntk"] == 0.0) and np.all(s.terms["ddntk"] == 0.0)
    assert np.any(s.terms["ntk_variance"] != 0.0)
    # every rate × c, the step / c: the same trajectory
    p1 = trained_prediction("mlp", 1.0, 0.2, X3, Y2, 3, activation="linear", eta=0.1,
                            steps=30, width=40)
    p2 = trained_prediction("mlp", 1.0, 0.2, X3, Y2, 3, activation="linear", eta=0.1 / 2.5,
                            steps=30, width=40, lambda_b=2.5, lambda_w=2.5)
    assert np.all(np.abs(p1.nlo_coefficient) > 1e-4)
    assert p2.nlo_coefficient == pytest.approx(p1.nlo_coefficient, rel=1e-9)
    assert p2.mean_nlo == pytest.approx(p1.mean + p1.nlo_coefficient / 40, rel=1e-12)
    # a duplicated test input
    p3 = trained_prediction("mlp", 1.0, 0.2, np.vstack([X3, X3[2]]), Y2, 3,
                            activation="linear", eta=0.1, steps=30, width=40)
    assert p3.nlo_coefficient == pytest.approx(np.repeat(p1.nlo_coefficient, 2), rel=1e-9)
    d = p1.to_dict()
    assert d["prediction_nlo"] == pytest.approx(list(p1.mean_nlo))
    assert set(d["prediction_nlo_terms"]) == {"ntk_mean", "ntk_variance", "dntk", "ddntk"}
    assert d["depth_to_width"] == 3 / 40
    assert trained_prediction("mlp", 1.0, 0.0, X3, Y2, 3, activation="tanh").mean_nlo is None


@pytest.mark.parametrize("kw, msg", [
    (dict(activation="relu", eta=0.2, width=32), "smooth activation"),
    (dict(activation="tanh", width=32), "needs the step eta"),
    (dict(activation="tanh", eta=0.2, width=3), "depth << width"),
    (dict(activation="linear", eta=1e-7, width=32), "does not converge"),
    (dict(activation="tanh", eta=0.1, width=32, inputs=np.vstack([X3, -X3])), "budget")])
def test_refusals(kw, msg):
    x = kw.pop("inputs", X3)
    with pytest.raises(CritheoryError) as exc:
        trained_prediction("mlp", 1.0, 0.0, x, Y2, 3, **kw)
    assert msg in str(exc.value) and "\n" not in str(exc.value)


def _measure(act, sw, sb, x, y, L, n, S, eta, steps, seed):
    """n × the ensemble mean of (z − z_lin) and of (z_lin − z_∞) with their standard errors;
    ``z_lin`` the network's own frozen-NTK linear model, ``z_∞`` the infinite-width one (both
    built from the network's initial outputs: their differences have mean E[z] − M y)."""
    net = ct.network("mlp", act)
    p = trained_prediction(net, sw, sb, x, y, L, eta=eta, steps=steps)
    e = train_ensemble(net, sw, sb, x, y, L, n, S, eta=eta, steps=steps, seed=seed,
                       max_steps=300)
    a = len(y)
    z0 = e.initial_outputs
    lin = np.empty_like(e.outputs)
    for s in range(S):
        T = e.ntk[s]
        lam, V = np.linalg.eigh(T[:a, :a])
        f = 1 / lam if steps is None else (1.0 - (1.0 - eta * lam) ** steps) / lam
        lin[s] = z0[s, a:] - T[a:, :a] @ (V * f) @ V.T @ (z0[s, :a] - y)
    inf = z0[:, a:] - (z0[:, :a] - y) @ p.response.T
    out = {}
    for k, d in (("dyn", e.outputs - lin), ("lin", lin - inf), ("tot", e.outputs - inf)):
        out[k] = (n * d.mean(axis=0), n * d.std(axis=0, ddof=1) / np.sqrt(S))
    return out, e


def test_two_steps_against_trained_ensemble():
    """Depth 2 (the statistics exact at any width), two large steps (η = 0.9 η_max, targets of
    size ~1): every term of the recursion enters (τ, dĤ, ∂τ, ∂²Θ̂, ω); n = 512, 8000
    networks (6–14 s on the shared 2-core machine, half of it the statistics)."""
    y = 2.0 * Y2
    p = trained_prediction("mlp", 1.0, 0.0, X3, y, 2, activation="tanh")
    eta = 0.9 * p.eta_max
    q = trained_prediction("mlp", 1.0, 0.0, X3, y, 2, activation="tanh", eta=eta, steps=2,
                           width=512)
    pred = q.nlo_terms["dntk"] + q.nlo_terms["ddntk"]
    assert abs(pred[0]) > 0.1                                 # resolved by the check
    m, _ = _measure("tanh", 1.0, 0.0, X3, y, 2, 512, 8000, eta, 2, seed=11)
    t = (m["dyn"][0] - pred) / m["dyn"][1]
    assert abs(t[0]) <= 3.5, (m["dyn"], pred)
    t = (m["tot"][0] - q.nlo_coefficient) / m["tot"][1]
    assert abs(t[0]) <= 3.5, (m["tot"], q.nlo_coefficient)


@pytest.mark.slow
@pytest.mark.parametrize("act, sb, S", [("tanh", 0.0, 6000), ("linear", 0.2, 7000)])
def test_converged_depth3_against_trained_ensemble(act, sb, S):
    """Depth 3 at convergence (η = η_max/2, tol 1e-6), n = 64: the shift of the trained mean
    (2–5 min each on a shared 2-core machine). Its dNTK/ddNTK part alone still carries a
    resolved remainder of relative order L/n at this width (docs/ntk.md §10.4), so it is
    checked at depth 2 (above), not here."""
    n = 64
    p = trained_prediction("mlp", 1.0, sb, X3, Y2, 3, activation=act)
    eta = 0.5 * p.eta_max
    q = trained_prediction("mlp", 1.0, sb, X3, Y2, 3, activation=act, eta=eta, width=n)
    m, e = _measure(act, 1.0, sb, X3, Y2, 3, n, S, eta, None, seed=3 * n)
    assert e.converged.all()
    t = (m["tot"][0] - q.nlo_coefficient) / m["tot"][1]
    assert abs(t[0]) <= 3.5, (m["tot"], q.nlo_coefficient)


def test_cli_json(capsys):
    import json

    from critheory.cli.main import main

    argv = ["train", "linear", "--weight-var", "1", "--bias-var", "0.2", "--depth", "3",
            "--inputs", "1,0.3;-0.4,1;0.7,0.6", "--train-targets", "0.6,-0.4", "--width", "40",
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    p = trained_prediction("mlp", 1.0, 0.2, X3, Y2, 3, activation="linear", eta=out["eta"],
                           width=40)
    assert out["prediction_nlo"] == pytest.approx(list(p.mean_nlo), rel=1e-12)
    assert out["prediction_nlo_coefficient"] == pytest.approx(list(p.nlo_coefficient),
                                                              rel=1e-12)
    assert out["depth_to_width"] == 3 / 40
    argv[1], argv[3] = "relu", "2"
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prediction_nlo"] is None and "smooth activation" in out["prediction_nlo_note"]


@pytest.mark.parametrize("act, L", [("linear", 3),
                                    pytest.param("tanh", 2, marks=pytest.mark.slow)])
def test_one_neuron_statistics_match_the_dntk_tensors(act, L):
    """The output neuron's ``n E[dĤ_{δ0δ1δ2} z_δ3]`` built from X, Y here equals the dNTK room's
    ``P + Q + Q`` (every Kronecker pattern with one neuron: ``P_{0123} + Q_{0123} + Q_{0213}``),
    and its ``n E[∂²_{g g}Θ̂]`` at one input the room's ``2(3R + S + T + U)`` (tanh: ~40 s,
    slow-marked)."""
    from critheory.theory.ntk.dntk_data import dntk_data_statistics

    x = np.array([[1.0, 0.3], [-0.4, 1.0], [0.7, 0.6]])
    st = _stats(act, 1.0, 0.1, x, L)
    d = dntk_data_statistics("mlp", act, 1.0, 0.1, x, depth=L)
    Tz = st["tau_z"]
    P, Q = d.P[-1], d.Q[-1]
    assert np.max(np.abs(P)) > 0.1
    np.testing.assert_allclose(Tz + Tz.transpose(0, 2, 1, 3), P + Q + Q.transpose(0, 2, 1, 3),
                               rtol=1e-12, atol=1e-12)
    i = (0, 0, 0, 0)
    h2 = 2 * st["omega"][i] + 2 * st["nu"][i]
    assert h2 == pytest.approx(2 * (3 * d.R[-1][i] + d.S[-1][i] + d.T[-1][i] + d.U[-1][i]),
                               rel=1e-12)
