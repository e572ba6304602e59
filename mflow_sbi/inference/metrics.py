"""Distances between two sample sets, for comparing posteriors (e.g. a learned one with the exact one).

- C2ST (classifier two-sample test, the sbibm recipe of Lueckmann et al. 2021, so that numbers compare with
  published ones): z-score both sets with the mean and standard deviation of the first, train
  scikit-learn's MLPClassifier (two hidden layers of 10 x dim ReLU units, Adam, max_iter 10000) to tell
  them apart, and report the mean 5-fold (shuffled KFold) cross-validated accuracy. 0.5 means
  indistinguishable, 1.0 fully separable.
- Squared maximum mean discrepancy with the Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 h^2)), unbiased
  U-statistic (Gretton et al. 2012, eq. 3):
      MMD^2 = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j),
  with h the median pairwise distance of the pooled samples unless given.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from mflow_sbi.errors import InputError

C2ST_MAX_ITER = 10000
MEDIAN_SUBSAMPLE = 1000
BLOCK = 2048


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise InputError(f"sample sets must be (n, dim) and (m, dim) with the same dim, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise InputError(f"need at least 2 samples in each set, got {len(x)} and {len(y)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("sample sets contain NaN or infinite values")
    return x, y


# --- C2ST -------------------------------------------------------------------------------------------
def c2st(x: np.ndarray, y: np.ndarray, seed: int = 0, n_folds: int = 5, max_epochs: int = C2ST_MAX_ITER,
         batch_size: int | None = None) -> float:
    """Mean cross-validated accuracy of an MLP separating samples ``x`` (label 0, the reference) from ``y``
    (label 1), the sbibm recipe (Lueckmann et al. 2021):

    - both sets z-scored with the mean and (ddof=1) standard deviation of ``x``;
    - scikit-learn ``MLPClassifier(hidden_layer_sizes=(10 dim, 10 dim), activation="relu", solver="adam",
      max_iter=max_epochs (10000), random_state=seed)``, all other options at scikit-learn's defaults
      (``batch_size=None`` is its "auto", min(200, n));
    - ``KFold(n_folds (5), shuffle=True, random_state=seed)`` and the mean of ``cross_val_score`` accuracies.

    scikit-learn's BLAS runs on one thread here (the classifier is tiny; threads only add overhead).
    """
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    x, y = _check_pair(x, y)
    if n_folds < 2:
        raise InputError(f"n_folds must be >= 2, got {n_folds}")
    mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
    std = np.where(std > 0, std, 1.0)  # a constant reference coordinate would divide by zero
    features = (np.concatenate([x, y]) - mean) / std
    labels = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    width = 10 * x.shape[1]
    classifier = MLPClassifier(hidden_layer_sizes=(width, width), activation="relu", solver="adam",
                               max_iter=int(max_epochs), random_state=seed,
                               batch_size="auto" if batch_size is None else int(batch_size))
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # only reachable with a small max_epochs
        scores = cross_val_score(classifier, features, labels, cv=folds, scoring="accuracy")
    return float(np.mean(scores))


# --- MMD --------------------------------------------------------------------------------------------
def median_bandwidth(x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None = None) -> float:
    """Median pairwise Euclidean distance of the pooled samples (on a subsample of at most 1000 points)."""
    pooled = np.concatenate(_check_pair(x, y))
    rng = np.random.default_rng(0) if rng is None else rng
    if len(pooled) > MEDIAN_SUBSAMPLE:
        pooled = pooled[rng.choice(len(pooled), MEDIAN_SUBSAMPLE, replace=False)]
    points = torch.as_tensor(pooled)
    distances = torch.cdist(points, points)
    upper = torch.triu_indices(len(pooled), len(pooled), offset=1)
    return float(torch.median(distances[upper[0], upper[1]]))


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> float:
    total = 0.0
    for start in range(0, len(a), BLOCK):
        squared = torch.cdist(a[start : start + BLOCK], b) ** 2
        total += float(torch.exp(-squared / (2 * bandwidth**2)).sum())
    return total


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD between samples ``x`` (n, dim) and ``y`` (m, dim) with a Gaussian kernel."""
    x, y = _check_pair(x, y)
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise InputError(f"kernel bandwidth must be positive, got {h}")
    a, b = torch.as_tensor(x), torch.as_tensor(y)
    n, m = len(a), len(b)
    xx = (_kernel_sum(a, a, h) - n) / (n * (n - 1))  # the diagonal holds n ones
    yy = (_kernel_sum(b, b, h) - m) / (m * (m - 1))
    xy = _kernel_sum(a, b, h) / (n * m)
    return float(xx + yy - 2 * xy)


def subsampled_mmd2(x: np.ndarray, y: np.ndarray, max_points: int = 2000, seed: int = 0) -> float:
    """:func:`mmd2` between at most ``max_points`` random draws (without replacement) of each sample set.

    The U-statistic costs O((n + m)^2) kernel evaluations; MCMC sample sets of 10^5 points are subsampled.
    """
    rng = np.random.default_rng(seed)

    def draws(values: np.ndarray) -> np.ndarray:
        return values[rng.choice(len(values), size=min(max_points, len(values)), replace=False)]

    return mmd2(draws(np.asarray(x)), draws(np.asarray(y)))
