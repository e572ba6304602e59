"""Polynomial surface additions: Euclidean distance to the surface, OOD samples."""

from __future__ import annotations

import numpy as np

from mflow_sbi.simulators.polynomial_surface import PolynomialSurface


def unit_normals(sim: PolynomialSurface, z: np.ndarray) -> np.ndarray:
    """Unit normals R (-grad f, 1) / sqrt(1 + |grad f|^2) of the surface at z."""
    normal = np.column_stack([-sim.height_gradient(z), np.ones(len(z))])
    return (normal / np.linalg.norm(normal, axis=1, keepdims=True)) @ sim.rotation.T


def test_distance_of_points_offset_along_the_normal():
    sim = PolynomialSurface()
    rng = np.random.default_rng(0)
    z = rng.uniform(-3, 3, size=(500, 2))
    offset = rng.uniform(-0.05, 0.05, size=500)
    x = sim.embed(z) + offset[:, None] * unit_normals(sim, z)
    np.testing.assert_allclose(sim.distance_to_manifold(x), np.abs(offset), atol=1e-10)
    np.testing.assert_allclose(sim.closest_latent(x), z, atol=1e-8)
    assert np.all(sim.vertical_distance(x) >= np.abs(offset) - 1e-12)
    # the vertical distance really differs where the surface is steep, so the Euclidean one is not trivial
    assert np.max(sim.vertical_distance(x) - np.abs(offset)) > 1e-3


def test_samples_on_surface_and_ood_samples_off_it():
    sim = PolynomialSurface()
    x = sim.sample(np.array([0.3]), 1000, np.random.default_rng(1))
    assert np.max(sim.distance_to_manifold(x)) < 1e-9
    ood = sim.sample_ood(20_000, np.random.default_rng(2))
    assert ood.shape == (20_000, 3)
    # noise N(0, 0.1^2 I_3): the component along the surface normal is N(0, 0.1^2) for nearby surface points
    distance = sim.distance_to_manifold(ood)
    assert 0.06 < np.median(distance) < 0.075  # median of |N(0, 0.1^2)| is 0.0674
    np.testing.assert_array_equal(ood, sim.sample_ood(20_000, np.random.default_rng(2)))


def test_surface_density_is_normalized_with_numerical_area_element():
    """Integral over the surface of p(x|theta) dA = 1, with dA from a finite-difference Jacobian of embed."""
    sim = PolynomialSurface()
    h = 0.1
    axis = np.arange(-9.0, 9.0, h) + h / 2
    z = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    step = 1e-6
    columns = [(sim.embed(z + step * e) - sim.embed(z - step * e)) / (2 * step) for e in np.eye(2)]
    jacobian = np.stack(columns, axis=2)  # (n, 3, 2)
    area = np.sqrt(np.linalg.det(np.einsum("nik,nil->nkl", jacobian, jacobian)))
    for theta in (-0.8, 0.0, 0.9):
        density = np.exp(sim.log_likelihood(sim.embed(z), np.array([theta])))
        assert abs(np.sum(density * area) * h**2 - 1.0) < 1e-4


def test_latent_histograms_match_mixture_marginals():
    """Chi-square of z1 and z2 (read back from x) against 0.6 N(+-1, 2^2) + 0.4 N(-+1, s(theta)^2) marginals."""
    from scipy import stats

    sim = PolynomialSurface()
    theta = -0.5
    s = 0.2 + 0.4 * (1 + theta)
    n = 100_000
    z = sim.latent(sim.sample(np.array([theta]), n, np.random.default_rng(3)))
    for k, (broad_mean, narrow_mean) in enumerate([(1.0, -1.0), (-1.0, 1.0)]):
        edges = np.concatenate([[-np.inf], np.linspace(-4, 4, 41), [np.inf]])
        cdf = 0.6 * stats.norm.cdf(edges, broad_mean, 2.0) + 0.4 * stats.norm.cdf(edges, narrow_mean, s)
        expected = n * np.diff(cdf)
        counts, _ = np.histogram(z[:, k], edges)
        chi2 = np.sum((counts - expected) ** 2 / expected)
        assert stats.chi2.sf(chi2, len(counts) - 1) > 1e-3, chi2
