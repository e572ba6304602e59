"""Distances between two sample sets, for comparing posteriors (e.g. a learned one with the exact one).

- C2ST (classifier two-sample test, following the sbibm recipe of Lueckmann et al. 2021): z-score both sets
  with the mean and standard deviation of the first, train an MLP (two hidden layers of 10 x dim ReLU
  units, Adam) to tell them apart, and report the mean 5-fold cross-validated accuracy. 0.5 means
  indistinguishable, 1.0 fully separable.
- Squared maximum mean discrepancy with the Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 h^2)), unbiased
  U-statistic (Gretton et al. 2012, eq. 3):
      MMD^2 = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j),
  with h the median pairwise distance of the pooled samples unless given.
"""

from __future__ import annotations

import numpy as np
import torch

from mflow_sbi.errors import InputError
from mflow_sbi.threads import torch_threads

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
def _classifier(dim: int) -> torch.nn.Module:
    width = 10 * dim
    return torch.nn.Sequential(
        torch.nn.Linear(dim, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 1),
    )


def _fold_accuracy(train_x, train_y, test_x, test_y, seed: int, max_epochs: int, batch_size: int) -> float:
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _classifier(train_x.shape[1])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, stale = np.inf, 0
    for _ in range(max_epochs):
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(net(train_x[index]).squeeze(1), train_y[index])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        total /= len(order)
        # sklearn's MLPClassifier rule: stop after 10 epochs without a training-loss improvement of 1e-4
        if total > best - 1e-4:
            stale += 1
            if stale >= 10:
                break
        else:
            stale = 0
        best = min(best, total)
    with torch.no_grad():
        predicted = net(test_x).squeeze(1) > 0
    return float((predicted == (test_y > 0.5)).float().mean())


def c2st(x: np.ndarray, y: np.ndarray, seed: int = 0, n_folds: int = 5, max_epochs: int = 200,
         batch_size: int = 200) -> float:
    """Mean cross-validated accuracy of an MLP separating samples ``x`` (label 0) from ``y`` (label 1)."""
    x, y = _check_pair(x, y)
    if n_folds < 2:
        raise InputError(f"n_folds must be >= 2, got {n_folds}")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    features = torch.as_tensor((np.concatenate([x, y]) - mean) / std, dtype=torch.float32)
    labels = torch.cat([torch.zeros(len(x)), torch.ones(len(y))])
    folds = np.array_split(np.random.default_rng(seed).permutation(len(features)), n_folds)
    scores = []
    with torch_threads(1):  # a tiny MLP trains several times faster without intra-op threading
        for k, test in enumerate(folds):
            train = torch.as_tensor(np.concatenate([f for j, f in enumerate(folds) if j != k]))
            test = torch.as_tensor(test)
            scores.append(_fold_accuracy(features[train], labels[train], features[test], labels[test],
                                         seed + k, max_epochs, batch_size))
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
