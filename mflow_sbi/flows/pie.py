"""PIE (pseudo-invertible encoder), Beitler et al. / Brehmer & Cranmer 2020: a full-dimensional density.

PIE has the architecture of an M-flow (outer flow f, inner conditional flow h on the first n coordinates),
but the off-manifold coordinates v of f(x_std) = (u', v) get a narrow Gaussian instead of being cut off:

    "pie":  log p(x|theta) = log p(u'|theta) + sum_j log N(v_j; 0, eps^2) + log|det df/dx_std| - sum log scale

This is a normalized density on all of R^d. ``eps`` is the standard deviation of v in the outer flow's
coordinates, which are standardized units (x is standardized before f), default 0.01. The M-flow modes
"manifold" and "fixed_manifold" are also available on a PIE (they read the manifold v = 0 of the same f).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mflow_sbi.errors import ConfigError
from mflow_sbi.flows.architecture import StackConfig
from mflow_sbi.flows.base import standard_noise
from mflow_sbi.flows.manifold import ManifoldFlow, standard_normal_log_prob
from mflow_sbi.priors import IndependentPrior


class PIE(ManifoldFlow):
    """Conditional PIE: an M-flow architecture with Gaussian off-manifold coordinates of width ``eps``."""

    model_type = "pie"
    display_name = "PIE"
    modes = ("pie", "manifold", "fixed_manifold")
    default_mode = "pie"

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        parameter_dim: int,
        eps: float = 0.01,
        outer: StackConfig | dict | None = None,
        inner: StackConfig | dict | None = None,
        conditional_outer: bool = False,
        jacobian_method: str = "forward",
        parameter_names: tuple[str, ...] | list[str] | None = None,
        prior: IndependentPrior | None = None,
        preprocessing: str = "affine",
        inner_density: str = "flow",
    ) -> None:
        if not (math.isfinite(eps) and eps > 0):
            raise ConfigError(f"PIE eps must be a finite positive number, got {eps}")
        super().__init__(
            data_dim, latent_dim, parameter_dim, outer=outer, inner=inner, conditional_outer=conditional_outer,
            jacobian_method=jacobian_method, parameter_names=parameter_names, prior=prior,
            preprocessing=preprocessing, inner_density=inner_density,
        )
        self.eps = float(eps)

    def architecture(self) -> dict[str, Any]:
        return {**super().architecture(), "eps": self.eps}

    def _off_manifold_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """sum_j log N(v_j; 0, eps^2)."""
        return standard_normal_log_prob(v / self.eps) - v.shape[-1] * math.log(self.eps)

    def _off_manifold_sample(self, rows: int, generator: torch.Generator | None) -> torch.Tensor:
        """v ~ N(0, eps^2 I_(d-n))."""
        shape = (rows, self.data_dim - self.latent_dim)
        return self.eps * standard_noise(shape, generator, self.x_scaler.mean)
