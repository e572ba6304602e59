"""Contract tests every simulator with a tractable likelihood must pass.

Samples and likelihood are tied together through importance weights between two parameter points, and
the joint score through finite differences and its zero expectation.
"""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.simulators import SIMULATORS, Simulator
from mflow_sbi.simulators.spherical_gaussian import SphericalGaussian

# every registered simulator with its defaults, plus non-default configurations worth covering
INSTANCES = {name: cls() for name, cls in SIMULATORS.items()}
INSTANCES["spherical_gaussian_3_in_5"] = SphericalGaussian(latent_dim=3, data_dim=5, epsilon=0.05)
THETA_PAIRS = {  # (theta_a, theta_b) close enough for a usable effective sample size
    "polynomial_surface": ([0.3], [-0.2]),
    "spherical_gaussian": ([0.1, -0.2], [-0.2, 0.1]),
    "spherical_gaussian_3_in_5": ([0.4, 0.3], [0.2, 0.5]),
    "lhc": ([0.0, 0.0], [0.4, -0.4]),
    "slcp": ([0.5, -0.3, 1.2, -1.0, 0.4], [0.45, -0.25, 1.18, -1.03, 0.45]),
}
N_EVENTS = {"lhc": 40_000}


@pytest.fixture(params=sorted(INSTANCES), scope="module")
def case(request):
    name = request.param
    sim = INSTANCES[name]
    theta_a, theta_b = (np.array(t, dtype=np.float64) for t in THETA_PAIRS[name])
    n = N_EVENTS.get(sim.name, 40_000)
    x_a = sim.sample(theta_a, n, np.random.default_rng(1))
    x_b = sim.sample(theta_b, n, np.random.default_rng(2))
    return sim, theta_a, theta_b, x_a, x_b


def test_registry_complete():
    assert {name.split("_3_in_")[0] for name in INSTANCES} == set(SIMULATORS)


def test_interface_attributes(case):
    sim, theta_a, *_ = case
    assert isinstance(sim, Simulator)
    p = len(sim.parameter_names)
    assert p == len(sim.parameter_labels) == sim.prior.dim == len(theta_a)
    assert 0 < sim.manifold_dim <= sim.data_dim  # equal: data that fill R^d (slcp)


def test_sample_shapes_and_seeds(case):
    sim, theta_a, *_ = case
    x1 = sim.sample(theta_a, 50, np.random.default_rng(5))
    x2 = sim.sample(theta_a, 50, np.random.default_rng(5))
    assert x1.shape == (50, sim.data_dim) and x1.dtype == np.float64
    np.testing.assert_array_equal(x1, x2)
    thetas = sim.prior.sample(50, np.random.default_rng(6))
    x3 = sim.sample(thetas, 50, np.random.default_rng(7))
    assert x3.shape == (50, sim.data_dim) and np.all(np.isfinite(x3))
    assert np.all(np.isfinite(sim.log_likelihood(x3, thetas)))


def test_importance_weights_between_parameter_points(case):
    """E_a[p_b/p_a] = 1 and E_a[f p_b/p_a] = E_b[f] for bounded statistics f (5 standard errors)."""
    sim, theta_a, theta_b, x_a, x_b = case
    weights = np.exp(sim.log_likelihood(x_a, theta_b) - sim.log_likelihood(x_a, theta_a))
    n = len(x_a)
    assert abs(weights.mean() - 1.0) < 5 * weights.std() / np.sqrt(n)
    scale = x_a.std(axis=0)
    def statistics(x):
        return np.concatenate([np.tanh(x / scale), np.tanh((x / scale) ** 2)], axis=1)

    f_a, f_b = statistics(x_a), statistics(x_b)
    reweighted = f_a * weights[:, None]
    difference = reweighted.mean(axis=0) - f_b.mean(axis=0)
    error = np.sqrt(reweighted.var(axis=0) / n + f_b.var(axis=0) / n)
    assert np.all(np.abs(difference) < 5 * error), difference / error
    # the test has power: the two parameter points do give different distributions
    assert np.any(np.abs(f_a.mean(axis=0) - f_b.mean(axis=0)) > 6 * error)


def test_joint_score_matches_finite_differences(case):
    sim, theta_a, _, x_a, _ = case
    x = x_a[:200]
    score = sim.joint_score(x, theta_a)
    assert score.shape == (len(x), len(theta_a))
    h = 1e-5
    for k in range(len(theta_a)):
        step = h * np.eye(len(theta_a))[k]
        numeric = (sim.log_likelihood(x, theta_a + step) - sim.log_likelihood(x, theta_a - step)) / (2 * h)
        np.testing.assert_allclose(score[:, k], numeric, rtol=1e-5, atol=1e-5)


def test_joint_score_has_zero_mean(case):
    sim, theta_a, _, x_a, _ = case
    score = sim.joint_score(x_a, theta_a)
    assert np.all(np.abs(score.mean(axis=0)) < 5 * score.std(axis=0) / np.sqrt(len(score)))


def test_options_are_compared_with_the_simulators_defaults_filled_in():
    from mflow_sbi.simulators import same_options

    assert same_options("lhc", {"cp_observable": False}, {})
    assert same_options("lhc", None, {"smearing": False, "jes_uncertainty": 0.0})
    assert not same_options("lhc", {"cp_observable": True}, {})
    assert not same_options("lhc", {"jes_uncertainty": 0.1}, {"jes_uncertainty": 0.2})
    # a simulator this process cannot import: the options as given
    assert same_options("no_such_module_here:Sim", {"a": 1}, {"a": 1})
    assert not same_options("no_such_module_here:Sim", {"a": 1}, {})


def test_infer_warns_only_when_the_options_configure_another_simulator(caplog):
    from mflow_sbi.cli.infer import check_observed_source
    from mflow_sbi.data.datasets import EventData

    def observed(options):
        return EventData(theta=np.zeros((2, 2)), x=np.zeros((2, 40)), simulator="lhc", simulator_options=options)

    record = {"simulator": "lhc", "simulator_options": {}}
    with caplog.at_level("WARNING"):
        check_observed_source("model", record, observed({"cp_observable": False, "jes_uncertainty": 0.0}), "obs.npz")
    assert "simulated with options" not in caplog.text
    with caplog.at_level("WARNING"):
        check_observed_source("model", record, observed({"smearing": True}), "obs.npz")
    assert "obs.npz was simulated with options {'smearing': True}" in caplog.text
