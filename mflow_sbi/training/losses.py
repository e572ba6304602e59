"""Loss terms on standardized batches (x_std, theta_std). Each returns a per-event tensor (N,); callers average.

With x_std = (x - m_x)/s_x and theta_std = (theta - m_t)/s_t (the model's scalers):

- reconstruction: ||x_std - g(u'(x_std))||^2 (squared error summed over coordinates), or the smooth-L1 (Huber,
  beta = 1) loss summed over coordinates;
- latent L2: ||u'||^2, a penalty that keeps the latent coordinates small;
- latent NLL: -log p(u'|theta) of the inner flow on given latents. While the outer flow is frozen this differs
  from the fixed-manifold NLL by a term without inner-flow parameters or theta (same gradients);
- model NLL: -log p(x|theta) in one of the model's density modes (``model.log_prob_std``): "ambient" for AF,
  "pie" for PIE, and "manifold" for the simultaneous step, the exact density on the learned manifold
      -log p(u'|theta) + 1/2 log det(J_raw^T J_raw),   J_raw = d x_raw / d u'  (d x n),
  differentiable w.r.t. the decoder's parameters in training mode (see ``mflow_sbi.flows.manifold``);
- SCANDAL score loss: |grad_theta log p_model(x|theta) - t_xz|^2 with theta in raw units. Since
  theta_std = (theta - m_t)/s_t, grad_theta = grad_theta_std / s_t, and the x scaler only adds a constant.

Weighted events: with per-event weights w_i (normalized once to mean 1 over the training events,
:func:`mflow_sbi.training.tensors.normalized_weights`) every term's batch mean becomes
``weighted_mean`` = (1/B) sum_i w_i l_i, an unbiased estimate of the weighted mean over the whole training set
(for integer weights, of the mean over the sample with every event repeated w_i times). Negative weights enter
the same way; a batch's weighted loss can then be negative or have a large variance (docs/physics.md).

The full-dimensional NLLs in raw units differ from those in standardized units by the constant
sum_j log s_x,j; the manifold NLL does not (its volume term sees the scales through J_raw = diag(s_x) J_std).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional


def reconstruction_error(reconstructed: torch.Tensor, x_std: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Per-event reconstruction error, summed over coordinates."""
    if kind == "smooth_l1":
        return functional.smooth_l1_loss(reconstructed, x_std, reduction="none").sum(-1)
    return ((reconstructed - x_std) ** 2).sum(-1)


def encode_decode(model, x_std: torch.Tensor, theta_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u', g(u')) for an M-flow-like model (theta_std conditions the outer flow when it is conditional)."""
    theta = theta_std if model.conditional_outer else None
    u = model.encode_std(x_std, theta)
    return u, model.decode_std(u, theta)


def log_prob_and_score(
    log_prob: Callable[[torch.Tensor], torch.Tensor], theta_std: torch.Tensor, theta_scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p per event, grad_theta log p per event in raw theta units), both differentiable.

    ``log_prob(theta_std)`` must treat events independently (row i depends only on theta_std[i]), so the
    gradient of the summed log density gives every event's own score. Works under ``torch.no_grad`` too.
    """
    with torch.enable_grad():
        theta = theta_std.detach().requires_grad_(True)
        values = log_prob(theta)
        (gradient,) = torch.autograd.grad(values.sum(), theta, create_graph=True)
    return values, gradient / theta_scale


def score_error(model_score: torch.Tensor, t_xz: torch.Tensor) -> torch.Tensor:
    """Per-event squared error |model_score - t_xz|^2 (the SCANDAL term)."""
    return ((model_score - t_xz) ** 2).sum(-1)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """(1/B) sum_i w_i values_i over a batch of B events, or the plain mean without weights."""
    return values.mean() if weights is None else (values * weights).mean()
