"""Throughput of every simulator: events per second for sampling, the exact log-likelihood and the joint score.

Run: ``python -m benchmarks.bench_simulators [--events N] [--lhc-events N]``. Writes
``benchmarks/results/simulators.json`` and prints the Markdown table used in ``docs/benchmarks.md``.
Parameters are drawn from each simulator's prior (one theta per event), the costliest case for the LHC
rejection sampler.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from mflow_sbi.io import save_json
from mflow_sbi.simulators import SIMULATORS, get_simulator

RESULTS = Path(__file__).resolve().parent / "results" / "simulators.json"


def _rate(function, n: int) -> tuple[float, float, float]:
    """(events per wall-clock second, wall seconds, CPU seconds of this process)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    function()
    seconds = time.perf_counter() - start
    return n / seconds, seconds, time.process_time() - cpu_start


def benchmark(name: str, n: int, seed: int = 0) -> dict:
    sim = get_simulator(name)
    rng = np.random.default_rng(seed)
    theta = sim.prior.sample(n, rng)
    x = sim.sample(theta[:1000], 1000, rng)  # warm-up (imports, caches)
    result = {"events": n}
    rate, wall, cpu = _rate(lambda: sim.sample(theta, n, rng), n)
    result.update(sample_events_per_s=rate, sample_seconds=wall, sample_cpu_seconds=cpu)
    x = sim.sample(theta, n, np.random.default_rng(seed + 1))
    result["log_likelihood_events_per_s"] = _rate(lambda: sim.log_likelihood(x, theta), n)[0]
    result["joint_score_events_per_s"] = _rate(lambda: sim.joint_score(x, theta), n)[0]
    return result


def markdown(results: dict) -> str:
    lines = ["| simulator | events | sample [events/s] | sample wall [s] | sample CPU [s] "
             "| log-likelihood [events/s] | joint score [events/s] |", "|---|---|---|---|---|---|---|"]
    for name, r in results["simulators"].items():
        lines.append(f"| {name} | {r['events']:.0e} | {r['sample_events_per_s']:.3g} | {r['sample_seconds']:.2f} "
                     f"| {r['sample_cpu_seconds']:.2f} | {r['log_likelihood_events_per_s']:.3g} "
                     f"| {r['joint_score_events_per_s']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per simulator")
    parser.add_argument("--lhc-events", type=int, default=1_000_000, help="events for the LHC generator")
    args = parser.parse_args(argv)
    results = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "simulators": {name: benchmark(name, args.lhc_events if name == "lhc" else args.events)
                       for name in sorted(SIMULATORS)},
    }
    save_json(RESULTS, results)
    print(markdown(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
