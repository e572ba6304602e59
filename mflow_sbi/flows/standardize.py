"""Affine standardization stored inside a model.

    x_std = (x - mean) / scale,   log|det d x_std / d x| = -sum_j log scale_j

Constant features (scale 0) get scale 1 so the map stays invertible.
"""

from __future__ import annotations

import torch
from torch import nn


class Standardizer(nn.Module):
    """Per-feature standardization with its statistics kept as buffers (saved with the weights)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def fit(self, values: torch.Tensor) -> Standardizer:
        """Set mean and scale from data of shape (N, features); computed in float64."""
        values = values.detach().to(torch.float64)
        scale = values.std(dim=0)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.mean.copy_(values.mean(dim=0).to(self.mean.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.scale

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.scale + self.mean

    def log_abs_det(self) -> torch.Tensor:
        """log|det d forward / d input| (a constant)."""
        return -torch.log(self.scale).sum()
