"""Round trips, sampling, the latent API, construction by type name and save/load of every model."""

from __future__ import annotations

import pytest
import torch

import mflow_sbi
from mflow_sbi.flows import (
    MODEL_TYPES,
    PIE,
    AmbientFlow,
    EncoderManifoldFlow,
    ManifoldFlow,
    StackConfig,
    create_model,
    load_model,
)
from mflow_sbi.flows.architecture import LINEAR_TYPES, TRANSFORM_TYPES
from mflow_sbi.flows.builders import build_stack
from mflow_sbi.inference.priors import box_uniform
from tests.flows.conftest import VARIANT_IDS, VARIANTS, make_model, random_inputs


def test_registry_and_lazy_exports():
    assert MODEL_TYPES == {"af": AmbientFlow, "pie": PIE, "mflow": ManifoldFlow, "emflow": EncoderManifoldFlow}
    assert (mflow_sbi.AmbientFlow, mflow_sbi.PIE, mflow_sbi.ManifoldFlow) == (AmbientFlow, PIE, ManifoldFlow)
    assert (mflow_sbi.EncoderManifoldFlow, mflow_sbi.load_model) == (EncoderManifoldFlow, load_model)


@pytest.mark.parametrize("transform", TRANSFORM_TYPES)
@pytest.mark.parametrize("linear", LINEAR_TYPES)
@pytest.mark.parametrize("features", [1, 3])
def test_every_stack_inverts_and_has_the_autograd_log_det(transform, linear, features):
    torch.manual_seed(0)
    stack = build_stack(features, 2, StackConfig(n_layers=2, transform=transform, linear=linear, hidden_features=8,
                                                 num_blocks=1, num_bins=4)).double().eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, features, generator=generator, dtype=torch.float64)
    context = torch.randn(3, 2, generator=generator, dtype=torch.float64)
    y, log_det = stack(x, context=context)
    back, inverse_log_det = stack.inverse(y, context=context)
    torch.testing.assert_close(back, x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=1e-9, atol=1e-9)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda xi, c=context[i : i + 1]: stack(xi[None], context=c)[0][0], x[i])
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jac)[1], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["mflow", "pie"])
def test_encode_decode_project_round_trips(kind):
    model = make_model(kind)
    generator = torch.Generator().manual_seed(2)
    u = torch.randn(6, model.latent_dim, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(model.encode(model.decode(u)), u, rtol=1e-9, atol=1e-9)
    x, _ = random_inputs(model, 6)
    projected = model.project(x)
    torch.testing.assert_close(model.project(projected), projected, rtol=1e-9, atol=1e-9)
    assert float((projected - x).abs().max().detach()) > 1e-3  # random x is off the manifold


def test_conditional_outer_encoding_needs_and_uses_theta():
    model = make_model("mflow", conditional_outer=True)
    x, theta = random_inputs(model, 4)
    with pytest.raises(mflow_sbi.errors.InputError, match="conditional_outer=True"):
        model.encode(x)
    u = model.encode(x, theta)
    torch.testing.assert_close(model.encode(model.decode(u, theta), theta), u, rtol=1e-9, atol=1e-9)
    assert float((model.encode(x, theta[0]) - model.encode(x, theta[1])).abs().max().detach()) > 1e-4


def test_encoder_flow_decodes_with_the_outer_flow_and_trains_the_encoder_in_phase_m():
    model = make_model("emflow")
    u = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    padded = torch.cat([u, torch.zeros(3, model.data_dim - model.latent_dim, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(model.decode(u), model.x_scaler.inverse(model.outer.inverse(padded)[0]))
    x, _ = random_inputs(model, 3)
    torch.testing.assert_close(model.encode(x), model.encoder(model.x_scaler(x)))
    manifold_ids = {id(p) for p in model.manifold_parameters()}
    assert {id(p) for p in model.encoder.parameters()} <= manifold_ids
    assert {id(p) for p in model.outer.parameters()} <= manifold_ids
    assert not manifold_ids & {id(p) for p in model.density_parameters()}


@pytest.mark.parametrize("kind", ["mflow", "emflow"])
def test_manifold_samples_lie_on_the_manifold(kind):
    model = make_model(kind)
    theta = model.theta_scaler.mean
    x = model.sample(theta, 50, generator=torch.Generator().manual_seed(0))
    assert x.shape == (50, model.data_dim) and x.dtype == torch.float64
    latent = ManifoldFlow._encode_std(model, model.x_scaler(x), None)  # the outer flow's own u'
    torch.testing.assert_close(model._decode_raw(latent, None), x, rtol=1e-8, atol=1e-8)


def test_pie_samples_have_off_manifold_width_eps():
    model = make_model("pie", eps=0.2)
    x = model.sample(model.theta_scaler.mean, 4000, generator=torch.Generator().manual_seed(0))
    v = model.outer(model.x_scaler(x))[0][:, model.latent_dim :]
    std = v.std(dim=0)
    assert float((std / 0.2 - 1).abs().max().detach()) < 0.06  # ~4 sigma for 4000 samples


@pytest.mark.parametrize(("kind", "conditional_outer"), VARIANTS, ids=VARIANT_IDS)
def test_sampling_is_seeded_and_reproduces_the_ambient_inverse(kind, conditional_outer):
    model = make_model(kind, conditional_outer)
    theta = model.theta_scaler.mean + 0.1
    first = model.sample(theta, 5, generator=torch.Generator().manual_seed(3))
    second = model.sample(theta, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
    if kind in ("af", "af_maf"):  # sample = f^{-1}(z|theta) for the same noise z; and f(f^{-1}(z)) = z
        context = model.theta_scaler(theta).expand(5, -1)
        noise = torch.randn(5, model.data_dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        torch.testing.assert_close(model.flow(model.x_scaler(first), context=context)[0], noise, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(("kind", "conditional_outer"), VARIANTS, ids=VARIANT_IDS)
def test_save_load_round_trip_is_bit_identical(kind, conditional_outer, tmp_path):
    model = make_model(kind, conditional_outer).float()
    model.prior = box_uniform([-1.0, 0.0], [1.0, 2.0])
    model.parameter_names = ("a", "b")
    x, theta = random_inputs(model, 6)
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.architecture() == model.architecture()
    assert loaded.parameter_names == ("a", "b") and loaded.prior.specs == model.prior.specs
    for mode in model.modes:
        assert torch.equal(loaded.log_prob(x, theta, mode), model.log_prob(x, theta, mode)), mode
    assert torch.equal(loaded.sample(theta[0], 4, torch.Generator().manual_seed(1)),
                       model.sample(theta[0], 4, torch.Generator().manual_seed(1)))
    assert (tmp_path / "model" / "versions.json").is_file()


def test_create_model_defaults_and_options():
    for kind in ("pie", "mflow", "emflow"):
        model = create_model(kind, 6, 2, latent_dim=3, conditional_outer=None, outer=None)
        assert (model.data_dim, model.latent_dim, model.parameter_dim) == (6, 3, 2)
        assert model.log_prob(torch.randn(4, 6), torch.randn(2)).shape == (4,)
    assert create_model("pie", 3, 1, latent_dim=1).eps == 0.01
    assert create_model("pie", 3, 1, latent_dim=1, eps=0.1).eps == 0.1
    af = create_model("af", 3, 1, flow={"transform": "affine_coupling", "linear": "permutation"})
    assert af.latent_dim is None and af.flow_config.transform == "affine_coupling"
    assert not af.supports_cached_likelihood


def test_ambient_transform_picks_the_stack_family():
    """"auto" takes the family of flow.transform when given, else AUTO_FAMILY (coupling) at every data dimension
    (measured: 2, 3, 4, 8); a flow table without transform gets the family's step; a transform of the other
    family is refused."""
    from mflow_sbi.flows.ambient import AUTO_FAMILY, DEFAULT_FLOWS

    assert AUTO_FAMILY == "coupling"
    for data_dim in (2, 3, 4, 8):
        model = create_model("af", data_dim, 1)
        assert (model.ambient_transform, model.flow_config) == (AUTO_FAMILY, DEFAULT_FLOWS[AUTO_FAMILY])
    assert create_model("af", 8, 1, ambient_transform="coupling").flow_config == DEFAULT_FLOWS["coupling"]
    assert create_model("af", 8, 1, ambient_transform="maf").flow_config == DEFAULT_FLOWS["maf"]
    maf = create_model("af", 2, 1, ambient_transform="maf", flow={"n_layers": 2})
    assert (maf.flow_config.transform, maf.flow_config.n_layers) == ("affine_autoregressive", 2)
    spline_maf = create_model("af", 2, 1, flow={"transform": "rq_autoregressive"})
    assert spline_maf.ambient_transform == "maf" and spline_maf.architecture()["ambient_transform"] == "maf"
    assert create_model("af", 8, 1, flow={"transform": "affine_coupling"}).ambient_transform == "coupling"
    with pytest.raises(mflow_sbi.errors.InputError, match="takes a coupling step, but flow.transform is 'rq_autoregressive'"):
        create_model("af", 3, 1, ambient_transform="coupling", flow={"transform": "rq_autoregressive"})
    with pytest.raises(mflow_sbi.errors.InputError, match="ambient_transform must be one of"):
        create_model("af", 3, 1, ambient_transform="nsf")


def test_a_damaged_model_directory_is_refused_with_the_file_named(tmp_path):
    """The manifest's SHA-256 catches a truncated or replaced weights file; a directory without a manifest (0.1)
    still loads; an unreadable weights file is a DataFileError, never a pickle or torch traceback."""
    import json

    from mflow_sbi.errors import DataFileError

    torch.manual_seed(0)
    directory = create_model("mflow", data_dim=3, parameter_dim=1, latent_dim=2).save(tmp_path / "model")
    recorded = json.loads((directory / "manifest.json").read_text())
    assert set(recorded) == {"config.toml", "weights.pt"}
    load_model(directory)
    weights = (directory / "weights.pt").read_bytes()
    (directory / "weights.pt").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(DataFileError, match=r"weights.pt: does not match the SHA-256 recorded in manifest.json"):
        load_model(directory)
    (directory / "manifest.json").unlink()
    with pytest.raises(DataFileError, match=r"weights.pt: cannot load the weights"):
        load_model(directory)
    (directory / "weights.pt").write_bytes(weights)
    load_model(directory)
