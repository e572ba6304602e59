"""Expected coverage of the HPD regions over simulated data sets (issue 11, target 3), beside the exact likelihood.

Setting: ``--simulator`` (``polynomial_surface`` or ``lhc``, options ``--option key=value``); the model is
``--model DIR`` or one trained here through ``train_from_data`` (what ``mflow-sbi train`` runs) with the
``[training]`` defaults, ``--model-type`` (mflow), ``--inner-density`` (the model's default), ``--ensemble K``
members, SCANDAL weight ``--scandal`` (0), ``--manifold-events`` and seed ``--seed`` on ``--n-train`` events drawn
from the prior. K = ``--datasets`` (200) data sets of
``--events`` (20) events, truths from the prior, are calibrated with
:func:`mflow_sbi.inference.calibration.run_calibration` (the code behind ``mflow-sbi calibrate``; default
sampler, ``--walkers``/``--steps``/``--burn-in``) twice, with the same data sets and chain seeds: once with
the model's likelihood and once with the simulator's exact one. The exact run is the control: its coverage
misses the nominal level only by sampling noise, whose binomial standard deviation sqrt(a (1 - a) / K) is 3.3
points at a = 68% and 1.5 points at 95% for K = 200.

Reported per likelihood: expected coverage at 50/68/90/95%, its deviation from nominal in points, the
binomial standard deviation, SBC rank-uniformity p-values, and the wall time. Target: the model's coverage
of the 68% and 95% HPD regions within 3 points of nominal. Results ``benchmarks/results/coverage_SIM.json``
(``--out``); a coverage plot of both likelihoods ``docs/images/coverage_SIM.png``. ``--quick``: a smoke test.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_posterior import machine
from mflow_sbi.cli.simulate import parse_options
from mflow_sbi.config import parse_config
from mflow_sbi.errors import InputError
from mflow_sbi.flows import load_model
from mflow_sbi.flows.architecture import INNER_DENSITIES
from mflow_sbi.inference.calibration import CalibrationResult, run_calibration
from mflow_sbi.inference.likelihood import ModelLikelihood, SimulatorLikelihood
from mflow_sbi.io import save_json
from mflow_sbi.simulation import simulate_events
from mflow_sbi.simulators import get_simulator, same_options
from mflow_sbi.workflow.train import read_training_data_record, train_from_data

HERE = Path(__file__).resolve().parent
LEVELS = (0.5, 0.68, 0.9, 0.95)
TARGET_LEVELS = (0.68, 0.95)
TARGET_POINTS = 3.0  # issue 11, target 3: within 3 percentage points


def coverage_record(result: CalibrationResult, wall_s: float) -> dict:
    """Coverage at ``LEVELS`` with deviations and binomial sds in percentage points."""
    k = result.n_datasets
    _, coverage = result.coverage(np.array(LEVELS))
    return {"coverage": {f"{a:g}": round(float(c), 4) for a, c in zip(LEVELS, coverage, strict=True)},
            "deviation_points": {f"{a:g}": round(100 * float(c - a), 2) for a, c in zip(LEVELS, coverage, strict=True)},
            "binomial_sd_points": {f"{a:g}": round(100 * float(np.sqrt(a * (1 - a) / k)), 2) for a in LEVELS},
            "rank_uniformity_pvalue": dict(zip(result.parameter_names, np.round(result.rank_pvalues(), 4).tolist(),
                                               strict=True)),
            "wall_s": round(wall_s, 1)}


def targets(record: dict) -> dict:
    """The model's coverage deviation at ``TARGET_LEVELS`` against ``TARGET_POINTS``."""
    deviation = record["deviation_points"]
    return {f"coverage_{a:g}_within_{TARGET_POINTS:g}_points": {
        "value": deviation[f"{a:g}"], "met": bool(abs(deviation[f"{a:g}"]) <= TARGET_POINTS)} for a in TARGET_LEVELS}


def calibrate(factory, simulator, args) -> tuple[CalibrationResult, float]:
    began = time.perf_counter()
    result = run_calibration(simulator.sample, factory, simulator.prior, n_datasets=args.datasets,
                             n_events=args.events, seed=args.seed, parameter_names=simulator.parameter_names,
                             progress=args.progress, lockstep=args.lockstep, n_walkers=args.walkers,
                             n_steps=args.steps, burn_in=args.burn_in)
    return result, time.perf_counter() - began


def check_model_source(model_dir: Path, simulator: str, options: dict) -> None:
    """A ``--model`` trained on another simulator, or with other options, than ``--simulator``/``--option``
    would be calibrated against the wrong data sets: an error naming both (models without a training record
    pass)."""
    record = read_training_data_record(model_dir)
    trained_on = record.get("simulator")
    if trained_on is None:
        return
    if trained_on != simulator or not same_options(simulator, record.get("simulator_options"), options):
        raise InputError(f"{model_dir} was trained on {trained_on!r} events with options "
                         f"{record.get('simulator_options') or {}}, not on {simulator!r} with {options}")


def trained_model(args, options: dict, work: Path) -> tuple[Path, dict]:
    """``--model`` or a model trained here with the ``[training]`` defaults; (directory, training record)."""
    if args.model is not None:
        check_model_source(args.model, args.simulator, options)
        return args.model, {"model": str(args.model)}
    data = simulate_events(args.simulator, args.n_train, None, args.seed, joint_score=args.scandal > 0,
                           options=options)
    training = {"seed": args.seed, "threads": 1, "ensemble": args.ensemble, "scandal": args.scandal} | (
        {"epochs_m": 1, "epochs_d": 1, "epochs": 1} if args.quick else {})
    if args.manifold_events is not None:
        training["manifold_events"] = args.manifold_events
    model = {"type": args.model_type} | ({"inner_density": args.inner_density} if args.inner_density else {})
    config = parse_config({"model": model, "training": training}, "bench_coverage")
    began = time.perf_counter()
    model_dir = train_from_data(data, config, work / "model", progress=False)
    return model_dir, {"n_train": args.n_train, "model_type": args.model_type, "model": model, "training": training,
                       "training_wall_s": round(time.perf_counter() - began, 1)}


def plot(results: dict, curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    k = results["setting"]["datasets"]
    grid = np.linspace(0, 1, 101)
    band = 2 * np.sqrt(grid * (1 - grid) / k)
    ax.fill_between(grid, grid - band, grid + band, color="0.85", label="+-2 binomial sd")
    ax.plot(grid, grid, color="0.4", lw=0.8)
    for name, (levels, coverage) in curves.items():
        ax.plot(levels, coverage, marker="o", ms=3, label=name)
    ax.set(xlabel="credibility level", ylabel="expected coverage")
    ax.set_title(f"{results['setting']['simulator']}: {k} data sets of {results['setting']['events']} events",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", default="polynomial_surface", choices=("polynomial_surface", "lhc"))
    parser.add_argument("--option", action="append", default=[], help="simulator option key=value; repeatable")
    parser.add_argument("--model", type=Path, help="a trained model directory (default: train one here)")
    parser.add_argument("--model-type", dest="model_type", default="mflow")
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--scandal", type=float, default=0.0, help="SCANDAL weight (the simulator's joint score)")
    parser.add_argument("--inner-density", dest="inner_density", choices=INNER_DENSITIES, default=None,
                        help="[model] inner_density (default: the model's, flow)")
    parser.add_argument("--manifold-events", dest="manifold_events", type=int, default=None,
                        help="[training] manifold_events: phase M on the first this many events (default: all)")
    parser.add_argument("--n-train", dest="n_train", type=int, default=100_000)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--lockstep", type=int, default=50)
    parser.add_argument("--walkers", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--burn-in", dest="burn_in", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="progress bars of the calibration runs")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (a few minutes)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.datasets, args.lockstep, args.walkers, args.steps, args.burn_in = 2000, 6, 3, 16, 120, 40
    suffix = "_quick" if args.quick else ""
    args.out = args.out or HERE / "results" / f"coverage_{args.simulator}{suffix}.json"
    args.plot = args.plot or HERE.parent / "docs" / "images" / f"coverage_{args.simulator}{suffix}.png"
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)  # per-chain warnings of 2 x K runs
    began = time.perf_counter()
    options = parse_options(args.option)
    simulator = get_simulator(args.simulator, **options)
    results = {"setting": {"simulator": args.simulator, "options": options, "datasets": args.datasets,
                           "events": args.events, "lockstep": args.lockstep, "seed": args.seed, "quick": args.quick,
                           "emcee": {"walkers": args.walkers, "steps": args.steps, "burn_in": args.burn_in}},
               "likelihoods": {}}
    curves = {}
    with tempfile.TemporaryDirectory() as work:
        model_dir, results["model"] = trained_model(args, options, Path(work))
        print("model:", json.dumps(results["model"]), flush=True)
        model = load_model(model_dir)
        factories = {"model": lambda x: ModelLikelihood(model, x), "exact": lambda x: SimulatorLikelihood(simulator, x)}
        for name, factory in factories.items():
            result, wall = calibrate(factory, simulator, args)
            results["likelihoods"][name] = coverage_record(result, wall)
            curves[model.display_name if name == "model" else "exact likelihood"] \
                = result.coverage()
            print(f"{name}:", json.dumps(results["likelihoods"][name]), flush=True)
            results["wall_s"] = round(time.perf_counter() - began)
            results["machine"] = machine()
            save_json(args.out, results)
    results["targets"] = targets(results["likelihoods"]["model"])
    save_json(args.out, results)
    plot(results, curves, args.plot)
    print("targets:", json.dumps(results["targets"]))
    print(f"results written to {args.out}; plot {args.plot}; {results['wall_s']} s")
    return results


if __name__ == "__main__":
    main()
