"""Simulators with known data manifolds and (where tractable) exact likelihoods.

Installed, this folder is the package ``mflow_sbi.simulators``. ``get_simulator(name)`` returns an instance;
``SIMULATORS`` maps the registered names to classes. Wherever a simulator name is accepted, a user's own
simulator can be named as ``package.module:Class`` (importable, or a module in the current folder) or as
``path/to/file.py:Class``: any class implementing the :class:`Simulator` interface.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

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
    from .slcp import SLCP
    from .spherical_gaussian import SphericalGaussian

    SIMULATORS: dict[str, type] = {
        LHC.name: LHC,
        PolynomialSurface.name: PolynomialSurface,
        SLCP.name: SLCP,
        SphericalGaussian.name: SphericalGaussian,
    }

    INTERFACE = ("name", "data_dim", "manifold_dim", "parameter_names", "prior", "sample", "log_likelihood",
                 "distance_to_manifold")

    def is_user_simulator(name: str) -> bool:
        """Whether ``name`` names a user's class (``module:Class`` or ``file.py:Class``)."""
        target, sep, attribute = name.rpartition(":")
        return bool(sep and target and attribute.isidentifier())

    def _user_module(target: str):
        if target.endswith(".py"):
            path = Path(target).expanduser().resolve()
            if not path.is_file():
                raise InputError(f"simulator file {target} does not exist")
            key = f"mflow_sbi_user_simulator_{abs(hash(str(path)))}"
            if key not in sys.modules:
                spec = importlib.util.spec_from_file_location(key, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[key] = module
                try:
                    spec.loader.exec_module(module)
                except Exception:
                    del sys.modules[key]
                    raise
            return sys.modules[key]
        if "" not in sys.path and str(Path.cwd()) not in sys.path:  # as `python -m` would: modules in ./ import
            sys.path.append(str(Path.cwd()))
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as err:
            raise InputError(f"cannot import the simulator module {target!r} ({err})") from None

    def simulator_class(name: str) -> type:
        """The class a simulator name stands for: a registered name or a user's ``module:Class``."""
        if name in SIMULATORS:
            return SIMULATORS[name]
        if not is_user_simulator(name):
            raise InputError(f"unknown simulator {name!r}; available: {', '.join(sorted(SIMULATORS))}, or your own "
                             "as package.module:Class or path/to/file.py:Class")
        target, _, attribute = name.rpartition(":")
        cls = getattr(_user_module(target), attribute, None)
        if not isinstance(cls, type):
            raise InputError(f"simulator {name!r}: {target} has no class {attribute!r}")
        return cls

    def check_options(cls: type, options: dict) -> None:
        """Every option is a keyword of the simulator's constructor, of the type of its default (an integer
        is accepted where a float is expected); otherwise an InputError naming the option and what is allowed."""
        name = getattr(cls, "name", cls.__name__)
        parameters = {key: p.default for key, p in inspect.signature(cls).parameters.items()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        unknown = sorted(set(options) - set(parameters))
        if unknown:
            known = ", ".join(f"{k} (default {v!r})" for k, v in parameters.items()) or "none"
            raise InputError(f"simulator {name!r} has no option {', '.join(map(repr, unknown))}; its options: {known}")
        for key, value in options.items():
            default = parameters[key]
            if default is inspect.Parameter.empty or default is None:
                continue
            expected = (int, float) if type(default) is float else type(default)
            if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, expected):
                raise InputError(f"simulator {name!r} option {key} must be {type(default).__name__} (default {default!r}), "
                                 f"got {value!r}")

    def option_defaults(cls: type) -> dict:
        """The constructor keywords of simulator class ``cls`` with their defaults (those without one left out)."""
        return {key: p.default for key, p in inspect.signature(cls).parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not inspect.Parameter.empty}

    def same_options(name: str, first: dict | None, second: dict | None) -> bool:
        """Whether two option sets of simulator ``name`` configure the same simulator: each is completed with the
        constructor's defaults first (``{"cp_observable": False}`` equals ``{}``). A simulator that cannot be
        imported here is compared on the options as given."""
        first, second = dict(first or {}), dict(second or {})
        try:
            defaults = option_defaults(simulator_class(name))
        except InputError:
            return first == second
        return defaults | first == defaults | second

    def get_simulator(name: str, **options) -> Simulator:
        """Instantiate the simulator called ``name`` (see the module docstring) with keyword ``options``
        (checked by :func:`check_options`); a user's class must provide the :class:`Simulator` interface."""
        cls = simulator_class(name)
        check_options(cls, options)
        simulator = cls(**options)
        missing = [attribute for attribute in INTERFACE if not hasattr(simulator, attribute)]
        if missing:
            raise InputError(f"simulator {name!r} does not implement the Simulator interface: missing {missing}")
        return simulator


__all__ = ["SIMULATORS", "IntractableLikelihood", "Simulator", "get_simulator", "is_user_simulator", "option_defaults",
               "same_options", "simulator_class"]
