"""Tiny models and small data sets for the training tests."""

from __future__ import annotations

import numpy as np
import torch

from mflow_sbi.flows import ManifoldFlow
from simulators import get_simulator

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
