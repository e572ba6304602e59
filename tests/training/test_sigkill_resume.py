"""A training job killed with SIGKILL resumes from its last complete checkpoint and ends with the same
weights as an uninterrupted run (checkpoints are written to a temporary file and renamed, so a kill during
a write leaves the previous one intact)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mflow_sbi.cli import main

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
epochs_m = 6
epochs_d = 6
batch_size = 50
patience = 100
threads = 1
"""


def train_command(data, out, config, *extra) -> list[str]:
    return [sys.executable, "-m", "mflow_sbi", "-q", "train", "--data", str(data), "--out", str(out),
            "--config", str(config), *extra]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_during_training_then_resume_gives_the_uninterrupted_weights(tmp_path):
    config, data = tmp_path / "job.toml", tmp_path / "train.npz"
    config.write_text(CONFIG)
    assert main(["-q", "simulate", "polynomial_surface", "--n", "1500", "--from-prior", "--seed", "3",
                 "--out", str(data)]) == 0
    env = {**os.environ, "MPLBACKEND": "Agg"}
    subprocess.run(train_command(data, tmp_path / "full", config), check=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    process = subprocess.Popen(train_command(data, killed, config), env=env)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next epochs
    if process.poll() is not None:
        pytest.skip("training finished before it could be killed on this machine")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (killed / "weights.pt").exists()  # killed before the end
    subprocess.run(train_command(data, killed, config, "--resume"), check=True, env=env, timeout=300)

    full = torch.load(tmp_path / "full" / "weights.pt", weights_only=True)
    resumed = torch.load(killed / "weights.pt", weights_only=True)
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)
