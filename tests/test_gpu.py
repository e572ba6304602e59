"""The train -> infer -> calibrate path on a CUDA GPU, and models moving between GPU and CPU. Skipped without
CUDA; run it on any GPU machine (``pytest tests/test_gpu.py``).

GPU and CPU kernels differ in their last float32 bits, so CPU/GPU comparisons of the same weights use a
relative tolerance of 1e-4 on log densities (float32 epsilon 1.2e-7 times the depth of the networks, with
room); training runs are compared by property, not by value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mflow_sbi.cli import main
from mflow_sbi.flows import load_model
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.training import TrainingConfig, train_model
from tests.training.helpers import polynomial_data, tiny_mflow

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory):
    x, theta = polynomial_data(600, seed=0)
    model = tiny_mflow()
    history = train_model(model, x, theta, TrainingConfig(epochs_m=2, epochs_d=2, batch_size=100, device="cuda"),
                          progress=False)
    directory = model.save(tmp_path_factory.mktemp("gpu") / "model")
    return model, directory, history, x, theta


def test_training_runs_on_the_gpu(gpu_model):
    model, _, history, _, _ = gpu_model
    assert model.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert all(np.isfinite(r["val"]["loss"]) for r in history.records)


def test_a_model_saved_on_the_gpu_loads_on_the_cpu_with_the_same_densities(gpu_model):
    model, directory, _, x, theta = gpu_model
    on_cpu = load_model(directory)
    assert on_cpu.device.type == "cpu"
    with torch.no_grad():
        gpu = model.log_prob(x[:200], theta[:200]).cpu().double().numpy()
        cpu = on_cpu.log_prob(x[:200], theta[:200]).double().numpy()
    np.testing.assert_allclose(gpu, cpu, rtol=TOLERANCE, atol=TOLERANCE)


def test_a_cpu_model_loads_on_the_gpu(gpu_model):
    _, directory, _, x, theta = gpu_model
    on_gpu = load_model(directory, "cuda")
    assert on_gpu.device.type == "cuda"
    with torch.no_grad():
        assert torch.isfinite(on_gpu.log_prob(x[:10], theta[:10])).all()


def test_the_likelihood_caches_on_the_gpu_and_matches_the_cpu(gpu_model):
    _, directory, _, _, _ = gpu_model
    observed = polynomial_data(20, seed=5)[0]
    grid = np.linspace(-0.9, 0.9, 7)[:, None]
    gpu = ModelLikelihood(load_model(directory, "cuda"), observed)
    cpu = ModelLikelihood(load_model(directory, "cpu"), observed)
    assert gpu.cached and gpu._u.device.type == "cuda"
    np.testing.assert_allclose(gpu(grid), cpu(grid), rtol=TOLERANCE, atol=1e-3)


def test_manifold_density_with_jacobians_on_the_gpu(gpu_model):
    model, _, _, x, theta = gpu_model
    on_cpu = load_model(gpu_model[1])
    with torch.no_grad():
        gpu = model.log_prob(x[:50], theta[:50], mode="manifold").cpu().double().numpy()
        cpu = on_cpu.log_prob(x[:50], theta[:50], mode="manifold").double().numpy()
    np.testing.assert_allclose(gpu, cpu, rtol=TOLERANCE, atol=1e-3)


def test_cli_train_infer_calibrate_on_the_gpu(tmp_path):
    data, observed, model = tmp_path / "train.npz", tmp_path / "obs.npz", tmp_path / "model"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "400", "--from-prior", "--out", str(data)]) == 0
    assert main(["-q", "simulate", "polynomial_surface", "--n", "5", "--theta", "0.3", "--out", str(observed)]) == 0
    assert main(["-q", "train", "--data", str(data), "--out", str(model), "--epochs", "1", "--device", "cuda"]) == 0
    sampler = ["--walkers", "4", "--steps", "30", "--burn-in", "10"]
    assert main(["-q", "infer", "--model", str(model), "--observed", str(observed), "--out",
                 str(tmp_path / "post.npz"), "--device", "cuda", *sampler]) == 0
    assert main(["-q", "calibrate", "--model", str(model), "--simulator", "polynomial_surface", "--n-datasets", "2",
                 "--n-events", "5", "--rank-samples", "9", "--out", str(tmp_path / "cal"), "--device", "cuda",
                 *sampler]) == 0
