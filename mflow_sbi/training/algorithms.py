"""Training algorithms expressed as trainer phases, and the ``train_model`` entry point.

- ``sequential`` (M-flow): phase M minimizes the reconstruction error over the outer flow only; phase D
  minimizes the fixed-manifold NLL over the inner flow only. The outer flow is frozen (its parameters
  receive no updates), so the latents u'(x) are computed once at the start of phase D and the inner flow
  trains on them alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.flows.base import ConditionalDensityModel
from mflow_sbi.flows.manifold import ManifoldFlow
from mflow_sbi.training.losses import latent_nll_loss, reconstruction_loss
from mflow_sbi.training.trainer import History, Phase, Step, Trainer, TrainerSettings

ALGORITHMS = ("sequential",)


@dataclass
class TrainingConfig:
    """All training options, with defaults that work on the shipped simulators."""

    algorithm: str = "sequential"
    epochs_m: int = 30
    epochs_d: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 256
    weight_decay: float = 1e-5
    clip_norm: float = 5.0
    validation_fraction: float = 0.1
    patience: int = 5
    reconstruction: str = "mse"
    latent_l2: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.reconstruction not in ("mse", "smooth_l1"):
            raise ConfigError(f"reconstruction must be 'mse' or 'smooth_l1', got {self.reconstruction!r}")
        if self.batch_size < 1 or self.epochs_m < 0 or self.epochs_d < 0 or self.learning_rate <= 0:
            raise ConfigError("batch_size >= 1, epochs >= 0 and learning_rate > 0 are required")


def build_phases(model: ConditionalDensityModel, config: TrainingConfig) -> list[Phase]:
    """The phases of ``config.algorithm`` for ``model``; batches are (x_std, theta_std)."""
    if not isinstance(model, ManifoldFlow):
        raise ConfigError(f"algorithm {config.algorithm!r} needs an M-flow, got {type(model).__name__}")

    def m_loss(batch):
        return reconstruction_loss(model, batch[0], batch[1], config.reconstruction, config.latent_l2)

    def encode_frozen(batch):
        context = model._outer_context(batch[1], batch[0].shape[0])
        return (model._encode_std(batch[0], context), batch[1])

    def d_loss(batch):
        return latent_nll_loss(model, batch[0], batch[1])

    return [
        Phase("M", [Step("reconstruction", model.manifold_parameters(), m_loss, config.learning_rate)], config.epochs_m),
        Phase("D", [Step("latent_nll", model.density_parameters(), d_loss, config.learning_rate)], config.epochs_d,
              prepare=encode_frozen),
    ]


def train_model(
    model: ConditionalDensityModel,
    x: np.ndarray,
    theta: np.ndarray,
    config: TrainingConfig,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> History:
    """Fit the model's scalers on (x, theta), then run the algorithm's phases. Returns the learning curves."""
    x_t, theta_t = model.check_inputs(x, theta)
    if x_t.shape[0] < 2:
        raise InputError(f"need at least 2 training events, got {x_t.shape[0]}")
    torch.manual_seed(config.seed)
    model.fit_scalers(x_t, theta_t)
    with torch.no_grad():
        data = (model.x_scaler(x_t), model.theta_scaler(theta_t))
    settings = TrainerSettings(
        batch_size=config.batch_size, weight_decay=config.weight_decay, clip_norm=config.clip_norm,
        validation_fraction=config.validation_fraction, patience=config.patience, seed=config.seed, progress=progress,
    )
    trainer = Trainer(model, data, settings, checkpoint=checkpoint)
    history = trainer.fit(build_phases(model, config), resume=resume)
    model.eval()
    return history
