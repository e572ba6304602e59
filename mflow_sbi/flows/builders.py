"""Factories for nflows transform stacks.

A stack is ``n_layers`` repetitions of [linear mixing, elementwise-invertible step], followed by a final
linear mixing. The step is one of

- ``"rq_coupling"``: rational-quadratic spline coupling (Durkan et al. 2019) with alternating masks;
- ``"rq_autoregressive"``: masked autoregressive rational-quadratic spline;
- ``"affine_coupling"``: affine (RealNVP-style) coupling;
- ``"affine_autoregressive"``: masked affine autoregressive step (MAF, Papamakarios et al. 2017),
  y_i = s_i x_i + m_i with scale s_i = softplus(a_i) + 1e-3 and shift m_i computed by a MADE
  network from x_{<i} (in the stack's feature order) and the context; log|det| = sum_i log s_i.

The linear mixing is ``"lu"`` (LU-decomposed invertible matrix, initialized at the identity) or
``"permutation"`` (a fixed random permutation, drawn from the torch RNG and stored as a buffer).
Coupling needs at least two features; for one feature the autoregressive spline is used (with a single
feature it is an elementwise spline whose parameters depend only on the context).
"""

from __future__ import annotations

import torch
from nflows import transforms
from nflows.nn.nets import ResidualNet
from nflows.utils import create_alternating_binary_mask
from torch.nn import functional

from mflow_sbi.flows.architecture import StackConfig


def _linear(features: int, config: StackConfig) -> transforms.Transform:
    if config.linear == "lu":
        return transforms.LULinear(features, identity_init=True)
    return transforms.RandomPermutation(features)


def _step(features: int, context: int | None, index: int, config: StackConfig) -> transforms.Transform:
    kind = config.transform if features > 1 else "rq_autoregressive"
    if kind == "affine_autoregressive":
        return transforms.MaskedAffineAutoregressiveTransform(
            features=features,
            hidden_features=config.hidden_features,
            context_features=context,
            num_blocks=config.num_blocks,
            activation=functional.relu,
            dropout_probability=config.dropout,
        )
    if kind == "rq_autoregressive":
        return transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            features=features,
            hidden_features=config.hidden_features,
            context_features=context,
            num_bins=config.num_bins,
            tails="linear",
            tail_bound=config.tail_bound,
            num_blocks=config.num_blocks,
            activation=functional.relu,
            dropout_probability=config.dropout,
        )

    def net(in_features: int, out_features: int) -> torch.nn.Module:
        return ResidualNet(
            in_features,
            out_features,
            hidden_features=config.hidden_features,
            context_features=context,
            num_blocks=config.num_blocks,
            dropout_probability=config.dropout,
        )

    mask = create_alternating_binary_mask(features, even=index % 2 == 0)
    if kind == "affine_coupling":
        return transforms.AffineCouplingTransform(mask, net)
    return transforms.PiecewiseRationalQuadraticCouplingTransform(
        mask, net, num_bins=config.num_bins, tails="linear", tail_bound=config.tail_bound
    )


def build_stack(features: int, context_features: int | None, config: StackConfig) -> transforms.Transform:
    """An invertible R^features -> R^features transform, conditional on a context when context_features > 0.

    nflows convention: ``forward`` maps data to latent and returns (outputs, log|det d outputs/d inputs|).
    """
    context = context_features or None
    layers: list[transforms.Transform] = []
    for index in range(config.n_layers):
        layers += [_linear(features, config), _step(features, context, index, config)]
    layers.append(_linear(features, config))
    return transforms.CompositeTransform(layers)
