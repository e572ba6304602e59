"""Every model's log_prob in every mode against a reference built from torch.autograd Jacobians.

The reference treats the model's maps (outer flow, inner flow, encoder, scaler) as black boxes and
recomputes each density per event from the change-of-variables formula with full Jacobians from
``torch.autograd.functional.jacobian`` and ``slogdet`` (all in float64).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from mflow_sbi.flows import AmbientFlow, EncoderManifoldFlow, NoCachedLikelihood
from tests.flows.conftest import VARIANT_IDS, VARIANTS, make_model, random_inputs


def std_normal(values: torch.Tensor) -> torch.Tensor:
    return -0.5 * (values**2).sum() - 0.5 * values.numel() * math.log(2 * math.pi)


def log_abs_det(matrix: torch.Tensor) -> torch.Tensor:
    return torch.linalg.slogdet(matrix)[1]


def reference_log_prob(model, x: torch.Tensor, theta: torch.Tensor, mode: str) -> torch.Tensor:
    """log p(x|theta) for one event x (d,), theta (p,) by the change-of-variables formula."""
    theta_std = model.theta_scaler(theta)[None]
    if isinstance(model, AmbientFlow):
        def to_noise(xi):
            return model.flow(model.x_scaler(xi[None]), context=theta_std)[0][0]
        return std_normal(to_noise(x)) + log_abs_det(jacobian(to_noise, x))

    context = theta_std if model.conditional_outer else None
    n = model.latent_dim

    def outer(xi):  # x_raw -> (u', v)
        return model.outer(model.x_scaler(xi[None]), context=context)[0][0]

    def inner(ui):  # u' -> noise
        return model.inner(ui[None], context=theta_std)[0][0]

    if isinstance(model, EncoderManifoldFlow):
        u = model.encoder(model.x_scaler(x[None]), context=context)[0]
    else:
        u = outer(x)[:n]
    latent = std_normal(inner(u)) + log_abs_det(jacobian(inner, u))
    if mode == "manifold":
        decoder_jac = jacobian(lambda ui: model._decode_raw(ui[None], context)[0], u)
        return latent - 0.5 * log_abs_det(decoder_jac.T @ decoder_jac)
    if mode == "fixed_manifold":
        at = model._decode_raw(u[None], context)[0] if isinstance(model, EncoderManifoldFlow) else x
        return latent + log_abs_det(jacobian(outer, at))
    assert mode == "pie"

    def full(xi):  # x_raw -> (noise, v / eps): a bijection of R^d whose image has density N(0, I)
        h = outer(xi)
        return torch.cat([inner(h[:n]), h[n:] / model.eps])
    return std_normal(full(x)) + log_abs_det(jacobian(full, x))


@pytest.mark.parametrize("preprocessing", ["affine", "asinh"])
@pytest.mark.parametrize(("kind", "conditional_outer"), VARIANTS, ids=VARIANT_IDS)
def test_log_prob_matches_autograd_reference(kind, conditional_outer, preprocessing):
    model = make_model(kind, conditional_outer, preprocessing=preprocessing)
    x, theta = random_inputs(model, 4)
    for mode in model.modes:
        got = model.log_prob(x, theta, mode=mode)
        expected = torch.stack([reference_log_prob(model, x[i], theta[i], mode) for i in range(len(x))])
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9, msg=f"mode {mode}")


@pytest.mark.parametrize("method", ["double_backward", "loop"])
def test_manifold_density_same_with_every_jacobian_method(method):
    model = make_model("mflow")
    x, theta = random_inputs(model, 6)
    expected = model.log_prob(x, theta)
    model.jacobian_method = method
    torch.testing.assert_close(model.log_prob(x, theta), expected, rtol=1e-12, atol=1e-12)


def test_manifold_density_is_differentiable_in_training_mode():
    """In training mode the exact density carries gradients to the outer flow; they match a finite difference."""
    model = make_model("mflow").train()
    x, theta = random_inputs(model, 3)
    weight = next(p for name, p in model.outer.named_parameters() if "lower_entries" in name)
    model.log_prob(x, theta).sum().backward()
    direction = torch.randn(weight.shape, generator=torch.Generator().manual_seed(3), dtype=weight.dtype)
    step = 1e-6
    with torch.no_grad():
        weight.add_(step * direction)
        up = model.log_prob(x, theta).sum()
        weight.sub_(2 * step * direction)
        down = model.log_prob(x, theta).sum()
        weight.add_(step * direction)
    torch.testing.assert_close((weight.grad * direction).sum(), (up - down) / (2 * step), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["mflow", "pie", "emflow"])
def test_fixed_manifold_minus_exact_does_not_depend_on_theta(kind):
    model = make_model(kind)
    x, _ = random_inputs(model, 5)
    differences = []
    for seed in range(4):
        _, theta = random_inputs(model, 1, seed=100 + seed)
        differences.append(model.log_prob(x, theta[0], "fixed_manifold") - model.log_prob(x, theta[0], "manifold"))
    spread = torch.stack(differences).std(dim=0)
    assert float(spread.max().detach()) < 1e-10
    # the check is able to fail: with a theta-conditioned outer flow the difference does move with theta
    model = make_model(kind, conditional_outer=True)
    moved = [model.log_prob(x, t, "fixed_manifold") - model.log_prob(x, t, "manifold")
             for t in random_inputs(model, 2, seed=7)[1]]
    assert float((moved[0] - moved[1]).abs().max().detach()) > 1e-4


@pytest.mark.parametrize("preprocessing", ["affine", "asinh"])
@pytest.mark.parametrize(("kind", "conditional_outer"), VARIANTS, ids=VARIANT_IDS)
def test_cached_likelihood_reproduces_log_prob(kind, conditional_outer, preprocessing):
    model = make_model(kind, conditional_outer, preprocessing=preprocessing)
    x, _ = random_inputs(model, 5)
    if not model.supports_cached_likelihood:
        with pytest.raises(NoCachedLikelihood, match="cached likelihood"):
            model.cache_observed(x)
        with pytest.raises(NoCachedLikelihood):
            model.latent_log_prob(torch.zeros(5, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
        return
    for mode in model.modes:
        u, const = model.cache_observed(x, mode=mode)
        for theta in random_inputs(model, 3, seed=11)[1]:
            torch.testing.assert_close(model.latent_log_prob(u, theta) + const, model.log_prob(x, theta, mode),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("preprocessing", ["affine", "asinh"])
def test_pie_density_integrates_to_one_over_a_box(preprocessing):
    """2-D PIE (n = 1) with eps = 0.5: the trapezoid rule over a box holding all the mass gives 1, with the
    asinh warp too (its Jacobian enters the density). The box is +-9 in standardized units t, and the integral
    is taken over t: int p(x) dx = int p(x(t)) prod_j dx_j/dt_j dt, with dx/dt = s (affine) or
    s w cosh(s t + m) (x = c + w sinh(s t + m), asinh) written out here."""
    model = make_model("pie", data_dim=2, latent_dim=1, eps=0.5, preprocessing=preprocessing)
    scaler = model.x_scaler
    axis = torch.linspace(-9.0, 9.0, 301, dtype=torch.float64)
    t = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    if preprocessing == "affine":
        x, dx_dt = t * scaler.scale + scaler.mean, scaler.scale.expand_as(t)
    else:
        warped = scaler.scale * t + scaler.mean
        x, dx_dt = scaler.center + scaler.width * torch.sinh(warped), scaler.scale * scaler.width * torch.cosh(warped)
    theta = model.theta_scaler.mean

    def integral(mode):
        with torch.no_grad():
            density = (model.log_prob(x, theta, mode).exp() * dx_dt.prod(dim=1)).reshape(301, 301)
        return float(torch.trapezoid(torch.trapezoid(density, axis, dim=1), axis))

    assert abs(integral("pie") - 1.0) < 2e-3
    # the manifold-restricted modes are not densities on R^2: the same integral is far from 1
    assert abs(integral("fixed_manifold") - 1.0) > 0.1


def test_conditional_outer_manifold_density_is_differentiable_in_training_mode():
    model = make_model("pie", conditional_outer=True).train()
    x, theta = random_inputs(model, 3)
    theta = theta.clone().requires_grad_(True)
    model.log_prob(x, theta, "manifold").sum().backward()
    assert all(p.grad is not None for p in model.inner.parameters())
    assert float(theta.grad.abs().max()) > 0


@pytest.mark.parametrize("kind", ["mflow", "emflow"])
def test_manifold_density_uses_the_raw_jacobian_diag_s_times_the_standardized_one(kind):
    """J_raw = diag(s) J_std: log p = log p(u') - 1/2 log det(J_std^T diag(s)^2 J_std), which is not the
    standardized-unit density shifted by a constant when the scales differ."""
    model = make_model(kind)
    scale = model.x_scaler.scale
    assert float(scale.max() / scale.min()) > 1.5
    x, theta = random_inputs(model, 5)
    x_std, theta_std = model.x_scaler(x), model.theta_scaler(theta)
    with torch.no_grad():
        u = model.encode_std(x_std)
        latent = model.latent_log_prob_std(u, theta_std)
    raw, standardized = [], []
    for ui in u:
        j_std = jacobian(lambda v: model.decode_std(v[None])[0], ui)
        raw.append(0.5 * log_abs_det(j_std.T @ torch.diag(scale**2) @ j_std))
        standardized.append(0.5 * log_abs_det(j_std.T @ j_std))
    raw, standardized = torch.stack(raw), torch.stack(standardized)
    torch.testing.assert_close(model.log_prob(x, theta, "manifold"), latent - raw, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(model.log_prob_std(x_std, theta_std, "manifold"), latent - raw, rtol=1e-9, atol=1e-9)
    assert float((raw - standardized).std()) > 1e-3


def test_conditional_outer_manifold_density_has_its_theta_gradient_in_eval_mode():
    """The SCANDAL score of a validation batch (eval mode) sees the volume term's theta dependence."""
    model = make_model("mflow", conditional_outer=True).eval()
    x, theta = random_inputs(model, 3)
    x_std = model.x_scaler(x)
    theta_std = model.theta_scaler(theta).requires_grad_(True)
    (gradient,) = torch.autograd.grad(model.log_prob_std(x_std, theta_std, "manifold").sum(), theta_std)
    direction = torch.randn(theta_std.shape, generator=torch.Generator().manual_seed(1), dtype=theta_std.dtype)
    step = 1e-6
    with torch.no_grad():
        up = model.log_prob_std(x_std, theta_std + step * direction, "manifold").sum()
        down = model.log_prob_std(x_std, theta_std - step * direction, "manifold").sum()
    torch.testing.assert_close((gradient * direction).sum(), (up - down) / (2 * step), rtol=1e-5, atol=1e-7)
