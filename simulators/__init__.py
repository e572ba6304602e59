"""Simulators with known data manifolds and (where tractable) exact likelihoods.

Installed, this folder is the package ``mflow_sbi.simulators``. ``get_simulator(name)`` returns an instance;
``SIMULATORS`` maps names to classes.
"""

from __future__ import annotations

import sys

if __name__ == "simulators":
    # Imported by its folder name from a source checkout (the repository root on sys.path): hand out the
    # installed package itself, so that both names give the same classes.
    import mflow_sbi.simulators

    sys.modules[__name__] = mflow_sbi.simulators
else:
    from mflow_sbi.errors import InputError

    from .base import IntractableLikelihood, Simulator
    from .lhc import LHC
    from .polynomial_surface import PolynomialSurface
    from .spherical_gaussian import SphericalGaussian

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
