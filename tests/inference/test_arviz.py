"""Posterior.to_arviz: the kept draws as ArviZ's posterior group (chain = walker), log_prob in sample_stats,
provenance as attributes, the burn-in as the warm-up groups; the same content as the netCDF export."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from scipy.io import netcdf_file

from mflow_sbi.errors import MissingDependency
from mflow_sbi.inference.export import export_posterior
from mflow_sbi.inference.posterior import Posterior


def walker_posterior(steps: int = 30, walkers: int = 4, burn_in: int = 5) -> tuple[Posterior, np.ndarray]:
    """Chain values encode (step, walker, parameter): theta_0 = 1000 step + walker, theta 1 = -theta_0 - 0.5."""
    step, walker = np.meshgrid(np.arange(steps), np.arange(walkers), indexing="ij")
    chain = np.stack([1000 * step + walker, -(1000 * step + walker) - 0.5], axis=-1).astype(float)
    log_prob = chain[:, :, 0] / 1e4
    kept = chain[burn_in:]
    posterior = Posterior(kept.reshape(-1, 2), log_prob[burn_in:].ravel(), ("theta_0", "theta 1"),
                          (r"$\theta_0$", r"$\theta_1$"), {"acceptance_fraction": 0.4},
                          {"sampler": {"n_walkers": walkers, "burn_in": burn_in}, "observed_fingerprint": "ab12"},
                          chain=kept, chain_log_prob=log_prob[burn_in:], burn_in_chain=chain[:burn_in],
                          burn_in_log_prob=log_prob[:burn_in])
    return posterior, chain


def test_posterior_group_is_walkers_by_kept_draws_with_names_labels_and_attributes():
    posterior, chain = walker_posterior()
    tree = posterior.to_arviz()
    assert set(tree.children) == {"posterior", "sample_stats"}
    group = tree["posterior"]
    assert dict(group.sizes) == {"chain": 4, "draw": 25}
    assert group["theta_0"].dims == ("chain", "draw")
    np.testing.assert_array_equal(group["theta_0"].values, chain[5:, :, 0].T)  # chain k = walker k
    np.testing.assert_array_equal(group["theta_1"].values, chain[5:, :, 1].T)  # "theta 1" made a safe name
    assert group["theta_1"].attrs["parameter_name"] == "theta 1" and group["theta_1"].attrs["label"] == r"$\theta_1$"
    np.testing.assert_array_equal(tree["sample_stats"]["log_prob"].values, chain[5:, :, 0].T / 1e4)
    for attrs in (tree.attrs, group.attrs, tree["sample_stats"].attrs):
        assert attrs["observed_fingerprint"] == "ab12" and attrs["inference_library"] == "emcee"
        assert json.loads(attrs["sampler"]) == {"n_walkers": 4, "burn_in": 5}
        assert json.loads(attrs["diagnostics"]) == {"acceptance_fraction": 0.4}


def test_the_burn_in_becomes_the_warm_up_groups_on_request():
    posterior, chain = walker_posterior()
    tree = posterior.to_arviz(burn_in=True)
    assert {"warmup_posterior", "warmup_sample_stats"} <= set(tree.children)
    np.testing.assert_array_equal(tree["warmup_posterior"]["theta_0"].values, chain[:5, :, 0].T)
    np.testing.assert_array_equal(tree["warmup_sample_stats"]["log_prob"].values, chain[:5, :, 0].T / 1e4)
    assert tree["warmup_posterior"]["theta_1"].attrs["label"] == r"$\theta_1$"
    bare = Posterior(posterior.samples, posterior.log_prob, metadata=posterior.metadata)
    assert set(bare.to_arviz(burn_in=True).children) == {"posterior", "sample_stats"}  # nothing stored


def test_to_arviz_and_the_netcdf_export_agree(tmp_path):
    posterior, _ = walker_posterior()
    tree = posterior.to_arviz()
    with netcdf_file(export_posterior(posterior, tmp_path / "p.nc", "netcdf"), "r", mmap=False) as handle:
        for name in ("theta_0", "theta_1"):
            np.testing.assert_array_equal(handle.variables[name][:], tree["posterior"][name].values)
            assert handle.variables[name].label.decode() == tree["posterior"][name].attrs["label"]
        np.testing.assert_array_equal(handle.variables["log_prob"][:], tree["sample_stats"]["log_prob"].values)
        for key in ("observed_fingerprint", "sampler", "diagnostics", "created_by", "inference_library"):
            assert getattr(handle, key).decode() == tree.attrs[key]


def test_a_sampler_posterior_converts_with_one_chain_per_walker(conjugate_problem):
    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.inference.sampler import sample_posterior

    problem = conjugate_problem(p=1, n=1, d=2)
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=1, n_walkers=8,
                                 n_steps=60, burn_in=20, thin=2, progress=False, init="prior")
    tree = posterior.to_arviz(burn_in=True)
    assert dict(tree["posterior"].sizes) == {"chain": 8, "draw": 20}
    assert dict(tree["warmup_posterior"].sizes) == {"chain": 8, "draw": 20}
    np.testing.assert_array_equal(tree["posterior"]["theta_0"].values, posterior.chain[::2, :, 0].T)
    assert json.loads(tree.attrs["sampler"])["thin"] == 2


def test_without_arviz_base_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz_base", None)  # import arviz_base now raises ImportError
    with pytest.raises(MissingDependency, match=r"arviz-base, the 'arviz' extra: pip install 'mflow-sbi\[arviz\]'"):
        walker_posterior()[0].to_arviz()
