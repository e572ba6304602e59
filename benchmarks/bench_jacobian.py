"""Benchmark: log det(J^T J) of the M-flow decoder for a batch, batched methods vs the naive loop.

Setting of issue 3: batch 256, d = 40, n = 14, outer flow of 10 layers (default step: RQ-spline coupling,
LU mixing). Two uses are timed for each Jacobian method of ``mflow_sbi.flows.jacobian`` ("forward":
vmap over jvp; "double_backward": batched double-vjp; "loop": one reverse pass per output coordinate):

- evaluation: log det(J^T J) without a graph (inference, the "manifold" density of a trained model);
- training: with ``create_graph=True`` and the backward pass of sum(log det) to the parameters.

Times are wall-clock ms per batch: the best (min) and the median of ``--repeats`` runs after one warm-up
run, the methods timed round-robin; speed-ups over the loop use the best times (the least disturbed by
other load on a shared machine).

    python benchmarks/bench_jacobian.py [--repeats 3] [--threads N] [--no-training] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from mflow_sbi.flows import ManifoldFlow
from mflow_sbi.flows.base import software_versions
from mflow_sbi.flows.jacobian import decoder_jacobian, log_det_metric
from mflow_sbi.io import save_json

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "jacobian.json"
SETTINGS = {"batch": 256, "data_dim": 40, "latent_dim": 14, "outer_layers": 10}
METHOD_ORDER = ("loop", "forward", "double_backward")


def jacobian_log_det(model: ManifoldFlow, u: torch.Tensor, method: str, training: bool) -> torch.Tensor:
    """One batch: log det(J^T J); for training also the backward pass of its sum to the parameters."""
    log_det = log_det_metric(decoder_jacobian(model._decode_raw, u, method=method, create_graph=training))
    if training:
        log_det.sum().backward()
        model.zero_grad(set_to_none=True)
    return log_det.detach()


def time_use(model: ManifoldFlow, u: torch.Tensor, training: bool, repeats: int) -> dict:
    """Warm up every method, then time them round-robin (so that load changes hit all methods alike)."""
    log_dets = {method: jacobian_log_det(model, u, method, training) for method in METHOD_ORDER}
    times: dict[str, list[float]] = {method: [] for method in METHOD_ORDER}
    for _ in range(repeats):
        for method in METHOD_ORDER:
            start = time.perf_counter()
            jacobian_log_det(model, u, method, training)
            times[method].append(1e3 * (time.perf_counter() - start))
    best_loop = min(times["loop"])
    return {
        method: {
            "ms_best": min(times[method]),
            "ms_median": statistics.median(times[method]),
            "ms_all": times[method],
            "speedup_vs_loop": best_loop / min(times[method]),
            "max_abs_dev_from_loop": float((log_dets[method] - log_dets["loop"]).abs().max()),
        }
        for method in METHOD_ORDER
    }


def run(repeats: int, threads: int | None, training: bool = True, seed: int = 0) -> dict:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = ManifoldFlow(SETTINGS["data_dim"], SETTINGS["latent_dim"], 2, outer={"n_layers": SETTINGS["outer_layers"]})
    model.eval()
    u = torch.randn(SETTINGS["batch"], SETTINGS["latent_dim"], generator=torch.Generator().manual_seed(seed))
    uses = ("evaluation", "training") if training else ("evaluation",)
    return {
        "benchmark": "decoder log det(J^T J)",
        "settings": {**SETTINGS, "outer": vars(model.outer_config), "repeats": repeats,
                     "threads": torch.get_num_threads(), "dtype": "float32 network, float64 J^T J"},
        "machine": {"processor": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count()},
        "versions": software_versions(),
        "results": {use: time_use(model, u, use == "training", repeats) for use in uses},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-training", action="store_true", help="time only the evaluation use")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    report = run(args.repeats, args.threads, training=not args.no_training)
    save_json(args.out, report)
    for use, rows in report["results"].items():
        for method, row in rows.items():
            print(f"{use:10s} {method:16s} best {row['ms_best']:9.1f} ms  median {row['ms_median']:9.1f} ms  "
                  f"x{row['speedup_vs_loop']:.2f} vs loop  max|dev| {row['max_abs_dev_from_loop']:.1e}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
