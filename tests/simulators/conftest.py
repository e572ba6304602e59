"""Simulator instances shared by the interface tests (one entry per tractable configuration)."""

from __future__ import annotations

from simulators import SIMULATORS
from simulators.polynomial_surface import PolynomialSurface
from simulators.spherical_gaussian import SphericalGaussian


def tractable_simulators() -> dict[str, object]:
    """Every registered simulator with its defaults, plus non-default configurations worth covering."""
    instances = {name: cls() for name, cls in SIMULATORS.items()}
    instances["spherical_gaussian_3_in_5"] = SphericalGaussian(latent_dim=3, data_dim=5, epsilon=0.05)
    assert isinstance(instances["polynomial_surface"], PolynomialSurface)
    return instances
