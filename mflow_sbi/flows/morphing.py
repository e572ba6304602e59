"""Morphing-aware density ratio on the latent coordinates of an M-flow (``inner_density = "morphing"``).

At the LHC, a measurement of dimension-six EFT couplings theta = (theta_1 .. theta_p) has squared matrix
elements that are quadratic in the couplings: for every phase-space point z,

    |M(z|theta)|^2 = c(theta)^T W(z) c(theta),   c(theta) = (1, theta_1, ..., theta_p),

with W(z) a positive semi-definite (p+1) x (p+1) matrix (SM, interference and squared terms; the structure
behind "morphing", e.g. Brehmer, Cranmer, Louppe & Pavez, arXiv:1805.00020). Every density of observables
that comes from such events is then

    p(u|theta) = p0(u) c^T W(u) c / sigma(theta),   sigma(theta) = c^T Sigma c,   Sigma = E_p0[W],

a quadratic form in c divided by another. An affine change of the parameters (the model's theta
standardization) keeps both quadratic, so c is built from the standardized theta here.

This module learns that structure on the M-flow's latent coordinates u. With p_ref the density of the
training latents (all training parameter points together, a theta-free flow) the model is

    p(u|theta) = p_ref(u) r(u, theta),   r(u, theta) = c^T R(u) c / c^T S c,   S = E_{p_ref}[R(u)],

with R(u) = L(u) L(u)^T + eps I (L a (p+1) x (p+1) matrix from a small network; positive definite, so r > 0).
S makes every p(.|theta) integrate to one exactly, whatever R is, and the truth is of this form with
R = W / m, m(u) = E_theta[c^T W c / sigma] (the mixture over the training parameters). Only r depends on
theta: a posterior of events u_1..u_N uses

    sum_i log p(u_i|theta) = sum_i log c^T R(u_i) c - N log c^T S c + (terms without theta),

so its theta dependence is exactly a ratio of quadratics, which is what a data set can pin down with few
events, and the flow p_ref only adds a theta-free term.

S is a mean over the training latents. While training (train mode, gradients on), each batch's own mean of
R(u) stands in for it, so the normalization follows the network; before each validation the trainer stores the
mean over all training latents (:meth:`MorphingRatio.fit_normalization`), and evaluation uses the stored S.
Sequential training fits p_ref and the ratio in phases of their own (D, then R; mflow_sbi.training.algorithms).

Sampling p(u|theta) is sampling-importance-resampling: candidates from p_ref, one of them kept per row with
probabilities proportional to r (exact as the number of candidates grows; ``SIR_CANDIDATES`` per row).

The assumption is the quadratic dependence on theta; parameters that enter otherwise (a jet-energy-scale
nuisance, a mass) are outside it, and such a model should keep ``inner_density = "flow"``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

HIDDEN_FEATURES = 128
HIDDEN_LAYERS = 3
JITTER = 1e-3  # eps in R = L L^T + eps I, relative to the initial R = I
SIR_CANDIDATES = 256


def morphing_basis(theta_std: torch.Tensor) -> torch.Tensor:
    """c(theta) = (1, theta_1, ..., theta_p) per row, shape (N, p + 1)."""
    return torch.cat([torch.ones_like(theta_std[:, :1]), theta_std], dim=1)


def quadratic_form(matrices: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """c^T M c per row: ``matrices`` (N, k, k) or (k, k), ``basis`` (N, k); shape (N,)."""
    if matrices.ndim == 2:
        return ((basis @ matrices) * basis).sum(-1)
    return torch.einsum("ni,nij,nj->n", basis, matrices, basis)


class MorphingRatio(nn.Module):
    """r(u, theta) = c^T R(u) c / c^T S c on n latent coordinates for p parameters (module docstring)."""

    def __init__(self, features: int, parameter_dim: int, hidden_features: int = HIDDEN_FEATURES,
                 hidden_layers: int = HIDDEN_LAYERS) -> None:
        super().__init__()
        self.size = parameter_dim + 1
        layers: list[nn.Module] = []
        width = features
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_features), nn.SiLU()]
            width = hidden_features
        last = nn.Linear(width, self.size * self.size)
        nn.init.zeros_(last.weight)  # R(u) = I (+ eps I) at the start: r = 1 for every theta
        with torch.no_grad():
            last.bias.copy_(torch.eye(self.size).flatten())
        self.net = nn.Sequential(*layers, last)
        self.register_buffer("normalization", torch.eye(self.size) * (1 + JITTER))

    def matrices(self, u: torch.Tensor) -> torch.Tensor:
        """R(u) = L L^T + eps I, shape (N, k, k) with k = p + 1."""
        factor = self.net(u).view(-1, self.size, self.size)
        eye = torch.eye(self.size, dtype=u.dtype, device=u.device)
        return factor @ factor.transpose(1, 2) + JITTER * eye

    def log_ratio(self, u: torch.Tensor, theta_std: torch.Tensor) -> torch.Tensor:
        """log r(u, theta) per row, shape (N,); S from the batch while training with gradients, else stored."""
        matrices = self.matrices(u)
        batch_normalization = self.training and torch.is_grad_enabled()
        return self.log_ratio_of(matrices, theta_std, matrices.mean(0) if batch_normalization else None)

    def log_ratio_of(self, matrices: torch.Tensor, theta_std: torch.Tensor,
                     normalization: torch.Tensor | None = None) -> torch.Tensor:
        """log c^T R c - log c^T S c per row from precomputed R(u) (N, k, k) (the cached likelihood keeps R(u'_i)
        of the observed events and evaluates only this); S the stored normalization unless given."""
        basis = morphing_basis(theta_std)
        normalization = self.normalization if normalization is None else normalization
        return torch.log(quadratic_form(matrices, basis)) - torch.log(quadratic_form(normalization, basis))

    @torch.no_grad()
    def fit_normalization(self, chunks: Iterable[tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        """Store S = (weighted) mean of R(u) over latent chunks (u, weights or None), e.g. all training latents."""
        total = torch.zeros_like(self.normalization)
        mass = 0.0
        for u, weights in chunks:
            matrices = self.matrices(u.to(self.normalization.dtype))
            if weights is None:
                total += matrices.sum(0)
                mass += u.shape[0]
            else:
                total += torch.einsum("n,nij->ij", weights.to(matrices.dtype), matrices)
                mass += float(weights.sum())
        if mass > 0:
            self.normalization.copy_(total / mass)

    def resample(self, candidates: torch.Tensor, theta_std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One of each row's candidates (``candidates`` (N, K, n)) drawn with probability proportional to
        r(candidate, theta_row); shape (N, n)."""
        rows, count, features = candidates.shape
        flat = candidates.reshape(rows * count, features)
        log_r = self.log_ratio(flat, theta_std.repeat_interleave(count, dim=0)).view(rows, count)
        probabilities = torch.softmax(log_r.double(), dim=1).cpu()
        chosen = torch.multinomial(probabilities, 1, generator=generator).squeeze(1).to(candidates.device)
        return candidates[torch.arange(rows, device=candidates.device), chosen]
