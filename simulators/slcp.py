"""SLCP ("simple likelihood, complex posterior"; Papamakarios, Sterratt & Murray 2019, sec. 5.2; the sbibm task
"slcp" of Lueckmann et al. 2021): five parameters, an exact Gaussian likelihood, a posterior with four
symmetric modes.

For theta = (theta_1, ..., theta_5) with the prior U(-3, 3)^5, the data are n_draws (4) independent draws
of a two-dimensional Gaussian, flattened to x in R^(2 n_draws) (x = (a_1, b_1, a_2, b_2, ...)):

    m = (theta_1, theta_2),   s_1 = theta_3^2,   s_2 = theta_4^2,   rho = tanh(theta_5),
    (a_j, b_j) ~ N(m, [[s_1^2, rho s_1 s_2], [rho s_1 s_2, s_2^2]])   (s_1, s_2 are standard deviations).

Exact density, with z_1 = (a - m_1) / s_1, z_2 = (b - m_2) / s_2 and Q = z_1^2 - 2 rho z_1 z_2 + z_2^2:

    log p(x|theta) = sum_j [ -log(2 pi) - log s_1 - log s_2 - log(1 - rho^2) / 2 - Q_j / (2 (1 - rho^2)) ].

The likelihood depends on theta_3 and theta_4 only through their squares, so the posterior is symmetric
under theta_3 -> -theta_3 and theta_4 -> -theta_4: four modes of exactly equal mass (25% each), one per sign
pattern of (theta_3, theta_4) (``mode_of``). The data fill R^8 (no lower-dimensional manifold):
``manifold_dim`` is ``data_dim`` and ``distance_to_manifold`` is zero.
"""

from __future__ import annotations

import math

import numpy as np

from mflow_sbi.errors import InputError
from mflow_sbi.priors import box_uniform

from .base import broadcast_theta, check_x

PRIOR_HALF_WIDTH = 3.0


class SLCP:
    """Four iid two-dimensional Gaussian draws with theta-dependent mean, scales and correlation."""

    name = "slcp"
    parameter_names = ("theta_1", "theta_2", "theta_3", "theta_4", "theta_5")
    parameter_labels = tuple(rf"$\theta_{k}$" for k in range(1, 6))

    def __init__(self, n_draws: int = 4) -> None:
        if n_draws < 1:
            raise InputError(f"slcp needs n_draws >= 1, got {n_draws}")
        self.n_draws = int(n_draws)
        self.data_dim = 2 * self.n_draws
        self.manifold_dim = self.data_dim
        self.prior = box_uniform([-PRIOR_HALF_WIDTH] * 5, [PRIOR_HALF_WIDTH] * 5)

    @staticmethod
    def _moments(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(means (n, 2), s_1 (n,), s_2 (n,), rho (n,)) of the per-draw Gaussian."""
        return theta[:, :2], theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        theta = broadcast_theta(theta, n, 5)
        means, s1, s2, rho = self._moments(theta)
        e1 = rng.standard_normal((n, self.n_draws))
        e2 = rng.standard_normal((n, self.n_draws))
        a = means[:, :1] + s1[:, None] * e1
        b = means[:, 1:] + s2[:, None] * (rho[:, None] * e1 + np.sqrt(1.0 - rho**2)[:, None] * e2)
        return np.stack([a, b], axis=2).reshape(n, self.data_dim)

    def _standardized(self, x: np.ndarray, theta: np.ndarray):
        x = check_x(x, self.data_dim)
        theta = broadcast_theta(theta, len(x), 5)
        means, s1, s2, rho = self._moments(theta)
        pairs = x.reshape(len(x), self.n_draws, 2)
        z1 = (pairs[:, :, 0] - means[:, :1]) / s1[:, None]
        z2 = (pairs[:, :, 1] - means[:, 1:]) / s2[:, None]
        return theta, s1, s2, rho, z1, z2

    def log_likelihood(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Exact log p(x|theta) (module docstring); -inf where theta_3 or theta_4 is 0 (a zero scale)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            _, s1, s2, rho, z1, z2 = self._standardized(x, theta)
            one_minus = 1.0 - rho**2
            quadratic = (z1**2 - 2.0 * rho[:, None] * z1 * z2 + z2**2).sum(axis=1)
            value = self.n_draws * (-math.log(2 * math.pi) - np.log(s1) - np.log(s2) - 0.5 * np.log(one_minus))
            value = value - 0.5 * quadratic / one_minus
        return np.where(np.isfinite(value), value, -np.inf)

    def joint_score(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Exact grad_theta log p(x|theta), shape (n, 5): with r = 1 - rho^2, per draw

            d/dm_1 = (z_1 - rho z_2) / (s_1 r),   d/dm_2 = (z_2 - rho z_1) / (s_2 r),
            d/ds_1 = (-1 + (z_1^2 - rho z_1 z_2) / r) / s_1   (likewise s_2),
            d/drho = rho / r + z_1 z_2 / r - Q rho / r^2,

        chained with ds_k/dtheta = 2 theta and drho/dtheta_5 = r.
        """
        theta, s1, s2, rho, z1, z2 = self._standardized(x, theta)
        r = (1.0 - rho**2)[:, None]
        rho = rho[:, None]
        quadratic = z1**2 - 2.0 * rho * z1 * z2 + z2**2
        d_m1 = ((z1 - rho * z2) / r).sum(axis=1) / s1
        d_m2 = ((z2 - rho * z1) / r).sum(axis=1) / s2
        d_s1 = (-1.0 + (z1**2 - rho * z1 * z2) / r).sum(axis=1) / s1
        d_s2 = (-1.0 + (z2**2 - rho * z1 * z2) / r).sum(axis=1) / s2
        d_rho = (rho / r + z1 * z2 / r - quadratic * rho / r**2).sum(axis=1)
        return np.stack([d_m1, d_m2, d_s1 * 2 * theta[:, 2], d_s2 * 2 * theta[:, 3], d_rho * r[:, 0]], axis=1)

    def distance_to_manifold(self, x: np.ndarray) -> np.ndarray:
        """Zero: the data fill R^(2 n_draws)."""
        return np.zeros(len(check_x(x, self.data_dim)))

    @staticmethod
    def mode_of(theta: np.ndarray) -> np.ndarray:
        """Mode index 0..3 of each parameter point (n, 5): 2 [theta_3 > 0] + [theta_4 > 0]."""
        theta = np.atleast_2d(theta)
        return 2 * (theta[:, 2] > 0).astype(int) + (theta[:, 3] > 0).astype(int)
