"""critheory sweep: Dask-scheduled grids, the zarr store written cell by cell, resume, plot."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
pytest.importorskip("xarray")
pytest.importorskip("zarr")

from critheory.cli.main import main  # noqa: E402
from critheory.errors import InvalidArgumentError  # noqa: E402
from critheory.sweep import SweepSpec, cell_seed, check_spec, run_cell  # noqa: E402
from critheory.sweep.cell import SCIENCE  # noqa: E402
from critheory.sweep.plot import agreement  # noqa: E402
from critheory.sweep.run import run_sweep  # noqa: E402
from critheory.sweep.store import load  # noqa: E402

# small networks: a cell takes ~0.05 s here; tanh has a curved critical line through the grid
SPEC = SweepSpec(("tanh",), "mlp", 1.0, (0.5, 3.0, 9), (0.0, 0.3, 7), width=32, depth=12,
                 seeds=8, n_boot=100)
CLI_ARGS = ["tanh", "--weight-var", "0.5:3:9", "--bias-var", "0:0.3:7", "--width", "32",
            "--depth", "12", "--seeds", "8", "--n-boot", "100"]


@pytest.fixture(scope="module")
def client():
    """One 2-worker LocalCluster of real worker processes for the module."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def full(client, tmp_path_factory):
    """The 9x7 sweep, uninterrupted, on the 2-worker cluster: (run, path)."""
    out = tmp_path_factory.mktemp("sweep") / "full.zarr"
    return run_sweep(SPEC, out, client=client), out


def _science(ds):
    return {v: np.asarray(ds[v].values) for v in SCIENCE}


def test_grid_9x7_store_plot_and_theory(full, tmp_path):
    run, out = full
    assert (run.cells, run.computed, run.skipped, run.workers, run.run) == (63, 63, 0, 2, 1)
    ds = load(out)
    # consolidated metadata after the run: one read opens it (issue 26 item 7)
    import xarray as xr
    import zarr

    assert zarr.open_consolidated(str(out)) is not None
    with xr.open_zarr(str(out), consolidated=True) as cds:
        assert int(cds.attrs["runs"] if "runs" in cds.attrs else 1) >= 1
        assert set(cds.data_vars) == set(ds.data_vars)
    assert ds["chi_j"].dims == ("activation", "weight_var", "bias_var")
    assert ds["chi_j"].shape == (1, 9, 7) and bool(ds["done"].all())
    assert list(ds["activation"].values) == ["tanh"]
    assert np.allclose(ds["weight_var"].values, np.linspace(0.5, 3.0, 9))
    for v in ("chi_j", "chi_j_stderr", "exponent", "chi_j_theory", "phase"):
        assert v in ds and np.all(np.isfinite(ds[v].values))
    from critheory.sweep.plot import plot_sweep

    png = tmp_path / "s.png"
    plot_sweep(ds, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # theory beside it: the phase follows chi_J at the fixed point
    chi, ph = ds["chi_j_theory"].values, ds["phase"].values
    assert np.all(ph[chi < 0.99] == -1) and np.all(ph[chi > 1.01] == 1)
    # measured chi_J agrees with theory wherever the theory has a finite APJN (every cell
    # here): no |z| beyond the Bonferroni threshold at family-wise level 0.01
    agr = agreement(ds)
    assert agr["compared"] == 63
    assert agr["disagree"] == 0, agr["max_abs_z"]
    # ...and the comparison has power: a theory 25 % off in chi_J is caught in most cells
    # (log 1.25 = 0.22 against sigma = sqrt(se^2 + 1/32^2) ~ 0.035)
    wrong = ds.copy()
    sigma = np.abs(np.log(ds["chi_j"] / ds["chi_j_theory_window"]) / ds["chi_j_z"])
    wrong["chi_j_z"] = (np.log(ds["chi_j"] / (1.25 * ds["chi_j_theory_window"]))) / sigma
    assert agreement(wrong)["disagree"] > 40


# the 2-worker case (~20 s: a LocalCluster started in the killed process) is slow; the same
# BatchWriter writes the batches in both, so the in-process case covers the store's safety
@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_kill_midway_and_resume(client, full, tmp_path, workers):
    """Kill a running `critheory sweep` (SIGKILL to its process group) after some batches are
    written, resume it, and compare with the uninterrupted run: in this process (1 worker) and
    on a LocalCluster (2 workers, batches in flight on the workers)."""
    import zarr

    out = tmp_path / "k.zarr"
    # the numbers do not depend on the number of workers or the batches
    code = ("import sys; from critheory.cli.main import main; "
            f"sys.exit(main({['sweep'] + CLI_ARGS + ['--workers', workers, '--out', str(out)]!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    n_before = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                n_before = int(np.sum(zarr.open_group(str(out), mode="r")["done"][...]))
            except Exception:  # noqa: BLE001 - the store is not created yet
                continue
            if n_before >= 3:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = load(out)
    done1 = before["done"].values.copy()
    assert 3 <= done1.sum() < 63, (n_before, proc.stderr.read().decode()[-2000:])
    stamps = before["computed_at"].values.copy()
    assert np.all(before["run"].values[done1] == 1)

    run = run_sweep(SPEC, out, resume=True, client=client)
    assert run.run == 2 and run.skipped == int(done1.sum()) and run.computed == 63 - run.skipped
    assert 1 <= run.batches < run.computed
    after = load(out)
    assert bool(after["done"].all())
    # finished cells were not recomputed: same timestamp, still marked as run 1
    assert np.array_equal(after["computed_at"].values[done1], stamps[done1])
    assert np.all(after["run"].values[done1] == 1) and np.all(after["run"].values[~done1] == 2)
    # the final store equals the uninterrupted run exactly
    a, b = _science(after), _science(load(full[1]))
    for v in SCIENCE:
        assert np.array_equal(a[v], b[v], equal_nan=True), v
    # resuming a complete sweep computes nothing
    assert run_sweep(SPEC, out, resume=True, client=client).computed == 0


def test_determinism_seeds():
    spec = check_spec(SweepSpec(("gelu", "relu"), "pre-ln", 1.0, (0.5, 2.0, 2), (0.0, 0.1, 2),
                                16, 6, 4, n_boot=20))
    r1, r2 = run_cell(spec, 0, 1, 0), run_cell(spec, 0, 1, 0)
    assert all(r1[k] == r2[k] or (r1[k] != r1[k] and r2[k] != r2[k]) for k in SCIENCE)
    other = check_spec(SweepSpec(**{**spec.__dict__, "root_seed": 1}))
    assert run_cell(other, 0, 1, 0)["chi_j"] != r1["chi_j"]
    seeds = {cell_seed(0, *c) for c in spec.cells()}
    assert len(seeds) == spec.n_cells


def test_relu_theory_column():
    # for relu E[phi'(z)^2] = P(z > 0) = 1/2 at every K, so the MLP's chi_J = sigma_w^2/2
    spec = check_spec(SweepSpec(("relu",), "mlp", 1.0, (1.0, 3.0, 3), (0.0, 0.2, 2), 16, 6, 4,
                                n_boot=20))
    for a, i, j in spec.cells():
        r = run_cell(spec, a, i, j)
        assert r["chi_j_theory"] == pytest.approx(spec.weight_vars[i] / 2, rel=1e-12)
        assert r["phase"] == {1.0: -1, 2.0: 0, 3.0: 1}[spec.weight_vars[i]]


def test_cli_json_and_resume_refusals(client, tmp_path, capsys):
    out = tmp_path / "c.zarr"
    # an existing cluster by its address (used unchanged: still 2 workers afterwards)
    base = ["sweep", "relu", "--weight-var", "1:3:3", "--bias-var", "0:0.2:2", "--width", "16",
            "--depth", "6", "--seeds", "4", "--n-boot", "20", "--scheduler",
            client.scheduler.address]
    assert main(base + ["--out", str(out), "--json", "--plot", str(tmp_path / "c.png")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["run"]["computed"] == 6 and d["agreement"]["compared"] == 6
    assert d["run"]["workers"] == 2 and d["run"]["scheduler"] == client.scheduler.address
    assert len(client.scheduler_info()["workers"]) == 2
    assert (tmp_path / "c.png").exists()
    # an existing store without --resume is refused, not overwritten
    assert main(base + ["--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume with other settings: refused, naming the difference
    assert main([*base[:5], "0:0.3:2", *base[6:], "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "bias_var" in err and err.count("\n") == 1
    assert main(base + ["--out", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert "run 2: computed 0 cells, 6 were already done" in text and "wrote" in text


@pytest.mark.parametrize("extra", [
    ["--weight-var", "0:1:3"],                 # weight variance must be > 0
    ["--weight-var", "1:2"],                   # not LO:HI:N
    ["--bias-var", "1:0:3"],                   # HI < LO
    ["--width", "4096", "--depth", "1000", "--seeds", "1000"],   # over the simulator budget
    ["--weight-var", "0.5:3:400", "--bias-var", "0:1:300"],      # over MAX_CELLS
    ["--backend", "jax"],
    ["--backend", "torch:cuda:7"],             # no such device here (local cluster)
    ["--window", "1:5"],
    ["--probes", "many"],
])
def test_cli_errors_exit_2(extra, tmp_path, capsys):
    args = ["sweep", "tanh", "--weight-var", "1:2:2", "--bias-var", "0:0.1:2", "--width", "8",
            "--depth", "6", "--seeds", "2", "--out", str(tmp_path / "e.zarr")]
    for i in range(0, len(extra), 2):
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "e.zarr").exists()


def test_resume_of_missing_store_and_bad_store(tmp_path):
    spec = SweepSpec(("tanh",), "mlp", 1.0, (1.0, 2.0, 2), (0.0, 0.1, 2), 8, 6, 2)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        run_sweep(spec, tmp_path / "nope.zarr", resume=True)
    (tmp_path / "x").mkdir()
    with pytest.raises(InvalidArgumentError, match="not a critheory sweep store"):
        run_sweep(spec, tmp_path / "x", resume=True)


def test_without_extras_one_line():
    code = ("import sys\n"
            "for m in ('dask', 'dask.distributed', 'distributed', 'xarray', 'zarr'):\n"
            "    sys.modules[m] = None\n"
            "from critheory.cli.main import main\n"
            "sys.exit(main(['sweep', 'tanh', '--weight-var', '1:2:2', '--bias-var', '0:0.1:2',"
            " '--width', '8', '--depth', '6', '--seeds', '2', '--out', 'never.zarr']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == ("critheory: error: the sweep command needs the sweep extra: "
                                  "pip install 'critheory[sweep]'")
    assert not os.path.exists("never.zarr")


@pytest.mark.parametrize("obs", ["kernel", "kurtosis", "ntk"])
def test_observables(obs):
    spec = check_spec(SweepSpec(("tanh",), "mlp", 1.0, (1.0, 2.0, 2), (0.1, 0.1, 1), 32, 8, 16,
                                observable=obs, n_boot=20))
    r = run_cell(spec, 0, 1, 0)
    assert np.isfinite(r["observable"]) and r["observable_stderr"] > 0
    # kernel and NTK: Θ^8, K^8 at width 32 against infinite width, kurtosis against the 1/n
    # prediction; 4 standard errors (16 networks) plus the O(depth/width) = 8/32 relative
    # finite-width correction (the kurtosis theory is already at width 32)
    slack = 0.25 * abs(r["observable_theory"]) if obs in ("kernel", "ntk") else 0.0
    assert abs(r["observable"] - r["observable_theory"]) <= 4 * r["observable_stderr"] + slack


@pytest.mark.slow
def test_unreachable_scheduler_leaves_nothing(tmp_path, capsys):
    # ~20 s: the connection timeout
    out = tmp_path / "u.zarr"
    assert main(["sweep", "tanh", "--weight-var", "1:2:2", "--bias-var", "0:0.1:2", "--width",
                 "8", "--depth", "6", "--seeds", "2", "--out", str(out), "--scheduler",
                 "tcp://127.0.0.1:1"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- issue 31: stores and inputs
SMALL = SweepSpec(("tanh",), "mlp", 1.0, (1.0, 2.0, 2), (0.0, 0.1, 2), 8, 6, 2, n_boot=10)
SMALL_ARGS = ["sweep", "tanh", "--weight-var", "1:2:2", "--bias-var", "0:0.1:2", "--width",
              "8", "--depth", "6", "--seeds", "2", "--n-boot", "10"]


def test_kill_during_creation_leaves_no_store(tmp_path):
    """SIGKILL while the store is being created (after zarr wrote it, before it is complete):
    nothing at --out, so a fresh run starts and --resume says the store does not exist."""
    out = tmp_path / "c.zarr"
    code = (
        "import sys, time, xarray as xr\n"
        "real = xr.Dataset.to_zarr\n"
        "def slow(self, *a, **k):\n"
        "    r = real(self, *a, **k)\n"
        "    print('written', flush=True)\n"
        "    time.sleep(60)\n"
        "    return r\n"
        "xr.Dataset.to_zarr = slow\n"
        "from critheory.sweep import SweepSpec\n"
        "from critheory.sweep.store import create\n"
        f"create({str(out)!r}, SweepSpec(('tanh',), 'mlp', 1.0, (1.0, 2.0, 2), (0.0, 0.1, 2), "
        "8, 6, 2, n_boot=10))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "written", proc.stderr.read()[-2000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not out.exists()
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        run_sweep(SMALL, out, resume=True)
    run = run_sweep(SMALL, out, processes=False, workers=1)     # a fresh run is not refused
    assert run.computed == 4 and bool(load(out)["done"].all())


def test_incomplete_store_is_named(tmp_path):
    """A store left half-created by an older version: --resume says so (exit 2, not 3)."""
    import zarr

    out = tmp_path / "half.zarr"
    g = zarr.open_group(str(out), mode="w", zarr_format=3)
    g.attrs["sweep_spec"] = SMALL.to_json()
    with pytest.raises(InvalidArgumentError, match="incomplete sweep store"):
        run_sweep(SMALL, out, resume=True)


def test_one_writer_per_store(tmp_path, capsys):
    from critheory.sweep.store import lock

    out = tmp_path / "l.zarr"
    held = lock(out)
    try:
        with pytest.raises(InvalidArgumentError, match=f"in use by process {os.getpid()}"):
            lock(out)
        assert main(SMALL_ARGS + ["--out", str(out), "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "in use by process" in err
        assert not out.exists()
    finally:
        held.release()
    lock(out).release()                                 # free again


def test_resume_recomputes_done_cells_without_values(client, tmp_path):
    """A cell flagged done whose values a lost write replaced by the fill values is computed
    again on resume."""
    import zarr

    out = tmp_path / "n.zarr"
    run_sweep(SMALL, out, client=client)
    g = zarr.open_group(str(out), mode="r+", zarr_format=3)
    g["computed_at"][0, 1, 0] = np.nan
    g["chi_j"][0, 1, 0] = np.nan
    run = run_sweep(SMALL, out, resume=True, client=client)
    assert run.computed == 1 and run.skipped == 3
    ds = load(out)
    assert np.isfinite(ds["computed_at"].values[0, 1, 0]) and ds["run"].values[0, 1, 0] == 2


class _Garbage:
    """A TCP server that answers every connection with garbage bytes (a huge length prefix)."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.sendall(b"\xff" * 4096)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.mark.parametrize("extra, msg", [
    (["--scheduler", ""], "expected [tcp://]HOST:PORT"),
    (["--scheduler", "garbage"], "expected [tcp://]HOST:PORT"),
    (["--scheduler", "http://127.0.0.1:80"], "not a Dask scheduler address"),
    (["--workers", "4096"], "--workers must be <="),
    (["--arch", "mlp", "--mu", "0.5"], "residual architectures only"),
    (["--out", "/proc/x.zarr"], "under /proc"),
    (["--out", "{file}/x.zarr"], "is not a folder"),
])
def test_sweep_inputs_refused_at_once(extra, msg, tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    args = SMALL_ARGS + ["--out", str(tmp_path / "o.zarr")]
    for i in range(0, len(extra), 2):
        v = extra[i + 1].replace("{file}", str(f))
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = v
        else:
            args += [extra[i], v]
    t = time.perf_counter()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err, err
    assert time.perf_counter() - t < 10
    assert not (tmp_path / "o.zarr").exists()


def test_scheduler_that_sends_garbage(tmp_path, capsys):
    srv = _Garbage()
    try:
        t = time.perf_counter()
        assert main(SMALL_ARGS + ["--out", str(tmp_path / "g.zarr"), "--scheduler",
                                  f"tcp://127.0.0.1:{srv.port}"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert time.perf_counter() - t < 30
    finally:
        srv.close()
    assert not (tmp_path / "g.zarr").exists()


# ---------------------------------------------------------------- issue 32: batches, tiles
def test_batching_invariance_bit_for_bit(full, tmp_path, monkeypatch):
    """A cell's numbers do not depend on its batch: the 9x7 sweep in batches of one cell (in
    this process) and in batches of 5 over tiles of 4 x 4 (six tiles, no batch straddling two)
    equal the automatically batched 2-worker run bit for bit."""
    from critheory.sweep import run as run_mod
    from critheory.sweep import store as store_mod

    ref = _science(load(full[1]))
    assert 1 < full[0].batches < 63                   # the 2-worker run did batch
    one = run_sweep(SPEC, tmp_path / "one.zarr", workers=1, batch_size=1)
    assert (one.computed, one.batches, one.scheduler) == (63, 63, "in-process")
    seen = []
    real = run_mod.run_batch

    def spy(spec, cells):
        seen.append(list(cells))
        return real(spec, cells)

    monkeypatch.setattr(run_mod, "run_batch", spy)
    monkeypatch.setattr(store_mod, "TILE", 4)
    five = run_sweep(SPEC, tmp_path / "five.zarr", workers=1, batch_size=5)
    import zarr

    assert zarr.open_group(str(tmp_path / "five.zarr"), mode="r")["chi_j"].chunks == (1, 4, 4)
    tiles = {}
    for c in SPEC.cells():
        tiles.setdefault((c[1] // 4, c[2] // 4), []).append(c)
    # each tile cut into batches of 5 in C order: 16 -> 5 5 5 1, 12 -> 5 5 2, 4 -> 4, 3 -> 3
    assert five.batches == len(seen) == sum(-(-len(t) // 5) for t in tiles.values()) == 16
    assert all(len({(i // 4, j // 4) for _, i, j in b}) == 1 for b in seen)
    assert sorted(c for b in seen for c in b) == list(SPEC.cells())
    for r in (one, five):
        got = _science(load(r.path))
        for v in SCIENCE:
            assert np.array_equal(got[v], ref[v], equal_nan=True), (r.batches, v)


def test_batch_sizes_from_cost_and_tail():
    """Batches of ~BATCH_SECONDS at the measured cell time, half of it before any measurement
    (at the cost model's estimate), and the guided tail with several workers, down to a quarter
    of the target."""
    from critheory.sweep.run import (BATCH_SECONDS, IN_FLIGHT, MAX_BATCH, BatchSizer,
                                     estimate_cell_seconds)

    spec = check_spec(SPEC)
    est = estimate_cell_seconds(spec)
    assert 0.03 < est < 1.0
    z = BatchSizer(est, workers=2)
    assert z.size(10_000) == max(1, int(0.5 * BATCH_SECONDS / est))
    z.observe([0.001, 0.001, np.nan])                   # a NaN time is ignored
    full, floor = round(BATCH_SECONDS / 0.001), round(0.25 * BATCH_SECONDS / 0.001)
    assert z.size(10 * full * IN_FLIGHT * 2) == full
    assert z.size(full * IN_FLIGHT) == full // 2 >= floor            # the guided tail
    assert z.size(9) == z.size(1) == floor                           # its floor
    one = BatchSizer(est, workers=1)
    one.observe([0.001])
    assert one.size(9) == one.size(10 ** 6) == full     # one worker: no tail to balance
    fast = BatchSizer(1e-9)
    fast.observe([1e-9])
    assert fast.size(10 ** 6) == MAX_BATCH
    slow = BatchSizer(1e-9)
    slow.observe([5.0])                                  # cells longer than the target: one each
    assert slow.size(10 ** 6) == 1
    # the ntk observable costs a second simulation
    assert estimate_cell_seconds(check_spec(SweepSpec(**{**spec.__dict__,
                                                       "observable": "ntk"}))) > est


@pytest.mark.parametrize("bad", [0, 4097, True, 2.0, "3"])
def test_batch_size_refused(bad, tmp_path):
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        run_sweep(SMALL, tmp_path / "b.zarr", workers=1, batch_size=bad)
    assert not (tmp_path / "b.zarr").exists()


@pytest.mark.parametrize("bad, msg", [("0", ">= 1"), ("4097", "<= 4096"), ("x", "integer")])
def test_cli_batch_size_refused(bad, msg, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(SMALL_ARGS + ["--out", str(tmp_path / "b.zarr"), "--batch-size", bad])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and msg in err, err
    assert not (tmp_path / "b.zarr").exists()


def test_failing_cell_keeps_its_batch_before_it(tmp_path, monkeypatch):
    """A cell that raises stops its batch: the cells before it are written, the error names the
    cell, and a resume computes the rest."""
    from critheory.sweep import cell as cell_mod
    from critheory.sweep.run import CellError

    real = cell_mod.run_cell

    def broken(spec, a, i, j, **kw):
        if (i, j) == (1, 0):
            raise FloatingPointError("overflow in the forward pass")
        return real(spec, a, i, j, **kw)

    monkeypatch.setattr(cell_mod, "run_cell", broken)
    out = tmp_path / "f.zarr"
    with pytest.raises(CellError, match=r"cell \(tanh, weight_var = 2, bias_var = 0\) failed: "
                                        "FloatingPointError: overflow"):
        run_sweep(SMALL, out, workers=1, batch_size=4)
    done = load(out)["done"].values[0]
    assert done.tolist() == [[True, True], [False, False]]
    monkeypatch.setattr(cell_mod, "run_cell", real)
    run = run_sweep(SMALL, out, resume=True, workers=1)
    assert (run.computed, run.skipped) == (2, 2) and bool(load(out)["done"].all())


def test_without_dask_runs_in_process(tmp_path):
    """xarray and zarr but no dask: the sweep runs in this process (a note), and --workers 2
    is refused in one line."""
    out = tmp_path / "nd.zarr"
    code = ("import sys\n"
            "for m in ('dask', 'dask.distributed', 'distributed'):\n"
            "    sys.modules[m] = None\n"
            "from critheory.cli.main import main\n"
            f"args = {SMALL_ARGS!r}\n"
            f"rc = main(args + ['--out', {str(out)!r}])\n"
            f"rc2 = main(args + ['--out', {str(out) + '2'!r}, '--workers', '2'])\n"
            "sys.exit(10 * rc + rc2)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("critheory: note: dask is not installed")
    assert lines[1] == ("critheory: error: --workers 2 needs dask.distributed: pip install "
                        "'critheory[sweep]' (or --workers 1: in this process)")
    assert "computed 4 cells in 1 batches in this process" in r.stdout
    assert bool(load(out)["done"].all()) and not os.path.exists(str(out) + "2")


def test_resume_with_another_batch_size(client, full, tmp_path):
    """A sweep stopped after some cells (batches of 3) and resumed with batches of 7 on the
    2-worker cluster equals the uninterrupted run bit for bit."""
    out = tmp_path / "r.zarr"
    first = run_sweep(SPEC, out, client=client, batch_size=3, max_cells=20)
    assert first.computed == 20
    run = run_sweep(SPEC, out, resume=True, client=client, batch_size=7)
    assert (run.run, run.skipped, run.computed) == (2, 20, 43)
    a, b = _science(load(out)), _science(load(full[1]))
    for v in SCIENCE:
        assert np.array_equal(a[v], b[v], equal_nan=True), v


def test_sweep_on_a_client_that_is_not_dasks_default(client, tmp_path, monkeypatch):
    """The sweep follows its futures on its own client's event loop. Dask's as_completed()
    without a loop takes the *default* client's (the newest one not closed): where that loop
    does not run (another client of the process, one that failed to connect), no batch was
    ever reported done and the sweep waited forever (a 12-minute hang under pytest -n 2)."""
    import threading

    import distributed.client as dclient
    from tornado.ioloop import IOLoop

    class Stale:                         # a default client whose loop never runs
        loop = IOLoop(make_current=False)

    monkeypatch.setattr(dclient, "default_client", lambda c=None: Stale())
    spec = SweepSpec(("tanh",), "mlp", 1.0, (0.5, 1.5, 3), (0.0, 0.1, 2), width=16, depth=6,
                     seeds=4, n_boot=20)
    got = {}
    t = threading.Thread(target=lambda: got.setdefault(
        "run", run_sweep(spec, tmp_path / "d.zarr", client=client, batch_size=2)), daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the sweep waits on the default client's loop"
    assert got["run"].computed == 6 and bool(load(tmp_path / "d.zarr")["done"].all())



def test_writes_coalesced_on_workers(client, full, tmp_path, monkeypatch):
    """On workers, batches finishing within WRITE_SECONDS of the last write wait and are
    written together (one region write per tile they lie in, flags last): with the interval
    made endless, the first batch is written at once and every other one in one write at the
    end, across several tiles; the store equals the automatically written run bit for bit."""
    from critheory.sweep import run as run_mod
    from critheory.sweep import store as store_mod

    writes = []
    real = store_mod.BatchWriter.write

    def spy(self, batch):
        writes.append(np.asarray(batch["cells"]).reshape(-1, 3).tolist())
        return real(self, batch)

    monkeypatch.setattr(store_mod.BatchWriter, "write", spy)
    monkeypatch.setattr(run_mod, "WRITE_SECONDS", 1e9)
    monkeypatch.setattr(store_mod, "TILE", 4)
    run = run_sweep(SPEC, tmp_path / "c.zarr", client=client, batch_size=4)
    assert (run.computed, run.batches) == (63, 16)   # tiles of 16, 12, 16, 12, 4, 3 cells in 4s
    assert len(writes) == 2 and len(writes[0]) <= 4 and len(writes[0]) + len(writes[1]) == 63
    assert len({(i // 4, j // 4) for _, i, j in writes[1]}) == 6
    ds = load(tmp_path / "c.zarr")
    assert bool(ds["done"].all())
    ref = _science(load(full[1]))
    got = _science(ds)
    for v in SCIENCE:
        assert np.array_equal(got[v], ref[v], equal_nan=True), v


def test_failed_cell_flushes_the_waiting_batches():
    """A batch with a failed cell is written at once, with the batches waiting before it, and
    then the error is raised."""
    from critheory.common.progress import Progress
    from critheory.sweep.run import BatchPlan, BatchSizer, CellError, _Loop

    got = []

    class Writer:
        def write(self, batch):
            got.append((batch["cells"].tolist(), batch["chi_j"].tolist(), batch["error"]))
            return len(batch["cells"])

    spec = check_spec(SPEC)
    loop = _Loop(spec, BatchPlan([], (1, 4, 4)), BatchSizer(0.1), lambda: None,
                 Progress(4, False), write_every=1e9)
    loop.writer = Writer()

    def res(cells, err=None):
        return {"cells": np.array(cells, dtype=np.int64).reshape(-1, 3),
                "chi_j": np.arange(len(cells), dtype=float), "error": err}

    loop.finished(res([(0, 0, 0)]))                       # the first: written at once
    loop.finished(res([(0, 0, 1), (0, 0, 2)]))            # waits
    assert len(got) == 1 and loop.computed == 1 and loop.pending
    with pytest.raises(CellError, match="failed: ValueError: x"):
        loop.finished(res([(0, 1, 0)], ((0, 1, 1), "ValueError: x")))
    assert got[1] == ([[0, 0, 1], [0, 0, 2], [0, 1, 0]], [0.0, 1.0, 0.0], None)
    assert (loop.computed, loop.batches, loop.pending) == (4, 3, [])
