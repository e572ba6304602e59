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

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import chisquare, kstest
from tqdm.auto import tqdm

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.inference.settings import DEFAULT_DATASETS, DEFAULT_LOCKSTEP, DEFAULT_RANK_SAMPLES
from mflow_sbi.io import read_npz, save_json, save_npz

RANK_BINS = 10
CHECKPOINT_KEYS = ("theta_true", "ranks", "credibility")


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


def dataset_rng(seed: int, k: int) -> np.random.Generator:
    """The generator of data set k: its true parameters, its events and its rank draws (independent of the
    other data sets, so a data set's result does not depend on which others ran before or beside it)."""
    return np.random.default_rng([seed, k])


def _calibrate_dataset(likelihood, prior, theta_true: np.ndarray, rng: np.random.Generator, seed: int,
                       n_rank_samples: int, sampler_options: dict) -> tuple[np.ndarray, float]:
    """Sample one data set's posterior (emcee seed ``seed``); its SBC ranks and the HPD credibility of the truth."""
    from mflow_sbi.inference.potential import PosteriorPotential
    from mflow_sbi.inference.sampler import sample_potential

    potential = PosteriorPotential(likelihood, prior)
    posterior = sample_potential(potential, seed=seed, progress=False, **sampler_options)
    if posterior.n_samples < n_rank_samples:
        raise InputError(f"posterior has {posterior.n_samples} samples, fewer than {n_rank_samples} rank draws")
    draws = posterior.samples[rng.choice(posterior.n_samples, n_rank_samples, replace=False)]
    truth_log_prob = potential(theta_true[None, :])[0]
    return sbc_ranks(draws, theta_true), hpd_credibility(posterior.log_prob, truth_log_prob)


def _settings_json(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def load_checkpoint(path: Path, settings: dict) -> tuple[list, list, list]:
    """The data sets completed by an earlier run with the same ``settings``: (truths, ranks, credibilities)."""
    fields = read_npz(path)
    missing = [key for key in (*CHECKPOINT_KEYS, "settings") if key not in fields]
    if missing:
        raise DataFileError(f"{path}: not a calibration checkpoint, missing {missing}")
    stored, current = json.loads(str(fields["settings"])), json.loads(_settings_json(settings))
    differing = sorted(key for key in set(stored) | set(current) if stored.get(key) != current.get(key))
    if differing:
        raise InputError(f"{path}: written by a calibration with other settings ({', '.join(differing)} differ); "
                         "rerun without resume or with the same settings")
    return [list(fields[key]) for key in CHECKPOINT_KEYS]


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
    lockstep: int = DEFAULT_LOCKSTEP,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    identity: dict | None = None,
    **sampler_options,
) -> CalibrationResult:
    """SBC ranks and HPD credibilities over ``n_datasets`` data sets of ``n_events`` events.

    ``simulate(theta (p,), n, rng)`` draws events; ``likelihood_factory(x)`` returns the summed
    log-likelihood callable for observed events ``x`` (e.g. ``lambda x: ModelLikelihood(model, x)``);
    ``sampler_options`` go to :func:`mflow_sbi.inference.sampler.sample_potential`. Data set k draws its truth,
    events and rank draws from :func:`dataset_rng` (seed, k), and its chain uses emcee seed ``seed + 1 + k``.

    The data sets run in blocks of ``lockstep``: the chains of a block advance together and their likelihood
    calls are evaluated as one batch (:mod:`mflow_sbi.inference.lockstep`, batched by
    :func:`~mflow_sbi.inference.likelihood.batch_evaluator`); every posterior is the one a separate run gives
    (up to float32 rounding of the network's rows, see lockstep.py).
    With ``checkpoint`` (an ``.npz`` path) the completed data sets are written there atomically after each
    block; with ``resume`` a run continues after the data sets of an existing checkpoint written with the same
    settings (``identity``, e.g. the model's hash, is part of them), giving the numbers of an uninterrupted run.
    """
    from mflow_sbi.inference.likelihood import batch_evaluator
    from mflow_sbi.inference.lockstep import run_lockstep
    from mflow_sbi.inference.potential import prior_dim

    if n_datasets < 1 or n_events < 1 or n_rank_samples < 1 or lockstep < 1:
        raise InputError(f"need positive n_datasets, n_events, n_rank_samples, lockstep; got {n_datasets}, "
                         f"{n_events}, {n_rank_samples}, {lockstep}")
    names = tuple(parameter_names) if parameter_names else tuple(f"theta_{j}" for j in range(prior_dim(prior)))
    metadata = {"n_events": n_events, "seed": seed, **sampler_options}
    settings = {**metadata, "n_rank_samples": n_rank_samples, "parameter_names": list(names), **(identity or {})}
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    done: tuple[list, list, list] = ([], [], [])
    if resume and checkpoint is not None and checkpoint.is_file():
        done = load_checkpoint(checkpoint, settings)
    truths, ranks, credibility = (column[:n_datasets] for column in done)
    with tqdm(total=n_datasets, initial=len(truths), desc="calibration", disable=not progress) as bar:
        for first in range(len(truths), n_datasets, lockstep):
            block = range(first, min(first + lockstep, n_datasets))
            rngs = [dataset_rng(seed, k) for k in block]
            block_truths = [prior.sample(1, rng)[0] for rng in rngs]
            likelihoods = [likelihood_factory(simulate(theta, n_events, rng))
                           for theta, rng in zip(block_truths, rngs, strict=True)]
            jobs = [functools.partial(_calibrate_dataset, prior=prior, theta_true=theta, rng=rng, seed=seed + 1 + k,
                                      n_rank_samples=n_rank_samples, sampler_options=sampler_options)
                    for k, theta, rng in zip(block, block_truths, rngs, strict=True)]
            for theta, (rank, cred) in zip(block_truths, run_lockstep(likelihoods, batch_evaluator(likelihoods), jobs),
                                           strict=True):
                truths.append(theta)
                ranks.append(rank)
                credibility.append(cred)
            if checkpoint is not None:
                save_npz(checkpoint, theta_true=np.array(truths), ranks=np.array(ranks),
                         credibility=np.array(credibility), settings=np.array(_settings_json(settings)))
            bar.update(len(block))
    return CalibrationResult(np.array(truths), np.array(ranks), np.array(credibility), n_rank_samples, names,
                             metadata=metadata)
