"""Sampler and calibration defaults, importable without emcee or scipy (the ``[inference]`` table and the CLI read them)."""

from __future__ import annotations

# 64 walkers cost little more than 32 per vectorized call (fixed per-call overhead dominates), and with
# DE moves (tau ~ 5-13 steps for 1-4 parameters) give >= 5,000 effective samples in 1,200 post-burn-in steps.
DEFAULT_WALKERS = 64
DEFAULT_STEPS = 1500
DEFAULT_BURN_IN = 300

# Calibration: data sets drawn from the prior, and posterior draws per data set for the SBC ranks.
DEFAULT_DATASETS = 200
DEFAULT_RANK_SAMPLES = 99

__all__ = ["DEFAULT_BURN_IN", "DEFAULT_DATASETS", "DEFAULT_RANK_SAMPLES", "DEFAULT_STEPS", "DEFAULT_WALKERS"]
