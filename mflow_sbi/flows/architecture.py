"""Architecture settings of the flows, free of torch (the configuration schema and the CLI import them).

``StackConfig`` describes one transform stack (built by :mod:`mflow_sbi.flows.builders`), ``EncoderConfig``
the Me-flow encoder (:mod:`mflow_sbi.flows.encoder`); ``JACOBIAN_METHODS`` are the ways of computing the
decoder Jacobian (:mod:`mflow_sbi.flows.jacobian`), ``FLOW_KERNELS`` the ways of evaluating a stack
(:mod:`mflow_sbi.flows.fused`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TypeVar

from mflow_sbi.errors import ConfigError

JACOBIAN_METHODS = ("forward", "double_backward", "loop")
PREPROCESSING = ("affine", "asinh")  # how x is standardized (mflow_sbi.flows.standardize)
FLOW_KERNELS = ("fused", "nflows")  # how stacks are evaluated (mflow_sbi.flows.base.ConditionalDensityModel.run_stack)
TRANSFORM_TYPES = ("rq_coupling", "rq_autoregressive", "affine_coupling", "affine_autoregressive")
AUTOREGRESSIVE_TYPES = ("rq_autoregressive", "affine_autoregressive")
AMBIENT_TRANSFORMS = ("auto", "coupling", "maf")  # the AF's stack family (mflow_sbi.flows.ambient)
LINEAR_TYPES = ("lu", "permutation")
INNER_DENSITIES = ("flow", "morphing")  # the M-flow family's density on the manifold (mflow_sbi.flows.morphing)
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



@dataclass(frozen=True)
class EncoderConfig:
    """Residual MLP encoder x_std -> u': ``num_blocks`` residual blocks of width ``hidden_features``."""

    hidden_features: int = 128
    num_blocks: int = 3
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.hidden_features < 1 or self.num_blocks < 1:
            raise ConfigError(f"encoder needs hidden_features >= 1 and num_blocks >= 1, got {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"encoder dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, values: dict) -> EncoderConfig:
        return config_from_dict(cls, values)
