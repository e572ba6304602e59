"""Standardization of the inputs, stored inside a model: affine, or a signed-log warp followed by an affine map.

"affine" (the default):

    x_std = (x - mean) / scale,        log|det d x_std / d x| = -sum_j log scale_j   (a constant)

"asinh", for heavy-tailed features (energies and momenta at colliders): each feature is first warped with

    y_j = asinh((x_j - c_j) / w_j),    c_j the median, w_j = 1.4826 x the median absolute deviation,

which is linear within about w_j of the median and logarithmic beyond (asinh t ~ sign(t) log 2|t|), and y is
then standardized, x_std = (y - mean) / scale. The map is a smooth bijection of R^d with

    d x_j / d x_std_j = scale_j w_j cosh(y_j),   log|det d x_std / d x| = -sum_j [log scale_j + log w_j + log cosh y_j],

so densities stay exact in raw units; for manifold models the decoder Jacobian J_raw = diag(dx/dx_std) J_std
takes the point-dependent diagonal (:meth:`Standardizer.inverse_derivative`). A theta-independent warp of the
observables changes no posterior; it changes which features the flows see on an equal footing: on the LHC
observables (kurtosis up to 25, outliers at 15 standard deviations) a few events otherwise dominate the
reconstruction loss.

Constant features (scale 0) get scale 1 (and width 1) so the map stays invertible. theta is always
standardized affinely.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.flows.architecture import PREPROCESSING

MAD_TO_SD = 1.4826  # median absolute deviation -> standard deviation of a normal distribution


def log_cosh(values: torch.Tensor) -> torch.Tensor:
    """log cosh(y), stable for large |y|: |y| + log1p(exp(-2|y|)) - log 2."""
    a = values.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


def _positive(values: torch.Tensor) -> torch.Tensor:
    return torch.where(values > 0, values, torch.ones_like(values))


class Standardizer(nn.Module):
    """Per-feature standardization (``kind`` "affine" or "asinh", see the module docstring) with its statistics
    kept as buffers (saved with the weights)."""

    def __init__(self, features: int, kind: str = "affine") -> None:
        super().__init__()
        if kind not in PREPROCESSING:
            raise ConfigError(f"preprocessing must be one of {PREPROCESSING}, got {kind!r}")
        self.kind = kind
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))
        if kind == "asinh":
            self.register_buffer("center", torch.zeros(features))
            self.register_buffer("width", torch.ones(features))

    @property
    def warped(self) -> bool:
        return self.kind == "asinh"

    def fit(self, values: torch.Tensor, weights: torch.Tensor | None = None) -> Standardizer:
        """Set the statistics from data of shape (N, features), in float64: for "asinh" first the median and
        width of the warp (unweighted: they only place the warp), then mean and scale of the (warped) values,
        the sample standard deviation (N - 1). With per-event ``weights`` (N,): the weighted mean
        m = sum w x / sum w and scale^2 = [sum w (x - m)^2 / sum w] n_eff / (n_eff - 1), n_eff = (sum w)^2 /
        sum w^2 (the unweighted formula for equal weights; a non-positive result, possible with negative
        weights, becomes 1)."""
        values = values.detach().to(torch.float64)
        if self.warped:
            center = values.median(dim=0).values
            width = MAD_TO_SD * (values - center).abs().median(dim=0).values
            width = torch.where(width > 0, width, _positive(values.std(dim=0)))
            self.center.copy_(center.to(self.center.dtype))
            self.width.copy_(width.to(self.width.dtype))
            values = torch.asinh((values - center) / width)
        if weights is None:
            return self._set_moments(values.mean(dim=0), values.std(dim=0))
        w = weights.detach().to(torch.float64).reshape(-1, 1)
        total = w.sum()
        mean = (w * values).sum(0) / total
        n_eff = total**2 / (w**2).sum()
        correction = n_eff / (n_eff - 1) if n_eff > 1 else 1.0
        variance = (w * (values - mean) ** 2).sum(0) / total * correction
        return self._set_moments(mean, torch.sqrt(torch.clamp(variance, min=0.0)))

    def set(self, mean: torch.Tensor | np.ndarray, scale: torch.Tensor | np.ndarray) -> Standardizer:
        """Set mean and scale directly (e.g. from moments computed while streaming); scale <= 0 becomes 1.
        Affine standardizers only: the warp of "asinh" needs the data's medians (:meth:`fit`)."""
        if self.warped:
            raise InputError("preprocessing = \"asinh\" needs the training data's medians: train in memory "
                             "(not streamed), or use preprocessing = \"affine\"")
        return self._set_moments(mean, scale)

    def _set_moments(self, mean, scale) -> Standardizer:
        mean = torch.as_tensor(mean, dtype=torch.float64)
        scale = torch.as_tensor(scale, dtype=torch.float64)
        if mean.shape != self.mean.shape or scale.shape != self.scale.shape:
            raise InputError(f"standardizer needs mean and scale of shape {tuple(self.mean.shape)}, "
                             f"got {tuple(mean.shape)} and {tuple(scale.shape)}")
        self.mean.copy_(mean.to(self.mean.dtype))
        self.scale.copy_(_positive(scale).to(self.scale.dtype))
        return self

    def _warped(self, x_std: torch.Tensor) -> torch.Tensor:
        """y = x_std * scale + mean: the warped values (asinh only)."""
        return x_std * self.scale + self.mean

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if self.warped:
            values = torch.asinh((values - self.center) / self.width)
        return (values - self.mean) / self.scale

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        values = self._warped(values)
        return self.center + self.width * torch.sinh(values) if self.warped else values

    def inverse_derivative(self, x_std: torch.Tensor) -> torch.Tensor:
        """d x_j / d x_std_j of :meth:`inverse` at ``x_std`` (N, features): ``scale`` (features,) for "affine",
        scale w cosh(y) (N, features) for "asinh"."""
        if not self.warped:
            return self.scale
        return self.scale * self.width * torch.cosh(self._warped(x_std))

    def log_abs_det(self, x_std: torch.Tensor | None = None) -> torch.Tensor:
        """log|det d forward / d x| at the point whose standardized coordinates are ``x_std`` (N, features): a
        constant (0-d) for "affine", where ``x_std`` may be omitted, and one value per row (N,) for "asinh"."""
        constant = -torch.log(self.scale).sum()
        if not self.warped:
            return constant
        if x_std is None:
            raise InputError("the log-determinant of the asinh preprocessing depends on the point: pass x_std")
        return constant - torch.log(self.width).sum() - log_cosh(self._warped(x_std)).sum(dim=-1)
