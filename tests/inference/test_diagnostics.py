"""Convergence diagnostics on chains with known autocorrelation and on deliberately broken ensembles."""

import numpy as np
import pytest

from mflow_sbi.errors import InputError
from mflow_sbi.inference.diagnostics import (
    autocorrelation_time,
    boundary_mass,
    boundary_warnings,
    chain_diagnostics,
    effective_sample_size,
    pooled_autocorrelation_time,
    split_rhat,
    stuck_walkers,
)


def ar1_chain(rho: float, steps: int, walkers: int, p: int, seed: int = 0) -> np.ndarray:
    """x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t: stationary N(0, 1) with tau = (1 + rho) / (1 - rho)."""
    rng = np.random.default_rng(seed)
    chain = np.empty((steps, walkers, p))
    chain[0] = rng.standard_normal((walkers, p))
    noise = np.sqrt(1 - rho**2) * rng.standard_normal((steps, walkers, p))
    for t in range(1, steps):
        chain[t] = rho * chain[t - 1] + noise[t]
    return chain


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_autocorrelation_time_of_ar1(rho):
    """16 walkers x 16000 steps. Over seeds 0-29 the worst relative error of tau was 0.023 / 0.038 / 0.065
    for rho = 0 / 0.5 / 0.8 (the estimator's spread grows with tau), hence rtol 0.12; 4000 steps (the old
    budget, rtol 0.1) gave up to 0.13 at rho = 0.8. A chain thinned by 2 (tau halves) fails by far."""
    chain = ar1_chain(rho, 16000, 16, 2)
    expected = (1 + rho) / (1 - rho)
    np.testing.assert_allclose(autocorrelation_time(chain), expected, rtol=0.12)
    np.testing.assert_allclose(effective_sample_size(chain), 16000 * 16 / expected, rtol=0.12)
    if rho:
        assert np.all(np.abs(autocorrelation_time(chain[::2]) / expected - 1) > 0.2)


def test_split_rhat_near_one_when_mixed_and_large_when_not():
    chain = ar1_chain(0.5, 2000, 16, 1)
    assert split_rhat(chain)[0] < 1.01
    separated = chain.copy()
    separated[:, :8] += 3.0  # half of the walkers explore a different place
    assert split_rhat(separated)[0] > 1.5
    drifting = chain + np.linspace(0, 3, 2000)[:, None, None]  # a trend shows up between the halves
    assert split_rhat(drifting)[0] > 1.1


def test_stuck_walkers_are_found():
    acceptance = np.array([0.4, 0.35, 0.0, 0.45, 0.02, 0.38])
    assert stuck_walkers(acceptance).tolist() == [2, 4]
    assert stuck_walkers(np.full(8, 0.3)).size == 0


def test_chain_diagnostics_warnings():
    good = chain_diagnostics(ar1_chain(0.5, 1000, 16, 2), np.full(16, 0.4))
    assert good["warnings"] == [] and good["n_steps"] == 1000 and good["n_walkers"] == 16
    short = chain_diagnostics(ar1_chain(0.9, 200, 16, 2), np.full(16, 0.4))
    assert any("shorter than 50" in w for w in short["warnings"])
    acceptance = np.full(16, 0.05)
    acceptance[3] = 0.0
    bad = chain_diagnostics(ar1_chain(0.5, 1000, 16, 2), acceptance)
    assert any("acceptance fraction 0.047" in w for w in bad["warnings"])
    assert any("stuck walker" in w for w in bad["warnings"]) and bad["stuck_walkers"] == [3]


def test_chain_shape_is_checked():
    with pytest.raises(InputError, match="steps >= 4, walkers, p"):
        autocorrelation_time(np.zeros((100, 4)))


def test_frozen_parameters_and_walkers_give_finite_diagnostics_without_warnings():
    """A parameter no walker moves in: tau = steps (one value per walker), no numpy warning, finite ESS;
    walkers frozen in one parameter are left out of its estimate, so it equals that of the moving walkers."""
    import warnings

    chain = ar1_chain(0.5, 2000, 16, 2)
    chain[:, :, 0] = 1.0
    chain[:, :4, 1] = chain[0, :4, 1]  # 4 stuck walkers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau = autocorrelation_time(chain)
        diagnostics = chain_diagnostics(chain, np.r_[np.zeros(4), np.full(12, 0.5)])
    assert tau[0] == 2000 and np.isfinite(diagnostics["effective_sample_size"]).all()
    np.testing.assert_allclose(tau[1], autocorrelation_time(chain[:, 4:, 1:])[0])
    assert diagnostics["stuck_walkers"] == [0, 1, 2, 3]


def test_boundary_mass_against_known_shares():
    """Uniform samples on [0, 1] put 2% within 2% of each bound; an exponential piled at 0 with scale 0.01 puts
    1 - exp(-2) = 86.5% near the lower bound; unbounded sides give NaN."""
    rng = np.random.default_rng(0)
    flat = rng.uniform(0, 1, size=(200_000, 1))
    piled = np.minimum(rng.exponential(0.01, size=(200_000, 1)), 1.0)
    normal = rng.normal(size=(200_000, 1))
    samples = np.hstack([flat, piled, normal])
    low, high = np.array([0.0, 0.0, -np.inf]), np.array([1.0, 1.0, np.inf])
    fractions = boundary_mass(samples, low, high)
    np.testing.assert_allclose(fractions[0], [0.02, 0.02], atol=0.002)
    np.testing.assert_allclose(fractions[1], [1 - np.exp(-2), 0.0], atol=0.005)
    assert np.isnan(fractions[2]).all()
    warnings = boundary_warnings(fractions, low, high)
    assert len(warnings) == 1 and "parameter 1" in warnings[0] and "lower bound 0" in warnings[0]


def test_a_posterior_cut_off_by_the_prior_is_warned_in_the_sampler_diagnostics():
    """The target N(0.95, 0.1^2) on the prior U(-1, 1): the top 2% of the range, [0.96, 1], holds
    (Phi(0.5) - Phi(0.1)) / Phi(0.5) = 0.22 of the mass (ESS ~ 3000, so +- 0.008), far above the 10%
    threshold; N(0, 0.3^2) holds ~0."""
    from mflow_sbi.inference.potential import PosteriorPotential
    from mflow_sbi.inference.sampler import sample_potential
    from mflow_sbi.priors import box_uniform

    prior = box_uniform([-1.0], [1.0])
    for centre, warned in ((0.95, True), (0.0, False)):
        potential = PosteriorPotential(lambda theta, c=centre: -0.5 * ((theta[:, 0] - c) / (0.1 if c else 0.3)) ** 2,
                                       prior)
        posterior = sample_potential(potential, n_walkers=16, n_steps=1200, burn_in=200, seed=1, progress=False)
        upper = posterior.diagnostics["prior_boundary_mass"][0][1]
        messages = [w for w in posterior.diagnostics["warnings"] if "prior" in w]
        if warned:
            assert 0.18 < upper < 0.26 and len(messages) == 1 and "upper bound 1" in messages[0]
        else:
            assert upper < 0.01 and not messages


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
@pytest.mark.parametrize("seed", range(3))
def test_pooled_autocorrelation_time_of_ar1_chains(rho, seed):
    """Within 25% of (1 + rho) / (1 - rho) on 400 steps x 32 walkers (over 20 seeds: 0.80-1.19 of it)."""
    tau = pooled_autocorrelation_time(ar1_chain(rho, 400, 32, 2, seed))
    np.testing.assert_allclose(tau, (1 + rho) / (1 - rho), rtol=0.25)


@pytest.mark.parametrize("seed", range(3))
def test_pooled_autocorrelation_time_sees_slow_mixing_on_a_short_chain(seed):
    """100 steps at tau = 39: the per-walker estimate finds ~8, the pooled one more than 1.4x that (20 seeds:
    at least 1.7x)."""
    chain = ar1_chain(0.95, 100, 32, 2, seed)
    assert pooled_autocorrelation_time(chain).min() > 1.4 * autocorrelation_time(chain).max()
    frozen = np.broadcast_to(chain[:1], chain.shape)  # walkers that never move: no finite mixing time
    assert np.all(pooled_autocorrelation_time(frozen) >= 0.9 * len(chain))
