"""Affine standardization stored inside a model.

    x_std = (x - mean) / scale,   log|det d x_std / d x| = -sum_j log scale_j

Constant features (scale 0) get scale 1 so the map stays invertible.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mflow_sbi.errors import InputError


class Standardizer(nn.Module):
    """Per-feature standardization with its statistics kept as buffers (saved with the weights)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def fit(self, values: torch.Tensor, weights: torch.Tensor | None = None) -> Standardizer:
        """Set mean and scale (the sample standard deviation, N - 1) from data of shape (N, features);
        computed in float64. With per-event ``weights`` (N,): the weighted mean m = sum w x / sum w and
        scale^2 = [sum w (x - m)^2 / sum w] n_eff / (n_eff - 1), n_eff = (sum w)^2 / sum w^2 (the unweighted
        formula for equal weights; a non-positive result, possible with negative weights, becomes 1)."""
        values = values.detach().to(torch.float64)
        if weights is None:
            return self.set(values.mean(dim=0), values.std(dim=0))
        w = weights.detach().to(torch.float64).reshape(-1, 1)
        total = w.sum()
        mean = (w * values).sum(0) / total
        n_eff = total**2 / (w**2).sum()
        correction = n_eff / (n_eff - 1) if n_eff > 1 else 1.0
        variance = (w * (values - mean) ** 2).sum(0) / total * correction
        return self.set(mean, torch.sqrt(torch.clamp(variance, min=0.0)))

    def set(self, mean: torch.Tensor | np.ndarray, scale: torch.Tensor | np.ndarray) -> Standardizer:
        """Set mean and scale directly (e.g. from moments computed while streaming); scale <= 0 becomes 1."""
        mean = torch.as_tensor(mean, dtype=torch.float64)
        scale = torch.as_tensor(scale, dtype=torch.float64)
        if mean.shape != self.mean.shape or scale.shape != self.scale.shape:
            raise InputError(f"standardizer needs mean and scale of shape {tuple(self.mean.shape)}, "
                             f"got {tuple(mean.shape)} and {tuple(scale.shape)}")
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.mean.copy_(mean.to(self.mean.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.scale

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.scale + self.mean

    def log_abs_det(self) -> torch.Tensor:
        """log|det d forward / d input| (a constant)."""
        return -torch.log(self.scale).sum()
