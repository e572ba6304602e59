"""Scaling with the number of observed events: time to 5,000 effective samples for N = 1 ... 10^5.

Setting: the LHC-sized M-flow (40-D data, 14-D manifold, 2 parameters, default architecture; ``--lhc-model
DIR`` or untrained random weights: the cost per call does not depend on training), N observed events
drawn from the model at theta = 0, the cached likelihood (the events are encoded once; each call runs the
inner flow on walkers/2 x N rows in chunks of ``chunk_size`` rows, so memory stays bounded).

For each N: the encoding time, the median time of one likelihood call with walkers/2 = 32 points (one emcee
half-step) on 1 thread and, from ``PARALLEL_ROWS`` rows per call on, with every core (``threads="auto"``),
the peak resident memory, and the floor of the call, rows x FLOPs-per-row / GEMM rate (``benchmarks.floor``,
GEMM rate measured in the same run at the inner flow's layer size). Time to 5,000 ESS is then

    T(N) = (burn_in + ESS x tau / walkers) x 2 calls x t_call(N),

with tau the autocorrelation time (steps) of a real chain at N = 20 (measured here, default sampler: 64
walkers, DE moves; for a near-Gaussian posterior it barely changes with N), the default burn-in of 300
steps, and the mode-finding start left out (its cost is a fixed number of calls, about 60, plus ~1,000
points once). Running 5,000-ESS chains at N = 10^5 would take hours here, hence the per-call measurement.
Results go to ``benchmarks/results/scaling.json`` and ``docs/images/scaling.png``. Usage:
``python -m benchmarks.bench_scaling [--events 1 20 1000 10000 100000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_inference import _model
from benchmarks.bench_posterior import machine
from benchmarks.floor import flops_per_row, gemm_gflops, hidden_features
from mflow_sbi.flows.architecture import INNER_DENSITIES
from mflow_sbi.inference.likelihood import PARALLEL_ROWS, ModelLikelihood
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import atomic_path, save_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scaling.json"
PLOT = HERE.parent / "docs" / "images" / "scaling.png"
ESS = 5000
WALKERS = 64
BURN_IN = 300


def observed(model, n: int, seed: int, chunk: int = 10_000) -> np.ndarray:
    """``n`` events drawn from the model at theta = 0, in chunks (bounded memory)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        return np.concatenate([model.sample(torch.zeros(model.parameter_dim), min(chunk, n - i), generator).double().numpy()
                               for i in range(0, n, chunk)])


def call_seconds(likelihood: ModelLikelihood, repeats: int) -> float:
    theta = np.random.default_rng(0).uniform(-0.5, 0.5, size=(WALKERS // 2, likelihood.parameter_dim))
    likelihood(theta)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        likelihood(theta)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tau_at(model, n: int, seed: int, steps: int) -> float:
    posterior = sample_posterior(ModelLikelihood(model, observed(model, n, seed)), model.prior, n_walkers=WALKERS,
                                 n_steps=steps, burn_in=steps // 4, seed=seed, progress=False)
    return float(max(posterior.diagnostics["autocorrelation_time"]))


def plot(results: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = results["events"]
    n = np.array([r["n_events"] for r in rows])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(n, [r["time_to_5000_ess_s"] for r in rows], "o-", label="measured calls (auto threads)")
    left.loglog(n, [r["floor_time_to_5000_ess_s"] for r in rows], "k--", label="floor (GEMM FLOPs / rate)")
    left.set_xlabel("observed events N")
    left.set_ylabel("time to 5,000 ESS [s]")
    left.legend()
    right.semilogx(n, [r["us_per_row_1_thread"] for r in rows], "o-", label="1 thread")
    many = [(r["n_events"], r["us_per_row_auto"]) for r in rows if r["threads_auto"] > 1]
    if many:
        right.semilogx(*zip(*many, strict=True), "s-", label="every core (auto)")
    right.set_xlabel("observed events N")
    right.set_ylabel("microseconds per (theta, event) row")
    right.set_ylim(bottom=0)
    right.legend()
    fig.suptitle(f"LHC-sized M-flow (40 -> 14), {WALKERS} walkers, tau = {results['tau_steps']:.1f} steps")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lhc-model", help="trained 40-D / 14-D M-flow directory (default: untrained)")
    parser.add_argument("--inner-density", dest="inner_density", choices=INNER_DENSITIES, default="flow",
                        help="inner density of the untrained model (default flow; ignored with --lhc-model)")
    parser.add_argument("--events", type=int, nargs="+", default=[1, 20, 1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per N (1 from 10^5 rows up)")
    parser.add_argument("--tau-steps", type=int, default=400, help="steps of the chain that measures tau")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
    model, trained = _model(args.lhc_model, 40, 14, 2, args.seed, args.inner_density)
    width = hidden_features(model)
    per_row_flops = flops_per_row(model)
    gemm = {"1_thread": gemm_gflops(4096, width, width, threads=1),
            "all_cores": gemm_gflops(4096, width, width, threads=os.cpu_count() or 1)}
    tau = tau_at(model, 20, args.seed, args.tau_steps)
    steps = BURN_IN + ESS * tau / WALKERS
    rows_out = []
    for n in args.events:
        x = observed(model, n, args.seed)
        began = time.perf_counter()
        single = ModelLikelihood(model, x, threads=1)
        encode = time.perf_counter() - began
        repeats = 1 if n * WALKERS // 2 >= 100_000 else args.repeats
        rows = n * WALKERS // 2
        t1 = call_seconds(single, repeats)
        auto = ModelLikelihood(model, x, threads="auto")
        threads_auto = auto.threads_for(rows)
        t_auto = call_seconds(auto, repeats) if threads_auto > 1 else t1
        floor_call = rows * per_row_flops / (gemm["all_cores" if threads_auto > 1 else "1_thread"] * 1e9)
        record = {"n_events": n, "rows_per_call": rows, "encode_s": round(encode, 4), "call_s_1_thread": t1,
                  "threads_auto": threads_auto, "call_s_auto": t_auto, "us_per_row_1_thread": t1 / rows * 1e6,
                  "us_per_row_auto": t_auto / rows * 1e6, "floor_call_s": floor_call,
                  "time_to_5000_ess_s": steps * 2 * t_auto, "floor_time_to_5000_ess_s": steps * 2 * floor_call,
                  "fraction_of_floor": floor_call / t_auto, "max_rss_mb": round(max_rss_mb(), 1)}
        rows_out.append(record)
        print({k: (round(v, 6) if isinstance(v, float) else v) for k, v in record.items()}, flush=True)
        save(args, trained, single.chunk_size, width, per_row_flops, gemm, tau, steps, rows_out)  # after every N
    return save(args, trained, single.chunk_size, width, per_row_flops, gemm, tau, steps, rows_out)


def save(args, trained, chunk_size, width, per_row_flops, gemm, tau, steps, rows_out) -> dict:
    """Write the results of the N measured so far, and the plot."""
    per_row = [r["us_per_row_1_thread"] for r in rows_out if r["n_events"] >= 1000]
    results = {
        "setting": {"model": args.lhc_model or "untrained ManifoldFlow(40 -> 14, 2 parameters)", "trained": trained,
                    "inner_density": None if args.lhc_model else args.inner_density,
                    "walkers": WALKERS, "burn_in": BURN_IN, "ess": ESS, "chunk_size": chunk_size,
                    "parallel_rows": PARALLEL_ROWS, "repeats": args.repeats},
        "inner_flow": {"hidden_features": width, "gemm_flops_per_row": per_row_flops},
        "gemm_gflops": gemm, "tau_steps": tau, "steps_to_5000_ess": steps, "events": rows_out,
        "linear_in_n": {"us_per_row_1_thread_n_ge_1000": per_row,
                        "max_over_min": max(per_row) / min(per_row) if per_row else None},
        "machine": machine(),
    }
    save_json(args.out, results)
    plot(results, args.plot)
    return results


if __name__ == "__main__":
    main()
