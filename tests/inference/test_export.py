"""Posterior export: CSV and netCDF hold the kept draws, one chain per walker, with names and labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import netcdf_file

from mflow_sbi.cli import main
from mflow_sbi.errors import InputError
from mflow_sbi.inference.export import export_posterior, kept_draws
from mflow_sbi.inference.posterior import Posterior


def walker_posterior(steps: int = 30, walkers: int = 4) -> tuple[Posterior, np.ndarray]:
    """A posterior whose sample values encode (step, walker, parameter), stored in the sampler's order."""
    step, walker = np.meshgrid(np.arange(steps), np.arange(walkers), indexing="ij")
    chain = np.stack([1000 * step + walker, -(1000 * step + walker) - 0.5], axis=-1).astype(float)  # (steps, W, 2)
    samples = chain.reshape(-1, 2)
    posterior = Posterior(samples, samples[:, 0] / 1e4, ("theta_0", "theta 1"), (r"$\theta_0$", r"$\theta_1$"),
                          {"acceptance_fraction": 0.4}, {"sampler": {"n_walkers": walkers}, "observed_fingerprint": "ab"})
    return posterior, chain


def test_kept_draws_are_one_chain_per_walker():
    posterior, chain = walker_posterior()
    draws, log_prob = kept_draws(posterior)
    assert draws.shape == (4, 30, 2)
    np.testing.assert_array_equal(draws, chain.transpose(1, 0, 2))
    np.testing.assert_array_equal(log_prob, draws[:, :, 0] / 1e4)


def test_netcdf_round_trip(tmp_path):
    posterior, chain = walker_posterior()
    path = export_posterior(posterior, tmp_path / "post.nc", "netcdf")
    with netcdf_file(path, "r", mmap=False) as handle:
        assert handle.dimensions == {"chain": 4, "draw": 30}
        np.testing.assert_array_equal(handle.variables["theta_0"][:], chain[:, :, 0].T)
        np.testing.assert_array_equal(handle.variables["theta_1"][:], chain[:, :, 1].T)  # "theta 1" made safe
        assert handle.variables["theta_1"].label == b"$\\theta_1$"
        assert handle.variables["theta_1"].parameter_name == b"theta 1"
        assert json.loads(handle.sampler) == {"n_walkers": 4} and handle.observed_fingerprint == b"ab"


def test_csv_rows_and_cli(tmp_path, capsys):
    posterior, chain = walker_posterior()
    posterior.save(tmp_path / "post.npz")
    assert main(["export", str(tmp_path / "post.npz"), "--format", "csv", "--out", str(tmp_path / "post.csv")]) == 0
    lines = (tmp_path / "post.csv").read_text().splitlines()
    assert lines[0] == "chain,draw,theta_0,theta_1,log_prob" and len(lines) == 1 + 4 * 30
    table = np.loadtxt(tmp_path / "post.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 2], 1000 * table[:, 1] + table[:, 0])  # value = 1000 draw + chain
    with pytest.raises(InputError, match="unknown export format 'hdf5'"):
        export_posterior(posterior, tmp_path / "x", "hdf5")


def test_kept_draws_of_a_sampler_posterior_are_its_chain_after_burn_in(conjugate_problem):
    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.inference.sampler import sample_posterior

    problem = conjugate_problem(p=1, n=1, d=2)
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=1, n_walkers=8,
                                 n_steps=60, burn_in=20, thin=2, progress=False)
    draws, log_prob = kept_draws(posterior)
    np.testing.assert_array_equal(draws, posterior.chain[::2].transpose(1, 0, 2))
    np.testing.assert_array_equal(log_prob, posterior.chain_log_prob[::2].T)
