"""The [training] table: defaults, validation, TOML round trip."""

from __future__ import annotations

import dataclasses

import pytest

from mflow_sbi.config import parse_config
from mflow_sbi.errors import ConfigError
from mflow_sbi.tomlio import read_toml, write_toml
from mflow_sbi.training import TrainingConfig


def test_defaults_and_per_phase_learning_rates():
    config = TrainingConfig()
    assert config.algorithm == "auto" and config.lr_m == config.lr_d == config.learning_rate
    config = TrainingConfig(learning_rate=1e-3, learning_rate_m=5e-4)
    assert (config.lr_m, config.lr_d) == (5e-4, 1e-3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algorithm": "magic"}, "training.algorithm must be one of"),
        ({"reconstruction": "l3"}, "training.reconstruction must be one of"),
        ({"epochs_m": -1}, "training.epochs_m must be an integer >= 0"),
        ({"batch_size": 0}, "training.batch_size must be an integer >= 1"),
        ({"epochs": 2.5}, "training.epochs must be an integer"),
        ({"threads": True}, "training.threads must be an integer"),
        ({"learning_rate_d": 0.0}, "training.learning_rate_d must be a number > 0"),
        ({"scandal": -1.0}, "training.scandal must be a number >= 0"),
        ({"validation_fraction": 1.0}, r"training.validation_fraction must be a number in \[0, 1\)"),
    ],
)
def test_invalid_values_are_rejected(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainingConfig(**changes)


def test_toml_round_trip_and_unknown_keys(tmp_path):
    config = TrainingConfig(algorithm="simultaneous", epochs=7, learning_rate_m=1e-4, scandal=0.5, threads=2)
    path = write_toml(tmp_path / "run.toml", {"training": dataclasses.asdict(config)})
    assert parse_config(read_toml(path)).training == config
    with pytest.raises(ConfigError, match=r"\[training\]: unknown key\(s\) \['epoch'\]"):
        parse_config({"training": {"epoch": 3}})
