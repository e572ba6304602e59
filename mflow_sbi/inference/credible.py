"""Credible intervals and regions estimated from posterior samples.

1-D:
- central interval at level q: the (1-q)/2 and (1+q)/2 quantiles;
- highest-posterior-density (HPD) interval at level q: the shortest interval [s_i, s_{i+m}] over the sorted
  samples that holds m + 1 = ceil(q M) of the M samples (exact HPD for unimodal marginals).

2-D (any pair of parameters): the HPD region at level q is {theta : p(theta) >= t_q}, with t_q chosen so the
region holds a fraction q of the posterior mass. p is estimated by a Gaussian kernel density estimate (KDE)
fitted on a subset A of the samples, and t_q is the (1 - q) quantile of the estimated density over a disjoint
(larger) subset B. For a Gaussian posterior the KDE contours are ellipses of the true shape (Scott's bandwidth is
proportional to the sample covariance), so the region is unbiased for both the mass and the area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import gaussian_kde

from mflow_sbi.errors import InputError

DEFAULT_LEVELS = (0.68, 0.95)
MAX_FIT_POINTS = 2000
MAX_THRESHOLD_POINTS = 10000


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise InputError(f"credibility level must lie strictly between 0 and 1, got {level}")
    return level


def _check_1d(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or samples.size < 2:
        raise InputError(f"need a 1-D array of at least 2 samples, got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise InputError("samples contain NaN or infinite values")
    return samples


def central_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Equal-tailed interval: the (1-level)/2 and (1+level)/2 sample quantiles."""
    level = _check_level(level)
    samples = _check_1d(samples)
    low, high = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def hpd_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Shortest interval holding a fraction ``level`` of the samples."""
    level = _check_level(level)
    ordered = np.sort(_check_1d(samples))
    width = max(1, math.ceil(level * ordered.size) - 1)
    spans = ordered[width:] - ordered[:-width]
    start = int(np.argmin(spans))
    return float(ordered[start]), float(ordered[start + width])


@dataclass
class HPDRegion2D:
    """HPD region {theta : kde(theta) >= threshold} of a 2-D marginal posterior."""

    kde: gaussian_kde
    threshold: float
    level: float
    parameters: tuple[int, int]
    bounds: tuple[tuple[float, float], tuple[float, float]]  # box holding the region (for its area)

    def density(self, points: np.ndarray) -> np.ndarray:
        """KDE density at ``points`` of shape (n, 2) or (2,)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if points.shape[-1] != 2:
            raise InputError(f"points must have shape (n, 2) or (2,), got {points.shape}")
        return self.kde(points.T)

    def contains(self, points: np.ndarray) -> np.ndarray | bool:
        """Whether each point lies inside the region; a bool for a single point of shape (2,)."""
        inside = self.density(points) >= self.threshold
        return bool(inside[0]) if np.ndim(points) == 1 else inside

    def grid(self, n: int = 200, bounds: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Density on an n x n grid over ``bounds`` ((x_lo, x_hi), (y_lo, y_hi)), by default the data range
        padded by 4 kernel widths: returns (xs, ys, density[iy, ix])."""
        if bounds is None:
            data = self.kde.dataset
            pad = 4.0 * np.sqrt(np.diag(self.kde.covariance))
            bounds = tuple((data[k].min() - pad[k], data[k].max() + pad[k]) for k in range(2))
        xs = np.linspace(*bounds[0], n)
        ys = np.linspace(*bounds[1], n)
        gx, gy = np.meshgrid(xs, ys)
        values = self.kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(n, n)
        return xs, ys, values

    def area(self, n: int = 160) -> float:
        """Area of the region: the fraction of grid points inside, times the area of the box ``bounds``."""
        _, _, values = self.grid(n, self.bounds)
        (x_lo, x_hi), (y_lo, y_hi) = self.bounds
        return float(np.mean(values >= self.threshold) * (x_hi - x_lo) * (y_hi - y_lo))


def hpd_region_2d(
    samples: np.ndarray,
    level: float,
    parameters: tuple[int, int] = (0, 1),
    rng: np.random.Generator | None = None,
    max_fit_points: int = MAX_FIT_POINTS,
    max_threshold_points: int = MAX_THRESHOLD_POINTS,
) -> HPDRegion2D:
    """KDE-based HPD region of the marginal of ``samples[:, parameters]`` at credibility ``level``.

    The KDE uses at most ``max_fit_points`` samples (at most half of them) and the threshold at most
    ``max_threshold_points`` of the others, so the cost stays bounded for large sample sets.
    """
    level = _check_level(level)
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] < 10:
        raise InputError(f"need samples of shape (M >= 10, p), got {samples.shape}")
    i, j = parameters
    if i == j or not (0 <= i < samples.shape[1] and 0 <= j < samples.shape[1]):
        raise InputError(f"parameters {parameters} must be two different columns of samples with {samples.shape[1]}")
    pair = samples[:, [i, j]]
    if not np.all(np.isfinite(pair)):
        raise InputError("samples contain NaN or infinite values")
    rng = np.random.default_rng(0) if rng is None else rng
    order = rng.permutation(len(pair))
    n_fit = min(max_fit_points, len(pair) // 2)
    fit, calib = pair[order[:n_fit]], pair[order[n_fit : n_fit + max_threshold_points]]
    kde = gaussian_kde(fit.T)
    density = kde(calib.T)
    threshold = float(np.quantile(density, 1.0 - level))
    inside = calib[density >= threshold]
    pad = np.sqrt(np.diag(kde.covariance))
    low, high = inside.min(axis=0) - pad, inside.max(axis=0) + pad
    bounds = ((float(low[0]), float(high[0])), (float(low[1]), float(high[1])))
    return HPDRegion2D(kde=kde, threshold=threshold, level=level, parameters=(i, j), bounds=bounds)
