"""Calibration as K Dask tasks (mflow_sbi.workflow.calibrate): a LocalCluster of 2 workers gives the results of
the serial path, data set k is run_calibration's single data set with seed s_k, and the CLI takes --scheduler."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.errors import ConfigError
from mflow_sbi.flows import load_model
from mflow_sbi.inference.calibration import CalibrationResult, run_calibration
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.simulators import get_simulator
from mflow_sbi.workflow.calibrate import CalibrationJob, calibrate_on_dask, dataset_seeds

SAMPLER = {"n_walkers": 4, "n_steps": 30, "burn_in": 10}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cal")
    data = root / "train.npz"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "300", "--from-prior", "--seed", "1", "--out", str(data)]) == 0
    assert main(["-q", "train", "--data", str(data), "--out", str(root / "model"), "--epochs", "1",
                 "--device", "cpu"]) == 0
    return root / "model"


@pytest.fixture(scope="module")
def cluster_address():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def job(model_dir) -> CalibrationJob:
    return CalibrationJob(str(model_dir), "polynomial_surface", n_events=5, n_rank_samples=9, sampler_options=SAMPLER)


def assert_same(a: CalibrationResult, b: CalibrationResult) -> None:
    np.testing.assert_array_equal(a.theta_true, b.theta_true)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    np.testing.assert_array_equal(a.credibility, b.credibility)


def test_two_workers_give_the_serial_results(model_dir, cluster_address):
    serial = calibrate_on_dask(job(model_dir), 3, seed=3, scheduler="synchronous")
    assert serial.ranks.shape == (3, 1) and np.all((serial.ranks >= 0) & (serial.ranks <= 9))
    assert len(np.unique(serial.theta_true)) == 3  # every data set has its own truth
    assert_same(serial, calibrate_on_dask(job(model_dir), 3, seed=3, scheduler=cluster_address))


def test_the_threads_scheduler_is_refused_for_calibration(model_dir):
    with pytest.raises(ConfigError, match="threads"):
        calibrate_on_dask(job(model_dir), 2, scheduler="threads")


def test_data_set_k_is_the_single_data_set_calibration_with_seed_s_k(model_dir):
    fanned = calibrate_on_dask(job(model_dir), 2, seed=5, scheduler="synchronous")
    model, simulator = load_model(model_dir), get_simulator("polynomial_surface")
    for k, seed in enumerate(dataset_seeds(5, 2)):
        alone = run_calibration(simulator.sample, lambda x: ModelLikelihood(model, x), model.prior, n_datasets=1,
                                n_events=5, seed=seed, n_rank_samples=9, progress=False, **SAMPLER)
        np.testing.assert_array_equal(fanned.ranks[k], alone.ranks[0])
        assert fanned.credibility[k] == alone.credibility[0]
    assert dataset_seeds(5, 3)[:2] == dataset_seeds(5, 2)  # adding data sets keeps the first ones


def test_cli_calibrate_with_a_scheduler(model_dir, tmp_path):
    out = tmp_path / "cal"
    assert main(["-q", "calibrate", "--model", str(model_dir), "--simulator", "polynomial_surface", "--n-datasets", "2",
                 "--n-events", "5", "--rank-samples", "9", "--walkers", "4", "--steps", "30", "--burn-in", "10",
                 "--seed", "5", "--scheduler", "synchronous", "--out", str(out)]) == 0
    written = CalibrationResult.load(out / "calibration.npz")
    assert_same(written, calibrate_on_dask(job(model_dir), 2, seed=5, scheduler="synchronous"))


def test_resume_keeps_finished_tasks_and_recomputes_the_missing_one(model_dir, tmp_path):
    from dataclasses import replace

    from mflow_sbi.errors import InputError
    from mflow_sbi.workflow.calibrate import task_checkpoint

    tasks = tmp_path / "tasks"
    first = calibrate_on_dask(job(model_dir), 2, seed=4, scheduler="synchronous", task_dir=tasks)
    assert sorted(p.name for p in tasks.iterdir()) == ["dataset_00000.npz", "dataset_00001.npz"]
    kept = task_checkpoint(tasks, 0).stat().st_mtime_ns
    task_checkpoint(tasks, 1).unlink()  # as if killed while data set 1 ran
    resumed = calibrate_on_dask(job(model_dir), 2, seed=4, scheduler="synchronous", task_dir=tasks, resume=True)
    assert_same(first, resumed)
    assert task_checkpoint(tasks, 0).stat().st_mtime_ns == kept
    assert task_checkpoint(tasks, 1).is_file()
    other = replace(job(model_dir), identity={"model_weights_sha256": "another model"})
    with pytest.raises(InputError, match="other settings"):
        calibrate_on_dask(other, 2, seed=4, scheduler="synchronous", task_dir=tasks, resume=True)
