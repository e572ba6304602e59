"""The standardizations: affine and asinh-warped, against autograd and closed forms."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.flows import create_model, load_model
from mflow_sbi.flows.standardize import Standardizer, log_cosh


def heavy_tailed(n=4000, seed=0):
    """Columns: a log-normal energy-like feature, a Student-t momentum-like one, a normal one, a constant."""
    torch.manual_seed(seed)  # the Student-t sampler draws from the global generator
    g = torch.Generator().manual_seed(seed)
    energy = torch.exp(4.5 + 0.8 * torch.randn(n, generator=g, dtype=torch.float64))
    t = torch.distributions.StudentT(2.5).sample((n,)).double() * 40
    normal = 3 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return torch.stack([energy, t, normal, torch.full((n,), 7.0, dtype=torch.float64)], dim=1)


@pytest.mark.parametrize("kind", ["affine", "asinh"])
def test_round_trip_and_log_det_against_autograd(kind):
    x = heavy_tailed()
    scaler = Standardizer(4, kind).double().fit(x)
    z = scaler(x)
    torch.testing.assert_close(z.mean(0)[:3], torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(z.std(0)[:3], torch.ones(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(scaler.inverse(z), x, rtol=1e-10, atol=1e-8)
    for row in x[:5]:
        j = jacobian(lambda xi: scaler(xi[None])[0], row)
        expected = torch.linalg.slogdet(j)[1]
        got = scaler.log_abs_det(scaler(row[None]))
        torch.testing.assert_close(got.reshape(()), expected, rtol=1e-10, atol=1e-10)
        inverse_j = jacobian(lambda t: scaler.inverse(t[None])[0], scaler(row[None])[0])
        torch.testing.assert_close(torch.diagonal(inverse_j),
                                   scaler.inverse_derivative(scaler(row[None])).reshape(-1).expand(4),
                                   rtol=1e-10, atol=1e-10)


def test_asinh_tames_the_tails():
    """On heavy tails the warped features have no 15-sigma outliers, unlike the z-scores."""
    x = heavy_tailed()
    affine = Standardizer(4).double().fit(x)(x)
    warped = Standardizer(4, "asinh").double().fit(x)(x)
    assert float(affine[:, :2].abs().max()) > 8
    assert float(warped[:, :2].abs().max()) < 6
    assert torch.isfinite(warped).all()  # the constant column: width and scale 1, no division by zero


def test_log_cosh_is_stable():
    y = torch.tensor([0.0, 1.0, -3.0, 800.0, -800.0], dtype=torch.float64)
    torch.testing.assert_close(log_cosh(y[:3]), torch.log(torch.cosh(y[:3])))
    assert torch.isfinite(log_cosh(y)).all()
    torch.testing.assert_close(log_cosh(y[3:]), y[3:].abs() - torch.log(torch.tensor(2.0, dtype=torch.float64)))


def test_bad_kind_and_streaming_moments_are_refused():
    with pytest.raises(ConfigError, match="preprocessing must be one of"):
        Standardizer(3, "log")
    with pytest.raises(InputError, match="asinh.*in memory"):
        Standardizer(3, "asinh").set(torch.zeros(3), torch.ones(3))
    with pytest.raises(InputError, match="pass x_std"):
        Standardizer(3, "asinh").log_abs_det()


def test_preprocessing_is_saved_with_the_model(tmp_path):
    model = create_model("mflow", 4, 1, latent_dim=2, preprocessing="asinh",
                         outer={"n_layers": 1, "hidden_features": 8}, inner={"n_layers": 1, "hidden_features": 8})
    x = heavy_tailed(500)
    model.fit_scalers(x.float(), torch.zeros(500, 1))
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.x_scaler.kind == "asinh"
    torch.testing.assert_close(loaded.x_scaler.center, model.x_scaler.center)
    plain = create_model("mflow", 4, 1, latent_dim=2, outer={"n_layers": 1}, inner={"n_layers": 1})
    assert "preprocessing" not in plain.architecture()  # directories of earlier versions read the same
