"""`mflow-sbi train` and `mflow-sbi plot-training` end to end on a tiny budget."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from mflow_sbi.cli import build_parser, main
from mflow_sbi.cli.train import config_from_args
from mflow_sbi.data.datasets import EventData
from mflow_sbi.flows import load_model
from mflow_sbi.inference.priors import box_uniform
from mflow_sbi.simulation import simulate_events
from tests.training.helpers import gaussian_line_data

TINY_CONFIG = """
[model]
type = "mflow"

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
threads = 1
"""


@pytest.fixture
def job(tmp_path):
    data = simulate_events("polynomial_surface", 200, None, seed=0)
    data.save(tmp_path / "train.npz")
    (tmp_path / "tiny.toml").write_text(TINY_CONFIG)
    return tmp_path


def weights(path):
    return torch.load(path / "weights.pt", weights_only=True)


def test_train_writes_the_model_directory_and_resume_restores_it(job, capsys):
    out = job / "model"
    argv = ["--quiet", "train", "--data", str(job / "train.npz"), "--out", str(out), "--config", str(job / "tiny.toml"),
            "--algorithm", "sequential", "--seed", "3"]
    assert main(argv) == 0
    assert f"model written to {out}" in capsys.readouterr().out
    for name in ("config.toml", "weights.pt", "training.toml", "history.json", "history.csv", "learning_curves.png",
                 "checkpoint.pt"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert [(r["phase"], r["epoch"]) for r in history] == [("M", 0), ("M", 1), ("D", 0), ("D", 1)]
    assert len(list(csv.DictReader((out / "history.csv").open()))) == 4
    model = load_model(out)
    assert torch.isfinite(model.log_prob(np.zeros((2, 3)), np.zeros(1))).all()

    first = weights(out)
    assert main(argv + ["--resume"]) == 0  # the checkpoint says every phase is done: same weights
    second = weights(out)
    assert all(torch.equal(first[k], second[k]) for k in first)

    assert main(["plot-training", str(out), "--out", str(job / "curves.png")]) == 0
    assert f"learning curves written to {job / 'curves.png'}" in capsys.readouterr().out
    assert (job / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_flags_override_the_config_file(job):
    args = build_parser().parse_args(["train", "--data", "d.npz", "--out", "o", "--config", str(job / "tiny.toml"),
                                      "--model", "mflow", "--epochs", "4", "--epochs-d", "9", "--scandal", "0.5",
                                      "--learning-rate", "0.01", "--reconstruction", "smooth_l1", "--threads", "2"])
    config = config_from_args(args)
    training = config.training
    assert (training.epochs, training.epochs_m, training.epochs_d, training.epochs_pretrain) == (4, 4, 9, 4)
    assert (training.scandal, training.learning_rate, training.reconstruction, training.threads) == (0.5, 0.01,
                                                                                                      "smooth_l1", 2)
    assert training.batch_size == 50 and config.model.outer["hidden_features"] == 16


def test_scandal_uses_the_joint_score_of_the_data_file(job):
    x, theta, t_xz = gaussian_line_data(200, seed=0)
    EventData(x=x, theta=theta, t_xz=t_xz, prior=box_uniform([-1.0], [1.0])).save(job / "scored.npz")
    out = job / "scandal"
    assert main(["--quiet", "train", "--data", str(job / "scored.npz"), "--out", str(out), "--config",
                 str(job / "tiny.toml"), "--latent-dim", "1", "--scandal", "2.5", "--epochs-m", "1"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert {"nll", "score", "loss"} == set(history[-1]["train"])
    d = history[-1]["train"]
    assert d["loss"] == pytest.approx(d["nll"] + 2.5 * d["score"], rel=1e-5)


def test_scandal_without_joint_score_is_a_one_line_error(job, capsys):
    code = main(["train", "--data", str(job / "train.npz"), "--out", str(job / "m"), "--config", str(job / "tiny.toml"),
                 "--scandal", "1"])
    assert code == 2
    assert "has no field 't_xz'" in capsys.readouterr().err


def test_plot_training_on_a_directory_without_history(tmp_path, capsys):
    assert main(["plot-training", str(tmp_path)]) == 2
    assert "history.json: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("model_type", ["af", "pie", "emflow"])
def test_train_other_model_types(job, model_type, capsys):
    from mflow_sbi.flows import MODEL_TYPES

    if model_type not in MODEL_TYPES:
        pytest.skip(f"model type {model_type!r} is not available yet")
    out = job / model_type
    assert main(["--quiet", "train", "--data", str(job / "train.npz"), "--out", str(out), "--model", model_type,
                 "--epochs", "1", "--batch-size", "100", "--threads", "1"]) == 0, capsys.readouterr().err
    history = json.loads((out / "history.json").read_text())
    assert [r["phase"] for r in history] == (["ML"] if model_type in ("af", "pie") else ["M", "D"])
    assert type(load_model(out)) is MODEL_TYPES[model_type]
