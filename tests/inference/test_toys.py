"""Toy-based expected limits against a Gaussian mean, where every toy quantity has a closed form.

N events x_i ~ N(theta, 1): log L(theta) = -1/2 sum (x_i - theta)^2 + const, so q(theta) = N (xbar - theta)^2
exactly, with xbar ~ N(theta_0, 1/N) under toys at theta_0. Hence q_t(theta_0) ~ chi^2_1 (the Wilks region covers
theta_0 with probability exactly its level), q_t(theta) ~ noncentral chi^2_1 with lambda = N (theta - theta_0)^2,
and the end points of the level-alpha interval xbar -+ z / sqrt(N) are Gaussian with spread 1 / sqrt(N). The
margins are four binomial / sample-quantile standard errors for T toys (plus the grid's interpolation error).
"""

import numpy as np
import pytest
from scipy import stats

from mflow_sbi.errors import InputError
from mflow_sbi.inference.limits import GridAxis
from mflow_sbi.inference.toys import QUANTILES, toy_limits

N, THETA_0, T = 20, 0.3, 300


def gaussian_toys(n_toys=T, seed=0, levels=(0.68, 0.95), n_events=None):
    def likelihood_of(events, n):
        return lambda theta: -0.5 * ((events[None, :] - theta[:, :1]) ** 2).sum(axis=1)

    return toy_limits(likelihood_of, lambda n, rng: rng.normal(THETA_0, 1.0, n),
                      [GridAxis("theta", np.linspace(-1.5, 2.1, 361))], [THETA_0], n_toys=n_toys,
                      n_events=n_events or (lambda rng: N), levels=levels, seed=seed)


@pytest.fixture(scope="module")
def toys():
    """T toys, computed once for the three closed-form checks."""
    return gaussian_toys()


def test_coverage_is_the_level_for_a_gaussian_mean(toys):
    for level, c in toys.coverage.items():
        assert abs(c["fraction"] - level) < 4 * np.sqrt(level * (1 - level) / T)
        assert c["stderr"] == pytest.approx(np.sqrt(c["fraction"] * (1 - c["fraction"]) / T))
    assert toys.n_events == [N] * T and toys.empty == {"theta": {0.68: 0, 0.95: 0}}


def test_end_points_follow_their_gaussian_distribution(toys):
    s = 1 / np.sqrt(N)
    for level in (0.68, 0.95):
        half = np.sqrt(stats.chi2.ppf(level, 1)) * s
        for side, centre in (("lower", THETA_0 - half), ("upper", THETA_0 + half)):
            for q, value in zip(QUANTILES, toys.endpoints["theta"][level][side], strict=True):
                z = stats.norm.ppf(q)
                error = np.sqrt(q * (1 - q) / T) / stats.norm.pdf(z) * s
                assert abs(value - (centre + z * s)) < 4 * error + 0.01, (level, side, q)


def test_profile_bands_are_noncentral_chi2_quantiles(toys):
    axis, bands = toys.axes[0], toys.profile_quantiles["theta"]
    assert bands.shape == (len(QUANTILES), len(axis))
    for theta in (THETA_0, THETA_0 + 0.2, THETA_0 - 0.5):
        i = int(np.argmin(np.abs(axis - theta)))
        lam = N * (axis[i] - THETA_0) ** 2
        for q, value in zip(QUANTILES, bands[:, i], strict=True):
            cdf = stats.ncx2.cdf(value, 1, lam) if lam > 0 else stats.chi2.cdf(value, 1)
            assert abs(cdf - q) < 4 * np.sqrt(q * (1 - q) / T) + 0.01, (theta, q)


def test_toys_are_reproducible_and_independent_of_their_number():
    a, b = gaussian_toys(n_toys=20, seed=3), gaussian_toys(n_toys=20, seed=3)
    assert np.array_equal(a.profile_quantiles["theta"], b.profile_quantiles["theta"])
    assert a.endpoints != gaussian_toys(n_toys=20, seed=4).endpoints
    longer = gaussian_toys(n_toys=21, seed=3)
    assert longer.profile_quantiles["theta"].shape == a.profile_quantiles["theta"].shape
    assert a.to_dict()["n_toys"] == 20 and set(a.arrays()) == {"toy_quantiles", "q_toys_theta"}


def test_poisson_numbers_of_events_and_bad_settings():
    toys = gaussian_toys(n_toys=50, n_events=lambda rng: int(rng.poisson(N)))
    assert len(set(toys.n_events)) > 3 and abs(np.mean(toys.n_events) - N) < 4 * np.sqrt(N / 50)
    with pytest.raises(InputError, match="at least 2 toys"):
        gaussian_toys(n_toys=1)
    with pytest.raises(InputError, match="at least one"):
        gaussian_toys(n_toys=2, n_events=lambda rng: 0)
