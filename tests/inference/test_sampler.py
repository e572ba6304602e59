"""emcee driver against analytic conjugate-Gaussian posteriors, plus settings validation."""

import numpy as np
import pytest
from scipy.stats import norm

from mflow_sbi.errors import InputError
from mflow_sbi.inference.infer import run_inference
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.priors import box_uniform, diagonal_normal
from mflow_sbi.inference.sampler import LogPosterior, find_map, sample_posterior

FAST = {"n_walkers": 32, "n_steps": 1500, "burn_in": 300, "progress": False}


def assert_matches_analytic(posterior, mean, cov, tol_mean=0.1, tol_std=0.05):
    std = np.sqrt(np.diag(cov))
    summary = posterior.summary()["parameters"]
    for k, name in enumerate(posterior.parameter_names):
        entry = summary[name]
        assert abs(entry["mean"] - mean[k]) < tol_mean * std[k]
        assert abs(entry["median"] - mean[k]) < tol_mean * std[k]
        assert abs(entry["std"] / std[k] - 1) < tol_std
        for level in (68, 95):
            half = norm.ppf(0.5 + level / 200) * std[k]
            for kind in ("central", "hpd"):
                low, high = entry[f"{kind}_{level}"]
                assert abs(low - (mean[k] - half)) < 2 * tol_mean * std[k]
                assert abs(high - (mean[k] + half)) < 2 * tol_mean * std[k]


@pytest.fixture(scope="module")
def gaussian_2d(conjugate_problem):
    problem = conjugate_problem(p=2, n=2, d=3, n_events=20, seed=2)
    return problem, sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=5, **FAST)


def test_conjugate_gaussian_posterior_matches_analytic(gaussian_2d):
    problem, posterior = gaussian_2d
    assert posterior.samples.shape == (32 * (1500 - 300), 2)
    assert_matches_analytic(posterior, problem.mean, problem.cov)
    diagnostics = posterior.diagnostics
    assert 0.1 < diagnostics["acceptance_fraction"] < 0.9
    assert max(diagnostics["split_rhat"]) < 1.05
    assert diagnostics["min_effective_sample_size"] > 3000


def test_the_kept_chain_starts_after_the_burn_in_and_the_samples_are_it_thinned(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2)
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=1, n_walkers=8,
                                 n_steps=60, burn_in=20, thin=3, progress=False, init="prior")
    assert posterior.chain.shape == (40, 8, 1) and posterior.burn_in_chain.shape == (20, 8, 1)
    assert posterior.chain_log_prob.shape == (40, 8) and posterior.burn_in_log_prob.shape == (20, 8)
    np.testing.assert_array_equal(posterior.samples, posterior.chain[::3].reshape(-1, 1))
    np.testing.assert_array_equal(posterior.log_prob, posterior.chain_log_prob[::3].ravel())
    rerun = sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=1, n_walkers=8,
                             n_steps=20, burn_in=0, progress=False, init="prior")  # same seed: the same first steps
    np.testing.assert_array_equal(rerun.chain, posterior.burn_in_chain)
    assert rerun.burn_in == 0


def test_stretch_moves_also_match_analytic(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2, n_events=20, seed=2)
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=5, moves="stretch",
                                 **{**FAST, "n_steps": 2000})
    assert posterior.metadata["sampler"]["moves"] == "stretch"
    assert_matches_analytic(posterior, problem.mean, problem.cov)


def test_2d_hpd_region_of_mcmc_posterior(gaussian_2d):
    problem, posterior = gaussian_2d
    region = posterior.hpd_region(0, 1, 0.95)
    fresh = np.random.default_rng(9).multivariate_normal(problem.mean, problem.cov, 5000)
    assert abs(region.contains(fresh).mean() - 0.95) < 0.02
    analytic_area = 2 * np.pi * np.log(1 / 0.05) * np.sqrt(np.linalg.det(problem.cov))
    assert abs(region.area() / analytic_area - 1) < 0.08


def agree_within_monte_carlo_error(a, b, sigmas: float = 5.0) -> bool:
    """Means and standard deviations of two 1-D posteriors agree within ``sigmas`` Monte Carlo standard errors
    (from each run's ESS: se(mean) = std / sqrt(ESS), relative se(std) = 1 / sqrt(2 ESS))."""
    ess_a, ess_b = a.diagnostics["min_effective_sample_size"], b.diagnostics["min_effective_sample_size"]
    std = 0.5 * (a.samples.std() + b.samples.std())
    se_mean = std * np.sqrt(1 / ess_a + 1 / ess_b)
    se_ratio = np.sqrt(1 / (2 * ess_a) + 1 / (2 * ess_b))
    return bool(abs(a.samples.mean() - b.samples.mean()) < sigmas * se_mean
                and abs(a.samples.std() / b.samples.std() - 1) < sigmas * se_ratio)


def test_cached_and_reencoded_posteriors_agree(conjugate_problem):
    """Same seed: on one machine the chains are identical, but on another the cached and re-encoded float32
    likelihoods may differ in the last bit and one accept/reject flip decorrelates the chains, so they are
    compared within their Monte Carlo error (values agree to float precision: test_likelihood). Negative
    control: the posterior given observed events shifted by one posterior std fails the same comparison."""
    problem = conjugate_problem(p=1, n=1, d=3, n_events=20, seed=4)
    settings = {**FAST, "n_steps": 600, "burn_in": 100}
    runs = [sample_posterior(ModelLikelihood(problem.model, problem.x, cache=c), problem.prior, seed=2, **settings)
            for c in (True, False)]
    assert runs[0].metadata["cached"] and not runs[1].metadata["cached"]
    assert agree_within_monte_carlo_error(runs[0], runs[1])
    shift = 20 * np.sqrt(problem.cov[0, 0])  # moves the mean of 20 events' posterior by about one std
    shifted = sample_posterior(ModelLikelihood(problem.model, problem.x + shift / 20), problem.prior, seed=2, **settings)
    assert not agree_within_monte_carlo_error(runs[0], shifted)


def test_same_seed_same_samples_and_different_seed_differs(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2)
    likelihood = ModelLikelihood(problem.model, problem.x)
    settings = {**FAST, "n_steps": 200, "burn_in": 50}
    a = sample_posterior(likelihood, problem.prior, seed=7, **settings)
    b = sample_posterior(likelihood, problem.prior, seed=7, **settings)
    c = sample_posterior(likelihood, problem.prior, seed=8, **settings)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_map_initialization_starts_near_the_mode(conjugate_problem):
    """The mode of a Gaussian posterior is its mean: ``find_map`` hit it within 0.0013 posterior stds over
    seeds 0-5 (threshold 0.05). The walkers start in a ball of 1e-3 prior stds (0.03 posterior stds here)
    around it, and after the first stretch/DE step (the chain's first stored state) they lay within
    0.14-0.31 posterior stds of the mean over seeds 0-5 (threshold 1; prior draws start ~30 stds away)."""
    problem = conjugate_problem(p=2, n=2, d=3, seed=5)
    likelihood = ModelLikelihood(problem.model, problem.x)
    std = np.sqrt(np.diag(problem.cov))
    found = find_map(LogPosterior(likelihood, problem.prior), problem.prior, np.random.default_rng(0))
    assert np.all(np.abs(found - problem.mean) < 0.05 * std)
    # local moves: the independence move's first step would draw the walkers from the whole posterior
    posterior = sample_posterior(likelihood, problem.prior, seed=0, init="map", moves="de",
                                 **{**FAST, "n_steps": 600, "burn_in": 100})
    assert np.all(np.abs(posterior.burn_in_chain[0] - problem.mean) < 1.0 * std)
    assert_matches_analytic(posterior, problem.mean, problem.cov, tol_mean=0.15, tol_std=0.1)


def test_uniform_prior_support_is_respected(conjugate_problem):
    # The likelihood alone would put the posterior around theta_true; the box cuts it at 0.
    problem = conjugate_problem(p=1, n=1, d=2, n_events=5, seed=6)
    box = box_uniform([problem.mean[0]], [problem.mean[0] + 10.0])
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), box, seed=0,
                                 **{**FAST, "n_steps": 800, "burn_in": 100})
    assert posterior.samples.min() >= problem.mean[0]
    # half-normal truncated at the mode: mean = mode + std * sqrt(2 / pi)
    expected = problem.mean[0] + np.sqrt(problem.cov[0, 0] * 2 / np.pi)
    assert abs(posterior.samples.mean() - expected) < 0.1 * np.sqrt(problem.cov[0, 0])


def test_log_posterior_is_minus_inf_outside_support_without_calling_likelihood():
    called = []

    def likelihood(theta):
        called.append(theta.copy())
        return np.zeros(len(theta))

    log_post = LogPosterior(likelihood, box_uniform([0.0, 0.0], [1.0, 1.0]))
    values = log_post(np.array([[0.5, 0.5], [1.5, 0.5], [0.2, -0.1]]))
    assert values[0] == pytest.approx(0.0) and np.all(values[1:] == -np.inf)
    assert len(called) == 1 and called[0].shape == (1, 2)


def test_until_converged_stops_before_max_steps(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2)
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=0,
                                 until_converged=True, **{**FAST, "n_steps": 5000, "burn_in": 100})
    assert posterior.diagnostics["converged_by_tau"]
    steps = posterior.metadata["sampler"]["steps_run"]
    burn_in = posterior.metadata["sampler"]["burn_in_used"]
    assert steps < 5000 and burn_in <= 100
    assert steps - burn_in >= 50 * max(posterior.diagnostics["autocorrelation_time"])
    assert posterior.chain.shape[0] == steps - burn_in and posterior.burn_in == burn_in


def test_bad_settings(conjugate_problem):
    problem = conjugate_problem(p=2)
    likelihood = ModelLikelihood(problem.model, problem.x)
    with pytest.raises(InputError, match="at least 2 x 2 = 4 walkers"):
        sample_posterior(likelihood, problem.prior, n_walkers=3, progress=False)
    with pytest.raises(InputError, match="prior has 3 parameter"):
        sample_posterior(likelihood, diagonal_normal([0, 0, 0], [1, 1, 1]), progress=False)
    with pytest.raises(InputError, match="after burn-in"):
        sample_posterior(likelihood, problem.prior, n_steps=100, burn_in=100, progress=False)
    with pytest.raises(InputError, match="init"):
        sample_posterior(likelihood, problem.prior, init="random", progress=False)
    with pytest.raises(InputError, match="moves"):
        sample_posterior(likelihood, problem.prior, moves="gibbs", progress=False)


def test_run_inference_uses_stored_prior_or_override(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2)
    settings = {**FAST, "n_steps": 100, "burn_in": 20}
    posterior = run_inference(problem.model, problem.x, **settings)
    assert posterior.metadata["prior"] == problem.prior.specs
    assert posterior.parameter_names == problem.model.parameter_names
    override = box_uniform([-0.5], [0.5])
    posterior = run_inference(problem.model, problem.x, prior=override, **settings)
    assert posterior.metadata["prior"] == override.specs
    assert np.all(np.abs(posterior.samples) <= 0.5)
    with pytest.raises(InputError, match="prior has 2 parameter"):
        run_inference(problem.model, problem.x, prior=box_uniform([0, 0], [1, 1]), **settings)
    problem.model.prior = None
    with pytest.raises(InputError, match="stores no prior"):
        run_inference(problem.model, problem.x, **settings)


def test_any_prior_object_with_sample_and_log_prob(conjugate_problem):
    """A prior without ``dim``: a 1-D standard normal written by hand."""

    class HandPrior:
        def sample(self, n, rng):
            return rng.normal(size=(n, 1))

        def log_prob(self, theta):
            theta = np.atleast_2d(theta)
            return -0.5 * theta[:, 0] ** 2 - 0.5 * np.log(2 * np.pi)

    problem = conjugate_problem(p=1, n=1, d=2, seed=7)
    posterior = sample_posterior(ModelLikelihood(problem.model, problem.x), HandPrior(), seed=0,
                                 **{**FAST, "n_steps": 600, "burn_in": 100})
    assert posterior.samples.shape[1] == 1 and "prior" not in posterior.metadata


def test_without_a_progress_bar_the_chain_reports_every_250_steps(conjugate_problem, caplog):
    import logging

    problem = conjugate_problem(p=1, n=1, d=2)
    with caplog.at_level(logging.INFO, logger="mflow_sbi.inference.sampler"):
        sample_posterior(ModelLikelihood(problem.model, problem.x), problem.prior, seed=0, init="prior",
                         **{**FAST, "n_steps": 600, "burn_in": 100})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MCMC step")]
    assert [line.split(":")[0] for line in lines] == ["MCMC step 250/600", "MCMC step 500/600"]
    assert all("mean acceptance 0." in line for line in lines)
