"""The train service: a model directory from training data and a run configuration.

Heavy modules (torch, the trainer, matplotlib) are imported on use, so the CLI can import this module
while building its parser.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mflow_sbi import layout
from mflow_sbi.config import RunConfig
from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import InputError
from mflow_sbi.flows.settings import ModelConfig
from mflow_sbi.io import array_fingerprint, read_json, save_json
from mflow_sbi.tomlio import write_toml

if TYPE_CHECKING:
    import numpy as np

    from mflow_sbi.data.event_format import EventFormat
    from mflow_sbi.flows import ConditionalDensityModel
    from mflow_sbi.training.settings import TrainingConfig
    from mflow_sbi.training.streaming import StreamedData

log = logging.getLogger(__name__)


def simulator_manifold_dim(data: EventData) -> int | None:
    """The manifold dimension of the simulator that made ``data``, or None when the data do not name one."""
    if data.simulator is None:
        return None
    from mflow_sbi.simulators import get_simulator

    return get_simulator(data.simulator, **(data.simulator_options or {})).manifold_dim


def model_for_data(data: EventData, config: ModelConfig) -> ConditionalDensityModel:
    """An untrained model for ``data`` (:func:`mflow_sbi.flows.factory.model_for_data`), an unset latent_dim
    taking the manifold dimension of the simulator that made the data."""
    from mflow_sbi.flows.factory import model_for_data as build

    return build(data, config, simulator_manifold_dim(data))


def training_data_record(data: EventData | StreamedData, event_format: EventFormat | None = None) -> dict:
    """What a model was trained on, for ``training_data.json``: the simulator and its options, the number of
    events, the parameter names (and, from the simulator, which of them are nuisance parameters:
    ``nuisance_names``), and a fingerprint. In memory the fingerprint is the SHA-256 of the float64
    x and theta arrays with their shapes (and of the weights w: weighted events also record their sum, effective
    sample size (sum w)^2 / sum w^2 and number of negative weights under ``weights``); streamed from ROOT files
    it is that of the file names, sizes and the number of selected events (the files are not read twice)."""
    from mflow_sbi.training.streaming import StreamedData

    streamed = isinstance(data, StreamedData)
    events = data.head if streamed else data
    if streamed:
        digest = hashlib.sha256()
        for path in data.files:
            digest.update(f"{Path(path).name}:{Path(path).stat().st_size};".encode())
        digest.update(str(data.moments.count).encode())
        fingerprint = digest.hexdigest()
    else:
        fingerprint = array_fingerprint(data.x, data.theta, *(() if data.w is None else (data.w,)))
    record = {
        "simulator": events.simulator,
        "simulator_options": events.simulator_options or {},
        "n_events": int(data.moments.count if streamed else len(data.x)),
        "data_dim": int(events.x.shape[1]),
        "parameter_names": list(events.parameter_names) if events.parameter_names else None,
        "parameter_labels": list(events.parameter_labels) if events.parameter_labels else None,
        "joint_score": events.t_xz is not None and not streamed,
        "fingerprint": fingerprint,
    }
    if events.simulator is not None:
        from mflow_sbi.simulators import get_simulator
        from mflow_sbi.simulators.base import nuisance_names

        record["nuisance_names"] = list(nuisance_names(get_simulator(events.simulator,
                                                                     **(events.simulator_options or {}))))
    if not streamed and data.w is not None:
        from mflow_sbi.training.tensors import effective_sample_size

        record["weights"] = {"sum": float(data.w.sum()), "effective_sample_size": effective_sample_size(data.w),
                             "negative": int((data.w < 0).sum())}
    if streamed:
        record["files"] = [str(path) for path in data.files]
    if event_format is not None:
        record["event_format"] = event_format.name
        record["feature_names"] = event_format.feature_names()
    return record


def read_training_data_record(model_dir: str | Path) -> dict:
    """The ``training_data.json`` of a model directory, or {} for models trained before it was written."""
    path = Path(model_dir) / layout.TRAINING_DATA_RECORD_FILE
    return read_json(path) if path.is_file() else {}


def held_out_events(data: EventData | StreamedData,
                    config: TrainingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, theta, w or None) of the validation events the trainer held out: the streamed head's first
    ``n_validation`` events, or the in-memory split (:func:`mflow_sbi.training.tensors.validation_rows`)."""
    from mflow_sbi.training.streaming import StreamedData
    from mflow_sbi.training.tensors import validation_rows

    if isinstance(data, StreamedData):
        return data.head.x[:data.n_validation], data.head.theta[:data.n_validation], None
    rows = validation_rows(data.x, data.theta, data.t_xz, config, data.w)
    return data.x[rows], data.theta[rows], None if data.w is None else data.w[rows]


def write_ood_reference(model: ConditionalDensityModel, data: EventData | StreamedData, config: TrainingConfig,
                        out_dir: Path) -> Path | None:
    """For a model with a learned manifold, the distances and latent log-densities of the held-out events
    (``ood_reference.npz``, :mod:`mflow_sbi.inference.misspecification`), which ``infer`` compares the observed
    events with; None (nothing written) for other models or without validation events."""
    from mflow_sbi.inference.misspecification import has_learned_manifold, reference_scores

    if not has_learned_manifold(model):
        return None
    x, theta, w = held_out_events(data, config)
    if len(x) == 0:
        log.info("no validation events (validation_fraction = 0): the misspecification check will be unavailable")
        return None
    return reference_scores(model, x, theta, w, seed=config.seed).save(out_dir / layout.OOD_REFERENCE_FILE)


ENSEMBLE_SEED_STRIDE = 1000  # member k trains with seed + ENSEMBLE_SEED_STRIDE * k


def member_config(config: RunConfig, k: int) -> RunConfig:
    """Ensemble member ``k``'s run configuration: one model (``ensemble = 1``) with the training seed
    ``seed + ENSEMBLE_SEED_STRIDE * k`` (its initial weights, validation split and batches)."""
    training = dataclasses.replace(config.training, ensemble=1,
                                   seed=config.training.seed + ENSEMBLE_SEED_STRIDE * k)
    return dataclasses.replace(config, training=training)


def is_trained_model_dir(directory: Path) -> bool:
    """True when ``directory`` holds a finished training run (the model and its learning curves)."""
    return all((directory / name).is_file() for name in (layout.CONFIG_FILE, layout.WEIGHTS_FILE, layout.HISTORY_JSON))


def check_finished_member(member_dir: Path, current: dict, config: RunConfig) -> None:
    """A finished member kept by a resumed ensemble run must have been trained on the same data (``current``:
    their :func:`training_data_record`; compared by fingerprint) with the same ``[training]`` options (its own
    seed included); anything else is an error naming it."""
    from mflow_sbi.tomlio import read_toml

    recorded = read_training_data_record(member_dir).get("fingerprint")
    if recorded != current["fingerprint"]:
        raise InputError(f"{member_dir}: trained on other data than these (fingerprint {recorded}); train the "
                         "ensemble afresh, without resume")
    expected = dataclasses.asdict(config.training.for_data(current["joint_score"]))
    stored = read_toml(member_dir / layout.TRAINING_CONFIG_FILE).get("training", {})
    differing = sorted(key for key in set(expected) | set(stored) if expected.get(key) != stored.get(key))
    if differing:
        raise InputError(f"{member_dir}: trained with other [training] options ({', '.join(differing)} differ); "
                         "resume with the same options, or train afresh")


def train_ensemble(
    data: EventData | StreamedData, config: RunConfig, out_dir: Path, resume: bool = False, progress: bool = True,
    event_format: EventFormat | None = None,
) -> Path:
    """Train the ``[training] ensemble`` = K members one after another (:func:`member_config`, each a complete
    model directory ``out_dir/member_KK``), then write the ensemble's files (:mod:`mflow_sbi.flows.ensemble`).
    With ``resume``, finished members (checked by :func:`check_finished_member`) are kept and an interrupted one
    continues from its checkpoint. Started as K processes, they join one process group for all members (rank 0
    decides which members are finished and alone writes the files)."""
    from mflow_sbi.flows import load_model
    from mflow_sbi.flows.ensemble import ModelEnsemble
    from mflow_sbi.training.distributed import distributed_session

    size = config.training.ensemble
    current = training_data_record(data) if resume else None
    with distributed_session(config.training.device) as context:
        for k in range(size):
            member = member_config(config, k)
            member_dir = out_dir / layout.member_dir_name(k)
            finished = resume and is_trained_model_dir(member_dir)
            if context is not None:
                finished = bool(context.from_main(finished))
            if finished:
                check_finished_member(member_dir, current, member)
                log.info("ensemble member %d of %d is already trained (%s)", k + 1, size, member_dir)
                continue
            log.info("training ensemble member %d of %d (seed %d) into %s", k + 1, size, member.training.seed,
                     member_dir)
            train_from_data(data, member, member_dir, resume=resume, progress=progress, event_format=event_format)
        if context is not None and not context.is_main:
            return out_dir  # rank 0 writes the ensemble's files
    first = out_dir / layout.member_dir_name(0)
    for name in (layout.TRAINING_DATA_RECORD_FILE, layout.EVENT_FORMAT_FILE):
        if (first / name).is_file():
            (out_dir / name).write_bytes((first / name).read_bytes())
    used = config.training.for_data(read_json(first / layout.TRAINING_DATA_RECORD_FILE)["joint_score"])
    write_toml(out_dir / layout.TRAINING_CONFIG_FILE, {"training": dataclasses.asdict(used)})
    ModelEnsemble([load_model(out_dir / layout.member_dir_name(k)) for k in range(size)]).write_config(out_dir)
    log.info("wrote an ensemble of %d models to %s", size, out_dir)
    return out_dir


def train_from_data(
    data: EventData | StreamedData, config: RunConfig, out_dir: Path, resume: bool = False, progress: bool = True,
    event_format: EventFormat | None = None,
) -> Path:
    """Train a model on ``data`` (in memory, or streamed from ROOT files) and write the model directory
    (see :mod:`mflow_sbi.layout`): the model, the training options as used (training.toml, with an unset
    SCANDAL weight resolved), what it was trained on (training_data.json, and event_format.toml when the
    events were read from ROOT files with ``event_format``), the learning curves, the checkpoint for
    ``resume`` and, for models with a learned manifold, the held-out events' scores for the misspecification
    check (ood_reference.npz, :func:`write_ood_reference`).

    The model's initial weights are drawn after seeding torch with the training seed. Started as one of K
    processes (``torchrun``, ``mflow-sbi train --workers K``), the processes train together
    (:mod:`mflow_sbi.training.distributed`) and rank 0 alone writes the model directory. With ``[training]
    ensemble`` > 1 it trains that many models (:func:`train_ensemble`).
    """
    import torch

    if config.training.ensemble > 1:
        return train_ensemble(data, config, out_dir, resume=resume, progress=progress, event_format=event_format)

    from mflow_sbi.training import plot_learning_curves, train_model
    from mflow_sbi.training.distributed import distributed_session
    from mflow_sbi.training.streaming import StreamedData, train_streamed

    with distributed_session(config.training.device) as context:
        torch.manual_seed(config.training.seed)
        streamed = isinstance(data, StreamedData)
        events = data.head if streamed else data
        model = model_for_data(events, config.model)
        used = config.training.for_data(events.t_xz is not None and not streamed)
        if event_format is None and streamed and data.fmt is not None:
            from mflow_sbi.data.event_format import load_format

            event_format = load_format(data.fmt)
        # The folder appears with the first checkpoint: data refused before training leave nothing behind.
        options = {"checkpoint": out_dir / layout.CHECKPOINT_FILE, "resume": resume, "progress": progress,
                   "distributed": context}
        if streamed:
            history = train_streamed(model, data, used, **options)
        else:
            history = train_model(model, data.x, data.theta, used, t_xz=data.t_xz, w=data.w, **options)
        if context is not None and not context.is_main:
            return out_dir  # rank 0 writes the model directory
        write_toml(out_dir / layout.TRAINING_CONFIG_FILE, {"training": dataclasses.asdict(used)})
        save_json(out_dir / layout.TRAINING_DATA_RECORD_FILE, training_data_record(data, event_format))
        if event_format is not None:
            write_toml(out_dir / layout.EVENT_FORMAT_FILE, {"format": event_format.to_dict()})
        model.save(out_dir)
        write_ood_reference(model, data, used, out_dir)
        history.save(out_dir)
        plot_learning_curves(history.records, out_dir / layout.LEARNING_CURVES_FILE)
    skipped = sum(record["skipped"] for record in history.records)
    if skipped:
        log.warning("%d batch step(s) with a non-finite loss or gradient were skipped (per epoch: %s)", skipped,
                    out_dir / layout.HISTORY_CSV)
    log.info("trained %s on %d events", type(model).__name__, data.moments.count if streamed else len(data.x))
    return out_dir
