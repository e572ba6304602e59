"""sbi's default neural likelihood estimation (NLE: a masked autoregressive flow, z-scored inputs, its own early
stopping) trained on our simulations and sampled with its default MCMC, for the side-by-side benchmarks.

sbi is optional (the ``bench`` extra); without it :func:`train_nle` returns None and a record saying so.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch


def box_prior(low: float, high: float, dim: int = 1) -> torch.distributions.Distribution:
    """U(low, high)^dim as a torch distribution: what sbi's ``BoxUniform`` is, without importing sbi."""
    return torch.distributions.Independent(torch.distributions.Uniform(torch.full((dim,), float(low)),
                                                                       torch.full((dim,), float(high))), 1)


def train_nle(theta: np.ndarray, x: np.ndarray, prior: torch.distributions.Distribution, seed: int):
    """(sbi posterior object or None, record): NLE with its defaults on (theta, x), torch and numpy seeded."""
    try:
        import sbi
        from sbi.inference import NLE
        from sbi.utils.tracking import TensorBoardTracker
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        return None, {"skipped": f"sbi is not installed ({error}); pip install -e .[bench]"}
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- sbi's numpy slice sampler draws from numpy's global generator
    with tempfile.TemporaryDirectory() as logs:  # sbi's TensorBoard logs, instead of ./sbi-logs
        inference = NLE(prior=prior, tracker=TensorBoardTracker(SummaryWriter(log_dir=logs)), show_progress_bars=False)
        began = time.perf_counter()
        inference.append_simulations(torch.as_tensor(theta, dtype=torch.float32),
                                     torch.as_tensor(x, dtype=torch.float32)).train()
        record = {"version": sbi.__version__, "training_wall_s": round(time.perf_counter() - began, 1),
                  "epochs_run": int(inference.epoch)}
        return inference.build_posterior(), record


def sample_nle(posterior, observed: list[np.ndarray], n_samples: int) -> tuple[list[np.ndarray], list[float]]:
    """``n_samples`` draws of sbi's default MCMC per observed set (its events iid), and the wall time of each."""
    samples, walls = [], []
    for x_o in observed:
        began = time.perf_counter()
        drawn = posterior.sample((n_samples,), x=torch.as_tensor(x_o, dtype=torch.float32), show_progress_bars=False)
        walls.append(round(time.perf_counter() - began, 2))
        samples.append(drawn.double().numpy())
    return samples, walls
