"""Members' posteriors by importance weighting of the ensemble's samples, against conjugate Gaussians."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.inference.ensemble_spread import member_moments
from mflow_sbi.inference.posterior import format_ensemble_spread


def test_reweighting_recovers_each_gaussian_members_posterior():
    """Flat prior, member log-likelihoods l_k = -(theta - a_k)^2 / (2 s^2): the ensemble's posterior is
    N(mean(a), s^2) and member k's N(a_k, s^2). Reweighted samples of the first give the second."""
    rng = np.random.default_rng(0)
    centres, s, n = np.array([-0.3, 0.0, 0.45]), 0.5, 200_000
    samples = rng.normal(centres.mean(), s, size=(n, 1))
    log_l = -0.5 * ((samples[:, 0][None, :] - centres[:, None]) / s) ** 2
    moments = member_moments(log_l, samples)
    ess = moments["effective_sample_size"]
    # Monte Carlo error of a self-normalized mean: s / sqrt(ESS); allow 5 of them
    np.testing.assert_allclose(moments["mean"][:, 0], centres, atol=5 * s / np.sqrt(ess.min()))
    np.testing.assert_allclose(moments["std"][:, 0], s, rtol=0.02)
    # ESS of N(a, s) importance-sampled from N(m, s): n exp(-(a - m)^2 / s^2)
    np.testing.assert_allclose(ess / n, np.exp(-((centres - centres.mean()) / s) ** 2), rtol=0.05)


def test_infinite_log_likelihoods_get_zero_weight():
    samples = np.array([[0.0], [1.0], [2.0]])
    log_l = np.array([[0.0, 0.0, -np.inf], [0.0, 0.0, 0.0]])
    moments = member_moments(log_l, samples)
    assert moments["mean"][0, 0] == pytest.approx(0.5)
    assert np.isfinite(moments["mean"]).all()


def test_summary_line_names_the_spread_and_the_warning():
    entry = {"size": 3, "spread_of_means": {"theta": 0.0312}, "warning": "members [2] have a small ESS"}
    line = format_ensemble_spread(entry)
    assert "ensemble of 3 models" in line and "theta 0.0312" in line and "WARNING: members [2]" in line
