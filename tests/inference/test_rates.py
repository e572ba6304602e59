"""The extended likelihood's rate term: Poisson values against scipy, composition, and the quadratic rate fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mflow_sbi.errors import InputError
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.rates import (
    ExtendedLikelihood,
    QuadraticRate,
    RateTerm,
    fit_quadratic_rate,
    poisson_log_pmf,
    quadratic_features,
    simulator_rate,
)


@pytest.mark.parametrize("n", [0, 1, 7, 250])
def test_poisson_log_pmf_matches_scipy(n):
    nu = np.array([1e-3, 0.5, 3.0, 7.0, 240.0, 1e4])
    np.testing.assert_allclose(poisson_log_pmf(n, nu), stats.poisson.logpmf(n, nu), rtol=1e-12, atol=1e-12)


def test_poisson_log_pmf_edges():
    assert poisson_log_pmf(0, np.array([0.0]))[0] == 0.0
    assert np.all(poisson_log_pmf(3, np.array([0.0, -1.0, np.nan])) == -np.inf)
    with pytest.raises(InputError, match="non-negative integer"):
        poisson_log_pmf(-1, np.array([1.0]))


def test_rate_term_is_vectorized_and_records_its_source():
    term = RateTerm(lambda theta: 10.0 + theta[:, 0] ** 2, 12, source="test", luminosity=2.0)
    theta = np.array([[0.0, 1.0], [1.0, 0.0], [3.0, -2.0]])
    np.testing.assert_allclose(term(theta), stats.poisson.logpmf(12, 10.0 + theta[:, 0] ** 2), rtol=1e-12)
    assert term.metadata == {"source": "test", "luminosity": 2.0, "n_observed": 12}


def test_extended_likelihood_adds_the_rate_to_the_shape(conjugate_problem):
    problem = conjugate_problem(n_events=15, seed=3)
    shape = ModelLikelihood(problem.model, problem.x)
    term = RateTerm(lambda theta: np.exp(theta.sum(axis=1)) * 15.0, 15, source="test")
    extended = ExtendedLikelihood(shape, term)
    theta = np.array([[0.0, 0.0], [0.3, -0.1], [-1.0, 2.0]])
    np.testing.assert_allclose(extended(theta), shape(theta) + term(theta), rtol=1e-12)
    assert extended.parameter_dim == 2
    assert extended.metadata["rate"]["source"] == "test"
    assert extended.metadata["n_events"] == 15
    with pytest.raises(InputError, match="counts 14 observed events"):
        ExtendedLikelihood(shape, RateTerm(lambda t: np.ones(len(t)), 14, source="test"))


def test_simulator_rate_needs_the_optional_method():
    class NoRate:
        name = "norate"

    with pytest.raises(InputError, match="no expected_events"):
        simulator_rate(NoRate(), 3, luminosity=1.0)

    class WithRate:
        name = "withrate"

        def expected_events(self, theta, luminosity):
            return luminosity * (1.0 + theta[:, 0] ** 2)

    term = simulator_rate(WithRate(), 3, luminosity=2.0)
    np.testing.assert_allclose(term(np.array([[1.0]])), stats.poisson.logpmf(3, 4.0))
    assert term.metadata["source"] == "simulator" and term.metadata["simulator"] == "withrate"
    with pytest.raises(InputError, match="luminosity must be a positive number"):
        simulator_rate(WithRate(), 3, luminosity=0.0)


def test_quadratic_fit_recovers_a_known_quadratic_exactly(tmp_path):
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(30, 3))
    truth = rng.normal(size=quadratic_features(theta).shape[1])
    fit = fit_quadratic_rate(theta, quadratic_features(theta) @ truth)
    np.testing.assert_allclose(fit.coefficients, truth, rtol=1e-10, atol=1e-12)
    assert fit.residuals["rms"] < 1e-12 and fit.residuals["n_points"] == 30
    loaded = QuadraticRate.load(fit.save(tmp_path / "rate_fit.json"))
    probe = rng.normal(size=(5, 3))
    np.testing.assert_allclose(loaded(probe), quadratic_features(probe) @ truth, rtol=1e-10)
    np.testing.assert_allclose(loaded.expected_events(probe, 3.0), 3.0 * loaded(probe))


def test_quadratic_fit_of_the_lhc_cross_section_is_exact_and_reports_noise():
    """sigma(theta) of the LHC generator is a quadratic: the fit to 12 exact values reproduces it at new points.
    With 1% multiplicative noise on the inputs (seed 5) the reported residuals are of that size (negative
    control: the quality record sees the noise)."""
    from mflow_sbi.simulators.lhc import LHC

    sim = LHC()
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(12, 2)) * 1.5
    fit = fit_quadratic_rate(theta, sim.cross_section(theta))
    probe = rng.normal(size=(50, 2)) * 2
    np.testing.assert_allclose(fit(probe), sim.cross_section(probe), rtol=1e-10)
    noisy = fit_quadratic_rate(theta, sim.cross_section(theta) * (1 + 0.01 * rng.standard_normal(12)))
    assert 1e-3 < noisy.residuals["max_relative"] < 0.03


def test_quadratic_fit_errors(tmp_path):
    with pytest.raises(InputError, match="6 coefficients"):
        fit_quadratic_rate(np.zeros((4, 2)), np.ones(4))
    with pytest.raises(InputError, match="rank"):
        fit_quadratic_rate(np.zeros((8, 2)), np.ones(8))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a rate fit"):
        QuadraticRate.load(tmp_path / "bad.json")
