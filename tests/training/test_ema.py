"""Weight averaging (``ema_decay``) and separate manifold budgets (``manifold_events``).

EMA: the averaged weights the trainer keeps equal the recursion avg_k = d_k avg_(k-1) + (1 - d_k) w_k with the
warm-up d_k = min(decay, k / (k + 9)), computed by hand from the live weights after every step; validation
and the final model use them; checkpoints hold them, and a run resumed after an interruption reproduces the
uninterrupted one bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mflow_sbi.errors import ConfigError, TrainingError
from mflow_sbi.training import TrainingConfig, build_phases, train_model
from mflow_sbi.training.trainer import Phase, Step, Trainer
from tests.training.helpers import polynomial_data, tiny_mflow
from tests.training.test_train_model import Interrupt, interrupt_at

FAST = {"batch_size": 50, "threads": 1, "learning_rate": 3e-3}


def regression_data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, generator=generator)
    return x, 3.0 * x - 1.0 + 0.1 * torch.randn(n, 1, generator=generator)


def test_ema_weights_follow_the_recursion_by_hand(tmp_path):
    """Linear model, 4 batches x 3 epochs, no validation split (epochs are scored on the training loss): the
    loss records the live weights it sees, i.e. those after every previous step; the final model must hold
    the hand-made average at the end of the best epoch, the checkpoint the live weights and the average."""
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    decay = 0.5  # the warm-up k / (k + 9) reaches it at step 9 of 12: both regimes are checked
    seen: list[torch.Tensor] = []

    def loss(batch):
        if model.training:
            seen.append(torch.cat([model.weight.detach().flatten(), model.bias.detach()]).clone())
        return {"mse": ((model(batch[0]) - batch[1]) ** 2).mean()}

    settings = TrainingConfig(batch_size=16, weight_decay=0.0, validation_fraction=0.0, patience=100)
    trainer = Trainer(model, regression_data(), settings, progress=False, checkpoint=tmp_path / "c.pt")
    history = trainer.fit([Phase("D", [Step("D", list(model.parameters()), loss, 0.2)], epochs=3, ema_decay=decay)])
    state = torch.load(tmp_path / "c.pt", weights_only=False)
    live_final = torch.cat([state["model"]["weight"].flatten(), state["model"]["bias"]])
    live = seen[1:] + [live_final]  # the weights after steps 1..12
    assert len(live) == 12
    average, per_epoch = seen[0].clone(), []
    for k, weights in enumerate(live, start=1):
        d = min(decay, k / (k + 9))
        average = d * average + (1 - d) * weights
        if k % 4 == 0:
            per_epoch.append(average.clone())
    best = min(range(3), key=lambda e: history.records[e]["train"]["loss"])
    final = torch.cat([model.weight.detach().flatten(), model.bias.detach()])
    assert torch.allclose(final, per_epoch[best], rtol=1e-6, atol=1e-7)
    assert not torch.allclose(final, live_final, atol=1e-3)  # negative control: the average is not the live weights
    saved = torch.cat([state["ema"]["shadow"][0].flatten(), state["ema"]["shadow"][1]])
    assert torch.allclose(saved, per_epoch[-1], rtol=1e-6, atol=1e-7)
    assert state["ema"]["updates"] == 12


def test_validation_scores_the_averaged_weights():
    torch.manual_seed(1)
    model = nn.Linear(1, 1)
    step = Step("fit", list(model.parameters()), lambda b: {"mse": ((model(b[0]) - b[1]) ** 2).mean()}, 0.3)
    settings = TrainingConfig(batch_size=8, weight_decay=0.0, validation_fraction=0.25, patience=100)
    trainer = Trainer(model, regression_data(80), settings, progress=False)
    history = trainer.fit([Phase("fit", [step], epochs=1, ema_decay=0.9)])
    with torch.no_grad():
        val = float(((model(trainer.val_data[0]) - trainer.val_data[1]) ** 2).mean())
    assert val == pytest.approx(history.records[0]["val"]["loss"], rel=1e-6)  # the final model is the one scored


@pytest.mark.parametrize("stop", [("M", 0), ("D", 0), ("D", 1)])
def test_ema_resume_reproduces_the_uninterrupted_run_and_checkpoints_hold_it(tmp_path, stop):
    x, theta = polynomial_data(200)
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=3, seed=7, ema_decay=0.9, patience=100,
                            **FAST)
    reference = tiny_mflow(seed=1)
    expected = train_model(reference, x, theta, config, checkpoint=tmp_path / "full.pt", progress=False)
    state = torch.load(tmp_path / "full.pt", weights_only=False)
    assert state["phase"] == 1 and len(state["ema"]["shadow"]) == len(list(reference.inner.parameters()))

    checkpoint = tmp_path / "interrupted.pt"
    with pytest.raises(Interrupt):
        train_model(tiny_mflow(seed=1), x, theta, config, checkpoint=checkpoint, progress=False,
                    callback=interrupt_at(*stop))
    resumed_model = tiny_mflow(seed=99)
    resumed = train_model(resumed_model, x, theta, config, checkpoint=checkpoint, resume=True, progress=False)
    assert resumed.records == expected.records
    a, b = reference.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_changes_the_result_and_zero_is_off():
    x, theta = polynomial_data(200)
    results = []
    for decay in (0.0, 0.9):
        model = tiny_mflow(seed=1)
        train_model(model, x, theta, TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=2, seed=3,
                                                    ema_decay=decay, **FAST), progress=False)
        results.append([p.detach().clone() for p in model.inner.parameters()])
    assert not all(torch.equal(a, b) for a, b in zip(*results, strict=True))
    phases = build_phases(tiny_mflow(), TrainingConfig(algorithm="sequential", ema_decay=0.99))
    assert [(p.name, p.ema_decay) for p in phases] == [("M", 0.0), ("D", 0.99)]
    phases = build_phases(tiny_mflow(), TrainingConfig(algorithm="simultaneous", ema_decay=0.99))
    assert [(p.name, p.ema_decay) for p in phases] == [("M", 0.0), ("S", 0.0), ("D", 0.99)]


def test_resume_refuses_a_checkpoint_without_averages(tmp_path):
    x, theta = polynomial_data(100)
    base = {"algorithm": "sequential", "epochs_m": 1, "epochs_d": 2, **FAST}
    with pytest.raises(Interrupt):
        train_model(tiny_mflow(), x, theta, TrainingConfig(**base), checkpoint=tmp_path / "c.pt", progress=False,
                    callback=interrupt_at("D", 0))
    with pytest.raises(TrainingError, match="no weight averages"):
        train_model(tiny_mflow(), x, theta, TrainingConfig(**base, ema_decay=0.9), checkpoint=tmp_path / "c.pt",
                    resume=True, progress=False)


@pytest.mark.parametrize(("changes", "message"), [
    ({"ema_decay": 1.0}, r"training.ema_decay must be a number in \[0, 1\)"),
    ({"ema_decay": -0.1}, r"training.ema_decay must be a number in \[0, 1\)"),
    ({"manifold_events": -1}, "training.manifold_events must be an integer >= 0"),
    ({"manifold_events": 10.5}, "training.manifold_events must be an integer"),
])
def test_invalid_options_are_rejected(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainingConfig(**changes)


def test_manifold_events_limit_phase_m_only():
    """Phase M sees only the first ``manifold_events`` training rows, phase D all of them."""
    x, theta = polynomial_data(300)
    model = tiny_mflow()
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, manifold_events=70, validation_fraction=0.1,
                            **FAST)
    rows = {"M": 0, "D": 0}
    phases = build_phases(model, config)
    for phase in phases:
        step = phase.steps[0]
        original = step.loss

        def counting(batch, original=original, name=phase.name):
            if torch.is_grad_enabled():
                rows[name] += batch[0].shape[0]
            return original(batch)

        step.loss = counting
    from mflow_sbi.training.tensors import prepare_tensors

    data = prepare_tensors(model, x, theta, None, config)
    settings = TrainingConfig(batch_size=50, validation_fraction=0.1)
    Trainer(model, data, settings, progress=False).fit(phases)
    assert rows == {"M": 70, "D": 270}
