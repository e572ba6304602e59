"""M-flow (manifold-learning flow), Brehmer & Cranmer 2020 (arXiv:2003.13913); the base of PIE and Me-flow.

Coordinates are standardized inside the model (see ``base``). In standardized units:

- outer flow f: R^d -> R^d, a bijection; f(x) = (u', v) with u' in R^n, v in R^(d-n);
- decoder g(u') = f^{-1}(u', 0): injective R^n -> R^d, its image is the learned manifold;
- encoder u'(x) = first n coordinates of f(x); projection x -> g(u'(x));
- inner flow h(.|theta): R^n -> R^n with base N(0, I_n): u = h(u'|theta) (nflows "forward" direction);
  with ``inner_density = "morphing"`` the inner density is instead p_ref(u') r(u', theta): a theta-free flow
  h times a ratio of quadratic forms in (1, theta) (``morphing.py``), for parameters that enter the squared
  amplitudes quadratically (EFT couplings).

Densities per event (raw units; ``scale`` is the x standardization):

    latent:          log p(u'|theta)  = log N(h(u'|theta); 0, I) + log|det dh/du'|
    "manifold":      log p(x|theta)   = log p(u'|theta) - 1/2 log det(J^T J),  J = d x_raw / d u' (d x n)
                     (exact density on the learned manifold w.r.t. its area measure, evaluated at the
                     projection of x)
    "fixed_manifold": log p(u'|theta) + log|det df/dx_std| - sum log scale
                     (differs from "manifold" by a theta-independent term when theta conditions only h,
                     so it has the same gradients w.r.t. theta and the inner flow's parameters)

Subclasses: PIE (``pie.py``) adds a full-dimensional mode with v ~ N(0, eps^2 I); EncoderManifoldFlow
(``encoder.py``) replaces the encoder by a separate network.

The Jacobian J is computed batched (``jacobian.py``) with ``jacobian_method`` ("forward" by default). When
the model is in training mode and gradients are enabled, the "manifold" density is differentiable w.r.t.
the parameters (``create_graph=True``; with a conditional outer flow through "double_backward"); in eval
mode or under ``torch.no_grad()`` no graph is kept.

With ``conditional_outer=True`` theta also conditions f; then the encoding depends on theta and the
cached likelihood is unavailable.

The "manifold" density is computed in one place (``_volume_term``), in raw units. Its Jacobian is
J_raw = diag(s) J_std with J_std = d g / d u' in standardized units and s = d x_raw / d x_std at the decoded
point (the scales of the affine standardization; point-dependent with ``preprocessing = "asinh"``), so

    log det(J_raw^T J_raw) = log det(J_std^T diag(s)^2 J_std),

which differs from log det(J_std^T J_std) by a constant only when all s_j are equal constants. Training (the
simultaneous algorithm's S step) therefore maximizes this raw-unit density, the one that inference uses.

Training interface (standardized tensors in, differentiable): ``encode_std``, ``decode_std``,
``latent_log_prob_std`` and ``log_prob_std`` (the density per mode); ``manifold_parameters`` and
``density_parameters`` are the parameter groups of phases M and D.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.flows.architecture import INNER_DENSITIES, StackConfig, resolve_config
from mflow_sbi.flows.base import ArrayLike, ConditionalDensityModel, as_tensor, standard_noise
from mflow_sbi.flows.builders import build_stack
from mflow_sbi.flows.jacobian import (
    METHODS,
    decoder_jacobian,
    decoder_value_and_jacobian,
    log_det_metric,
    metric_condition_number,
)
from mflow_sbi.flows.morphing import SIR_CANDIDATES, MorphingRatio
from mflow_sbi.priors import IndependentPrior

DEFAULT_OUTER = StackConfig(n_layers=4, hidden_features=64)
DEFAULT_INNER = StackConfig(n_layers=4, hidden_features=64)


def standard_normal_log_prob(values: torch.Tensor) -> torch.Tensor:
    """sum_j log N(values_j; 0, 1) over the last axis."""
    return -0.5 * (values**2).sum(-1) - 0.5 * values.shape[-1] * math.log(2 * math.pi)


class ManifoldFlow(ConditionalDensityModel):
    """Conditional M-flow: outer flow, projection to n latent coordinates, conditional inner flow."""

    model_type = "mflow"
    display_name = "M-flow"
    modes = ("manifold", "fixed_manifold")
    default_mode = "manifold"
    needs_latent_dim = True

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        parameter_dim: int,
        outer: StackConfig | dict | None = None,
        inner: StackConfig | dict | None = None,
        conditional_outer: bool = False,
        jacobian_method: str = "forward",
        parameter_names: tuple[str, ...] | list[str] | None = None,
        prior: IndependentPrior | None = None,
        preprocessing: str = "affine",
        inner_density: str = "flow",
    ) -> None:
        super().__init__(data_dim, parameter_dim, parameter_names=parameter_names, prior=prior,
                         preprocessing=preprocessing)
        if inner_density not in INNER_DENSITIES:
            raise ConfigError(f"inner_density must be one of {INNER_DENSITIES}, got {inner_density!r}")
        if inner_density == "morphing" and conditional_outer:
            raise ConfigError("inner_density = \"morphing\" needs a theta-free outer flow (conditional_outer = false): "
                              "its ratio is a function of latents that do not depend on theta")
        if not 1 <= latent_dim < data_dim:
            raise InputError(f"latent_dim must satisfy 1 <= latent_dim < data_dim={data_dim}, got {latent_dim}")
        if jacobian_method not in METHODS:
            raise ConfigError(f"jacobian_method must be one of {METHODS}, got {jacobian_method!r}")
        self.latent_dim = int(latent_dim)
        self.conditional_outer = bool(conditional_outer)
        self.jacobian_method = jacobian_method
        self.outer_config = resolve_config(outer, DEFAULT_OUTER)
        self.inner_config = resolve_config(inner, DEFAULT_INNER)
        self.outer = build_stack(data_dim, parameter_dim if conditional_outer else None, self.outer_config)
        self.inner_density = inner_density
        morphing = inner_density == "morphing"
        self.inner = build_stack(latent_dim, None if morphing else parameter_dim, self.inner_config)
        self.morphing = MorphingRatio(latent_dim, parameter_dim) if morphing else None

    def architecture(self) -> dict[str, Any]:
        return {
            **super().architecture(),
            "latent_dim": self.latent_dim,
            "conditional_outer": self.conditional_outer,
            "jacobian_method": self.jacobian_method,
            "outer": vars(self.outer_config).copy(),
            "inner": vars(self.inner_config).copy(),
            **({"inner_density": self.inner_density} if self.morphing is not None else {}),
        }

    def manifold_parameters(self) -> list[nn.Parameter]:
        """Parameters that shape the manifold (the outer flow); trained in phase M."""
        return list(self.outer.parameters())

    def density_parameters(self) -> list[nn.Parameter]:
        """Parameters of the density on the manifold: the inner flow (phase D), and a morphing ratio's network
        (phase R of sequential training)."""
        return list(self.inner.parameters()) + self.ratio_parameters()

    def ratio_parameters(self) -> list[nn.Parameter]:
        """The morphing ratio network's parameters (part of the density parameters; none for a flow inner
        density): sequential training fits them in a phase of their own (``mflow_sbi.training.algorithms``)."""
        return [] if self.morphing is None else list(self.morphing.parameters())

    def fit_latent_normalization(self, chunks: Iterable[tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        """Store the morphing ratio's normalization S from latent chunks (u', weights or None): see
        ``morphing.py``; nothing to do for a flow inner density (normalized by construction)."""
        if self.morphing is not None:
            self.morphing.fit_normalization(chunks)

    # --- standardized-space building blocks ----------------------------------------------------------
    def _outer_context(self, theta_std: torch.Tensor | None, rows: int) -> torch.Tensor | None:
        if not self.conditional_outer:
            return None
        if theta_std is None:
            raise InputError("this model has conditional_outer=True: encode/decode/project need theta")
        return theta_std.expand(rows, -1) if theta_std.ndim == 1 else theta_std

    def _outer_forward(self, x_std: torch.Tensor, context: torch.Tensor | None,
                       log_det: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """f(x_std) = (u', v) concatenated, and log|det df/dx_std| (possibly None without ``log_det``)."""
        return self.run_stack(self.outer, x_std, context, log_det=log_det)

    def _outer_inverse(
        self, u: torch.Tensor, v: torch.Tensor | None, context: torch.Tensor | None, log_det: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """f^{-1}(u', v) (v = 0 when None) and log|det df^{-1}/d(u', v)| (possibly None without ``log_det``)."""
        if v is None:
            v = u.new_zeros(u.shape[0], self.data_dim - self.latent_dim)
        return self.run_stack(self.outer, torch.cat([u, v], dim=1), context, inverse=True, log_det=log_det)

    def _encode_std(self, x_std: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """u'(x_std): the first n coordinates of f(x_std)."""
        return self._outer_forward(x_std, context, log_det=False)[0][:, : self.latent_dim]

    def _decode_std(self, u: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """g(u') = f^{-1}(u', 0) in standardized units."""
        return self._outer_inverse(u, None, context, log_det=False)[0]

    def _decode_raw(self, u: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        return self.x_scaler.inverse(self._decode_std(u, context))

    def _latent_log_prob_std(self, u: torch.Tensor, theta_std: torch.Tensor) -> torch.Tensor:
        if self.morphing is None:
            noise, log_det = self.run_stack(self.inner, u, theta_std)
            return standard_normal_log_prob(noise) + log_det
        noise, log_det = self.run_stack(self.inner, u)
        return standard_normal_log_prob(noise) + log_det + self.morphing.log_ratio(u, theta_std)

    def _sample_latent_std(self, theta_std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """u' ~ p(u'|theta) per row of theta_std: the inner flow's inverse, or with a morphing inner density
        sampling-importance-resampling from SIR_CANDIDATES draws of p_ref per row."""
        rows = theta_std.shape[0]
        if self.morphing is None:
            noise = standard_noise((rows, self.latent_dim), generator, theta_std)
            return self.run_stack(self.inner, noise, theta_std, inverse=True, log_det=False)[0]
        noise = standard_noise((rows * SIR_CANDIDATES, self.latent_dim), generator, theta_std)
        candidates = self.run_stack(self.inner, noise, inverse=True, log_det=False)[0]
        return self.morphing.resample(candidates.view(rows, SIR_CANDIDATES, self.latent_dim), theta_std, generator)

    def _decoded_and_volume(self, u: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(g(u') in standardized units, -1/2 log det(J^T J)) with J = d x_raw / d u' = diag(s) d g / d u', both from one
        decoder evaluation (``decoder_value_and_jacobian``), differentiable in training mode and, with a conditional
        outer flow, whenever theta carries gradients (the SCANDAL score of validation batches)."""
        wants_theta_gradient = context is not None and context.requires_grad
        differentiable = torch.is_grad_enabled() and (self.training or wants_theta_gradient)
        method = self.jacobian_method
        if differentiable and context is not None and method == "forward":
            method = "double_backward"  # no reverse-over-forward derivative of the context gating (see jacobian.py)
        decoded, jacobian_std = decoder_value_and_jacobian(self._decode_std, u, context, method=method,
                                                           create_graph=differentiable)
        jacobian = jacobian_std * self.x_scaler.inverse_derivative(decoded).unsqueeze(-1)
        return decoded, (-0.5 * log_det_metric(jacobian)).to(u.dtype)

    def _volume_term(self, u: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """-1/2 log det(J^T J) with J = d x_raw / d u' at u' (see ``_decoded_and_volume``)."""
        return self._decoded_and_volume(u, context)[1]

    def _split(self, x_std: torch.Tensor, context: torch.Tensor | None, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(u', c) with log p(x|theta) = latent_log_prob(u'|theta) + c; c depends on theta only via the context."""
        if mode == "manifold":
            u = self._encode_std(x_std, context)
            return u, self._volume_term(u, context)
        h, outer_log_det = self._outer_forward(x_std, context)
        u = h[:, : self.latent_dim]
        const = outer_log_det + self.x_scaler.log_abs_det(x_std)
        if mode == "pie":
            const = const + self._off_manifold_log_prob(h[:, self.latent_dim :])
        return u, const

    def _off_manifold_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log density of the off-manifold coordinates v (PIE only)."""
        raise NotImplementedError(f"{type(self).__name__} has no density for the off-manifold coordinates")

    def _off_manifold_sample(self, rows: int, generator: torch.Generator | None) -> torch.Tensor | None:
        """Off-manifold coordinates v of samples: None (v = 0, on the manifold) for M-flows."""
        return None

    def _log_prob_std(self, x_std: torch.Tensor, theta_std: torch.Tensor, mode: str) -> torch.Tensor:
        u, const = self._split(x_std, self._outer_context(theta_std, x_std.shape[0]), mode)
        return self._latent_log_prob_std(u, theta_std) + const

    def _sample_std(self, theta_std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        rows = theta_std.shape[0]
        u = self._sample_latent_std(theta_std, generator)
        v = self._off_manifold_sample(rows, generator)
        return self._outer_inverse(u, v, self._outer_context(theta_std, rows), log_det=False)[0]

    # --- training interface (standardized units, see the module docstring) ----------------------------------
    def encode_std(self, x_std: torch.Tensor, theta_std: torch.Tensor | None = None) -> torch.Tensor:
        """u'(x_std), shape (N, n); theta_std (p,) or (N, p) only with conditional_outer."""
        return self._encode_std(x_std, self._outer_context(theta_std, x_std.shape[0]))

    def decode_std(self, u: torch.Tensor, theta_std: torch.Tensor | None = None) -> torch.Tensor:
        """g(u') in standardized units, shape (N, d); theta_std only with conditional_outer."""
        return self._decode_std(u, self._outer_context(theta_std, u.shape[0]))

    def latent_log_prob_std(self, u: torch.Tensor, theta_std: torch.Tensor) -> torch.Tensor:
        """log p(u'|theta) of the inner flow for standardized theta, shape (N,)."""
        return self._latent_log_prob_std(u, theta_std)

    def manifold_terms_std(self, x_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u', g(u') in standardized units, -1/2 log det(J^T J)) for a theta-free outer flow, with one encoder and
        one decoder pass: the reconstruction of the simultaneous step and the volume term of its "manifold"
        density (log p(x|theta) = latent_log_prob_std(u', theta) + volume) share the decoder evaluation."""
        if self.conditional_outer:
            raise InputError("manifold_terms_std needs a theta-free outer flow (conditional_outer=False)")
        u = self._encode_std(x_std, None)
        return (u, *self._decoded_and_volume(u, None))

    # --- public latent-space API (raw units in and out) --------------------------------------------------
    def _context_for(self, theta: ArrayLike | None, rows: int) -> torch.Tensor | None:
        if not self.conditional_outer:
            return None
        if theta is None:
            raise InputError("this model has conditional_outer=True: encode/decode/project need theta")
        return self.theta_scaler(self.check_theta(theta, rows))

    def check_u(self, u: ArrayLike) -> torch.Tensor:
        """Latent coordinates as a (N, n) tensor of the model's dtype, finite."""
        u = as_tensor(u, self.float_dtype, self.device)
        if u.ndim != 2 or u.shape[1] != self.latent_dim:
            raise InputError(f"u must have shape (N, {self.latent_dim}), got {tuple(u.shape)}")
        if not bool(torch.isfinite(u).all()):
            raise InputError("u contains NaN or inf values")
        return u

    def encode(self, x: ArrayLike, theta: ArrayLike | None = None) -> torch.Tensor:
        """Latent coordinates u' (N, n) of x on the learned manifold (theta only with conditional_outer)."""
        x = self.check_x(x)
        return self._encode_std(self.x_scaler(x), self._context_for(theta, x.shape[0]))

    def decode(self, u: ArrayLike, theta: ArrayLike | None = None) -> torch.Tensor:
        """The point g(u') on the learned manifold, raw units, (N, d)."""
        u = self.check_u(u)
        return self._decode_raw(u, self._context_for(theta, u.shape[0]))

    def project(self, x: ArrayLike, theta: ArrayLike | None = None) -> torch.Tensor:
        """decode(encode(x)): the projection of x onto the learned manifold."""
        return self.decode(self.encode(x, theta), theta)

    def metric_condition(self, x: ArrayLike, theta: ArrayLike | None = None) -> torch.Tensor:
        """cond(J^T J) of the decoder at the latent coordinates of x, shape (N,): large values (above
        :data:`~mflow_sbi.flows.jacobian.ILL_CONDITIONED`) mean the manifold density's volume term
        -1/2 log det(J^T J) is numerically unreliable there."""
        u = self.encode(x, theta)
        context = self._context_for(theta, u.shape[0])
        return metric_condition_number(decoder_jacobian(self._decode_raw, u, context, method="forward"))

    # --- cached likelihood for inference ---------------------------------------------------------------
    @property
    def supports_cached_likelihood(self) -> bool:
        return not self.conditional_outer

    def cache_observed(self, x: ArrayLike, mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(u', c) such that log_prob(x, theta, mode) == latent_log_prob(u', theta) + c for every theta."""
        if not self.supports_cached_likelihood:
            return super().cache_observed(x, mode)
        mode = self.check_mode(mode)
        x = self.check_x(x)
        return self._split(self.x_scaler(x), None, mode)

    def latent_log_prob(self, u: ArrayLike, theta: ArrayLike) -> torch.Tensor:
        """log p(u'|theta) of the inner flow, shape (N,)."""
        if not self.supports_cached_likelihood:
            return super().latent_log_prob(u, theta)
        u = self.check_u(u)
        theta = self.check_theta(theta, u.shape[0])
        return self._latent_log_prob_std(u, self.theta_scaler(theta))

    @property
    def summary_dim(self) -> int:
        """Columns of :meth:`latent_summary`: n for a flow inner density, (p + 1)^2 for a morphing one."""
        return self.latent_dim if self.morphing is None else self.morphing.size**2

    def latent_summary(self, u: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, c) with latent_log_prob(u', theta) == summary_log_prob(s, theta) + c for every theta: the inner
        density's theta-free work, done once per observed event. A flow inner density keeps s = u' (c = 0); a
        morphing one keeps R(u') flattened, (N, (p+1)^2), and c = log p_ref(u'), so that every further theta costs
        one quadratic form per event instead of a pass through the networks."""
        u = self.check_u(u)
        if self.morphing is None:
            return u, u.new_zeros(u.shape[0])
        noise, log_det = self.run_stack(self.inner, u)
        return self.morphing.matrices(u).flatten(1), standard_normal_log_prob(noise) + log_det

    def summary_log_prob(self, summary: ArrayLike, theta: ArrayLike) -> torch.Tensor:
        """latent_log_prob(u', theta) minus the theta-free c of :meth:`latent_summary`, from its s; shape (N,)."""
        if self.morphing is None:
            return self.latent_log_prob(summary, theta)
        summary = as_tensor(summary, self.float_dtype, self.device)
        size = self.morphing.size
        if summary.ndim != 2 or summary.shape[1] != size * size:
            raise InputError(f"latent summaries must have shape (N, {size * size}), got {tuple(summary.shape)}")
        theta = self.check_theta(theta, summary.shape[0])
        return self.morphing.log_ratio_of(summary.view(-1, size, size), self.theta_scaler(theta))
