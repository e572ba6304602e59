"""SBC ranks and expected coverage: uniform for an exact posterior, rejected for an over-confident one."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from mflow_sbi.errors import InputError
from mflow_sbi.inference.calibration import (
    CalibrationResult,
    expected_coverage,
    hpd_credibility,
    rank_uniformity_pvalue,
    run_calibration,
    sbc_ranks,
)
from mflow_sbi.inference.likelihood import ModelLikelihood


def conjugate_calibration(width_factor: float, n_datasets: int = 300, n_draws: int = 99, seed: int = 0):
    """theta ~ N(0, 1), x_i ~ N(theta, 1) (10 events): posterior N(sum x / 11, 1 / 11).

    Posterior draws come from N(mean, (width_factor * sd)^2): width_factor 1 is exact, < 1 over-confident.
    """
    rng = np.random.default_rng(seed)
    ranks, credibility = [], []
    for _ in range(n_datasets):
        theta = rng.normal()
        x = theta + rng.normal(size=10)
        mean, sd = x.sum() / 11, width_factor / np.sqrt(11)
        draws = rng.normal(mean, sd, size=(n_draws, 1))
        ranks.append(sbc_ranks(draws, np.array([theta]))[0])
        many = rng.normal(mean, sd, size=4000)
        credibility.append(hpd_credibility(norm.logpdf(many, mean, sd), norm.logpdf(theta, mean, sd)))
    return np.array(ranks), np.array(credibility)


def test_sbc_ranks_are_uniform_for_exact_posterior():
    ranks, credibility = conjugate_calibration(1.0)
    assert ranks.min() >= 0 and ranks.max() <= 99
    assert rank_uniformity_pvalue(ranks, 99) > 0.01
    levels = np.linspace(0.1, 0.9, 9)
    np.testing.assert_allclose(expected_coverage(credibility, levels), levels, atol=0.08)


def test_sbc_rejects_overconfident_posterior():
    ranks, credibility = conjugate_calibration(0.5)
    assert rank_uniformity_pvalue(ranks, 99) < 1e-6
    # truth in the 68% HPD of a posterior half as wide: P(|Z| < 0.5 * 0.994) = 0.38
    assert expected_coverage(credibility, [0.68])[0] == pytest.approx(0.38, abs=0.08)


def test_rank_counting_and_credibility_by_hand():
    draws = np.array([[0.1, 5.0], [0.3, 4.0], [0.7, 3.0]])
    assert sbc_ranks(draws, np.array([0.5, 3.5])).tolist() == [2, 1]
    assert hpd_credibility(np.array([-1.0, -2.0, -3.0, -4.0]), -2.5) == 0.5
    assert expected_coverage(np.array([0.1, 0.5, 0.9]), [0.0, 0.6, 1.0]).tolist() == [0.0, 2 / 3, 1.0]
    with pytest.raises(InputError, match="theta_true"):
        sbc_ranks(draws, np.array([0.5]))


def simulator_of(model):
    def simulate(theta, n, rng):
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        return model.sample(torch.as_tensor(theta, dtype=torch.float32), n, generator).double().numpy()

    return simulate


def test_run_calibration_with_model_and_round_trip(conjugate_problem, tmp_path):
    problem = conjugate_problem(p=1, n=1, d=2, seed=1)
    simulate = simulator_of(problem.model)

    result = run_calibration(simulate, lambda x: ModelLikelihood(problem.model, x), problem.prior, n_datasets=6,
                             n_events=10, seed=3, n_rank_samples=20, progress=False, parameter_names=("a",),
                             n_walkers=8, n_steps=250, burn_in=50)
    assert result.ranks.shape == (6, 1) and result.theta_true.shape == (6, 1) and result.credibility.shape == (6,)
    assert np.all((result.ranks >= 0) & (result.ranks <= 20))
    assert np.all((result.credibility >= 0) & (result.credibility <= 1))
    summary = result.summary()
    assert summary["n_datasets"] == 6 and set(summary["rank_uniformity_pvalue"]) == {"a"}
    loaded = CalibrationResult.load(result.save(tmp_path / "cal.npz"))
    np.testing.assert_array_equal(loaded.ranks, result.ranks)
    assert loaded.parameter_names == ("a",) and loaded.n_rank_samples == 20
    with pytest.raises(InputError, match="fewer than"):
        run_calibration(simulate, lambda x: ModelLikelihood(problem.model, x), problem.prior, n_datasets=1,
                        n_events=5, n_rank_samples=500, progress=False, n_walkers=4, n_steps=60, burn_in=10)


SMALL = {"n_events": 10, "seed": 3, "n_rank_samples": 20, "progress": False, "n_walkers": 8, "n_steps": 100, "burn_in": 20}


def assert_same_result(first: CalibrationResult, second: CalibrationResult):
    np.testing.assert_array_equal(first.theta_true, second.theta_true)
    np.testing.assert_array_equal(first.ranks, second.ranks)
    np.testing.assert_array_equal(first.credibility, second.credibility)


def test_lockstep_calibration_equals_one_data_set_after_another(conjugate_problem):
    problem = conjugate_problem(p=2, n=2, d=3, seed=1)
    args = (simulator_of(problem.model), lambda x: ModelLikelihood(problem.model, x), problem.prior)
    alone = run_calibration(*args, n_datasets=4, lockstep=1, **SMALL)
    together = run_calibration(*args, n_datasets=4, lockstep=4, **SMALL)
    in_blocks = run_calibration(*args, n_datasets=4, lockstep=3, **SMALL)
    assert_same_result(alone, together)
    assert_same_result(alone, in_blocks)
    assert len(np.unique(alone.credibility)) == 4  # four different data sets, not one repeated


def test_calibration_resumes_from_its_checkpoint(conjugate_problem, tmp_path):
    problem = conjugate_problem(p=1, n=1, d=2, seed=1)
    args = (simulator_of(problem.model), lambda x: ModelLikelihood(problem.model, x), problem.prior)
    checkpoint = tmp_path / "checkpoint.npz"
    full = run_calibration(*args, n_datasets=5, lockstep=2, **SMALL)
    run_calibration(*args, n_datasets=2, lockstep=2, checkpoint=checkpoint, **SMALL)  # as if stopped after a block
    with np.load(checkpoint) as npz:
        assert npz["ranks"].shape == (2, 1)
    resumed = run_calibration(*args, n_datasets=5, lockstep=2, checkpoint=checkpoint, resume=True, **SMALL)
    assert_same_result(full, resumed)
    with np.load(checkpoint) as npz:
        assert npz["ranks"].shape == (5, 1)
    calls = problem.model.calls["latent_log_prob"]
    again = run_calibration(*args, n_datasets=5, lockstep=2, checkpoint=checkpoint, resume=True, **SMALL)
    assert_same_result(full, again)
    assert problem.model.calls["latent_log_prob"] == calls  # all done: nothing is sampled again
    with pytest.raises(InputError, match="n_steps differ"):
        run_calibration(*args, n_datasets=5, checkpoint=checkpoint, resume=True, **{**SMALL, "n_steps": 101})
    with pytest.raises(InputError, match="model_weights_sha256 differ"):
        run_calibration(*args, n_datasets=5, checkpoint=checkpoint, resume=True, identity={"model_weights_sha256": "0"},
                        **SMALL)
