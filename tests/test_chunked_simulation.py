"""Chunked simulation to files (mflow_sbi.workflow.chunked_simulation) as Dask tasks: the same files on a LocalCluster of
2 workers, on threads and serially; chunk k seeded by the k-th child of SeedSequence(seed); a real SIGKILL in
the middle and ``--resume`` end with the files of an uninterrupted run; the [compute] scheduler key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.compute import ComputeConfig, dask_runner
from mflow_sbi.config import parse_config
from mflow_sbi.data.loading import load_any
from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.simulation import simulate_events
from mflow_sbi.workflow.chunked_simulation import ChunkPlan, simulate_to_files
from tests.tiny_models import tiny_job


@pytest.fixture(scope="module")
def cluster_address():
    """A LocalCluster of 2 single-threaded worker processes for the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def assert_same_files(paths_a, paths_b) -> None:
    assert [p.name for p in paths_a] == [p.name for p in paths_b]
    for a, b in zip(paths_a, paths_b, strict=True):
        first, second = arrays(a), arrays(b)
        assert first.keys() == second.keys()
        assert all(np.array_equal(first[key], second[key]) for key in first), a.name


def plan_in(directory, suffix=".npz", **changes) -> ChunkPlan:
    values = {"simulator": "polynomial_surface", "n": 1100, "chunk_size": 250, "seed": 7, "joint_score": True,
              "out": str(directory / f"train{suffix}")}
    return ChunkPlan(**{**values, **changes})


def test_two_workers_threads_and_serial_write_the_same_files(tmp_path, cluster_address):
    serial = simulate_to_files(plan_in(tmp_path / "serial"), "synchronous")
    assert_same_files(serial, simulate_to_files(plan_in(tmp_path / "cluster"), cluster_address))
    assert_same_files(serial, simulate_to_files(plan_in(tmp_path / "threads"), "threads"))
    assert [len(arrays(p)["x"]) for p in serial] == [250, 250, 250, 250, 100]


def test_chunk_k_is_seeded_by_the_kth_spawned_seed_sequence(tmp_path):
    plan = plan_in(tmp_path, n=500, chunk_size=200)
    paths = simulate_to_files(plan, "synchronous")
    children = np.random.SeedSequence(7).spawn(3)
    for index, (path, child) in enumerate(zip(paths, children, strict=True)):
        expected = simulate_events("polynomial_surface", plan.size(index), None, child, joint_score=True)
        np.testing.assert_array_equal(arrays(path)["x"], expected.x)
        np.testing.assert_array_equal(arrays(path)["t_xz"], expected.t_xz)
    assert not np.array_equal(arrays(paths[0])["x"][:100], arrays(paths[2])["x"])  # chunks differ


def test_root_chunks_on_two_workers_equal_the_serial_ones(tmp_path, cluster_address):
    serial = simulate_to_files(plan_in(tmp_path / "serial", ".root", n=600, chunk_size=300), "synchronous")
    parallel = simulate_to_files(plan_in(tmp_path / "cluster", ".root", n=600, chunk_size=300), cluster_address)
    a, b = load_any(serial, require_theta=True), load_any(parallel, require_theta=True)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert a.x.shape == (600, 3)


def test_resume_refuses_another_plan_and_a_fresh_start_removes_stale_chunks(tmp_path):
    simulate_to_files(plan_in(tmp_path, n=1000), "synchronous")
    with pytest.raises(InputError, match="another plan"):
        simulate_to_files(plan_in(tmp_path, n=1000, seed=8), "synchronous", resume=True)
    paths = simulate_to_files(plan_in(tmp_path, n=400), "synchronous")
    assert sorted(p.name for p in tmp_path.glob("train_*.npz")) == [p.name for p in paths]


def test_scheduler_values_are_checked():
    assert ComputeConfig().scheduler == "local"
    assert parse_config({"compute": {"scheduler": "tcp://10.0.0.1:8786"}}).compute.scheduler == "tcp://10.0.0.1:8786"
    for bad in ("processes", "tcp://nohost", 3):
        with pytest.raises(ConfigError, match="compute.scheduler must be"):
            parse_config({"compute": {"scheduler": bad}})
    with pytest.raises(ConfigError, match="compute.scheduler must be"):
        with dask_runner("slurm"):
            pass


def simulate_command(out, *extra) -> list[str]:
    return [sys.executable, "-m", "mflow_sbi", "-q", "simulate", "polynomial_surface", "--n", "120000", "--from-prior",
            "--joint-score", "--seed", "5", "--chunk-size", "2000", "--scheduler", "synchronous", "--out", str(out),
            *extra]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_during_chunked_simulation_then_resume_gives_the_uninterrupted_files(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    full = tmp_path / "full" / "train.npz"
    subprocess.run(simulate_command(full), check=True, env=env, timeout=300)
    killed = tmp_path / "killed" / "train.npz"
    process = subprocess.Popen(simulate_command(killed), env=env)
    deadline = time.monotonic() + 120
    while not list(killed.parent.glob("train_0000[2-9].npz")) and time.monotonic() < deadline \
            and process.poll() is None:
        time.sleep(0.01)
    if process.poll() is not None:
        pytest.skip("the simulation finished before it could be killed on this machine")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done = sorted(killed.parent.glob("train_*.npz"))
    assert 0 < len(done) < 60
    kept = {path.name: os.stat(path).st_ino for path in done}

    assert main(["-q", "simulate", "polynomial_surface", "--n", "120000", "--from-prior", "--joint-score", "--seed", "5",
                 "--chunk-size", "2000", "--scheduler", "synchronous", "--out", str(killed), "--resume"]) == 0
    resumed = sorted(killed.parent.glob("train_*.npz"))
    assert {p.name: os.stat(p).st_ino for p in resumed if p.name in kept} == kept  # complete chunks not rewritten
    assert not list(killed.parent.glob(".train_*"))  # no temporary file of the killed write left
    assert_same_files(sorted(full.parent.glob("train_*.npz")), resumed)


def test_run_simulates_its_training_set_in_chunks(tmp_path):
    config = tmp_path / "job.toml"
    config.write_text("""
[simulation]
n_train = 400
n_observed = 5
chunk_size = 150
reference = false
joint_score = false
""" + tiny_job(batch_size=None) + """
[inference]
walkers = 4
steps = 30
burn_in = 10
[compute]
scheduler = "synchronous"
""")
    out = tmp_path / "run"
    assert main(["-q", "run", str(config), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("train_*.npz")) == ["train_00000.npz", "train_00001.npz", "train_00002.npz"]
    record = (out / "model" / "training_data.json").read_text()
    assert '"n_events": 400' in record
