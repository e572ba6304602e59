"""Training speed study (issue 15): today's code path against the fast one, side by side in one run.

For the LHC-sized M-flow (the ``lhc`` simulator's d = 40, n = 14, p = 2 with the default architecture: 4 outer
and 4 inner rational-quadratic coupling layers of width 64) and the polynomial-surface one (d = 3, n = 2, p = 1),
one epoch of each step type runs through the real ``Trainer`` (no validation split, no checkpoint) on synthetic
standard-normal events (the cost does not depend on the values):

- phase M (reconstruction, outer flow), phase D (inner flow on cached latents), the simultaneous step S (exact
  manifold NLL with the differentiable 40 x 14 decoder Jacobian);
- variants: ``nflows`` (``flow_kernels = "nflows"``: today's code path), ``fused`` (the new default), ``fused``
  at a larger batch, and with ``--compile`` also ``fused + compile`` (``compile = true``; phases M and D).

Every repetition runs all variants one after the other (interleaved), after one warm-up epoch each (for the
compiled variant the warm-up is the compilation, reported as ``first_epoch_s``). Reported: median events/s
(wall clock) with min and max over the repetitions, the CPU-time median, and the ratio to ``nflows``.

Floor: torch.profiler counts the matrix-multiply FLOPs of one training batch of each step (forward and backward);
the machine's GEMM rate is measured in the same run at the layer shapes of the models (batch x in -> out,
``addmm``). ``floor_events_per_s`` = rate / (matmul FLOPs per event), and ``fraction_of_floor`` the measured
throughput over it.

Validation loss: phase M of the LHC-sized model trained for ``epochs`` epochs on events of the ``lhc`` simulator
with each variant (same seed), the final validation reconstruction loss, so that a faster variant is shown to
reach the same loss after the same number of epochs.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from mflow_sbi.flows import ManifoldFlow
from mflow_sbi.flows.base import flow_kernels
from mflow_sbi.simulators import get_simulator
from mflow_sbi.training import Trainer, TrainingConfig, build_phases, train_model
from mflow_sbi.training.speed import compile_steps

PHASES = {"M": ("sequential", "M"), "D": ("sequential", "D"), "S": ("simultaneous", "S")}


def model_for(simulator_name: str, seed: int) -> ManifoldFlow:
    simulator = get_simulator(simulator_name)
    torch.manual_seed(seed)
    return ManifoldFlow(simulator.data_dim, simulator.manifold_dim, len(simulator.parameter_names))


def gemm_rate(shapes: list[tuple[int, int, int]], repeats: int = 200) -> dict:
    """GFLOP/s of ``addmm`` (batch x in) @ (in x out) + bias, per shape and the median over shapes."""
    rates = {}
    for rows, inner, outer in shapes:
        a, w, b = torch.randn(rows, inner), torch.randn(inner, outer), torch.randn(outer)
        for _ in range(10):
            torch.addmm(b, a, w)
        started = time.perf_counter()
        for _ in range(repeats):
            torch.addmm(b, a, w)
        seconds = (time.perf_counter() - started) / repeats
        rates[f"{rows}x{inner}->{outer}"] = round(2 * rows * inner * outer / seconds / 1e9, 2)
    return {"by_shape": rates, "median_gflops": round(statistics.median(rates.values()), 2)}


def layer_shapes(model: ManifoldFlow, rows: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every distinct linear layer of the model's networks."""
    shapes = {(rows, m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    return sorted(shapes)


def phase_for(model: ManifoldFlow, name: str, config: TrainingConfig):
    algorithm, wanted = PHASES[name]
    settings = dataclasses.replace(config, algorithm=algorithm, epochs=1, epochs_m=1, epochs_d=1, epochs_pretrain=0,
                                   epochs_posttrain=0)
    phase = next(p for p in build_phases(model, settings) if p.name == wanted)
    phase = dataclasses.replace(phase, prepare=None)  # phase D gets the cached latents directly (latent_data)
    return compile_steps([phase])[0] if config.compile else phase


def matmul_flops_per_event(model: ManifoldFlow, name: str, data: tuple, batch: int) -> float:
    """Matrix-multiply FLOPs of one optimizer step per event (profiler count of mm/addmm/bmm, forward and backward)."""
    config = TrainingConfig(batch_size=batch)
    step = phase_for(model, name, config).steps[0]
    rows = tuple(t[:batch] for t in data)
    with flow_kernels(model, "fused"), profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step.total(step.loss(rows)).backward()
    model.zero_grad(set_to_none=True)
    flops = sum(e.flops for e in prof.key_averages() if e.key in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"))
    return flops / batch


def breakdown(simulator_name: str, name: str, kernels: str, batch: int = 256, steps: int = 3, seed: int = 0) -> dict:
    """Where one training batch of a step spends its time (torch.profiler, CPU): the top operators by self time,
    the matrix-multiply share, and the share outside all operators (Python, autograd bookkeeping: the wall time
    under the profiler minus the operators' self times)."""
    model = model_for(simulator_name, seed)
    model.train()
    generator = torch.Generator().manual_seed(seed)
    data = (torch.randn(batch, model.data_dim, generator=generator), torch.randn(batch, model.parameter_dim,
                                                                                generator=generator))
    config = TrainingConfig(flow_kernels=kernels)
    data = latent_data(model, data) if name == "D" else data
    step = phase_for(model, name, config).steps[0]
    optimizer = torch.optim.AdamW(step.parameters, lr=1e-4)

    def one() -> None:
        optimizer.zero_grad(set_to_none=True)
        step.total(step.loss(data)).backward()
        torch.nn.utils.clip_grad_norm_(step.parameters, 5.0)
        optimizer.step()

    with flow_kernels(model, kernels):
        one()
        started = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                one()
        wall_us = (time.perf_counter() - started) * 1e6
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    matmul = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm"))
    return {"step_ms_under_profiler": round(wall_us / steps / 1e3, 1),
            "top_ops": {e.key: round(e.self_cpu_time_total / wall_us, 3) for e in top},
            "operator_calls_per_step": round(sum(e.count for e in events) / steps),
            "matmul_share": round(matmul / wall_us, 3), "outside_operators_share": round(max(0.0, 1 - total / wall_us), 3)}


def latent_data(model: ManifoldFlow, data: tuple) -> tuple:
    with torch.no_grad():
        return (model.encode_std(data[0]), data[1])


def one_epoch(model: ManifoldFlow, name: str, data: tuple, config: TrainingConfig, phase) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one epoch of ``phase`` on ``data`` (phase D: data are latents already)."""
    trainer = Trainer(model, data, config, progress=False)
    wall, cpu = time.perf_counter(), time.process_time()
    with flow_kernels(model, config.flow_kernels):
        trainer.fit([phase])
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(simulator_name: str, events: dict[str, int], variants: dict[str, TrainingConfig], repeats: int,
               seed: int) -> dict:
    base = model_for(simulator_name, seed)
    generator = torch.Generator().manual_seed(seed)
    results = {}
    for name, n in events.items():
        data = (torch.randn(n, base.data_dim, generator=generator), torch.randn(n, base.parameter_dim, generator=generator))
        runs = {}
        for label, config in variants.items():
            if name == "S" and config.compile:
                continue  # the compiled variant covers phases M and D (see docs/benchmarks.md)
            model = copy.deepcopy(base)
            model.train()
            phase = phase_for(model, name, config)
            epoch_data = latent_data(model, data) if name == "D" else data
            first, _ = one_epoch(model, name, epoch_data, config, phase)  # warm-up (compilation when compiled)
            runs[label] = {"model": model, "phase": phase, "data": epoch_data, "config": config, "first_s": first,
                           "wall": [], "cpu": []}
        for _ in range(repeats):
            for run in runs.values():
                wall, cpu = one_epoch(run["model"], name, run["data"], run["config"], run["phase"])
                run["wall"].append(wall)
                run["cpu"].append(cpu)
        rows = {}
        for label, run in runs.items():
            rates = [n / w for w in run["wall"]]
            rows[label] = {"batch_size": run["config"].batch_size, "median_events_per_s": round(statistics.median(rates)),
                           "min": round(min(rates)), "max": round(max(rates)),
                           "cpu_events_per_s": round(n / statistics.median(run["cpu"])),
                           "first_epoch_s": round(run["first_s"], 1)}
        reference = rows["nflows"]["median_events_per_s"]
        for row in rows.values():
            row["ratio_to_nflows"] = round(row["median_events_per_s"] / reference, 2)
        batch = variants["nflows"].batch_size
        flops = matmul_flops_per_event(base, name, latent_data(base, data) if name == "D" else data, min(batch, n))
        results[name] = {"events": n, "matmul_flops_per_event": round(flops), "variants": rows}
    return results


def add_floor(results: dict, rate_gflops: float) -> None:
    for phase in results.values():
        floor = rate_gflops * 1e9 / phase["matmul_flops_per_event"]
        phase["floor_events_per_s"] = round(floor)
        for row in phase["variants"].values():
            row["fraction_of_floor"] = round(row["median_events_per_s"] / floor, 4)


def validation_loss(events: int, epochs: int, variants: dict[str, TrainingConfig], seed: int) -> dict:
    """Final validation loss of phase M (LHC-sized model, ``lhc`` simulator events) after ``epochs`` epochs per variant."""
    simulator = get_simulator("lhc")
    rng = np.random.default_rng(seed)
    theta = simulator.prior.sample(events, rng)
    x = simulator.sample(theta, events, rng)
    losses = {}
    for label, variant in variants.items():
        model = model_for("lhc", seed)
        config = dataclasses.replace(variant, algorithm="sequential", epochs_m=epochs, epochs_d=0, patience=epochs,
                                     seed=seed)
        started = time.perf_counter()
        history = train_model(model, x, theta, config, progress=False)
        last = [r for r in history.records if r["phase"] == "M"][-1]
        losses[label] = {"val_reconstruction": round(last["val"]["reconstruction"], 5),
                         "best_val": round(min(r["val"]["loss"] for r in history.records if r["phase"] == "M"), 5),
                         "wall_s": round(time.perf_counter() - started, 1)}
    return {"events": events, "epochs": epochs, "variants": losses}


def speed_study(quick: bool, compile_: bool, seed: int = 0, phases: str = "MDS", models: str = "lhc,polynomial_surface",
                validation: bool = True) -> dict:
    """The whole study (or the ``phases`` of the ``models`` named); ``quick`` keeps it small for a shared 2-core
    machine."""
    repeats = 3 if quick else 5
    variants = {"nflows": TrainingConfig(flow_kernels="nflows", validation_fraction=0.0),
                "fused": TrainingConfig(validation_fraction=0.0),
                "fused, batch 1024": TrainingConfig(batch_size=1024, validation_fraction=0.0)}
    if compile_:
        variants["fused + compile"] = TrainingConfig(compile=True, validation_fraction=0.0)
        variants["fused + compile, batch 1024"] = TrainingConfig(compile=True, batch_size=1024, validation_fraction=0.0)
    events = {"lhc": {"M": 2048, "D": 8192, "S": 256} if quick else {"M": 8192, "D": 32768, "S": 1024},
              "polynomial_surface": {"M": 8192, "D": 8192, "S": 2048} if quick else {"M": 32768, "D": 32768, "S": 8192}}
    chosen = models.split(",")
    results = {"repeats": repeats, "threads": torch.get_num_threads()}
    results["profile"] = {f"{simulator} {name} {kernels}": breakdown(simulator, name, kernels, seed=seed)
                          for simulator in chosen for name in phases for kernels in ("nflows", "fused")}
    print("profile", results["profile"], flush=True)
    shapes = sorted(set(layer_shapes(model_for("lhc", seed), 256)) | set(layer_shapes(model_for("polynomial_surface",
                                                                                                 seed), 256)))
    results["gemm_before"] = gemm_rate(shapes)
    for simulator in chosen:
        wanted = {name: n for name, n in events[simulator].items() if name in phases}
        results[simulator] = throughput(simulator, wanted, variants, repeats, seed)
        print(simulator, results[simulator], flush=True)
    results["gemm_after"] = gemm_rate(shapes)
    rate = statistics.median([results["gemm_before"]["median_gflops"], results["gemm_after"]["median_gflops"]])
    results["gemm_gflops"] = rate
    for simulator in chosen:
        add_floor(results[simulator], rate)
    if not validation:
        return results
    loss_variants = {"nflows": TrainingConfig(flow_kernels="nflows"), "fused": TrainingConfig(),
                     "fused, batch 1024": TrainingConfig(batch_size=1024)}
    results["validation"] = validation_loss(4000 if quick else 20000, 3 if quick else 10, loss_variants, seed)
    return results
