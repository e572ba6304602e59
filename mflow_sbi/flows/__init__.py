"""The model family: conditional flows for p(x|theta).

    model type   class                 modes (default first)
    "af"         AmbientFlow           ambient
    "pie"        PIE                   pie, manifold, fixed_manifold
    "mflow"      ManifoldFlow          manifold, fixed_manifold
    "emflow"     EncoderManifoldFlow   manifold, fixed_manifold
"""

from __future__ import annotations

import os
from pathlib import Path

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.flows.ambient import AmbientFlow
from mflow_sbi.flows.base import CONFIG_FILE, ConditionalDensityModel, NoCachedLikelihood, UnsupportedMode
from mflow_sbi.flows.builders import StackConfig
from mflow_sbi.flows.encoder import EncoderConfig, EncoderManifoldFlow
from mflow_sbi.flows.jacobian import RankDeficientJacobian
from mflow_sbi.flows.manifold import ManifoldFlow
from mflow_sbi.flows.pie import PIE
from mflow_sbi.tomlio import read_toml

MODEL_TYPES: dict[str, type[ConditionalDensityModel]] = {
    cls.model_type: cls for cls in (AmbientFlow, PIE, ManifoldFlow, EncoderManifoldFlow)
}


def create_model(
    model_type: str, data_dim: int, parameter_dim: int, latent_dim: int | None = None, **options
) -> ConditionalDensityModel:
    """Instantiate a model by type name (a key of ``MODEL_TYPES``).

    ``options`` are the class's keyword arguments; options given as None take the class default. An AF
    takes no latent_dim (a given one is an error).
    """
    if model_type not in MODEL_TYPES:
        raise InputError(f"unknown model type {model_type!r}; available: {', '.join(MODEL_TYPES)}")
    cls = MODEL_TYPES[model_type]
    options = {key: value for key, value in options.items() if value is not None}
    if cls.needs_latent_dim:
        if latent_dim is None:
            raise InputError(f"model {model_type!r} needs latent_dim (the manifold dimension)")
        options["latent_dim"] = latent_dim
    elif latent_dim is not None:
        raise InputError(f"model {model_type!r} has no manifold: do not give latent_dim (got {latent_dim})")
    try:
        return cls(data_dim=data_dim, parameter_dim=parameter_dim, **options)
    except TypeError as err:
        raise InputError(f"model {model_type!r}: {err}") from None


def load_model(path: str | os.PathLike) -> ConditionalDensityModel:
    """Load a saved model directory, returning an instance of the class recorded in its config.toml."""
    directory = Path(path)
    if not (directory / CONFIG_FILE).is_file():
        raise DataFileError(f"{directory}: not a model directory (no {CONFIG_FILE})")
    model_type = read_toml(directory / CONFIG_FILE).get("model", {}).get("type")
    if model_type not in MODEL_TYPES:
        known = ", ".join(MODEL_TYPES)
        raise DataFileError(f"{directory / CONFIG_FILE}: unknown model type {model_type!r}; known: {known}")
    return MODEL_TYPES[model_type].load(directory)


__all__ = [
    "MODEL_TYPES",
    "PIE",
    "AmbientFlow",
    "ConditionalDensityModel",
    "EncoderConfig",
    "EncoderManifoldFlow",
    "ManifoldFlow",
    "NoCachedLikelihood",
    "RankDeficientJacobian",
    "StackConfig",
    "UnsupportedMode",
    "create_model",
    "load_model",
]
