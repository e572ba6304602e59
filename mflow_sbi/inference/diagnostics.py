"""Convergence diagnostics for an emcee ensemble chain of shape (steps, walkers, p).

- Integrated autocorrelation time tau_k per parameter (emcee's estimator on the walker-averaged
  autocorrelation function, window c = 5).
- Effective sample size ESS_k = steps * walkers / tau_k.
- Split-R-hat: the walkers are divided into G groups; each group's draws, in time order, form one chain,
  which is split into its first and second halves, giving 2G chains of length n. With W the mean
  within-chain variance and B / n the variance of the chain means,
      R-hat = sqrt( ((n - 1) / n * W + B / n) / W ),
  which tends to 1 for a converged chain (Gelman et al., Bayesian Data Analysis, 3rd ed., sec. 11.4).
- Stuck walkers: acceptance fraction below ``STUCK_FRACTION`` times the median acceptance of the ensemble.

Warnings are raised (as strings) when the chain is shorter than ``MIN_TAU_MULTIPLE`` tau, the mean
acceptance is outside ``ACCEPTANCE_RANGE``, walkers are stuck, or R-hat exceeds ``MAX_RHAT``.
"""

from __future__ import annotations

import numpy as np
from emcee.autocorr import integrated_time

from mflow_sbi.errors import InputError

MIN_TAU_MULTIPLE = 50.0
ACCEPTANCE_RANGE = (0.1, 0.9)
STUCK_FRACTION = 0.2
MAX_RHAT = 1.05
RHAT_GROUPS = 4


def _check_chain(chain: np.ndarray) -> np.ndarray:
    chain = np.asarray(chain, dtype=np.float64)
    if chain.ndim != 3 or chain.shape[0] < 4:
        raise InputError(f"chain must have shape (steps >= 4, walkers, p), got {chain.shape}")
    return chain


def autocorrelation_time(chain: np.ndarray) -> np.ndarray:
    """Integrated autocorrelation time per parameter, shape (p,), in steps (never below 1).

    Walkers that never move in a parameter have no autocorrelation function (0 / 0); they are left out of
    that parameter's estimate (the stuck-walker diagnostic reports them), and a parameter in which no walker
    moves gets tau = steps: each walker then holds a single independent value."""
    chain = _check_chain(chain)
    moving = np.ptp(chain, axis=0) > 0  # (walkers, p)
    tau = np.full(chain.shape[2], float(chain.shape[0]))
    for k in np.flatnonzero(moving.any(axis=0)):
        tau[k] = integrated_time(chain[:, moving[:, k], k][:, :, None], c=5, tol=0, quiet=True)[0]
    return np.maximum(tau, 1.0)


def effective_sample_size(chain: np.ndarray, tau: np.ndarray | None = None) -> np.ndarray:
    """steps * walkers / tau per parameter."""
    chain = _check_chain(chain)
    tau = autocorrelation_time(chain) if tau is None else np.asarray(tau, dtype=np.float64)
    return chain.shape[0] * chain.shape[1] / tau


def split_rhat(chain: np.ndarray, groups: int = RHAT_GROUPS) -> np.ndarray:
    """Split-R-hat per parameter over ``groups`` walker groups (see module docstring)."""
    chain = _check_chain(chain)
    steps, walkers, p = chain.shape
    groups = max(1, min(groups, walkers))
    half = steps // 2
    pieces = []
    for members in np.array_split(np.arange(walkers), groups):
        for part in (chain[:half, members], chain[half : 2 * half, members]):
            pieces.append(part.reshape(-1, p))
    chains = np.stack(pieces)  # (2G, n, p)
    n = chains.shape[1]
    within = chains.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = chains.mean(axis=1).var(axis=0, ddof=1)
    pooled = (n - 1) / n * within + between_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(within > 0, np.sqrt(pooled / within), np.inf)


def stuck_walkers(acceptance: np.ndarray, fraction: float = STUCK_FRACTION) -> np.ndarray:
    """Indices of walkers whose acceptance fraction is below ``fraction`` x the ensemble median."""
    acceptance = np.asarray(acceptance, dtype=np.float64)
    return np.flatnonzero(acceptance < fraction * np.median(acceptance))


def chain_diagnostics(chain: np.ndarray, acceptance: np.ndarray) -> dict:
    """All diagnostics of a post-burn-in ``chain`` with per-walker ``acceptance``, plus warnings.

    Returns a JSON-serializable dict: acceptance_fraction (mean), acceptance_per_walker, autocorrelation_time,
    effective_sample_size (per parameter), min_effective_sample_size, split_rhat, stuck_walkers, n_steps,
    n_walkers, warnings.
    """
    chain = _check_chain(chain)
    acceptance = np.asarray(acceptance, dtype=np.float64)
    tau = autocorrelation_time(chain)
    ess = effective_sample_size(chain, tau)
    rhat = split_rhat(chain)
    stuck = stuck_walkers(acceptance)
    mean_acceptance = float(acceptance.mean())
    steps = chain.shape[0]
    warnings = []
    if steps < MIN_TAU_MULTIPLE * tau.max():
        warnings.append(
            f"chain of {steps} steps (after burn-in) is shorter than {MIN_TAU_MULTIPLE:g} x the autocorrelation "
            f"time ({tau.max():.1f} steps): estimates may be unreliable, run more steps"
        )
    if not ACCEPTANCE_RANGE[0] <= mean_acceptance <= ACCEPTANCE_RANGE[1]:
        warnings.append(
            f"mean acceptance fraction {mean_acceptance:.3f} is outside {ACCEPTANCE_RANGE[0]}-{ACCEPTANCE_RANGE[1]}"
        )
    if stuck.size:
        warnings.append(f"{stuck.size} stuck walker(s) (acceptance < {STUCK_FRACTION:g} x median): {stuck.tolist()}")
    if np.any(rhat > MAX_RHAT):
        warnings.append(f"split-R-hat {np.max(rhat):.3f} > {MAX_RHAT}: walkers disagree, the chain has not mixed")
    return {
        "acceptance_fraction": mean_acceptance,
        "acceptance_per_walker": acceptance.tolist(),
        "autocorrelation_time": tau.tolist(),
        "effective_sample_size": ess.tolist(),
        "min_effective_sample_size": float(ess.min()),
        "split_rhat": rhat.tolist(),
        "stuck_walkers": stuck.tolist(),
        "n_steps": int(steps),
        "n_walkers": int(chain.shape[1]),
        "warnings": warnings,
    }
