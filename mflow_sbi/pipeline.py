"""The end-to-end workflow: simulate -> train -> infer -> plot, as used by the CLI's `train` and `run`."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from mflow_sbi.config import ModelConfig, RunConfig
from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import InputError
from mflow_sbi.flows import ConditionalDensityModel, create_model
from mflow_sbi.io import save_json
from mflow_sbi.tomlio import write_toml
from mflow_sbi.training.algorithms import train_model

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
TRAINING_CONFIG_FILE = "training.toml"


def model_for_data(data: EventData, config: ModelConfig) -> ConditionalDensityModel:
    """Build an untrained model sized for ``data``; latent_dim defaults to the simulator's manifold dimension."""
    if data.theta is None:
        raise InputError("training data need theta")
    latent_dim = config.latent_dim
    if latent_dim is None and data.simulator is not None:
        from simulators import get_simulator

        latent_dim = get_simulator(data.simulator).manifold_dim
    if data.prior is not None and data.prior.dim != data.theta.shape[1]:
        raise InputError(f"prior has {data.prior.dim} parameters but theta has {data.theta.shape[1]} columns")
    return create_model(
        config.type,
        data_dim=data.x.shape[1],
        parameter_dim=data.theta.shape[1],
        latent_dim=latent_dim,
        conditional_outer=config.conditional_outer,
        outer=config.outer or None,
        inner=config.inner or None,
        parameter_names=data.parameter_names,
        prior=data.prior,
    )


def train_from_data(
    data: EventData, config: RunConfig, out_dir: Path, resume: bool = False, progress: bool = True
) -> Path:
    """Train a model on ``data`` and write the model directory (weights, config, history, checkpoint)."""
    model = model_for_data(data, config.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_toml(out_dir / TRAINING_CONFIG_FILE, {"training": dataclasses.asdict(config.training)})
    history = train_model(
        model, data.x, data.theta, config.training, checkpoint=out_dir / CHECKPOINT_FILE, resume=resume, progress=progress
    )
    model.save(out_dir)
    save_json(out_dir / HISTORY_FILE, history.to_list())
    log.info("trained %s on %d events", type(model).__name__, len(data.x))
    return out_dir
