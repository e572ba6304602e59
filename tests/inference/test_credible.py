"""1-D intervals and 2-D HPD regions against known quantiles and areas."""

import numpy as np
import pytest
from scipy.stats import norm

from mflow_sbi.errors import InputError
from mflow_sbi.inference.credible import central_interval, hpd_interval, hpd_region_2d


@pytest.mark.parametrize("level", [0.68, 0.95])
def test_gaussian_intervals(level):
    samples = np.random.default_rng(0).normal(1.0, 2.0, 200_000)
    half = 2.0 * norm.ppf(0.5 + level / 2)
    for interval in (central_interval(samples, level), hpd_interval(samples, level)):
        np.testing.assert_allclose(interval, (1.0 - half, 1.0 + half), atol=0.03)


def test_hpd_of_skewed_distribution_is_shortest_not_central():
    samples = np.random.default_rng(1).exponential(1.0, 200_000)
    low, high = hpd_interval(samples, 0.9)
    assert low == pytest.approx(0.0, abs=1e-3) and high == pytest.approx(-np.log(0.1), rel=0.01)
    c_low, c_high = central_interval(samples, 0.9)
    assert c_low == pytest.approx(-np.log(0.95), rel=0.02) and c_high - c_low > high - low


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
