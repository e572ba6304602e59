"""Run configuration: the embedded default, validation, and model architecture tables for every model type."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.config import RunConfig, load_config, parse_config
from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.flows import PIE, AmbientFlow, EncoderManifoldFlow, ManifoldFlow
from mflow_sbi.inference.priors import box_uniform
from mflow_sbi.pipeline import model_for_data


def test_embedded_default_is_the_polynomial_surface_job():
    config = load_config(None)
    assert config.simulation.simulator == "polynomial_surface"
    assert config.simulation.n_train == 20000 and config.simulation.n_observed == 20
    assert config.model.type == "mflow" and config.model.latent_dim == 2


def test_missing_tables_take_defaults():
    assert parse_config({}) == RunConfig()


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
