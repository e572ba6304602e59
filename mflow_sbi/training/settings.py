"""Training options (the ``[training]`` table of a configuration file), validated on construction.

Which keys matter depends on the algorithm:

- ``sequential`` (M-flow, Me-flow): ``epochs_m`` epochs of phase M (reconstruction, learning_rate_m), then
  ``epochs_d`` epochs of phase D (inner-flow NLL on the frozen manifold, learning_rate_d);
- ``alternating``: ``epochs`` epochs in which every batch gets one M step and one D step (separate
  optimizers with learning_rate_m and learning_rate_d);
- ``simultaneous`` (the paper's "S"): ``epochs_pretrain`` epochs of phase M, then ``epochs`` epochs on
  ``reconstruction_weight * reconstruction + nll_weight * exact-manifold NLL`` over all parameters, then
  ``epochs_posttrain`` epochs of phase D;
- ``ml`` (AF, PIE): ``epochs`` epochs of maximum likelihood over all parameters;
- ``auto``: ``ml`` for models with an ambient or PIE density, ``sequential`` for M-flows.

``scandal`` > 0 adds ``scandal * mean |grad_theta log p_model(x|theta) - t_xz|^2`` (theta in raw units) to every
density loss; the training data must then carry the joint score t_xz. ``learning_rate_m`` / ``learning_rate_d``
default to ``learning_rate``. ``threads`` > 0 sets torch's intra-op thread count for the run (0: torch's default).
``ema_decay`` > 0 averages the inner flow's weights over phase D (sequential; simultaneous: its final phase
D) with an exponential moving average updated after every batch; validation, early stopping and the final
model use the averaged weights (see :mod:`mflow_sbi.training.trainer`). ``manifold_events`` > 0 trains
phase M (sequential, simultaneous pre-training) on only that many of the training events (a random subset:
the first rows of the shuffled split), while phase D uses all of them: the manifold needs fewer events than
the density, and phase D on cached latents is several times cheaper per event. In-memory data only.
``stream = true`` trains on ROOT input chunk by chunk instead of loading it into memory
(:mod:`mflow_sbi.training.streaming`; used by ``mflow-sbi train``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mflow_sbi.errors import ConfigError

ALGORITHMS = ("auto", "sequential", "alternating", "simultaneous", "ml")
RECONSTRUCTION_KINDS = ("mse", "smooth_l1")


@dataclass
class TrainingConfig:
    """All training options, with defaults that work on the shipped simulators."""

    algorithm: str = "auto"
    epochs: int = 30
    epochs_m: int = 30
    epochs_d: int = 30
    epochs_pretrain: int = 5
    epochs_posttrain: int = 10
    learning_rate: float = 1e-3
    learning_rate_m: float | None = None
    learning_rate_d: float | None = None
    batch_size: int = 256
    weight_decay: float = 1e-5
    clip_norm: float = 5.0
    validation_fraction: float = 0.1
    patience: int = 5
    max_nonfinite: int = 20
    reconstruction: str = "mse"
    reconstruction_weight: float = 100.0
    nll_weight: float = 1.0
    latent_l2: float = 0.0
    scandal: float = 0.0
    threads: int = 0
    seed: int = 0
    stream: bool = False
    ema_decay: float = 0.0
    manifold_events: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"training.algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.reconstruction not in RECONSTRUCTION_KINDS:
            raise ConfigError(
                f"training.reconstruction must be one of {RECONSTRUCTION_KINDS}, got {self.reconstruction!r}"
            )
        for name in ("epochs", "epochs_m", "epochs_d", "epochs_pretrain", "epochs_posttrain", "patience", "threads",
                     "max_nonfinite"):
            self._require(name, int, lambda v: v >= 0, ">= 0")
        self._require("batch_size", int, lambda v: v >= 1, ">= 1")
        self._require("seed", int, lambda v: v >= 0, ">= 0")
        for name in ("learning_rate", "learning_rate_m", "learning_rate_d", "clip_norm"):
            if getattr(self, name) is not None:
                self._require(name, float, lambda v: v > 0, "> 0")
        for name in ("weight_decay", "reconstruction_weight", "nll_weight", "latent_l2", "scandal"):
            self._require(name, float, lambda v: v >= 0, ">= 0")
        self._require("validation_fraction", float, lambda v: 0 <= v < 1, "in [0, 1)")
        self._require("ema_decay", float, lambda v: 0 <= v < 1, "in [0, 1)")
        self._require("manifold_events", int, lambda v: v >= 0, ">= 0")
        if not isinstance(self.stream, bool):
            raise ConfigError(f"training.stream must be true or false, got {self.stream!r}")

    def _require(self, name: str, kind: type, ok, what: str) -> None:
        value = getattr(self, name)
        allowed = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed) or not ok(value):
            kind_name = "an integer" if kind is int else "a number"
            raise ConfigError(f"training.{name} must be {kind_name} {what}, got {value!r}")

    @property
    def lr_m(self) -> float:
        """Learning rate of manifold (M) steps."""
        return self.learning_rate if self.learning_rate_m is None else self.learning_rate_m

    @property
    def lr_d(self) -> float:
        """Learning rate of density (D) steps (maximum likelihood and simultaneous use ``learning_rate``)."""
        return self.learning_rate if self.learning_rate_d is None else self.learning_rate_d
