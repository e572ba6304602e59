"""Scaling-out benchmark: data-parallel training with 1 and 2 processes, calibration serial vs 2 Dask workers.

1. Training throughput. The same polynomial-surface job (default M-flow architecture, sequential M/D,
   ``--epochs`` epochs of each phase, batch 256, 1 torch thread per process, CPU) is trained with
   ``mflow-sbi train`` in one process and with ``--workers 2``, alternately, ``--repeats`` times. Reported:
   the training events per second of each epoch as the trainer logs them (rank 0; all ranks' events, so the
   figure is the job's throughput), their median per configuration, the wall time of the whole command
   (process start-up included), and the relative difference of the final validation losses.
2. Calibration. ``--datasets`` data sets of 20 events each are calibrated with a tiny trained model
   (:func:`mflow_sbi.workflow.calibrate.calibrate_on_dask`: 64 walkers, 400 steps), serially
   (``synchronous``) and on a LocalCluster of 2 single-threaded worker processes (started once, outside
   the timing; its start-up is reported apart), alternately, ``--repeats`` times; the results of the two
   must be identical. Reported: median wall times and their ratio.
3. GPU: training and MCMC on a GPU against the CPU, when torch sees CUDA (not measured otherwise).

Results go to ``benchmarks/results/scaleout.json``. Usage: ``python -m benchmarks.bench_scaleout [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mflow_sbi.io import save_json

RESULTS = Path(__file__).resolve().parent / "results" / "scaleout.json"
RATE = re.compile(r"phase (\w+) epoch \d+/\d+: .* \| ([0-9.]+) events/s")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mflow_sbi", *argv], env=ENV, capture_output=True, text=True,
                          check=True)


def training_run(data: Path, out: Path, config: Path, workers: int) -> dict:
    """One ``mflow-sbi train`` (``--workers`` when > 1): per-epoch events/s from its log, wall time, losses."""
    started = time.perf_counter()
    done = cli("train", "--data", str(data), "--out", str(out), "--config", str(config), "--workers", str(workers))
    wall = time.perf_counter() - started
    rates = [(phase, float(rate)) for phase, rate in RATE.findall(done.stderr)]
    history = json.loads((out / "history.json").read_text())
    return {"wall_s": wall, "epoch_events_per_s": rates, "final_val_loss": history[-1]["val"]["loss"]}


def training(args, root: Path) -> dict:
    data, config = root / "train.npz", root / "job.toml"
    cli("-q", "simulate", "polynomial_surface", "--n", str(args.n_train), "--from-prior", "--seed", "1",
        "--out", str(data))
    config.write_text(f"[training]\nepochs_m = {args.epochs}\nepochs_d = {args.epochs}\nbatch_size = 256\n"
                      "patience = 100\nthreads = 1\ndevice = \"cpu\"\n")
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for workers in (1, 2):
            runs[workers].append(training_run(data, root / f"model_{workers}_{repeat}", config, workers))
            print(f"training, {workers} process(es), repeat {repeat}: {runs[workers][-1]['wall_s']:.1f} s", flush=True)

    def summary(items: list[dict]) -> dict:
        by_phase = {phase: statistics.median(rate for run in items for p, rate in run["epoch_events_per_s"] if p == phase)
                    for phase in ("M", "D")}
        return {"median_epoch_events_per_s": by_phase, "median_wall_s": statistics.median(r["wall_s"] for r in items),
                "runs": items}

    one, two = summary(runs[1]), summary(runs[2])
    losses = [abs(a["final_val_loss"] - b["final_val_loss"]) / abs(a["final_val_loss"])
              for a, b in zip(runs[1], runs[2], strict=True)]
    return {"n_train": args.n_train, "epochs_per_phase": args.epochs, "batch_size": 256, "one_process": one,
            "two_processes": two,
            "speedup_epoch_events_per_s": {
                phase: two["median_epoch_events_per_s"][phase] / one["median_epoch_events_per_s"][phase]
                for phase in ("M", "D")},
            "speedup_wall": one["median_wall_s"] / two["median_wall_s"],
            "max_relative_final_val_loss_difference": max(losses)}


def calibration(args, root: Path) -> dict:
    from distributed import LocalCluster

    from mflow_sbi.workflow.calibrate import CalibrationJob, calibrate_on_dask

    data, model = root / "cal_train.npz", root / "cal_model"
    cli("-q", "simulate", "polynomial_surface", "--n", "2000", "--from-prior", "--seed", "2", "--out", str(data))
    cli("-q", "train", "--data", str(data), "--out", str(model), "--epochs", "2", "--device", "cpu")
    job = CalibrationJob(str(model), "polynomial_surface", n_events=20, n_rank_samples=99,
                         sampler_options={"n_walkers": 64, "n_steps": 400, "burn_in": 100})
    started = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        startup = time.perf_counter() - started
        times: dict[str, list[float]] = {"serial": [], "two_workers": []}
        results = {}
        for repeat in range(args.repeats):
            for name, scheduler in (("serial", "synchronous"), ("two_workers", cluster.scheduler_address)):
                began = time.perf_counter()
                results[name] = calibrate_on_dask(job, args.datasets, seed=0, scheduler=scheduler)
                times[name].append(time.perf_counter() - began)
                print(f"calibration, {name}, repeat {repeat}: {times[name][-1]:.1f} s", flush=True)
    identical = all(np.array_equal(getattr(results["serial"], key), getattr(results["two_workers"], key))
                    for key in ("theta_true", "ranks", "credibility"))
    serial, parallel = statistics.median(times["serial"]), statistics.median(times["two_workers"])
    return {"datasets": args.datasets, "events_per_dataset": 20, "walkers": 64, "steps": 400,
            "cluster_startup_s": startup, "wall_s": times, "median_serial_s": serial, "median_two_workers_s": parallel,
            "speedup": serial / parallel, "identical_results": identical}


def gpu() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "note": "torch sees no CUDA device on this machine: not measured"}
    return {"available": True, "note": "not implemented in this quick benchmark; run tests/test_gpu.py"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 000 training events, 4 data sets, 2 repeats")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--datasets", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.datasets, args.repeats = 5_000, 4, 2
    with tempfile.TemporaryDirectory() as tmp:
        result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "load_average_at_start": os.getloadavg()},
                  "training": training(args, Path(tmp)), "calibration": calibration(args, Path(tmp)), "gpu": gpu()}
    result["machine"]["load_average_at_end"] = os.getloadavg()
    save_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "training"}, indent=1))
    print(json.dumps({k: v for k, v in result["training"].items() if k not in ("one_process", "two_processes")}))


if __name__ == "__main__":
    main()
