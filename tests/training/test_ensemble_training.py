"""`[training] ensemble = K` (`mflow-sbi train --ensemble K`): K members, resume, and the CLI on the ensemble."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mflow_sbi.cli import main
from mflow_sbi.flows import ModelEnsemble, load_model
from mflow_sbi.simulation import simulate_events
from mflow_sbi.tomlio import read_toml
from tests.tiny_models import tiny_job


@pytest.fixture(scope="module")
def ensemble_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    simulate_events("polynomial_surface", 300, None, seed=0).save(root / "train.npz")
    simulate_events("polynomial_surface", 10, np.array([0.3]), seed=1).save(root / "observed.npz")
    (root / "tiny.toml").write_text(tiny_job())
    out = root / "model"
    assert main(["-q", "train", "--data", str(root / "train.npz"), "--out", str(out), "--config", str(root / "tiny.toml"),
                 "--seed", "4", "--ensemble", "2"]) == 0
    return root


def weights(path):
    return torch.load(path / "weights.pt", weights_only=True)


def test_train_writes_members_with_their_own_seeds(ensemble_job):
    out = ensemble_job / "model"
    assert read_toml(out / "config.toml")["model"] == {"type": "ensemble", "members": ["member_00", "member_01"],
                                                      "parameter_names": ["theta"]}
    assert read_toml(out / "training.toml")["training"]["ensemble"] == 2
    seeds = [read_toml(out / name / "training.toml")["training"]["seed"] for name in ("member_00", "member_01")]
    assert seeds == [4, 1004]
    assert json.loads((out / "training_data.json").read_text())["n_events"] == 300
    model = load_model(out)
    assert isinstance(model, ModelEnsemble) and len(model) == 2 and model.prior.specs == ["uniform(-1.0,1.0)"]
    first, second = weights(out / "member_00"), weights(out / "member_01")
    assert any(not torch.equal(first[key], second[key]) for key in first)  # different seeds, different models


def test_info_lists_the_members_with_their_seeds(ensemble_job, capsys):
    assert main(["info", str(ensemble_job / "model")]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of 2 models" in printed
    assert "member_00: mflow, latent_dim 2, seed 4" in printed and "member_01: mflow, latent_dim 2, seed 1004" in printed
    assert printed.count("phase D:") == 2


def test_resume_retrains_only_the_unfinished_member(ensemble_job, tmp_path):
    source = ensemble_job / "model"
    out = tmp_path / "model"
    import shutil

    shutil.copytree(source, out)
    (out / "member_01" / "history.json").unlink()  # as if killed before member 1 finished
    (out / "member_01" / "checkpoint.pt").unlink()
    kept = (out / "member_00" / "weights.pt").stat().st_mtime_ns
    assert main(["-q", "train", "--data", str(ensemble_job / "train.npz"), "--out", str(out), "--config",
                 str(ensemble_job / "tiny.toml"), "--seed", "4", "--ensemble", "2", "--resume"]) == 0
    assert (out / "member_00" / "weights.pt").stat().st_mtime_ns == kept
    retrained, original = weights(out / "member_01"), weights(source / "member_01")
    assert all(torch.equal(retrained[key], original[key]) for key in original)  # same seed, same model


def test_infer_and_evaluate_use_the_ensemble(ensemble_job, capsys):
    out, posterior = ensemble_job / "model", ensemble_job / "posterior.npz"
    assert main(["-q", "infer", "--model", str(out), "--observed", str(ensemble_job / "observed.npz"), "--out",
                 str(posterior), "--walkers", "8", "--steps", "60", "--burn-in", "20", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of 2 models: sd of the members' posterior means: theta" in printed
    summary = json.loads((ensemble_job / "posterior_summary.json").read_text())
    entry = summary["metadata"]["ensemble"]
    assert entry["size"] == 2 and len(entry["member_means"]["theta"]) == 2
    spread = np.std(entry["member_means"]["theta"], ddof=1)
    assert entry["spread_of_means"]["theta"] == pytest.approx(spread)
    assert "misspecification" in summary["metadata"]  # checked with member 0's manifold and reference
    assert main(["-q", "evaluate", str(out), "--data", str(ensemble_job / "observed.npz")]) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out


def test_resume_refuses_members_of_other_data_or_options(ensemble_job, tmp_path, capsys):
    import shutil

    out = tmp_path / "model"
    shutil.copytree(ensemble_job / "model", out)
    other = tmp_path / "other.npz"
    simulate_events("polynomial_surface", 300, None, seed=9).save(other)
    argv = ["-q", "train", "--out", str(out), "--config", str(ensemble_job / "tiny.toml"), "--ensemble", "2",
            "--resume"]
    assert main([*argv, "--data", str(other), "--seed", "4"]) == 2  # one-line error, exit code 2
    assert "member_00: trained on other data" in capsys.readouterr().err
    assert main([*argv, "--data", str(ensemble_job / "train.npz"), "--seed", "4", "--learning-rate", "0.01"]) == 2
    assert "other [training] options (learning_rate differ)" in capsys.readouterr().err


def test_streaming_with_the_asinh_warp_is_refused_before_reading(tmp_path, capsys):
    (tmp_path / "job.toml").write_text('[model]\npreprocessing = "asinh"\n' + tiny_job())
    code = main(["train", "--data", str(tmp_path / "none_*.root"), "--format", "delphes", "--stream", "--out",
                 str(tmp_path / "m"), "--config", str(tmp_path / "job.toml")])
    assert code == 2 and "asinh" in capsys.readouterr().err
