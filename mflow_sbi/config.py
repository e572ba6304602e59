"""The run configuration: one TOML file with up to five tables, every key optional, unknown keys errors.

    [simulation]   :class:`mflow_sbi.simulation.SimulationConfig`   (used by `mflow-sbi run`)
    [model]        :class:`mflow_sbi.flows.settings.ModelConfig`     (+ [model.outer], [model.inner],
                                                                      [model.flow], [model.encoder])
    [training]     :class:`mflow_sbi.training.settings.TrainingConfig`
    [inference]    :class:`mflow_sbi.inference.settings.InferenceConfig`
    [compute]      :class:`mflow_sbi.compute.ComputeConfig`           (the Dask scheduler of fan-out work)

Each table is a typed dataclass declared next to what it configures and validated on construction
(:mod:`mflow_sbi.schema`): a wrong value is a ConfigError naming the key, the value and what is allowed.
The dataclass defaults are the only defaults: the embedded job ``mflow_sbi/default_run.toml`` (what
`mflow-sbi run` does without a file) equals ``RunConfig()``, so a file that sets one key runs the default
job with that key changed.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from importlib import resources

from mflow_sbi.compute import ComputeConfig
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
    """All tables of a run configuration."""

    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)


TABLES = {item.name: item.default_factory for item in fields(RunConfig)}


def parse_config(data: dict, source: str = "config") -> RunConfig:
    """Validate a parsed TOML document into a RunConfig (missing tables and keys take the defaults)."""
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {unknown}; known tables: {sorted(TABLES)}")
    tables = {name: from_table(cls, data.get(name, {}), f"{source} [{name}]") for name, cls in TABLES.items()}
    return RunConfig(**tables)


def parse_override(item: str) -> tuple[list[str], object]:
    """``table.key=value`` (or ``table.sub.key=value``) -> (path, value); the value is read as a TOML value
    (``3``, ``1e-3``, ``true``, ``[0.5, 0.0]``, ``"text"``) and kept as a string when it is not one
    (``simulation.simulator=lhc``)."""
    name, sep, text = item.partition("=")
    path = [part.strip() for part in name.split(".")]
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"override {item!r} is not of the form table.key=value")
    try:
        value = tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return path, value


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """A copy of the parsed TOML document ``data`` with each ``table.key=value`` set (later ones win)."""
    data = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        table = data
        for part in path[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(path[:-1])} is a value, not a table")
        table[path[-1]] = value
    return data


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Load a configuration file, or the embedded default job when ``path`` is None, with ``overrides``
    (``table.key=value`` strings, see :func:`apply_overrides`) applied before validation."""
    if path is None:
        text = resources.files("mflow_sbi").joinpath(DEFAULT_JOB).read_text()
        data, source = tomllib.loads(text), f"embedded {DEFAULT_JOB}"
    else:
        data, source = read_toml(path), str(path)
    if overrides:
        data, source = apply_overrides(data, overrides), f"{source} with overrides"
    return parse_config(data, source)


def config_document(config: RunConfig) -> dict:
    """The TOML document of ``config`` (unset keys left out), which :func:`parse_config` reads back equal."""
    return dataclasses.asdict(config)


__all__ = ["ComputeConfig", "InferenceConfig", "ModelConfig", "RunConfig", "SimulationConfig", "TrainingConfig",
           "apply_overrides", "config_document", "load_config", "parse_config"]
