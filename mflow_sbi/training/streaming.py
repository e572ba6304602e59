"""Training on ROOT files too large for memory: events are streamed chunk by chunk, never loaded at once.

:func:`open_streamed` makes one streaming pass for the scalers (:func:`~mflow_sbi.data.streaming.stream_moments`:
count, mean and population std per column, merged chunk by chunk) and reads the first events of the
selection into memory (the *head*, which also carries the metadata: simulator, prior, parameter names).
:func:`train_streamed` then

- sets the model's standardizers from the moments, with the sample std that the in-memory path uses,
  ``scale = std_pop * sqrt(N / (N - 1))`` (so one chunk holding all events gives the same scalers);
- validates on a fixed held-out set: the first ``V = round(validation_fraction * N)`` selected events (at
  least one when the fraction is positive, at most ``max_validation``), kept in memory; training streams
  the remaining events (:class:`~mflow_sbi.data.streaming.EventStream` with ``skip = V``). The first events
  are an unbiased hold-out when the events in the files are independent draws (as simulated files are);
- shuffles within each chunk, seeded by the trainer's epoch seed, so the same seed gives the same run and
  a resumed run continues bit for bit. Batches never mix across the whole file: use a ``step_size`` that
  holds many batches.

A phase's ``prepare`` (the frozen outer-flow encoding of phase D) is applied to every streamed batch.
SCANDAL (the joint score t_xz) is not streamed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mflow_sbi.data.datasets import EventData
from mflow_sbi.data.event_format import EventFormat
from mflow_sbi.data.loading import PathSpec, expand_paths
from mflow_sbi.data.root_read import DEFAULT_STEP_SIZE, close_sources, open_sources, source_metadata
from mflow_sbi.data.streaming import EventStream, Moments, stream_moments
from mflow_sbi.devices import resolve_device
from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.threads import torch_threads
from mflow_sbi.training.algorithms import fit_prepared
from mflow_sbi.training.distributed import DistributedContext
from mflow_sbi.training.history import History
from mflow_sbi.training.settings import TrainingConfig
from mflow_sbi.training.trainer import Batch

MAX_VALIDATION = 100_000


def validation_size(count: int, fraction: float, max_validation: int = MAX_VALIDATION) -> int:
    """Held-out events for ``count`` selected events: round(fraction * count), at least 1 when fraction > 0
    and count > 1, at most ``max_validation`` and ``count - 1`` (as the in-memory split, plus the cap)."""
    wanted = max(int(round(count * fraction)), 1 if fraction > 0 and count > 1 else 0)
    return max(min(wanted, max_validation, count - 1), 0)


@dataclass
class StreamedData:
    """ROOT training data to be streamed: the files and how to read them, the moments of all selected
    events, and the head (the first ``n_validation`` events, at least one, with the metadata)."""

    files: list[Path]
    fmt: EventFormat | str | os.PathLike | None
    step_size: int | str
    moments: Moments
    head: EventData
    n_validation: int

    def stream(self, batch_size: int, seed: int, shard: tuple[int, int] | None = None) -> EventStream:
        """The training events after the held-out head, in float32 batches shuffled within chunks by ``seed``;
        ``shard`` = (rank, K): only the chunks of that rank (see :class:`~mflow_sbi.data.streaming.EventStream`)."""
        return EventStream(self.files, self.fmt, batch_size=batch_size, step_size=self.step_size,
                           require_theta=True, shuffle_seed=seed, skip=self.n_validation, shard=shard)


def open_streamed(paths: PathSpec, fmt: EventFormat | str | os.PathLike | None = None,
                  step_size: int | str | None = None, validation_fraction: float = 0.1,
                  max_validation: int = MAX_VALIDATION) -> StreamedData:
    """Moments from one pass over all selected events, then the head; see the module docstring.

    ``step_size``: entries per chunk or a size such as ``"100 MB"`` (default ``DEFAULT_STEP_SIZE``).
    """
    files = expand_paths(paths)
    step_size = DEFAULT_STEP_SIZE if step_size is None else step_size
    moments = stream_moments(files, fmt, step_size, require_theta=True)
    if moments.count < 2:
        raise InputError(f"need at least 2 training events, got {moments.count} from {', '.join(map(str, files))}")
    n_validation = validation_size(moments.count, validation_fraction, max_validation)
    sources = open_sources(files, fmt, require_theta=True)
    if sources[0].fmt.weight is not None:
        close_sources(sources)
        raise ConfigError(f"event weights (format key 'weight' = {sources[0].fmt.weight!r}) are not streamed; "
                          "train in memory (training.stream = false)")
    metadata = source_metadata(sources)
    close_sources(sources)
    batches = iter(EventStream(files, fmt, batch_size=max(n_validation, 1), step_size=step_size,
                               require_theta=True, dtype=torch.float64))
    x, theta = next(batches)
    batches.close()
    head = EventData(x=x.numpy(), theta=theta.numpy(), **metadata)
    return StreamedData(files=files, fmt=fmt, step_size=step_size, moments=moments, head=head,
                        n_validation=n_validation)


def set_scalers(model, moments: Moments) -> None:
    """The model's standardizers from streamed moments (population std turned into the sample std)."""
    correction = np.sqrt(moments.count / (moments.count - 1))
    model.x_scaler.set(moments.mean_x, moments.std_x * correction)
    model.theta_scaler.set(moments.mean_theta, moments.std_theta * correction)


class StreamSource:
    """A :class:`~mflow_sbi.training.trainer.BatchSource` over ``make_stream(seed)``, each raw batch passed
    through ``transform`` (standardization, then any phase's ``prepare``) without gradients."""

    def __init__(self, make_stream: Callable[[int], EventStream], transform: Callable[[Batch], Batch]):
        self.make_stream = make_stream
        self.transform = transform

    def batches(self, seed: int) -> Iterator[Batch]:
        for raw in self.make_stream(seed):
            with torch.no_grad():
                batch = self.transform(raw)
            yield batch

    def mapped(self, fn: Callable[[Batch], Batch]) -> StreamSource:
        transform = self.transform
        return StreamSource(self.make_stream, lambda batch: fn(transform(batch)))


def _standardized(model) -> Callable[[Batch], Batch]:
    def transform(batch: Batch) -> Batch:
        x, theta = batch
        to = {"device": model.device, "dtype": model.float_dtype}
        return model.x_scaler(x.to(**to)), model.theta_scaler(theta.to(**to))

    return transform


def train_streamed(
    model,
    data: StreamedData,
    config: TrainingConfig,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    distributed: DistributedContext | None = None,
) -> History:
    """Set the model's scalers from ``data.moments`` and train it on the streamed events (see the module
    docstring); the same arguments and result as :func:`~mflow_sbi.training.algorithms.train_model`. In a
    data-parallel run (``distributed``) each rank streams its own chunks in batches of its share of
    ``batch_size`` (:mod:`mflow_sbi.training.distributed`)."""
    if config.score_weight > 0:
        raise ConfigError("SCANDAL (training.scandal > 0) is not available when streaming; train in memory")
    if data.head.x.shape[1] != model.data_dim or data.head.theta.shape[1] != model.parameter_dim:
        raise InputError(f"the model takes x of {model.data_dim} and theta of {model.parameter_dim} columns, but "
                         f"the streamed data have {data.head.x.shape[1]} and {data.head.theta.shape[1]}")
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        model.to(resolve_device(config.device) if distributed is None else distributed.device)
        set_scalers(model, data.moments)
        transform = _standardized(model)
        head = (torch.as_tensor(data.head.x), torch.as_tensor(data.head.theta))
        with torch.no_grad():
            validation = transform(tuple(t[:data.n_validation] for t in head))
        if distributed is None:
            batch_size, shard = config.batch_size, None
        else:
            batch_size, shard = distributed.local_batch_size(config.batch_size), (distributed.rank, distributed.world_size)
        source = StreamSource(lambda seed: data.stream(batch_size, seed, shard), transform)
        history = fit_prepared(model, source, config, validation=validation, checkpoint=checkpoint, resume=resume,
                               progress=progress, callback=callback, distributed=distributed)
    model.eval()
    return history
