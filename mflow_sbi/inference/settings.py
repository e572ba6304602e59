"""The ``[inference]`` table and the sampler and calibration defaults (importable without emcee or scipy).

    walkers   emcee walkers (>= 2; the sampler also needs >= 2 per parameter)
    steps     steps per walker
    burn_in   steps discarded at most (at most steps - 4); steps - burn_in steps are kept
    adaptive_burn_in  end the burn-in as soon as the chain has settled (true, the default; at least 50 steps,
              10 autocorrelation times and no drift between its last two 25-step blocks,
              :mod:`mflow_sbi.inference.sampler`) instead of always discarding burn_in steps
    thin      keep every thin-th step
    seed      seeds the walkers' start and emcee
    rate      "none" (shape only, the default), "simulator" or "fit": add log Pois(n_obs | nu(theta)) to the
              likelihood, nu from the simulator's ``expected_events`` or from a quadratic fit to simulated
              rates (``mflow_sbi.inference.rates``; docs/physics.md)
    luminosity  integrated luminosity for nu = luminosity x sigma(theta) x efficiency, in the simulator's
              units (``lhc``: fb^-1); required when rate is not "none"
    device    where the model evaluates the likelihood: "cpu", "cuda" (or "cuda:N") or "auto" (CUDA when
              available; :mod:`mflow_sbi.devices`)
"""

from __future__ import annotations

from dataclasses import dataclass

from mflow_sbi.devices import DEFAULT_DEVICE, DEVICE
from mflow_sbi.errors import ConfigError
from mflow_sbi.schema import BOOLEAN, Table, choice, integer, number, optional, setting

# 64 walkers cost little more than 32 per vectorized call (fixed per-call overhead dominates), and with
# DE moves (tau ~ 5-13 steps for 1-4 parameters) give >= 5,000 effective samples in 1,200 post-burn-in steps.
DEFAULT_WALKERS = 64
DEFAULT_STEPS = 1500
DEFAULT_BURN_IN = 300

# Calibration: data sets drawn from the prior, and posterior draws per data set for the SBC ranks.
DEFAULT_DATASETS = 200
DEFAULT_RANK_SAMPLES = 99
# Data sets whose chains run in lockstep, their likelihood calls batched (mflow_sbi.inference.lockstep).
DEFAULT_LOCKSTEP = 50

MIN_KEPT_STEPS = 4

RATE_CHOICES = ("none", "simulator", "fit")


@dataclass
class InferenceConfig(Table):
    """The ``[inference]`` table (see the module docstring)."""

    TABLE = "inference"

    walkers: int = setting(DEFAULT_WALKERS, integer(2))
    steps: int = setting(DEFAULT_STEPS, integer(MIN_KEPT_STEPS))
    burn_in: int = setting(DEFAULT_BURN_IN, integer(0))
    adaptive_burn_in: bool = setting(True, BOOLEAN)
    thin: int = setting(1, integer(1))
    seed: int = setting(0, integer(0))
    rate: str = setting("none", choice(RATE_CHOICES))
    luminosity: float | None = setting(None, optional(number(0, strict_low=True)))
    device: str = setting(DEFAULT_DEVICE, DEVICE)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps - self.burn_in < MIN_KEPT_STEPS:
            raise ConfigError(f"inference.burn_in must be at most steps - {MIN_KEPT_STEPS} = "
                              f"{self.steps - MIN_KEPT_STEPS}, got {self.burn_in}")
        if self.rate != "none" and self.luminosity is None:
            raise ConfigError(f"inference.luminosity must be set (a number > 0) when inference.rate = {self.rate!r}")


__all__ = ["DEFAULT_BURN_IN", "DEFAULT_DATASETS", "DEFAULT_LOCKSTEP", "DEFAULT_RANK_SAMPLES", "DEFAULT_STEPS", "DEFAULT_WALKERS",
           "MIN_KEPT_STEPS",
           "RATE_CHOICES", "InferenceConfig"]
