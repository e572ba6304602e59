"""End-to-end CLI runs on tiny budgets: files, keys and shapes, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.flows import load_model
from mflow_sbi.inference.metrics import subsampled_mmd2
from mflow_sbi.workflow.run import REFERENCE_DRAWS
from tests.tiny_models import tiny_job

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
    for name in ("train.npz", "observed.npz", "posterior.npz", "posterior_summary.json", "summary.json", "corner.png",
                 "model/weights.pt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    low, high = summary["parameters"]["theta"]["central_95"]
    assert -1.0 <= low <= high <= 1.0
    assert summary["metadata"]["observed_theta"] == [0.3]
    assert summary["metadata"]["rate"] == {"source": "none"}
    printed = capsys.readouterr().out
    assert str(out / "corner.png") in printed
    # the simulator's likelihood is tractable: the exact-likelihood posterior comes along, with its distance
    with np.load(out / "reference_posterior.npz") as reference, np.load(out / "posterior.npz") as posterior:
        assert reference["samples"].shape == (4 * 20, 1)
        distance = subsampled_mmd2(posterior["samples"], reference["samples"], REFERENCE_DRAWS, 0)
    assert summary["metadata"]["mmd2_to_exact"] == pytest.approx(distance)
    assert "MMD^2 to the exact-likelihood posterior" in printed


def test_run_without_reference(tmp_path):
    config = tmp_path / "noref.toml"
    config.write_text(TINY_CONFIG.replace("seed = 3", "seed = 3\nreference = false"))
    assert main(["-q", "run", str(config), "--out", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out" / "reference_posterior.npz").exists()


def test_distance_to_reference_separates_posteriors():
    rng = np.random.default_rng(1)
    same = subsampled_mmd2(rng.normal(size=(5000, 1)), rng.normal(size=(5000, 1)))
    shifted = subsampled_mmd2(rng.normal(size=(5000, 1)), rng.normal(0.5, 1.0, size=(5000, 1)))
    assert abs(same) < 0.005 < shifted


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


def test_simulator_options_are_used_and_stored(tmp_path):
    path = tmp_path / "sphere.npz"
    argv = ["-q", "simulate", "spherical_gaussian", "--n", "20", "--from-prior", "--out", str(path),
            "--option", "latent_dim=3", "--option", "data_dim=5"]
    assert main(argv) == 0
    with np.load(path) as data:
        assert data["x"].shape == (20, 5)
        assert json.loads(str(data["simulator_options"])) == {"latent_dim": 3, "data_dim": 5}
    # training takes the manifold dimension of the simulator as configured
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_job(batch_size=None))
    assert main(["-q", "train", "--data", str(path), "--out", str(tmp_path / "m"), "--config", str(config)]) == 0
    assert load_model(tmp_path / "m").latent_dim == 3


def test_bad_simulator_option_is_one_line(tmp_path, capsys):
    code = main(["simulate", "polynomial_surface", "--n", "5", "--from-prior", "--out", str(tmp_path / "x.npz"),
                 "--option", "noequals"])
    assert code == 2 and "KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("simulator, latent_dim, truth", [("lhc", 14, "[0.0, 0.0]"), ("spherical_gaussian", 2, "[0.2, -0.3]")])
def test_run_works_for_every_simulator(tmp_path, simulator, latent_dim, truth):
    config = tmp_path / "job.toml"
    text = TINY_CONFIG.replace('simulator = "polynomial_surface"', f'simulator = "{simulator}"')
    text = text.replace("true_theta = [0.3]", f"true_theta = {truth}").replace("latent_dim = 2", f"latent_dim = {latent_dim}")
    config.write_text(text)
    assert main(["-q", "run", str(config), "--out", str(tmp_path / "out")]) == 0
    with np.load(tmp_path / "out" / "posterior.npz") as post:
        assert post["samples"].shape[1] == 2
        assert np.isfinite(post["log_prob"]).all()


def test_run_with_a_rate_uses_the_extended_likelihood(tmp_path):
    """rate = "fit" (the simulator path differs only in where nu comes from: tests/inference/test_rates.py)."""
    rate = "fit"
    config = tmp_path / "job.toml"
    text = TINY_CONFIG.replace('simulator = "polynomial_surface"', 'simulator = "lhc"')
    text = text.replace("true_theta = [0.3]", "true_theta = [0.0, 0.0]").replace("latent_dim = 2", "latent_dim = 14")
    config.write_text(text + f'rate = "{rate}"\nluminosity = 1.0\n')
    assert main(["-q", "run", str(config), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metadata"]["rate"]["source"] == rate
    assert summary["metadata"]["rate"]["luminosity"] == 1.0 and summary["metadata"]["rate"]["n_observed"] == 5
    fit = json.loads((tmp_path / "out" / "model" / "rate_fit.json").read_text())
    assert fit["residuals"]["max_relative"] < 1e-10  # lhc's rate is exactly quadratic


def test_run_with_joint_score_trains_with_scandal(tmp_path):
    config = tmp_path / "scandal.toml"
    text = TINY_CONFIG.replace("seed = 3", "seed = 3\njoint_score = true")
    text = text.replace("batch_size = 128", "batch_size = 128\nscandal = 10.0")
    config.write_text(text)
    assert main(["-q", "run", str(config), "--out", str(tmp_path / "out")]) == 0
    with np.load(tmp_path / "out" / "train.npz") as data:
        assert data["t_xz"].shape == (400, 1)
    history = json.loads((tmp_path / "out" / "model" / "history.json").read_text())
    assert any("score" in json.dumps(record) for record in history if record["phase"] == "D")


def test_example_configs_parse():
    from pathlib import Path

    from mflow_sbi.config import load_config

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))
    runs = [p for p in examples if "_format" not in p.name]
    assert runs
    for path in runs:
        load_config(path)


def test_run_resume_reuses_data_and_checkpoint(tmp_path, tiny_config):
    """--resume reuses the data files and the training checkpoint in --out and gives the same posterior
    (interruptions inside training are covered by the trainer's bit-identical resume tests)."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["-q", "run", str(tiny_config), "--out", str(first)]) == 0
    assert main(["-q", "run", str(tiny_config), "--out", str(second)]) == 0
    (second / "posterior.npz").unlink()
    assert main(["-q", "run", str(tiny_config), "--out", str(second), "--resume"]) == 0
    with np.load(first / "posterior.npz") as a, np.load(second / "posterior.npz") as b:
        assert np.array_equal(a["samples"], b["samples"])


def test_negative_parameter_values_are_values_not_flags(tmp_path):
    """The paper's third LHC point: `--theta -1,-1` used to be read as an unknown flag."""
    out = tmp_path / "lhc.npz"
    assert main(["-q", "simulate", "lhc", "--n", "5", "--theta", "-1,-1", "--seed", "1", "--out", str(out)]) == 0
    with np.load(out) as data:
        np.testing.assert_array_equal(data["theta"], np.full((5, 2), -1.0))
    assert main(["-q", "simulate", "polynomial_surface", "--n", "3", "--theta", "-.5", "--out", str(out)]) == 0
    with np.load(out) as data:
        np.testing.assert_array_equal(data["theta"], np.full((3, 1), -0.5))


def test_info_describes_the_model_and_its_training_data(tmp_path, tiny_config, capsys):
    import hashlib

    train, model_dir = tmp_path / "train.npz", tmp_path / "model"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "300", "--from-prior", "--seed", "4", "--out", str(train)]) == 0
    assert main(["-q", "train", "--data", str(train), "--out", str(model_dir), "--config", str(tiny_config),
                 "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["info", str(model_dir)]) == 0
    printed = capsys.readouterr().out
    with np.load(train) as data:
        digest = hashlib.sha256()
        for key in ("x", "theta"):
            digest.update(repr(data[key].shape).encode())
            digest.update(np.ascontiguousarray(data[key], dtype=np.float64).tobytes())
    assert "model type       mflow" in printed and "prior            uniform(-1.0,1.0)" in printed
    assert "training data    300 events of dimension 3 from polynomial_surface" in printed
    assert f"fingerprint {digest.hexdigest()}" in printed
    assert "phase M: 1 epoch(s), best validation loss" in printed and "phase D: 1 epoch(s)" in printed

    assert main(["info", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path}: not a model directory (no config.toml)")


def test_run_set_overrides_keys_and_saves_the_effective_config(tmp_path, tiny_config):
    """--set changes single keys; OUT/config.toml holds the resolved configuration and reproduces the run."""
    from mflow_sbi.config import load_config

    out = tmp_path / "run"
    assert main(["-q", "run", str(tiny_config), "--out", str(out), "--set", "simulation.n_observed=7",
                 "--set", "inference.steps=40", "--set", "simulation.reference=false"]) == 0
    with np.load(out / "observed.npz") as observed, np.load(out / "posterior.npz") as posterior:
        assert observed["x"].shape == (7, 3) and posterior["samples"].shape == (4 * 30, 1)
    saved = load_config(out / "config.toml")
    assert saved == load_config(tiny_config, ["simulation.n_observed=7", "inference.steps=40", "simulation.reference=false"])
    again = tmp_path / "again"
    assert main(["-q", "run", str(out / "config.toml"), "--out", str(again)]) == 0
    with np.load(out / "posterior.npz") as a, np.load(again / "posterior.npz") as b:
        assert np.array_equal(a["samples"], b["samples"])


@pytest.mark.parametrize(("override", "message"), [
    ("training.epochs_d", "is not of the form table.key=value"),
    ("epochs_d=3", "is not of the form table.key=value"),
    ("inference.walkers=many", "walkers"),
    ("training.nonsense=1", "nonsense"),
])
def test_bad_overrides_are_one_line_errors(tmp_path, tiny_config, capsys, override, message):
    assert main(["run", str(tiny_config), "--out", str(tmp_path / "x"), "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--option", "foo=1"], "simulator 'polynomial_surface' has no option 'foo'; its options: none"),
    (["--out", "events.txt"], "the output file must end in .npz or .root"),
])
def test_simulate_refuses_unknown_options_and_output_types(tmp_path, capsys, argv, message):
    out = ["--out", str(tmp_path / "a.npz")] if "--out" not in argv else []
    argv = [a if a != "events.txt" else str(tmp_path / a) for a in argv]
    assert main(["simulate", "polynomial_surface", "--n", "3", "--theta", "0.1", *argv, *out]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_simulator_option_types_are_checked():
    from mflow_sbi.errors import InputError
    from mflow_sbi.simulators import get_simulator

    with pytest.raises(InputError, match=r"option smearing must be bool \(default False\), got 'maybe'"):
        get_simulator("lhc", smearing="maybe")
    with pytest.raises(InputError, match="option latent_dim must be int"):
        get_simulator("spherical_gaussian", latent_dim=2.5)
    assert get_simulator("spherical_gaussian", epsilon=1).manifold_dim == 2  # an integer where a float is expected


def test_infer_refuses_observed_events_of_another_simulator(tmp_path, tiny_config, capsys):
    """Both files record their simulator: a model trained on one and events from another (same dimension)
    are an error, and nothing is written."""
    train, model_dir = tmp_path / "train.npz", tmp_path / "model"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "200", "--from-prior", "--out", str(train)]) == 0
    assert main(["-q", "train", "--data", str(train), "--out", str(model_dir), "--config", str(tiny_config),
                 "--epochs", "1"]) == 0
    other = tmp_path / "sphere.npz"
    assert main(["-q", "simulate", "spherical_gaussian", "--n", "5", "--theta", "0.1,0.1", "--option", "latent_dim=2",
                 "--option", "data_dim=3", "--out", str(other)]) == 0
    capsys.readouterr()
    out = tmp_path / "posterior.npz"
    assert main(["infer", "--model", str(model_dir), "--observed", str(other), "--out", str(out)]) == 2
    assert "holds events of simulator 'spherical_gaussian', but the model" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"root\x00\x00\xf4\x45", "this is a ROOT file, not an .npz archive"),
    (b"x,theta\n1,2\n", "not an .npz archive"),
    (b"PK\x03\x04truncated", "not a readable .npz file"),
])
def test_observed_file_that_is_not_an_npz_is_named_for_what_it_is(tmp_path, capsys, content, message):
    observed = tmp_path / "observed.npz"
    observed.write_bytes(content)
    assert main(["infer", "--model", str(tmp_path), "--observed", str(observed), "--out", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert f"{observed}: {message}" in err and err.count("\n") == 1


def test_evaluate_reports_the_model_figures(tmp_path, tiny_config, capsys):
    """The figures equal their definitions computed directly from the model; simulated events lie on the
    true manifold (distance ~ 0) and shifted ones do not; wrong-dimension data is a one-line error."""
    import torch

    from mflow_sbi.data.datasets import load_events
    from mflow_sbi.workflow.evaluate import evaluate_model

    train, test, model_dir = tmp_path / "train.npz", tmp_path / "test.npz", tmp_path / "model"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "300", "--from-prior", "--seed", "4", "--out", str(train)]) == 0
    assert main(["-q", "simulate", "polynomial_surface", "--n", "200", "--from-prior", "--seed", "5", "--out", str(test)]) == 0
    assert main(["-q", "train", "--data", str(train), "--out", str(model_dir), "--config", str(tiny_config),
                 "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--data", str(test), "--out", str(tmp_path / "e.json")]) == 0
    assert "held-out NLL" in capsys.readouterr().out
    result = json.loads((tmp_path / "e.json").read_text())
    data, model = load_events(test), load_model(model_dir)
    with torch.no_grad():
        assert result["nll"] == pytest.approx(-float(model.log_prob(data.x, data.theta).mean()), rel=1e-6)
        squared = ((model.project(data.x).double() - torch.as_tensor(data.x)) ** 2).sum(1)
    assert result["reconstruction_error"] == pytest.approx(float(squared.mean()), rel=1e-4)
    assert result["data_distance_to_true_manifold"]["q99"] < 1e-10
    shifted = load_events(test)
    shifted.x = shifted.x + np.array([0.0, 0.0, 0.1])
    assert evaluate_model(model_dir, shifted)["data_distance_to_true_manifold"]["median"] > 1e-3
    relabelled = load_events(test)  # events read with a format other than their simulator's, say
    relabelled.simulator = "lhc"
    figures = evaluate_model(model_dir, relabelled)
    assert "data_distance_to_true_manifold" not in figures
    assert any("the events have 3 observables, simulator 'lhc'" in w and "has 40" in w for w in figures["warnings"])
    lhc = tmp_path / "lhc.npz"
    assert main(["-q", "simulate", "lhc", "--n", "5", "--theta", "0,0", "--out", str(lhc)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--data", str(lhc)]) == 2
    assert "events have dimension 40 and 2 parameter(s)" in capsys.readouterr().err


def test_every_subcommand_documents_its_flags_and_ends_with_examples():
    import argparse

    from mflow_sbi.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(subparsers.choices) >= 11
    for name, parser in subparsers.choices.items():
        undocumented = [a.option_strings or a.dest for a in parser._actions if not a.help]
        assert not undocumented, f"{name}: arguments without help: {undocumented}"
        hidden = [a.option_strings for a in parser._actions if a.option_strings and a.default not in
                  (None, False, argparse.SUPPRESS, []) and "default" not in a.help]
        assert not hidden, f"{name}: defaults not shown in the help: {hidden}"
        lines = (parser.epilog or "").splitlines()
        assert lines[:1] == ["examples:"] and len(lines) >= 3, f"{name}: help should end with 2-3 examples"
        assert all(line.strip().startswith("mflow-sbi ") for line in lines[1:]), name


def test_simulator_labels_travel_from_data_to_the_posterior(tmp_path, tiny_config):
    """The simulator's LaTeX labels are stored with the data, recorded with the model, and carried by infer's
    and run's posteriors (plot uses them unless --labels says otherwise)."""
    from mflow_sbi.data.datasets import load_events
    from mflow_sbi.inference.posterior import Posterior

    train, observed, model_dir = tmp_path / "train.npz", tmp_path / "obs.npz", tmp_path / "model"
    assert main(["-q", "simulate", "polynomial_surface", "--n", "200", "--from-prior", "--out", str(train)]) == 0
    assert main(["-q", "simulate", "polynomial_surface", "--n", "5", "--theta", "0.3", "--out", str(observed)]) == 0
    assert load_events(train).parameter_labels == (r"$\theta$",)
    assert main(["-q", "train", "--data", str(train), "--out", str(model_dir), "--config", str(tiny_config),
                 "--epochs", "1"]) == 0
    assert json.loads((model_dir / "training_data.json").read_text())["parameter_labels"] == [r"$\theta$"]
    assert main(["-q", "infer", "--model", str(model_dir), "--observed", str(observed), "--out", str(tmp_path / "p.npz"),
                 "--walkers", "4", "--steps", "30", "--burn-in", "10", "--init", "prior"]) == 0
    assert Posterior.load(tmp_path / "p.npz").labels == (r"$\theta$",)
    assert main(["-q", "plot", str(tmp_path / "p.npz"), "--out", str(tmp_path / "c.png"), "--labels", "$g$"]) == 0
    assert main(["-q", "plot", str(tmp_path / "p.npz"), "--out", str(tmp_path / "c.png"), "--labels", "a,b"]) == 2
