"""``mflow-sbi calibrate`` killed with SIGKILL at a random point resumes with ``--resume`` from the last
complete lockstep block and writes the numbers of an uninterrupted run (the checkpoint is written to a
temporary file and renamed, so a kill during a write leaves the previous one intact)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mflow_sbi.cli import main
from tests.tiny_models import tiny_job

TINY = tiny_job()


def calibrate_arguments(model, out, *extra) -> list[str]:
    return ["-q", "calibrate", "--model", str(model), "--simulator", "polynomial_surface", "--n-datasets", "6",
            "--n-events", "5", "--lockstep", "2", "--rank-samples", "10", "--walkers", "4", "--steps", "40",
            "--burn-in", "10", "--seed", "4", "--out", str(out), *extra]


def calibrate_command(model, out, *extra) -> list[str]:
    return [sys.executable, "-m", "mflow_sbi", *calibrate_arguments(model, out, *extra)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_during_calibration_then_resume_gives_the_uninterrupted_numbers(tmp_path):
    config, data, model = tmp_path / "tiny.toml", tmp_path / "train.npz", tmp_path / "model"
    config.write_text(TINY)
    assert main(["-q", "simulate", "polynomial_surface", "--n", "300", "--from-prior", "--seed", "1",
                 "--out", str(data)]) == 0
    assert main(["-q", "train", "--data", str(data), "--out", str(model), "--config", str(config)]) == 0
    assert main(calibrate_arguments(model, tmp_path / "full")) == 0

    env = {**os.environ, "MPLBACKEND": "Agg"}

    killed = tmp_path / "killed"
    checkpoint = killed / "calibration_checkpoint.npz"
    process = subprocess.Popen(calibrate_command(model, killed), env=env)
    deadline = time.monotonic() + 120
    while not checkpoint.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    time.sleep(random.Random().uniform(0.0, 0.5))  # a random point inside the next blocks
    if process.poll() is not None:
        pytest.skip("calibration finished before it could be killed on this machine")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (killed / "calibration.npz").exists()  # killed before the end
    with np.load(checkpoint) as npz:
        assert 2 <= len(npz["ranks"]) < 6 and len(npz["ranks"]) % 2 == 0  # whole blocks only
    subprocess.run(calibrate_command(model, killed, "--resume"), check=True, env=env, timeout=300)

    with np.load(tmp_path / "full" / "calibration.npz") as full, np.load(killed / "calibration.npz") as resumed:
        for key in ("theta_true", "ranks", "credibility"):
            np.testing.assert_array_equal(resumed[key], full[key])
