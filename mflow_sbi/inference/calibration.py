"""Calibration of the inference pipeline over data sets simulated from the prior.

For k = 1..K: draw theta*_k ~ p(theta), simulate N iid events x_k ~ p(x | theta*_k), and sample the
posterior p(theta | x_k). Two checks follow (Talts et al. 2018, arXiv:1804.06788; Hermans et al. 2022,
arXiv:2110.06581):

- Simulation-based calibration: with L posterior draws per data set, the rank r_kj = #{l : theta_lj < theta*_kj}
  of the true value among them is uniform on {0, ..., L} for every parameter j iff the posterior is
  calibrated. The draws are a random subset of the MCMC samples (so nearly independent when L << ESS).
- Expected coverage of the HPD regions: the truth lies in the HPD region of credibility alpha iff
  c_k = P_post[p(theta | x_k) > p(theta*_k | x_k)] < alpha, estimated as the fraction of posterior samples
  whose log posterior exceeds that of theta*_k (the normalizing constant cancels). Calibrated posteriors have
  c_k ~ U(0, 1), i.e. coverage(alpha) = P(c_k < alpha) = alpha; over-confident ones fall below the diagonal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import chisquare, kstest
from tqdm.auto import tqdm

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.inference.settings import DEFAULT_DATASETS, DEFAULT_RANK_SAMPLES
from mflow_sbi.io import save_json, save_npz

RANK_BINS = 10


def sbc_ranks(samples: np.ndarray, theta_true: np.ndarray) -> np.ndarray:
    """Per-parameter rank of ``theta_true`` (p,) among posterior ``samples`` (L, p): an int array in [0, L]."""
    samples = np.asarray(samples, dtype=np.float64)
    theta_true = np.asarray(theta_true, dtype=np.float64)
    if samples.ndim != 2 or theta_true.shape != (samples.shape[1],):
        raise InputError(f"need samples (L, p) and theta_true (p,), got {samples.shape} and {theta_true.shape}")
    return np.sum(samples < theta_true, axis=0)


def hpd_credibility(sample_log_prob: np.ndarray, truth_log_prob: float) -> float:
    """Smallest credibility level whose HPD region contains the truth: the fraction of samples denser than it."""
    sample_log_prob = np.asarray(sample_log_prob, dtype=np.float64)
    return float(np.mean(sample_log_prob > truth_log_prob))


def expected_coverage(credibility: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Fraction of data sets whose truth lies inside the HPD region at each credibility level."""
    credibility = np.asarray(credibility, dtype=np.float64)
    return np.array([np.mean(credibility < level) for level in np.asarray(levels, dtype=np.float64)])


def rank_uniformity_pvalue(ranks: np.ndarray, n_rank_samples: int, bins: int = RANK_BINS) -> float:
    """Chi-square p-value of the ranks (values 0..L) against the discrete uniform, in ``bins`` bins."""
    ranks = np.asarray(ranks, dtype=np.int64)
    bins = min(bins, n_rank_samples + 1)
    bin_of_value = np.arange(n_rank_samples + 1) * bins // (n_rank_samples + 1)
    observed = np.bincount(bin_of_value[ranks], minlength=bins)
    expected = np.bincount(bin_of_value, minlength=bins) / (n_rank_samples + 1) * ranks.size
    return float(chisquare(observed, expected).pvalue)


@dataclass
class CalibrationResult:
    """Ranks (K, p) of the true values among L posterior draws, HPD credibility of each truth (K,)."""

    theta_true: np.ndarray
    ranks: np.ndarray
    credibility: np.ndarray
    n_rank_samples: int
    parameter_names: tuple[str, ...]
    metadata: dict = field(default_factory=dict)

    @property
    def n_datasets(self) -> int:
        return len(self.ranks)

    def rank_pvalues(self, bins: int = RANK_BINS) -> np.ndarray:
        return np.array([rank_uniformity_pvalue(col, self.n_rank_samples, bins) for col in self.ranks.T])

    def coverage(self, levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        levels = np.linspace(0.0, 1.0, 21) if levels is None else np.asarray(levels, dtype=np.float64)
        return levels, expected_coverage(self.credibility, levels)

    def summary(self) -> dict:
        levels, coverage = self.coverage(np.array([0.5, 0.68, 0.9, 0.95]))
        return {
            "n_datasets": self.n_datasets,
            "n_rank_samples": self.n_rank_samples,
            "rank_uniformity_pvalue": dict(zip(self.parameter_names, self.rank_pvalues().tolist(), strict=True)),
            "credibility_uniformity_pvalue": float(kstest(self.credibility, "uniform").pvalue),
            "expected_coverage": {f"{level:g}": float(c) for level, c in zip(levels, coverage, strict=True)},
            **({"metadata": self.metadata} if self.metadata else {}),
        }

    def save(self, path: str | os.PathLike) -> Path:
        return save_npz(path, theta_true=self.theta_true, ranks=self.ranks, credibility=self.credibility,
                        n_rank_samples=np.array(self.n_rank_samples), param_names=np.array(self.parameter_names))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CalibrationResult:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                return cls(npz["theta_true"], npz["ranks"], npz["credibility"], int(npz["n_rank_samples"]),
                           tuple(str(s) for s in npz["param_names"]))
        except (OSError, KeyError, ValueError) as err:
            raise DataFileError(f"{path}: not a readable calibration file ({err})") from None

    def save_summary(self, path: str | os.PathLike) -> Path:
        return save_json(path, self.summary())


def run_calibration(
    simulate: Callable[[np.ndarray, int, np.random.Generator], np.ndarray],
    likelihood_factory: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]],
    prior,
    n_datasets: int = DEFAULT_DATASETS,
    n_events: int = 20,
    seed: int = 0,
    n_rank_samples: int = DEFAULT_RANK_SAMPLES,
    parameter_names: Sequence[str] | None = None,
    progress: bool = True,
    **sampler_options,
) -> CalibrationResult:
    """SBC ranks and HPD credibilities over ``n_datasets`` data sets of ``n_events`` events.

    ``simulate(theta (p,), n, rng)`` draws events; ``likelihood_factory(x)`` returns the summed
    log-likelihood callable for observed events ``x`` (e.g. ``lambda x: ModelLikelihood(model, x)``);
    ``sampler_options`` go to :func:`mflow_sbi.inference.sampler.sample_potential`.
    """
    from mflow_sbi.inference.potential import PosteriorPotential, prior_dim
    from mflow_sbi.inference.sampler import sample_potential

    if n_datasets < 1 or n_events < 1 or n_rank_samples < 1:
        raise InputError(f"need positive n_datasets, n_events, n_rank_samples; got {n_datasets}, {n_events}, "
                         f"{n_rank_samples}")
    rng = np.random.default_rng(seed)
    truths, ranks, credibility = [], [], []
    for k in tqdm(range(n_datasets), desc="calibration", disable=not progress):
        theta_true = prior.sample(1, rng)[0]
        likelihood = likelihood_factory(simulate(theta_true, n_events, rng))
        potential = PosteriorPotential(likelihood, prior)
        posterior = sample_potential(potential, seed=seed + 1 + k, progress=False, **sampler_options)
        if posterior.n_samples < n_rank_samples:
            raise InputError(f"posterior has {posterior.n_samples} samples, fewer than {n_rank_samples} rank draws")
        draws = posterior.samples[rng.choice(posterior.n_samples, n_rank_samples, replace=False)]
        truth_log_prob = potential(theta_true[None, :])[0]
        truths.append(theta_true)
        ranks.append(sbc_ranks(draws, theta_true))
        credibility.append(hpd_credibility(posterior.log_prob, truth_log_prob))
    names = tuple(parameter_names) if parameter_names else tuple(f"theta_{j}" for j in range(prior_dim(prior)))
    return CalibrationResult(np.array(truths), np.array(ranks), np.array(credibility), n_rank_samples, names,
                             metadata={"n_events": n_events, "seed": seed, **sampler_options})
