"""TOML configuration: schema, defaults and validation.

A configuration file has up to four tables; every key is optional and unknown keys are errors:

    [simulation]   simulator, n_train, n_observed, true_theta, seed, joint_score (store t_xz for SCANDAL),
                   reference (also sample the exact-likelihood posterior when the simulator has one),
                   [simulation.options] (the simulator's keyword arguments)   (used by `mflow-sbi run`)
    [model]        type ("af", "pie", "mflow", "emflow"), latent_dim, conditional_outer, eps (PIE),
                   jacobian_method, and the architecture tables [model.outer], [model.inner] (PIE, M-flows),
                   [model.flow] (AF), [model.encoder] (Me-flow)
    [training]     the fields of TrainingConfig (algorithm, epochs_m, epochs_d, learning_rate, ...)
    [inference]    walkers, steps, burn_in, thin, seed

The embedded default (``mflow_sbi/default_run.toml``) is what `mflow-sbi run` uses without a file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from mflow_sbi.errors import ConfigError
from mflow_sbi.inference.settings import DEFAULT_BURN_IN, DEFAULT_STEPS, DEFAULT_WALKERS
from mflow_sbi.tomlio import read_toml
from mflow_sbi.training.settings import TrainingConfig


@dataclass
class SimulationConfig:
    simulator: str = "polynomial_surface"
    n_train: int = 20000
    n_observed: int = 20
    true_theta: list[float] = field(default_factory=lambda: [0.0])
    seed: int = 1
    joint_score: bool = False
    reference: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    type: str = "mflow"
    latent_dim: int | None = None
    conditional_outer: bool = False
    outer: dict[str, Any] = field(default_factory=dict)
    inner: dict[str, Any] = field(default_factory=dict)
    flow: dict[str, Any] = field(default_factory=dict)
    encoder: dict[str, Any] = field(default_factory=dict)
    eps: float | None = None
    jacobian_method: str | None = None

    def options(self) -> dict[str, Any]:
        """The architecture keywords that were set (empty tables and unset values take the class defaults)."""
        values = {"outer": self.outer, "inner": self.inner, "flow": self.flow, "encoder": self.encoder,
                  "eps": self.eps, "jacobian_method": self.jacobian_method,
                  "conditional_outer": self.conditional_outer or None}
        return {key: value for key, value in values.items() if value not in (None, {})}


@dataclass
class InferenceConfig:
    walkers: int = DEFAULT_WALKERS
    steps: int = DEFAULT_STEPS
    burn_in: int = DEFAULT_BURN_IN
    thin: int = 1
    seed: int = 0


@dataclass
class RunConfig:
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


def _section(cls: type, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def parse_config(data: dict, source: str = "config") -> RunConfig:
    """Validate a parsed TOML document into a RunConfig (missing tables and keys take defaults)."""
    sections = {f.name: f.type for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {unknown}; known tables: {sorted(sections)}")
    classes = {"simulation": SimulationConfig, "model": ModelConfig, "training": TrainingConfig, "inference": InferenceConfig}
    return RunConfig(**{name: _section(cls, data.get(name, {}), f"{source} [{name}]") for name, cls in classes.items()})


def load_config(path: str | os.PathLike | None = None) -> RunConfig:
    """Load a configuration file, or the embedded default when ``path`` is None."""
    if path is None:
        text = resources.files("mflow_sbi").joinpath("default_run.toml").read_text()
        return parse_config(tomllib.loads(text), "embedded default_run.toml")
    return parse_config(read_toml(path), str(path))
