"""Training speed switches (flow_kernels, compile, the shared simultaneous pass) leave the math unchanged."""

from __future__ import annotations

import logging

import pytest
import torch

from mflow_sbi.errors import ConfigError
from mflow_sbi.flows import ManifoldFlow
from mflow_sbi.flows.base import flow_kernels
from mflow_sbi.training import TrainingConfig, build_phases, train_model
from mflow_sbi.training import speed as speed_module
from mflow_sbi.training.speed import CompiledLoss
from tests.training.helpers import polynomial_data

SPLINES = {"n_layers": 1, "hidden_features": 8, "num_blocks": 1, "num_bins": 4}


def spline_mflow(seed: int = 0) -> ManifoldFlow:
    torch.manual_seed(seed)
    return ManifoldFlow(3, 2, 1, outer=SPLINES, inner=SPLINES)


def gradients(model, step, batch) -> tuple[dict, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    terms = step.loss(batch)
    step.total(terms).backward()
    return {k: v.detach() for k, v in terms.items()}, [p.grad.clone() for p in step.parameters if p.grad is not None]


def test_training_with_fused_kernels_follows_the_nflows_trajectory():
    """Same seed, same math: the per-epoch losses of both kernels agree to float32 rounding, and the model's
    kernel setting is restored after training."""
    x, theta = polynomial_data(400, seed=1)
    curves = {}
    for kernels in ("nflows", "fused"):
        model = spline_mflow()
        config = TrainingConfig(algorithm="sequential", epochs_m=2, epochs_d=2, batch_size=100, flow_kernels=kernels)
        history = train_model(model, x, theta, config, progress=False)
        assert model.flow_kernels == "nflows"
        curves[kernels] = [record["val"]["loss"] for record in history.records]
    assert curves["fused"] == pytest.approx(curves["nflows"], rel=1e-3)


def test_simultaneous_step_shares_the_decoder_pass_without_changing_loss_or_gradients():
    """The S step from one encoder and one decoder pass equals the old separate passes (flow_kernels = "nflows"),
    terms and gradients, for both the jvp ("forward") and the double-backward Jacobian."""
    x, theta = (torch.as_tensor(a, dtype=torch.float32) for a in polynomial_data(64, seed=2))
    for method in ("forward", "double_backward"):
        results = {}
        for kernels in ("nflows", "fused"):
            model = spline_mflow()
            model.jacobian_method = method
            model.fit_scalers(x, theta)
            model.train()
            config = TrainingConfig(algorithm="simultaneous", epochs_pretrain=0, epochs_posttrain=0, flow_kernels=kernels)
            step = build_phases(model, config)[0].steps[0]
            batch = (model.x_scaler(x), model.theta_scaler(theta))
            with flow_kernels(model, kernels):
                results[kernels] = gradients(model, step, batch)
        (terms_old, grads_old), (terms_new, grads_new) = results["nflows"], results["fused"]
        assert terms_new.keys() == terms_old.keys() == {"reconstruction", "nll"}
        for name in terms_old:
            torch.testing.assert_close(terms_new[name], terms_old[name], rtol=1e-5, atol=1e-5)
        for new, old in zip(grads_new, grads_old, strict=True):
            torch.testing.assert_close(new, old, rtol=1e-3, atol=1e-4)


def test_compiled_phase_m_loss_and_gradients_equal_eager():
    """torch.compile (inductor) of the phase-M loss of a one-layer spline M-flow: terms and gradients equal the
    eager ones within float32 tolerance, for a batch and for a batch of another size (dynamic shapes)."""
    x, theta = (torch.as_tensor(a, dtype=torch.float32) for a in polynomial_data(96, seed=3))
    model = spline_mflow()
    model.fit_scalers(x, theta)
    model.train()
    step = build_phases(model, TrainingConfig(algorithm="sequential"))[0].steps[0]
    compiled = CompiledLoss(step.loss, step)
    eager_loss = step.loss
    with flow_kernels(model, "fused"):
        for rows in (64, 32):
            batch = (model.x_scaler(x[:rows]), model.theta_scaler(theta[:rows]))
            step.loss = eager_loss
            eager_terms, eager_grads = gradients(model, step, batch)
            step.loss = compiled
            compiled_terms, compiled_grads = gradients(model, step, batch)
            assert compiled.compiled is not None  # it really compiled
            torch.testing.assert_close(compiled_terms["reconstruction"], eager_terms["reconstruction"], rtol=1e-5, atol=1e-6)
            for got, expected in zip(compiled_grads, eager_grads, strict=True):
                torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    """When the compiled function cannot be built, training logs one warning and runs the eager loss: the same
    losses as a run without compile."""
    def broken_compile(function, **options):
        def fails(*args):
            raise RuntimeError("no C++ compiler found\nsecond line")
        return fails

    monkeypatch.setattr(speed_module.torch, "compile", broken_compile)
    x, theta = polynomial_data(200, seed=4)
    curves = {}
    for compile_ in (False, True):
        model = spline_mflow()
        config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, batch_size=100, compile=compile_)
        with caplog.at_level(logging.WARNING, logger="mflow_sbi.training.speed"):
            history = train_model(model, x, theta, config, progress=False)
        curves[compile_] = [record["val"]["loss"] for record in history.records]
    warnings = [r.getMessage() for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 2  # once per step (M and D), then eager for good
    assert "no C++ compiler found" in warnings[0] and "second line" not in warnings[0]
    assert curves[True] == curves[False]


def test_speed_keys_are_validated():
    with pytest.raises(ConfigError, match="flow_kernels"):
        TrainingConfig(flow_kernels="cuda")
    with pytest.raises(ConfigError, match="compile"):
        TrainingConfig(compile="yes")
