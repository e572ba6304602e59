"""AF (ambient flow): a conditional flow on the full x, the standard neural likelihood baseline.

With the conditional bijection f(.|theta): R^d -> R^d (nflows "forward" direction, data -> noise) and
base N(0, I_d), in raw units:

    "ambient":  log p(x|theta) = log N(f(x_std|theta); 0, I) + log|det df/dx_std| - sum log scale

theta conditions the whole map, so there is no theta-free encoding and no cached likelihood, and no
manifold (encode/decode/project do not exist on an AF).
"""

from __future__ import annotations

from typing import Any

import torch

from mflow_sbi.flows.architecture import StackConfig, resolve_config
from mflow_sbi.flows.base import ConditionalDensityModel
from mflow_sbi.flows.builders import build_stack
from mflow_sbi.flows.manifold import standard_normal_log_prob
from mflow_sbi.priors import IndependentPrior

DEFAULT_FLOW = StackConfig(n_layers=6, hidden_features=64)


class AmbientFlow(ConditionalDensityModel):
    """Conditional ambient flow p(x|theta) on R^d."""

    model_type = "af"
    display_name = "AF"
    modes = ("ambient",)
    default_mode = "ambient"

    def __init__(
        self,
        data_dim: int,
        parameter_dim: int,
        flow: StackConfig | dict | None = None,
        parameter_names: tuple[str, ...] | list[str] | None = None,
        prior: IndependentPrior | None = None,
    ) -> None:
        super().__init__(data_dim, parameter_dim, parameter_names=parameter_names, prior=prior)
        self.flow_config = resolve_config(flow, DEFAULT_FLOW)
        self.flow = build_stack(data_dim, parameter_dim, self.flow_config)

    def architecture(self) -> dict[str, Any]:
        return {**super().architecture(), "flow": vars(self.flow_config).copy()}

    def _log_prob_std(self, x_std: torch.Tensor, theta_std: torch.Tensor, mode: str) -> torch.Tensor:
        noise, log_det = self.run_stack(self.flow, x_std, theta_std)
        return standard_normal_log_prob(noise) + log_det + self.x_scaler.log_abs_det()

    def _sample_std(self, theta_std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(theta_std.shape[0], self.data_dim, generator=generator, dtype=theta_std.dtype)
        return self.run_stack(self.flow, noise, theta_std, inverse=True, log_det=False)[0]
