"""The model family: conditional flows for p(x|theta).

    model type   class                 modes (default first)
    "af"         AmbientFlow           ambient
    "pie"        PIE                   pie, manifold, fixed_manifold
    "mflow"      ManifoldFlow          manifold, fixed_manifold
    "emflow"     EncoderManifoldFlow   manifold, fixed_manifold

A model directory of type "ensemble" (:class:`~mflow_sbi.flows.ensemble.ModelEnsemble`, K trained models whose
log-densities are averaged) loads with ``load_model`` too; it is not a type one trains directly (``[training]
ensemble = K`` trains its members).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.layout import CONFIG_FILE
from mflow_sbi.lazy import lazy_exports
from mflow_sbi.tomlio import read_toml

if TYPE_CHECKING:
    import torch

    from mflow_sbi.flows.base import ConditionalDensityModel
    from mflow_sbi.flows.ensemble import ModelEnsemble


class ModelRegistry(Mapping):
    """Model type name -> class. The names are known without importing torch (the CLI lists them while
    building its parser); a class is imported when it is looked up."""

    def __init__(self, classes: Mapping[str, str]) -> None:
        self._classes = dict(classes)  # name -> "module:Class"

    def __getitem__(self, name: str) -> type[ConditionalDensityModel]:
        module, cls = self._classes[name].split(":")
        return getattr(importlib.import_module(module), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


MODEL_TYPES = ModelRegistry({
    "af": "mflow_sbi.flows.ambient:AmbientFlow",
    "pie": "mflow_sbi.flows.pie:PIE",
    "mflow": "mflow_sbi.flows.manifold:ManifoldFlow",
    "emflow": "mflow_sbi.flows.encoder:EncoderManifoldFlow",
})

ENSEMBLE_TYPE = "ensemble"  # config.toml type of a ModelEnsemble's directory

__getattr__, __dir__ = lazy_exports(__name__, {
    "AmbientFlow": "mflow_sbi.flows.ambient",
    "ConditionalDensityModel": "mflow_sbi.flows.base",
    "NoCachedLikelihood": "mflow_sbi.flows.base",
    "UnsupportedMode": "mflow_sbi.flows.base",
    "StackConfig": "mflow_sbi.flows.architecture",
    "EncoderConfig": "mflow_sbi.flows.architecture",
    "EncoderManifoldFlow": "mflow_sbi.flows.encoder",
    "ModelEnsemble": "mflow_sbi.flows.ensemble",
    "RankDeficientJacobian": "mflow_sbi.flows.jacobian",
    "ManifoldFlow": "mflow_sbi.flows.manifold",
    "PIE": "mflow_sbi.flows.pie",
})


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


def load_model(path: str | os.PathLike,
               device: str | torch.device | None = None) -> ConditionalDensityModel | ModelEnsemble:
    """Load a saved model directory, returning an instance of the class recorded in its config.toml (a
    :class:`~mflow_sbi.flows.ensemble.ModelEnsemble` for type "ensemble"), on ``device`` (a torch device or a
    name of :mod:`mflow_sbi.devices`; None: the CPU), wherever it was trained."""
    directory = Path(path)
    if not (directory / CONFIG_FILE).is_file():
        raise DataFileError(f"{directory}: not a model directory (no {CONFIG_FILE})")
    model_type = read_toml(directory / CONFIG_FILE).get("model", {}).get("type")
    if model_type == ENSEMBLE_TYPE:
        from mflow_sbi.flows.ensemble import ModelEnsemble

        return ModelEnsemble.load(directory, device)
    if model_type not in MODEL_TYPES:
        known = ", ".join(MODEL_TYPES)
        raise DataFileError(f"{directory / CONFIG_FILE}: unknown model type {model_type!r}; known: {known}")
    return MODEL_TYPES[model_type].load(directory, device)


def ensemble_members(path: str | os.PathLike) -> list[str] | None:
    """The member directory names listed in the config.toml of the ensemble directory ``path``, or None when
    ``path`` is not an ensemble's directory (read without torch)."""
    config = Path(path) / CONFIG_FILE
    section = read_toml(config).get("model", {}) if config.is_file() else {}
    return list(section.get("members") or []) if section.get("type") == ENSEMBLE_TYPE else None


def weights_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of the weights of the model directory ``path`` (for an ensemble: of its members' weights, in
    order), or None when it holds none: what resumed runs compare to know they continue with the same model."""
    import hashlib

    from mflow_sbi.flows.base import file_sha256
    from mflow_sbi.layout import WEIGHTS_FILE

    directory = Path(path)
    members = ensemble_members(directory)
    if members is None:
        return file_sha256(directory / WEIGHTS_FILE) if (directory / WEIGHTS_FILE).is_file() else None
    if not members or not all((directory / name / WEIGHTS_FILE).is_file() for name in members):
        return None
    digest = hashlib.sha256()
    for name in members:
        digest.update(file_sha256(directory / name / WEIGHTS_FILE).encode())
    return digest.hexdigest()


__all__ = [
    "ENSEMBLE_TYPE",
    "MODEL_TYPES",
    "PIE",
    "AmbientFlow",
    "ConditionalDensityModel",
    "EncoderConfig",
    "EncoderManifoldFlow",
    "ManifoldFlow",
    "ModelEnsemble",
    "NoCachedLikelihood",
    "RankDeficientJacobian",
    "StackConfig",
    "UnsupportedMode",
    "create_model",
    "ensemble_members",
    "load_model",
    "weights_sha256",
]
