"""The ``[model]`` table: which model to build and its architecture.

    type               a key of ``MODEL_TYPES`` (see :mod:`mflow_sbi.flows`)
    latent_dim         the manifold dimension n; unset: the simulator's manifold dimension (models with a
                       manifold only)
    conditional_outer  theta also conditions the outer flow (M-flow family)
    eps                PIE's off-manifold width (unset: the class default)
    jacobian_method    how the decoder Jacobian is computed (unset: the class default)
    ambient_transform  AF only: the stack family, "coupling" (spline couplings), "maf" (masked autoregressive)
                       or "auto" (flow.transform's family, else coupling); unset: the class default "auto"
                       (mflow_sbi.flows.ambient)
    inner_density      M-flow family only: the density on the manifold, "flow" (a conditional inner flow) or
                       "morphing" (a theta-free flow times a ratio of quadratic forms in (1, theta), for EFT
                       couplings: mflow_sbi.flows.morphing); unset: "flow"
    preprocessing      how x is standardized: "affine" (z-score) or "asinh" (a signed-log warp first, for
                       heavy-tailed features; :mod:`mflow_sbi.flows.standardize`); unset: "affine"
    [model.outer], [model.inner], [model.flow]   stack architectures (``StackConfig`` keys)
    [model.encoder]    Me-flow's encoder (``EncoderConfig`` keys)

Unset values and empty tables take the model class's defaults, which are therefore the only defaults of the
architecture. A key that the chosen model type does not take is an error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Any

from mflow_sbi.errors import ConfigError
from mflow_sbi.flows import MODEL_TYPES
from mflow_sbi.flows.architecture import (
    AMBIENT_TRANSFORMS,
    INNER_DENSITIES,
    PREPROCESSING,
    EncoderConfig,
    StackConfig,
)
from mflow_sbi.flows.architecture import JACOBIAN_METHODS as METHODS
from mflow_sbi.schema import BOOLEAN, SUBTABLE, Table, choice, integer, number, optional, setting

ARCHITECTURE_TABLES = {"outer": StackConfig, "inner": StackConfig, "flow": StackConfig, "encoder": EncoderConfig}


@dataclass
class ModelConfig(Table):
    """The ``[model]`` table (see the module docstring)."""

    TABLE = "model"

    type: str = setting("mflow", choice(MODEL_TYPES))
    latent_dim: int | None = setting(None, optional(integer(1)))
    conditional_outer: bool = setting(False, BOOLEAN)
    outer: dict[str, Any] = setting({}, SUBTABLE)
    inner: dict[str, Any] = setting({}, SUBTABLE)
    flow: dict[str, Any] = setting({}, SUBTABLE)
    encoder: dict[str, Any] = setting({}, SUBTABLE)
    eps: float | None = setting(None, optional(number(0, strict_low=True)))
    jacobian_method: str | None = setting(None, optional(choice(METHODS)))
    ambient_transform: str | None = setting(None, optional(choice(AMBIENT_TRANSFORMS)))
    preprocessing: str | None = setting(None, optional(choice(PREPROCESSING)))
    inner_density: str | None = setting(None, optional(choice(INNER_DENSITIES)))

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, cls in ARCHITECTURE_TABLES.items():
            values = getattr(self, name)
            known = [item.name for item in fields(cls)]
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise ConfigError(f"model.{name}: unknown key(s) {unknown}; known keys: {known}")
            try:
                cls(**values)
            except (ConfigError, TypeError) as err:
                raise ConfigError(f"model.{name} = {values!r}: {err}") from None
        taken = inspect.signature(MODEL_TYPES[self.type].__init__).parameters
        for key in self.options():
            if key not in taken:
                options = sorted(set(self.options_of_all_types()) & set(taken))
                raise ConfigError(f"model.{key} is not an option of model type {self.type!r}; its options: {options}")

    @staticmethod
    def options_of_all_types() -> list[str]:
        """The architecture keys of the table (those :meth:`options` may return)."""
        return [*ARCHITECTURE_TABLES, "eps", "jacobian_method", "conditional_outer", "ambient_transform",
                "preprocessing", "inner_density"]

    def options(self) -> dict[str, Any]:
        """The architecture keywords that were set (empty tables and unset values take the class defaults)."""
        values = {"outer": self.outer, "inner": self.inner, "flow": self.flow, "encoder": self.encoder,
                  "eps": self.eps, "jacobian_method": self.jacobian_method, "ambient_transform": self.ambient_transform,
                  "conditional_outer": self.conditional_outer or None, "preprocessing": self.preprocessing,
                  "inner_density": self.inner_density}
        return {key: value for key, value in values.items() if value not in (None, {})}
