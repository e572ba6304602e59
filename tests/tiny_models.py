"""The smallest model job the CLI tests train: one-layer, 8-unit outer and inner flows and one epoch per phase."""

from __future__ import annotations


def tiny_job(latent_dim: int | None = None, batch_size: int | None = 100) -> str:
    """TOML with [model] (``latent_dim`` when given), [model.outer], [model.inner] and [training] (one epoch of
    phase M and of phase D, ``batch_size`` when given); other tables can be appended to it."""
    model = "" if latent_dim is None else f"[model]\nlatent_dim = {latent_dim}\n"
    networks = "".join(f"[model.{part}]\nn_layers = 1\nhidden_features = 8\nnum_blocks = 1\n" for part in ("outer", "inner"))
    training = "[training]\nepochs_m = 1\nepochs_d = 1\n" + ("" if batch_size is None else f"batch_size = {batch_size}\n")
    return model + networks + training
