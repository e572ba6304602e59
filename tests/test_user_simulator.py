"""A user's own simulator, named package.module:Class or path/to/file.py:Class, through the whole CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.errors import InputError
from mflow_sbi.simulators import get_simulator
from tests.tiny_models import tiny_job

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BY_FILE = f"{EXAMPLES / 'my_simulator.py'}:NoisyCircle"
TINY = tiny_job(latent_dim=1)


def test_the_example_simulator_has_a_normalized_likelihood():
    """The wrapped-normal density integrates to one over the circle (analytic check of the example)."""
    simulator = get_simulator(BY_FILE)
    phi = np.linspace(-np.pi, np.pi, 20001)
    x = np.column_stack([np.cos(phi), np.sin(phi)])
    density = np.exp(simulator.log_likelihood(x, np.array([0.7])))
    assert np.trapezoid(density, phi) == pytest.approx(1.0, abs=1e-6)
    sample = simulator.sample(np.array([0.7]), 2000, np.random.default_rng(0))
    assert np.all(simulator.distance_to_manifold(sample) < 1e-12)


def test_simulate_train_infer_calibrate_with_a_user_simulator(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    train, observed, model = tmp_path / "train.npz", tmp_path / "observed.npz", tmp_path / "model"
    assert main(["-q", "simulate", BY_FILE, "--n", "300", "--from-prior", "--seed", "1", "--out", str(train)]) == 0
    assert main(["-q", "simulate", BY_FILE, "--n", "10", "--theta", "0.5", "--out", str(observed)]) == 0
    with np.load(train) as data:
        assert str(data["simulator"]) == BY_FILE and data["x"].shape == (300, 2)
    assert main(["-q", "train", "--data", str(train), "--out", str(model), "--config", str(config)]) == 0
    assert json.loads((model / "training_data.json").read_text())["simulator"] == BY_FILE
    assert main(["-q", "infer", "--model", str(model), "--observed", str(observed), "--out", str(tmp_path / "p.npz"),
                 "--walkers", "4", "--steps", "30", "--burn-in", "10"]) == 0
    assert main(["-q", "calibrate", "--model", str(model), "--simulator", BY_FILE, "--n-datasets", "3", "--n-events", "5",
                 "--walkers", "4", "--steps", "30", "--burn-in", "10", "--rank-samples", "10",
                 "--out", str(tmp_path / "cal")]) == 0
    assert json.loads((tmp_path / "cal" / "calibration_summary.json").read_text())["n_datasets"] == 3


def test_module_form_imports_from_the_current_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(EXAMPLES))])
    simulator = get_simulator("my_simulator:NoisyCircle", width=0.2)
    assert simulator.width == 0.2 and simulator.manifold_dim == 1


@pytest.mark.parametrize(("name", "message"), [
    (f"{EXAMPLES / 'my_simulator.py'}:Missing", "has no class 'Missing'"),
    (f"{EXAMPLES / 'nothing_here.py'}:NoisyCircle", "does not exist"),
    ("no_such_module_xyz:Sim", "cannot import the simulator module 'no_such_module_xyz'"),
    ("pathlib:PurePath", "does not implement the Simulator interface"),
    ("circle", "unknown simulator 'circle'"),
])
def test_bad_user_simulators_are_named(name, message):
    with pytest.raises(InputError, match=message):
        get_simulator(name)


def test_a_run_config_accepts_a_user_simulator(tmp_path):
    from mflow_sbi.config import load_config

    assert load_config(None, [f"simulation.simulator={BY_FILE}"]).simulation.simulator == BY_FILE
