"""Hard posteriors, density half: the AF (coupling splines or MAF) against sbi's default NLE on SLCP, sampler fixed.

Task: ``slcp`` (Papamakarios et al. 2019; sbibm "slcp"): 5 parameters, prior U(-3, 3)^5, x = 4 draws of a
2-D Gaussian (8 numbers), an exact likelihood and a posterior with four symmetric modes of 25% each (signs
of theta_3, theta_4; ``SLCP.mode_of``). One run, on the same simulations and observations for every model:

1. ``--n-train`` (10^4) simulations (theta from the prior, seed ``--seed``) train every learned likelihood;
   ``--n-test`` (2,000) more (seed + 1) give the held-out log-likelihood mean_i log q(x_i|theta_i) against
   the exact mean_i log p(x_i|theta_i).
2. Models: ``AF coupling`` and ``AF MAF`` (``AmbientFlow(ambient_transform=...)``, its default stacks, the
   CLI's training defaults: ``TrainingConfig()``, for the AF up to ``AMBIENT_EPOCHS`` (300) maximum-likelihood
   epochs, early stopping after 6 epochs without improvement, best weights restored; ``--epochs`` sets the
   cap; ``--ensemble K``: K such AFs per family, training seeds seed + 1000 k, combined as
   ``mflow_sbi.flows.ModelEnsemble``, what ``mflow-sbi train --ensemble K`` builds: the mean of their
   log-likelihoods; its held-out figure is the mean of the members'); the old defaults
   (``OLD_DEFAULT_FAMILY`` = coupling, ``--old-epochs`` = 30 epochs, the same early stopping; 0: skip); and
   ``sbi NLE`` (``sbi.inference.NLE`` with its default MAF, z-scoring and training:
   batch 200, learning rate 5e-4, 10% validation, stop after 20 epochs without improvement).
3. ``--observations`` (5) observations: theta_j from the prior (seed 100 + j), x_j one simulation there.
   Reference posterior: the exact likelihood (``SimulatorLikelihood``). Every posterior, reference included,
   comes from ``sample_posterior`` with the settings ``SAMPLER`` passed explicitly (emcee, DE moves,
   ``init="modes"``, 64 walkers x 1500 steps, a fixed 300-step burn-in, seed j; ``--moves`` replaces the moves, e.g.
   ``independence``, the project's default since the mode-mass study), so the sampler is the same for every row
   and does not follow later changes of the sampler's defaults; sbi's estimator enters through ``SbiDensity``,
   an adapter with the model interface that ``ModelLikelihood`` evaluates.
4. Per observation and model: C2ST against the reference (``metrics.c2st``, the sbibm recipe, ``--c2st-samples``
   random draws of each) and the fraction of samples per mode, against the reference's and the exact 25%.

Targets (issue 18): the median C2ST of the default AF (``ambient_transform = "auto"`` at d = 8, default
training) at most sbi's, and
every observation's mode masses within 5 points of the reference. Results: ``benchmarks/results/slcp.json``.
Usage: ``python -m benchmarks.bench_slcp [--n-train 10000] [--observations 5] [--epochs N] [--old-epochs 30]
[--no-sbi] [--quick]``; ``--table RESULTS.json`` prints the docs/benchmarks.md table (``--rescore``: recomputed for the
current AF default). torch runs single-threaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_posterior import machine
from mflow_sbi.flows import AmbientFlow, ModelEnsemble
from mflow_sbi.flows.ambient import resolve_ambient_flow
from mflow_sbi.inference.likelihood import ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import c2st
from mflow_sbi.inference.sampler import MOVES, sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator
from mflow_sbi.training.algorithms import TrainingConfig, train_model
from mflow_sbi.training.settings import DEFAULT_EPOCHS
from mflow_sbi.workflow.train import ENSEMBLE_SEED_STRIDE

RESULTS = Path(__file__).resolve().parent / "results" / "slcp.json"
MASS_POINTS = 5.0
EXACT_MASSES = np.full(4, 0.25)
OLD_DEFAULT_FAMILY = "coupling"  # what ambient_transform = "auto" gave at every dimension before the per-dimension rule
SAMPLER = {"n_walkers": 64, "n_steps": 1500, "burn_in": 300, "adaptive_burn_in": False, "init": "modes", "moves": "de"}


class SbiDensity(torch.nn.Module):
    """sbi's trained density estimator behind the model interface ``ModelLikelihood`` uses:
    log_prob(x (N, d), theta (N, p)) -> (N,), no cached likelihood."""

    supports_cached_likelihood = False

    def __init__(self, estimator, data_dim: int, parameter_dim: int) -> None:
        super().__init__()
        self.estimator, self.data_dim, self.parameter_dim = estimator, data_dim, parameter_dim

    def log_prob(self, x: torch.Tensor, theta: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        return self.estimator.log_prob(torch.as_tensor(x, dtype=torch.float32)[None],
                                       torch.as_tensor(theta, dtype=torch.float32))[0]


def simulate(simulator, args) -> dict:
    rng = np.random.default_rng(args.seed)
    theta = simulator.prior.sample(args.n_train, rng)
    test_rng = np.random.default_rng(args.seed + 1)
    theta_test = simulator.prior.sample(args.n_test, test_rng)
    observations = []
    for j in range(args.observations):
        obs_rng = np.random.default_rng(100 + j)
        truth = simulator.prior.sample(1, obs_rng)[0]
        observations.append((truth, simulator.sample(truth, 1, obs_rng)))
    return {"theta": theta, "x": simulator.sample(theta, args.n_train, rng), "theta_test": theta_test,
            "x_test": simulator.sample(theta_test, args.n_test, test_rng), "observations": observations}


def held_out(model, data: dict) -> float:
    """Mean log q(x|theta) over the test simulations (float64 sum of float32 terms)."""
    with torch.no_grad():
        values = model.log_prob(torch.as_tensor(data["x_test"], dtype=torch.float32),
                                torch.as_tensor(data["theta_test"], dtype=torch.float32))
    return float(values.double().mean())


def train_af(family: str, epochs: int | None, simulator, data: dict, seed: int) -> tuple[AmbientFlow, dict]:
    """An AF of ``family`` trained with the CLI's training defaults, ``epochs`` (None: the default cap) set."""
    torch.manual_seed(seed)
    model = AmbientFlow(simulator.data_dim, 5, prior=simulator.prior, ambient_transform=family)
    config = TrainingConfig(algorithm="ml", epochs=epochs, seed=seed)
    began = time.perf_counter()
    history = train_model(model, data["x"], data["theta"], config, progress=False)
    record = {"family": model.ambient_transform, "epochs_cap": config.epochs_for(ambient=True),
              "flow": vars(model.flow_config),
              "parameters": sum(p.numel() for p in model.parameters()),
              "training_wall_s": round(time.perf_counter() - began, 1), "epochs_run": len(history.records)}
    return model, record


def train_af_members(family: str, epochs: int | None, simulator, data: dict, args) -> tuple[torch.nn.Module, dict]:
    """One AF, or with ``--ensemble`` K > 1 a ``ModelEnsemble`` of K (seeds seed + 1000 k; the first member's
    record, with the summed training time and each member's epochs)."""
    trained = [train_af(family, epochs, simulator, data, args.seed + ENSEMBLE_SEED_STRIDE * k) for k in range(args.ensemble)]
    if args.ensemble == 1:
        return trained[0]
    record = trained[0][1] | {"ensemble": args.ensemble, "epochs_run": [r["epochs_run"] for _, r in trained],
                              "training_wall_s": round(sum(r["training_wall_s"] for _, r in trained), 1)}
    return ModelEnsemble([model for model, _ in trained]), record


def train_sbi(data: dict, simulator, args) -> tuple[SbiDensity | None, dict]:
    try:
        import sbi
        from sbi.inference import NLE
        from sbi.utils import BoxUniform
        from sbi.utils.tracking import TensorBoardTracker
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        return None, {"skipped": f"sbi is not installed ({error}); install the 'bench' extra: pip install -e .[bench]"}
    torch.manual_seed(args.seed)
    logs = tempfile.TemporaryDirectory()  # sbi's TensorBoard logs, instead of ./sbi-logs
    inference = NLE(prior=BoxUniform(low=-3 * torch.ones(5), high=3 * torch.ones(5)),
                    tracker=TensorBoardTracker(SummaryWriter(log_dir=logs.name)), show_progress_bars=False)
    began = time.perf_counter()
    estimator = inference.append_simulations(torch.as_tensor(data["theta"], dtype=torch.float32),
                                             torch.as_tensor(data["x"], dtype=torch.float32)).train()
    record = {"version": sbi.__version__, "density_estimator": "maf (sbi default)",
              "training_wall_s": round(time.perf_counter() - began, 1), "epochs_run": int(inference.epoch),
              "parameters": sum(p.numel() for p in estimator.parameters())}
    logs.cleanup()
    return SbiDensity(estimator.eval(), simulator.data_dim, 5), record


def mode_masses(simulator, samples: np.ndarray) -> np.ndarray:
    return np.bincount(simulator.mode_of(samples), minlength=4) / len(samples)


def mass_error(masses, truth) -> float:
    """Largest difference of the mode masses, in percentage points."""
    return round(float(100 * np.abs(np.asarray(masses) - np.asarray(truth)).max()), 2)


def posterior(likelihood, simulator, j: int, args) -> tuple[np.ndarray, dict]:
    began = time.perf_counter()
    result = sample_posterior(likelihood, simulator.prior, seed=j, progress=False, **sampler_settings(args))
    masses = mode_masses(simulator, result.samples)
    record = {"masses": masses.round(4).tolist(), "sampling_wall_s": round(time.perf_counter() - began, 1),
              "modes_found": result.diagnostics["modes"]["n_modes"], "warnings": result.diagnostics["warnings"]}
    rng = np.random.default_rng(1000 + j)
    return result.samples[rng.choice(result.n_samples, args.c2st_samples, replace=False)], record


def sampler_settings(args) -> dict:
    return SAMPLER | ({"moves": args.moves} if args.moves else {})


def _median(values) -> float:
    return round(float(np.median(values)), 4)


def summarize(name: str, runs: list[dict]) -> dict:
    c2sts = [r["c2st"] for r in runs if "c2st" in r]
    errors = [r["mass_error_vs_reference_points"] for r in runs if "mass_error_vs_reference_points" in r]
    exact = [r["mass_error_vs_exact_points"] for r in runs]
    summary = {"mass_error_vs_exact_points": {"median": _median(exact), "max": round(max(exact), 2)}}
    if c2sts:
        summary.update(c2st={"median": _median(c2sts), "max": round(max(c2sts), 4)},
                       mass_error_vs_reference_points={"median": _median(errors), "max": round(max(errors), 2)})
    return summary


def targets(results: dict, default_family: str) -> dict:
    summaries = results["summary"]
    default = summaries.get(f"af_{default_family}")
    checks = {}
    if default is not None:
        checks["af_default_masses_within_5_points_of_reference"] = (
            default["mass_error_vs_reference_points"]["max"] <= MASS_POINTS)
        if "sbi_nle" in summaries:
            checks["af_default_c2st_le_sbi"] = default["c2st"]["median"] <= summaries["sbi_nle"]["c2st"]["median"]
    return checks


def af_label(name: str, record: dict, default_family: str) -> str:
    """"AF FAMILY, up to N epochs" with "(default)" for the default family's row at the default budget and
    "(old default)" for the row of the old defaults."""
    tag = " (old default)" if name.endswith("_old") else " (default)" if name == f"af_{default_family}" else ""
    members = f"ensemble of {record['ensemble']} " if record.get("ensemble", 1) > 1 else ""
    return f"{members}AF {record['family']}, up to {record['epochs_cap']} epochs{tag}"


def rescore(results: dict, default_family: str) -> dict:
    """Summary and targets of ``results``' runs with ``default_family`` as the AF default (labels follow)."""
    results["summary"] = {name: summarize(name, entries) for name, entries in results["runs"].items()}
    results["targets"] = targets(results, default_family)
    results["setting"].update(af_default_family=default_family, observations_completed=len(results["runs"]["reference"]))
    for name, record in results["models"].items():
        if "epochs_cap" in record:
            record["label"] = af_label(name, record, default_family)
    return results


def markdown(results: dict) -> str:
    """The docs/benchmarks.md table of one run."""
    lines = ["| likelihood (emcee, init = modes) | training: epochs / wall [s] | held-out log-likelihood "
             "| C2ST to reference: median (max) | mode masses: max error vs reference, median (max) [points] "
             "| vs exact 25% [points] |", "|---|---|---|---|---|---|"]
    exact_ll = results["held_out_log_likelihood"]["exact"]
    for name, summary in results["summary"].items():
        model = results["models"].get(name, {})
        training = f"{model['epochs_run']} / {model['training_wall_s']}" if "epochs_run" in model else "-"
        ll = results["held_out_log_likelihood"].get(name, exact_ll)
        c2 = summary.get("c2st")
        cell = f"{c2['median']} ({c2['max']})" if c2 else "-"
        ref = summary.get("mass_error_vs_reference_points")
        ref_cell = f"{ref['median']} ({ref['max']})" if ref else "-"
        ex = summary["mass_error_vs_exact_points"]
        lines.append(f"| {model.get('label', name)} | {training} | {ll:.3f} | {cell} | {ref_cell} "
                     f"| {ex['median']} ({ex['max']}) |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="AF maximum-likelihood epoch cap (default: TrainingConfig's, "
                                                   "for the AF up to AMBIENT_EPOCHS with early stopping)")
    parser.add_argument("--c2st-samples", type=int, default=2000, help="draws per set for each C2ST")
    parser.add_argument("--families", nargs="+", default=["coupling", "maf"], choices=["coupling", "maf"])
    parser.add_argument("--old-epochs", type=int, default=DEFAULT_EPOCHS,
                        help="also train the old default AF (coupling) with this epoch cap (early stopping as usual; 0: skip)")
    parser.add_argument("--no-sbi", action="store_true")
    parser.add_argument("--ensemble", type=int, default=1, help="AFs per family, averaged in log-likelihood")
    parser.add_argument("--moves", choices=MOVES, help=f"emcee moves of every posterior (default {SAMPLER['moves']})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--table", type=Path, help="only print the markdown table of this results file")
    parser.add_argument("--rescore", action="store_true",
                        help="with --table: recompute its summary and targets for the current AF default and save it")
    args = parser.parse_args(argv)
    if args.ensemble < 1:
        parser.error(f"--ensemble must be at least 1, got {args.ensemble}")
    if args.quick:
        args.n_train, args.n_test, args.observations, args.epochs, args.c2st_samples = 1000, 200, 2, 4, 300
        args.old_epochs = min(args.old_epochs, 2)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.table is not None:
        results = json.loads(args.table.read_text())
        if args.rescore:
            save_json(args.table, rescore(results, resolve_ambient_flow("auto", None)[0]))
        print(markdown(results))
        print("targets:", results["targets"])
        return results
    torch.set_num_threads(1)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
    simulator = get_simulator("slcp")
    data = simulate(simulator, args)
    default_family = resolve_ambient_flow("auto", None)[0]
    results: dict = {"setting": {"simulator": "slcp", "n_train": args.n_train, "n_test": args.n_test,
                                 "observations": args.observations, "epochs": args.epochs, "seed": args.seed,
                                 "c2st_samples": args.c2st_samples, "quick": args.quick,
                                 "af_default_family": default_family,
                                 "old_default": {"family": OLD_DEFAULT_FAMILY, "epochs": args.old_epochs},
                                 "sampler": sampler_settings(args), "ensemble": args.ensemble},
                     "models": {}, "held_out_log_likelihood": {}}
    exact_ll = simulator.log_likelihood(data["x_test"], data["theta_test"]).mean()
    results["held_out_log_likelihood"]["exact"] = round(float(exact_ll), 4)
    likelihoods = {}
    variants = [(family, args.epochs, f"af_{family}") for family in args.families]
    if args.old_epochs > 0:
        variants.append((OLD_DEFAULT_FAMILY, args.old_epochs, f"af_{OLD_DEFAULT_FAMILY}_old"))
    for family, epochs, name in variants:
        model, record = train_af_members(family, epochs, simulator, data, args)
        record["label"] = af_label(name, record, default_family)
        results["models"][name] = record
        results["held_out_log_likelihood"][name] = round(held_out(model, data), 4)
        likelihoods[name] = lambda x, m=model: ModelLikelihood(m, x)
        print(name, record, results["held_out_log_likelihood"][name], flush=True)
    if not args.no_sbi:
        density, record = train_sbi(data, simulator, args)
        record["label"] = f"sbi {record.get('version', '')} NLE (default MAF)"
        results["models"]["sbi_nle"] = record
        if density is not None:
            results["held_out_log_likelihood"]["sbi_nle"] = round(held_out(density, data), 4)
            likelihoods["sbi_nle"] = lambda x, m=density: ModelLikelihood(m, x)
        print("sbi_nle", record, results["held_out_log_likelihood"].get("sbi_nle"), flush=True)
    results["models"]["reference"] = {"label": "reference (exact likelihood)"}
    runs: dict[str, list[dict]] = {"reference": [], **{name: [] for name in likelihoods}}
    for j, (truth, x_observed) in enumerate(data["observations"]):
        reference, record = posterior(SimulatorLikelihood(simulator, x_observed), simulator, j, args)
        record.update(observation=j, true_theta=truth.round(4).tolist())
        record["mass_error_vs_exact_points"] = mass_error(record["masses"], EXACT_MASSES)
        runs["reference"].append(record)
        print(f"observation {j} reference: {record}", flush=True)
        reference_masses = np.array(record["masses"])
        for name, factory in likelihoods.items():
            samples, run = posterior(factory(x_observed), simulator, j, args)
            run.update(observation=j, c2st=round(c2st(reference, samples, seed=j), 4),
                       mass_error_vs_reference_points=mass_error(run["masses"], reference_masses),
                       mass_error_vs_exact_points=mass_error(run["masses"], EXACT_MASSES))
            runs[name].append(run)
            print(f"observation {j} {name}: {run}", flush=True)
        results["runs"] = runs  # saved after every observation, so that a stopped run keeps what it measured
        results["machine"] = machine()
        save_json(args.out, rescore(results, default_family))
    print(markdown(results))
    print("targets:", results["targets"])
    return results


if __name__ == "__main__":
    main()
