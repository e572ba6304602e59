"""Exact LHC posterior for 20 events: a dense 2-D grid against emcee on the same exact likelihood."""

from __future__ import annotations

import emcee
import numpy as np
import pytest

from mflow_sbi.simulators.lhc import LHC

N_OBSERVED = 20


@pytest.fixture(scope="module")
def sim():
    return LHC()


def log_posterior_function(sim: LHC, x: np.ndarray):
    """theta (m, 2) -> log prior + sum_i log p(x_i|theta), with the observed events inverted once."""
    z = sim.latent(x)
    support = sim.in_support(x)

    def log_posterior(theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(theta)
        m = len(theta)
        rows = sim.latent_log_prob(np.tile(z, (m, 1)), np.repeat(theta, len(z), axis=0), np.tile(support, m))
        return sim.prior.log_prob(theta) + rows.reshape(m, len(z)).sum(axis=1)

    return log_posterior


@pytest.mark.parametrize("truth", [(0.0, 0.0), (0.5, 0.0), (-1.0, -1.0)])
def test_grid_posterior_agrees_with_emcee(sim, truth):
    x = sim.sample(np.array(truth), N_OBSERVED, np.random.default_rng(21))
    log_posterior = log_posterior_function(sim, x)

    axis = np.linspace(-4.0, 4.0, 161)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    log_p = log_posterior(grid)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    grid_mean = p @ grid
    grid_std = np.sqrt(p @ (grid - grid_mean) ** 2)
    edge = (np.abs(grid) > 3.9).any(axis=1)
    assert p[edge].sum() < 1e-4  # the grid covers the posterior
    assert np.all((grid_std > 0.1) & (grid_std < 1.0)), grid_std

    walkers, steps, burn_in = 32, 1500, 400
    rng = np.random.default_rng(22)
    sampler = emcee.EnsembleSampler(walkers, 2, log_posterior, vectorize=True)
    sampler.random_state = np.random.RandomState(23).get_state()
    start = grid_mean + 0.1 * rng.standard_normal((walkers, 2))
    sampler.run_mcmc(start, steps)
    chain = sampler.get_chain(discard=burn_in, flat=True)
    np.testing.assert_allclose(chain.mean(axis=0), grid_mean, atol=0.15 * grid_std.max())
    np.testing.assert_allclose(chain.std(axis=0), grid_std, rtol=0.15)
    for k in range(2):  # 68% central intervals
        cdf = np.cumsum(p.reshape(161, 161).sum(axis=1 - k))
        grid_interval = np.interp([0.16, 0.84], cdf, axis)
        np.testing.assert_allclose(np.quantile(chain[:, k], [0.16, 0.84]), grid_interval, atol=0.25 * grid_std[k])
