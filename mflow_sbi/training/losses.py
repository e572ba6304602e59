"""Loss functions on standardized batches (x_std, theta_std[, t_xz]).

- reconstruction: mean ||x_std - project(x_std)||^2 (or smooth-L1 per coordinate, summed), optionally
  plus ``latent_l2`` * mean ||u'||^2;
- latent_nll: mean -log p(u'|theta) on precomputed latents (phase D with a frozen outer flow);
- nll: mean -log p(x|theta) in the given density mode (standardized units; the scaler's constant
  log-det is irrelevant for optimization).
"""

from __future__ import annotations

import torch
from torch.nn import functional

from mflow_sbi.flows.base import ConditionalDensityModel
from mflow_sbi.flows.manifold import ManifoldFlow


def reconstruction_loss(
    model: ManifoldFlow, x_std: torch.Tensor, theta_std: torch.Tensor, kind: str = "mse", latent_l2: float = 0.0
) -> torch.Tensor:
    context = model._outer_context(theta_std, x_std.shape[0])
    u = model._encode_std(x_std, context)
    reconstructed = model._decode_std(u, context)
    if kind == "smooth_l1":
        per_event = functional.smooth_l1_loss(reconstructed, x_std, reduction="none").sum(-1)
    else:
        per_event = ((reconstructed - x_std) ** 2).sum(-1)
    loss = per_event.mean()
    if latent_l2 > 0:
        loss = loss + latent_l2 * (u**2).sum(-1).mean()
    return loss


def latent_nll_loss(model: ManifoldFlow, u: torch.Tensor, theta_std: torch.Tensor) -> torch.Tensor:
    """mean -log p(u'|theta) of the inner flow: the fixed-manifold NLL without its outer-flow terms, which
    are constant while the outer flow is frozen (same gradients w.r.t. the inner flow)."""
    return -model._latent_log_prob_std(u, theta_std).mean()


def nll_loss(model: ConditionalDensityModel, x_std: torch.Tensor, theta_std: torch.Tensor, mode: str) -> torch.Tensor:
    return -model._log_prob_std(x_std, theta_std, mode).mean()
