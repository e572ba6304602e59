"""1-D intervals and 2-D HPD regions against known quantiles and areas."""

import numpy as np
import pytest
from scipy.stats import norm

from mflow_sbi.errors import InputError
from mflow_sbi.inference.credible import central_interval, hpd_interval, hpd_region_2d


@pytest.mark.parametrize("level", [0.68, 0.95])
def test_gaussian_intervals(level):
    """N(1, 2^2), 200k samples. Margins from 40 seeds: the central endpoints are within 0.028 of the truth
    (quantile standard error 0.007-0.012; tolerance 0.06); the HPD interval of a symmetric density has a
    flat length around its optimum, so its endpoints wander (up to 0.10) while its length (relative error
    <= 0.005; tolerance 0.015) and its true content (|content - level| <= 0.002; tolerance 0.006) do not."""
    samples = np.random.default_rng(0).normal(1.0, 2.0, 200_000)
    half = 2.0 * norm.ppf(0.5 + level / 2)
    np.testing.assert_allclose(central_interval(samples, level), (1.0 - half, 1.0 + half), atol=0.06)
    low, high = hpd_interval(samples, level)
    assert (high - low) / (2 * half) == pytest.approx(1.0, abs=0.015)
    assert norm.cdf(high, 1.0, 2.0) - norm.cdf(low, 1.0, 2.0) == pytest.approx(level, abs=0.006)
    np.testing.assert_allclose((low, high), (1.0 - half, 1.0 + half), atol=0.25)


def test_hpd_of_skewed_distribution_is_shortest_not_central():
    """Exp(1), 200k samples: HPD [0, -log 0.1], central [-log 0.95, -log 0.05]. Standard errors of the
    sample quantiles: 0.3% (upper HPD end) and 1% (the 5% quantile) relative; over seeds 0-29 the worst
    were 0.5% and 2.1%, so the tolerances are 1.5% and 5%; the HPD's lower end was always below 2e-5."""
    samples = np.random.default_rng(1).exponential(1.0, 200_000)
    low, high = hpd_interval(samples, 0.9)
    assert low == pytest.approx(0.0, abs=1e-3) and high == pytest.approx(-np.log(0.1), rel=0.015)
    c_low, c_high = central_interval(samples, 0.9)
    assert c_low == pytest.approx(-np.log(0.95), rel=0.05) and c_high - c_low > high - low


def test_2d_gaussian_hpd_region_area_and_content():
    level = 0.95
    rng = np.random.default_rng(2)
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    samples = np.column_stack([rng.normal(size=30_000), rng.multivariate_normal([1, 2], cov, 30_000)])
    region = hpd_region_2d(samples, level, parameters=(1, 2), rng=rng)
    # the HPD region of N(mu, C) is the ellipse of Mahalanobis radius^2 = chi2_2 quantile = -2 log(1 - level)
    analytic_area = np.pi * (-2 * np.log(1 - level)) * np.sqrt(np.linalg.det(cov))
    assert region.area() == pytest.approx(analytic_area, rel=0.04)
    fresh = rng.multivariate_normal([1, 2], cov, 5000)
    assert region.contains(fresh).mean() == pytest.approx(level, abs=0.015)
    assert region.contains(np.array([1.0, 2.0])) is True
    assert region.contains(np.array([4.0, 2.0])) is False  # Mahalanobis distance ~ 4.8


def test_bad_inputs():
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        hpd_interval(np.arange(10.0), 1.0)
    with pytest.raises(InputError, match="NaN"):
        central_interval(np.array([0.0, np.nan, 1.0]), 0.5)
    with pytest.raises(InputError, match="two different columns"):
        hpd_region_2d(np.zeros((100, 2)), 0.9, parameters=(0, 0))
