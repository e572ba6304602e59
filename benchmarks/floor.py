"""The arithmetic floor of a likelihood evaluation: measured GEMM rate and FLOPs per (theta, event) row.

    floor seconds = rows x FLOPs-per-row / GEMM rate,

with FLOPs-per-row the matrix-multiply FLOPs of one ``latent_log_prob`` row (counted by torch's
``FlopCounterMode``: 2 x in x out per linear layer and row; the elementwise spline arithmetic is not
counted) and the GEMM rate measured on this machine, in the same run, for float32 (rows x in) @ (in x out)
products at the network's own layer sizes.
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def gemm_gflops(rows: int, features_in: int, features_out: int, threads: int = 1, repeats: int = 7) -> float:
    """Median GFLOP/s of ``torch.addmm`` (rows x in) @ (in x out) + bias in float32 on ``threads`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, w, b = torch.randn(rows, features_in), torch.randn(features_in, features_out), torch.randn(features_out)
        inner = max(1, int(2e8 // (2 * rows * features_in * features_out)))  # ~0.2 GFLOP per timing
        torch.addmm(b, a, w)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                torch.addmm(b, a, w)
            times.append((time.perf_counter() - start) / inner)
        times.sort()
        return 2 * rows * features_in * features_out / times[len(times) // 2] / 1e9
    finally:
        torch.set_num_threads(previous)


def flops_per_row(model, rows: int = 256) -> float:
    """Matrix-multiply FLOPs of one row of what the cached likelihood evaluates per theta: ``summary_log_prob``
    on the latent summaries (the inner flow for a flow inner density, one quadratic form for a morphing one), or
    ``latent_log_prob`` for a model without summaries."""
    u = torch.randn(rows, model.latent_dim)
    theta = torch.zeros(rows, model.parameter_dim)
    with torch.inference_mode():
        if hasattr(model, "latent_summary"):
            rows_in, evaluate = model.latent_summary(u)[0], model.summary_log_prob
        else:
            rows_in, evaluate = u, model.latent_log_prob
        with FlopCounterMode(display=False) as counter:
            evaluate(rows_in, theta)
    return counter.get_total_flops() / rows


def hidden_features(model) -> int:
    """The width of the inner flow's hidden layers (the GEMM size that dominates its FLOPs)."""
    widths = [m.out_features for m in model.inner.modules() if isinstance(m, torch.nn.Linear)]
    return max(set(widths), key=widths.count)
