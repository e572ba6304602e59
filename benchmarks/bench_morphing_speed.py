"""Likelihood cost of the two inner densities side by side: "flow" against "morphing" (issue 15, time to posterior).

Setting: the LHC-sized M-flow (40-D data, 14-D manifold, 2 parameters, default architecture, untrained random
weights: the cost of a call does not depend on training) built twice, with ``inner_density = "flow"`` and
``"morphing"``; the same observed events for both (drawn from the flow model at theta = 0). With a morphing
inner density the cached likelihood keeps each event's R(u') and log p_ref(u') (``latent_summary``), so a call
is one 3 x 3 quadratic form per (theta, event) row instead of a pass through the inner flow.

1. Per N in ``--events``: the seconds of one likelihood call with 32 parameter points (one emcee half-step of
   64 walkers) on one thread, the two models alternating, ``--repeats`` rounds; medians and min-max.
2. At N = 20: a whole default posterior per model (64 walkers x 1,500 steps, adaptive burn-in), alternating,
   ``--posteriors`` rounds: wall time, the smallest effective sample size over the parameters, and the time to
   5,000 effective samples (wall x 5,000 / ESS); medians.

Results ``benchmarks/results/morphing_speed.json``. Usage: ``python -m benchmarks.bench_morphing_speed
[--events 20 1000 10000 100000] [--repeats 5] [--posteriors 3]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_inference import _model
from benchmarks.bench_posterior import machine
from benchmarks.bench_scaling import WALKERS, call_seconds, observed
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import save_json

RESULTS = Path(__file__).resolve().parent / "results" / "morphing_speed.json"
DENSITIES = ("flow", "morphing")
ESS = 5000


def spread(values: list[float]) -> dict:
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[20, 1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--posteriors", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
    models = {name: _model(None, 40, 14, 2, args.seed, name)[0] for name in DENSITIES}
    results = {"setting": {"model": "untrained ManifoldFlow(40 -> 14, 2 parameters)", "walkers": WALKERS,
                           "repeats": args.repeats, "posteriors": args.posteriors, "threads": 1},
               "calls": [], "posteriors": {}, "machine": machine()}
    for n in args.events:
        x = observed(models["flow"], n, args.seed)
        likelihoods = {name: ModelLikelihood(model, x, threads=1) for name, model in models.items()}
        times = {name: [] for name in DENSITIES}
        for _ in range(args.repeats):
            for name in DENSITIES:
                times[name].append(call_seconds(likelihoods[name], 1))
        record = {"n_events": n, "rows_per_call": n * WALKERS // 2,
                  **{f"call_s_{name}": spread(times[name]) for name in DENSITIES}}
        record["speedup"] = record["call_s_flow"]["median"] / record["call_s_morphing"]["median"]
        results["calls"].append(record)
        print(record, flush=True)
        save_json(args.out, results)
    x = observed(models["flow"], 20, args.seed)
    runs = {name: [] for name in DENSITIES}
    for round_ in range(args.posteriors):
        for name in DENSITIES:
            began = time.perf_counter()
            posterior = sample_posterior(ModelLikelihood(models[name], x, threads=1), models[name].prior,
                                         seed=round_, progress=False)
            wall = time.perf_counter() - began
            ess = float(posterior.diagnostics["min_effective_sample_size"])
            runs[name].append({"wall_s": wall, "ess": ess, "time_to_5000_ess_s": wall * ESS / ess})
    for name in DENSITIES:
        results["posteriors"][name] = {"runs": runs[name],
                                       **{key: spread([r[key] for r in runs[name]])
                                          for key in ("wall_s", "ess", "time_to_5000_ess_s")}}
    results["posteriors"]["speedup_time_to_5000_ess"] = (results["posteriors"]["flow"]["time_to_5000_ess_s"]["median"]
                                                         / results["posteriors"]["morphing"]["time_to_5000_ess_s"]["median"])
    save_json(args.out, results)
    print({name: results["posteriors"][name] for name in DENSITIES}, results["posteriors"]["speedup_time_to_5000_ess"])
    return results


if __name__ == "__main__":
    main()
