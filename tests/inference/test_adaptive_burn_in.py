"""The adaptive burn-in: the stopping rule on synthetic chains, and the sampler on conjugate posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.inference.chain_checkpoint import ChainCheckpoint
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.sampler import BURN_IN_BLOCK, MIN_BURN_IN, sample_posterior, settled
from tests.inference.test_chain_checkpoint import Counted, Interrupt
from tests.inference.test_sampler import assert_matches_analytic

WALKERS, P = 32, 2


def iid_chain(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Independent N(0, 1) draws: a chain already at its stationary distribution (tau = 1)."""
    chain = np.random.default_rng(seed).standard_normal((steps, WALKERS, P))
    return chain, -0.5 * (chain**2).sum(axis=2)


@pytest.mark.parametrize("seed", range(5))
def test_a_stationary_chain_is_settled_once_long_enough(seed):
    chain, log_prob = iid_chain(MIN_BURN_IN, seed)
    assert settled(chain, log_prob)
    assert not settled(chain[: MIN_BURN_IN - 1], log_prob[: MIN_BURN_IN - 1])  # never before MIN_BURN_IN


@pytest.mark.parametrize("seed", range(5))
def test_drift_frozen_walkers_and_slow_mixing_are_not_settled(seed):
    chain, log_prob = iid_chain(100, seed)
    drifting = chain + np.linspace(0, 2, len(chain))[:, None, None]  # the walkers still travel: 1 sd per block
    assert not settled(drifting, -0.5 * (drifting**2).sum(axis=2))
    lower = log_prob - np.linspace(5, 0, len(chain))[:, None]  # the log posterior still climbing
    assert not settled(chain, lower)
    frozen = np.broadcast_to(chain[:1], chain.shape)
    assert not settled(frozen, np.broadcast_to(log_prob[:1], log_prob.shape))
    # AR(1) with rho = 0.95 (tau ~ 39 steps): 100 steps are under 10 autocorrelation times
    rng = np.random.default_rng(seed)
    slow = np.empty_like(chain)
    slow[0] = rng.standard_normal((WALKERS, P))
    for t in range(1, len(slow)):
        slow[t] = 0.95 * slow[t - 1] + np.sqrt(1 - 0.95**2) * rng.standard_normal((WALKERS, P))
    assert not settled(slow, -0.5 * (slow**2).sum(axis=2))


@pytest.fixture(scope="module")
def problem(conjugate_problem):
    return conjugate_problem(p=2, n=2, d=3, n_events=20, seed=1)


SETTINGS = {"n_walkers": 32, "n_steps": 1500, "burn_in": 300, "progress": False}


@pytest.mark.parametrize("seed", range(2))
def test_from_the_modes_the_burn_in_ends_early_and_keeps_steps_minus_burn_in(problem, seed):
    likelihood = ModelLikelihood(problem.model, problem.x)
    adaptive = sample_posterior(likelihood, problem.prior, seed=seed, **SETTINGS)
    used = adaptive.metadata["sampler"]["burn_in_used"]
    assert MIN_BURN_IN <= used < 300 and used % BURN_IN_BLOCK == 0
    assert adaptive.burn_in == used and adaptive.chain.shape[0] == 1500 - 300
    assert adaptive.metadata["sampler"]["steps_run"] == used + 1200
    assert_matches_analytic(adaptive, problem.mean, problem.cov)
    fixed = sample_posterior(likelihood, problem.prior, seed=seed, adaptive_burn_in=False, **SETTINGS)
    assert fixed.burn_in == fixed.metadata["sampler"]["burn_in_used"] == 300 and fixed.chain.shape[0] == 1200
    assert_matches_analytic(fixed, problem.mean, problem.cov)


def test_a_start_far_from_the_posterior_burns_in_longer(problem):
    """Walkers from the prior (sd 2, the posterior's sd ~0.1) with stretch moves need longer than walkers at
    the modes; measured over seeds 0-5: 225-300 steps against 50."""
    likelihood = ModelLikelihood(problem.model, problem.x)
    at_modes = [sample_posterior(likelihood, problem.prior, seed=s, **SETTINGS).burn_in for s in range(3)]
    from_prior = [sample_posterior(likelihood, problem.prior, seed=s, init="prior", moves="stretch", **SETTINGS)
                  for s in range(3)]
    assert min(p.burn_in for p in from_prior) > max(at_modes)
    for posterior in from_prior:
        assert_matches_analytic(posterior, problem.mean, problem.cov, tol_mean=0.15, tol_std=0.1)


def test_a_chain_interrupted_during_the_adaptive_burn_in_resumes_to_the_uninterrupted_one(problem, tmp_path):
    likelihood = ModelLikelihood(problem.model, problem.x)
    settings = {**SETTINGS, "n_steps": 500, "init": "prior", "moves": "stretch", "seed": 2}
    counted = Counted(likelihood)
    full = sample_posterior(counted, problem.prior, **settings)
    assert full.burn_in > 2 * BURN_IN_BLOCK
    checkpoint = ChainCheckpoint(tmp_path / "chain.npz", {"target": "conjugate"}, every=BURN_IN_BLOCK)
    with pytest.raises(Interrupt):  # stretch: two calls per step, so the checkpoint is before the burn-in's end
        sample_posterior(Counted(likelihood, limit=2 * (full.burn_in - 5)), problem.prior, checkpoint=checkpoint,
                         **settings)
    assert len(np.load(checkpoint.path)["chain"]) < full.burn_in
    resumed = sample_posterior(likelihood, problem.prior, checkpoint=checkpoint, resume=True, **settings)
    assert resumed.burn_in == full.burn_in
    np.testing.assert_array_equal(resumed.chain, full.chain)
    np.testing.assert_array_equal(resumed.burn_in_chain, full.burn_in_chain)


def test_the_summary_says_which_burn_in_was_used(problem):
    likelihood = ModelLikelihood(problem.model, problem.x)
    settings = {**SETTINGS, "n_steps": 400}
    adaptive = sample_posterior(likelihood, problem.prior, **settings)
    assert f"burn-in: {adaptive.burn_in} steps (the chain had settled; at most 300)" in adaptive.format_summary()
    fixed = sample_posterior(likelihood, problem.prior, adaptive_burn_in=False, **settings)
    assert "burn-in: 300 steps\n" in fixed.format_summary()
