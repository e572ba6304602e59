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

Every phase ends early once its validation loss has not improved for ``patience`` epochs, with the weights of
its best validation epoch restored. ``epochs`` unset (the default) is ``DEFAULT_EPOCHS`` (30) for PIE's
maximum likelihood, ``alternating`` and ``simultaneous``, and ``AMBIENT_EPOCHS`` (300) for an AF's maximum
likelihood, which early stopping then ends: the AF trains until its validation loss stops improving, as sbi's
neural likelihood estimator does (:meth:`TrainingConfig.epochs_for`). Measured in docs/benchmarks.md ("Hard
posteriors: the density"): on SLCP (d = 2, 4, 8, 5,000 simulations) the 30-epoch budget left the AF's
held-out log-likelihood 0.3-3.5 nats below the converged one (early stopping ended those runs after 33-98
epochs).

``scandal`` > 0 adds ``scandal * mean |grad_theta log p_model(x|theta) - t_xz|^2`` (theta in raw units) to every
density loss; the training data must then carry the joint score t_xz. Unset (the default), it is
``DEFAULT_SCANDAL`` when the training data carry t_xz and 0 otherwise (:meth:`TrainingConfig.for_data`).
``learning_rate_m`` / ``learning_rate_d`` default to ``learning_rate``. ``threads`` > 0 sets torch's intra-op
thread count for the run (0: torch's default; the default 1 suits the small networks here on shared machines).
``ema_decay`` > 0 averages the inner flow's weights over phase D (sequential; simultaneous: its final phase
D) with an exponential moving average updated after every batch; validation, early stopping and the final
model use the averaged weights (see :mod:`mflow_sbi.training.trainer`). ``manifold_events`` > 0 trains
phase M (sequential, simultaneous pre-training) on only that many of the training events (a random subset:
the first rows of the shuffled split), while phase D uses all of them: the manifold needs fewer events than
the density, and phase D on cached latents is several times cheaper per event. In-memory data only.
``reference_events`` > 0 (morphing inner density only) trains phase D, the theta-free flow p_ref, on that many of
the training events (the same kind of subset) and phase R, the ratio that carries all the theta dependence, on all
of them: the ratio network is cheap per event and learns more from more events. In-memory data only.
``flow_kernels`` ("fused" or "nflows") and ``compile`` are speed switches that leave the math unchanged
(:mod:`mflow_sbi.training.speed`): "nflows" is the slower code path of earlier versions, ``compile = true``
compiles the step losses with ``torch.compile`` (a one-time cost of minutes; falls back to eager code with a
logged warning where it cannot compile).
``ensemble`` = K > 1 trains K whole models (each its own manifold and density) with the seeds seed, seed +
1000, ..., seed + 1000 (K - 1), written as the members of one model directory whose likelihood is the mean
of theirs (:mod:`mflow_sbi.flows.ensemble`, :func:`mflow_sbi.workflow.train.train_from_data`): at 10k events
on the polynomial surface six members cut the median posterior MMD^2 from 0.028 to 0.0057
(docs/benchmarks.md, "10k events with six M-flows on their own manifolds"). It multiplies the training time by K.
``stream = true`` trains on ROOT input chunk by chunk instead of loading it into memory
(:mod:`mflow_sbi.training.streaming`; used by ``mflow-sbi train``). ``device``: where the model and the
training tensors live, "cpu", "cuda" (or "cuda:N") or "auto" (CUDA when available; :mod:`mflow_sbi.devices`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mflow_sbi.devices import DEFAULT_DEVICE, DEVICE
from mflow_sbi.flows.architecture import FLOW_KERNELS
from mflow_sbi.schema import BOOLEAN, Table, choice, integer, number, optional, setting

ALGORITHMS = ("auto", "sequential", "alternating", "simultaneous", "ml")
RECONSTRUCTION_KINDS = ("mse", "smooth_l1")
# In our posterior benchmark (docs/benchmarks.md) this weight brought the M-flow posterior of the
# polynomial-surface job within MMD^2 = 0.0025 of the exact one, against 0.022 without the score.
DEFAULT_SCANDAL = 10.0

EPOCHS = integer(0)
DEFAULT_EPOCHS = 30
AMBIENT_EPOCHS = 300
RATE = number(0, strict_low=True)
WEIGHT = number(0)


@dataclass
class TrainingConfig(Table):
    """All training options (the ``[training]`` table), with defaults that work on the shipped simulators."""

    TABLE = "training"

    algorithm: str = setting("auto", choice(ALGORITHMS))
    epochs: int | None = setting(None, optional(EPOCHS))
    epochs_m: int = setting(30, EPOCHS)
    epochs_d: int = setting(40, EPOCHS)
    epochs_pretrain: int = setting(5, EPOCHS)
    epochs_posttrain: int = setting(10, EPOCHS)
    learning_rate: float = setting(1e-3, RATE)
    learning_rate_m: float | None = setting(None, optional(RATE))
    learning_rate_d: float | None = setting(None, optional(RATE))
    batch_size: int = setting(256, integer(1))
    weight_decay: float = setting(1e-5, WEIGHT)
    clip_norm: float = setting(5.0, RATE)
    validation_fraction: float = setting(0.1, number(0, 1))
    patience: int = setting(6, EPOCHS)
    max_nonfinite: int = setting(20, EPOCHS)
    reconstruction: str = setting("mse", choice(RECONSTRUCTION_KINDS))
    reconstruction_weight: float = setting(100.0, WEIGHT)
    nll_weight: float = setting(1.0, WEIGHT)
    latent_l2: float = setting(0.0, WEIGHT)
    scandal: float | None = setting(None, optional(WEIGHT))
    threads: int = setting(1, integer(0))
    seed: int = setting(0, integer(0))
    stream: bool = setting(False, BOOLEAN)
    ema_decay: float = setting(0.0, number(0, 1))
    manifold_events: int = setting(0, integer(0))
    reference_events: int = setting(0, integer(0))
    ensemble: int = setting(1, integer(1))
    flow_kernels: str = setting("fused", choice(FLOW_KERNELS))
    compile: bool = setting(False, BOOLEAN)
    device: str = setting(DEFAULT_DEVICE, DEVICE)

    @property
    def lr_m(self) -> float:
        """Learning rate of manifold (M) steps."""
        return self.learning_rate if self.learning_rate_m is None else self.learning_rate_m

    @property
    def lr_d(self) -> float:
        """Learning rate of density (D) steps (maximum likelihood and simultaneous use ``learning_rate``)."""
        return self.learning_rate if self.learning_rate_d is None else self.learning_rate_d

    def epochs_for(self, ambient: bool = False) -> int:
        """The epoch cap of the phases that read ``epochs``: its value when set, else ``AMBIENT_EPOCHS`` for the
        maximum likelihood of an ambient density (``ambient``: the AF) and ``DEFAULT_EPOCHS`` otherwise."""
        if self.epochs is not None:
            return self.epochs
        return AMBIENT_EPOCHS if ambient else DEFAULT_EPOCHS

    @property
    def score_weight(self) -> float:
        """The SCANDAL weight as set (0 when unset): what :meth:`for_data` leaves it at without t_xz."""
        return self.scandal or 0.0

    def for_data(self, has_joint_score: bool) -> TrainingConfig:
        """This configuration with ``scandal`` resolved for training data with or without the joint score:
        an unset weight becomes ``DEFAULT_SCANDAL`` with t_xz and 0 without."""
        if self.scandal is not None:
            return self
        return dataclasses.replace(self, scandal=DEFAULT_SCANDAL if has_joint_score else 0.0)
