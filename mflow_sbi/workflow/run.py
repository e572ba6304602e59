"""The run job (``mflow-sbi run``): simulate training and observed data, train, sample the posterior, compare
with the exact-likelihood posterior where there is one, and plot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mflow_sbi import layout
from mflow_sbi.compute import DEFAULT_SCHEDULER
from mflow_sbi.config import RunConfig, config_document
from mflow_sbi.data.datasets import EventData, load_events
from mflow_sbi.data.loading import load_any
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.simulation import SimulationConfig, simulate_events
from mflow_sbi.tomlio import write_toml
from mflow_sbi.workflow.chunked_simulation import ChunkPlan, simulate_to_files
from mflow_sbi.workflow.train import train_from_data

log = logging.getLogger(__name__)

REFERENCE_DRAWS = 2000  # points of each posterior in the MMD^2 to the exact one


@dataclass
class RunOutputs:
    """Where `mflow-sbi run` wrote its results (names: :mod:`mflow_sbi.layout`)."""

    directory: Path
    training_data: Path
    observed_data: Path
    model: Path
    posterior: Path
    summary: Path  # posterior_summary.json; also written as summary.json, its 0.1 name
    corner: Path
    reference: Path | None = None

    @classmethod
    def under(cls, directory: Path) -> RunOutputs:
        return cls(directory=directory, training_data=directory / layout.TRAINING_DATA_FILE,
                   observed_data=directory / layout.OBSERVED_DATA_FILE, model=directory / layout.MODEL_SUBDIR,
                   posterior=directory / layout.POSTERIOR_FILE,
                   summary=layout.summary_path(directory / layout.POSTERIOR_FILE),
                   corner=directory / layout.CORNER_FILE)


def run_data(sim: SimulationConfig, outputs: RunOutputs, resume: bool,
             scheduler: str = DEFAULT_SCHEDULER) -> tuple[EventData, EventData]:
    """(training, observed) events: simulated and saved, or with ``resume`` the files already there. With
    ``chunk_size`` > 0 the training set is simulated in chunk files as Dask tasks on ``scheduler`` (resume then
    simulates only the missing chunks; :mod:`mflow_sbi.workflow.chunked_simulation`)."""
    if sim.chunk_size:
        plan = ChunkPlan(sim.simulator, sim.n_train, sim.chunk_size, sim.seed, str(outputs.training_data),
                         joint_score=sim.joint_score, options=sim.options)
        log.info("simulating %d training events in %d chunks (%s, scheduler %s)", sim.n_train, plan.n_chunks,
                 sim.simulator, scheduler)
        training = load_any(simulate_to_files(plan, scheduler, resume), require_theta=True)
    elif resume and outputs.training_data.is_file():
        log.info("resuming: reusing %s", outputs.training_data)
        training = load_events(outputs.training_data, require_theta=True)
    else:
        log.info("simulating %d training events (%s)", sim.n_train, sim.simulator)
        training = simulate_events(sim.simulator, sim.n_train, None, sim.seed, joint_score=sim.joint_score,
                                   options=sim.options)
        training.save(outputs.training_data)
    if resume and outputs.observed_data.is_file():
        return training, load_events(outputs.observed_data)
    observed = simulate_events(sim.simulator, sim.n_observed, np.asarray(sim.true_theta, dtype=np.float64),
                               sim.seed + 1, options=sim.options)
    observed.save(outputs.observed_data)
    return training, observed


def run_rate(inference, simulator, n_observed: int, model_dir: Path):
    """The rate term of ``[inference] rate``: None, the simulator's ``expected_events``, or (rate = "fit") a
    quadratic fitted to the simulator's rate at 25 prior draws (seeded by ``[inference] seed``) and stored with
    its residuals as ``rate_fit.json`` in the model directory."""
    from mflow_sbi.inference.rates import fit_simulator_rate, rate_term_from_settings

    fit_path = Path(model_dir) / layout.RATE_FIT_FILE
    if inference.rate == "fit":
        fit = fit_simulator_rate(simulator, seed=inference.seed)
        fit.save(fit_path)
        log.info("rate fit: max relative residual %.3g over %d points", fit.residuals["max_relative"],
                 fit.residuals["n_points"])
    return rate_term_from_settings(inference.rate, n_observed, luminosity=inference.luminosity, simulator=simulator,
                                   fit_path=fit_path)


def run_pipeline(
    config: RunConfig, out_dir: Path, progress: bool = True, resume: bool = False
) -> tuple[RunOutputs, Posterior]:
    """Simulate training and observed data, train, sample the posterior and plot it. Returns (paths, posterior).

    With ``resume``, data files already in ``out_dir`` are reused, training continues from its checkpoint and the
    MCMC from its chain checkpoint.
    The posterior's metadata holds ``observed_theta`` (the parameter point of the observed events). When
    ``config.simulation.reference`` is set and the simulator's likelihood is tractable, the exact-likelihood
    posterior is sampled too, overlaid in the corner plot, and the MMD^2 between the two is stored in the
    metadata as ``mmd2_to_exact``. Nuisance parameters of the simulator (``nuisance_names``) are sampled with the
    others (marginalized) and left out of the corner plot. ``[inference] rate`` adds the Poisson term of the
    extended likelihood to both (:func:`run_rate`); the metadata's ``rate`` says which was used.
    """
    from mflow_sbi.flows import load_model
    from mflow_sbi.inference.infer import run_inference
    from mflow_sbi.inference.metrics import subsampled_mmd2
    from mflow_sbi.inference.misspecification import check_model_directory
    from mflow_sbi.plotting import corner_plot
    from mflow_sbi.simulators import get_simulator
    from mflow_sbi.simulators.base import nuisance_names
    from mflow_sbi.workflow.mcmc import posterior_checkpoint
    from mflow_sbi.workflow.reference import exact_reference

    sim = config.simulation
    simulator = get_simulator(sim.simulator, **sim.options)
    labels = tuple(getattr(simulator, "parameter_labels", simulator.parameter_names))
    outputs = RunOutputs.under(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_toml(out_dir / layout.RUN_CONFIG_FILE, config_document(config))
    training, observed = run_data(sim, outputs, resume, config.compute.scheduler)
    log.info("training %s", config.model.type)
    train_from_data(training, config, outputs.model, resume=resume, progress=progress)
    inference = config.inference
    model = load_model(outputs.model, inference.device)
    log.info("sampling the posterior")
    rate = run_rate(inference, simulator, len(observed.x), outputs.model)
    checkpoint = posterior_checkpoint(outputs.posterior, outputs.model, observed.x,
                                      rate=None if rate is None else rate.metadata)
    metadata = {"observed_theta": [float(v) for v in sim.true_theta],
                "nuisance_parameters": list(nuisance_names(simulator))}
    check = check_model_directory(model, outputs.model, observed.x)
    if check is not None:
        metadata["misspecification"] = check.to_dict()
    posterior = run_inference(model, observed.x, n_walkers=inference.walkers, n_steps=inference.steps,
                              burn_in=inference.burn_in, adaptive_burn_in=inference.adaptive_burn_in,
                              thin=inference.thin, seed=inference.seed, progress=progress,
                              labels=labels, metadata=metadata, rate=rate, checkpoint=checkpoint, resume=resume)
    reference = exact_reference(simulator, observed.x, inference, progress, rate=rate) if sim.reference else None
    shown, names = [posterior], None
    if reference is not None:
        outputs.reference = out_dir / layout.REFERENCE_POSTERIOR_FILE
        reference.metadata["nuisance_parameters"] = metadata["nuisance_parameters"]
        reference.save(outputs.reference)
        posterior.metadata["mmd2_to_exact"] = subsampled_mmd2(posterior.samples, reference.samples, REFERENCE_DRAWS,
                                                               inference.seed)
        shown, names = [posterior, reference], [model.display_name, "exact likelihood"]
    posterior.save(outputs.posterior)
    checkpoint.remove()
    if check is not None:
        check.save(layout.ood_scores_path(outputs.posterior))
    posterior.save_summary(outputs.summary)
    posterior.save_summary(out_dir / layout.RUN_SUMMARY_FILE)
    interest = [k for k, name in enumerate(posterior.parameter_names) if name not in metadata["nuisance_parameters"]]
    corner_plot([p.select([p.parameter_names[k] for k in interest]) for p in shown], outputs.corner,
                truth=np.asarray(sim.true_theta)[interest], labels=[labels[k] for k in interest], names=names)
    return outputs, posterior
