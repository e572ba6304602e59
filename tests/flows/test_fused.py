"""The fused stack evaluation (mflow_sbi.flows.fused) against nflows' own transforms, and against analytic truth."""

from __future__ import annotations

import pytest
import torch
from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline

from mflow_sbi.flows import ManifoldFlow
from mflow_sbi.flows.architecture import StackConfig
from mflow_sbi.flows.builders import build_stack
from mflow_sbi.flows.fused import is_fusable, rq_spline, stack_forward, stack_inverse
from tests.flows.conftest import perturb

SMALL = {"n_layers": 2, "hidden_features": 16, "num_blocks": 1, "num_bins": 4, "tail_bound": 2.0}


def stack(features: int, context: int | None, transform: str = "rq_coupling", seed: int = 0):
    torch.manual_seed(seed)
    result = build_stack(features, context, StackConfig(**{**SMALL, "transform": transform})).double()
    perturb(result, seed, 0.3)
    return result


def inputs(rows: int, features: int, seed: int) -> torch.Tensor:
    """Standard-normal rows scaled by 1.5: with tail bound 2, about a fifth of the elements lie in the linear tails."""
    return 1.5 * torch.randn(rows, features, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("context_features", [None, 2])
@pytest.mark.parametrize("features", [5, 6])
def test_fused_stack_matches_nflows_in_both_directions(features, context_features):
    transform = stack(features, context_features)
    x = inputs(300, features, 1)
    assert 0.1 < float((x.abs() > SMALL["tail_bound"]).double().mean()) < 0.4  # both branches are exercised
    context = None if context_features is None else inputs(300, context_features, 2)
    expected, expected_log_det = transform(x, context=context)
    got, log_det = stack_forward(transform, x, context)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_det, expected_log_det, rtol=1e-10, atol=1e-10)
    back, back_log_det = stack_inverse(transform, expected, context)
    expected_back, expected_back_log_det = transform.inverse(expected, context=context)
    torch.testing.assert_close(back, expected_back, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(back_log_det, expected_back_log_det, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(back, x, rtol=1e-9, atol=1e-9)  # analytic truth: the inverse undoes the map
    torch.testing.assert_close(back_log_det, -log_det, rtol=1e-9, atol=1e-9)


def test_fused_gradients_match_nflows():
    transform = stack(6, 2)
    x = inputs(200, 6, 3).requires_grad_(True)
    context = inputs(200, 2, 4)

    def gradients(function):
        outputs, log_det = function(x)
        loss = (outputs**2).sum() + log_det.sum()
        return torch.autograd.grad(loss, [x, *transform.parameters()])

    fused = gradients(lambda z: stack_forward(transform, z, context))
    reference = gradients(lambda z: transform(z, context=context))
    for got, expected in zip(fused, reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_log_det_is_skipped_on_request_and_outputs_do_not_change():
    transform = stack(5, None)
    x = inputs(50, 5, 5)
    outputs, log_det = stack_forward(transform, x, log_det=False)
    assert log_det is None
    torch.testing.assert_close(outputs, stack_forward(transform, x)[0], rtol=0, atol=0)


def test_spline_log_det_is_the_log_of_its_derivative():
    """Analytic truth on one spline: log|ds/dx| from the formula equals the log of the autograd derivative."""
    generator = torch.Generator().manual_seed(6)
    parameters = torch.randn(400, 1, 11, generator=generator, dtype=torch.float64)
    x = (3 * torch.rand(400, 1, generator=generator, dtype=torch.float64) - 1.5).requires_grad_(True)
    options = {"bound": 1.0, "min_bin_width": 1e-3, "min_bin_height": 1e-3, "min_derivative": 1e-3, "scale": 1.0}
    y, log_det = rq_spline(x, parameters, inverse=False, log_det=True, **options)
    (slope,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_det, slope.log().sum(-1), rtol=1e-10, atol=1e-10)
    reference, _ = unconstrained_rational_quadratic_spline(x.detach(), parameters[..., :4], parameters[..., 4:8],
                                                           parameters[..., 8:], tail_bound=1.0)
    torch.testing.assert_close(y.detach(), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transform", ["affine_coupling", "rq_autoregressive"])
def test_layers_that_are_not_fused_run_through_nflows(transform):
    layers = stack(4, 2, transform)
    assert not any(is_fusable(layer) for layer in layers._transforms)
    x, context = inputs(40, 4, 7), inputs(40, 2, 8)
    for got, expected in zip(stack_forward(layers, x, context), layers(x, context=context), strict=True):
        assert torch.equal(got, expected)


def test_model_with_fused_kernels_gives_the_same_densities_in_float32():
    """The switch that training uses: float32 M-flow log-densities in every mode agree to float32 rounding."""
    torch.manual_seed(0)
    model = ManifoldFlow(6, 2, 1, outer=SMALL, inner=SMALL)
    perturb(model, 1, 0.1)
    x, theta = inputs(64, 6, 9).float(), inputs(64, 1, 10).float()
    for mode in model.modes:
        reference = model.log_prob(x, theta, mode)
        model.flow_kernels = "fused"
        got = model.log_prob(x, theta, mode)
        model.flow_kernels = "nflows"
        torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4)
