"""`infer` killed with SIGKILL in the middle of its MCMC resumes with `--resume` from the chain checkpoint
(OUT_mcmc_checkpoint.npz) and writes the same posterior as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.layout import mcmc_checkpoint_path

CONFIG = """
[model.outer]
n_layers = 2
hidden_features = 8
num_blocks = 1
transform = "affine_coupling"
[model.inner]
n_layers = 2
hidden_features = 8
num_blocks = 1
transform = "affine_coupling"
[training]
epochs_m = 1
epochs_d = 1
batch_size = 100
threads = 1
"""


def infer_arguments(tmp_path, out, *extra) -> list[str]:
    return ["-q", "infer", "--model", str(tmp_path / "model"), "--observed", str(tmp_path / "observed.npz"),
            "--out", str(out), "--walkers", "8", "--steps", "1300", "--burn-in", "100", "--seed", "3", *extra]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_during_mcmc_then_resume_gives_the_uninterrupted_posterior(tmp_path):
    (tmp_path / "job.toml").write_text(CONFIG)
    assert main(["-q", "simulate", "polynomial_surface", "--n", "400", "--from-prior", "--seed", "1",
                 "--out", str(tmp_path / "train.npz")]) == 0
    assert main(["-q", "simulate", "polynomial_surface", "--n", "20", "--theta", "0.3", "--seed", "2",
                 "--out", str(tmp_path / "observed.npz")]) == 0
    assert main(["-q", "train", "--data", str(tmp_path / "train.npz"), "--out", str(tmp_path / "model"),
                 "--config", str(tmp_path / "job.toml")]) == 0
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    assert main(infer_arguments(tmp_path, tmp_path / "full.npz")) == 0
    assert not mcmc_checkpoint_path(tmp_path / "full.npz").exists()  # removed once the posterior is written

    killed = tmp_path / "killed.npz"
    checkpoint = mcmc_checkpoint_path(killed)
    process = subprocess.Popen([sys.executable, "-m", "mflow_sbi", *infer_arguments(tmp_path, killed)], env=env)
    deadline = time.monotonic() + 240
    while not checkpoint.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng().uniform(0, 0.5)))  # a random point after the first checkpoint
    if process.poll() is not None:
        pytest.skip("the MCMC finished before it could be killed on this machine")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not killed.exists() and checkpoint.is_file()
    assert main(infer_arguments(tmp_path, killed, "--resume")) == 0

    full, resumed = np.load(tmp_path / "full.npz"), np.load(killed)
    np.testing.assert_array_equal(full["samples"], resumed["samples"])
    np.testing.assert_array_equal(full["log_prob"], resumed["log_prob"])
    assert not checkpoint.exists()
