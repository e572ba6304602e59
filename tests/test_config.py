"""Run configuration: the embedded default, validation, and model architecture tables for every model type."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.config import RunConfig, load_config, parse_config
from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.flows import PIE, AmbientFlow, EncoderManifoldFlow, ManifoldFlow, StackConfig
from mflow_sbi.inference.priors import box_uniform
from mflow_sbi.workflow.train import model_for_data


def test_embedded_default_is_the_polynomial_surface_job():
    config = load_config(None)
    assert config.simulation.simulator == "polynomial_surface"
    assert config.simulation.n_train == 20000 and config.simulation.n_observed == 20
    assert config.model.type == "mflow" and config.model.latent_dim is None  # the simulator's manifold dimension
    model = ManifoldFlow(data_dim=3, latent_dim=2, parameter_dim=1)
    assert model.outer_config == model.inner_config == StackConfig(n_layers=4, hidden_features=64)


def test_missing_tables_take_defaults():
    assert parse_config({}) == RunConfig()


def test_the_embedded_job_is_the_schema_defaults():
    assert load_config(None) == RunConfig()


@pytest.mark.parametrize(
    "table, key, value",
    [("simulation", "n_train", 500), ("model", "type", "pie"), ("training", "epochs_m", 3), ("inference", "walkers", 8)],
)
def test_a_file_that_sets_one_key_gets_the_default_job_for_every_other_key(tmp_path, table, key, value):
    path = tmp_path / "job.toml"
    path.write_text(f"[{table}]\n{key} = {value!r}\n".replace("'", '"'))
    expected = load_config(None)
    setattr(getattr(expected, table), key, value)
    assert load_config(path) == expected
    assert load_config(path).training.for_data(True).scandal == 10.0  # SCANDAL stays on with the joint score


@pytest.mark.parametrize(
    "data, message",
    [
        ({"inference": {"walkers": "many"}}, "inference.walkers must be an integer >= 2, got 'many'"),
        ({"inference": {"burn_in": -5}}, "inference.burn_in must be an integer >= 0, got -5"),
        ({"inference": {"steps": 100, "burn_in": 98}}, "inference.burn_in must be at most steps - 4 = 96, got 98"),
        ({"simulation": {"n_train": 2e4}}, "simulation.n_train must be an integer >= 2, got 20000.0"),
        ({"simulation": {"simulator": "nope"}}, "simulation.simulator must be one of ("),
        ({"simulation": {"true_theta": 0.3}}, "simulation.true_theta must be a non-empty array of numbers, got 0.3"),
        ({"simulation": {"joint_score": 1}}, "simulation.joint_score must be true or false, got 1"),
        ({"model": {"type": "nflow"}}, "model.type must be one of ('af', 'pie', 'mflow', 'emflow'), got 'nflow'"),
        ({"model": {"latent_dim": 0}}, "model.latent_dim must be an integer >= 1 (or unset), got 0"),
        ({"model": {"outer": {"layers": 2}}}, "model.outer: unknown key(s) ['layers']"),
        ({"model": {"inner": {"transform": "magic"}}}, "model.inner = {'transform': 'magic'}: transform must be one of"),
        ({"model": {"type": "mflow", "eps": 0.1}}, "model.eps is not an option of model type 'mflow'"),
        ({"inference": {"rate": "poisson"}}, "inference.rate must be one of ('none', 'simulator', 'fit'), got 'poisson'"),
        ({"inference": {"rate": "simulator"}},
         "inference.luminosity must be set (a number > 0) when inference.rate = 'simulator'"),
        ({"inference": {"luminosity": 0}}, "inference.luminosity must be a number > 0 (or unset), got 0"),
        ({"training": {"scandal": -1}}, "training.scandal must be a number >= 0 (or unset), got -1"),
    ],
)
def test_every_table_validates_its_values(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "job.toml")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"trainig": {}}, "unknown table(s) ['trainig']"),
        ({"model": {"latnt_dim": 2}}, "unknown key(s) ['latnt_dim']"),
        ({"inference": 3}, "expected a table"),
        ({"training": {"batch_size": 0}}, "batch_size"),
    ],
)
def test_invalid_configs_name_the_problem(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, "job.toml")
    assert message in str(err.value)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return EventData(x=rng.normal(size=(50, 3)), theta=rng.uniform(-1, 1, (50, 1)), prior=box_uniform([-1], [1]))


@pytest.mark.parametrize(
    "model_table, cls, check",
    [
        ({"type": "af", "flow": {"n_layers": 2, "hidden_features": 8}}, AmbientFlow, lambda m: m.flow_config.n_layers == 2),
        ({"type": "af", "ambient_transform": "maf", "flow": {"n_layers": 2}}, AmbientFlow,
         lambda m: (m.ambient_transform, m.flow_config.transform, m.flow_config.n_layers) == ("maf", "affine_autoregressive", 2)),
        ({"type": "pie", "latent_dim": 2, "eps": 0.05}, PIE, lambda m: m.eps == 0.05),
        ({"type": "mflow", "latent_dim": 2, "outer": {"n_layers": 3}}, ManifoldFlow, lambda m: m.outer_config.n_layers == 3),
        ({"type": "emflow", "latent_dim": 1, "encoder": {"hidden_features": 12}}, EncoderManifoldFlow,
         lambda m: m.encoder_config.hidden_features == 12),
    ],
)
def test_model_tables_reach_the_model(data, model_table, cls, check):
    model = model_for_data(data, parse_config({"model": model_table}).model)
    assert type(model) is cls and check(model)


def test_option_the_model_does_not_take_is_an_error(data):
    with pytest.raises(InputError, match="outer"):
        model_for_data(data, parse_config({"model": {"type": "af", "outer": {"n_layers": 2}}}).model)
    with pytest.raises(InputError, match="model.ambient_transform is not an option of model type 'mflow'"):
        parse_config({"model": {"type": "mflow", "ambient_transform": "maf"}})
