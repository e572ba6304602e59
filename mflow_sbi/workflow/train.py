"""The train service: a model directory from training data and a run configuration.

Heavy modules (torch, the trainer, matplotlib) are imported on use, so the CLI can import this module
while building its parser.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mflow_sbi import layout
from mflow_sbi.config import RunConfig
from mflow_sbi.data.datasets import EventData
from mflow_sbi.flows.settings import ModelConfig
from mflow_sbi.tomlio import write_toml

if TYPE_CHECKING:
    from mflow_sbi.flows import ConditionalDensityModel
    from mflow_sbi.training.streaming import StreamedData

log = logging.getLogger(__name__)


def simulator_manifold_dim(data: EventData) -> int | None:
    """The manifold dimension of the simulator that made ``data``, or None when the data do not name one."""
    if data.simulator is None:
        return None
    from simulators import get_simulator

    return get_simulator(data.simulator, **(data.simulator_options or {})).manifold_dim


def model_for_data(data: EventData, config: ModelConfig) -> ConditionalDensityModel:
    """An untrained model for ``data`` (:func:`mflow_sbi.flows.factory.model_for_data`), an unset latent_dim
    taking the manifold dimension of the simulator that made the data."""
    from mflow_sbi.flows.factory import model_for_data as build

    return build(data, config, simulator_manifold_dim(data))


def train_from_data(
    data: EventData | StreamedData, config: RunConfig, out_dir: Path, resume: bool = False, progress: bool = True
) -> Path:
    """Train a model on ``data`` (in memory, or streamed from ROOT files) and write the model directory
    (see :mod:`mflow_sbi.layout`): the model, the training options as used (training.toml, with an unset
    SCANDAL weight resolved), the learning curves and the checkpoint for ``resume``.

    The model's initial weights are drawn after seeding torch with the training seed.
    """
    import torch

    from mflow_sbi.training import plot_learning_curves, train_model
    from mflow_sbi.training.streaming import StreamedData, train_streamed

    torch.manual_seed(config.training.seed)
    streamed = isinstance(data, StreamedData)
    events = data.head if streamed else data
    model = model_for_data(events, config.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    used = config.training.for_data(events.t_xz is not None and not streamed)
    write_toml(out_dir / layout.TRAINING_CONFIG_FILE, {"training": dataclasses.asdict(used)})
    options = {"checkpoint": out_dir / layout.CHECKPOINT_FILE, "resume": resume, "progress": progress}
    if streamed:
        history = train_streamed(model, data, used, **options)
    else:
        history = train_model(model, data.x, data.theta, used, t_xz=data.t_xz, **options)
    model.save(out_dir)
    history.save(out_dir)
    plot_learning_curves(history.records, out_dir / layout.LEARNING_CURVES_FILE)
    skipped = sum(record["skipped"] for record in history.records)
    if skipped:
        log.warning("%d batch step(s) with a non-finite loss or gradient were skipped (per epoch: %s)", skipped,
                    out_dir / layout.HISTORY_CSV)
    log.info("trained %s on %d events", type(model).__name__, data.moments.count if streamed else len(data.x))
    return out_dir
