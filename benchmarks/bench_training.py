"""Training benchmark: throughput of the LHC-sized model, and time to an accurate polynomial-surface posterior.

1. Throughput. An M-flow with the default architecture sized for the LHC data (d = 40, n = 14, p = 2) is
   trained for one epoch of each training step on ``--throughput-events`` synthetic standard-normal events
   (the cost does not depend on the values): phase M (reconstruction, outer flow), phase D (inner flow on
   frozen latents), an alternating epoch (both steps per batch) and a simultaneous epoch (exact manifold NLL
   with the differentiable decoder Jacobian, 14 tangent rows per event). Reported as training events per
   second through the real ``Trainer`` (batching, validation split and checkpoint-free).
2. Time to accuracy. The polynomial-surface M-flow (default architecture, sequential M/D) is trained on
   ``--n-train`` events from the prior; ``--observed`` events at theta = ``--theta`` are fixed. After phase M
   and after every ``--every`` epochs of phase D the posterior of the current model is sampled with emcee
   and compared with the exact posterior (the simulator's likelihood) by the unbiased Gaussian-kernel
   MMD^2 on ``--mmd-samples`` draws of each. Reported: training wall time (posterior evaluations excluded)
   until MMD^2 <= ``--target`` (0.005), and the whole MMD^2 curve.

3. Speed (``--speed``, issue 15): today's code path against the fused kernels, a larger batch and (with
   ``--compile``) ``torch.compile``, interleaved and repeated, with the machine's GEMM floor and the validation
   loss after the same number of epochs; see ``benchmarks/training_speed.py``. Results:
   ``benchmarks/results/training_speed.json`` (this mode runs only the speed study).

Results go to ``benchmarks/results/training.json``. Usage:
``python -m benchmarks.bench_training [--quick] [--n-train 100000] [--threads N]``, and
``python -m benchmarks.bench_training --speed [--quick] [--compile] --threads 1``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.training_speed import speed_study
from mflow_sbi.flows import ManifoldFlow
from mflow_sbi.inference.likelihood import ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import mmd2
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator
from mflow_sbi.training import Trainer, TrainingConfig, build_phases, train_model

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"
SPEED_RESULTS = RESULTS.with_name("training_speed.json")


# The outer flow of the 0.1 default architecture (6 layers; the default is now 4, as in the `run` job), kept so
# that results stay comparable with docs/benchmarks.md.
BENCH_OUTER = {"n_layers": 6, "hidden_features": 64}


def throughput(events: int, batch_size: int, seed: int) -> dict:
    """Training events per second of each step type for the LHC-sized default M-flow."""
    torch.manual_seed(seed)
    model = ManifoldFlow(40, 14, 2, outer=BENCH_OUTER)
    data = (torch.randn(events, 40), torch.randn(events, 2))
    settings = TrainingConfig(batch_size=batch_size, validation_fraction=0.0, patience=5, seed=seed)
    rates = {}
    for algorithm, wanted in (("sequential", "M"), ("sequential", "D"), ("alternating", "A"), ("simultaneous", "S")):
        config = TrainingConfig(algorithm=algorithm, epochs=1, epochs_m=1, epochs_d=1, epochs_pretrain=0,
                                epochs_posttrain=0)
        phase = next(p for p in build_phases(model, config) if p.name == wanted)
        n = events if wanted != "S" else max(batch_size, events // 10)  # the exact-Jacobian step is ~10x slower
        trainer = Trainer(model, tuple(t[:n] for t in data), settings, progress=False)
        start = time.perf_counter()
        trainer.fit([phase])
        rates[f"{algorithm} {wanted}"] = round(n / (time.perf_counter() - start))
    return {"events": events, "batch_size": batch_size, "data_dim": 40, "latent_dim": 14, "parameter_dim": 2,
            "parameters": sum(p.numel() for p in model.parameters()), "events_per_s": rates}


class PosteriorCheck:
    """Callback: after phase M and every ``every`` epochs of phase D, MMD^2 to the exact posterior."""

    def __init__(self, model, x_observed, exact: np.ndarray, prior, args, started: float):
        self.model, self.x_observed, self.exact, self.prior, self.args = model, x_observed, exact, prior, args
        self.started, self.excluded, self.curve = started, 0.0, []
        self.reached: dict | None = None

    def __call__(self, record: dict) -> None:
        last_m = record["phase"] == "M" and record["epoch"] == self.args.epochs_m - 1
        if not (last_m or (record["phase"] == "D" and (record["epoch"] + 1) % self.args.every == 0)):
            return
        training_seconds = time.perf_counter() - self.started - self.excluded
        began = time.perf_counter()
        posterior = sample_posterior(ModelLikelihood(self.model, self.x_observed), self.prior,
                                     n_walkers=self.args.walkers, n_steps=self.args.steps, burn_in=self.args.burn_in,
                                     seed=1, progress=False)
        distance = mmd2(subsample(posterior.samples, self.args.mmd_samples, 2), self.exact)
        self.model.train()
        self.excluded += time.perf_counter() - began
        point = {"phase": record["phase"], "epoch": record["epoch"], "training_s": round(training_seconds, 1),
                 "mmd2": round(distance, 5), "posterior_mean": float(posterior.samples.mean())}
        self.curve.append(point)
        print(point, flush=True)
        if self.reached is None and distance <= self.args.target:
            self.reached = point


def subsample(samples: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return samples[rng.choice(len(samples), size=min(n, len(samples)), replace=False)]


def time_to_accuracy(args) -> dict:
    simulator = get_simulator("polynomial_surface")
    rng = np.random.default_rng(args.seed)
    theta_train = simulator.prior.sample(args.n_train, rng)
    x_train = simulator.sample(theta_train, args.n_train, rng)
    x_observed = simulator.sample(np.array([args.theta]), args.observed, np.random.default_rng(args.seed + 1))
    began = time.perf_counter()
    exact = sample_posterior(SimulatorLikelihood(simulator, x_observed), simulator.prior, n_walkers=args.walkers,
                             n_steps=args.steps, burn_in=args.burn_in, seed=0, progress=False)
    exact_seconds = time.perf_counter() - began
    exact_samples = subsample(exact.samples, args.mmd_samples, 1)
    torch.manual_seed(args.seed)
    model = ManifoldFlow(3, 2, 1, outer=BENCH_OUTER, prior=simulator.prior)
    config = TrainingConfig(algorithm="sequential", epochs_m=args.epochs_m, epochs_d=args.epochs_d, seed=args.seed,
                            patience=args.epochs_d, threads=0)
    check = PosteriorCheck(model, x_observed, exact_samples, simulator.prior, args, time.perf_counter())
    train_model(model, x_train, theta_train, config, progress=False, callback=check)
    return {"n_train": args.n_train, "observed": args.observed, "true_theta": args.theta, "target_mmd2": args.target,
            "epochs_m": args.epochs_m, "epochs_d": args.epochs_d, "mcmc": {"walkers": args.walkers, "steps": args.steps,
                                                                          "burn_in": args.burn_in},
            "exact_posterior_mean": float(exact.samples.mean()), "exact_posterior_s": round(exact_seconds, 1),
            "reached": check.reached, "curve": check.curve}


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "load_average": [round(v, 1) for v in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a shared 2-core machine")
    parser.add_argument("--throughput-events", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-train", type=int, default=100_000)
    parser.add_argument("--observed", type=int, default=20)
    parser.add_argument("--theta", type=float, default=0.3)
    parser.add_argument("--epochs-m", type=int, default=30)
    parser.add_argument("--epochs-d", type=int, default=30)
    parser.add_argument("--every", type=int, default=2, help="posterior check every this many phase-D epochs")
    parser.add_argument("--target", type=float, default=0.005)
    parser.add_argument("--walkers", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--burn-in", type=int, default=500)
    parser.add_argument("--mmd-samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", action="store_true", help="run only the speed study (issue 15)")
    parser.add_argument("--compile", action="store_true", help="speed study: include the torch.compile variants")
    parser.add_argument("--speed-phases", default="MDS", help="speed study: the steps to time (M, D, S)")
    parser.add_argument("--speed-models", default="lhc,polynomial_surface", help="speed study: the models")
    parser.add_argument("--no-validation", action="store_true", help="speed study: skip the validation-loss check")
    parser.add_argument("--out", type=Path, default=None, help="speed study: results file")
    args = parser.parse_args()
    if args.quick:
        args.throughput_events, args.n_train, args.epochs_m, args.epochs_d = 4000, 20000, 10, 12
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.speed:
        results = speed_study(args.quick, args.compile, args.seed, args.speed_phases, args.speed_models,
                              not args.no_validation)
        results["quick"] = args.quick
        results["machine"] = machine()
        out = args.out or SPEED_RESULTS
        save_json(out, results)
        print(f"results written to {out}")
        return
    results = {"throughput": throughput(args.throughput_events, args.batch_size, args.seed)}
    print(results["throughput"], flush=True)
    results["time_to_accuracy"] = time_to_accuracy(args)
    results["quick"] = args.quick
    results["machine"] = machine()
    save_json(RESULTS, results)
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
