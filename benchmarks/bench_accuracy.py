"""Posterior accuracy on the polynomial surface, side by side (issue 11, target 1): M-flow without and with
SCANDAL, the ambient flow (AF) and sbi's default NLE, on the same training events, against the exact posterior.

Setting (Brehmer & Cranmer 2020, sec. 4.2; prior U(-1, 1)): per training seed, ``--n-train`` events with theta
from the prior (``np.random.default_rng(seed)``); three observed sets of ``--observed`` (20) events at
theta = ``--thetas`` (-0.5, 0, 0.5), drawn once with seeds 10_000 + i and shared by all training seeds, so the
table has (observed sets) x (training seeds) cells per model.

Per training seed:

- M-flow (``ManifoldFlow(3, 2, 1)``, default architecture, sequential M/D with ``TrainingConfig``'s defaults
  unless overridden): phase M is trained once, then phase D twice from copies of it: without the score
  ("M-flow") and with the SCANDAL loss of weight ``--scandal`` ("M-flow + SCANDAL"; phase M has no score term,
  so sharing it changes nothing but the cost);
- with ``--ensemble K`` > 1, each M-flow is K inner flows trained in phase D (seeds seed + 1000 k) on the
  shared manifold, and its posterior uses the mean of their log-likelihoods (``EnsembleLikelihood``); with
  ``--separate-manifolds`` member k is a whole M-flow, its own phase M seeded seed + 1000 k (the manifold
  term -1/2 log det J^T J does not depend on theta, so the members' log-likelihoods average to a posterior
  as before); both M-flows share the K manifolds;
- with ``--cli-ensemble`` the M-flow (without the score) is instead trained the way ``mflow-sbi train --ensemble
  K`` trains it: ``train_from_data`` with ``[training] ensemble = K`` (member k a whole M-flow, seed + 1000 k,
  phases M and D in one sequential run), loaded as one ``ModelEnsemble``; SCANDAL is not trained then;
- AF (``AmbientFlow(3, 1)``, default architecture) trained by maximum likelihood for ``--af-epochs`` epochs;
- sbi (if installed): ``sbi.inference.NLE`` with its defaults (MAF, its own early stopping), trained once,
  its default MCMC (``build_posterior()``) drawing ``--sbi-samples`` samples per observed set.

Our posteriors are sampled with ``sample_posterior`` (emcee, 64 walkers x ``--steps``, its default moves) on the cached
``ModelLikelihood``; the exact posterior with the simulator's likelihood (``SimulatorLikelihood``) and the same
sampler, plus a second exact chain (another MCMC seed) as the metrics' noise floor. Distances to the exact
posterior on ``--compare-samples`` random draws of each set: the unbiased Gaussian-kernel MMD^2 (median
bandwidth) and C2ST (sbibm recipe), from ``mflow_sbi.inference.metrics``.

Results: ``benchmarks/results/accuracy.json`` (``--out``), with the medians and worst cells per model, the paper's
medians (its Table 2, MMD^2 of the posterior, 100k training events) and the issue's targets; a posterior overlay
plot of the first training seed (``--plot``). ``--quick`` shrinks everything to a smoke test of a few minutes;
``--table FILE`` prints the markdown table of a results file. torch runs single-threaded.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_posterior import machine
from benchmarks.bench_training import subsample
from benchmarks.sbi_nle import box_prior, sample_nle, train_nle
from mflow_sbi.config import parse_config
from mflow_sbi.data.datasets import EventData
from mflow_sbi.flows import AmbientFlow, ManifoldFlow, load_model
from mflow_sbi.inference.likelihood import EnsembleLikelihood, ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import c2st, mmd2
from mflow_sbi.inference.sampler import DEFAULT_MOVES, sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator
from mflow_sbi.training.algorithms import TrainingConfig, train_model
from mflow_sbi.workflow.train import ENSEMBLE_SEED_STRIDE, train_from_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "accuracy.json"
PLOT = HERE.parent / "docs" / "images" / "accuracy_posteriors.png"
MODELS = ("mflow", "mflow_scandal", "af", "sbi")
LABELS = {"mflow": "M-flow (no score)", "mflow_scandal": "M-flow + SCANDAL", "af": "AF (ambient flow)",
          "sbi": "sbi NLE (defaults)"}
# Brehmer & Cranmer 2020, Table 2: median posterior MMD^2 on the polynomial surface (100k training events).
PAPER_MEDIAN_MMD2 = {"AF": 0.071, "PIE (original)": 0.131, "PIE (unconditional manifold)": 0.075, "M-flow S": 0.026,
                     "M-flow alternating": 0.020, "M-flow sequential": 0.017, "Me-flow sequential": 0.007}
PAPER_FOR = {"mflow": "M-flow sequential", "mflow_scandal": None, "af": "AF", "sbi": None}
# issue 11, target 1: (training events, model, statistic, bound)
TARGETS = [(100_000, "mflow", "median", 0.003), (100_000, "mflow", "max", 0.01), (10_000, "mflow", "median", 0.01),
           (100_000, "mflow_scandal", "median", 0.001)]


def simulate_training(simulator, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = simulator.prior.sample(n, rng)
    x = simulator.sample(theta, n, rng)
    return theta, x, simulator.joint_score(x, theta)


def observed_sets(simulator, thetas: list[float], n: int) -> list[np.ndarray]:
    return [simulator.sample(np.array([t]), n, np.random.default_rng(10_000 + i)) for i, t in enumerate(thetas)]


def emcee(factory, prior, args, seed: int) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    posterior = sample_posterior(factory(), prior, n_walkers=args.walkers, n_steps=args.steps, burn_in=args.burn_in,
                                 seed=seed, progress=False)
    return posterior.samples, time.perf_counter() - began


def distances(samples: np.ndarray, reference: np.ndarray, args, seed: int) -> dict:
    a = subsample(samples, args.compare_samples, 11)
    b = subsample(reference, args.compare_samples, 12)
    return {"mmd2": round(mmd2(a, b), 6), "c2st": round(c2st(a, b, seed=seed), 4),
            "mean": round(float(samples.mean()), 4), "std": round(float(samples.std()), 4)}


def training_config(args, seed: int, **changes) -> TrainingConfig:
    options = {"algorithm": "sequential", "threads": 1, "seed": seed}
    for name in ("epochs_m", "epochs_d", "patience", "ema_decay", "manifold_events"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    return TrainingConfig(**(options | changes))


def phase_m(simulator, theta, x, config: TrainingConfig) -> tuple[ManifoldFlow, int, float]:
    """A ManifoldFlow (default architecture, initialized from torch seed ``config.seed``) after ``config``'s
    phase M alone (``config.epochs_d`` = 0): (model, epochs run, wall seconds)."""
    torch.manual_seed(config.seed)
    model = ManifoldFlow(3, 2, 1, prior=simulator.prior)
    began = time.perf_counter()
    history = train_model(model, x, theta, config, progress=False)
    return model, len(history.records), time.perf_counter() - began


def train_mflows(simulator, theta, x, t_xz, args, seed: int) -> dict:
    """Phase M (once, or once per member with ``--separate-manifolds``), then phase D without and with SCANDAL
    from copies; returns {name: (members, info)}."""
    n_manifolds = args.ensemble if args.separate_manifolds else 1
    manifolds = [phase_m(simulator, theta, x, training_config(args, seed + ENSEMBLE_SEED_STRIDE * k, epochs_d=0))
                 for k in range(n_manifolds)]
    wall_m = sum(wall for _, _, wall in manifolds)
    models = {}
    for name, scandal in (("mflow", 0.0), ("mflow_scandal", args.scandal)):
        if name == "mflow_scandal" and scandal <= 0:
            continue
        members, epochs_d = [], []
        began = time.perf_counter()
        for k in range(args.ensemble):  # inner flow k (seed + 1000 k) on manifold k, or on the shared one
            model = copy.deepcopy(manifolds[k % n_manifolds][0])
            config_d = training_config(args, seed + ENSEMBLE_SEED_STRIDE * k, epochs_m=0, scandal=scandal)
            history_d = train_model(model, x, theta, config_d, progress=False, t_xz=t_xz if scandal > 0 else None)
            members.append(model)
            epochs_d.append(len(history_d.records))
        models[name] = (members, {"training_wall_s": round(wall_m + time.perf_counter() - began, 1),
                                  "phase_m_wall_s": round(wall_m, 1),
                                  "epochs_m_run": [epochs for _, epochs, _ in manifolds],
                                  "epochs_d_run": epochs_d, "config_d": vars(config_d) | {}})
    return models


def train_cli_ensemble(simulator, theta, x, args, seed: int) -> dict:
    """The M-flow as ``mflow-sbi train --ensemble K`` trains it (``train_from_data``, ``[training] ensemble``):
    {"mflow": ([the ModelEnsemble], info)}."""
    data = EventData(x=x, theta=theta, prior=simulator.prior, parameter_names=tuple(simulator.parameter_names),
                     simulator="polynomial_surface")
    options = {name: value for name in ("epochs_m", "epochs_d", "patience", "ema_decay", "manifold_events")
               if (value := getattr(args, name)) is not None}
    config = parse_config({"training": options | {"seed": seed, "ensemble": args.ensemble, "scandal": 0.0}},
                          "bench_accuracy --cli-ensemble")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        train_from_data(data, config, Path(folder) / "model", progress=False)
        model = load_model(Path(folder) / "model")
    return {"mflow": ([model], {"training_wall_s": round(time.perf_counter() - began, 1),
                                "training": vars(config.training) | {}})}


def train_af(simulator, theta, x, args, seed: int):
    torch.manual_seed(seed)
    model = AmbientFlow(3, 1, prior=simulator.prior)
    config = TrainingConfig(algorithm="ml", epochs=args.af_epochs, patience=args.patience or 6, threads=1, seed=seed)
    began = time.perf_counter()
    history = train_model(model, x, theta, config, progress=False)
    return [model], {"training_wall_s": round(time.perf_counter() - began, 1), "epochs_run": len(history.records)}


def sbi_samples(theta, x, observed: list[np.ndarray], args, seed: int) -> tuple[list[np.ndarray] | None, dict]:
    """sbi's default NLE trained once on the training events (prior U(-1, 1)), sampled once per observed set."""
    posterior, info = train_nle(theta, x, box_prior(-1.0, 1.0), seed)
    if posterior is None:
        return None, info
    samples, info["sampling_wall_s"] = sample_nle(posterior, observed, args.sbi_samples)
    return samples, info


def summarize(cells: list[dict]) -> dict:
    out = {}
    for metric in ("mmd2", "c2st"):
        values = np.array([c[metric] for c in cells])
        out[metric] = {"median": round(float(np.median(values)), 6), "max": round(float(values.max()), 6),
                       "min": round(float(values.min()), 6)}
    return out


def summarize_results(results: dict) -> None:
    """Fill ``summary`` (median / worst per model over the cells, and the exact second chain) and ``targets``."""
    present = [m for m in MODELS if all(m in c for c in results["cells"])]
    results["summary"] = {m: summarize([c[m] for c in results["cells"]]) for m in present}
    results["summary"]["exact_second_chain"] = summarize(results["exact"])
    results["targets"] = targets(results)


# Two exact reference chains of one observed set, drawn by different sampler versions (moves, mode finding), must
# agree this closely in mean and std; a second exact chain differs from the first by about 0.01 (``exact``).
REFERENCE_TOLERANCE = 0.03


def same_setting(a: dict, b: dict) -> bool:
    """Settings equal but for the training seeds and the sampler's moves (a sampler change between runs); files
    written before ``--separate-manifolds`` and ``--cli-ensemble`` existed shared one manifold."""
    def core(setting: dict) -> dict:
        return {"separate_manifolds": False, "cli_ensemble": False} | {k: v for k, v in setting.items()
                                                                        if k != "seeds"} | {
            "emcee": {k: v for k, v in setting.get("emcee", {}).items() if k != "moves"}}
    return core(a) == core(b)


def same_reference(a: list[dict], b: list[dict]) -> bool:
    """The exact reference chains of two runs describe the same observed sets: same thetas, and per set mean and
    std within REFERENCE_TOLERANCE (runs of one sampler version give identical chains)."""
    if [c["theta"] for c in a] != [c["theta"] for c in b]:
        return False
    return all(abs(c[key] - d[key]) <= REFERENCE_TOLERANCE for c, d in zip(a, b, strict=True)
               for key in ("exact_mean", "exact_std") if key in c and key in d)


def merge(paths: list[Path]) -> dict:
    """One results file from runs of one setting: runs on different training seeds (run side by side as separate
    processes), or runs of other models on the same seeds (``--no-mflow --no-af`` adds sbi's cells): cells and
    training records of one seed are joined, summary and targets recomputed. The runs must agree on everything
    but the seeds and the sampler's moves, their exact reference chains must describe the same observed sets
    (:func:`same_reference`; each file's reference is kept under ``exact_per_file``), and no model may appear
    twice for one seed."""
    runs = [json.loads(path.read_text()) for path in paths]
    first = runs[0]
    for path, run in zip(paths[1:], runs[1:], strict=True):
        if not same_setting(first["setting"], run["setting"]):
            raise SystemExit(f"{path}: its 'setting' differs from {paths[0]}'s; only runs of one setting merge")
        if not same_reference(first["exact"], run["exact"]):
            raise SystemExit(f"{path}: its 'exact' reference differs from {paths[0]}'s by more than "
                             f"{REFERENCE_TOLERANCE} in a mean or std; only runs on the same observed sets merge")
    cells, training = {}, {}
    for path, run in zip(paths, runs, strict=True):
        for record in run["training"]:
            joined = training.setdefault(record["seed"], {"seed": record["seed"]})
            for model in set(record) - {"seed"}:
                if model in joined:
                    raise SystemExit(f"{path}: model {model!r} of training seed {record['seed']} repeats across the "
                                     "merged files")
                joined[model] = record[model]
        for cell in run["cells"]:
            cells.setdefault((cell["seed"], cell["theta"]), {}).update(cell)
    seeds = sorted(training)
    merged = first | {"setting": first["setting"] | {"seeds": seeds},
                      "training": [training[s] for s in seeds],
                      "cells": [cells[key] for key in sorted(cells)],
                      "wall_s": max(run["wall_s"] for run in runs),
                      "merged_from": [str(path) for path in paths],
                      "exact_per_file": {str(path): run["exact"] for path, run in zip(paths, runs, strict=True)}}
    summarize_results(merged)
    return merged


def targets(results: dict) -> dict:
    n = results["setting"]["n_train"]
    summary = results["summary"]
    checks = {}
    for events, model, statistic, bound in TARGETS:
        if model not in summary:
            continue
        key = f"{model}_{statistic}_mmd2_le_{bound:g}_at_{events // 1000}k"
        checks[key] = {"value": summary[model]["mmd2"][statistic], "met": summary[model]["mmd2"][statistic] <= bound,
                       "setting_matches": n == events}
    if "sbi" in summary and "mflow" in summary:
        cells = results["cells"]
        better = [c["mflow"]["mmd2"] < c["sbi"]["mmd2"] for c in cells]
        checks["mflow_better_than_sbi_in_every_cell"] = {"value": f"{sum(better)}/{len(better)}", "met": all(better),
                                                         "setting_matches": n == 100_000}
    return checks


def plot(results: dict, posteriors: dict, exact: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thetas = results["setting"]["thetas"]
    fig, axes = plt.subplots(1, len(thetas), figsize=(4.2 * len(thetas), 3.4), squeeze=False)
    bins = np.linspace(-1, 1, 61)
    colors = {"mflow": "C0", "mflow_scandal": "C2", "af": "C1", "sbi": "C3"}
    for i, ax in enumerate(axes[0]):
        ax.hist(exact[i][:, 0], bins=bins, density=True, color="0.8", label="exact")
        for name, samples in posteriors.items():
            ax.hist(samples[i][:, 0], bins=bins, density=True, histtype="step", lw=1.6, color=colors[name],
                    label=LABELS[name])
        ax.axvline(thetas[i], color="k", ls=":", lw=1)
        ax.set_xlabel("theta")
        ax.set_title(f"20 events at theta = {thetas[i]:g}")
    axes[0][0].set_ylabel("posterior density")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    n, seed = results["setting"]["n_train"], results["setting"]["seeds"][0]
    fig.suptitle(f"polynomial surface, {n} training events, training seed {seed}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: dict) -> str:
    summary, setting = results["summary"], results["setting"]
    lines = ["| model | MMD^2 median | MMD^2 worst | C2ST median | C2ST worst | paper median MMD^2 "
             "| training [s] per seed |",
             "|---|---|---|---|---|---|---|"]
    floor = summary.get("exact_second_chain")
    for name in MODELS:
        if name not in summary:
            continue
        paper = PAPER_FOR[name]
        paper_cell = f"{PAPER_MEDIAN_MMD2[paper]} ({paper})" if paper else "-"
        walls = [t[name]["training_wall_s"] for t in results["training"] if name in t]
        s = summary[name]
        lines.append(f"| {LABELS[name]} | {s['mmd2']['median']:.4g} | {s['mmd2']['max']:.4g} | "
                     f"{s['c2st']['median']:.3f} | {s['c2st']['max']:.3f} | {paper_cell} | "
                     f"{np.median(walls):.0f} |")
    if floor:
        lines.append(f"| exact, second chain (noise floor) | {floor['mmd2']['median']:.2g} | {floor['mmd2']['max']:.2g} "
                     f"| {floor['c2st']['median']:.3f} | {floor['c2st']['max']:.3f} | - | - |")
    lines += ["", "| training seed | theta_obs | " + " | ".join(f"{LABELS[m]} MMD^2" for m in MODELS if m in summary)
              + " |", "|---|---|" + "---|" * sum(m in summary for m in MODELS)]
    for cell in results["cells"]:
        values = " | ".join(f"{cell[m]['mmd2']:.4g}" for m in MODELS if m in summary)
        lines.append(f"| {cell['seed']} | {cell['theta']:g} | {values} |")
    lines.append("")
    done = sorted({c["seed"] for c in results["cells"]})
    lines.append(f"Setting: {setting['n_train']} training events, training seeds {done} completed of {setting['seeds']}, "
                 f"{setting['observed']} observed events per set, {len(results['cells'])} cells.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=100_000, help="training events per seed (the paper's 100k)")
    parser.add_argument("--seeds", type=str, default="0,1,2", help="training seeds, comma-separated")
    parser.add_argument("--thetas", type=str, default="-0.5,0,0.5", help="theta of the observed sets")
    parser.add_argument("--observed", type=int, default=20)
    parser.add_argument("--epochs-m", dest="epochs_m", type=int, default=None, help="default: TrainingConfig's")
    parser.add_argument("--epochs-d", dest="epochs_d", type=int, default=None, help="default: TrainingConfig's")
    parser.add_argument("--patience", type=int, default=None, help="default: TrainingConfig's")
    parser.add_argument("--ema-decay", dest="ema_decay", type=float, default=None, help="default: TrainingConfig's")
    parser.add_argument("--manifold-events", dest="manifold_events", type=int, default=None,
                        help="phase-M events (default: TrainingConfig's)")
    parser.add_argument("--ensemble", type=int, default=1,
                        help="K phase-D inner flows per M-flow on the shared manifold; the posterior uses the mean "
                             "of their log-likelihoods (EnsembleLikelihood)")
    parser.add_argument("--separate-manifolds", action="store_true",
                        help="each of the --ensemble members trains its own phase M (seed + 1000 k) instead of sharing one")
    parser.add_argument("--cli-ensemble", action="store_true",
                        help="train the M-flow as `mflow-sbi train --ensemble K` does (train_from_data, [training] "
                             "ensemble = --ensemble; no SCANDAL model)")
    parser.add_argument("--scandal", type=float, default=10.0, help="SCANDAL weight (0: skip that model)")
    parser.add_argument("--af-epochs", type=int, default=30)
    parser.add_argument("--no-mflow", action="store_true", help="skip both M-flows (e.g. to add another model's "
                        "cells to a run with --merge)")
    parser.add_argument("--no-af", action="store_true")
    parser.add_argument("--no-sbi", action="store_true")
    parser.add_argument("--walkers", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--burn-in", type=int, default=300)
    parser.add_argument("--compare-samples", type=int, default=2000)
    parser.add_argument("--sbi-samples", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (a few minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--table", type=Path, help="only print the markdown table of this results file")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="FILE",
                        help="only merge results files of one setting (other training seeds, or other models on the same "
                             "seeds) into --out")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.seeds, args.epochs_m, args.epochs_d = 2000, "0", 2, 3
        args.af_epochs, args.steps, args.burn_in, args.compare_samples, args.sbi_samples = 3, 300, 100, 500, 500
        if args.out == RESULTS:
            args.out = RESULTS.with_name("accuracy_quick.json")
        if args.plot == PLOT:
            args.plot = PLOT.with_name("accuracy_posteriors_quick.png")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.table is not None:
        results = json.loads(args.table.read_text())
        print(markdown(results))
        return results
    if args.merge is not None:
        results = merge(args.merge)
        save_json(args.out, results)
        print(markdown(results))
        return results
    torch.set_num_threads(1)
    began = time.perf_counter()
    simulator = get_simulator("polynomial_surface")
    seeds = [int(s) for s in args.seeds.split(",")]
    thetas = [float(t) for t in args.thetas.split(",")]
    observed = observed_sets(simulator, thetas, args.observed)
    defaults = training_config(args, seeds[0])
    results = {"setting": {"simulator": "polynomial_surface", "n_train": args.n_train, "seeds": seeds,
                           "thetas": thetas, "observed": args.observed, "scandal": args.scandal,
                           "ensemble": args.ensemble,
                           "separate_manifolds": args.separate_manifolds, "af_epochs": args.af_epochs, "quick": args.quick,
                           "cli_ensemble": args.cli_ensemble,
                           "mflow_training": {k: getattr(defaults, k) for k in ("epochs_m", "epochs_d", "patience",
                                                                                 "ema_decay", "manifold_events",
                                                                                 "learning_rate", "batch_size")},
                           "emcee": {"walkers": args.walkers, "steps": args.steps, "burn_in": args.burn_in,
                                     "moves": DEFAULT_MOVES},
                           "compare_samples": args.compare_samples},
               "paper_median_mmd2": PAPER_MEDIAN_MMD2, "training": [], "cells": []}
    exact, floor_cells = [], []
    for i, x_o in enumerate(observed):
        samples, wall = emcee(lambda x_o=x_o: SimulatorLikelihood(simulator, x_o), simulator.prior, args, seed=0)
        second, _ = emcee(lambda x_o=x_o: SimulatorLikelihood(simulator, x_o), simulator.prior, args, seed=1)
        exact.append(samples)
        floor_cells.append({"theta": thetas[i], **distances(second, samples, args, seed=0),
                            "exact_mean": round(float(samples.mean()), 4), "exact_std": round(float(samples.std()), 4)})
    results["exact"] = floor_cells
    print("exact:", floor_cells, flush=True)
    first_posteriors = {}
    for seed in seeds:
        theta, x, t_xz = simulate_training(simulator, args.n_train, seed)
        if args.no_mflow:
            trained = {}
        elif args.cli_ensemble:
            trained = train_cli_ensemble(simulator, theta, x, args, seed)
        else:
            trained = train_mflows(simulator, theta, x, t_xz, args, seed)
        if not args.no_af:
            trained["af"] = train_af(simulator, theta, x, args, seed)
        info = {"seed": seed, **{name: meta for name, (_, meta) in trained.items()}}
        posteriors = {}
        for name, (members, _) in trained.items():
            posteriors[name] = [emcee(lambda ms=members, x_o=x_o: EnsembleLikelihood([ModelLikelihood(m, x_o) for m in ms]),
                                      simulator.prior, args, seed=0)[0] for x_o in observed]
        if not args.no_sbi:
            drawn, info["sbi"] = sbi_samples(theta, x, observed, args, seed)
            if drawn is not None:
                posteriors["sbi"] = drawn
        results["training"].append(info)
        for i in range(len(observed)):
            cell = {"seed": seed, "theta": thetas[i]}
            for name, samples in posteriors.items():
                cell[name] = distances(samples[i], exact[i], args, seed=seed)
            results["cells"].append(cell)
            print("cell:", json.dumps(cell), flush=True)
        if not first_posteriors:
            first_posteriors = posteriors
            plot(results, first_posteriors, exact, args.plot)  # the first seed's overlay, at once
        summarize_results(results)
        results["wall_s"] = round(time.perf_counter() - began)
        results["machine"] = machine()
        save_json(args.out, results)  # after every seed, so a long run can be read while it goes on
    print(markdown(results))
    print("targets:", json.dumps(results["targets"], indent=1))
    print(f"results written to {args.out}; plot {args.plot}; {results['wall_s']} s")
    return results


if __name__ == "__main__":
    main()
