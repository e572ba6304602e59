"""The end-to-end workflow: simulate -> train -> infer -> plot, as used by the CLI's `train` and `run`."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mflow_sbi.config import InferenceConfig, ModelConfig, RunConfig
from mflow_sbi.data.datasets import EventData, load_events
from mflow_sbi.errors import IntractableLikelihood
from mflow_sbi.flows import ConditionalDensityModel
from mflow_sbi.simulation import simulate_events
from mflow_sbi.tomlio import write_toml
from mflow_sbi.training import HISTORY_CSV, LEARNING_CURVES_FILE, plot_learning_curves, train_model
from mflow_sbi.training.streaming import StreamedData, train_streamed

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
TRAINING_CONFIG_FILE = "training.toml"


def model_for_data(data: EventData, config: ModelConfig) -> ConditionalDensityModel:
    """An untrained model for ``data`` (:func:`mflow_sbi.flows.factory.model_for_data`), latent_dim defaulting
    to the manifold dimension of the simulator that made the data."""
    from mflow_sbi.flows.factory import model_for_data as build

    manifold_dim = None
    if data.simulator is not None:
        from simulators import get_simulator

        manifold_dim = get_simulator(data.simulator, **(data.simulator_options or {})).manifold_dim
    return build(data, config, manifold_dim)


def train_from_data(
    data: EventData | StreamedData, config: RunConfig, out_dir: Path, resume: bool = False, progress: bool = True
) -> Path:
    """Train a model on ``data`` (in memory, or streamed from ROOT files) and write the model directory.

    Contents: the model (config.toml, weights.pt, versions.json), training.toml (the training options),
    history.json and history.csv (per-epoch losses), learning_curves.png and checkpoint.pt (for ``resume``).
    The model's initial weights are drawn after seeding torch with the training seed.
    """
    torch.manual_seed(config.training.seed)
    streamed = isinstance(data, StreamedData)
    model = model_for_data(data.head if streamed else data, config.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    has_score = (data.head if streamed else data).t_xz is not None and not streamed
    write_toml(out_dir / TRAINING_CONFIG_FILE, {"training": dataclasses.asdict(config.training.for_data(has_score))})
    options = {"checkpoint": out_dir / CHECKPOINT_FILE, "resume": resume, "progress": progress}
    if streamed:
        history = train_streamed(model, data, config.training, **options)
    else:
        history = train_model(model, data.x, data.theta, config.training, t_xz=data.t_xz, **options)
    model.save(out_dir)
    history.save(out_dir)
    plot_learning_curves(history.records, out_dir / LEARNING_CURVES_FILE)
    skipped = sum(record["skipped"] for record in history.records)
    if skipped:
        log.warning("%d batch step(s) with a non-finite loss or gradient were skipped (per epoch: %s)", skipped,
                    out_dir / HISTORY_CSV)
    log.info("trained %s on %d events", type(model).__name__, data.moments.count if streamed else len(data.x))
    return out_dir


@dataclass
class RunOutputs:
    """Where `mflow-sbi run` wrote its results."""

    directory: Path
    training_data: Path
    observed_data: Path
    model: Path
    posterior: Path
    summary: Path
    corner: Path
    reference: Path | None = None


REFERENCE_DRAWS = 2000
MODEL_LABELS = {"af": "AF", "pie": "PIE", "mflow": "M-flow", "emflow": "Me-flow"}


def exact_reference(simulator, x_observed: np.ndarray, inference: InferenceConfig, progress: bool = True):
    """The posterior under the simulator's exact likelihood with the same sampler settings, or None when the
    simulator has no tractable likelihood."""
    from mflow_sbi.inference.likelihood import SimulatorLikelihood
    from mflow_sbi.inference.sampler import sample_posterior

    try:
        simulator.log_likelihood(x_observed[:1], simulator.prior.sample(1, np.random.default_rng(0))[0])
    except IntractableLikelihood:
        return None
    return sample_posterior(SimulatorLikelihood(simulator, x_observed), simulator.prior, n_walkers=inference.walkers,
                            n_steps=inference.steps, burn_in=inference.burn_in, thin=inference.thin,
                            seed=inference.seed, progress=progress, parameter_names=simulator.parameter_names,
                            metadata={"likelihood": f"exact ({simulator.name})"})


def distance_to_reference(samples: np.ndarray, reference: np.ndarray, seed: int = 0) -> float:
    """MMD^2 between ``REFERENCE_DRAWS`` random draws of each sample set (0 for identical distributions)."""
    from mflow_sbi.inference.metrics import mmd2

    rng = np.random.default_rng(seed)

    def draws(values: np.ndarray) -> np.ndarray:
        return values[rng.choice(len(values), size=min(REFERENCE_DRAWS, len(values)), replace=False)]

    return float(mmd2(draws(samples), draws(reference)))


def run_pipeline(
    config: RunConfig, out_dir: Path, progress: bool = True, resume: bool = False
) -> tuple[RunOutputs, object]:
    """Simulate training and observed data, train, sample the posterior and plot it. Returns (paths, posterior).

    With ``resume``, data files already in ``out_dir`` are reused and training continues from its checkpoint.
    When ``config.simulation.reference`` is set and the simulator's likelihood is tractable, the exact-likelihood
    posterior is sampled too (``reference_posterior.npz``), overlaid in the corner plot, and the MMD^2 between
    the two is stored in the posterior's metadata as ``mmd2_to_exact``.
    """
    from mflow_sbi.flows import load_model
    from mflow_sbi.inference.pipeline import run_inference
    from mflow_sbi.plotting import corner_plot
    from simulators import get_simulator

    sim = config.simulation
    simulator = get_simulator(sim.simulator, **sim.options)
    true_theta = np.asarray(sim.true_theta, dtype=np.float64)
    outputs = RunOutputs(
        directory=out_dir, training_data=out_dir / "train.npz", observed_data=out_dir / "observed.npz",
        model=out_dir / "model", posterior=out_dir / "posterior.npz", summary=out_dir / "summary.json",
        corner=out_dir / "corner.png",
    )
    if resume and outputs.training_data.is_file() and outputs.observed_data.is_file():
        log.info("resuming: reusing %s and %s", outputs.training_data, outputs.observed_data)
        training = load_events(outputs.training_data, require_theta=True)
        observed = load_events(outputs.observed_data)
    else:
        log.info("simulating %d training events and %d observed events (%s)", sim.n_train, sim.n_observed,
                 sim.simulator)
        training = simulate_events(sim.simulator, sim.n_train, None, sim.seed, joint_score=sim.joint_score,
                                   options=sim.options)
        observed = simulate_events(sim.simulator, sim.n_observed, true_theta, sim.seed + 1, options=sim.options)
        training.save(outputs.training_data)
        observed.save(outputs.observed_data)
    log.info("training %s", config.model.type)
    train_from_data(training, config, outputs.model, resume=resume, progress=progress)
    model = load_model(outputs.model)
    log.info("sampling the posterior")
    inference = config.inference
    posterior = run_inference(model, observed.x, n_walkers=inference.walkers, n_steps=inference.steps,
                              burn_in=inference.burn_in, thin=inference.thin, seed=inference.seed, progress=progress)
    posterior.metadata["true_theta"] = true_theta.tolist()
    reference = exact_reference(simulator, observed.x, inference, progress) if sim.reference else None
    shown, names = [posterior], None
    if reference is not None:
        outputs.reference = out_dir / "reference_posterior.npz"
        reference.save(outputs.reference)
        posterior.metadata["mmd2_to_exact"] = distance_to_reference(posterior.samples, reference.samples, inference.seed)
        shown, names = [posterior, reference], [MODEL_LABELS.get(config.model.type, config.model.type), "exact likelihood"]
    posterior.save(outputs.posterior)
    posterior.save_summary(outputs.summary)
    corner_plot(shown, outputs.corner, truth=true_theta, labels=list(simulator.parameter_labels), names=names)
    return outputs, posterior
