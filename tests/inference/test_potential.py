"""The posterior potential U(theta) = log p(theta) + sum_i log p(x_i|theta) that the sampler consumes."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from mflow_sbi.errors import InputError
from mflow_sbi.inference.infer import run_inference
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.potential import ObservedLikelihood, PosteriorPotential
from mflow_sbi.inference.sampler import sample_posterior, sample_potential
from mflow_sbi.priors import box_uniform


def test_potential_is_log_prior_plus_summed_log_likelihood_vectorized(conjugate_problem):
    problem = conjugate_problem(p=2, n=2, d=3, n_events=5)
    likelihood = ModelLikelihood(problem.model, problem.x)
    potential = PosteriorPotential(likelihood, problem.prior)
    theta = problem.prior.sample(7, np.random.default_rng(1))
    one_by_one = [problem.prior.log_prob(t) + likelihood(t[None, :])[0] for t in theta]
    np.testing.assert_allclose(potential(theta), one_by_one, rtol=1e-6)
    assert potential.parameter_dim == 2 and potential.prior is problem.prior
    assert isinstance(likelihood, ObservedLikelihood)
    assert potential.metadata == {**likelihood.metadata, "prior": problem.prior.specs}
    assert set(likelihood.metadata) == {"observed_fingerprint", "n_events", "cached"}


def test_a_plain_callable_is_a_likelihood_without_metadata():
    potential = PosteriorPotential(lambda theta: -np.sum(theta**2, axis=1), box_uniform([-1.0], [1.0]))
    np.testing.assert_allclose(potential(np.array([[0.5], [2.0]])), [np.log(0.5) - 0.25, -np.inf])
    assert potential.metadata == {"prior": ["uniform(-1.0,1.0)"]}


def test_dimensions_must_agree(conjugate_problem):
    problem = conjugate_problem(p=2)
    with pytest.raises(InputError, match="the prior has 1 parameter"):
        PosteriorPotential(ModelLikelihood(problem.model, problem.x), box_uniform([0.0], [1.0]))


@pytest.mark.parametrize("function, positional", [(sample_potential, 1), (run_inference, 2)])
def test_options_are_keyword_only(function, positional):
    parameters = list(inspect.signature(function).parameters.values())
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:positional])
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[positional:])
    assert [p.name for p in inspect.signature(sample_posterior).parameters.values()] == ["log_likelihood", "prior",
                                                                                          "options"]
