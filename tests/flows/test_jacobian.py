"""Batched decoder Jacobians and log det(J^T J) against torch.autograd and linear algebra."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from mflow_sbi.errors import InputError
from mflow_sbi.flows.jacobian import (
    METHODS,
    RankDeficientJacobian,
    decoder_jacobian,
    log_det_metric,
    metric_condition_number,
)
from tests.flows.conftest import make_model


def decoder_and_points(conditional_outer: bool):
    model = make_model("mflow", conditional_outer=conditional_outer)
    generator = torch.Generator().manual_seed(4)
    u = torch.randn(5, model.latent_dim, generator=generator, dtype=torch.float64)
    context = torch.randn(5, model.parameter_dim, generator=generator, dtype=torch.float64) if conditional_outer else None
    return model, u, context


@pytest.mark.parametrize("conditional_outer", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_batched_jacobian_matches_autograd(method, conditional_outer):
    model, u, context = decoder_and_points(conditional_outer)
    got = decoder_jacobian(model._decode_raw, u, context, method=method)
    assert got.shape == (5, model.data_dim, model.latent_dim)
    for i in range(len(u)):
        row_context = None if context is None else context[i : i + 1]
        expected = jacobian(lambda ui, c=row_context: model._decode_raw(ui[None], c)[0], u[i])
        torch.testing.assert_close(got[i], expected, rtol=1e-10, atol=1e-12)


def test_log_det_metric_matches_slogdet():
    jac = torch.randn(6, 7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = torch.linalg.slogdet(jac.transpose(1, 2) @ jac)[1]
    torch.testing.assert_close(log_det_metric(jac), expected, rtol=1e-12, atol=1e-12)
    # float32 Jacobians are promoted: the result is float64
    assert log_det_metric(jac.float()).dtype == torch.float64


def test_rank_deficient_jacobian_names_the_events():
    jac = torch.randn(4, 5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    jac[2, :, 1] = 3.0 * jac[2, :, 0]
    with pytest.raises(RankDeficientJacobian, match=r"batch indices \[2\]"):
        log_det_metric(jac)


@pytest.mark.parametrize("conditional_outer", [False, True])
def test_parameter_gradients_of_the_batched_methods_match_the_loop(conditional_outer):
    model, u, context = decoder_and_points(conditional_outer)
    gradients = {}
    for method in ("double_backward", "loop") if conditional_outer else METHODS:
        model.zero_grad()
        points = u.clone().requires_grad_(True)
        jac = decoder_jacobian(model._decode_raw, points, context, method=method, create_graph=True)
        log_det_metric(jac).sum().backward()
        # parameters that only shift the decoder (a final bias) get no gradient: count them as zero
        gradients[method] = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.outer.parameters()]
        gradients[method].append(points.grad)
    assert any(float(g.abs().max()) > 0 for g in gradients["loop"])
    # torch lacks the reverse-over-forward derivative of the glu that gates nflows nets by a context
    for method in ("double_backward",) if conditional_outer else ("forward", "double_backward"):
        for ours, reference in zip(gradients[method], gradients["loop"], strict=True):
            torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12, msg=method)


def test_without_create_graph_no_graph_is_kept():
    model, u, _ = decoder_and_points(False)
    for method in METHODS:
        assert not decoder_jacobian(model._decode_raw, u.requires_grad_(True), method=method).requires_grad


def test_dropout_layers_get_one_draw_for_all_columns():
    """In training mode with dropout, every column of J belongs to the same random function."""
    torch.manual_seed(0)
    model = make_model("mflow", outer={"n_layers": 2, "hidden_features": 16, "num_blocks": 1, "num_bins": 4,
                                       "dropout": 0.5}).train()
    u = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.manual_seed(5)
    jac = decoder_jacobian(model._decode_raw, u)
    torch.manual_seed(5)  # same draw for the reference: the full Jacobian of one batched call
    expected = jacobian(lambda z: model._decode_raw(z, None), u).diagonal(dim1=0, dim2=2).permute(2, 0, 1)
    torch.testing.assert_close(jac, expected, rtol=1e-10, atol=1e-12)


def test_unknown_jacobian_method():
    model, u, _ = decoder_and_points(False)
    with pytest.raises(InputError, match="unknown Jacobian method 'reverse'"):
        decoder_jacobian(model._decode_raw, u, method="reverse")


def test_metric_condition_number_against_constructed_jacobians():
    """J = Q diag(s) (orthonormal Q): cond(J^T J) = (s_max / s_min)^2, whatever the rotation; a rank-deficient
    J gives a huge or infinite value."""
    generator = torch.Generator().manual_seed(1)
    q = torch.linalg.qr(torch.randn(6, 3, generator=generator, dtype=torch.float64))[0]
    s = torch.tensor([[2.0, 1.0, 0.5], [1.0, 1.0, 1.0], [1.0, 1e-3, 0.1]], dtype=torch.float64)
    jac = q[None] * s[:, None, :]
    torch.testing.assert_close(metric_condition_number(jac), torch.tensor([16.0, 1.0, 1e6], dtype=torch.float64))
    singular = jac[:1].clone()
    singular[0, :, 2] = singular[0, :, 0]
    assert metric_condition_number(singular)[0] > 1e20


def test_model_metric_condition_is_that_of_the_autograd_jacobian_at_the_encoded_point():
    model, _, _ = decoder_and_points(False)
    model = model.double()
    x = model.sample(torch.zeros(model.parameter_dim, dtype=torch.float64), 4, torch.Generator().manual_seed(2))
    u = model.encode(x)
    expected = torch.stack([metric_condition_number(jacobian(lambda ui: model._decode_raw(ui[None], None)[0], ui)[None])[0]
                            for ui in u])
    torch.testing.assert_close(model.metric_condition(x), expected, rtol=1e-8, atol=0)
