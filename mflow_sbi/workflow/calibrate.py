"""Calibration as K Dask tasks, one per data set (``mflow-sbi calibrate --scheduler ...``).

Task k calibrates data set k with the per-data-set code of :func:`mflow_sbi.inference.calibration.run_calibration`
(``n_datasets = 1``) and its own seed s_k, the first word of the state of the k-th child of
``numpy.random.SeedSequence(seed).spawn(K)``: it draws theta*_k from the prior, simulates the events,
samples the posterior and returns the SBC ranks and the HPD credibility of theta*_k. Each task loads the
model from its directory (the workers of a cluster share the file system) and rebuilds the simulator by
name, so nothing large travels to the workers. The results are concatenated in the order of k, so they do
not depend on the scheduler, the number of workers or the order in which the tasks finish; the serial path
is the same tasks on the ``synchronous`` scheduler (:mod:`mflow_sbi.compute`). The ``threads`` scheduler is
refused: torch's forward-mode derivatives (``torch.func.jvp``, used for the M-flow's decoder Jacobian) keep
process-wide state, and concurrent tasks in one process corrupted each other's Jacobians in our tests.

With a ``task_dir`` every task writes its result to ``task_dir/dataset_KKKKK.npz`` (the checkpoint of its
single-data-set calibration, with the job's settings and ``identity``); ``resume`` returns the tasks whose
file is there at once, so a killed run continues with the data sets it had not finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mflow_sbi.compute import DEFAULT_SCHEDULER, dask_runner
from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.inference.calibration import CalibrationResult
from mflow_sbi.inference.settings import DEFAULT_RANK_SAMPLES


@dataclass(frozen=True)
class CalibrationJob:
    """What every task needs: the model directory and the device it runs on, the simulator by name with its
    options, prior specs overriding the model's (None: the model's prior), events per data set, rank draws
    and the options of :func:`mflow_sbi.inference.sampler.sample_potential`."""

    model_dir: str
    simulator: str
    n_events: int
    simulator_options: dict = field(default_factory=dict)
    prior: tuple[str, ...] | None = None
    n_rank_samples: int = DEFAULT_RANK_SAMPLES
    device: str = "cpu"
    sampler_options: dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)  # what a resumed run must share (e.g. the model's weights hash)


def dataset_seeds(seed: int, n_datasets: int) -> list[int]:
    """s_k for k < n_datasets: the first 32-bit word of the k-th child of ``SeedSequence(seed).spawn``."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(n_datasets)]


def task_checkpoint(task_dir: str | os.PathLike, k: int) -> Path:
    """The result file of task ``k`` in ``task_dir``."""
    return Path(task_dir) / f"dataset_{k:05d}.npz"


def calibrate_dataset(job: CalibrationJob, seed: int, checkpoint: str | None = None,
                      resume: bool = False) -> CalibrationResult:
    """One data set of ``job`` seeded by ``seed`` (a Dask task), written to / resumed from ``checkpoint``."""
    from mflow_sbi.flows import load_model
    from mflow_sbi.inference.calibration import run_calibration
    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.priors import IndependentPrior, resolve_prior
    from mflow_sbi.simulators import get_simulator

    model = load_model(job.model_dir, job.device)
    simulator = get_simulator(job.simulator, **job.simulator_options)
    override = IndependentPrior.from_specs(list(job.prior)) if job.prior else None
    prior = resolve_prior(model.prior, override, model.parameter_dim)
    return run_calibration(simulator.sample, lambda x: ModelLikelihood(model, x), prior, n_datasets=1,
                           n_events=job.n_events, seed=seed, n_rank_samples=job.n_rank_samples,
                           parameter_names=model.parameter_names, progress=False, checkpoint=checkpoint,
                           resume=resume, identity=job.identity, **job.sampler_options)


def calibrate_on_dask(job: CalibrationJob, n_datasets: int, seed: int = 0, scheduler: str = DEFAULT_SCHEDULER,
                      task_dir: str | os.PathLike | None = None, resume: bool = False) -> CalibrationResult:
    """SBC ranks and HPD credibilities of ``n_datasets`` data sets, one Dask task each, each task's result kept
    in ``task_dir`` and, with ``resume``, read back instead of recomputed (module docstring)."""
    if n_datasets < 1:
        raise InputError(f"need at least one data set, got n_datasets={n_datasets}")
    if scheduler == "threads":
        raise ConfigError("calibration cannot run on the 'threads' scheduler (torch's forward-mode derivatives are "
                          "process-wide state); use 'local', 'synchronous' or a cluster address")
    seeds = dataset_seeds(seed, n_datasets)
    if task_dir is not None:
        Path(task_dir).mkdir(parents=True, exist_ok=True)
    tasks = [(job, s, None if task_dir is None else str(task_checkpoint(task_dir, k)), resume)
             for k, s in enumerate(seeds)]
    with dask_runner(scheduler) as run:
        parts: list[CalibrationResult] = run(calibrate_dataset, tasks)
    first = parts[0]
    return CalibrationResult(np.concatenate([p.theta_true for p in parts]), np.concatenate([p.ranks for p in parts]),
                             np.concatenate([p.credibility for p in parts]), job.n_rank_samples, first.parameter_names,
                             metadata={"n_events": job.n_events, "seed": seed,
                                       "dataset_seeds": "SeedSequence(seed).spawn(n_datasets)", **job.sampler_options})
