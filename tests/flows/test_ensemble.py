"""ModelEnsemble: the mean of its members' log-densities, cached or not, saved and loaded, and its sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.flows import ModelEnsemble, NoCachedLikelihood, load_model
from mflow_sbi.inference.likelihood import EnsembleLikelihood, ModelLikelihood
from mflow_sbi.inference.misspecification import distance_to_learned_manifold
from mflow_sbi.priors import IndependentPrior
from tests.flows.conftest import make_model, random_inputs


def members(kind: str = "mflow", seeds=(0, 1, 2)):
    prior = IndependentPrior.from_specs(["uniform(-3,3)", "normal(0,2)"])
    models = [make_model(kind, seed=seed) for seed in seeds]
    for model in models:
        model.prior = prior
    return models


def test_log_prob_is_the_mean_of_the_members():
    models = members()
    ensemble = ModelEnsemble(models)
    x, theta = random_inputs(models[0], 7)
    expected = torch.stack([m.log_prob(x, theta) for m in models]).mean(0)
    torch.testing.assert_close(ensemble.log_prob(x, theta), expected)
    assert len(ensemble) == 3 and ensemble.latent_dim == 2 and ensemble.parameter_dim == 2


def test_cached_encoding_reproduces_the_density_for_every_theta():
    ensemble = ModelEnsemble(members())
    assert ensemble.supports_cached_likelihood
    x, _ = random_inputs(ensemble.members[0], 6)
    u, const = ensemble.cache_observed(x)
    assert u.shape == (6, 3 * 2)
    for seed in (1, 2):
        _, theta = random_inputs(ensemble.members[0], 6, seed=seed)
        torch.testing.assert_close(ensemble.latent_log_prob(u, theta) + const, ensemble.log_prob(x, theta))
    with pytest.raises(InputError, match=r"shape \(N, 6\)"):
        ensemble.latent_log_prob(u[:, :4], theta)


def test_likelihood_of_the_ensemble_is_the_ensemble_of_likelihoods():
    models = members()
    x, _ = random_inputs(models[0], 9)
    theta = np.array([[0.1, -0.3], [1.0, 0.5], [-2.0, 0.0]])
    ensemble = ModelEnsemble(models)
    separate = EnsembleLikelihood([ModelLikelihood(m, x.numpy()) for m in models])(theta)
    np.testing.assert_allclose(ModelLikelihood(ensemble, x.numpy(), cache=True)(theta), separate, rtol=1e-6)
    np.testing.assert_allclose(ModelLikelihood(ensemble, x.numpy(), cache=False)(theta), separate, rtol=1e-6)


def test_ambient_members_have_no_cache_but_a_density():
    ensemble = ModelEnsemble(members("af", seeds=(0, 1)))
    assert not ensemble.supports_cached_likelihood and ensemble.latent_dim is None
    with pytest.raises(NoCachedLikelihood):
        ensemble.cache_observed(torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(NoCachedLikelihood):
        ensemble.latent_log_prob(torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    x, theta = random_inputs(ensemble.members[0], 4)
    torch.testing.assert_close(ensemble.log_prob(x, theta),
                               0.5 * (ensemble.members[0].log_prob(x, theta) + ensemble.members[1].log_prob(x, theta)))


def test_save_and_load_round_trip(tmp_path):
    ensemble = ModelEnsemble(members())
    ensemble.save(tmp_path / "ens")
    assert sorted(p.name for p in (tmp_path / "ens").iterdir() if p.is_dir()) == ["member_00", "member_01", "member_02"]
    loaded = load_model(tmp_path / "ens")
    assert isinstance(loaded, ModelEnsemble) and loaded.prior.specs == ensemble.prior.specs
    loaded = loaded.double()
    x, theta = random_inputs(ensemble.members[0], 5)
    torch.testing.assert_close(loaded.log_prob(x, theta), ensemble.log_prob(x, theta))


def test_broken_ensemble_directories_are_named(tmp_path):
    ModelEnsemble(members()).save(tmp_path / "ens")
    config = tmp_path / "ens" / "config.toml"
    config.write_text(config.read_text().replace("member_02", "member_09"))
    with pytest.raises(DataFileError, match="manifest"):  # edited after saving
        load_model(tmp_path / "ens")
    manifest = tmp_path / "ens" / "manifest.json"
    manifest.unlink()
    with pytest.raises(DataFileError, match=r"member_09: ensemble member listed .* missing"):
        load_model(tmp_path / "ens")
    config.write_text(config.read_text().replace('members = [', 'members_old = ['))
    with pytest.raises(DataFileError, match="'members', a non-empty list"):
        load_model(tmp_path / "ens")


def test_members_must_describe_the_same_problem():
    models = members(seeds=(0, 1))
    models[1].prior = IndependentPrior.from_specs(["uniform(-1,1)", "normal(0,2)"])
    with pytest.raises(InputError, match="member 1 has the prior"):
        ModelEnsemble(models)
    with pytest.raises(InputError, match="parameter"):
        ModelEnsemble([members(seeds=(0,))[0], make_model("mflow", seed=1, parameter_dim=1)])
    with pytest.raises(InputError, match="at least one"):
        ModelEnsemble([])
    with pytest.raises(InputError, match="models of one type"):
        ModelEnsemble([members(seeds=(0,))[0], *members("pie", seeds=(1,))])


def test_samples_come_from_the_members_mixture():
    """Every generated event lies on the learned manifold of one member (distance ~ 0 there, not on the
    others'), and each member contributes about n / K events."""
    models = members(seeds=(0, 1))
    ensemble = ModelEnsemble(models)
    theta = torch.tensor([0.2, -0.1], dtype=torch.float64)
    n = 400
    with torch.no_grad():
        x = ensemble.sample(theta, n, torch.Generator().manual_seed(3))
        again = ensemble.sample(theta, n, torch.Generator().manual_seed(3))
    torch.testing.assert_close(x, again)
    distances = np.stack([distance_to_learned_manifold(m, x.numpy()) for m in models])
    on = distances < 1e-4
    assert np.all(on.sum(axis=0) == 1)  # on exactly one member's manifold
    share = on[0].mean()
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / n)  # binomial(400, 1/2): 4 sd


def test_weights_fingerprint_covers_every_member(tmp_path):
    """What resumed infer/calibrate runs compare: an ensemble's fingerprint changes with any member's weights."""
    from mflow_sbi.flows import weights_sha256

    models = members(seeds=(0, 1))
    ModelEnsemble(models).save(tmp_path / "ens")
    before = weights_sha256(tmp_path / "ens")
    assert before is not None and before != weights_sha256(tmp_path / "ens" / "member_00")
    with torch.no_grad():
        next(models[1].parameters()).add_(1e-3)
    models[1].save(tmp_path / "ens" / "member_01")
    assert weights_sha256(tmp_path / "ens") not in (None, before)
    assert weights_sha256(tmp_path / "nothing") is None
