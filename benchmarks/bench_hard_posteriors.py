"""Hard posteriors: emcee on well-separated Gaussian mixtures, started from the prior vs across the modes.

Each target is a mixture sum_k w_k N(mu_k, s_k^2 I) in 2-6 dimensions (means 5.1-5.5 apart, 10 or 50
component standard deviations), used as the log-likelihood under the box-uniform prior [-10, 10]^p, whose
edge lies at least 15 standard deviations from every mean: the posterior is the mixture itself and exact
samples are mixture draws. For every target and seed, ``sample_posterior`` runs with its default settings
once per variant of ``--variants`` (``VARIANTS``): ``prior`` (walkers drawn from the prior, DE moves: the
default before issue 18), ``modes`` (``init="modes"``, DE moves and re-weighting to the estimated masses:
the default until the independence move) and ``independence`` (``init="modes"``, the independence move:
the default); recorded: the fraction of samples per true mode (each sample goes to the component with
the highest responsibility) against w_k, whether every mode holds samples, MMD^2 (``metrics.mmd2``, median
bandwidth; ``N_COMPARE`` random posterior samples against as many exact ones), C2ST (``metrics.c2st``,
``N_C2ST`` of each, on the seeds in ``--c2st-seeds``) and the wall time of ``sample_posterior``. Target
(issue 18): every mode found, masses within 3 points, C2ST <= 0.55. Results:
``benchmarks/results/hard_posteriors.json``. Usage:
``python -m benchmarks.bench_hard_posteriors [--seeds 0 1 2 3 4] [--c2st-seeds 0 1 2] [--targets NAME ...]
[--variants prior modes independence] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from mflow_sbi.inference.metrics import c2st, mmd2
from mflow_sbi.inference.priors import box_uniform
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.io import save_json

RESULTS = Path(__file__).resolve().parent / "results" / "hard_posteriors.json"
N_COMPARE = 2000
N_C2ST = 1000  # per set: the MLPs of one C2ST on 2 x 2,000 points in 6-D take ~45 s on one core
MASS_POINTS = 3.0
C2ST_TARGET = 0.55
VARIANTS = {"prior": {"init": "prior", "moves": "de"}, "modes": {"init": "modes", "moves": "de"},
            "independence": {"init": "modes", "moves": "independence"}}


@dataclass
class GaussianMixture:
    """sum_k w_k N(mu_k, s_k^2 I), an exact log density (numpy only) and exact samples."""

    name: str
    means: np.ndarray  # (K, p)
    scales: np.ndarray  # (K,)
    weights: np.ndarray  # (K,)
    half_width: float

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def prior(self):
        return box_uniform([-self.half_width] * self.dim, [self.half_width] * self.dim)

    def component_log_prob(self, theta: np.ndarray) -> np.ndarray:
        """log w_k + log N(theta; mu_k, s_k^2 I), shape (n, K)."""
        theta = np.atleast_2d(theta)
        squared = ((theta[:, None, :] - self.means[None]) ** 2).sum(-1)
        return (np.log(self.weights) - 0.5 * squared / self.scales**2
                - self.dim * np.log(self.scales) - 0.5 * self.dim * np.log(2 * np.pi))

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        return logsumexp(self.component_log_prob(theta), axis=1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[labels] + self.scales[labels, None] * rng.standard_normal((n, self.dim))

    def fractions(self, samples: np.ndarray) -> np.ndarray:
        """Share of ``samples`` per component (highest responsibility)."""
        labels = np.argmax(self.component_log_prob(samples), axis=1)
        return np.bincount(labels, minlength=len(self.weights)) / len(samples)


def _two_modes(name: str, dim: int, weights, scales, offset: float = 2.5) -> GaussianMixture:
    means = np.zeros((2, dim))
    means[:, 0] = (-offset, offset)
    means[:, 1:] = 0.5 * np.array([[1.0], [-1.0]])  # not aligned with an axis
    return GaussianMixture(name, means, np.asarray(scales, float), np.asarray(weights, float), 10.0)


def targets() -> dict[str, GaussianMixture]:
    """Modes 10 (``2d_equal_near``) or 50 component standard deviations apart (the rest)."""
    four = np.array([[-2.5, -2.5], [-2.5, 2.5], [2.5, -2.5], [2.5, 2.5]])
    cases = [
        _two_modes("2d_equal_near", 2, [0.5, 0.5], [0.5, 0.5]),
        _two_modes("2d_equal", 2, [0.5, 0.5], [0.1, 0.1]),
        _two_modes("2d_unequal", 2, [0.7, 0.3], [0.1, 0.14]),
        GaussianMixture("2d_four_symmetric", four, np.full(4, 0.1), np.full(4, 0.25), 10.0),
        _two_modes("4d_unequal", 4, [0.7, 0.3], [0.1, 0.14]),
        _two_modes("6d_equal", 6, [0.5, 0.5], [0.1, 0.1]),
        _two_modes("6d_unequal", 6, [0.7, 0.3], [0.1, 0.14]),
    ]
    return {case.name: case for case in cases}


def run_one(target: GaussianMixture, seed: int, with_c2st: bool = True, **settings) -> dict:
    began = time.perf_counter()
    posterior = sample_posterior(target, target.prior, seed=seed, progress=False, **settings)
    seconds = time.perf_counter() - began
    fractions = target.fractions(posterior.samples)
    rng = np.random.default_rng(1000 + seed)
    chosen = posterior.samples[rng.choice(posterior.n_samples, N_COMPARE, replace=False)]
    exact = target.sample(N_COMPARE, rng)
    result = {
        "fractions": fractions.tolist(),
        "max_mass_error_points": float(100 * np.max(np.abs(fractions - target.weights))),
        "all_modes_found": bool(np.all(fractions > 0)),
        "mmd2": mmd2(chosen, exact),
        "c2st": c2st(chosen[:N_C2ST], exact[:N_C2ST], seed=seed) if with_c2st else None,
        "seconds": seconds,
        "tau_max": float(max(posterior.diagnostics["autocorrelation_time"])),
        "n_samples": posterior.n_samples,
        "warnings": posterior.diagnostics["warnings"],
    }
    if "modes" in posterior.diagnostics:
        report = posterior.diagnostics["modes"]
        result.update(modes_found=report["n_modes"], estimated_weights=report["weights"],
                      corrected=report["corrected"], transitions=report["transitions"],
                      mode_finding_seconds=report["seconds"], mode_finding_evaluations=report["evaluations"])
    return result


def _summary(runs: list[dict], weights: np.ndarray) -> dict:
    errors = [r["max_mass_error_points"] for r in runs]
    c2sts = [r["c2st"] for r in runs if r["c2st"] is not None]
    return {
        "all_modes_found": f"{sum(r['all_modes_found'] for r in runs)}/{len(runs)}",
        "max_mass_error_points": {"median": float(np.median(errors)), "max": float(np.max(errors))},
        "mmd2_median": float(np.median([r["mmd2"] for r in runs])),
        "c2st": {"median": float(np.median(c2sts)), "max": float(np.max(c2sts))} if c2sts else None,
        "seconds_median": float(np.median([r["seconds"] for r in runs])),
        "tau_max_median": float(np.median([r["tau_max"] for r in runs])),
        "target_met": bool(all(r["all_modes_found"] for r in runs) and max(errors) <= MASS_POINTS
                           and (not c2sts or max(c2sts) <= C2ST_TARGET)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--targets", nargs="+", default=None, help="target names (default: all)")
    parser.add_argument("--c2st-seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="seeds whose runs also get a C2ST (its MLPs take most of the time; default 0 1 2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    logging.getLogger("mflow_sbi.inference.sampler").setLevel(logging.ERROR)
    cases = targets()
    chosen = args.targets or list(cases)
    result: dict = {"settings": {"seeds": args.seeds, "c2st_seeds": args.c2st_seeds, "n_compare": N_COMPARE,
                                 "n_c2st": N_C2ST, "sampler": "sample_posterior defaults",
                                 "variants": {name: VARIANTS[name] for name in args.variants}},
                    "targets": {}}
    for name in chosen:
        target = cases[name]
        entry = {"dim": target.dim, "weights": target.weights.tolist(), "means": target.means.tolist(),
                 "scales": target.scales.tolist()}
        for variant in args.variants:
            runs = [run_one(target, seed, seed in args.c2st_seeds, **VARIANTS[variant]) for seed in args.seeds]
            entry[variant] = {"summary": _summary(runs, target.weights), "runs": runs}
            s = entry[variant]["summary"]
            print(f"{name:18s} {variant:12s} modes found {s['all_modes_found']}, mass error median/max "
                  f"{s['max_mass_error_points']['median']:.1f}/{s['max_mass_error_points']['max']:.1f} pts, "
                  f"MMD^2 {s['mmd2_median']:.4f}, C2ST {s['c2st']}, tau {s['tau_max_median']:.1f}, {s['seconds_median']:.1f} s",
                  flush=True)
        result["targets"][name] = entry
    result["machine"] = {"python": platform.python_version(), "processor": platform.machine()}
    save_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
