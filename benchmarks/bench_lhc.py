"""LHC posteriors side by side against the exact one (issue 11, target 2; issue 12, the nuisance parameter).

Setting: the ``lhc`` simulator (WBF H -> gamma gamma, 40 observables on a 14-D manifold, prior N(0, 1) per
coupling). ``--n-train`` training events with theta from the prior (seed ``--seed``); observed sets of
``--observed`` (20) events at ``--points`` (the paper's (0, 0), (0.5, 0) and (-1, -1)), seeds 10_000 + i. With
``--jes S`` > 0 the simulator has the jet-energy-scale nuisance nu_jes (prior N(0, 1), jets scaled by 1 + S nu):
the models learn p(x | theta, nu), the observed events are drawn at nu = 0, every posterior is sampled in
(theta, nu) and compared on its theta marginal, and the exact posterior with nu fixed at 0 (the simulator
without the nuisance, the same likelihood at nu = 0) is reported beside it to show how much the nuisance widens
theta. With ``--cp-observable`` the simulator appends the jets' azimuthal asymmetry sin 2 dphi_jj as a 41st
observable (``lhc`` option ``cp_observable``) for every model; the exact posterior does not change.

Models (``--models``, trained through the same ``train_from_data`` a user's ``mflow-sbi train`` runs, with the
default architecture and ``[training]`` defaults unless ``--epochs-m``/``--epochs-d``/``--manifold-events``/
``--af-epochs``; ``--ensemble K``: K whole models per likelihood, seeds seed + 1000 k, posterior of the mean of
their log-likelihoods): the
M-flow (``mflow``), the M-flow with SCANDAL (``mflow_scandal``, weight ``--scandal``, the simulator's exact joint
score), the ambient flow (``af``) and sbi's default NLE (``sbi``, if installed). Posteriors: the project's
default sampler (emcee, ``[inference]`` defaults or ``--walkers``/``--steps``/``--burn-in``) on the cached
likelihood; the exact one with the simulator's likelihood and the same sampler.

Per model and point: C2ST (sbibm recipe) and MMD^2 of the theta marginal against the exact posterior's, the
posterior mean and standard deviation, and the log posterior density at the true theta (a Gaussian KDE of the
2,000 compared draws). Per model: training wall time, held-out NLL, and for models with a learned manifold the
reconstruction error of held-out events and the distance of generated events to the true manifold
(``evaluate_model``: the closure of the generated four-momenta). Results ``benchmarks/results/lhc.json``
(``--out``), a corner-style overlay of the first point (``--plot``). ``--quick`` shrinks everything to a smoke
test. torch runs single-threaded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import gaussian_kde

from benchmarks.bench_posterior import machine
from benchmarks.bench_training import subsample
from benchmarks.sbi_nle import sample_nle, train_nle
from mflow_sbi.config import parse_config
from mflow_sbi.data.datasets import EventData
from mflow_sbi.flows import load_model
from mflow_sbi.flows.architecture import INNER_DENSITIES, PREPROCESSING
from mflow_sbi.inference.likelihood import EnsembleLikelihood, ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import c2st, mmd2
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.simulation import simulate_events
from mflow_sbi.simulators import get_simulator
from mflow_sbi.workflow.evaluate import evaluate_model
from mflow_sbi.workflow.train import ENSEMBLE_SEED_STRIDE, train_from_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "lhc.json"
PLOT = HERE.parent / "docs" / "images" / "lhc_posteriors.png"
MODEL_TYPES = {"mflow": "mflow", "mflow_scandal": "mflow", "af": "af"}
LABELS = {"mflow": "M-flow", "mflow_scandal": "M-flow + SCANDAL", "af": "AF", "sbi": "sbi NLE (defaults)"}
# issue 11, target 2: C2ST against the exact posterior at every point
TARGETS = {"mflow": 0.60, "mflow_scandal": 0.55}
N_INTEREST = 2  # theta_0, theta_1


def parse_points(text: str) -> list[list[float]]:
    return [[float(v) for v in point.split(",")] for point in text.split(";")]


def simulator_of(args, nuisance: bool = True):
    return get_simulator("lhc", **simulator_options(args, nuisance))


def full_theta(point: list[float], simulator) -> np.ndarray:
    """The point with the nuisance at its centre (nu = 0) when the simulator has one."""
    return np.array(point + [0.0] * (len(simulator.parameter_names) - len(point)))


def simulator_options(args, nuisance: bool = True) -> dict:
    """The ``lhc`` options of this run (the nuisance's only with ``nuisance``)."""
    options = {"jes_uncertainty": args.jes} if nuisance and args.jes > 0 else {}
    return options | ({"cp_observable": True} if args.cp_observable else {})


def train(name: str, data: EventData, args, out: Path, seed: int) -> tuple[Path, dict]:
    training = {"seed": seed, "threads": 1, "scandal": args.scandal if name == "mflow_scandal" else 0.0}
    for key in ("epochs_m", "epochs_d") + (("manifold_events", "reference_events") if name != "af" else ()):
        if getattr(args, key) is not None:
            training[key] = getattr(args, key)
    if name == "af" and args.af_epochs is not None:
        training["epochs"] = args.af_epochs
    model = {"type": MODEL_TYPES[name]} | ({"preprocessing": args.preprocessing} if args.preprocessing else {})
    if name != "af" and args.inner_density:
        model["inner_density"] = args.inner_density
    config = parse_config({"model": model, "training": training}, f"bench_lhc {name}")
    began = time.perf_counter()
    model_dir = train_from_data(data, config, out / f"{name}_{seed}", progress=False)
    return model_dir, {"training_wall_s": round(time.perf_counter() - began, 1), "training": training}


def train_members(name: str, data: EventData, args, out: Path) -> tuple[list[Path], dict]:
    """``--ensemble`` K whole models (training seeds seed + 1000 k, each its own manifold): their directories and
    the first one's record, with the members' summed training time."""
    trained = [train(name, data, args, out, args.seed + ENSEMBLE_SEED_STRIDE * k) for k in range(args.ensemble)]
    info = trained[0][1] | {"training_wall_s": round(sum(record["training_wall_s"] for _, record in trained), 1),
                            "ensemble": args.ensemble}
    return [model_dir for model_dir, _ in trained], info


def sample(likelihood, prior, args, seed: int = 0) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    posterior = sample_posterior(likelihood, prior, n_walkers=args.walkers, n_steps=args.steps, burn_in=args.burn_in,
                                 seed=seed, progress=False)
    return posterior.samples, time.perf_counter() - began


def compare(samples: np.ndarray, exact: np.ndarray, truth: list[float], args) -> dict:
    a = subsample(samples[:, :N_INTEREST], args.compare_samples, 11)
    b = subsample(exact[:, :N_INTEREST], args.compare_samples, 12)
    log_density = float(gaussian_kde(a.T).logpdf(np.asarray(truth)[:, None])[0])
    return {"c2st": round(c2st(a, b, seed=0), 4), "mmd2": round(mmd2(a, b), 6),
            "mean": np.round(samples[:, :N_INTEREST].mean(0), 4).tolist(),
            "std": np.round(samples[:, :N_INTEREST].std(0), 4).tolist(),
            "log_posterior_at_truth": round(log_density, 3)}


def model_figures(model_dir: Path, held_out: EventData) -> dict:
    figures = evaluate_model(model_dir, held_out)
    keys = ("nll", "reconstruction_error", "generated_distance_to_true_manifold", "data_distance_to_true_manifold")
    return {key: figures[key] for key in keys if key in figures}


def torch_prior(simulator) -> torch.distributions.Distribution:
    """The simulator's N(0, 1)^p prior as the torch distribution sbi takes."""
    p = len(simulator.parameter_names)
    return torch.distributions.Independent(torch.distributions.Normal(torch.zeros(p), torch.ones(p)), 1)


def plot(results: dict, posteriors: dict, exact: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    point = results["setting"]["points"][0]
    colors = {"mflow": "C0", "mflow_scandal": "C2", "af": "C1", "sbi": "C3"}
    for k in range(N_INTEREST):
        lo, hi = np.quantile(exact[:, k], [0.001, 0.999])
        width = hi - lo
        bins = np.linspace(lo - 0.5 * width, hi + 0.5 * width, 60)
        axes[k].hist(exact[:, k], bins=bins, density=True, color="0.8", label="exact")
        for name, samples in posteriors.items():
            axes[k].hist(samples[:, k], bins=bins, density=True, histtype="step", lw=1.5, color=colors[name],
                         label=LABELS[name])
        axes[k].axvline(point[k], color="k", ls=":", lw=1)
        axes[k].set_xlabel(f"theta_{k}")
    axes[2].plot(exact[::5, 0], exact[::5, 1], ",", color="0.5", alpha=0.5)
    for name, samples in posteriors.items():
        axes[2].plot(samples[::5, 0], samples[::5, 1], ",", color=colors[name], alpha=0.5)
    axes[2].plot(*point, "k+", ms=10)
    axes[2].set_xlabel("theta_0")
    axes[2].set_ylabel("theta_1")
    axes[0].legend(fontsize=7)
    setting = results["setting"]
    fig.suptitle(f"lhc, {setting['n_train']} training events, {setting['observed']} events at {point}"
                 + (f", nuisance jes {setting['jes']:g} marginalized" if setting["jes"] > 0 else ""), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(results: dict) -> None:
    summary = {}
    for name in results["models"]:
        cells = [c[name] for c in results["cells"] if name in c]
        if cells:
            summary[name] = {"c2st_max": max(c["c2st"] for c in cells),
                             "c2st_median": float(np.median([c["c2st"] for c in cells])),
                             "mmd2_median": float(np.median([c["mmd2"] for c in cells]))}
    results["summary"] = summary
    checks = {}
    for name, bound in TARGETS.items():
        if name in summary:
            checks[f"{name}_c2st_le_{bound:g}_at_every_point"] = {"value": summary[name]["c2st_max"],
                                                                 "met": summary[name]["c2st_max"] <= bound}
    for name in ("mflow", "mflow_scandal"):
        others = [m for m in ("af", "sbi") if m in summary]
        if name in summary and others:
            better = all(c[name]["c2st"] < c[m]["c2st"] for c in results["cells"] for m in others if m in c)
            checks[f"{name}_better_than_{'_and_'.join(others)}_at_every_point"] = {"met": better}
    results["targets"] = checks


def markdown(results: dict) -> str:
    models = [m for m in results["models"] if m in results["summary"]]
    lines = ["| point | " + " | ".join(f"{LABELS[m]} C2ST / MMD^2" for m in models) + " | exact std (theta_0, theta_1)"
             + (" | exact, nu fixed: std" if results["setting"]["jes"] > 0 else "") + " |",
             "|---|" + "---|" * (len(models) + 1 + (results["setting"]["jes"] > 0))]
    for cell, ref in zip(results["cells"], results["exact"], strict=True):
        row = " | ".join(f"{cell[m]['c2st']:.3f} / {cell[m]['mmd2']:.3g}" for m in models)
        extra = f" | {ref['std_nu_fixed']}" if "std_nu_fixed" in ref else ""
        lines.append(f"| {cell['point']} | {row} | {ref['std']}{extra} |")
    lines += ["", "| model | training [s] | held-out NLL | reconstruction error | generated events' distance to the "
              "manifold (median) |", "|---|---|---|---|---|"]
    for m in models:
        t = results["training"][m]
        figures = t.get("figures", {})
        distance = figures.get("generated_distance_to_true_manifold", {}).get("median")
        reconstruction = figures.get("reconstruction_error")
        lines.append(f"| {LABELS[m]} | {t['training_wall_s']:.0f} | {figures.get('nll', float('nan')):.4g} | "
                     f"{'-' if reconstruction is None else f'{reconstruction:.3g}'} | "
                     f"{'-' if distance is None else f'{distance:.3g}'} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=30_000)
    parser.add_argument("--points", default="0,0;0.5,0;-1,-1", help="observed points theta_0,theta_1;...")
    parser.add_argument("--observed", type=int, default=20)
    parser.add_argument("--models", default="mflow,af,sbi", help=f"comma-separated, of {sorted(LABELS)}")
    parser.add_argument("--scandal", type=float, default=10.0, help="SCANDAL weight of mflow_scandal")
    parser.add_argument("--jes", type=float, default=0.0, help="jet-energy-scale uncertainty s (0: no nuisance)")
    parser.add_argument("--cp-observable", dest="cp_observable", action="store_true",
                        help="add the jets' sin 2 dphi_jj as a 41st observable (lhc option cp_observable)")
    parser.add_argument("--epochs-m", dest="epochs_m", type=int, default=None, help="default: [training]'s")
    parser.add_argument("--epochs-d", dest="epochs_d", type=int, default=None, help="default: [training]'s")
    parser.add_argument("--manifold-events", dest="manifold_events", type=int, default=None,
                        help="phase-M events of the M-flows, of --n-train (default: [training]'s, all)")
    parser.add_argument("--ensemble", type=int, default=1,
                        help="K whole models per learned likelihood (seeds seed + 1000 k); the posterior uses the mean "
                             "of their log-likelihoods; figures are the first member's")
    parser.add_argument("--af-epochs", dest="af_epochs", type=int, default=None, help="default: [training]'s")
    parser.add_argument("--preprocessing", choices=PREPROCESSING, default=None,
                        help="[model] preprocessing of the AF and M-flows (default: the model's, affine)")
    parser.add_argument("--reference-events", dest="reference_events", type=int, default=None,
                        help="[training] reference_events of the M-flows (morphing: phase D on this many events)")
    parser.add_argument("--inner-density", dest="inner_density", choices=INNER_DENSITIES, default=None,
                        help="[model] inner_density of the M-flows (default: the model's, flow)")
    parser.add_argument("--walkers", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--burn-in", type=int, default=300)
    parser.add_argument("--compare-samples", type=int, default=2000)
    parser.add_argument("--sbi-samples", type=int, default=2000)
    parser.add_argument("--held-out", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (a few minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--table", type=Path, help="only print the markdown tables of this results file")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models.split(",")) - set(LABELS))
    if unknown:
        parser.error(f"--models: unknown {unknown}; known: {sorted(LABELS)}")
    if args.quick:
        args.n_train, args.epochs_m, args.epochs_d, args.af_epochs = 1000, 1, 1, 1
        args.points, args.steps, args.burn_in, args.compare_samples, args.sbi_samples = "0.5,0", 150, 50, 300, 300
        args.held_out = 200
        if args.out == RESULTS:
            args.out = RESULTS.with_name("lhc_quick.json")
        if args.plot == PLOT:
            args.plot = PLOT.with_name("lhc_posteriors_quick.png")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.table is not None:
        results = json.loads(args.table.read_text())
        print(markdown(results))
        return results
    torch.set_num_threads(1)
    began = time.perf_counter()
    simulator = simulator_of(args)
    points = parse_points(args.points)
    models = args.models.split(",")
    observed = [simulator.sample(full_theta(p, simulator), args.observed, np.random.default_rng(10_000 + i))
                for i, p in enumerate(points)]
    results = {"setting": {"simulator": "lhc", "n_train": args.n_train, "points": points, "observed": args.observed,
                           "jes": args.jes, "seed": args.seed, "quick": args.quick, "ensemble": args.ensemble,
                           "manifold_events": args.manifold_events, "preprocessing": args.preprocessing or "affine",
                           "inner_density": args.inner_density or "flow", "reference_events": args.reference_events,
                           "cp_observable": args.cp_observable,
                           "emcee": {"walkers": args.walkers, "steps": args.steps, "burn_in": args.burn_in}},
               "models": models, "exact": [], "training": {}, "cells": [{"point": p} for p in points]}
    exact = []
    fixed_nu = simulator_of(args, nuisance=False)  # the same likelihood at nu = 0
    for x_o in observed:
        samples, wall = sample(SimulatorLikelihood(simulator, x_o), simulator.prior, args)
        record = {"std": np.round(samples[:, :N_INTEREST].std(0), 4).tolist(),
                  "mean": np.round(samples[:, :N_INTEREST].mean(0), 4).tolist(), "wall_s": round(wall, 1)}
        if args.jes > 0:  # the width without the nuisance
            fixed, _ = sample(SimulatorLikelihood(fixed_nu, x_o), fixed_nu.prior, args)
            record["std_nu_fixed"] = np.round(fixed.std(0), 4).tolist()
        exact.append(samples)
        results["exact"].append(record)
    print("exact:", json.dumps(results["exact"]), flush=True)
    data = simulate_events("lhc", args.n_train, None, args.seed, joint_score=True, options=simulator_options(args))
    held_out = simulate_events("lhc", args.held_out, None, args.seed + 1, options=simulator_options(args))
    first = {}
    with tempfile.TemporaryDirectory() as work:
        for name in models:
            if name == "sbi":
                posterior, info = train_nle(data.theta, data.x, torch_prior(simulator), args.seed)
                if posterior is None:
                    results["training"][name] = info
                    print(f"{name}: {info['skipped']}", flush=True)
                    continue
                drawn, info["sampling_wall_s"] = sample_nle(posterior, observed, args.sbi_samples)
            else:
                model_dirs, info = train_members(name, data, args, Path(work))
                info["figures"] = model_figures(model_dirs[0], held_out)
                members = [load_model(model_dir) for model_dir in model_dirs]
                runs = [sample(EnsembleLikelihood([ModelLikelihood(m, x_o) for m in members]), simulator.prior, args)
                        for x_o in observed]
                drawn = [samples for samples, _ in runs]
                info["sampling_wall_s"] = [round(wall, 1) for _, wall in runs]
            results["training"][name] = info
            for cell, samples, reference, point in zip(results["cells"], drawn, exact, points, strict=True):
                cell[name] = compare(samples, reference, point, args)
            first[name] = drawn[0]
            summarize(results)
            results["wall_s"] = round(time.perf_counter() - began)
            results["machine"] = machine()
            save_json(args.out, results)  # after every model
            print(f"{name}:", json.dumps([c[name] for c in results["cells"]]), flush=True)
    save_json(args.out, results)
    plot(results, first, exact[0], args.plot)
    print(markdown(results))
    print("targets:", json.dumps(results["targets"], indent=1))
    print(f"results written to {args.out}; plot {args.plot}; {results['wall_s']} s")
    return results


if __name__ == "__main__":
    main()
