"""The posterior benchmark's ESS of sbi-ordered samples (chain after chain) against the AR(1) truth."""

from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.bench_posterior import chain_ess


def ar1_chains(n_chains: int, steps: int, rho: float, seed: int) -> np.ndarray:
    """(n_chains, steps) stationary AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t."""
    rng = np.random.default_rng(seed)
    chains = np.empty((n_chains, steps))
    chains[:, 0] = rng.standard_normal(n_chains)
    noise = np.sqrt(1 - rho**2) * rng.standard_normal((n_chains, steps))
    for t in range(1, steps):
        chains[:, t] = rho * chains[:, t - 1] + noise[:, t]
    return chains


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_chain_ess_matches_ar1_autocorrelation_time(rho):
    chains, steps = 20, 2000
    flat = ar1_chains(chains, steps, rho, seed=3).reshape(-1, 1)  # sbi's order: chain after chain
    result = chain_ess(SimpleNamespace(num_chains=chains), flat)
    tau = (1 + rho) / (1 - rho)  # integrated autocorrelation time of AR(1)
    assert result["autocorrelation_time"][0] == pytest.approx(tau, rel=0.15)
    assert result["ess"] == pytest.approx(chains * steps / tau, rel=0.15)


def test_chain_ess_reports_uneven_split():
    result = chain_ess(SimpleNamespace(num_chains=3), np.zeros((10, 1)))
    assert result["ess"] is None and "3 equal chains" in result["ess_note"]
