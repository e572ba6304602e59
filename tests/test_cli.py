"""End-to-end CLI runs on tiny budgets: files, keys and shapes, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.flows import load_model

TINY_CONFIG = """
[simulation]
simulator = "polynomial_surface"
n_train = 400
n_observed = 5
true_theta = [0.3]
seed = 3

[model]
latent_dim = 2
[model.outer]
n_layers = 1
hidden_features = 8
num_blocks = 1
[model.inner]
n_layers = 1
hidden_features = 8
num_blocks = 1

[training]
epochs_m = 1
epochs_d = 1
batch_size = 128

[inference]
walkers = 4
steps = 30
burn_in = 10
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_CONFIG)
    return path


def test_simulate_train_infer_plot(tmp_path, tiny_config):
    train, observed, model_dir = tmp_path / "train.npz", tmp_path / "obs.npz", tmp_path / "model"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "300", "--from-prior", "--seed", "1", "--out", str(train)]) == 0
    assert main(["-q", "simulate", "polynomial_surface", "--n", "5", "--theta", "0.3", "--out", str(observed)]) == 0
    with np.load(train) as data:
        assert data["x"].shape == (300, 3) and data["theta"].shape == (300, 1)
        assert str(data["simulator"]) == "polynomial_surface" and list(data["prior"]) == ["uniform(-1.0,1.0)"]
    assert main(["-q", "train", "--data", str(train), "--out", str(model_dir), "--config", str(tiny_config),
                 "--epochs", "1", "--seed", "2"]) == 0
    model = load_model(model_dir)
    assert model.latent_dim == 2 and model.prior.specs == ["uniform(-1.0,1.0)"]
    history = json.loads((model_dir / "history.json").read_text())
    assert [r["phase"] for r in history] == ["M", "D"]

    posterior_path = tmp_path / "posterior.npz"
    assert main(["-q", "infer", "--model", str(model_dir), "--observed", str(observed), "--out", str(posterior_path),
                 "--walkers", "4", "--steps", "30", "--burn-in", "10", "--seed", "0"]) == 0
    with np.load(posterior_path) as post:
        assert post["samples"].shape == (4 * 20, 1)
        assert post["log_prob"].shape == (80,)
        assert list(post["param_names"]) == ["theta"]
        assert np.all(np.abs(post["samples"]) <= 1.0)  # the uniform prior's support
    corner = tmp_path / "corner.png"
    assert main(["-q", "plot", str(posterior_path), "--out", str(corner), "--truth", "0.3"]) == 0
    assert corner.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_writes_all_outputs(tmp_path, tiny_config, capsys):
    out = tmp_path / "run"
    assert main(["-q", "run", str(tiny_config), "--out", str(out)]) == 0
    for name in ("train.npz", "observed.npz", "posterior.npz", "summary.json", "corner.png", "model/weights.pt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    low, high = summary["parameters"]["theta"]["central_95"]
    assert -1.0 <= low <= high <= 1.0
    assert summary["metadata"]["true_theta"] == [0.3]
    assert str(out / "corner.png") in capsys.readouterr().out


def test_same_seed_same_training(tmp_path, tiny_config):
    train = tmp_path / "train.npz"
    main(["-q", "simulate", "polynomial_surface", "--n", "200", "--from-prior", "--out", str(train)])
    weights = []
    for name in ("a", "b"):
        main(["-q", "train", "--data", str(train), "--out", str(tmp_path / name), "--config", str(tiny_config)])
        weights.append(load_model(tmp_path / name).state_dict())
    for key, value in weights[0].items():
        assert np.array_equal(value.numpy(), weights[1][key].numpy()), key


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "polynomial_surface", "--n", "5", "--theta", "1,2", "--out", "{tmp}/x.npz"], "1 parameters"),
        (["simulate", "polynomial_surface", "--n", "0", "--from-prior", "--out", "{tmp}/x.npz"], "--n must be positive"),
        (["train", "--data", "{tmp}/missing.npz", "--out", "{tmp}/m"], "no such file"),
        (["train", "--data", "{tmp}/noprior.npz", "--out", "{tmp}/m"], "stores no prior"),
        (["train", "--data", "{tmp}/noprior.npz", "--out", "{tmp}/m", "--prior", "beta(1,2)"], "not of the form"),
        (["run", "{tmp}/bad.toml"], "unknown key(s) ['epochz']"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, argv, message):
    np.savez(tmp_path / "noprior.npz", x=np.zeros((4, 3)), theta=np.zeros((4, 1)))
    (tmp_path / "bad.toml").write_text("[training]\nepochz = 3\n")
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err
