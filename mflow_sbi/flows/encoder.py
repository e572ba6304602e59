"""Me-flow: an M-flow whose encoder is a separate network (Brehmer & Cranmer 2020, section 3).

The decoder is still the outer flow restricted to the manifold, g(u') = f^{-1}(u', 0), but the latent
coordinates of x come from a residual MLP e: x_std -> u' (conditional on theta when ``conditional_outer``)
instead of the first n outputs of f. Phase M trains f and e together on ||x - g(e(x))||^2.

Densities per event (raw units), with u' = e(x_std):

    "manifold":       log p(u'|theta) - 1/2 log det(J^T J),   J = d x_raw / d u' at u'
    "fixed_manifold": log p(u'|theta) + log|det df/dx_std| + log|det dx_std/dx|, both at the projection g(u')
                      = log p(u'|theta) - log|det df^{-1}/d(u', v)| at (u', 0) + log|det dx_std/dx| at g(u')

Both depend on x only through u', and their difference does not depend on theta (unless
``conditional_outer``).
"""

from __future__ import annotations

from typing import Any

import torch
from nflows.nn.nets import ResidualNet
from torch import nn

from mflow_sbi.flows.architecture import EncoderConfig, StackConfig, resolve_config
from mflow_sbi.flows.manifold import ManifoldFlow
from mflow_sbi.priors import IndependentPrior

DEFAULT_ENCODER = EncoderConfig()


class EncoderManifoldFlow(ManifoldFlow):
    """Conditional Me-flow: M-flow decoder and inner flow, separate residual-MLP encoder."""

    model_type = "emflow"
    display_name = "Me-flow"
    modes = ("manifold", "fixed_manifold")
    default_mode = "manifold"

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        parameter_dim: int,
        outer: StackConfig | dict | None = None,
        inner: StackConfig | dict | None = None,
        encoder: EncoderConfig | dict | None = None,
        conditional_outer: bool = False,
        jacobian_method: str = "forward",
        parameter_names: tuple[str, ...] | list[str] | None = None,
        prior: IndependentPrior | None = None,
        preprocessing: str = "affine",
        inner_density: str = "flow",
    ) -> None:
        super().__init__(
            data_dim, latent_dim, parameter_dim, outer=outer, inner=inner, conditional_outer=conditional_outer,
            jacobian_method=jacobian_method, parameter_names=parameter_names, prior=prior,
            preprocessing=preprocessing, inner_density=inner_density,
        )
        self.encoder_config = resolve_config(encoder, DEFAULT_ENCODER)
        self.encoder = ResidualNet(
            data_dim,
            latent_dim,
            hidden_features=self.encoder_config.hidden_features,
            context_features=parameter_dim if conditional_outer else None,
            num_blocks=self.encoder_config.num_blocks,
            dropout_probability=self.encoder_config.dropout,
        )

    def architecture(self) -> dict[str, Any]:
        return {**super().architecture(), "encoder": vars(self.encoder_config).copy()}

    def manifold_parameters(self) -> list[nn.Parameter]:
        """The outer flow's and the encoder's parameters (trained together in phase M)."""
        return super().manifold_parameters() + list(self.encoder.parameters())

    def _encode_std(self, x_std: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        return self.encoder(x_std, context=context)

    def _split(self, x_std: torch.Tensor, context: torch.Tensor | None, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        u = self._encode_std(x_std, context)
        if mode == "manifold":
            return u, self._volume_term(u, context)
        decoded, inverse_log_det = self._outer_inverse(u, None, context)
        return u, -inverse_log_det + self.x_scaler.log_abs_det(decoded)
