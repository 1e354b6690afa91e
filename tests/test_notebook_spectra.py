"""The Jacobian-spectra notebook runs top to bottom in a Jupyter kernel
and shows what its text says: orthogonal tanh is the only critical MLP that stays isometric at
small depth, and small-c ResNets are isometric for tanh and ReLU alike."""
import time


def test_notebook_spectra_runs(run_notebook):
    t0 = time.perf_counter()
    ns = run_notebook("jacobian_spectra.ipynb")
    elapsed = time.perf_counter() - t0
    rows = {(r[0], r[1], r[2]): r for r in ns["rows"]}
    assert all(abs(r[3] - 1.0) < 1e-9 for r in ns["rows"])        # critical: m1 = χ_J^L = 1
    assert rows[("tanh", "orthogonal", 4)][6] == "isometric"
    assert all(r[6] != "isometric" for k, r in rows.items() if k[0] == "relu")
    # relative variance: ReLU orthogonal L exactly, Gaussian 2L
    assert abs(rows[("relu", "orthogonal", 16)][4] - 16) < 1e-9
    assert abs(rows[("relu", "gaussian", 16)][4] - 32) < 1e-9
    small_c = [r for r in ns["res"] if r[1] == 0.1]
    assert {r[0] for r in small_c if r[6] == "isometric"} == {"tanh", "relu"}
    assert ns["v"].verdict == "consistent"
    # the notebook's promise (< 30 s on the development VM); generous for loaded CI machines
    assert elapsed < 120
