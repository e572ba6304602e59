"""Simulators with known data manifolds and (where tractable) exact likelihoods.

Installed, this folder is the package ``mflow_sbi.simulators``. ``get_simulator(name)`` returns an instance;
``SIMULATORS`` maps names to classes.
"""

from __future__ import annotations

import inspect
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

    def check_options(cls: type, options: dict) -> None:
        """Every option is a keyword of the simulator's constructor, of the type of its default (an integer
        is accepted where a float is expected); otherwise an InputError naming the option and what is allowed."""
        parameters = {name: p.default for name, p in inspect.signature(cls).parameters.items()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        unknown = sorted(set(options) - set(parameters))
        if unknown:
            known = ", ".join(f"{k} (default {v!r})" for k, v in parameters.items()) or "none"
            raise InputError(f"simulator {cls.name!r} has no option {', '.join(map(repr, unknown))}; its options: {known}")
        for key, value in options.items():
            default = parameters[key]
            if default is inspect.Parameter.empty or default is None:
                continue
            expected = (int, float) if type(default) is float else type(default)
            if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, expected):
                raise InputError(f"simulator {cls.name!r} option {key} must be {type(default).__name__} "
                                 f"(default {default!r}), got {value!r}")

    def get_simulator(name: str, **options) -> Simulator:
        """Instantiate the simulator called ``name`` with keyword ``options`` (checked by :func:`check_options`)."""
        try:
            cls = SIMULATORS[name]
        except KeyError:
            raise InputError(f"unknown simulator {name!r}; available: {', '.join(sorted(SIMULATORS))}") from None
        check_options(cls, options)
        return cls(**options)


__all__ = ["SIMULATORS", "IntractableLikelihood", "Simulator", "get_simulator"]
