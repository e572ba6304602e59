"""Data-parallel training (mflow_sbi.training.distributed) with 2 gloo processes on one machine: the same
validation losses as 1 process, a model that loads and infers in a single process, and a 2-process run killed
with SIGKILL that resumes (with 2 processes: bit for bit; with 1: to the same losses).

The 800 events split into 720 training and 80 validation events, and the global batch of 50 is 25 per rank, so
the two processes take the optimizer steps of one process on the same events (module docstring of
mflow_sbi.training.distributed); only the order of floating-point sums differs. Measured over data and
training seeds 0, 1, 2 (sequential M/D, 2 + 2 epochs): the largest relative difference of a per-epoch
validation loss between 1 and 2 processes was 7.9e-5 (seed 0; 4.1e-5 and 3.7e-5 for seeds 1 and 2); the
tolerance below is 1e-3.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mflow_sbi.cli import main
from mflow_sbi.flows import load_model
from mflow_sbi.inference.infer import run_inference

CONFIG = """
[model.outer]
n_layers = 2
hidden_features = 16
num_blocks = 1
transform = "affine_coupling"
[model.inner]
n_layers = 2
hidden_features = 16
num_blocks = 1
transform = "affine_coupling"
[training]
epochs_m = 2
epochs_d = 2
batch_size = 50
patience = 100
threads = 1
device = "cpu"
"""
TOLERANCE = 1e-3

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and process groups")


def train_command(data, out, config, *extra) -> list[str]:
    return [sys.executable, "-m", "mflow_sbi", "-q", "train", "--data", str(data), "--out", str(out),
            "--config", str(config), *extra]


def val_losses(model_dir) -> list[float]:
    return [record["val"]["loss"] for record in json.loads((model_dir / "history.json").read_text())]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Training data, the job, and the same job trained with 1 process and with 2 (``--workers 2``)."""
    root = tmp_path_factory.mktemp("ddp")
    config, data = root / "job.toml", root / "train.npz"
    config.write_text(CONFIG)
    assert main(["-q", "simulate", "polynomial_surface", "--n", "800", "--from-prior", "--seed", "0",
                 "--out", str(data)]) == 0
    assert main(["-q", "train", "--data", str(data), "--out", str(root / "one"), "--config", str(config)]) == 0
    assert main(["-q", "train", "--data", str(data), "--out", str(root / "two"), "--config", str(config),
                 "--workers", "2"]) == 0
    return root, config, data


def test_two_processes_reach_the_validation_losses_of_one(runs):
    root, _, _ = runs
    one, two = val_losses(root / "one"), val_losses(root / "two")
    assert len(one) == len(two) == 4
    np.testing.assert_allclose(two, one, rtol=TOLERANCE)
    assert one[1] < one[0] and one[3] < one[2]  # phases M and D each lowered their validation loss


def test_the_two_process_model_loads_and_infers_in_one_process(runs):
    root, _, _ = runs
    model, reference = load_model(root / "two"), load_model(root / "one")
    x = np.random.default_rng(1).normal(size=(20, 3))
    with torch.no_grad():
        np.testing.assert_allclose(model.log_prob(x, [0.3]).numpy(), reference.log_prob(x, [0.3]).numpy(),
                                   rtol=TOLERANCE, atol=TOLERANCE)
    posterior = run_inference(model, x[:5], n_walkers=4, n_steps=30, burn_in=10, seed=0, progress=False)
    assert posterior.samples.shape == (80, 1) and np.all(np.abs(posterior.samples) <= 1.0)


def test_only_rank_0_writes_and_the_record_is_the_single_process_one(runs):
    root, _, _ = runs
    names = {path.name for path in (root / "two").iterdir()}
    assert names == {path.name for path in (root / "one").iterdir()}
    assert not any(name.startswith(".") for name in names)  # no temporary file of a second writer left behind
    assert (root / "two" / "training_data.json").read_text() == (root / "one" / "training_data.json").read_text()


def test_sigkilled_two_process_run_resumes_to_the_uninterrupted_result(runs, tmp_path):
    root, config, data = runs
    killed = tmp_path / "killed"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    process = subprocess.Popen(train_command(data, killed, config, "--workers", "2"), env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.skip("training finished before it could be killed on this machine")
    os.killpg(process.pid, signal.SIGKILL)  # the launcher and both ranks
    process.wait(timeout=30)
    assert not (killed / "weights.pt").exists()
    other = tmp_path / "resumed_with_one"
    shutil.copytree(killed, other)

    subprocess.run(train_command(data, killed, config, "--workers", "2", "--resume"), check=True, env=env, timeout=600)
    full = torch.load(root / "two" / "weights.pt", weights_only=True)
    resumed = torch.load(killed / "weights.pt", weights_only=True)
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert val_losses(killed) == val_losses(root / "two")

    assert main(["-q", "train", "--data", str(data), "--out", str(other), "--config", str(config), "--resume"]) == 0
    np.testing.assert_allclose(val_losses(other), val_losses(root / "two"), rtol=TOLERANCE)


def test_workers_errors_are_one_line(runs, tmp_path, capsys):
    _, config, _ = runs
    for argv, message in ((["--workers", "0"], "--workers must be >= 1"),
                          (["--workers", "2", "--data", str(tmp_path / "missing.npz")], "no such file")):
        assert main(["-q", "train", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "m"),
                     "--config", str(config), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_an_ensemble_trains_in_two_processes_in_one_process_group(runs, tmp_path):
    """--workers 2 --ensemble 2: both members are trained by both processes (one group for all members), and
    member 0 is the two-process single model of the same seed."""
    root, config, data = runs
    out = tmp_path / "ensemble"
    subprocess.run(train_command(data, out, config, "--workers", "2", "--ensemble", "2"), check=True, timeout=600)
    model = load_model(out)
    assert len(model) == 2
    assert val_losses(out / "member_00") == pytest.approx(val_losses(root / "two"), rel=TOLERANCE)
    assert val_losses(out / "member_01") != val_losses(out / "member_00")
