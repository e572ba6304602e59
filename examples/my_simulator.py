"""Bring your own simulator: a class with the mflow-sbi Simulator interface, used by name.

    mflow-sbi simulate examples/my_simulator.py:NoisyCircle --n 5000 --from-prior --out train.npz
    mflow-sbi simulate examples/my_simulator.py:NoisyCircle --n 20 --theta 0.5 --out observed.npz
    mflow-sbi train --data train.npz --out model --latent-dim 1
    mflow-sbi infer --model model --observed observed.npz --out posterior.npz
    mflow-sbi calibrate --model model --simulator examples/my_simulator.py:NoisyCircle --n-datasets 50 --n-events 20

(or ``my_simulator:NoisyCircle`` when the file is importable, e.g. in the current folder). Nothing is
registered: any class with these attributes and methods works. The model: an angle phi ~ N(theta, 0.3^2)
on the unit circle, x = (cos phi, sin phi), theta ~ U(-1, 1); the data live on a 1-D manifold in R^2.
Its likelihood is known in closed form (on the circle, with respect to arc length), which the inference
tools use for a reference posterior.
"""

from __future__ import annotations

import numpy as np

from mflow_sbi.errors import IntractableLikelihood
from mflow_sbi.priors import box_uniform

WIDTH = 0.3


class NoisyCircle:
    name = "noisy_circle"
    data_dim = 2
    manifold_dim = 1
    parameter_names = ("theta",)
    parameter_labels = (r"$\theta$",)

    def __init__(self, width: float = WIDTH) -> None:
        self.width = width
        self.prior = box_uniform([-1.0], [1.0])

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """x (n, 2); theta is (1,) (one point for all events) or (n, 1)."""
        theta = np.broadcast_to(np.asarray(theta, dtype=np.float64).reshape(-1, 1), (n, 1))
        phi = theta[:, 0] + self.width * rng.standard_normal(n)
        return np.column_stack([np.cos(phi), np.sin(phi)])

    def log_likelihood(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """log p(phi(x) | theta) of the wrapped normal, truncated to the nearest three windings."""
        theta = np.broadcast_to(np.asarray(theta, dtype=np.float64).reshape(-1, 1), (len(x), 1))[:, 0]
        phi = np.arctan2(x[:, 1], x[:, 0])
        windings = np.arange(-3, 4)[:, None] * 2 * np.pi
        z = (phi[None, :] + windings - theta[None, :]) / self.width
        return np.log(np.exp(-0.5 * z**2).sum(0)) - np.log(self.width * np.sqrt(2 * np.pi))

    def joint_score(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        raise IntractableLikelihood("NoisyCircle does not provide the joint score")

    def distance_to_manifold(self, x: np.ndarray) -> np.ndarray:
        return np.abs(np.linalg.norm(x, axis=1) - 1.0)
