"""Simulators with known data manifolds and (where tractable) exact likelihoods.

``get_simulator(name)`` returns an instance; ``SIMULATORS`` maps names to classes.
"""

from __future__ import annotations

from mflow_sbi.errors import InputError
from simulators.base import IntractableLikelihood, Simulator
from simulators.lhc import LHC
from simulators.polynomial_surface import PolynomialSurface
from simulators.spherical_gaussian import SphericalGaussian

SIMULATORS: dict[str, type] = {
    LHC.name: LHC,
    PolynomialSurface.name: PolynomialSurface,
    SphericalGaussian.name: SphericalGaussian,
}


def get_simulator(name: str, **options) -> Simulator:
    """Instantiate the simulator called ``name`` with keyword ``options``."""
    try:
        cls = SIMULATORS[name]
    except KeyError:
        raise InputError(f"unknown simulator {name!r}; available: {', '.join(sorted(SIMULATORS))}") from None
    return cls(**options)


__all__ = ["SIMULATORS", "IntractableLikelihood", "Simulator", "get_simulator"]
