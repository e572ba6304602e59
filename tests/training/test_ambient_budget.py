"""The AF's default training budget: an unset ``epochs`` caps an AF's maximum likelihood at AMBIENT_EPOCHS and
early stopping ends it at the best validation epoch; every other phase that reads ``epochs`` keeps
DEFAULT_EPOCHS."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mflow_sbi.flows import create_model
from mflow_sbi.training import TrainingConfig, build_phases, train_model
from mflow_sbi.training.settings import AMBIENT_EPOCHS, DEFAULT_EPOCHS
from mflow_sbi.training.tensors import validation_rows
from tests.training.helpers import tiny_mflow


def test_unset_epochs_give_the_af_the_long_cap_and_the_rest_the_old_one():
    af = create_model("af", 2, 1, flow={"n_layers": 1, "hidden_features": 8})
    pie = create_model("pie", 3, 1, latent_dim=2)
    assert (AMBIENT_EPOCHS, DEFAULT_EPOCHS) == (300, 30)
    assert TrainingConfig().epochs is None
    assert [(p.name, p.epochs) for p in build_phases(af, TrainingConfig())] == [("ML", AMBIENT_EPOCHS)]
    assert [(p.name, p.epochs) for p in build_phases(pie, TrainingConfig())] == [("ML", DEFAULT_EPOCHS)]
    mflow = tiny_mflow()
    assert [(p.name, p.epochs) for p in build_phases(mflow, TrainingConfig(algorithm="alternating"))] == [("A", 30)]
    assert [(p.name, p.epochs) for p in build_phases(mflow, TrainingConfig(algorithm="simultaneous"))] == [
        ("M", 5), ("S", 30), ("D", 10)]
    assert [(p.name, p.epochs) for p in build_phases(mflow, TrainingConfig())] == [("M", 30), ("D", 40)]
    # an explicit value holds for every model, the AF included
    assert [p.epochs for p in build_phases(af, TrainingConfig(epochs=12))] == [12]
    assert [p.epochs for p in build_phases(pie, TrainingConfig(epochs=12))] == [12]


def gaussian_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x | theta ~ N((theta, -theta), 0.5^2 I), theta ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, (n, 1))
    return np.hstack([theta, -theta]) + 0.5 * rng.standard_normal((n, 2)), theta


@pytest.mark.parametrize("seed", [0, 1])
def test_af_defaults_train_until_validation_stops_improving_and_keep_the_best_epoch(seed):
    """With the default budget (``epochs`` unset: up to 300) a small AF on 200 events at a high learning rate
    overfits: over seeds 0-9 its validation loss was lowest at epoch 2-20 (0-based) and training ended 6
    (``patience``) epochs later, after 9-27 of at most 300 epochs. Asserted: the run ends exactly ``patience``
    epochs after its best validation epoch, well before the cap, and the model holds that epoch's weights (its
    validation NLL equals the best one to 1e-4, while the last epoch's was 0.04-0.35 higher on every seed: the
    negative control)."""
    x, theta = gaussian_data(200, seed)
    torch.manual_seed(seed)
    model = create_model("af", 2, 1, flow={"n_layers": 2, "hidden_features": 16, "num_blocks": 1})
    config = TrainingConfig(batch_size=32, learning_rate=1e-2, weight_decay=0.0, threads=1, seed=seed)
    history = train_model(model, x, theta, config, progress=False)
    val = [record["val"]["loss"] for record in history.records]
    best = int(np.argmin(val))
    assert len(val) == best + 1 + config.patience < AMBIENT_EPOCHS
    assert val[-1] > val[best]
    rows = validation_rows(x, theta, None, config)
    with torch.no_grad():
        restored = -model.log_prob(x[rows], theta[rows]).double().mean().item()
    assert restored == pytest.approx(val[best], rel=1e-4, abs=1e-4)
