"""Tiny models and small data sets for the training tests."""

from __future__ import annotations

import numpy as np
import torch

from mflow_sbi.flows import ManifoldFlow
from mflow_sbi.simulators import get_simulator

TINY = {"n_layers": 2, "hidden_features": 16, "num_blocks": 1, "transform": "affine_coupling"}


def tiny_mflow(data_dim: int = 3, latent_dim: int = 2, parameter_dim: int = 1, seed: int = 0, **options):
    torch.manual_seed(seed)
    return ManifoldFlow(data_dim, latent_dim, parameter_dim, outer=TINY, inner=TINY, **options)


def polynomial_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, theta) from the polynomial-surface simulator with theta drawn from its prior."""
    simulator = get_simulator("polynomial_surface")
    rng = np.random.default_rng(seed)
    theta = simulator.prior.sample(n, rng)
    return simulator.sample(theta, n, rng), theta


def gaussian_line_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z ~ N(2 theta, 1) on the line x = (z, z/2) in R^2, theta ~ U(-1, 1); joint score t = 2 (z - 2 theta)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1.0, 1.0, size=(n, 1))
    z = 2.0 * theta + rng.normal(size=(n, 1))
    return np.column_stack([z, 0.5 * z]), theta, 2.0 * (z - 2.0 * theta)
