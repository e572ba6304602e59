"""Streaming ROOT events for training on files larger than memory.

:class:`EventStream` is a torch ``IterableDataset`` that reads the files chunk by chunk (uproot's
``TTree.iterate`` with ``step_size``), selects events and computes features as
:func:`mflow_sbi.data.root_read.read_root` does, and yields ready-made batches, so at most one chunk of raw
branches and features is in memory. Use it with ``DataLoader(stream, batch_size=None)``. With several
DataLoader workers the files are shared out round-robin (a worker without a file yields nothing).

Scalers: :func:`stream_moments` makes one pass (or stops after ``max_events``) and returns per-column
means and standard deviations, merged across chunks with Chan et al.'s pairwise update

    n = n_a + n_b,   delta = mean_b - mean_a,   mean = mean_a + delta n_b / n,
    M2 = M2_a + M2_b + delta^2 n_a n_b / n,      std = sqrt(M2 / n)   (population std),

which is exact (no loss of precision from summing squares).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from mflow_sbi.data.event_format import EventFormat
from mflow_sbi.data.loading import PathSpec, expand_paths
from mflow_sbi.data.root_read import DEFAULT_STEP_SIZE, ReadStats, close_sources, iterate_root, open_sources
from mflow_sbi.errors import InputError


@dataclass
class Moments:
    """Per-column mean and (population) standard deviation of x and, when present, theta."""

    count: int
    mean_x: np.ndarray
    std_x: np.ndarray
    mean_theta: np.ndarray | None = None
    std_theta: np.ndarray | None = None


class _Running:
    """Running mean and sum of squared deviations, merged chunk by chunk (see the module docstring)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        n_b = len(values)
        mean_b = values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        if self.mean is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta**2 * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n)


def stream_moments(paths: PathSpec, fmt: EventFormat | str | os.PathLike | None = None,
                   step_size: int | str = DEFAULT_STEP_SIZE, max_events: int | None = None,
                   require_theta: bool = False) -> Moments:
    """Means and standard deviations of x (and theta) from one streaming pass over the selected events.

    ``max_events`` stops after (about, rounded up to whole chunks) that many selected events: a sample.
    """
    x_stats, theta_stats = _Running(), _Running()
    for chunk in iterate_root(open_sources(expand_paths(paths), fmt, require_theta), step_size):
        x_stats.update(chunk.x)
        if chunk.theta is not None:
            theta_stats.update(chunk.theta)
        if max_events is not None and x_stats.n >= max_events:
            break
    has_theta = theta_stats.mean is not None
    return Moments(count=x_stats.n, mean_x=x_stats.mean, std_x=x_stats.std,
                   mean_theta=theta_stats.mean if has_theta else None,
                   std_theta=theta_stats.std if has_theta else None)


def _standardize(values: np.ndarray, moments: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    if moments is None:
        return values
    mean, std = moments
    return (values - mean) / np.where(std > 0, std, 1.0)


class EventStream(IterableDataset):
    """Batches ``(x, theta)`` (or ``(x,)`` without parameters) read lazily from ROOT files.

    ``batch_size`` rows per batch (the remainder of a chunk is carried into the next, so only the very
    last batch may be smaller); ``shuffle_seed`` shuffles rows within each chunk (seeded by the seed, the
    pass number and the chunk number, so every pass differs but runs are reproducible); ``x_moments`` /
    ``theta_moments``: optional (mean, std) used to standardize; ``dtype``: tensor dtype; ``skip``: leave out
    the first ``skip`` selected events (e.g. those held out for validation; needs a single worker);
    ``shard`` = (rank, K): yield only the chunks c (numbered over all files, after ``skip``) with c mod K = rank,
    one rank's part of a data-parallel run (every rank reads every chunk and keeps its own).
    """

    def __init__(self, paths: PathSpec, fmt: EventFormat | str | os.PathLike | None = None,
                 batch_size: int = 256, step_size: int | str = DEFAULT_STEP_SIZE, require_theta: bool = True,
                 shuffle_seed: int | None = None, x_moments: tuple[np.ndarray, np.ndarray] | None = None,
                 theta_moments: tuple[np.ndarray, np.ndarray] | None = None, dtype: torch.dtype = torch.float32,
                 skip: int = 0, shard: tuple[int, int] | None = None):
        super().__init__()
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        if skip < 0:
            raise InputError(f"skip must be >= 0, got {skip}")
        self.files = expand_paths(paths)
        # Validate every file up front; keep no open handles, so the dataset pickles into DataLoader workers.
        sources = open_sources(self.files, fmt, require_theta)
        self.n_features = sources[0].fmt.n_features
        close_sources(sources)
        self.fmt, self.require_theta = fmt, require_theta
        self.batch_size, self.step_size = batch_size, step_size
        self.shuffle_seed = shuffle_seed
        self.x_moments, self.theta_moments = x_moments, theta_moments
        self.dtype = dtype
        self.skip = skip
        if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            raise InputError(f"shard must be (rank, K) with 0 <= rank < K, got {shard}")
        self.shard = shard
        self.stats = ReadStats()
        self._passes = 0

    def _my_files(self) -> list:
        info = get_worker_info()
        if info is None:
            return self.files
        if self.skip and info.num_workers > 1:
            raise InputError(f"skip={self.skip} needs a single worker (the first events are in one worker's files)")
        return self.files[info.id::info.num_workers]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        files = self._my_files()
        if not files:
            return
        self._passes += 1
        self.stats = ReadStats()
        sources = open_sources(files, self.fmt, self.require_theta)
        pending: list[np.ndarray] = []
        to_skip = self.skip
        for number, chunk in enumerate(iterate_root(sources, self.step_size, self.stats)):
            columns = [_standardize(chunk.x, self.x_moments)]
            if chunk.theta is not None:
                columns.append(_standardize(chunk.theta, self.theta_moments))
            rows = np.concatenate(columns, axis=1)
            if to_skip:
                dropped = min(to_skip, len(rows))
                rows, to_skip = rows[dropped:], to_skip - dropped
            if self.shard is not None and number % self.shard[1] != self.shard[0]:
                continue
            if self.shuffle_seed is not None:
                rng = np.random.default_rng([self.shuffle_seed, self._passes, number])
                rows = rows[rng.permutation(len(rows))]
            if pending:
                rows = np.concatenate([pending.pop(), rows])
            full = len(rows) - len(rows) % self.batch_size
            table = torch.from_numpy(rows[:full]).to(self.dtype)  # one conversion per chunk; batches are views
            for start in range(0, full, self.batch_size):
                yield self._split(table[start:start + self.batch_size])
            if full < len(rows):
                pending.append(rows[full:])
        if pending:
            yield self._split(torch.from_numpy(pending.pop()).to(self.dtype))

    def _split(self, table: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d = self.n_features
        return (table[:, :d], table[:, d:]) if table.shape[1] > d else (table,)
