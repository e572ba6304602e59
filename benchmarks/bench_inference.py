"""Inference benchmark: cached vs re-encoding M-flow likelihoods, and time to 5,000 effective samples.

Two measurements, side by side in one run:

1. ``cache``: MCMC over the 2 couplings with 20 iid observed events and the LHC-sized M-flow (40-D data,
   14-D manifold, default architecture), once with the observed events encoded once and cached (only the
   inner flow runs per step) and once re-encoding them at every step; same walkers and seed, in the model's
   default "manifold" density, compared as seconds per MCMC step (the re-encoding chain runs fewer steps:
   each of its steps needs the 40 x 14 decoder Jacobian of every row). Target: cached at least 5x faster.
   Also the time of one likelihood call (walkers/2 x events rows) for both density modes.
2. ``polynomial``: wall time of ``sample_posterior`` with its defaults on the polynomial surface (3-D data,
   2-D manifold, 1 parameter, 20 events observed at theta = 0.5) and the effective sample size it reaches;
   reported as seconds per 5,000 effective samples. Target: under 20 s on 2 CPU cores.

Without ``--lhc-model`` / ``--poly-model`` the models are untrained (random weights, default architecture):
the cost per step does not depend on training, while the autocorrelation time (hence the ESS) of a trained
model's posterior can differ, so pass trained model directories for the ESS figure. Results go to
``benchmarks/results/inference.json``. Usage:
``python -m benchmarks.bench_inference [--lhc-model DIR] [--poly-model DIR] [--steps N]``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_training import BENCH_OUTER
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import save_json
from mflow_sbi.priors import box_uniform

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"
N_EVENTS = 20
TARGET_ESS = 5000


def _model(path: str | None, data_dim: int, latent_dim: int, parameter_dim: int, seed: int,
           inner_density: str = "flow"):
    """A trained model from ``path``, or an untrained M-flow of the default architecture (with ``inner_density``)
    with random weights."""
    from mflow_sbi.flows import create_model, load_model

    if path is not None:
        return load_model(path).eval(), True
    torch.manual_seed(seed)
    model = create_model("mflow", data_dim=data_dim, parameter_dim=parameter_dim, latent_dim=latent_dim,
                         outer=BENCH_OUTER, prior=box_uniform([-1.0] * parameter_dim, [1.0] * parameter_dim),
                         inner_density=inner_density)
    with torch.no_grad():  # nflows initializes coupling layers near the identity; make every layer act
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval(), False


def _observed(model, theta: np.ndarray, seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return model.sample(torch.as_tensor(theta, dtype=torch.float32), N_EVENTS, generator).double().numpy()


def _call_seconds(likelihood: ModelLikelihood, n_theta: int, repeats: int = 5) -> float:
    theta = np.random.default_rng(0).uniform(-1, 1, size=(n_theta, likelihood.parameter_dim))
    likelihood(theta)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        likelihood(theta)
        best = min(best, time.perf_counter() - start)
    return best


def _seconds_per_step(likelihood: ModelLikelihood, prior, walkers: int, steps: int, seed: int) -> float:
    posterior = sample_posterior(likelihood, prior, n_walkers=walkers, n_steps=steps, burn_in=0, seed=seed,
                                 progress=False)
    return posterior.diagnostics["sampling_seconds"] / steps


def bench_cache(model_dir: str | None, walkers: int, steps: int, seed: int) -> dict:
    model, trained = _model(model_dir, 40, 14, 2, seed)
    x = _observed(model, np.zeros(model.parameter_dim), seed)
    reencode_steps = max(4, steps // 10)
    result: dict = {"model": model_dir or "untrained ManifoldFlow(40 -> 14, 2 parameters)", "trained": trained,
                    "n_events": N_EVENTS, "walkers": walkers, "steps": {"cached": steps, "reencoded": reencode_steps},
                    "call_seconds": {}}
    for mode in model.modes:
        result["call_seconds"][mode] = {
            f"cached={cache}": _call_seconds(ModelLikelihood(model, x, cache=cache, mode=mode), walkers // 2)
            for cache in (True, False)
        }
    per_step = {
        "cached": _seconds_per_step(ModelLikelihood(model, x, cache=True), model.prior, walkers, steps, seed),
        "reencoded": _seconds_per_step(ModelLikelihood(model, x, cache=False), model.prior, walkers, reencode_steps,
                                       seed),
    }
    result["mcmc_seconds_per_step"] = per_step
    result["speedup"] = per_step["reencoded"] / per_step["cached"]
    return result


def bench_polynomial(model_dir: str | None, seed: int) -> dict:
    model, trained = _model(model_dir, 3, 2, 1, seed)
    x = _observed(model, np.array([0.5]), seed)
    posterior = sample_posterior(ModelLikelihood(model, x), model.prior, seed=seed, progress=False)
    seconds = posterior.diagnostics["sampling_seconds"]
    ess = posterior.diagnostics["min_effective_sample_size"]
    settings = posterior.metadata["sampler"]
    return {"model": model_dir or "untrained ManifoldFlow(3 -> 2, 1 parameter)", "trained": trained,
            "n_events": N_EVENTS, "walkers": settings["n_walkers"], "steps": settings["n_steps"],
            "burn_in": settings["burn_in"], "seconds": seconds, "effective_samples": ess,
            "autocorrelation_time": posterior.diagnostics["autocorrelation_time"],
            "seconds_per_5000_effective": seconds * TARGET_ESS / ess}


LEVERS = {
    "default (64 walkers, 1500 steps, 300 burn-in)": {},
    "128 walkers, 750 steps, 150 burn-in": {"n_walkers": 128, "n_steps": 750, "burn_in": 150},
    "burn-in 50 from the modes start": {"burn_in": 50, "n_steps": 1250},
    "burn-in 50, until converged (50 tau, tau stable)": {"burn_in": 50, "n_steps": 1500, "until_converged": True},
    "2 threads": {"threads": 2},
}


def bench_levers(model_dir: str | None, seed: int, repeats: int) -> dict:
    """Time to 5,000 ESS on the polynomial surface for each lever (``LEVERS``), interleaved, ``repeats`` times:
    wall time of the whole ``sample_posterior`` call (mode finding included) scaled to 5,000 ESS, with the
    posterior mean and std (accuracy must not move), and the floor ESS x tau x N x FLOPs-per-row / GEMM rate."""
    from benchmarks.floor import flops_per_row, gemm_gflops, hidden_features

    model, trained = _model(model_dir, 3, 2, 1, seed)
    x = _observed(model, np.array([0.5]), seed)
    runs: dict[str, list[dict]] = {name: [] for name in LEVERS}
    for repeat in range(repeats):
        for name, lever in LEVERS.items():
            options = dict(lever)
            threads = options.pop("threads", 1)
            began = time.perf_counter()
            posterior = sample_posterior(ModelLikelihood(model, x, threads=threads), model.prior, seed=seed + repeat,
                                         progress=False, **options)
            wall = time.perf_counter() - began
            ess = float(posterior.diagnostics["min_effective_sample_size"])
            runs[name].append({"wall_s": wall, "ess": ess, "seconds_per_5000_ess": wall * TARGET_ESS / ess,
                               "tau": float(max(posterior.diagnostics["autocorrelation_time"])),
                               "steps_run": posterior.metadata["sampler"]["steps_run"],
                               "mean": float(posterior.samples.mean()), "std": float(posterior.samples.std())})
            print(name, {k: round(v, 4) for k, v in runs[name][-1].items()}, flush=True)
    width = hidden_features(model)
    gemm = gemm_gflops(32 * N_EVENTS, width, width)
    per_row = flops_per_row(model)
    tau = float(np.median([r["tau"] for r in runs[next(iter(LEVERS))]]))
    floor = TARGET_ESS * tau * N_EVENTS * per_row / (gemm * 1e9)
    summary = {name: {key: float(np.median([r[key] for r in records])) for key in records[0]}
               for name, records in runs.items()}
    for record in summary.values():
        record["times_floor"] = record["seconds_per_5000_ess"] / floor
    return {"model": model_dir or "untrained ManifoldFlow(3 -> 2, 1 parameter)", "trained": trained,
            "n_events": N_EVENTS, "repeats": repeats, "gemm_gflops_1_thread": gemm, "hidden_features": width,
            "gemm_flops_per_row": per_row, "tau_default": tau, "floor_seconds_5000_ess": floor,
            "median": summary, "runs": runs}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lhc-model", help="trained 40-D / 14-D M-flow directory (default: untrained)")
    parser.add_argument("--poly-model", help="trained polynomial-surface M-flow directory (default: untrained)")
    parser.add_argument("--walkers", type=int, default=64, help="walkers for the cache comparison (default 64)")
    parser.add_argument("--steps", type=int, default=100,
                        help="cached MCMC steps for the cache comparison; the re-encoding run does 1/10 (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levers", type=int, default=0, metavar="REPEATS",
                        help="only the time-to-posterior levers on the polynomial surface, REPEATS interleaved rounds "
                             "(results to inference_levers.json)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.levers:
        torch.set_num_threads(1)
        logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
        result = {"levers": bench_levers(args.poly_model, args.seed, args.levers),
                  "machine": {"python": platform.python_version(), "torch": torch.__version__,
                              "processor": platform.machine()}}
        save_json(Path(args.out).with_name("inference_levers.json") if args.out == str(RESULTS) else args.out, result)
        return result
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)  # short chains warn by design
    result = {
        "cache": bench_cache(args.lhc_model, args.walkers, args.steps, args.seed),
        "polynomial": bench_polynomial(args.poly_model, args.seed),
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "likelihood_threads": 1, "processor": platform.machine()},
    }
    save_json(args.out, result)
    print(f"cache speedup {result['cache']['speedup']:.1f}x; polynomial surface: "
          f"{result['polynomial']['seconds_per_5000_effective']:.1f} s per 5,000 effective samples")
    return result


if __name__ == "__main__":
    main()
