"""Conditional spherical Gaussian: a thick n-sphere embedded in R^d (Brehmer & Cranmer 2020, section 4.1).

Generative process for theta = (theta_0, theta_1) in [-1, 1]^2 (prior U(-1, 1)^2):

* n angles phi_0 .. phi_{n-1}, independent, phi_i ~ N(mu_i, w^2) wrapped to [0, 2 pi), with the width
  w(theta_0) = 0.1 pi + (0.5 + 0.5 theta_0) 0.3 pi, the last (azimuthal) mean
  mu_{n-1}(theta_1) = pi/2 + (0.5 + 0.5 theta_1) pi, and all other means pi/2;
* a radius r = 1 + N(0, eps^2);
* the point on the sphere in R^{n+1}, in hyperspherical coordinates

      y_k = r cos(phi_k) prod_{j<k} sin(phi_j)   (k < n),      y_n = r prod_{j<n} sin(phi_j),

  followed by d - n - 1 extra coordinates ~ N(0, eps^2).

Exact density. In canonical coordinates (rho = |y| > 0, polar angles in [0, pi], azimuth in [0, 2 pi)) the
volume element is rho^n prod_i |sin phi_i|^(n-1-i) d rho d phi, so

    log p(x|theta) = log sum_{(s, phi) -> y} N(s rho; 1, eps^2) prod_i WN(phi_i; mu_i, w)
                     - n log rho - sum_{i<n} (n-1-i) log|sin phi_i| + sum_extra log N(x_k; 0, eps^2),

where WN is the wrapped normal density sum_k N(phi + 2 pi k; mu, w^2) and the sum runs over every
(sign of r, angle tuple in [0, 2 pi)^n) that produces y: the sign s = -1 contributes through the antipodal
point, and each polar angle can be reflected, phi_i -> 2 pi - phi_i, together with phi_{i+1} -> phi_{i+1} + pi
(2^(n-1) angle tuples per point). This is a proper, normalized density on R^d (the public reference
implementation uses n |r| in place of n log r, which is not).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import logsumexp

from mflow_sbi.errors import InputError
from mflow_sbi.priors import box_uniform

from .base import broadcast_theta, check_x

TWO_PI = 2.0 * np.pi
WRAPS = np.arange(-3, 4)  # 2 pi k shifts kept in the wrapped normal; w <= 0.4 pi, so |k| = 4 is > 15 sigma away


def angle_width(theta_0: np.ndarray) -> np.ndarray:
    """w(theta_0) = 0.1 pi + (0.5 + 0.5 theta_0) 0.3 pi."""
    return 0.1 * np.pi + (0.5 + 0.5 * np.asarray(theta_0, dtype=np.float64)) * 0.3 * np.pi


def azimuth_mean(theta_1: np.ndarray) -> np.ndarray:
    """mu_{n-1}(theta_1) = pi/2 + (0.5 + 0.5 theta_1) pi."""
    return 0.5 * np.pi + (0.5 + 0.5 * np.asarray(theta_1, dtype=np.float64)) * np.pi


DWIDTH_DTHETA0 = 0.15 * np.pi
DMEAN_DTHETA1 = 0.5 * np.pi


def spherical_to_cartesian(radius: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(n,) radii and (n, m) angles -> (n, m + 1) points in hyperspherical coordinates."""
    sines = np.cumprod(np.sin(angles), axis=1)
    leading = np.concatenate([np.ones((len(angles), 1)), sines[:, :-1]], axis=1) * np.cos(angles)
    return radius[:, None] * np.concatenate([leading, sines[:, -1:]], axis=1)


def cartesian_to_spherical(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m + 1) points -> radius (n,) and canonical angles (n, m): polar in [0, pi], azimuth in [0, 2 pi)."""
    tail_norms = np.sqrt(np.cumsum(y[:, ::-1] ** 2, axis=1)[:, ::-1])  # |y[k:]| for k = 0..m
    polar = np.arctan2(tail_norms[:, 1:-1], y[:, :-2])
    azimuth = np.mod(np.arctan2(y[:, -1], y[:, -2]), TWO_PI)
    return tail_norms[:, 0], np.concatenate([polar, azimuth[:, None]], axis=1)


def _preimage_shifts(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Sign flips and additive shifts mapping canonical angles to all 2^(m-1) equivalent angle tuples.

    Tuple = sign * phi + shift (mod 2 pi), both of shape (2^(m-1), m).
    """
    signs, shifts = [], []
    for chosen in itertools.product((False, True), repeat=m - 1):
        sign, shift = np.ones(m), np.zeros(m)
        for i, reflect in enumerate(chosen):
            if reflect:  # phi_i -> 2 pi - phi_i, phi_{i+1} -> phi_{i+1} + pi
                sign[i], shift[i] = -sign[i], TWO_PI - shift[i]
                shift[i + 1] += np.pi
        signs.append(sign)
        shifts.append(shift)
    return np.array(signs), np.array(shifts)


class SphericalGaussian:
    """Thick n-sphere in R^d with two parameters; see the module docstring for the math."""

    name = "spherical_gaussian"
    parameter_names = ("theta_0", "theta_1")
    parameter_labels = (r"$\theta_0$", r"$\theta_1$")

    def __init__(self, latent_dim: int = 2, data_dim: int = 3, epsilon: float = 0.01) -> None:
        if latent_dim < 1 or data_dim < latent_dim + 1:
            raise InputError(f"spherical_gaussian needs latent_dim >= 1 and data_dim >= latent_dim + 1, "
                             f"got latent_dim={latent_dim}, data_dim={data_dim}")
        if not epsilon > 0:
            raise InputError(f"spherical_gaussian needs epsilon > 0, got {epsilon}")
        self.manifold_dim = int(latent_dim)
        self.data_dim = int(data_dim)
        self.epsilon = float(epsilon)
        self.prior = box_uniform([-1.0, -1.0], [1.0, 1.0])
        self._signs, self._shifts = _preimage_shifts(self.manifold_dim)

    def _means(self, theta: np.ndarray) -> np.ndarray:
        means = np.full((len(theta), self.manifold_dim), 0.5 * np.pi)
        means[:, -1] = azimuth_mean(theta[:, 1])
        return means

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        theta = broadcast_theta(theta, n, 2)
        angles = np.mod(self._means(theta) + angle_width(theta[:, 0])[:, None] *
                        rng.standard_normal((n, self.manifold_dim)), TWO_PI)
        radius = 1.0 + self.epsilon * rng.standard_normal(n)
        extra = self.epsilon * rng.standard_normal((n, self.data_dim - self.manifold_dim - 1))
        return np.concatenate([spherical_to_cartesian(radius, angles), extra], axis=1)

    # --- exact density ------------------------------------------------------------------------------
    def _branch_terms(self, x: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per (event, branch, angle, wrap): log N terms and residuals; branches = sign of r x angle tuples.

        Returns (log_terms (n, B, m, K), residuals (n, B, m, K), log_radial (n, B), rho, canonical angles).
        """
        rho, angles = cartesian_to_spherical(x[:, : self.manifold_dim + 1])
        _, antipodal = cartesian_to_spherical(-x[:, : self.manifold_dim + 1])
        eps = self.epsilon
        per_sign = []
        for sign, canonical in ((1.0, angles), (-1.0, antipodal)):
            tuples = np.mod(canonical[:, None, :] * self._signs + self._shifts, TWO_PI)  # (n, T, m)
            radial = -0.5 * ((sign * rho - 1.0) / eps) ** 2 - math.log(eps * math.sqrt(2 * math.pi))
            per_sign.append((tuples, np.broadcast_to(radial[:, None], tuples.shape[:2])))
        tuples = np.concatenate([t for t, _ in per_sign], axis=1)
        log_radial = np.concatenate([r for _, r in per_sign], axis=1)
        width = angle_width(theta[:, 0])[:, None, None, None]
        residuals = tuples[..., None] + TWO_PI * WRAPS - self._means(theta)[:, None, :, None]
        log_terms = -0.5 * (residuals / width) ** 2 - np.log(width * math.sqrt(2 * math.pi))
        return log_terms, residuals, log_radial, rho, angles

    def log_likelihood(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Exact, normalized log p(x|theta) on R^d (see the module docstring)."""
        x = check_x(x, self.data_dim)
        theta = broadcast_theta(theta, len(x), 2)
        log_terms, _, log_radial, rho, angles = self._branch_terms(x, theta)
        log_wrapped = logsumexp(log_terms, axis=-1).sum(axis=-1)  # (n, B)
        log_angular = logsumexp(log_wrapped + log_radial, axis=1)
        m = self.manifold_dim
        powers = np.arange(m - 1, -1, -1)[:-1]  # (m-1-i) for the polar angles i < m-1
        log_volume = m * np.log(rho) + np.sum(powers * np.log(np.abs(np.sin(angles[:, :-1]))), axis=1)
        extra = x[:, m + 1:]
        log_extra = np.sum(-0.5 * (extra / self.epsilon) ** 2, axis=1) - extra.shape[1] * math.log(
            self.epsilon * math.sqrt(2 * math.pi))
        return log_angular - log_volume + log_extra

    def joint_score(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Exact grad_theta log p(x|theta), shape (n, 2).

        d/dw log N(y; mu, w) = ((y - mu)^2 / w^2 - 1) / w and d/dmu log N = (y - mu) / w^2, averaged with the
        posterior weights of the wrap and branch terms; chain rule with dw/dtheta_0 = 0.15 pi and
        dmu_{n-1}/dtheta_1 = pi / 2.
        """
        x = check_x(x, self.data_dim)
        theta = broadcast_theta(theta, len(x), 2)
        log_terms, residuals, log_radial, _, _ = self._branch_terms(x, theta)
        width = angle_width(theta[:, 0])[:, None, None, None]
        log_wrapped = logsumexp(log_terms, axis=-1, keepdims=True)
        wrap_weights = np.exp(log_terms - log_wrapped)
        d_width = np.sum(wrap_weights * ((residuals / width) ** 2 - 1.0) / width, axis=-1).sum(axis=-1)  # (n, B)
        d_mean = np.sum(wrap_weights[:, :, -1] * residuals[:, :, -1], axis=-1) / width[:, :, 0, 0] ** 2
        log_branch = log_wrapped[..., 0].sum(axis=-1) + log_radial
        branch_weights = np.exp(log_branch - logsumexp(log_branch, axis=1, keepdims=True))
        return np.stack([np.sum(branch_weights * d_width, axis=1) * DWIDTH_DTHETA0,
                         np.sum(branch_weights * d_mean, axis=1) * DMEAN_DTHETA1], axis=1)

    def distance_to_manifold(self, x: np.ndarray) -> np.ndarray:
        """Euclidean distance from the unit n-sphere in the first n + 1 coordinates (extra coordinates = 0)."""
        x = check_x(x, self.data_dim)
        m = self.manifold_dim
        return np.hypot(np.linalg.norm(x[:, : m + 1], axis=1) - 1.0, np.linalg.norm(x[:, m + 1:], axis=1))
