"""Make the two pictures of the README's tour: ``docs/images/tour_corner.png`` and ``docs/images/tour_manifold.png``.

    .venv/bin/python examples/tour_images.py            # 5-10 minutes on 2 CPU cores

The same steps as the tour, in Python: 8,000 training events from the polynomial-surface simulator (with the joint
score, SCANDAL), a small M-flow trained with the sequential M/D algorithm, the posterior of 20 events observed at
theta = 0.3 with emcee, and the exact posterior from the simulator's likelihood. The manifold picture shows the
training events and the learned manifold: a grid over the events' latent coordinates decoded by the outer flow.
Everything is seeded, so a rerun on the same machine gives the same pictures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from mflow_sbi import (
    ManifoldFlow,
    ModelLikelihood,
    SimulatorLikelihood,
    TrainingConfig,
    corner_plot,
    sample_posterior,
    train_model,
)
from mflow_sbi.io import atomic_path
from mflow_sbi.simulators import get_simulator

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
TRUE_THETA, N_TRAIN, N_OBSERVED, SEED = 0.3, 8000, 20, 0
GRID_POINTS = 25  # per latent coordinate, spanning the 1%-99% range of the training events' latents


def manifold_figure(model: ManifoldFlow, x: np.ndarray) -> Figure:
    """The training events and the learned manifold decoded from a latent grid (a wireframe)."""
    low, high = np.quantile(model.encode(x).detach().numpy(), [0.01, 0.99], axis=0)
    axes = [np.linspace(lo, hi, GRID_POINTS) for lo, hi in zip(low, high, strict=True)]
    u = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, 2)
    surface = model.decode(u).detach().numpy().reshape(GRID_POINTS, GRID_POINTS, 3)
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(projection="3d")
    ax.scatter(*x[:1500].T, s=2, color="C1", alpha=0.5, label="simulated events")
    ax.plot_wireframe(*surface.transpose(2, 0, 1), color="C0", lw=0.6, label="learned manifold")
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    ax.set_zlabel("$x_2$")
    ax.legend(loc="upper left", frameon=False)
    ax.view_init(elev=25, azim=-60)
    return fig


def main() -> None:
    simulator = get_simulator("polynomial_surface")
    rng = np.random.default_rng(SEED)
    theta = simulator.prior.sample(N_TRAIN, rng)
    x = simulator.sample(theta, N_TRAIN, rng)
    x_observed = simulator.sample(np.array([TRUE_THETA]), N_OBSERVED, rng)
    torch.manual_seed(SEED)
    stack = {"n_layers": 4, "hidden_features": 32}
    model = ManifoldFlow(data_dim=3, latent_dim=2, parameter_dim=1, prior=simulator.prior, outer=stack, inner=stack)
    train_model(model, x, theta, TrainingConfig(epochs_m=20, epochs_d=25, seed=SEED), progress=False,
                t_xz=simulator.joint_score(x, theta))
    options = {"n_walkers": 32, "n_steps": 1500, "burn_in": 300, "seed": 1, "progress": False,
               "parameter_names": ["theta"], "labels": [r"$\theta$"]}
    learned = sample_posterior(ModelLikelihood(model, x_observed), simulator.prior, **options)
    exact = sample_posterior(SimulatorLikelihood(simulator, x_observed), simulator.prior, **options)
    IMAGES.mkdir(parents=True, exist_ok=True)
    corner_plot([learned, exact], IMAGES / "tour_corner.png", truth=[TRUE_THETA], names=["M-flow", "exact"])
    with atomic_path(IMAGES / "tour_manifold.png") as tmp:
        manifold_figure(model, x).savefig(tmp, dpi=80, bbox_inches="tight", format="png")
    print(f"M-flow posterior mean {learned.samples.mean():.3f} std {learned.samples.std():.3f}; "
          f"exact {exact.samples.mean():.3f} std {exact.samples.std():.3f}; images in {IMAGES}")


if __name__ == "__main__":
    main()
