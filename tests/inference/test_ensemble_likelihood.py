"""EnsembleLikelihood: the mean of the members' summed log-likelihoods, and their spread."""

from types import SimpleNamespace

import numpy as np
import pytest

from mflow_sbi.errors import InputError
from mflow_sbi.inference.likelihood import EnsembleLikelihood


class Quadratic(SimpleNamespace):
    def __call__(self, theta):
        return -0.5 * ((theta[:, 0] - self.center) / 0.1) ** 2


def test_mean_of_members_and_spread():
    members = [Quadratic(center=c, parameter_dim=1, fingerprint="x") for c in (-0.1, 0.0, 0.1)]
    ensemble = EnsembleLikelihood(members)
    theta = np.array([[-0.2], [0.0], [0.3]])
    values = np.stack([m(theta) for m in members])
    np.testing.assert_allclose(ensemble(theta), values.mean(0))
    np.testing.assert_allclose(ensemble.spread(theta), values.std(0, ddof=1))
    # the mean of three Gaussians' log densities centred at -0.1, 0, 0.1 peaks at their mean centre
    grid = np.linspace(-1, 1, 2001)[:, None]
    assert grid[np.argmax(ensemble(grid)), 0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(EnsembleLikelihood(members[:1]).spread(theta) == 0)


def test_members_must_agree():
    with pytest.raises(InputError, match="at least one"):
        EnsembleLikelihood([])
    with pytest.raises(InputError, match="observed data"):
        EnsembleLikelihood([Quadratic(center=0, parameter_dim=1, fingerprint="a"),
                            Quadratic(center=0, parameter_dim=1, fingerprint="b")])
