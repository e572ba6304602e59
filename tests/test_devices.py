"""Devices: ``--device`` / ``[training] device`` / ``[inference] device`` through train -> infer -> calibrate ->
evaluate with an explicit device, and the error for CUDA on a machine without it. The same path on a GPU is
tests/test_gpu.py (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mflow_sbi.cli import main
from mflow_sbi.config import parse_config
from mflow_sbi.devices import resolve_device
from mflow_sbi.errors import ConfigError
from mflow_sbi.flows import load_model
from tests.tiny_models import tiny_job

TINY = tiny_job(latent_dim=2)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_auto_is_cuda_exactly_when_cuda_is_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:x", "", 0])
def test_bad_device_names_are_config_errors(name):
    with pytest.raises(ConfigError, match="device must be one of"):
        resolve_device(name)
    with pytest.raises(ConfigError, match="training.device must be"):
        parse_config({"training": {"device": name}})


@NO_CUDA
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


@NO_CUDA
def test_cli_cuda_without_cuda_is_one_line_exit_2(tmp_path, capsys):
    data = tmp_path / "train.npz"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "50", "--from-prior", "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["-q", "train", "--data", str(data), "--out", str(tmp_path / "m"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CUDA is not available" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny M-flow trained with ``--device cpu``, its training data and observed events."""
    root = tmp_path_factory.mktemp("devices")
    config, data, observed = root / "tiny.toml", root / "train.npz", root / "obs.npz"
    config.write_text(TINY)
    assert main(["-q", "simulate", "polynomial_surface", "--n", "400", "--from-prior", "--seed", "1", "--out", str(data)]) == 0
    assert main(["-q", "simulate", "polynomial_surface", "--n", "5", "--theta", "0.3", "--out", str(observed)]) == 0
    assert main(["-q", "train", "--data", str(data), "--out", str(root / "cpu"), "--config", str(config),
                 "--device", "cpu"]) == 0
    return root, config, data, observed


def test_explicit_cpu_training_is_the_default_training_here(trained):
    """On a machine without CUDA the default ``auto`` is the CPU: the same seed gives the same weights."""
    root, config, data, _ = trained
    if torch.cuda.is_available():
        pytest.skip("auto is cuda here")
    assert main(["-q", "train", "--data", str(data), "--out", str(root / "auto"), "--config", str(config)]) == 0
    explicit, default = load_model(root / "cpu").state_dict(), load_model(root / "auto").state_dict()
    assert all(torch.equal(explicit[k], default[k]) for k in explicit)
    recorded = (root / "cpu" / "training.toml").read_text()
    assert 'device = "cpu"' in recorded


def test_infer_calibrate_evaluate_with_an_explicit_device(trained, tmp_path):
    root, _, data, observed = trained
    model = root / "cpu"
    sampler = ["--walkers", "4", "--steps", "30", "--burn-in", "10", "--seed", "0"]
    for device in ("cpu", "auto"):
        out = tmp_path / f"posterior_{device}.npz"
        assert main(["-q", "infer", "--model", str(model), "--observed", str(observed), "--out", str(out),
                     "--device", device, *sampler]) == 0
    with np.load(tmp_path / "posterior_cpu.npz") as a, np.load(tmp_path / "posterior_auto.npz") as b:
        if not torch.cuda.is_available():
            np.testing.assert_array_equal(a["samples"], b["samples"])
        assert np.all(np.abs(a["samples"]) <= 1.0)
    assert main(["-q", "calibrate", "--model", str(model), "--simulator", "polynomial_surface", "--n-datasets", "2",
                 "--n-events", "5", "--rank-samples", "9", "--out", str(tmp_path / "cal"), "--device", "cpu",
                 *sampler]) == 0
    with np.load(tmp_path / "cal" / "calibration.npz") as cal:
        assert cal["ranks"].shape == (2, 1) and np.all((cal["ranks"] >= 0) & (cal["ranks"] <= 9))
    assert main(["-q", "evaluate", str(model), "--data", str(data), "--device", "cpu",
                 "--out", str(tmp_path / "eval.json")]) == 0


def test_loaded_model_is_on_the_requested_device_and_inputs_follow_it(trained):
    model = load_model(trained[0] / "cpu", "cpu")
    assert model.device == torch.device("cpu")
    x64 = np.random.default_rng(0).normal(size=(4, 3))
    values = model.log_prob(x64, np.zeros(1))
    assert values.device == model.device and values.shape == (4,)
