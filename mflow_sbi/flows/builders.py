"""Factories for nflows transform stacks.

A stack is ``n_layers`` repetitions of [linear mixing, elementwise-invertible step], followed by a final
linear mixing. The step is one of

- ``"rq_coupling"``: rational-quadratic spline coupling (Durkan et al. 2019) with alternating masks;
- ``"rq_autoregressive"``: masked autoregressive rational-quadratic spline;
- ``"affine_coupling"``: affine (RealNVP-style) coupling.

The linear mixing is ``"lu"`` (LU-decomposed invertible matrix, initialized at the identity) or
``"permutation"`` (a fixed random permutation, drawn from the torch RNG and stored as a buffer).
Coupling needs at least two features; for one feature the autoregressive spline is used (with a single
feature it is an elementwise spline whose parameters depend only on the context).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TypeVar

import torch
from nflows import transforms
from nflows.nn.nets import ResidualNet
from nflows.utils import create_alternating_binary_mask
from torch.nn import functional

from mflow_sbi.errors import ConfigError

TRANSFORM_TYPES = ("rq_coupling", "rq_autoregressive", "affine_coupling")
LINEAR_TYPES = ("lu", "permutation")
T = TypeVar("T")


@dataclass(frozen=True)
class StackConfig:
    """Architecture of one transform stack (all fields have working defaults)."""

    n_layers: int = 4
    transform: str = "rq_coupling"
    hidden_features: int = 64
    num_blocks: int = 2
    num_bins: int = 8
    tail_bound: float = 5.0
    linear: str = "lu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORM_TYPES:
            raise ConfigError(f"transform must be one of {TRANSFORM_TYPES}, got {self.transform!r}")
        if self.linear not in LINEAR_TYPES:
            raise ConfigError(f"linear must be one of {LINEAR_TYPES}, got {self.linear!r}")
        if self.n_layers < 1 or self.hidden_features < 1 or self.num_blocks < 1 or self.num_bins < 2:
            raise ConfigError(f"invalid stack sizes: {asdict(self)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, values: dict) -> StackConfig:
        return config_from_dict(cls, values)


def config_from_dict(cls: type[T], values: dict) -> T:
    """Build the dataclass ``cls`` from a dict, naming unknown keys in a ConfigError."""
    unknown = set(values) - set(cls.__dataclass_fields__)
    if unknown:
        known = sorted(cls.__dataclass_fields__)
        raise ConfigError(f"unknown {cls.__name__} option(s) {sorted(unknown)}; known: {known}")
    return cls(**values)


def resolve_config(value: T | dict | None, default: T) -> T:
    """``value`` as a config of the type of ``default``: None -> default, dict -> validated dataclass."""
    if value is None:
        return default
    return value if isinstance(value, type(default)) else config_from_dict(type(default), dict(value))


def _linear(features: int, config: StackConfig) -> transforms.Transform:
    if config.linear == "lu":
        return transforms.LULinear(features, identity_init=True)
    return transforms.RandomPermutation(features)


def _step(features: int, context: int | None, index: int, config: StackConfig) -> transforms.Transform:
    kind = config.transform if features > 1 else "rq_autoregressive"
    if kind == "rq_autoregressive":
        return transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            features=features,
            hidden_features=config.hidden_features,
            context_features=context,
            num_bins=config.num_bins,
            tails="linear",
            tail_bound=config.tail_bound,
            num_blocks=config.num_blocks,
            activation=functional.relu,
            dropout_probability=config.dropout,
        )

    def net(in_features: int, out_features: int) -> torch.nn.Module:
        return ResidualNet(
            in_features,
            out_features,
            hidden_features=config.hidden_features,
            context_features=context,
            num_blocks=config.num_blocks,
            dropout_probability=config.dropout,
        )

    mask = create_alternating_binary_mask(features, even=index % 2 == 0)
    if kind == "affine_coupling":
        return transforms.AffineCouplingTransform(mask, net)
    return transforms.PiecewiseRationalQuadraticCouplingTransform(
        mask, net, num_bins=config.num_bins, tails="linear", tail_bound=config.tail_bound
    )


def build_stack(features: int, context_features: int | None, config: StackConfig) -> transforms.Transform:
    """An invertible R^features -> R^features transform, conditional on a context when context_features > 0.

    nflows convention: ``forward`` maps data to latent and returns (outputs, log|det d outputs/d inputs|).
    """
    context = context_features or None
    layers: list[transforms.Transform] = []
    for index in range(config.n_layers):
        layers += [_linear(features, config), _step(features, context, index, config)]
    layers.append(_linear(features, config))
    return transforms.CompositeTransform(layers)
