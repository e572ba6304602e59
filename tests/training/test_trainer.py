"""The generic trainer on a linear-regression toy: splits, non-finite guard, early stopping, checkpoints."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from mflow_sbi.errors import TrainingError
from mflow_sbi.training.settings import TrainingConfig
from mflow_sbi.training.trainer import Phase, Step, Trainer, split_indices


def regression_data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = 3 x - 1 + noise."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=generator)
    return x, 3.0 * x - 1.0 + 0.1 * torch.randn(n, 1, generator=generator)


def mse_step(model: nn.Module, learning_rate: float = 0.05) -> Step:
    return Step("fit", list(model.parameters()), lambda batch: {"mse": ((model(batch[0]) - batch[1]) ** 2).mean()},
                learning_rate)


def settings(**changes) -> TrainingConfig:
    values = {"batch_size": 16, "weight_decay": 0.0, "validation_fraction": 0.0, "patience": 100}
    return TrainingConfig(**(values | changes))


def test_split_is_disjoint_complete_and_seeded():
    train, val = split_indices(50, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    assert sorted(torch.cat([train, val]).tolist()) == list(range(50))
    assert torch.equal(split_indices(50, 0.2, seed=3)[1], val)
    assert not torch.equal(split_indices(50, 0.2, seed=4)[1], val)
    assert len(split_indices(5, 0.0, seed=0)[1]) == 0


def test_step_total_weights_terms():
    step = Step("fit", [], lambda batch: {}, weights={"b": 10.0})
    assert float(step.total({"a": torch.tensor(2.0), "b": torch.tensor(3.0)})) == 32.0


def test_nan_in_one_batch_is_skipped_and_reported(caplog):
    torch.manual_seed(0)
    x, y = regression_data()
    x[5, 0] = float("nan")
    model = nn.Linear(1, 1)
    trainer = Trainer(model, (x, y), settings())
    with caplog.at_level(logging.WARNING, logger="mflow_sbi.training.trainer"):
        history = trainer.fit([Phase("fit", [mse_step(model, learning_rate=0.3)], epochs=30)])
    assert [r["skipped"] for r in history.records] == [1] * 30
    assert "skipped 1 batch step(s)" in caplog.text
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert history.records[-1]["train"]["mse"] < 0.05 < history.records[0]["train"]["mse"]
    assert model.weight.item() == pytest.approx(3.0, abs=0.1)


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
def test_nonfinite_gradient_is_skipped():
    model = nn.Linear(1, 1)
    before = [p.detach().clone() for p in model.parameters()]
    # sqrt(0 * w) is 0 but its gradient is 0 * inf = nan
    step = Step("bad", list(model.parameters()), lambda batch: {"loss": torch.sqrt(0.0 * model.weight).sum()})
    history = Trainer(model, regression_data(), settings(max_nonfinite=1000)).fit([Phase("p", [step], epochs=2)])
    assert [r["skipped"] for r in history.records] == [4, 4]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_repeated_failures_stop_with_clear_error_and_keep_last_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    broken = {"on": False}
    after_first_epoch = {}

    def loss(batch):
        value = ((model(batch[0]) - batch[1]) ** 2).mean()
        return {"mse": value * float("nan") if broken["on"] else value}

    def callback(record):
        after_first_epoch.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        broken["on"] = True

    checkpoint = tmp_path / "checkpoint.pt"
    trainer = Trainer(model, regression_data(), settings(max_nonfinite=2), checkpoint=checkpoint, callback=callback)
    with pytest.raises(TrainingError, match=r"3 consecutive non-finite .* step 'fit'.*checkpoint.pt"):
        trainer.fit([Phase("fit", [Step("fit", list(model.parameters()), loss)], epochs=5)])
    state = torch.load(checkpoint, weights_only=False)
    assert state["epoch"] == 0
    assert all(torch.equal(state["model"][k], v) for k, v in after_first_epoch.items())


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
def test_consecutive_failures_are_counted_across_epochs():
    model = nn.Linear(1, 1)
    step = Step("bad", list(model.parameters()), lambda batch: {"loss": model(batch[0]).sum() * float("inf")})
    trainer = Trainer(model, regression_data(), settings(max_nonfinite=6))  # 4 batches per epoch
    with pytest.raises(TrainingError, match="7 consecutive non-finite"):
        trainer.fit([Phase("p", [step], epochs=5)])


def test_early_stopping_restores_the_best_weights():
    torch.manual_seed(1)
    model = nn.Linear(1, 1)
    # a learning rate far too large makes the validation loss jump around
    trainer = Trainer(model, regression_data(200), settings(validation_fraction=0.3, patience=3, batch_size=8))
    history = trainer.fit([Phase("fit", [mse_step(model, learning_rate=3.0)], epochs=40)])
    val = [r["val"]["loss"] for r in history.records]
    best = min(range(len(val)), key=val.__getitem__)
    assert best < len(val) - 1, "the toy should not improve monotonically"
    assert len(val) == best + 1 + 3  # stopped after `patience` epochs without improvement
    with torch.no_grad():
        restored = float(((model(trainer.val_data[0]) - trainer.val_data[1]) ** 2).mean())
    assert restored == pytest.approx(val[best], rel=1e-6)


def test_resume_refuses_a_checkpoint_of_another_plan(tmp_path):
    model = nn.Linear(1, 1)
    checkpoint = tmp_path / "checkpoint.pt"
    trainer = Trainer(model, regression_data(), settings(), checkpoint=checkpoint)
    trainer.fit([Phase("fit", [mse_step(model)], epochs=1)])
    with pytest.raises(TrainingError, match="checkpoint was written for phases"):
        Trainer(model, regression_data(), settings(), checkpoint=checkpoint).fit(
            [Phase("fit", [mse_step(model)], epochs=2)], resume=True
        )


def test_rejects_empty_or_mismatched_data():
    with pytest.raises(TrainingError, match="share their first dimension"):
        Trainer(nn.Linear(1, 1), (torch.zeros(3, 1), torch.zeros(4, 1)), settings())
