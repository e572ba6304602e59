"""C2ST and MMD^2 on sample sets with known answers."""

import numpy as np
import pytest
from scipy.stats import norm

from mflow_sbi.errors import InputError
from mflow_sbi.inference.metrics import c2st, median_bandwidth, mmd2

# Spread of c2st over 20 seeds (data seed 100 + s, classifier seed s; scikit-learn 1.9, n = 200 per set, 1-D):
#   identical N(0, 1) sets:   mean 0.480, sd 0.032, range [0.435, 0.568]
#   shift 1 (Bayes Phi(1/2) = 0.691): mean 0.678, sd 0.023, range [0.638, 0.720]
#   shift 10:                 1.000 in every seed
# The margins below are ~4 sd of those spreads (plus the small negative bias of cross-validated accuracy),
# so they hold for any CPU's rounding; the negative controls show they still separate the cases.
CHANCE_MARGIN = 0.12
BAYES_MARGIN = 0.08


def _pair(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1)), rng.normal(size=(n, 1)) + shift


def test_c2st_same_distribution_is_chance_and_disjoint_is_one():
    a, b = _pair(200, 0.0, 100)
    assert c2st(a, b, seed=1) == pytest.approx(0.5, abs=CHANCE_MARGIN)
    a, b = _pair(100, 10.0, 101)
    assert c2st(a, b, seed=1) > 0.98
    # 2-D, the width of the hidden layers follows dim (20 x 20): a shift of 10 is still fully separable
    rng = np.random.default_rng(0)
    assert c2st(rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 10.0, seed=1) > 0.98


def test_c2st_known_shift_is_near_bayes_accuracy():
    """N(0, 1) vs N(delta, 1), equal sizes: the Bayes-optimal accuracy is Phi(delta / 2)."""
    accuracy = c2st(*_pair(200, 1.0, 102), seed=2)
    assert accuracy == pytest.approx(norm.cdf(0.5), abs=BAYES_MARGIN)
    # negative controls: a shift of 1 is outside the chance band, a shift of 2 (Phi(1) = 0.84) outside this band
    assert abs(accuracy - 0.5) > CHANCE_MARGIN
    a, b = _pair(200, 2.0, 103)
    assert abs(c2st(a, b, seed=2) - norm.cdf(0.5)) > BAYES_MARGIN


def test_c2st_follows_the_sbibm_recipe():
    """Same numbers as the recipe written out with scikit-learn: z-score by the reference (ddof=1), MLP
    (10 dim, 10 dim) relu/adam/max_iter 10000/random_state=seed, KFold(5, shuffle, seed), mean accuracy."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    a, b = _pair(150, 0.7, 104)
    a = a * 3.0 + 5.0  # z-scoring by the reference matters
    b = b * 3.0 + 5.0
    z = (np.concatenate([a, b]) - a.mean(0)) / a.std(0, ddof=1)
    labels = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    clf = MLPClassifier(hidden_layer_sizes=(10, 10), activation="relu", solver="adam", max_iter=10000, random_state=4)
    expected = cross_val_score(clf, z, labels, cv=KFold(5, shuffle=True, random_state=4), scoring="accuracy").mean()
    assert c2st(a, b, seed=4) == pytest.approx(expected, abs=1e-12)


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
