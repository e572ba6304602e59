"""Benchmark: log det(J^T J) of the M-flow decoder for a batch, batched methods vs the naive loop.

Setting of issue 3: batch 256, d = 40, n = 14, outer flow of 10 layers (default step: RQ-spline coupling,
LU mixing). For each Jacobian method ("forward": forward-mode over the expanded batch; "double_backward":
the double-vjp trick, here with ``create_graph=True`` as used for training; "loop": one reverse pass per
output coordinate) it reports the median wall time per batch in ms over ``--repeats`` runs (after one
warm-up run), the speed-up over the loop and the largest deviation of log det(J^T J) from the loop's.

    python benchmarks/bench_jacobian.py [--repeats 5] [--threads N] [--out benchmarks/results/jacobian.json]
"""

from __future__ import annotations

import argparse
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
CASES = {"forward": False, "double_backward": True, "loop": False}  # method -> create_graph


def run(repeats: int, threads: int | None, seed: int = 0) -> dict:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = ManifoldFlow(SETTINGS["data_dim"], SETTINGS["latent_dim"], 2, outer={"n_layers": SETTINGS["outer_layers"]})
    model.eval()
    u = torch.randn(SETTINGS["batch"], SETTINGS["latent_dim"], generator=torch.Generator().manual_seed(seed))
    results, reference = {}, None
    for method in ("loop", "forward", "double_backward"):
        create_graph = CASES[method]

        def once(method=method, create_graph=create_graph) -> torch.Tensor:
            log_det = log_det_metric(decoder_jacobian(model._decode_raw, u, method=method, create_graph=create_graph))
            if create_graph:  # include the backward pass through J that training needs
                log_det.sum().backward()
            return log_det.detach()

        log_det = once()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            once()
            times.append(1e3 * (time.perf_counter() - start))
        reference = log_det if reference is None else reference
        results[method] = {
            "ms_per_batch": statistics.median(times),
            "ms_all": times,
            "create_graph": create_graph,
            "max_abs_dev_from_loop": float((log_det - reference).abs().max()),
        }
    for method in results:
        results[method]["speedup_vs_loop"] = results["loop"]["ms_per_batch"] / results[method]["ms_per_batch"]
    return {
        "benchmark": "decoder log det(J^T J)",
        "settings": {**SETTINGS, "outer": vars(model.outer_config), "repeats": repeats,
                     "threads": torch.get_num_threads(), "dtype": "float32 network, float64 J^T J"},
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": torch.get_num_threads()},
        "versions": software_versions(),
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    report = run(args.repeats, args.threads)
    save_json(args.out, report)
    for method, row in report["results"].items():
        print(f"{method:16s} {row['ms_per_batch']:9.1f} ms/batch  x{row['speedup_vs_loop']:.2f} vs loop  "
              f"max|dev| {row['max_abs_dev_from_loop']:.2e}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
