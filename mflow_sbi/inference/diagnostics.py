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

- Prior boundaries: the share of samples within ``BOUNDARY_BAND`` (2%) of the prior range of each finite bound.

Warnings are raised (as strings) when the chain is shorter than ``MIN_TAU_MULTIPLE`` tau, the mean
acceptance is outside ``ACCEPTANCE_RANGE``, walkers are stuck, R-hat exceeds ``MAX_RHAT``, or a prior bound
holds more than ``BOUNDARY_PILE`` times a flat posterior's share (the posterior is cut off by the prior).
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
# Prior-boundary check: the share of samples within BOUNDARY_BAND of the prior range of a bound, warned above
# BOUNDARY_PILE times the share of a flat posterior (i.e. above 10%).
BOUNDARY_BAND = 0.02
BOUNDARY_PILE = 5.0


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


def pooled_autocorrelation_time(chain: np.ndarray, window: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time per parameter, shape (p,), in steps (at least 1; inf where the chain
    does not vary), centred on the mean over all walkers and steps.

    With x_tw the chain minus its grand mean, the autocorrelation function rho(s) = sum_w sum_t x_tw
    x_(t+s)w / sum_w sum_t x_tw^2 is averaged over walkers and tau = 1 + 2 sum_{s=1}^{M} rho(s), with M the
    smallest lag with M >= ``window`` x tau(M) (Sokal's window). :func:`autocorrelation_time` centres each walker
    on its own mean, which on a chain of a few autocorrelation times removes most of the slow correlation: on
    100 steps of an AR(1) chain with tau = 39 it estimates 8, this estimator 24-27. On short chains (the
    adaptive burn-in, sampler.py) that bias would end the burn-in too early; a chain still drifting (walkers
    far from their stationary mean) reads as strongly correlated here, which is the conservative side."""
    chain = _check_chain(chain)
    steps = chain.shape[0]
    size = 1 << (2 * steps - 1).bit_length()
    tau = np.empty(chain.shape[2])
    for k in range(chain.shape[2]):
        x = chain[:, :, k] - chain[:, :, k].mean()
        spectrum = np.fft.rfft(x, n=size, axis=0)
        acf = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[:steps].sum(axis=1)
        if not acf[0] > 0:
            tau[k] = np.inf
            continue
        integrated = 2.0 * np.cumsum(acf / acf[0]) - 1.0
        inside = np.arange(steps) < window * integrated
        tau[k] = integrated[np.argmin(inside) if not inside.all() else steps - 1]
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


def boundary_mass(samples: np.ndarray, low: np.ndarray, high: np.ndarray, band: float = BOUNDARY_BAND) -> np.ndarray:
    """(p, 2): per parameter, the fraction of ``samples`` (M, p) within ``band`` x (high - low) of its lower and of
    its upper prior bound; NaN for unbounded sides. A posterior as flat as the prior puts ``band`` there."""
    samples = np.asarray(samples, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    width = np.where(np.isfinite(low) & np.isfinite(high), high - low, np.nan)
    near_low = np.mean(samples <= low + band * width, axis=0)
    near_high = np.mean(samples >= high - band * width, axis=0)
    return np.stack([np.where(np.isfinite(width), near_low, np.nan), np.where(np.isfinite(width), near_high, np.nan)], 1)


def boundary_warnings(fractions: np.ndarray, low: np.ndarray, high: np.ndarray, band: float = BOUNDARY_BAND) -> list[str]:
    """A warning per prior bound holding more than ``BOUNDARY_PILE`` x ``band`` of the posterior mass."""
    warnings = []
    for (k, side), fraction in np.ndenumerate(fractions):
        if np.isfinite(fraction) and fraction > BOUNDARY_PILE * band:
            edge = (low, high)[side][k]
            warnings.append(f"{fraction:.0%} of the posterior mass of parameter {k} lies within {band:.0%} of the prior "
                            f"range of its {('lower', 'upper')[side]} bound {edge:g} (a flat posterior puts {band:.0%} "
                            "there): the posterior is cut off by the prior; widen the prior if that is not physical")
    return warnings


def chain_diagnostics(chain: np.ndarray, acceptance: np.ndarray,
                      support: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """All diagnostics of a post-burn-in ``chain`` with per-walker ``acceptance``, plus warnings.

    Returns a JSON-serializable dict: acceptance_fraction (mean), acceptance_per_walker, autocorrelation_time,
    effective_sample_size (per parameter), min_effective_sample_size, split_rhat, stuck_walkers, n_steps,
    n_walkers, warnings; with the prior's ``support`` (low, high) also ``prior_boundary_mass`` (see
    :func:`boundary_mass`, warned above ``BOUNDARY_PILE`` x the flat share).
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
    extra = {}
    if support is not None:
        fractions = boundary_mass(chain.reshape(-1, chain.shape[2]), *support)
        warnings += boundary_warnings(fractions, *support)
        extra["prior_boundary_mass"] = [[None if not np.isfinite(v) else float(v) for v in row] for row in fractions]
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
        **extra,
    }
