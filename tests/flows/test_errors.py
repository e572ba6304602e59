"""Bad input raises specific exceptions that name what is wrong."""

from __future__ import annotations

import math

import pytest
import torch

from mflow_sbi.errors import ConfigError, DataFileError, InputError
from mflow_sbi.flows import PIE, EncoderManifoldFlow, ManifoldFlow, UnsupportedMode, create_model, load_model
from tests.flows.conftest import make_model


@pytest.fixture(scope="module")
def models():
    return {kind: make_model(kind) for kind in ("af", "pie", "mflow", "emflow")}


@pytest.mark.parametrize("kind", ["af", "pie", "mflow", "emflow"])
def test_bad_arrays(models, kind):
    model = models[kind]
    x = torch.zeros(3, 4, dtype=torch.float64)
    theta = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(InputError, match=r"x must have shape \(N, 4\), got \(3, 5\)"):
        model.log_prob(torch.zeros(3, 5), theta)
    with pytest.raises(InputError, match=r"x must have shape \(N, 4\), got \(4,\)"):
        model.log_prob(torch.zeros(4), theta)
    with pytest.raises(InputError, match=r"theta must have shape \(2,\) or \(3, 2\), got \(3,\)"):
        model.log_prob(x, torch.zeros(3))
    with pytest.raises(InputError, match=r"theta must have shape \(2,\) or \(3, 2\), got \(2, 2\)"):
        model.log_prob(x, torch.zeros(2, 2))
    for bad in (math.nan, math.inf, -math.inf):
        x_bad = x.clone()
        x_bad[1, 2] = bad
        with pytest.raises(InputError, match="x contains NaN or inf"):
            model.log_prob(x_bad, theta)
        with pytest.raises(InputError, match="theta contains NaN or inf"):
            model.log_prob(x, torch.tensor([0.0, bad]))
    with pytest.raises(InputError, match="theta must have shape"):
        model.sample(torch.zeros(3), 5)
    with pytest.raises(InputError, match="number of samples must be >= 1, got 0"):
        model.sample(theta, 0)


def test_unknown_and_inapplicable_modes(models):
    x, theta = torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    cases = {"af": "manifold", "mflow": "pie", "emflow": "pie", "pie": "ambient"}
    for kind, mode in cases.items():
        with pytest.raises(UnsupportedMode, match=f"has no density mode '{mode}'; available: "):
            models[kind].log_prob(x, theta, mode=mode)
    with pytest.raises(UnsupportedMode, match="no density mode 'exact'"):
        models["mflow"].cache_observed(x, mode="exact")


def test_af_has_no_manifold(models):
    assert models["af"].latent_dim is None
    assert not any(hasattr(models["af"], name) for name in ("encode", "decode", "project"))


def test_bad_latent_arrays(models):
    with pytest.raises(InputError, match=r"u must have shape \(N, 2\), got \(3, 3\)"):
        models["mflow"].decode(torch.zeros(3, 3))
    with pytest.raises(InputError, match="u contains NaN or inf"):
        models["pie"].latent_log_prob(torch.tensor([[0.0, math.nan]]), torch.zeros(2))


@pytest.mark.parametrize("cls", [ManifoldFlow, PIE, EncoderManifoldFlow])
@pytest.mark.parametrize("latent_dim", [0, 4, 5])
def test_latent_dim_must_be_below_data_dim(cls, latent_dim):
    with pytest.raises(InputError, match=f"latent_dim must satisfy 1 <= latent_dim < data_dim=4, got {latent_dim}"):
        cls(4, latent_dim, 2)


def test_bad_configuration():
    with pytest.raises(ConfigError, match="eps must be a finite positive number, got 0.0"):
        PIE(4, 2, 1, eps=0.0)
    with pytest.raises(ConfigError, match="jacobian_method must be one of"):
        ManifoldFlow(4, 2, 1, jacobian_method="numeric")
    with pytest.raises(ConfigError, match=r"unknown StackConfig option\(s\) \['layers'\]"):
        ManifoldFlow(4, 2, 1, outer={"layers": 3})
    with pytest.raises(ConfigError, match="transform must be one of"):
        create_model("af", 4, 1, flow={"transform": "planar"})
    with pytest.raises(ConfigError, match=r"unknown EncoderConfig option\(s\) \['width'\]"):
        EncoderManifoldFlow(4, 2, 1, encoder={"width": 3})
    with pytest.raises(InputError, match="unknown model type 'nsf'; available: af, pie, mflow, emflow"):
        create_model("nsf", 4, 1)
    with pytest.raises(InputError, match="model 'mflow' needs latent_dim"):
        create_model("mflow", 4, 1)
    with pytest.raises(InputError, match="model 'af' has no manifold"):
        create_model("af", 4, 1, latent_dim=2)
    with pytest.raises(InputError, match="model 'af'.*unexpected keyword argument 'eps'"):
        create_model("af", 4, 1, eps=0.1)


def test_bad_model_directories(tmp_path):
    with pytest.raises(DataFileError, match="not a model directory"):
        load_model(tmp_path)
    model = create_model("mflow", 3, 1, latent_dim=1)
    model.save(tmp_path / "m")
    with pytest.raises(DataFileError, match="model type 'mflow', expected 'pie'"):
        PIE.load(tmp_path / "m")
    (tmp_path / "m" / "weights.pt").unlink()
    with pytest.raises(DataFileError, match="weights.pt: no such file"):
        load_model(tmp_path / "m")
