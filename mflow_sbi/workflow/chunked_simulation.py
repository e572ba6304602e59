"""Large data sets simulated in chunks, one Dask task and one file per chunk, resumable.

A :class:`ChunkPlan` splits n events into chunks of ``chunk_size`` events (the last one smaller). Chunk k
draws its parameters and events from its own generator, seeded by the k-th child of
``numpy.random.SeedSequence(seed).spawn(n_chunks)``, and is written to its own file
(:func:`mflow_sbi.layout.chunk_path`: ``OUT_00000.npz``, ``OUT_00001.npz``, ... or ``.root``). The events of a
chunk therefore depend only on the plan and k: not on the number of workers, the scheduler
(:mod:`mflow_sbi.compute`) or the order in which the chunks finish, and the serial path (``synchronous``)
writes the same events.

Every chunk file is written to a temporary name and renamed, so a file under a chunk's name is complete.
:func:`simulate_to_files` first writes the plan (``OUT_chunks.json``); with ``resume`` it checks that the
plan is the one on disk and simulates only the chunks whose file is missing, so a job killed at any point
(SIGKILL included) and run again with ``resume`` ends with the files an uninterrupted run writes. Without
``resume`` every chunk is simulated afresh, and chunk files of an earlier, longer plan are removed.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mflow_sbi.compute import DEFAULT_SCHEDULER, check_scheduler, dask_runner
from mflow_sbi.errors import InputError
from mflow_sbi.io import read_json, save_json
from mflow_sbi.layout import CHUNK_DIGITS, chunk_path, chunk_plan_path
from mflow_sbi.simulation import simulate_events, simulate_root

log = logging.getLogger(__name__)

SUFFIXES = (".npz", ".root")


@dataclass(frozen=True)
class ChunkPlan:
    """n events of ``simulator`` at ``theta`` (None: drawn from the prior per event) in chunks of
    ``chunk_size``, seeded from ``seed``, with the joint score when ``joint_score``, written to the chunk files
    of ``out`` (a name ending in .npz or .root)."""

    simulator: str
    n: int
    chunk_size: int
    seed: int
    out: str
    theta: tuple[float, ...] | None = None
    joint_score: bool = False
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n < 1 or self.chunk_size < 1:
            raise InputError(f"chunked simulation needs n >= 1 and chunk_size >= 1, got n={self.n}, "
                             f"chunk_size={self.chunk_size}")
        if Path(self.out).suffix not in SUFFIXES:
            raise InputError(f"{self.out}: the output file must end in .npz or .root")
        if self.n_chunks >= 10**CHUNK_DIGITS:
            raise InputError(f"{self.n_chunks} chunks of {self.chunk_size} events: at most {10**CHUNK_DIGITS - 1} "
                             "chunks; use a larger chunk size")

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n / self.chunk_size)

    def size(self, index: int) -> int:
        """Events in chunk ``index``."""
        return min(self.chunk_size, self.n - index * self.chunk_size)

    def seed_sequence(self, index: int) -> np.random.SeedSequence:
        """The seed of chunk ``index``: the index-th of ``SeedSequence(seed).spawn(n_chunks)``."""
        return np.random.SeedSequence(self.seed).spawn(self.n_chunks)[index]

    def path(self, index: int) -> Path:
        return chunk_path(self.out, index)

    @property
    def paths(self) -> list[Path]:
        return [self.path(index) for index in range(self.n_chunks)]

    def record(self) -> dict:
        """The plan as JSON data (what ``resume`` compares; the folder of ``out`` is left out)."""
        values = asdict(self)
        values["out"] = Path(self.out).name
        values["theta"] = None if self.theta is None else list(self.theta)
        return values


def simulate_chunk(plan: ChunkPlan, index: int) -> str:
    """Simulate chunk ``index`` of ``plan`` and write its file (atomically); returns the path. A Dask task."""
    theta = None if plan.theta is None else np.asarray(plan.theta, dtype=np.float64)
    path = plan.path(index)
    seed = plan.seed_sequence(index)
    if path.suffix == ".root":
        simulate_root(plan.simulator, plan.size(index), theta, seed, str(path), joint_score=plan.joint_score,
                      options=plan.options)
    else:
        simulate_events(plan.simulator, plan.size(index), theta, seed, joint_score=plan.joint_score,
                        options=plan.options).save(path)
    return str(path)


def _stale_files(plan: ChunkPlan, beyond_plan: bool) -> list[Path]:
    """Temporary files of interrupted chunk writes and, with ``beyond_plan``, chunk files of this name beyond
    the plan's chunks (left by an earlier, longer plan)."""
    out = Path(plan.out)
    digits = "[0-9]" * CHUNK_DIGITS
    stale = list(out.parent.glob(f".{out.stem}_{digits}{out.suffix}.*"))
    if beyond_plan:
        stale += [path for path in out.parent.glob(f"{out.stem}_{digits}{out.suffix}")
                  if int(path.stem.rsplit("_", 1)[1]) >= plan.n_chunks]
    return stale


def simulate_to_files(plan: ChunkPlan, scheduler: str = DEFAULT_SCHEDULER, resume: bool = False) -> list[Path]:
    """Write the chunk files of ``plan`` with the chunks as Dask tasks on ``scheduler``; returns all chunk
    paths in order. With ``resume``, chunks whose file exists are kept (see the module docstring)."""
    check_scheduler(scheduler)
    plan_file = chunk_plan_path(plan.out)
    if resume and plan_file.is_file():
        recorded = read_json(plan_file)
        if not isinstance(recorded, dict) or recorded.get("plan") != plan.record():
            raise InputError(f"{plan_file}: the chunks on disk were simulated with another plan "
                             f"({recorded.get('plan') if isinstance(recorded, dict) else recorded}), not "
                             f"{plan.record()}; use the same options to resume, or start afresh without resume")
    else:
        resume = False
    Path(plan.out).parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_files(plan, beyond_plan=not resume):
        stale.unlink(missing_ok=True)
    save_json(plan_file, {"plan": plan.record(), "files": [path.name for path in plan.paths]})
    todo = [index for index in range(plan.n_chunks) if not (resume and plan.path(index).is_file())]
    if resume:
        log.info("resuming: %d of %d chunks are complete", plan.n_chunks - len(todo), plan.n_chunks)
    with dask_runner(scheduler) as run:
        run(simulate_chunk, [(plan, index) for index in todo])
    missing = [str(path) for path in plan.paths if not path.is_file()]
    if missing:
        raise InputError(f"chunk files missing after the simulation: {', '.join(missing[:5])}")
    return plan.paths


def chunk_pattern(out: str | os.PathLike) -> str:
    """A glob pattern matching exactly the chunk files of ``out`` (for ``--data``)."""
    path = Path(out)
    return str(path.with_name(f"{path.stem}_{'[0-9]' * CHUNK_DIGITS}{path.suffix}"))
