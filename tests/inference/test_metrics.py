"""C2ST and MMD^2 on sample sets with known answers."""

import numpy as np
import pytest

from mflow_sbi.errors import InputError
from mflow_sbi.inference.metrics import c2st, median_bandwidth, mmd2


def test_c2st_same_distribution_is_chance_and_disjoint_is_one():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    assert c2st(a, b, seed=1) == pytest.approx(0.5, abs=0.06)
    assert c2st(a, b + np.array([10.0, 0.0]), seed=1) > 0.98


def test_c2st_is_reproducible():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(100, 2)), rng.normal(0.5, 1.0, size=(100, 2))
    assert c2st(a, b, seed=3, max_epochs=20) == c2st(a, b, seed=3, max_epochs=20)


def test_mmd2_matches_gaussian_closed_form():
    # P = N(0, s^2 I_d), Q = N(delta, s^2 I_d), kernel exp(-|a-b|^2 / (2 h^2)):
    # MMD^2 = 2 (h^2 / (h^2 + 2 s^2))^(d/2) (1 - exp(-|delta|^2 / (2 (h^2 + 2 s^2))))
    rng = np.random.default_rng(2)
    d, s, h, delta = 2, 1.0, 1.0, np.array([1.0, 0.0])
    x, y = rng.normal(0, s, size=(2000, d)), delta + rng.normal(0, s, size=(2000, d))
    scale = h**2 + 2 * s**2
    expected = 2 * (h**2 / scale) ** (d / 2) * (1 - np.exp(-delta @ delta / (2 * scale)))
    assert mmd2(x, y, bandwidth=h) == pytest.approx(expected, abs=0.02)  # estimator sd ~ 0.0065 here
    same = mmd2(x, rng.normal(0, s, size=(2000, d)), bandwidth=h)
    assert abs(same) < 0.005


def test_median_bandwidth_and_default():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 1))
    # median |X - X'| for X, X' ~ N(0, 1) iid: sqrt(2) * 0.6745
    assert median_bandwidth(x, rng.normal(size=(400, 1))) == pytest.approx(np.sqrt(2) * 0.6745, rel=0.08)
    assert mmd2(x, x + 5.0) > 0.5


def test_metric_inputs_are_checked():
    with pytest.raises(InputError, match="same dim"):
        mmd2(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(InputError, match="NaN"):
        c2st(np.full((5, 1), np.nan), np.zeros((5, 1)))
