"""AF (ambient flow): a conditional flow on the full x, the standard neural likelihood baseline.

With the conditional bijection f(.|theta): R^d -> R^d (nflows "forward" direction, data -> noise) and
base N(0, I_d), in raw units:

    "ambient":  log p(x|theta) = log N(f(x_std|theta); 0, I) + log|det df/dx_std| - sum log scale

x and theta enter z-scored (x_std = (x - mean) / scale with the training set's moments, likewise theta;
``fit_scalers``). theta conditions the whole map, so there is no theta-free encoding and no cached
likelihood, and no manifold (encode/decode/project do not exist on an AF).

The stack of f is one of two families (``ambient_transform``):

- ``"coupling"``: rational-quadratic spline couplings (``DEFAULT_FLOWS["coupling"]``: 6 layers of LU mixing
  and a spline coupling whose conditioner sees half of the features);
- ``"maf"``: a masked autoregressive flow (Papamakarios et al. 2017; sbi's default NLE estimator is one),
  ``DEFAULT_FLOWS["maf"]``: 5 layers of LU mixing and a masked affine autoregressive step, in which
  every output coordinate is an affine function of its input whose shift and scale depend on all
  preceding coordinates and theta;
- ``"auto"`` (the default): the family of ``flow.transform`` when one is given, else ``AUTO_FAMILY``
  (``"coupling"``) at every data dimension. Measured in docs/benchmarks.md ("Hard posteriors: the density",
  5,000 simulations, held-out log-likelihood): with the default training (up to 300 epochs, early
  stopping) the coupling stack is better on SLCP at every data dimension tried, d = 2, 4 and 8, by 0.48,
  0.69 and 0.82 nats (with the earlier 30-epoch budget by 1.09, 0.19 and 0.42); the MAF only on the 3-D
  polynomial surface, whose data lie on a 2-D manifold (by 0.34 nats; an M-flow's case). At d = 8 with
  10^4 simulations (the SLCP posterior benchmark) the converged MAF was ahead instead, slightly in held-out
  log-likelihood (0.09 nats) and clearly in posterior C2ST (0.678 against 0.774; sbi's NLE 0.741): the
  evidence at d = 8 is split, so the rule does not depend on the dimension yet. The MAF trains 2-3.5x faster
  per epoch.

``flow`` (a ``StackConfig`` or dict) replaces the family's default stack; a dict without ``transform``
gets the family's step (``FAMILY_STEP``), and an explicit ``transform`` must belong to the family
(under ``"auto"`` it decides the family).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from mflow_sbi.errors import InputError
from mflow_sbi.flows.architecture import AMBIENT_TRANSFORMS, AUTOREGRESSIVE_TYPES, StackConfig, resolve_config
from mflow_sbi.flows.base import ConditionalDensityModel, standard_noise
from mflow_sbi.flows.builders import build_stack
from mflow_sbi.flows.manifold import standard_normal_log_prob
from mflow_sbi.priors import IndependentPrior

DEFAULT_FLOWS = {
    "coupling": StackConfig(n_layers=6, hidden_features=64),
    "maf": StackConfig(n_layers=5, transform="affine_autoregressive", hidden_features=64),
}
FAMILY_STEP = {"coupling": "rq_coupling", "maf": "affine_autoregressive"}
AUTO_FAMILY = "coupling"


def family_of(transform: str) -> str:
    """The AF family ("coupling" or "maf") of a stack step type."""
    return "maf" if transform in AUTOREGRESSIVE_TYPES else "coupling"


def resolve_ambient_flow(ambient_transform: str, flow: StackConfig | dict | None) -> tuple[str, StackConfig]:
    """(family, stack) for ``AmbientFlow`` (see the module docstring for the rules)."""
    if ambient_transform not in AMBIENT_TRANSFORMS:
        raise InputError(f"ambient_transform must be one of {AMBIENT_TRANSFORMS}, got {ambient_transform!r}")
    given = vars(flow) if isinstance(flow, StackConfig) else dict(flow or {})
    if ambient_transform == "auto":
        family = family_of(given["transform"]) if "transform" in given else AUTO_FAMILY
    else:
        family = ambient_transform
    if flow is None:
        return family, DEFAULT_FLOWS[family]
    if "transform" not in given:
        return family, dataclasses.replace(resolve_config(given, DEFAULT_FLOWS[family]), transform=FAMILY_STEP[family])
    config = resolve_config(flow, DEFAULT_FLOWS[family])
    if family_of(config.transform) != family:
        raise InputError(f"ambient_transform = {ambient_transform!r} takes a {family} step, but flow.transform is "
                         f"{config.transform!r} (a {family_of(config.transform)} step)")
    return family, config


class AmbientFlow(ConditionalDensityModel):
    """Conditional ambient flow p(x|theta) on R^d."""

    model_type = "af"
    display_name = "AF"
    modes = ("ambient",)
    default_mode = "ambient"

    def __init__(
        self,
        data_dim: int,
        parameter_dim: int,
        flow: StackConfig | dict | None = None,
        parameter_names: tuple[str, ...] | list[str] | None = None,
        prior: IndependentPrior | None = None,
        ambient_transform: str = "auto",
        preprocessing: str = "affine",
    ) -> None:
        super().__init__(data_dim, parameter_dim, parameter_names=parameter_names, prior=prior,
                         preprocessing=preprocessing)
        self.ambient_transform, self.flow_config = resolve_ambient_flow(ambient_transform, flow)
        self.flow = build_stack(data_dim, parameter_dim, self.flow_config)

    def architecture(self) -> dict[str, Any]:
        return {**super().architecture(), "ambient_transform": self.ambient_transform,
                "flow": vars(self.flow_config).copy()}

    def _log_prob_std(self, x_std: torch.Tensor, theta_std: torch.Tensor, mode: str) -> torch.Tensor:
        noise, log_det = self.run_stack(self.flow, x_std, theta_std)
        return standard_normal_log_prob(noise) + log_det + self.x_scaler.log_abs_det(x_std)

    def _sample_std(self, theta_std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = standard_noise((theta_std.shape[0], self.data_dim), generator, theta_std)
        return self.run_stack(self.flow, noise, theta_std, inverse=True, log_det=False)[0]
