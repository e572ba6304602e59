"""Weighted events: weighted scalers, losses and validation; integer weights train like duplicated events, and
events with negative weights cancel their positive copies."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mflow_sbi.data.datasets import EventData, load_events
from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.flows.standardize import Standardizer
from mflow_sbi.training import TrainingConfig, train_model
from mflow_sbi.training.losses import weighted_mean
from mflow_sbi.training.tensors import effective_sample_size, normalized_weights
from tests.training.helpers import polynomial_data, tiny_mflow

# one full batch (no shuffling effects) and no validation split (its random rows would differ between the
# weighted and the duplicated sample), 15 + 15 epochs of sequential M/D
FULL_BATCH = TrainingConfig(algorithm="sequential", epochs_m=15, epochs_d=15, batch_size=8192, seed=0,
                            validation_fraction=0.0)


def _trained_log_prob(x, theta, w=None, seed=0):
    model = tiny_mflow(seed=seed)
    train_model(model, x, theta, FULL_BATCH, progress=False, w=w)
    test_x, test_theta = polynomial_data(200, 99)
    with torch.no_grad():
        return model.log_prob(test_x, test_theta).double().numpy()


def test_weighted_moments_and_means_are_exact():
    values = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    weights = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    scaler = Standardizer(1).fit(values, weights)
    mean = (1 + 4 + 4) / 4
    population = (1 * (1 - mean) ** 2 + 2 * (2 - mean) ** 2 + (4 - mean) ** 2) / 4
    n_eff = 16 / 6
    assert float(scaler.mean) == pytest.approx(mean)
    assert float(scaler.scale) == pytest.approx(np.sqrt(population * n_eff / (n_eff - 1)), rel=1e-6)
    equal = Standardizer(1).fit(values, torch.ones(3, dtype=torch.float64))
    assert float(equal.scale) == pytest.approx(float(values.std()), rel=1e-6)  # equal weights: the N - 1 formula
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 1.0, -1.0, 1.0])) == pytest.approx(1.0)
    assert torch.allclose(normalized_weights(torch.tensor([1.0, 3.0])), torch.tensor([0.5, 1.5]))
    with pytest.raises(InputError, match="sum to"):
        normalized_weights(torch.tensor([1.0, -2.0]))
    assert float(weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 1.5]))) == pytest.approx(2.5)


def test_integer_weights_train_like_duplicated_events():
    """Weights 1-3 on 2,000 polynomial-surface events against the same events repeated w times (same seeds, one
    full batch): measured over seeds 0-2 (data, weights, model and training), max |log p difference| on 200 test
    events 0.0008-0.0035 (float rounding and the weighted standardization's n_eff correction), mean
    0.0004-0.0006; ignoring the weights moves log p by a mean of 0.007-0.020, 11-50x more."""
    x, theta = polynomial_data(2000, 0)
    w = np.random.default_rng(0).integers(1, 4, size=2000)
    weighted = _trained_log_prob(x, theta, w.astype(float))
    duplicated = _trained_log_prob(np.repeat(x, w, axis=0), np.repeat(theta, w, axis=0))
    unweighted = _trained_log_prob(x, theta)
    assert np.abs(weighted - duplicated).max() < 0.02
    assert np.abs(weighted - duplicated).mean() < 0.25 * np.abs(unweighted - duplicated).mean()


def test_negative_weights_cancel_their_positive_copies(caplog):
    """Events B added once with weight +1 and once with -1 leave the weighted sample equal to A: measured over seeds
    0-2 the trained log p differs from training on A alone by at most 0.0022-0.004 (mean 0.0002-0.0006)."""
    x, theta = polynomial_data(2000, 0)
    extra_x, extra_theta = polynomial_data(300, 2)
    with caplog.at_level(logging.INFO, logger="mflow_sbi.training.tensors"):
        cancelled = _trained_log_prob(np.concatenate([x, extra_x, extra_x]), np.concatenate([theta, extra_theta, extra_theta]),
                                      np.concatenate([np.ones(2000), np.ones(300), -np.ones(300)]))
    assert "effective sample size" in caplog.text and "300 negative" in caplog.text
    plain = _trained_log_prob(x, theta)
    assert np.abs(cancelled - plain).max() < 0.02


def test_weighted_loss_is_the_loss_of_the_duplicated_sample():
    """The first epoch's loss (at the initial weights, up to the scalers) of a weighted run equals that of the
    duplicated sample."""
    x, theta = polynomial_data(400, 0)
    w = np.random.default_rng(1).integers(1, 3, size=400)
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, batch_size=8192, seed=0,
                            validation_fraction=0.0)
    weighted = train_model(tiny_mflow(seed=0), x, theta, config, progress=False, w=w.astype(float)).records
    duplicated = train_model(tiny_mflow(seed=0), np.repeat(x, w, 0), np.repeat(theta, w, 0), config,
                             progress=False).records
    for a, b in zip(weighted, duplicated, strict=True):
        assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=2e-3)


def test_weights_in_npz_files(tmp_path):
    x, theta = polynomial_data(5, 0)
    path = EventData(x=x, theta=theta, w=np.array([1.0, 2.0, -0.5, 1.0, 1.0])).save(tmp_path / "w.npz")
    assert np.array_equal(load_events(path).w, [1.0, 2.0, -0.5, 1.0, 1.0])
    for bad, message in ((np.ones(4), "has 4 entries"), (np.array([1, np.nan, 1, 1, 1.0]), "NaN/inf"),
                         (-np.ones(5), "positive sum"), (np.ones((5, 2)), "shape")):
        np.savez(tmp_path / "bad.npz", x=x, theta=theta, w=bad)
        with pytest.raises(DataFileError, match=message):
            load_events(tmp_path / "bad.npz")
