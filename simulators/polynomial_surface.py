"""Mixture on a polynomial surface (Brehmer & Cranmer 2020, arXiv:2003.13913, section 4.2).

3-D data on a 2-D manifold, one parameter theta in [-1, 1] (prior U(-1, 1)).

Latent z in R^2 is a two-component Gaussian mixture:

    p(z|theta) = 0.6 N(z; (1, -1), 2^2 I) + 0.4 N(z; (-1, 1), s(theta)^2 I),   s(theta) = 0.2 + 0.4 (1 + theta)

The surface height is f(z) = [sum_k c_k m_k(z)] exp(-0.1 |z|^2), with m_k the 21 monomials of degree <= 5
in scikit-learn's PolynomialFeatures order, and the data point is x = R (z1, z2, f(z)) with the published
rotation R and coefficients c (``data/simulators/polynomial_surface.json``).

The embedding g(z) = R (z, f(z)) has Jacobian J = R [I_2; grad f^T], so det(J^T J) = 1 + |grad f(z)|^2
(R is orthogonal). The exact density on the surface (w.r.t. its area measure) is therefore

    log p(x|theta) = log p(z|theta) - 1/2 log(1 + |grad f(z)|^2),   z = first two coordinates of R^T x.

The second term does not depend on theta.

Joint score: theta enters only through s(theta), so with the posterior probability rho(z) of the narrow component,

    d/dtheta log p(x|theta) = rho(z) (|z - (-1, 1)|^2 / s^3 - 2 / s) ds/dtheta,   ds/dtheta = 0.4.

Out-of-distribution samples (for OOD-detection benchmarks): theta = 0 samples plus N(0, 0.1^2 I_3) noise.

Distance to the surface (metric for generated samples): in the rotated frame (u, h) = R^T x, the closest
surface point minimizes |u - z|^2 + (h - f(z))^2 over z; ``closest_latent`` solves this by Gauss-Newton from the
vertical projection z = u. The result is the distance to an actual surface point, so it is exact at the global
minimum (always, for points near the surface) and an upper bound otherwise; it never exceeds the vertical distance.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from mflow_sbi.priors import IndependentPrior, Uniform1D

from .base import broadcast_theta, check_x, load_constants

DEGREE = 5
WEIGHTS = (0.6, 0.4)
DSCALE_DTHETA = 0.4
OOD_NOISE = 0.1
MEAN_BROAD = np.array([1.0, -1.0])
MEAN_NARROW = np.array([-1.0, 1.0])
SCALE_BROAD = 2.0


def narrow_scale(theta: np.ndarray) -> np.ndarray:
    """s(theta) = 0.2 + 0.4 (1 + theta), the width of the theta-dependent mixture component."""
    return 0.2 + 0.4 * (1.0 + np.asarray(theta, dtype=np.float64))


def _exponents(degree: int) -> np.ndarray:
    """(k, 2) exponents of z1, z2 in PolynomialFeatures order: for each total degree d, z1^(d-i) z2^i."""
    return np.array([(d - i, i) for d in range(degree + 1) for i in range(d + 1)], dtype=np.int64)


class PolynomialSurface:
    """The paper's polynomial-surface mixture; see the module docstring for the math."""

    name = "polynomial_surface"
    data_dim = 3
    manifold_dim = 2
    parameter_names = ("theta",)
    parameter_labels = (r"$\theta$",)

    def __init__(self) -> None:
        constants = load_constants(self.name)
        self.coefficients = np.asarray(constants["coefficients"], dtype=np.float64)
        self.rotation = np.asarray(constants["rotation"], dtype=np.float64)
        self.exponents = _exponents(DEGREE)
        if self.coefficients.shape != (len(self.exponents),):
            raise ValueError("polynomial_surface.json: expected 21 coefficients")
        self.prior = IndependentPrior([Uniform1D(-1.0, 1.0)])

    # --- the surface -------------------------------------------------------------------------------
    def _powers(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tables z1^k and z2^k for k = 0..DEGREE, each (n, DEGREE + 1), by repeated multiplication."""
        tables = np.cumprod(np.concatenate([np.ones((len(z), 1, 2)), np.repeat(z[:, None, :], DEGREE, axis=1)], 1), 1)
        return tables[:, :, 0], tables[:, :, 1]

    def polynomial(self, z: np.ndarray) -> np.ndarray:
        """P(z) = sum_k c_k z1^a_k z2^b_k."""
        p1, p2 = self._powers(np.asarray(z, dtype=np.float64))
        a, b = self.exponents[:, 0], self.exponents[:, 1]
        return (p1[:, a] * p2[:, b]) @ self.coefficients

    def _polynomial_gradient(self, z: np.ndarray) -> np.ndarray:
        p1, p2 = self._powers(z)
        a, b = self.exponents[:, 0], self.exponents[:, 1]
        d1 = (a * p1[:, np.maximum(a - 1, 0)]) * p2[:, b]
        d2 = p1[:, a] * (b * p2[:, np.maximum(b - 1, 0)])
        return np.stack([d1 @ self.coefficients, d2 @ self.coefficients], axis=1)

    def height(self, z: np.ndarray) -> np.ndarray:
        """f(z) = P(z) exp(-0.1 |z|^2)."""
        z = np.asarray(z, dtype=np.float64)
        return self.polynomial(z) * np.exp(-0.1 * np.sum(z**2, axis=1))

    def height_gradient(self, z: np.ndarray) -> np.ndarray:
        """grad f = (grad P - 0.2 z P) exp(-0.1 |z|^2), shape (n, 2)."""
        z = np.asarray(z, dtype=np.float64)
        damping = np.exp(-0.1 * np.sum(z**2, axis=1))[:, None]
        return (self._polynomial_gradient(z) - 0.2 * z * self.polynomial(z)[:, None]) * damping

    def embed(self, z: np.ndarray) -> np.ndarray:
        """x = R (z1, z2, f(z)) for z of shape (n, 2)."""
        z = np.asarray(z, dtype=np.float64)
        return np.column_stack([z, self.height(z)]) @ self.rotation.T

    def latent(self, x: np.ndarray) -> np.ndarray:
        """z = first two coordinates of R^T x (exact inverse of ``embed`` on the surface)."""
        return (check_x(x, self.data_dim) @ self.rotation)[:, :2]

    def log_det_metric(self, z: np.ndarray) -> np.ndarray:
        """log det(J^T J) = log(1 + |grad f(z)|^2) of the embedding z -> x."""
        return np.log1p(np.sum(self.height_gradient(z) ** 2, axis=1))

    # --- the simulator interface ---------------------------------------------------------------------
    def sample_latent(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw z ~ p(z|theta), shape (n, 2)."""
        theta = broadcast_theta(theta, n, 1)[:, 0]
        narrow = rng.random(n) >= WEIGHTS[0]
        noise = rng.standard_normal((n, 2))
        broad_z = MEAN_BROAD + SCALE_BROAD * noise
        narrow_z = MEAN_NARROW + narrow_scale(theta)[:, None] * noise
        return np.where(narrow[:, None], narrow_z, broad_z)

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.embed(self.sample_latent(theta, n, rng))

    def _component_log_probs(self, z: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(2, n) log of weight x component density, and s(theta) (n,)."""
        z = np.asarray(z, dtype=np.float64)
        s = narrow_scale(broadcast_theta(theta, len(z), 1)[:, 0])

        def log_gauss(mean: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
            return -0.5 * np.sum((z - mean) ** 2, axis=1) / scale**2 - np.log(2 * np.pi * scale**2)

        terms = np.stack(
            [np.log(WEIGHTS[0]) + log_gauss(MEAN_BROAD, SCALE_BROAD), np.log(WEIGHTS[1]) + log_gauss(MEAN_NARROW, s)]
        )
        return terms, s

    def latent_log_prob(self, z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """log p(z|theta) of the Gaussian mixture (normalized in R^2)."""
        return logsumexp(self._component_log_probs(z, theta)[0], axis=0)

    def log_likelihood(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Exact log density on the surface (area measure) for points on the surface; see module docstring.

        Points off the surface are evaluated at their vertical projection (use ``distance_to_manifold``).
        """
        z = self.latent(x)
        return self.latent_log_prob(z, theta) - 0.5 * self.log_det_metric(z)

    def joint_score(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Exact grad_theta log p(x|theta), shape (n, 1); see the module docstring."""
        z = self.latent(x)
        terms, s = self._component_log_probs(z, theta)
        narrow = np.exp(terms[1] - logsumexp(terms, axis=0))
        d_scale = np.sum((z - MEAN_NARROW) ** 2, axis=1) / s**3 - 2.0 / s
        return (narrow * d_scale * DSCALE_DTHETA)[:, None]

    def sample_ood(self, n: int, rng: np.random.Generator, noise: float = OOD_NOISE) -> np.ndarray:
        """Out-of-distribution points: theta = 0 samples displaced by N(0, noise^2 I_3)."""
        return self.sample(np.zeros(1), n, rng) + noise * rng.standard_normal((n, self.data_dim))

    def vertical_distance(self, x: np.ndarray) -> np.ndarray:
        """Vertical distance |(R^T x)_3 - f((R^T x)_{1,2})| in the surface frame (>= the Euclidean distance)."""
        rotated = check_x(x, self.data_dim) @ self.rotation
        return np.abs(rotated[:, 2] - self.height(rotated[:, :2]))

    def closest_latent(self, x: np.ndarray, iterations: int = 100, tolerance: float = 1e-12) -> np.ndarray:
        """Latent z of the surface point closest to x (Gauss-Newton; see the module docstring), shape (n, 2).

        Points are iterated until their step is below ``tolerance`` (or ``iterations`` is reached).
        """
        rotated = check_x(x, self.data_dim) @ self.rotation
        z = rotated[:, :2].copy()
        active = np.arange(len(z))
        for _ in range(iterations):
            target, height, current = rotated[active, :2], rotated[active, 2], z[active]
            gradient = self.height_gradient(current)
            residual_h = self.height(current) - height
            # normal equations of J = [I; grad f^T]: (I + g g^T) dz = -((z - u) + r_h g), by Sherman-Morrison
            rhs = -((current - target) + residual_h[:, None] * gradient)
            g2 = np.sum(gradient**2, axis=1)
            step = rhs - gradient * (np.sum(gradient * rhs, axis=1) / (1.0 + g2))[:, None]
            z[active] = current + step
            active = active[np.max(np.abs(step), axis=1) >= tolerance]
            if active.size == 0:
                break
        return z

    def distance_to_manifold(self, x: np.ndarray) -> np.ndarray:
        """Euclidean distance to the surface (via ``closest_latent``; capped by the vertical distance)."""
        x = check_x(x, self.data_dim)
        nearest = np.linalg.norm(x - self.embed(self.closest_latent(x)), axis=1)
        return np.minimum(nearest, self.vertical_distance(x))
