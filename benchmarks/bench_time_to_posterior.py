"""Time to 5,000 effective posterior samples on the polynomial surface: emcee's moves against sbi's NLE, side by side.

Setting (as ``bench_posterior``): prior U(-1, 1), ``--n-train`` training events from the prior (seed
``--seed``), 20 observed events at theta = 0.3 (seed + 1). One M-flow (sequential M/D, ``--epochs-m`` +
``--epochs-d`` epochs, or ``--poly-model DIR``) and sbi's default NLE (``benchmarks.sbi_nle.train_nle``) are
trained on the same events. Then, interleaved, ``--repeats`` rounds of:

- every emcee variant of ``VARIANTS`` (``sample_posterior`` on the cached ``ModelLikelihood``, mode finding
  included): a pilot run before the first round (the variant's moves, burn-in 50, ``PILOT_STEPS`` kept
  steps) gives tau; the timed run has steps = burn_in + ceil(1.1 x 5000 x tau / walkers) and records its wall and CPU time
  (``time.process_time``), its own ESS and tau, the burn-in it used (the adaptive burn-in of the default
  ends early and keeps steps - burn_in steps), and the likelihood rows it evaluated (parameter points
  inside the prior x 20 events; mode finding and burn-in included);
- sbi drawing 5,000 samples with its default MCMC (slice sampling, 20 chains, 200 warm-up steps), wall and
  CPU time and the ESS of its chains (``bench_posterior.chain_ess``).

The floor of each variant is ESS x tau x N x FLOPs-per-row / GEMM rate (``benchmarks.floor``; the GEMM rate
at the inner flow's layer size and 1,280 rows, measured before and after the rounds, median): the cost of
the rows a chain needs for 5,000 ESS at the variant's own tau, at the machine's matrix-multiply rate.
Accuracy: mean and std of every variant's samples and MMD^2 to the exact posterior (simulator likelihood,
``sample_posterior`` with the old "de" moves, 64 x 1,500 steps). Targets (issue 15): time to 5,000 ESS
>= 5x faster than sbi's 5,000 samples, and within 3x of the floor; checked for the fastest variant and for
the default settings (``DEFAULT_VARIANT``). Results:
``benchmarks/results/time_to_posterior.json``. Usage: ``python -m benchmarks.bench_time_to_posterior
[--n-train 5000] [--epochs-m 3] [--epochs-d 5] [--repeats 2] [--poly-model DIR] [--no-sbi]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_posterior import chain_ess, machine, summary, train_mflow
from benchmarks.bench_training import subsample
from benchmarks.floor import flops_per_row, gemm_gflops, hidden_features
from benchmarks.sbi_nle import box_prior, train_nle
from mflow_sbi.inference.likelihood import ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import mmd2
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator

RESULTS = Path(__file__).resolve().parent / "results" / "time_to_posterior.json"
ESS_TARGET = 5000
N_EVENTS = 20
THETA = 0.3
PILOT_BURN_IN = 50
PILOT_STEPS = 200
SPEEDUP_TARGET = 5.0
FLOOR_TARGET = 3.0
DEFAULT_VARIANT = "new default (independence moves, adaptive burn-in of at most 300)"
VARIANTS = {
    "old default (de moves, burn-in 300)": {"moves": "de", "adaptive_burn_in": False},
    "independence moves, burn-in 300": {"moves": "independence", "adaptive_burn_in": False},
    "independence moves, burn-in 50": {"moves": "independence", "burn_in": 50, "adaptive_burn_in": False},
    DEFAULT_VARIANT: {},
}


class CountingLikelihood:
    """A summed log-likelihood that counts the parameter points it evaluates (rows = points x events)."""

    def __init__(self, likelihood: ModelLikelihood) -> None:
        self.likelihood, self.parameter_dim, self.points = likelihood, likelihood.parameter_dim, 0

    @property
    def metadata(self) -> dict:
        return self.likelihood.metadata

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        self.points += len(theta)
        return self.likelihood(theta)


def emcee_run(model, x_observed, prior, options: dict, seed: int, steps: int | None = None) -> tuple[dict, np.ndarray]:
    counted = CountingLikelihood(ModelLikelihood(model, x_observed))
    settings = dict(options)
    if steps is not None:
        settings["n_steps"] = steps
    began, cpu = time.perf_counter(), time.process_time()
    posterior = sample_posterior(counted, prior, seed=seed, progress=False, **settings)
    record = {"wall_s": time.perf_counter() - began, "cpu_s": time.process_time() - cpu,
              "steps": posterior.metadata["sampler"]["n_steps"], "burn_in": posterior.metadata["sampler"]["burn_in"],
              "burn_in_used": posterior.metadata["sampler"]["burn_in_used"],
              "ess": float(posterior.diagnostics["min_effective_sample_size"]),
              "tau": float(max(posterior.diagnostics["autocorrelation_time"])),
              "acceptance": float(posterior.diagnostics["acceptance_fraction"]),
              "rows": counted.points * len(x_observed),
              "mode_finding_rows": posterior.diagnostics.get("modes", {}).get("evaluations", 0) * len(x_observed),
              **summary(posterior.samples)}
    return record, posterior.samples


def pilot_tau(model, x_observed, prior, options: dict, seed: int) -> float:
    """tau of a short run with the variant's moves (burn-in ``PILOT_BURN_IN``, ``PILOT_STEPS`` kept steps)."""
    settings = {**options, "burn_in": PILOT_BURN_IN}
    return emcee_run(model, x_observed, prior, settings, seed, PILOT_BURN_IN + PILOT_STEPS)[0]["tau"]


def timed_variant(model, x_observed, prior, options: dict, tau: float, seed: int) -> tuple[dict, np.ndarray]:
    """The run sized for ESS_TARGET from the pilot's ``tau`` (module docstring)."""
    burn_in = options.get("burn_in", 300)
    steps = burn_in + int(np.ceil(1.1 * ESS_TARGET * tau / options.get("n_walkers", 64)))
    record, samples = emcee_run(model, x_observed, prior, options, seed, steps)
    record.update(pilot_tau=tau, reached=record["ess"] >= ESS_TARGET)
    return record, samples


def sbi_run(posterior, x_observed) -> dict:
    began, cpu = time.perf_counter(), time.process_time()
    samples = posterior.sample((ESS_TARGET,), x=torch.as_tensor(x_observed, dtype=torch.float32),
                               show_progress_bars=False).double().numpy()
    record = {"wall_s": time.perf_counter() - began, "cpu_s": time.process_time() - cpu, **summary(samples)}
    record.update(chain_ess(posterior, samples))
    return record


def _median(records: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in records]))


def targets(medians: dict, name: str, sbi_wall: float | None) -> dict:
    """Issue 15's two time-to-posterior targets for variant ``name``."""
    return {"variant": name,
            "5x_faster_than_sbi": None if sbi_wall is None else medians[name]["speedup_vs_sbi"] >= SPEEDUP_TARGET,
            "within_3x_of_floor": medians[name]["times_floor"] <= FLOOR_TARGET}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--epochs-m", type=int, default=3)
    parser.add_argument("--epochs-d", type=int, default=5)
    parser.add_argument("--poly-model", help="a trained polynomial-surface M-flow directory (default: train one)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-sbi", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
    simulator = get_simulator("polynomial_surface")
    rng = np.random.default_rng(args.seed)
    theta_train = simulator.prior.sample(args.n_train, rng)
    x_train = simulator.sample(theta_train, args.n_train, rng)
    x_observed = simulator.sample(np.array([THETA]), N_EVENTS, np.random.default_rng(args.seed + 1))
    if args.poly_model:
        from mflow_sbi.flows import load_model

        model, training = load_model(args.poly_model).eval(), {"model": args.poly_model}
    else:
        model, _, seconds = train_mflow(simulator, theta_train, x_train, args.epochs_m, args.epochs_d,
                                        patience=args.epochs_m + args.epochs_d, seed=args.seed)
        training = {"n_train": args.n_train, "epochs": [args.epochs_m, args.epochs_d], "wall_s": round(seconds, 1)}
    print("M-flow", training, flush=True)
    if args.no_sbi:
        sbi_posterior, sbi_record = None, {"skipped": "--no-sbi"}
    else:
        sbi_posterior, sbi_record = train_nle(theta_train, x_train, box_prior(-1.0, 1.0), args.seed)
    print("sbi", sbi_record, flush=True)
    exact = sample_posterior(SimulatorLikelihood(simulator, x_observed), simulator.prior, seed=args.seed, moves="de",
                             progress=False).samples
    width = hidden_features(model)
    gemm = [gemm_gflops(64 * N_EVENTS, width, width)]
    taus = {name: pilot_tau(model, x_observed, simulator.prior, options, args.seed + 500)
            for name, options in VARIANTS.items()}
    print("pilot tau", taus, flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    runs["sbi"] = []
    for repeat in range(args.repeats):
        for name, options in VARIANTS.items():
            record, samples = timed_variant(model, x_observed, simulator.prior, options, taus[name],
                                            args.seed + repeat)
            record["mmd2_to_exact"] = mmd2(subsample(samples, 2000, 11), subsample(exact, 2000, 12))
            runs[name].append(record)
            print(repeat, name, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}, flush=True)
        if sbi_posterior is not None:
            runs["sbi"].append(sbi_run(sbi_posterior, x_observed))
            print(repeat, "sbi", runs["sbi"][-1], flush=True)
    gemm.append(gemm_gflops(64 * N_EVENTS, width, width))
    per_row = flops_per_row(model)
    rate = float(np.median(gemm))
    sbi_wall = _median(runs["sbi"], "wall_s") if runs["sbi"] else None
    medians = {}
    for name in VARIANTS:
        records = runs[name]
        floor = ESS_TARGET * _median(records, "tau") * N_EVENTS * per_row / (rate * 1e9)
        wall = _median(records, "wall_s")
        medians[name] = {key: _median(records, key) for key in ("wall_s", "cpu_s", "ess", "tau", "rows", "burn_in_used",
                                                                "mode_finding_rows", "acceptance", "mean", "std",
                                                                "mmd2_to_exact")}
        medians[name].update(floor_s=floor, times_floor=wall / floor,
                             speedup_vs_sbi=None if sbi_wall is None else sbi_wall / wall)
    if runs["sbi"]:
        medians["sbi"] = {key: _median(runs["sbi"], key) for key in ("wall_s", "cpu_s", "mean", "std")}
        medians["sbi"]["ess"] = _median(runs["sbi"], "ess")
    best = min(VARIANTS, key=lambda n: medians[n]["wall_s"])
    result = {"setting": {"training": training, "n_events": N_EVENTS, "theta": THETA, "repeats": args.repeats,
                          "variants": VARIANTS, "sbi": sbi_record},
              "gemm_gflops_1_thread": gemm, "gemm_rows": 64 * N_EVENTS, "hidden_features": width,
              "gemm_flops_per_row": per_row, "exact": summary(exact), "median": medians, "runs": runs,
              "targets": {**targets(medians, best, sbi_wall), **{f"default_{key}": value for key, value in
                                                                 targets(medians, DEFAULT_VARIANT, sbi_wall).items()}},
              "machine": machine()}
    save_json(args.out, result)
    for name, record in medians.items():
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
    print("targets:", result["targets"])
    return result


if __name__ == "__main__":
    main()
