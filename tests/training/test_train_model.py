"""train_model: resume reproduces an uninterrupted run bit for bit, data checks, threads, SCANDAL."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.training import TrainingConfig, train_model
from mflow_sbi.training.losses import log_prob_and_score
from tests.training.helpers import gaussian_line_data, polynomial_data, tiny_mflow

FAST = {"batch_size": 50, "threads": 1, "learning_rate": 3e-3}


class Interrupt(Exception):
    pass


def interrupt_at(phase: str, epoch: int):
    def callback(record):
        if (record["phase"], record["epoch"]) == (phase, epoch):
            raise Interrupt

    return callback


@pytest.mark.parametrize(
    ("algorithm", "stop"), [("sequential", ("M", 0)), ("sequential", ("D", 1)), ("alternating", ("A", 1))]
)
def test_resume_reproduces_the_uninterrupted_run(tmp_path, algorithm, stop):
    x, theta = polynomial_data(200)
    config = TrainingConfig(algorithm=algorithm, epochs=3, epochs_m=2, epochs_d=3, seed=7, weight_decay=1e-3, **FAST)

    reference = tiny_mflow(seed=1)
    expected = train_model(reference, x, theta, config, checkpoint=tmp_path / "full.pt", progress=False)

    checkpoint = tmp_path / "interrupted.pt"
    with pytest.raises(Interrupt):
        train_model(tiny_mflow(seed=1), x, theta, config, checkpoint=checkpoint, progress=False,
                    callback=interrupt_at(*stop))
    resumed_model = tiny_mflow(seed=99)  # different initial weights: everything must come from the checkpoint
    resumed = train_model(resumed_model, x, theta, config, checkpoint=checkpoint, resume=True, progress=False)

    assert resumed.records == expected.records
    reference_state, resumed_state = reference.state_dict(), resumed_model.state_dict()
    assert reference_state.keys() == resumed_state.keys()
    assert all(torch.equal(reference_state[k], resumed_state[k]) for k in reference_state)


def test_same_seed_same_result_and_other_seed_differs():
    x, theta = polynomial_data(150)
    runs = []
    for seed in (3, 3, 4):
        model = tiny_mflow(seed=0)
        config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, seed=seed, **FAST)
        runs.append(train_model(model, x, theta, config, progress=False).records)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_training_without_validation_split_scores_on_training_loss():
    x, theta = polynomial_data(100)
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, validation_fraction=0.0, **FAST)
    history = train_model(tiny_mflow(), x, theta, config, progress=False)
    assert [r["val"] for r in history.records] == [{}, {}]


def test_all_nan_data_fail_clearly():
    x, theta = polynomial_data(50)
    x[:, 1] = np.nan
    with pytest.raises(InputError, match="all 50 training events contain NaN or inf"):
        train_model(tiny_mflow(), x, theta, TrainingConfig(**FAST), progress=False)


def test_non_finite_events_are_dropped_and_reported(caplog):
    x, theta = polynomial_data(200)
    x[3, 0] = np.nan
    theta[17, 0] = np.inf
    model = tiny_mflow()
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, **FAST)
    with caplog.at_level(logging.WARNING, logger="mflow_sbi.training.tensors"):
        history = train_model(model, x, theta, config, progress=False)
    assert "dropping 2 of 200 training events with NaN or inf values (rows [3, 17])" in caplog.text
    finite = np.ones(200, dtype=bool)
    finite[[3, 17]] = False
    assert torch.allclose(model.x_scaler.mean, torch.as_tensor(x[finite].mean(0), dtype=torch.float32))
    assert all(np.isfinite(v) for r in history.records for v in r["train"].values())


def test_input_shapes_are_checked():
    x, theta = polynomial_data(20)
    with pytest.raises(InputError, match=r"theta must have shape \(20, k\)"):
        train_model(tiny_mflow(), x, theta[:10], TrainingConfig(**FAST), progress=False)
    with pytest.raises(InputError, match=r"x must have shape \(N, 3\)"):
        train_model(tiny_mflow(), x[:, :2], theta, TrainingConfig(**FAST), progress=False)
    with pytest.raises(InputError, match="at least 2 training events"):
        train_model(tiny_mflow(), x[:1], theta[:1], TrainingConfig(**FAST), progress=False)


def test_threads_apply_during_training_and_are_restored():
    x, theta = polynomial_data(60)
    seen = []
    torch.set_num_threads(1)
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=0, batch_size=50, threads=2)
    train_model(tiny_mflow(), x, theta, config, progress=False, callback=lambda _: seen.append(torch.get_num_threads()))
    assert seen == [2]
    assert torch.get_num_threads() == 1


# --- SCANDAL --------------------------------------------------------------------------------------------

def test_model_score_is_the_raw_theta_gradient_of_log_prob():
    """log_prob_and_score (standardized theta, divided by the scale) equals autograd through the public
    raw-unit log_prob."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    theta = rng.uniform(-3.0, 5.0, size=(40, 1))
    model = tiny_mflow()
    model.fit_scalers(x, theta)
    assert abs(float(model.theta_scaler.scale[0]) - 1.0) > 0.5
    x_t = torch.as_tensor(x, dtype=torch.float32)
    theta_raw = torch.as_tensor(theta, dtype=torch.float32).requires_grad_(True)
    expected = torch.autograd.grad(model.log_prob(x_t, theta_raw, mode="fixed_manifold").sum(), theta_raw)[0]

    x_std, theta_std = model.x_scaler(x_t), model.theta_scaler(theta_raw.detach())
    values, score = log_prob_and_score(lambda t: model._log_prob_std(x_std, t, "fixed_manifold"), theta_std,
                                       model.theta_scaler.scale)
    assert torch.allclose(score, expected, rtol=1e-4, atol=1e-5)
    raw = model.log_prob(x_t, theta_raw.detach(), mode="fixed_manifold")
    assert torch.allclose(values, raw, atol=1e-5)


def score_error(model, x, theta, t_xz) -> float:
    theta_raw = torch.as_tensor(theta, dtype=torch.float32).requires_grad_(True)
    log_p = model.log_prob(torch.as_tensor(x, dtype=torch.float32), theta_raw, mode="fixed_manifold")
    score = torch.autograd.grad(log_p.sum(), theta_raw)[0]
    return float(((score - torch.as_tensor(t_xz, dtype=torch.float32)) ** 2).sum(1).mean())


def test_scandal_trains_the_score_towards_the_joint_score():
    """On the Gaussian line the joint score is the true score t(x|theta) = 2 (z - 2 theta), Var t = 4.

    Margins measured over 8 seeds (data, initial weights and training seed 0-7, 2 M + 10 D epochs on 1000
    events): the held-out score MSE with SCANDAL was 0.06-0.51 (< 1 = a quarter of Var t, the threshold),
    the same training without the score loss gave 0.48-4.9, and the paired ratio SCANDAL / no score was
    0.02-0.37 (threshold 0.7). The untrained models' MSE (3.5-40) is the negative control of the first bound;
    the old test (5 D epochs at learning rate 1e-2, "half the untrained error") failed on one CPU because a
    trajectory whose best validation epoch came early kept almost the untrained score."""
    x, theta, t_xz = gaussian_line_data(1000, seed=0)
    x_test, theta_test, t_test = gaussian_line_data(500, seed=1)
    errors = {}
    for weight in (1.0, 0.0):
        model = tiny_mflow(data_dim=2, latent_dim=1)
        untrained = score_error(model, x_test, theta_test, t_test)
        config = TrainingConfig(algorithm="sequential", epochs_m=2, epochs_d=10, scandal=weight, batch_size=50,
                                threads=1, learning_rate=3e-3)
        history = train_model(model, x, theta, config, t_xz=t_xz if weight else None, progress=False)
        errors[weight] = score_error(model, x_test, theta_test, t_test)
        if weight:
            d_records = [r for r in history.records if r["phase"] == "D"]
            assert {"nll", "score", "loss"} == set(d_records[0]["train"])
            assert d_records[-1]["train"]["score"] < d_records[0]["train"]["score"]
            assert untrained > 1.0
    assert errors[1.0] < 1.0
    assert errors[1.0] < 0.7 * errors[0.0]


def test_scandal_without_joint_score_or_with_wrong_shape_fails():
    x, theta = polynomial_data(30)
    with pytest.raises(ConfigError, match="no 't_xz' field"):
        train_model(tiny_mflow(), x, theta, TrainingConfig(scandal=1.0, **FAST), progress=False)
    with pytest.raises(InputError, match=r"t_xz must have shape \(N, 1\)"):
        train_model(tiny_mflow(), x, theta, TrainingConfig(scandal=1.0, **FAST), t_xz=np.zeros((30, 2)), progress=False)


def test_off_a_terminal_each_epoch_logs_one_line(caplog):
    """A batch job (no terminal, no progress bar) still reports every epoch: losses, learning rate, events/s."""
    x, theta = polynomial_data(120)
    config = TrainingConfig(algorithm="sequential", epochs_m=2, epochs_d=1, **FAST)
    with caplog.at_level(logging.INFO, logger="mflow_sbi.training.trainer"):
        history = train_model(tiny_mflow(), x, theta, config, progress=False)
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["phase M epoch 1/2", "phase M epoch 2/2", "phase D epoch 1/1"]
    first = history.records[0]
    assert f"train loss {first['train']['loss']:.4g}" in lines[0] and f"val loss {first['val']['loss']:.4g}" in lines[0]
    assert " | lr 3.0e-03 | " in lines[0] and all(line.endswith(" events/s") for line in lines)


def test_epoch_summary_format():
    from mflow_sbi.training.trainer import epoch_summary

    record = {"phase": "D", "epoch": 2, "train": {"nll": 1.25, "loss": 1.5}, "val": {}, "skipped": 0}
    expected = "phase D epoch 3/40: train loss 1.5 (nll 1.25) | lr 1.0e-03 | 5400 events/s"
    assert epoch_summary(record, 40, 1e-3, 2.0, 10800) == expected
    assert epoch_summary(record, 40, 1e-3, 2.0, None).endswith("| 2.0 s")


def test_a_truncated_checkpoint_is_reported_not_unpickled(tmp_path):
    """Checkpoints load with weights_only=True: a truncated file is a TrainingError naming it."""
    from mflow_sbi.errors import TrainingError

    x, theta = polynomial_data(120)
    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=1, **FAST)
    checkpoint = tmp_path / "checkpoint.pt"
    train_model(tiny_mflow(), x, theta, config, checkpoint=checkpoint, progress=False)
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    with pytest.raises(TrainingError, match=r"checkpoint.pt: cannot read checkpoint"):
        train_model(tiny_mflow(), x, theta, config, checkpoint=checkpoint, resume=True, progress=False)
