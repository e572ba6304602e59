"""An MCMC run checkpointed every few steps and interrupted resumes to exactly the uninterrupted chain."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.inference.chain_checkpoint import ChainCheckpoint
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.sampler import sample_posterior

SETTINGS = {"n_walkers": 16, "n_steps": 420, "burn_in": 100, "progress": False, "seed": 4}


class Interrupt(Exception):
    pass


class Counted:
    """A log-likelihood that counts its calls and raises after ``limit`` of them (a job killed mid-chain)."""

    def __init__(self, likelihood, limit: float = np.inf):
        self.likelihood, self.limit, self.calls = likelihood, limit, 0

    def __call__(self, theta):
        self.calls += 1
        if self.calls > self.limit:
            raise Interrupt
        return self.likelihood(theta)


@pytest.fixture(scope="module")
def problem(conjugate_problem):
    return conjugate_problem(p=1, n=1, d=2, n_events=20, seed=1)


@pytest.mark.parametrize("options", [{"init": "modes"}, {"init": "prior", "until_converged": True, "n_steps": 2000}],
                         ids=["modes", "until-converged"])
def test_an_interrupted_chain_resumes_to_the_uninterrupted_one(problem, tmp_path, options):
    likelihood = ModelLikelihood(problem.model, problem.x)
    settings = {**SETTINGS, **options}
    counted = Counted(likelihood)
    full = sample_posterior(counted, problem.prior, **settings)

    checkpoint = ChainCheckpoint(tmp_path / "chain.npz", {"target": "conjugate"}, every=50)
    steps = full.metadata["sampler"]["steps_run"]
    # A step makes one posterior call (independence move) or two (DE, stretch: one per half of the ensemble):
    # stop 150 calls, i.e. 75-150 steps, before the end (after the burn-in, so the resume refits q from it).
    with pytest.raises(Interrupt):
        sample_posterior(Counted(likelihood, limit=counted.calls - 150), problem.prior, checkpoint=checkpoint,
                         **settings)
    saved = np.load(checkpoint.path)["chain"]
    assert 0 < len(saved) < steps and len(saved) % 50 == 0
    resumed = sample_posterior(likelihood, problem.prior, checkpoint=checkpoint, resume=True, **settings)
    assert resumed.metadata["sampler"]["resumed_from_step"] == len(saved)
    assert resumed.metadata["sampler"]["steps_run"] == steps
    np.testing.assert_array_equal(resumed.chain, full.chain)
    np.testing.assert_array_equal(resumed.samples, full.samples)
    assert resumed.diagnostics["acceptance_fraction"] == full.diagnostics["acceptance_fraction"]


def test_resume_without_a_checkpoint_starts_afresh_and_other_settings_are_refused(problem, tmp_path):
    likelihood = ModelLikelihood(problem.model, problem.x)
    checkpoint = ChainCheckpoint(tmp_path / "chain.npz", {"observed": "abc"}, every=100)
    fresh = sample_posterior(likelihood, problem.prior, checkpoint=checkpoint, resume=True, **SETTINGS)
    assert fresh.metadata["sampler"]["resumed_from_step"] == 0
    assert checkpoint.path.is_file()
    with pytest.raises(InputError, match=r"chain\.npz is the checkpoint of another MCMC run .*'sampler'"):
        sample_posterior(likelihood, problem.prior, checkpoint=checkpoint, resume=True, **{**SETTINGS, "seed": 5})
    other_target = ChainCheckpoint(checkpoint.path, {"observed": "xyz"}, every=100)
    with pytest.raises(InputError, match="different \\['observed'\\]"):
        sample_posterior(likelihood, problem.prior, checkpoint=other_target, resume=True, **SETTINGS)
    checkpoint.path.write_bytes(b"not an npz")
    with pytest.raises(DataFileError, match="chain.npz"):
        sample_posterior(likelihood, problem.prior, checkpoint=checkpoint, resume=True, **SETTINGS)


def test_checkpoint_interval_is_checked(tmp_path):
    with pytest.raises(InputError, match="checkpoint interval"):
        ChainCheckpoint(tmp_path / "c.npz", {}, every=0)
