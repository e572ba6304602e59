"""SLCP: the likelihood against scipy's bivariate normal, samples against the moments, the four-fold symmetry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from mflow_sbi.errors import InputError
from mflow_sbi.simulators import get_simulator


def _covariance(theta: np.ndarray) -> np.ndarray:
    s1, s2, rho = theta[2] ** 2, theta[3] ** 2, np.tanh(theta[4])
    return np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])


def test_log_likelihood_matches_scipy_bivariate_normal():
    sim = get_simulator("slcp")
    rng = np.random.default_rng(0)
    # scales >= 0.25 and |rho| <= 0.96: scipy refuses near-singular covariances, which the prior also holds
    theta = rng.uniform([-3, -3, 0.5, 0.5, -2], [3, 3, 3, 3, 2], (20, 5)) * rng.choice([-1, 1], (20, 5))
    x = sim.sample(theta, 20, rng)
    expected = [sum(multivariate_normal(t[:2], _covariance(t)).logpdf(pair) for pair in row.reshape(4, 2))
                for row, t in zip(x, theta, strict=True)]
    np.testing.assert_allclose(sim.log_likelihood(x, theta), expected, rtol=1e-10, atol=1e-10)


def test_samples_have_the_stated_mean_and_covariance():
    """Pooled over the 4 draws of 50,000 events: mean and covariance within 5 standard errors."""
    sim = get_simulator("slcp")
    theta = np.array([0.7, -1.1, 1.3, -0.9, 0.6])
    pairs = sim.sample(theta, 50_000, np.random.default_rng(1)).reshape(-1, 2)
    covariance = _covariance(theta)
    n = len(pairs)
    assert np.all(np.abs(pairs.mean(axis=0) - theta[:2]) < 5 * np.sqrt(np.diag(covariance) / n))
    empirical = np.cov(pairs.T)
    standard_error = np.sqrt((covariance**2 + np.outer(np.diag(covariance), np.diag(covariance))) / n)
    assert np.all(np.abs(empirical - covariance) < 5 * standard_error)


def test_four_symmetric_modes():
    """Flipping the signs of theta_3 and theta_4 leaves the likelihood unchanged; mode_of tells them apart."""
    sim = get_simulator("slcp")
    rng = np.random.default_rng(2)
    theta = np.array([0.2, 0.4, 1.1, 0.8, -0.5])
    x = sim.sample(theta, 10, rng)
    flips = np.array([[1, 1, s3, s4, 1] for s3 in (-1, 1) for s4 in (-1, 1)], dtype=float)
    values = np.array([sim.log_likelihood(x, theta * flip) for flip in flips])
    np.testing.assert_allclose(values, values[[0]].repeat(4, axis=0), rtol=1e-12)
    assert sim.mode_of(theta * flips).tolist() == [0, 1, 2, 3]
    assert not np.allclose(sim.log_likelihood(x, theta * [1, -1, 1, 1, 1]), values[0])  # theta_2's sign matters


def test_data_fill_the_space_and_options():
    sim = get_simulator("slcp", n_draws=3)
    x = sim.sample(np.ones(5), 7, np.random.default_rng(3))
    assert x.shape == (7, 6) and sim.manifold_dim == sim.data_dim == 6
    np.testing.assert_array_equal(sim.distance_to_manifold(x), np.zeros(7))
    assert np.all(sim.log_likelihood(x, np.array([0, 0, 0, 1, 0.0])) == -np.inf)  # a zero scale
    with pytest.raises(InputError, match="n_draws"):
        get_simulator("slcp", n_draws=0)
