"""Lockstep sampling: K chains advanced together, their likelihood calls batched, give exactly the posteriors
of K separate runs with the same seeds; batched likelihood values equal the analytic ones."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from mflow_sbi.errors import InputError
from mflow_sbi.inference.likelihood import DEFAULT_CHUNK_SIZE, LikelihoodBatch, ModelLikelihood, batch_evaluator
from mflow_sbi.inference.lockstep import run_lockstep
from mflow_sbi.inference.potential import PosteriorPotential
from mflow_sbi.inference.sampler import sample_potential

OPTIONS = {"n_walkers": 8, "n_steps": 120, "burn_in": 20, "progress": False}


def likelihoods_of(problem, n_sets: int, n_events: int = 10):
    """``n_sets`` shifted data sets; chunks large enough that every batched call is one network call (the
    call counts below count batches, not chunks)."""
    rng = np.random.default_rng(5)
    return [ModelLikelihood(problem.model, problem.x[:n_events] + 0.3 * rng.normal(size=(1, problem.x.shape[1])),
                            chunk_size=DEFAULT_CHUNK_SIZE) for _ in range(n_sets)]


def exact_log_likelihood(model, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """sum_i log p(x_i | theta) of the fake model in float64 (its closed form, see conftest)."""
    A, b, M = (getattr(model, name).double().numpy() for name in ("A", "b", "M"))
    chol = model.chol.double().numpy()
    n = model.latent_dim
    u, rest = x[:, :n] @ M.T, x[:, n:]
    const = np.linalg.slogdet(M)[1] - 0.5 * (rest**2).sum(1) - 0.5 * rest.shape[1] * np.log(2 * np.pi)
    return np.array([multivariate_normal(A @ t + b, chol @ chol.T).logpdf(u).sum() + const.sum() for t in theta])


@pytest.mark.parametrize("init", ["modes", "prior"])
def test_lockstep_gives_the_posteriors_of_separate_runs(conjugate_problem, init):
    problem = conjugate_problem(p=2, n=2, d=3, seed=2)
    likelihoods = likelihoods_of(problem, 4)
    separate = [sample_potential(PosteriorPotential(lik, problem.prior), seed=10 + k, init=init, **OPTIONS)
                for k, lik in enumerate(likelihoods)]
    calls_alone = problem.model.calls["latent_log_prob"]
    jobs = [lambda lik, k=k: sample_potential(PosteriorPotential(lik, problem.prior), seed=10 + k, init=init, **OPTIONS)
            for k in range(len(likelihoods))]
    together = run_lockstep(likelihoods, batch_evaluator(likelihoods), jobs)
    calls_together = problem.model.calls["latent_log_prob"] - calls_alone
    for alone, joint in zip(separate, together, strict=True):
        np.testing.assert_array_equal(joint.chain, alone.chain)
        np.testing.assert_array_equal(joint.log_prob, alone.log_prob)
        assert joint.metadata["observed_fingerprint"] == alone.metadata["observed_fingerprint"]
    assert calls_together < 0.3 * calls_alone  # one batched call per round instead of one per chain


def test_batched_values_equal_the_exact_likelihood(conjugate_problem):
    """Unequal numbers of points per request, and chunks smaller than one data set (events split in blocks)."""
    problem = conjugate_problem(p=2, n=2, d=3, seed=1)
    rng = np.random.default_rng(0)
    for chunk_size in (7, 25, 10_000):
        likelihoods = [ModelLikelihood(problem.model, problem.x + 0.2 * k, chunk_size=chunk_size) for k in range(3)]
        requests = [(2, rng.normal(size=(5, 2))), (0, rng.normal(size=(1, 2))), (2, rng.normal(size=(3, 2)))]
        values = LikelihoodBatch(likelihoods)(requests)
        for (j, theta), value in zip(requests, values, strict=True):
            exact = exact_log_likelihood(problem.model, likelihoods[j].x_observed, theta)
            np.testing.assert_allclose(value, exact, rtol=1e-5)
            np.testing.assert_allclose(likelihoods[j](theta), value, rtol=1e-6)


def test_batch_refuses_mixed_likelihoods_and_falls_back(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2, seed=0)
    short, long = ModelLikelihood(problem.model, problem.x[:5]), ModelLikelihood(problem.model, problem.x)
    with pytest.raises(InputError, match="number of events"):
        LikelihoodBatch([short, long])
    theta = np.array([[0.1], [0.4]])
    values = batch_evaluator([short, long])([(1, theta), (0, theta)])
    np.testing.assert_array_equal(values[0], long(theta))
    np.testing.assert_array_equal(values[1], short(theta))


def test_lockstep_reraises_job_and_evaluation_errors(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2, seed=0)
    likelihoods = likelihoods_of(problem, 3)

    def job(lik, fail=False):
        value = lik(np.array([[0.2]]))
        if fail:
            raise InputError("job 1 failed")
        return value

    jobs = [job, lambda lik: job(lik, fail=True), job]
    with pytest.raises(InputError, match="job 1 failed"):
        run_lockstep(likelihoods, batch_evaluator(likelihoods), jobs)

    def broken(requests):
        raise InputError("evaluation failed")

    with pytest.raises(InputError, match="evaluation failed"):
        run_lockstep(likelihoods, broken, [job] * 3)
    with pytest.raises(InputError, match="one job per likelihood"):
        run_lockstep(likelihoods, broken, [job])
