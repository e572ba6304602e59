"""The run configuration: one TOML file with up to four tables, every key optional, unknown keys errors.

    [simulation]   :class:`mflow_sbi.simulation.SimulationConfig`   (used by `mflow-sbi run`)
    [model]        :class:`mflow_sbi.flows.settings.ModelConfig`     (+ [model.outer], [model.inner],
                                                                      [model.flow], [model.encoder])
    [training]     :class:`mflow_sbi.training.settings.TrainingConfig`
    [inference]    :class:`mflow_sbi.inference.settings.InferenceConfig`

Each table is a typed dataclass declared next to what it configures and validated on construction
(:mod:`mflow_sbi.schema`): a wrong value is a ConfigError naming the key, the value and what is allowed.
The dataclass defaults are the only defaults: the embedded job ``mflow_sbi/default_run.toml`` (what
`mflow-sbi run` does without a file) equals ``RunConfig()``, so a file that sets one key runs the default
job with that key changed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources

from mflow_sbi.errors import ConfigError
from mflow_sbi.flows.settings import ModelConfig
from mflow_sbi.inference.settings import InferenceConfig
from mflow_sbi.schema import from_table
from mflow_sbi.simulation import SimulationConfig
from mflow_sbi.tomlio import read_toml
from mflow_sbi.training.settings import TrainingConfig

DEFAULT_JOB = "default_run.toml"


@dataclass
class RunConfig:
    """All four tables of a run configuration."""

    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


TABLES = {item.name: item.default_factory for item in fields(RunConfig)}


def parse_config(data: dict, source: str = "config") -> RunConfig:
    """Validate a parsed TOML document into a RunConfig (missing tables and keys take the defaults)."""
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {unknown}; known tables: {sorted(TABLES)}")
    tables = {name: from_table(cls, data.get(name, {}), f"{source} [{name}]") for name, cls in TABLES.items()}
    return RunConfig(**tables)


def load_config(path: str | os.PathLike | None = None) -> RunConfig:
    """Load a configuration file, or the embedded default job when ``path`` is None."""
    if path is None:
        text = resources.files("mflow_sbi").joinpath(DEFAULT_JOB).read_text()
        return parse_config(tomllib.loads(text), f"embedded {DEFAULT_JOB}")
    return parse_config(read_toml(path), str(path))


__all__ = ["InferenceConfig", "ModelConfig", "RunConfig", "SimulationConfig", "TrainingConfig", "load_config",
           "parse_config"]
