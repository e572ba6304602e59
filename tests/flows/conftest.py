"""Small float64 models with non-trivial weights and scalers, shared by the flow tests."""

from __future__ import annotations

import pytest
import torch

from mflow_sbi.flows import ConditionalDensityModel, create_model

SMALL = {"n_layers": 2, "hidden_features": 16, "num_blocks": 1, "num_bins": 4}
DATA_DIM, LATENT_DIM, PARAMETER_DIM = 4, 2, 2

# (model type, conditional_outer): every model and variant of the family; "af" is the AF with spline
# couplings, "af_maf" the AF with masked affine autoregressive steps
VARIANTS = [("af", False), ("af_maf", False), ("pie", False), ("pie", True), ("mflow", False), ("mflow", True), ("emflow", False),
            ("emflow", True)]
VARIANT_IDS = [f"{kind}{'-cond' if cond else ''}" for kind, cond in VARIANTS]


def perturb(module: torch.nn.Module, seed: int, scale: float = 0.1) -> None:
    """Add seeded Gaussian noise to every parameter so that no transform sits at its identity init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def set_scalers(model: ConditionalDensityModel, seed: int) -> None:
    """Non-trivial standardizations: random means, scales between ~0.5 and ~2."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for scaler in (model.x_scaler, model.theta_scaler):
            features = scaler.mean.shape[0]
            scaler.mean.copy_(torch.randn(features, generator=generator, dtype=scaler.mean.dtype))
            scaler.scale.copy_(torch.exp(0.4 * torch.randn(features, generator=generator, dtype=scaler.mean.dtype)))
            if scaler.warped:  # the asinh warp's centre and width, on the same footing
                scaler.center.copy_(torch.randn(features, generator=generator, dtype=scaler.mean.dtype))
                scaler.width.copy_(torch.exp(0.4 * torch.randn(features, generator=generator, dtype=scaler.mean.dtype)))


def make_model(kind: str, conditional_outer: bool = False, seed: int = 0, data_dim: int = DATA_DIM,
               latent_dim: int = LATENT_DIM, parameter_dim: int = PARAMETER_DIM, **options) -> ConditionalDensityModel:
    """A float64 model in eval mode with perturbed weights and scalers."""
    torch.manual_seed(seed)
    if kind in ("af", "af_maf"):
        family = "maf" if kind == "af_maf" else "coupling"
        model = create_model("af", data_dim, parameter_dim, flow=dict(SMALL), ambient_transform=family, **options)
    else:
        extra = {"encoder": {"hidden_features": 16, "num_blocks": 1}} if kind == "emflow" else {}
        model = create_model(kind, data_dim, parameter_dim, latent_dim=latent_dim, outer=options.pop("outer", dict(SMALL)),
                             inner=dict(SMALL), conditional_outer=conditional_outer, **extra, **options)
    model = model.double()
    perturb(model, seed)
    set_scalers(model, seed)
    return model.eval()


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def any_model(request) -> ConditionalDensityModel:
    kind, conditional_outer = request.param
    return make_model(kind, conditional_outer)


def random_inputs(model: ConditionalDensityModel, rows: int, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-unit x and theta around the model's scaler means."""
    generator = torch.Generator().manual_seed(seed)
    x = model.x_scaler.inverse(torch.randn(rows, model.data_dim, generator=generator, dtype=torch.float64))
    theta = model.theta_scaler.inverse(torch.randn(rows, model.parameter_dim, generator=generator, dtype=torch.float64))
    return x, theta
