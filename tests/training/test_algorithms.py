"""Training algorithms on tiny models: losses go down, phases touch only their parameters, and sequential
M/D learns a circle."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mflow_sbi.errors import ConfigError
from mflow_sbi.flows import MODEL_TYPES, ManifoldFlow, create_model
from mflow_sbi.simulators import SIMULATORS, get_simulator
from mflow_sbi.training import Trainer, TrainingConfig, build_phases, resolve_algorithm, train_model
from tests.training.helpers import TINY, polynomial_data, tiny_mflow

FAST = {"batch_size": 50, "threads": 1, "learning_rate": 3e-3, "patience": 100}


def snapshot(parameters) -> list[torch.Tensor]:
    return [p.detach().clone() for p in parameters]


def identical(a: list[torch.Tensor], b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def phases_of(history) -> list[str]:
    return list(dict.fromkeys(record["phase"] for record in history.records))


def reconstruction_error(model, x) -> float:
    """Mean squared distance between held-out events and their projection onto the learned manifold."""
    with torch.no_grad():
        x = torch.as_tensor(x, dtype=torch.float32)
        return float(((model.project(x) - x) ** 2).sum(1).mean())


def held_out_nll(model, x, theta) -> float:
    """Mean negative log density of held-out events in the model's default mode."""
    with torch.no_grad():
        return -float(model.log_prob(torch.as_tensor(x, dtype=torch.float32),
                                     torch.as_tensor(theta, dtype=torch.float32)).mean())


def inner_nll(model, inner_state, x, theta) -> float:
    """Mean latent NLL of the model's final encoding of x under the inner flow with weights ``inner_state``."""
    model = copy.deepcopy(model)
    model.inner.load_state_dict(inner_state)
    with torch.no_grad():
        return -float(model.latent_log_prob(model.encode(x), theta).mean())


class Untrained:
    """The model's held-out figures before training (scalers fitted as training will fit them)."""

    def __init__(self, model, x, theta, x_test, theta_test) -> None:
        model.fit_scalers(x, theta)
        self.inner = copy.deepcopy(model.inner.state_dict()) if hasattr(model, "inner") else None
        self.reconstruction = reconstruction_error(model, x_test) if hasattr(model, "project") else None
        self.nll = held_out_nll(model, x_test, theta_test)


# The margins below were measured over 10 seeds (data, initial weights and training seed 0-9) with these
# budgets; per-epoch monotonicity of the training losses is not asserted: in 4 epochs of a tiny model it
# depends on the trajectory (alternating and simultaneous training broke it for some seeds).
@pytest.mark.parametrize(
    ("algorithm", "phases"),
    [("sequential", ["M", "D"]), ("alternating", ["A"]), ("simultaneous", ["M", "S", "D"])],
)
def test_each_algorithm_reduces_its_losses(algorithm, phases):
    """Held-out reconstruction error / untrained: worst 0.40 (sequential), 0.56 (alternating), 0.31
    (simultaneous) -> threshold 0.8. Latent NLL of the final encoding, untrained minus trained inner flow:
    at least 0.16 / 0.14 / 0.17 -> threshold 0.05. The untrained model (ratio 1, difference 0) fails both."""
    x, theta = polynomial_data(1000)
    x_test, theta_test = polynomial_data(1000, seed=100)
    model = tiny_mflow()
    untrained = Untrained(model, x, theta, x_test, theta_test)
    config = TrainingConfig(algorithm=algorithm, epochs=4, epochs_m=4, epochs_d=4, epochs_pretrain=1,
                            epochs_posttrain=3, latent_l2=1e-3, **FAST)
    history = train_model(model, x, theta, config, progress=False)
    assert phases_of(history) == phases
    assert all(np.isfinite(v) for r in history.records for v in r["train"].values())
    assert reconstruction_error(model, x_test) < 0.8 * untrained.reconstruction
    assert inner_nll(model, model.inner.state_dict(), x, theta) < inner_nll(model, untrained.inner, x, theta) - 0.05
    main = next(r for r in history.records if r["phase"] == {"sequential": "M", "alternating": "A"}.get(algorithm, "S"))
    assert set(main["train"]) == ({"reconstruction", "latent_l2", "loss"} if algorithm == "sequential"
                                  else {"reconstruction", "latent_l2", "nll", "loss"})


def test_latent_l2_penalty_shrinks_the_latents():
    """Mean squared latent norm with / without the penalty: at most 0.47 over seeds 0-7 (threshold 0.7)."""
    x, theta = polynomial_data(400)
    norms = []
    for weight in (0.0, 1.0):
        model = tiny_mflow()
        config = TrainingConfig(algorithm="sequential", epochs_m=3, epochs_d=0, latent_l2=weight, **FAST)
        train_model(model, x, theta, config, progress=False)
        with torch.no_grad():
            norms.append(float((model.encode(x) ** 2).sum(1).mean()))
    assert norms[1] < 0.7 * norms[0]


def test_smooth_l1_reconstruction_trains():
    """Last / first epoch's reconstruction loss: at most 0.67 over seeds 0-7 (threshold 0.9)."""
    x, theta = polynomial_data(400)
    config = TrainingConfig(algorithm="sequential", epochs_m=3, epochs_d=0, reconstruction="smooth_l1", **FAST)
    history = train_model(tiny_mflow(), x, theta, config, progress=False)
    losses = [r["train"]["reconstruction"] for r in history.records]
    assert losses[-1] < 0.9 * losses[0]


def test_phase_m_leaves_inner_flow_and_phase_d_leaves_outer_flow_bit_identical():
    x, theta = polynomial_data(300)
    model = tiny_mflow()
    model.fit_scalers(x, theta)
    data = (model.x_scaler(torch.as_tensor(x, dtype=torch.float32)).detach(),
            model.theta_scaler(torch.as_tensor(theta, dtype=torch.float32)).detach())
    phase_m, phase_d = build_phases(model, TrainingConfig(algorithm="sequential", epochs_m=2, epochs_d=2, **FAST))
    settings = TrainingConfig(batch_size=50, weight_decay=0.1, patience=5)

    inner, outer = snapshot(model.inner.parameters()), snapshot(model.outer.parameters())
    Trainer(model, data, settings, progress=False).fit([phase_m])
    assert identical(inner, model.inner.parameters())
    assert not identical(outer, model.outer.parameters())

    inner, outer = snapshot(model.inner.parameters()), snapshot(model.outer.parameters())
    Trainer(model, data, settings, progress=False).fit([phase_d])
    assert identical(outer, model.outer.parameters())
    assert not identical(inner, model.inner.parameters())


def test_conditional_outer_phase_d_uses_fixed_manifold_density_and_freezes_outer():
    """The frozen outer flow is bit-identical (deterministic); the phase-D NLL fell by at least 0.10 over
    3 epochs for seeds 0-7 (threshold: it falls)."""
    x, theta = polynomial_data(300)
    model = tiny_mflow(conditional_outer=True)
    outer = None

    def remember_outer(record):
        nonlocal outer
        if record["phase"] == "M":
            outer = snapshot(model.outer.parameters())

    config = TrainingConfig(algorithm="sequential", epochs_m=1, epochs_d=3, **FAST)
    history = train_model(model, x, theta, config, progress=False, callback=remember_outer)
    assert identical(outer, model.outer.parameters())
    nll = [r["train"]["nll"] for r in history.records if r["phase"] == "D"]
    assert nll[-1] < nll[0]


def circle_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The spherical-Gaussian simulator with a 1-D manifold in R^2 (a thick arc of the unit circle, radial
    noise 0.01), with theta restricted to [-1, -0.75]^2 (angle widths 0.1-0.14 pi around 0.5-0.63 pi).
    Built here from the same formulas when the simulator is not available."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1.0, -0.75, size=(n, 2))
    if "spherical_gaussian" in SIMULATORS:
        return get_simulator("spherical_gaussian", latent_dim=1, data_dim=2, epsilon=0.01).sample(theta, n, rng), theta
    width = 0.1 * np.pi + (0.5 + 0.5 * theta[:, 0]) * 0.3 * np.pi
    angle = 0.5 * np.pi + (0.5 + 0.5 * theta[:, 1]) * np.pi + width * rng.standard_normal(n)
    radius = 1.0 + 0.01 * rng.standard_normal(n)
    return radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)]), theta


def test_sequential_learns_the_circle_within_a_small_budget():
    """Margins over 8 seeds (data, initial weights, training seed): mean squared distance to the projection
    0.0002-0.0034 (threshold 0.01), and 0.02-0.27 of the best straight line's (threshold 0.5; any linear
    manifold scores 1, the negative control)."""
    x, theta = circle_data(1000, seed=1)
    torch.manual_seed(1)
    model = ManifoldFlow(2, 1, 2, outer=TINY | {"transform": "rq_coupling", "hidden_features": 32}, inner=TINY)
    config = TrainingConfig(algorithm="sequential", epochs_m=6, epochs_d=1, batch_size=64, learning_rate=1e-2,
                            patience=6, threads=1, seed=1)
    train_model(model, x, theta, config, progress=False)
    x_test, _ = circle_data(1000, seed=11)
    with torch.no_grad():
        error = ((model.project(x_test).numpy() - x_test) ** 2).sum(1).mean()
    best_line = np.linalg.eigvalsh(np.cov(x_test.T))[0]  # mean squared distance to the best straight line
    assert error < 0.01
    assert error < 0.5 * best_line


def test_resolve_algorithm_checks_model_support():
    model = tiny_mflow()
    assert resolve_algorithm(model, TrainingConfig()) == "sequential"
    with pytest.raises(ConfigError, match="algorithm 'ml' needs a full-dimensional density"):
        resolve_algorithm(model, TrainingConfig(algorithm="ml"))


@pytest.mark.parametrize(("model_type", "options"), [("af", {}), ("af", {"ambient_transform": "maf"}), ("pie", {})],
                         ids=["af", "af_maf", "pie"])
def test_maximum_likelihood_reduces_the_nll(model_type, options):
    """Held-out NLL drop after 3 epochs on 300 events: 1.15-1.41 (af, spline couplings), 2.06-4.98 (af with
    ambient_transform = "maf") and > 3900 (pie, whose eps-thin off-manifold density starts far off) over
    seeds 0-9 -> threshold 0.5; untrained: 0."""
    if model_type not in MODEL_TYPES:
        pytest.skip(f"model type {model_type!r} is not available yet")
    x, theta = polynomial_data(300)
    x_test, theta_test = polynomial_data(1000, seed=100)
    torch.manual_seed(0)
    latent_dim = 2 if MODEL_TYPES[model_type].needs_latent_dim else None
    model = create_model(model_type, data_dim=3, parameter_dim=1, latent_dim=latent_dim, **options)
    untrained = Untrained(model, x, theta, x_test, theta_test)
    history = train_model(model, x, theta, TrainingConfig(epochs=3, **FAST), progress=False)
    assert resolve_algorithm(model, TrainingConfig()) == "ml"
    assert phases_of(history) == ["ML"]
    assert held_out_nll(model, x_test, theta_test) < untrained.nll - 0.5
    if model_type == "af":
        with pytest.raises(ConfigError, match="needs a model with a learned manifold"):
            resolve_algorithm(model, TrainingConfig(algorithm="sequential"))


def test_me_flow_sequential_reduces_its_losses():
    """Over seeds 0-9: reconstruction / untrained 0.08-0.12 (threshold 0.5), latent NLL drop >= 0.48
    (threshold 0.1)."""
    if "emflow" not in MODEL_TYPES:
        pytest.skip("model type 'emflow' is not available yet")
    x, theta = polynomial_data(300)
    x_test, theta_test = polynomial_data(1000, seed=100)
    torch.manual_seed(0)
    model = create_model("emflow", data_dim=3, parameter_dim=1, latent_dim=2)
    untrained = Untrained(model, x, theta, x_test, theta_test)
    config = TrainingConfig(algorithm="sequential", epochs_m=3, epochs_d=3, **FAST)
    assert phases_of(train_model(model, x, theta, config, progress=False)) == ["M", "D"]
    assert reconstruction_error(model, x_test) < 0.5 * untrained.reconstruction
    assert inner_nll(model, model.inner.state_dict(), x, theta) < inner_nll(model, untrained.inner, x, theta) - 0.1


def test_simultaneous_step_trains_the_models_own_manifold_density():
    """The S step's NLL is -mean log p(x|theta) of the "manifold" mode, the density inference uses."""
    torch.manual_seed(0)
    model = ManifoldFlow(data_dim=3, latent_dim=2, parameter_dim=1, outer={"n_layers": 1, "hidden_features": 8},
                         inner={"n_layers": 1, "hidden_features": 8}).double()
    rng = np.random.default_rng(0)
    x, theta = rng.normal(size=(20, 3)) * [1.0, 5.0, 0.2], rng.uniform(-1, 1, (20, 1))
    model.fit_scalers(x, theta)
    phases = build_phases(model, TrainingConfig(algorithm="simultaneous", epochs_pretrain=0, epochs_posttrain=0))
    (step,) = phases[0].steps
    batch = (model.x_scaler(torch.as_tensor(x)), model.theta_scaler(torch.as_tensor(theta)))
    model.train()
    terms = step.loss(batch)
    torch.testing.assert_close(terms["nll"], -model.log_prob(x, theta, "manifold").mean(), rtol=1e-10, atol=1e-10)
