"""Profile-likelihood limits against analytic truth.

Gaussian model (the conjugate problem of conftest.py, whose likelihood is exactly Gaussian in theta):
    log L(theta) = -1/2 sum_i (u_i - b - A theta)^T Sigma^-1 (u_i - b - A theta) + const,
    F = N A^T Sigma^-1 A,  theta_hat = F^-1 A^T Sigma^-1 sum_i (u_i - b),  q(theta) = (theta - theta_hat)^T F (theta - theta_hat),
so the 1-D profile interval at CL alpha is theta_hat_j +- sqrt(chi2_1^-1(alpha) (F^-1)_jj) and the joint 2-D region
is an ellipse of area pi chi2_2^-1(alpha) det(F)^-1/2. The model evaluates in float32. Measured on the 2-D
problem over seeds 0-4 (121 x 121 grid, +-4 sigma): max |q - q_analytic| 3e-5 to 1.7e-3 (largest at the far
corners, q ~ 30), max interval-end error 0.0004-0.0043 sigma; the margins are 3e-3 (+1e-4 relative) and 0.01 sigma.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mflow_sbi.errors import InputError
from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.limits import (
    GridAxis,
    interval_segments,
    order_axes,
    parse_grid_spec,
    profile_likelihood_limits,
    wilks_threshold,
)


def gaussian_truth(problem) -> tuple[np.ndarray, np.ndarray]:
    """(theta_hat, F) of the conjugate problem's likelihood (see the module docstring)."""
    model = problem.model
    A = model.A.double().numpy()
    b = model.b.double().numpy()
    chol = model.chol.double().numpy()
    sigma_inv = np.linalg.inv(chol @ chol.T)
    u = problem.x[:, : model.latent_dim] @ model.M.double().numpy().T
    fisher = len(u) * A.T @ sigma_inv @ A
    return np.linalg.solve(fisher, A.T @ sigma_inv @ (u - b).sum(0)), fisher


def axes_around(theta_hat: np.ndarray, fisher: np.ndarray, n: int) -> list[GridAxis]:
    sd = np.sqrt(np.diag(np.linalg.inv(fisher)))
    return [GridAxis(f"theta_{k}", np.linspace(theta_hat[k] - 4 * sd[k], theta_hat[k] + 4 * sd[k], n)) for k in range(len(sd))]


def test_one_parameter_gaussian_q_and_intervals(conjugate_problem):
    problem = conjugate_problem(p=1, n=1, d=2, n_events=25, seed=7)
    theta_hat, fisher = gaussian_truth(problem)
    axes = axes_around(theta_hat, fisher, 141)
    result = profile_likelihood_limits(ModelLikelihood(problem.model, problem.x), axes)
    grid = axes[0].values
    np.testing.assert_allclose(result.q, fisher[0, 0] * (grid - theta_hat[0]) ** 2, atol=2e-3)
    np.testing.assert_allclose(result.theta_hat, theta_hat, atol=1e-3 / np.sqrt(fisher[0, 0]))
    sd = 1 / np.sqrt(fisher[0, 0])
    for level in (0.68, 0.95):
        half = np.sqrt(stats.chi2.ppf(level, 1)) * sd
        (segment,) = result.intervals["theta_0"][level]
        np.testing.assert_allclose(segment, [theta_hat[0] - half, theta_hat[0] + half], atol=5e-3 * sd)
        assert not result.open["theta_0"][level]
    # negative control: a likelihood twice as wide in theta gives intervals twice as wide
    wide = profile_likelihood_limits(lambda t: ModelLikelihood(problem.model, problem.x)(theta_hat + (t - theta_hat) / 2),
                                     [GridAxis("theta_0", theta_hat[0] + (grid - theta_hat[0]) * 2)])
    (segment,) = wide.intervals["theta_0"][0.68]
    assert segment[1] - segment[0] == pytest.approx(2 * 2 * np.sqrt(stats.chi2.ppf(0.68, 1)) * sd, rel=5e-3)


def test_two_parameter_gaussian_q_profile_intervals_and_region(conjugate_problem, tmp_path):
    problem = conjugate_problem(p=2, n=2, d=3, n_events=20, seed=2)
    theta_hat, fisher = gaussian_truth(problem)
    axes = axes_around(theta_hat, fisher, 121)
    result = profile_likelihood_limits(ModelLikelihood(problem.model, problem.x), axes, metadata={"test": 1})
    points = np.stack(np.meshgrid(*(a.values for a in axes), indexing="ij"), axis=-1)
    delta = points - theta_hat
    analytic = np.einsum("...i,ij,...j->...", delta, fisher, delta)
    np.testing.assert_allclose(result.q, analytic, atol=3e-3, rtol=1e-4)
    cov = np.linalg.inv(fisher)
    for k in range(2):
        sd = np.sqrt(cov[k, k])
        for level in (0.68, 0.95):
            half = np.sqrt(stats.chi2.ppf(level, 1)) * sd
            (segment,) = result.intervals[f"theta_{k}"][level]
            # the grid profile minimizes over grid values of the other parameter: q_k is high by <= F_oo (h/2)^2
            np.testing.assert_allclose(segment, [theta_hat[k] - half, theta_hat[k] + half], atol=1e-2 * sd)
    cell = np.prod([a.values[1] - a.values[0] for a in axes])
    for level in (0.68, 0.95):
        area = np.count_nonzero(result.q <= result.thresholds[level]) * cell
        expected = np.pi * stats.chi2.ppf(level, 2) / np.sqrt(np.linalg.det(fisher))
        assert area == pytest.approx(expected, rel=0.02)
        assert result.thresholds[level] == pytest.approx(stats.chi2.ppf(level, 2))
    json_path, npz_path = result.save(tmp_path / "limits.json", tmp_path / "limits.npz")
    with np.load(npz_path) as stored:
        np.testing.assert_array_equal(stored["q"], result.q)
        np.testing.assert_array_equal(stored["axis_theta_1"], axes[1].values)
    summary = result.to_dict()
    assert summary["dof"] == 2 and summary["metadata"] == {"test": 1}
    assert set(summary["intervals"]["theta_0"]) == {"0.68", "0.95"}


def test_interval_segments_handles_several_segments_and_edges():
    x = np.linspace(-3, 3, 601)
    q = (x**2 - 4) ** 2  # minima at +-2: two disjoint intervals
    segments = interval_segments(x, q, 1.0)
    np.testing.assert_allclose(segments, [[-np.sqrt(5), -np.sqrt(3)], [np.sqrt(3), np.sqrt(5)]], atol=2e-4)
    assert interval_segments(x, x**2, 100.0) == [[-3.0, 3.0]]
    assert interval_segments(x, x**2 + 5, 1.0) == []


def test_grid_spec_and_axis_errors():
    axis = parse_grid_spec("theta_0=-2:2:41")
    assert axis.name == "theta_0" and len(axis.values) == 41 and axis.values[0] == -2 and axis.values[-1] == 2
    for bad, message in (("theta_0", "NAME=LOW:HIGH:N"), ("theta_0=2:-2:5", "LOW < HIGH"),
                         ("theta_0=a:2:5", "must be numbers"), ("theta_0=-1:1:1", "N >= 2")):
        with pytest.raises(InputError, match=message):
            parse_grid_spec(bad)
    a, b = parse_grid_spec("theta_1=-1:1:3"), parse_grid_spec("theta_0=-1:1:3")
    assert [x.name for x in order_axes([a, b], ("theta_0", "theta_1"))] == ["theta_0", "theta_1"]
    with pytest.raises(InputError, match="no grid axis for theta_1"):
        order_axes([b], ("theta_0", "theta_1"))
    with pytest.raises(InputError, match="not a parameter"):
        order_axes([parse_grid_spec("phi=-1:1:3")], ("theta_0",))
    with pytest.raises(InputError, match="given twice"):
        order_axes([b, b], ("theta_0",))
    assert wilks_threshold(0.95, 1) == pytest.approx(3.841458820694124)


def test_asimov_expected_limits_of_the_gaussian_model(conjugate_problem):
    """Asimov data at theta_0 for the Gaussian model: log L_A(theta) = (N/M) sum_j log p(x_j|theta) is quadratic with
    curvature exactly N A^T Sigma^-1 A (independent of the sample), so the expected intervals have the analytic
    half-widths sqrt(chi2_1^-1(alpha)) sigma_N (to the grid's interpolation error); their centre is the sample's
    MLE, within 4 sigma_1 / sqrt(M) of theta_0 (sigma_1 the one-event resolution: a Gaussian MC error, not a
    measured spread). The observed intervals sit at the observed MLE instead (a negative control)."""
    from mflow_sbi.inference.limits import AsimovLikelihood, asimov_sample

    problem = conjugate_problem(p=1, n=1, d=2, n_events=25, seed=7)
    theta_hat, fisher = gaussian_truth(problem)
    theta_0, m = np.array([theta_hat[0] + 3 / np.sqrt(fisher[0, 0])]), 20_000
    sample = asimov_sample(problem.model, theta_0, m, seed=1)
    axes = axes_around(theta_0, fisher, 201)
    expected = profile_likelihood_limits(AsimovLikelihood(ModelLikelihood(problem.model, sample), m, 25), axes)
    sd_n = 1 / np.sqrt(fisher[0, 0])
    sd_1 = sd_n * np.sqrt(25)
    assert abs(expected.theta_hat[0] - theta_0[0]) < 4 * sd_1 / np.sqrt(m)
    for level in (0.68, 0.95):
        half = np.sqrt(stats.chi2.ppf(level, 1)) * sd_n
        (segment,) = expected.intervals["theta_0"][level]
        assert (segment[1] - segment[0]) / 2 == pytest.approx(half, abs=5e-3 * sd_n)
        assert abs((segment[0] + segment[1]) / 2 - theta_0[0]) < 4 * sd_1 / np.sqrt(m) + 5e-3 * sd_n
    observed = profile_likelihood_limits(ModelLikelihood(problem.model, problem.x), axes)
    assert abs(observed.theta_hat[0] - theta_0[0]) > 2.5 * sd_n


def test_asimov_rate_is_the_poisson_term_at_its_expectation():
    """q_A from the rate alone is 2 [nu - nu_0 - nu_0 log(nu / nu_0)] (Cowan et al. 2011, eq. 97's unbinned part)."""
    from mflow_sbi.inference.limits import AsimovLikelihood, AsimovRate

    def nu(theta):
        return 10.0 * np.exp(theta[:, 0])

    rate = AsimovRate(nu, np.array([0.2]))
    assert rate.nu_0 == pytest.approx(10 * np.exp(0.2))
    theta = np.linspace(-1, 1, 11)[:, None]
    q = -2 * (rate(theta) - rate(np.array([[0.2]])))
    nus = nu(theta)
    np.testing.assert_allclose(q, 2 * (nus - rate.nu_0 - rate.nu_0 * np.log(nus / rate.nu_0)), rtol=1e-12, atol=1e-12)
    assert AsimovRate(lambda t: np.where(t[:, 0] > 0, 1.0, -1.0), np.array([1.0]))(np.array([[-1.0]]))[0] == -np.inf
    both = AsimovLikelihood(lambda t: np.zeros(len(t)), 5, 20.0, rate)
    np.testing.assert_allclose(both(theta), rate(theta))
    with pytest.raises(InputError, match="positive"):
        AsimovRate(lambda t: np.zeros(len(t)), np.array([0.0]))


def test_profiled_nuisance_matches_the_analytic_profile(conjugate_problem):
    """theta_1 of the 2-D Gaussian problem as a nuisance with its prior N(0, 2^2) as constraint: log L + log c is
    the quadratic -1/2 (t - t*)^T P (t - t*) with P = F + diag(0, 1/4), so q_p(theta_0) = (theta_0 - t*_0)^2 /
    (P^-1)_00 and nu_hat_hat(theta_0) = t*_1 - (P_10 / P_11)(theta_0 - t*_0) exactly; the profiled interval is
    wider than the one with theta_1 fixed at t*_1 (1 / sqrt(P_00) half-width per unit chi2)."""
    from mflow_sbi.inference.limits import ProfiledLikelihood

    problem = conjugate_problem(p=2, n=2, d=3, n_events=20, seed=3)
    theta_hat, fisher = gaussian_truth(problem)
    precision = fisher + np.diag([0.0, 1 / 4.0])
    t_star = np.linalg.solve(precision, fisher @ theta_hat)
    sd = np.sqrt(np.linalg.inv(precision)[0, 0])
    axis = GridAxis("theta_0", np.linspace(t_star[0] - 4 * sd, t_star[0] + 4 * sd, 161))
    profiled = ProfiledLikelihood(ModelLikelihood(problem.model, problem.x), 2, [0], [1], [problem.prior.components[1]])
    result = profile_likelihood_limits(profiled, [axis])
    np.testing.assert_allclose(result.q, (axis.values - t_star[0]) ** 2 / sd**2, atol=3e-3)
    _, nu_hat = profiled.maximize(axis.values[:, None])
    expected_nu = t_star[1] - precision[1, 0] / precision[1, 1] * (axis.values - t_star[0])
    np.testing.assert_allclose(nu_hat[:, 0], expected_nu, atol=2e-3 / np.sqrt(precision[1, 1]))
    (segment,) = result.intervals["theta_0"][0.68]
    half = np.sqrt(stats.chi2.ppf(0.68, 1))
    assert (segment[1] - segment[0]) / 2 == pytest.approx(half * sd, abs=5e-3 * sd)
    assert sd > 1.05 / np.sqrt(precision[0, 0])  # the correlated nuisance widens the interval (here 7.7 times)


def test_order_axes_leaves_nuisances_to_profile():
    a = parse_grid_spec("theta_0=-1:1:3")
    assert [x.name for x in order_axes([a], ["theta_0", "nu"], ["nu"])] == ["theta_0"]
    with pytest.raises(InputError, match="nuisance parameters nu are profiled"):
        order_axes([parse_grid_spec("nu=-1:1:3")], ["theta_0", "nu"], ["nu"])
