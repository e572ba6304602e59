"""Building an untrained model for a data set from the ``[model]`` table."""

from __future__ import annotations

from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import InputError
from mflow_sbi.flows import MODEL_TYPES, ConditionalDensityModel, create_model
from mflow_sbi.flows.settings import ModelConfig


def model_for_data(data: EventData, config: ModelConfig, manifold_dim: int | None = None) -> ConditionalDensityModel:
    """An untrained model sized for ``data`` (x (N, d), theta (N, p), names and prior from the data).

    For models with a manifold, an unset ``latent_dim`` is ``manifold_dim`` (the simulator's manifold
    dimension, when the caller knows it); models without one (AF) get no latent_dim. Only the architecture
    options set in the config are passed (see :meth:`ModelConfig.options`).
    """
    if data.theta is None:
        raise InputError("training data need theta")
    latent_dim = config.latent_dim
    if latent_dim is None and MODEL_TYPES[config.type].needs_latent_dim:
        latent_dim = manifold_dim
    if data.prior is not None and data.prior.dim != data.theta.shape[1]:
        raise InputError(f"prior has {data.prior.dim} parameters but theta has {data.theta.shape[1]} columns")
    return create_model(
        config.type,
        data_dim=data.x.shape[1],
        parameter_dim=data.theta.shape[1],
        latent_dim=latent_dim,
        parameter_names=data.parameter_names,
        prior=data.prior,
        **config.options(),
    )
