"""Batched calibration: K data sets in lockstep vs one after another, side by side in one run.

Setting: the polynomial-surface M-flow (3-D data, 2-D manifold, 1 parameter; ``--poly-model DIR``, else one
trained here briefly with sequential M/D on ``--n-train`` events: the cost per call does not depend on
training), K = ``--datasets`` (200) data sets of ``--events`` (20) events drawn from the prior, the default
start (mode finding) and emcee with ``--walkers`` x ``--steps`` (``--burn-in``). Both variants call
:func:`mflow_sbi.inference.calibration.run_calibration` with the same seed, so data set k is the same data set
(its own generator) with the same chain seed in both:

- ``sequential``: ``lockstep=1``, one data set after another (the code path before issue 15). Running all K
  this way costs K x (time per data set); the quick settings run the first ``--sequential-datasets`` of the K
  and scale their time to K (full setting: ``--sequential-datasets 200``).
- ``lockstep``: ``lockstep=L`` for each L of ``--lockstep`` (default 50 and 200): the chains of L data sets
  advance together and their likelihood calls are evaluated as one batch.

The variants alternate, ``--repeats`` times; reported are medians (and all times), of the wall time and of
this process's CPU time (the work itself on a shared machine). The sequential data sets'
ranks and credibilities are checked to equal those of the same data sets in the lockstep runs.
Target (issue 15): K = 200 data sets of 20 events >= 5x faster in lockstep than 200 sequential runs.
Results go to ``benchmarks/results/calibration.json``. Quick settings (2 shared cores, ~10 minutes):
``python -m benchmarks.bench_calibration``; full: ``--walkers 64 --steps 1500 --burn-in 300
--sequential-datasets 200 --repeats 3``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_posterior import machine, train_polynomial_mflow
from mflow_sbi.inference.calibration import CalibrationResult, run_calibration
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator

RESULTS = Path(__file__).resolve().parent / "results" / "calibration.json"
TARGET_SPEEDUP = 5.0


def calibrate(model, simulator, n_datasets: int, lockstep: int, args) -> tuple[float, float, CalibrationResult]:
    """(wall seconds, CPU seconds of this process, result): on a shared machine the CPU time, single-threaded
    work here, measures the work itself; the wall time also counts the other jobs' share of the cores."""
    began, cpu = time.perf_counter(), time.process_time()
    result = run_calibration(simulator.sample, lambda x: ModelLikelihood(model, x), simulator.prior,
                             n_datasets=n_datasets, n_events=args.events, seed=args.seed, progress=False,
                             lockstep=lockstep, n_walkers=args.walkers, n_steps=args.steps, burn_in=args.burn_in)
    return time.perf_counter() - began, time.process_time() - cpu, result


def same_datasets(first: CalibrationResult, second: CalibrationResult) -> bool:
    n = min(first.n_datasets, second.n_datasets)
    return bool(np.array_equal(first.ranks[:n], second.ranks[:n])
                and np.array_equal(first.credibility[:n], second.credibility[:n]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poly-model", help="trained polynomial-surface M-flow directory (default: train one)")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--epochs-m", type=int, default=3)
    parser.add_argument("--epochs-d", type=int, default=5)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--sequential-datasets", type=int, default=10,
                        help="data sets run one after another, their time scaled to --datasets (default 10)")
    parser.add_argument("--lockstep", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--walkers", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--burn-in", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)  # short chains warn by design
    simulator = get_simulator("polynomial_surface")
    if args.poly_model:
        from mflow_sbi.flows import load_model

        model, trained = load_model(args.poly_model).eval(), args.poly_model
    else:
        model, trained = train_polynomial_mflow(simulator, args.n_train, args.epochs_m, args.epochs_d, args.seed), \
            f"trained here: {args.n_train} events, {args.epochs_m} + {args.epochs_d} epochs"
    keys = ["sequential_per_dataset", *(f"lockstep_{L}" for L in args.lockstep)]
    times: dict[str, dict[str, list[float]]] = {clock: {key: [] for key in keys} for clock in ("wall", "cpu")}
    identical = []
    for _ in range(args.repeats):
        wall, cpu, alone = calibrate(model, simulator, args.sequential_datasets, 1, args)
        times["wall"]["sequential_per_dataset"].append(wall / args.sequential_datasets)
        times["cpu"]["sequential_per_dataset"].append(cpu / args.sequential_datasets)
        print(f"sequential: {wall:.1f} s wall, {cpu:.1f} s CPU for {args.sequential_datasets} data sets", flush=True)
        for L in args.lockstep:
            wall, cpu, together = calibrate(model, simulator, args.datasets, L, args)
            times["wall"][f"lockstep_{L}"].append(wall)
            times["cpu"][f"lockstep_{L}"].append(cpu)
            identical.append(same_datasets(alone, together))
            print(f"lockstep {L}: {wall:.1f} s wall, {cpu:.1f} s CPU for {args.datasets} data sets", flush=True)
    median = {clock: {key: float(np.median(v)) for key, v in values.items()} for clock, values in times.items()}
    sequential_total = {clock: m["sequential_per_dataset"] * args.datasets for clock, m in median.items()}
    speedup = {clock: {f"lockstep_{L}": sequential_total[clock] / median[clock][f"lockstep_{L}"] for L in args.lockstep}
               for clock in median}
    results = {
        "setting": {"model": trained, "datasets": args.datasets, "events": args.events, "walkers": args.walkers,
                    "steps": args.steps, "burn_in": args.burn_in, "init": "modes", "repeats": args.repeats,
                    "sequential_datasets": args.sequential_datasets, "seed": args.seed},
        "seconds": times,
        "median_seconds": median,
        "sequential_seconds_for_all_datasets": sequential_total,
        "speedup": speedup,
        "same_results_as_sequential": all(identical),
        "targets": {f"lockstep_{L}_ge_5x_{clock}": bool(speedup[clock][f"lockstep_{L}"] >= TARGET_SPEEDUP)
                    for L in args.lockstep for clock in speedup},
        "machine": machine(),
    }
    save_json(args.out, results)
    print("speedup:", results["speedup"], "same results:", results["same_results_as_sequential"])
    print(f"results written to {args.out}")
    return results


if __name__ == "__main__":
    main()
