"""SLCP mode masses with the exact likelihood: the old default moves ("de") against the independence move.

The reference half of ``bench_slcp``: SLCP (5 parameters, prior U(-3, 3)^5, four symmetric modes of exactly
25% each, ``SLCP.mode_of``), observations theta_j from the prior (seed 100 + j) with one simulation each, the
exact likelihood (``SimulatorLikelihood``). For every observation and MCMC seed, ``sample_posterior`` runs
with its default settings (``init="modes"``, 64 walkers x 1,500 steps, 300 burn-in) once per entry of
``--moves`` (interleaved); recorded: the fraction of samples per mode, the largest deviation from 25% in
points, tau, acceptance, walker transitions between the found modes and the wall time. Target (issue 18):
every posterior's mode masses within 5 points of the exact 25%. Results:
``benchmarks/results/slcp_masses.json``. Usage: ``python -m benchmarks.bench_slcp_masses [--observations 5]
[--seeds 0 1 2] [--moves de independence]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_posterior import machine
from benchmarks.bench_slcp import EXACT_MASSES, MASS_POINTS, mass_error, mode_masses
from mflow_sbi.inference.likelihood import SimulatorLikelihood
from mflow_sbi.inference.sampler import MOVES, sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator

RESULTS = Path(__file__).resolve().parent / "results" / "slcp_masses.json"


def observation(simulator, j: int) -> tuple[np.ndarray, np.ndarray]:
    """(true theta, x) of observation j, as in ``bench_slcp.simulate``."""
    rng = np.random.default_rng(100 + j)
    truth = simulator.prior.sample(1, rng)[0]
    return truth, simulator.sample(truth, 1, rng)


def run_one(simulator, x_observed: np.ndarray, moves: str, seed: int) -> dict:
    began = time.perf_counter()
    posterior = sample_posterior(SimulatorLikelihood(simulator, x_observed), simulator.prior, seed=seed, moves=moves,
                                 progress=False)
    masses = mode_masses(simulator, posterior.samples)
    d = posterior.diagnostics
    return {"seed": seed, "masses": masses.round(4).tolist(), "mass_error_vs_exact_points": mass_error(masses, EXACT_MASSES),
            "tau_max": round(float(max(d["autocorrelation_time"])), 2),
            "acceptance": round(float(d["acceptance_fraction"]), 3), "transitions": d["modes"]["transitions"],
            "estimated_weights": np.round(d["modes"]["weights"], 3).tolist(), "wall_s": round(time.perf_counter() - began, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--moves", nargs="+", default=["de", "independence"], choices=MOVES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
    simulator = get_simulator("slcp")
    runs: dict[str, list[dict]] = {moves: [] for moves in args.moves}
    for j in range(args.observations):
        truth, x_observed = observation(simulator, j)
        for seed in args.seeds:
            for moves in args.moves:
                record = {"observation": j, **run_one(simulator, x_observed, moves, seed)}
                runs[moves].append(record)
                print(moves, record, flush=True)
    summary = {}
    for moves, records in runs.items():
        errors = [r["mass_error_vs_exact_points"] for r in records]
        summary[moves] = {"mass_error_vs_exact_points": {"median": float(np.median(errors)), "max": float(np.max(errors))},
                          "within_5_points": f"{sum(e <= MASS_POINTS for e in errors)}/{len(errors)}",
                          "tau_max_median": float(np.median([r["tau_max"] for r in records])),
                          "wall_s_median": float(np.median([r["wall_s"] for r in records]))}
    result = {"setting": {"observations": args.observations, "seeds": args.seeds, "moves": args.moves,
                          "sampler": "sample_posterior defaults except moves"},
              "summary": summary, "runs": runs, "machine": machine()}
    save_json(args.out, result)
    print(summary)
    return result


if __name__ == "__main__":
    main()
