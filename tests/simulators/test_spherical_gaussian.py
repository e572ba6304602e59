"""Spherical Gaussian: coordinates, exact normalization, samples vs density, the radial Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mflow_sbi.simulators.spherical_gaussian import SphericalGaussian, cartesian_to_spherical, spherical_to_cartesian


def gauss_legendre(low: float, high: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return 0.5 * (high - low) * nodes + 0.5 * (high + low), 0.5 * (high - low) * weights


def hyperspherical_volume(radius: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Textbook volume element r^m sin^(m-1) phi_0 sin^(m-2) phi_1 ... for m angles."""
    m = angles.shape[1]
    element = radius**m
    for i in range(m - 1):
        element = element * np.sin(angles[:, i]) ** (m - 1 - i)
    return element


@pytest.mark.parametrize("m", [1, 2, 4])
def test_hyperspherical_round_trip(m):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(100, m + 1))
    radius, angles = cartesian_to_spherical(y)
    assert np.all(angles[:, :-1] >= 0) and np.all(angles[:, :-1] <= np.pi)
    assert np.all(angles[:, -1] >= 0) and np.all(angles[:, -1] < 2 * np.pi)
    np.testing.assert_allclose(spherical_to_cartesian(radius, angles), y, atol=1e-12)


@pytest.mark.parametrize("theta", [(-1.0, 0.5), (0.0, -0.3)])
def test_normalized_on_cartesian_grid(theta):
    """Midpoint rule on a Cartesian grid: independent of any spherical-coordinate formula."""
    sim = SphericalGaussian(latent_dim=2, data_dim=3, epsilon=0.15)
    h = 0.05
    axis = np.arange(-1.7, 1.7, h) + h / 2
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    total = np.exp(sim.log_likelihood(grid, np.array(theta))).sum() * h**3
    assert total == pytest.approx(1.0, abs=5e-3)


def test_normalized_circle_wide_angles():
    sim = SphericalGaussian(latent_dim=1, data_dim=2, epsilon=0.2)
    h = 0.01
    axis = np.arange(-2.0, 2.0, h) + h / 2
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    for theta in [(1.0, 1.0), (0.2, -1.0)]:
        assert np.exp(sim.log_likelihood(grid, np.array(theta))).sum() * h**2 == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(("m", "d", "eps", "nodes"), [(2, 3, 0.5, (48, 40, 80)), (3, 5, 0.1, (16, 16, 16, 32))])
def test_normalized_in_spherical_coordinates(m, d, eps, nodes):
    """Gauss-Legendre in (r, angles) with the textbook volume element; eps = 0.5 exercises negative radii.

    Extra dimensions (d > m + 1) are set to 0 and their Gaussian factor divided out.
    """
    sim = SphericalGaussian(latent_dim=m, data_dim=d, epsilon=eps)
    low = max(0.0, 1 - 8 * eps)
    axes = [gauss_legendre(low, 1 + 8 * eps, nodes[0])]
    axes += [gauss_legendre(0, np.pi, k) for k in nodes[1:-1]] + [gauss_legendre(0, 2 * np.pi, nodes[-1])]
    points = np.stack(np.meshgrid(*[a for a, _ in axes], indexing="ij"), axis=-1).reshape(-1, m + 1)
    weights = np.prod(np.stack(np.meshgrid(*[w for _, w in axes], indexing="ij"), axis=-1).reshape(-1, m + 1), 1)
    radius, angles = points[:, 0], points[:, 1:]
    x = np.concatenate([spherical_to_cartesian(radius, angles), np.zeros((len(points), d - m - 1))], axis=1)
    log_extra = (d - m - 1) * stats.norm.logpdf(0.0, scale=eps)
    density = np.exp(sim.log_likelihood(x, np.array([0.4, -0.7])) - log_extra)
    assert np.sum(density * hyperspherical_volume(radius, angles) * weights) == pytest.approx(1.0, abs=2e-3)


def test_samples_match_density_histogram():
    """Chi-square of a 2-D histogram of canonical angles against the density integrated over each bin."""
    sim = SphericalGaussian()
    theta = np.array([0.5, -0.6])
    n = 100_000
    x = sim.sample(theta, n, np.random.default_rng(11))
    _, angles = cartesian_to_spherical(x)
    edges0, edges1 = np.linspace(0, np.pi, 11), np.linspace(0, 2 * np.pi, 21)
    counts, _, _ = np.histogram2d(angles[:, 0], angles[:, 1], bins=[edges0, edges1])

    r, wr = gauss_legendre(1 - 8 * sim.epsilon, 1 + 8 * sim.epsilon, 16)
    expected = np.zeros_like(counts)
    for i in range(10):
        a0, w0 = gauss_legendre(edges0[i], edges0[i + 1], 4)
        for j in range(20):
            a1, w1 = gauss_legendre(edges1[j], edges1[j + 1], 4)
            grid = np.stack(np.meshgrid(r, a0, a1, indexing="ij"), axis=-1).reshape(-1, 3)
            weight = np.einsum("i,j,k->ijk", wr, w0, w1).ravel()
            points = spherical_to_cartesian(grid[:, 0], grid[:, 1:])
            density = np.exp(sim.log_likelihood(points, theta))
            expected[i, j] = n * np.sum(density * hyperspherical_volume(grid[:, 0], grid[:, 1:]) * weight)
    assert expected.sum() == pytest.approx(n, rel=1e-3)
    used = expected > 5
    chi2 = np.sum((counts[used] - expected[used]) ** 2 / expected[used])
    assert stats.chi2.sf(chi2, used.sum() - 1) > 1e-3, chi2


def test_reference_radial_term_would_fail():
    """The density at radius 1 must be p_angles / r^n = p_angles (reference code: p_angles * exp(-n))."""
    sim = SphericalGaussian(epsilon=0.01)
    theta = np.array([0.0, 0.0])
    w, mu = 0.25 * np.pi, np.pi
    angles = np.array([[np.pi / 2, np.pi]])
    x = spherical_to_cartesian(np.ones(1), angles)
    expected = (stats.norm.logpdf(np.pi / 2, np.pi / 2, w) + stats.norm.logpdf(np.pi, mu, w)
                + stats.norm.logpdf(0.0, scale=0.01))
    assert sim.log_likelihood(x, theta)[0] == pytest.approx(expected, abs=1e-6)


def test_distance_to_manifold():
    sim = SphericalGaussian(latent_dim=2, data_dim=4, epsilon=0.01)
    x = np.array([[0.0, 2.0, 0.0, 0.0], [0.0, 0.6, 0.0, 0.0], [1.0, 0.0, 0.0, 0.5]])
    np.testing.assert_allclose(sim.distance_to_manifold(x), [1.0, 0.4, 0.5])


def test_invalid_options():
    from mflow_sbi.errors import InputError

    with pytest.raises(InputError, match="data_dim"):
        SphericalGaussian(latent_dim=3, data_dim=3)
    with pytest.raises(InputError, match="epsilon"):
        SphericalGaussian(epsilon=0.0)
