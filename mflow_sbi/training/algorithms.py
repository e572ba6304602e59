"""Training algorithms expressed as trainer phases (see ``settings`` for the options of each), and the
``train_model`` entry point.

Batches are (x_std, theta_std) or, with SCANDAL, (x_std, theta_std, t_xz), and with weighted events the
weights (normalized to mean 1) as the last tensor; every loss term is then the weighted batch mean
(``losses.weighted_mean``), in training and validation alike. Parameter groups:

- manifold parameters (``model.manifold_parameters()``): the outer flow, plus the encoder for Me-flow;
- density parameters (``model.density_parameters()``): the inner flow (and a morphing inner density's ratio
  network; its normalization S is refreshed over all training latents before every validation of a phase that
  trains it: ``Phase.refresh``, ``mflow_sbi.flows.morphing``).

Phase M steps only the manifold parameters and phase D only the density parameters (each optimizer holds
only its group, so weight decay never touches the other). While the outer flow is frozen in phase D and it
does not depend on theta, the latents u'(x) are computed once at the start of the phase and the inner flow
trains on them alone; with a theta-conditional outer flow phase D evaluates the fixed-manifold NLL instead
(its theta dependence then includes the outer flow, which the SCANDAL score must see).

Algorithms:

- ``sequential``: [M (epochs_m), D (epochs_d)]; with a morphing inner density [M, D, R (epochs_d)]: phase D trains
  the theta-free flow p_ref (on ``reference_events`` events when set), phase R the ratio network (with SCANDAL's
  score term), each selected by its own
  validation loss (trained together, the flow's loss decided when to stop and the ratio overfitted by then);
- ``alternating``: [A (epochs)] with an M step and a D step per batch (D on the current encoding, detached);
- ``simultaneous``: [M (epochs_pretrain), S (epochs), D (epochs_posttrain)] (and R, as above), S minimizing
  reconstruction_weight * reconstruction + nll_weight * exact manifold NLL (+ scandal * score) over all
  parameters; phases with zero epochs are left out;
- ``ml``: [ML (epochs)], maximum likelihood of the model's ambient (AF) or PIE density over all parameters.

``epochs`` unset: 300 for an AF's ML phase (early stopping ends it), 30 for the others
(:meth:`TrainingConfig.epochs_for`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from mflow_sbi.devices import resolve_device
from mflow_sbi.errors import ConfigError
from mflow_sbi.flows.base import flow_kernels
from mflow_sbi.threads import torch_threads
from mflow_sbi.training.distributed import DistributedContext, DistributedTrainer
from mflow_sbi.training.history import History
from mflow_sbi.training.losses import (
    encode_decode,
    log_prob_and_score,
    reconstruction_error,
    score_error,
    weighted_mean,
)
from mflow_sbi.training.settings import TrainingConfig
from mflow_sbi.training.speed import compile_steps
from mflow_sbi.training.tensors import prepare_tensors
from mflow_sbi.training.trainer import Batch, BatchSource, LossTerms, Phase, Step, Trainer

ML_MODES = ("ambient", "pie")
NORMALIZATION_CHUNK = 8192  # rows per evaluation when refreshing a morphing inner density's normalization


def ml_mode(model) -> str | None:
    """The full-dimensional density mode trained by maximum likelihood ("ambient" or "pie"), or None."""
    return next((mode for mode in ML_MODES if mode in model.modes), None)


def is_manifold_model(model) -> bool:
    """True for models with a learned manifold and separate manifold and density parameters (M-flow, Me-flow,
    PIE): their class sets ``needs_latent_dim``."""
    return bool(model.needs_latent_dim)


def resolve_algorithm(model, config: TrainingConfig) -> str:
    """The algorithm to run: ``config.algorithm``, with "auto" resolved and the model's support checked."""
    algorithm = config.algorithm
    if algorithm == "auto":
        algorithm = "ml" if ml_mode(model) is not None else "sequential"
    name = type(model).__name__
    if algorithm == "ml" and ml_mode(model) is None:
        raise ConfigError(
            f"algorithm 'ml' needs a full-dimensional density (AF or PIE); {name} has modes {model.modes}: "
            "use sequential, alternating or simultaneous"
        )
    if algorithm != "ml" and not is_manifold_model(model):
        raise ConfigError(f"algorithm {algorithm!r} needs a model with a learned manifold (M-flow, Me-flow, PIE); "
                          f"{name} trains with algorithm 'ml'")
    return algorithm


class _Losses:
    """The loss terms of every step, bound to a model and a configuration."""

    def __init__(self, model, config: TrainingConfig, weighted: bool = False):
        self.model = model
        self.config = config
        self.weighted = weighted

    def mean(self, values, batch: Batch):
        """The batch mean of per-event ``values``, weighted by the batch's last tensor for weighted events."""
        return weighted_mean(values, batch[-1] if self.weighted else None)

    def _with_score(self, batch: Batch, log_prob, name: str) -> LossTerms:
        """{name: mean -log p} plus, with SCANDAL, {"score": mean |score - t_xz|^2}."""
        if self.config.score_weight <= 0:
            return {name: self.mean(-log_prob(batch[1]), batch)}
        values, score = log_prob_and_score(log_prob, batch[1], self.model.theta_scaler.scale)
        return {name: self.mean(-values, batch), "score": self.mean(score_error(score, batch[2]), batch)}

    def reconstruction(self, batch: Batch) -> LossTerms:
        return self._reconstruction_terms(batch, *encode_decode(self.model, batch[0], batch[1]))

    def _reconstruction_terms(self, batch: Batch, u: torch.Tensor, reconstructed: torch.Tensor) -> LossTerms:
        error = reconstruction_error(reconstructed, batch[0], self.config.reconstruction)
        terms = {"reconstruction": self.mean(error, batch)}
        if self.config.latent_l2 > 0:
            terms["latent_l2"] = self.mean((u**2).sum(-1), batch)
        return terms

    def latent_nll(self, batch: Batch) -> LossTerms:
        """Inner-flow NLL on precomputed latents batch[0]."""
        return self._with_score(batch, lambda theta: self.model.latent_log_prob_std(batch[0], theta), "nll")

    def reference_nll(self, batch: Batch) -> LossTerms:
        """NLL on precomputed latents without the score term: the D step of a morphing inner density, whose
        trained part there (the theta-free flow p_ref) has no theta gradient for SCANDAL to fit."""
        return {"nll": self.mean(-self.model.latent_log_prob_std(batch[0], batch[1]), batch)}

    def fixed_manifold_nll(self, batch: Batch) -> LossTerms:
        return self._with_score(batch, lambda theta: self.model.log_prob_std(batch[0], theta, "fixed_manifold"), "nll")

    def current_latent_nll(self, batch: Batch) -> LossTerms:
        """Inner-flow NLL on the current (detached) encoding of x: the D step of alternating training."""
        if self.model.conditional_outer:
            return self.fixed_manifold_nll(batch)
        with torch.no_grad():
            u = self.model.encode_std(batch[0])
        return self.latent_nll((u, *batch[1:]))

    def simultaneous(self, batch: Batch) -> LossTerms:
        """Reconstruction and exact manifold NLL. With a theta-free outer flow both come from one encoder and one
        decoder pass (``manifold_terms_std``: the decoder's value is the primal of its Jacobian), and
        log p(x|theta) = log p(u'|theta) + volume(u'); with a conditional one (and with ``flow_kernels = "nflows"``, the
        code path of earlier versions) the density is evaluated in passes of its own."""
        if self.model.conditional_outer or self.config.flow_kernels == "nflows":
            terms = self.reconstruction(batch)
            terms.update(self._with_score(batch, lambda theta: self.model.log_prob_std(batch[0], theta, "manifold"),
                                          "nll"))
            return terms
        u, reconstructed, volume = self.model.manifold_terms_std(batch[0])
        terms = self._reconstruction_terms(batch, u, reconstructed)
        terms.update(self._with_score(batch, lambda theta: self.model.latent_log_prob_std(u, theta) + volume, "nll"))
        return terms

    def maximum_likelihood(self, batch: Batch) -> LossTerms:
        mode = ml_mode(self.model)
        return self._with_score(batch, lambda theta: self.model.log_prob_std(batch[0], theta, mode), "nll")


def _encode_frozen(model):
    def prepare(data: Batch) -> Batch:
        return (model.encode_std(data[0]), *data[1:])

    return prepare


def _first_rows(n: int):
    def prepare(data: Batch) -> Batch:
        return tuple(t[:n] for t in data)

    return prepare


def _subset_then(rows: int, prepare):
    """``prepare`` applied to the first ``rows`` events of the data (all of them when ``rows`` is 0)."""
    if rows <= 0:
        return prepare

    def subset(data: Batch) -> Batch:
        return prepare(_first_rows(rows)(data))

    return subset


def _latent_normalization(model, encoded: bool, weighted: bool):
    """The phase's ``refresh`` for a morphing inner density (None otherwise): store the ratio's normalization
    S = mean of R(u') over all training latents (``mflow_sbi.flows.morphing``), encoding x first unless the
    phase's data are latents already."""
    if getattr(model, "morphing", None) is None:
        return None

    def chunks(data):
        if isinstance(data, tuple):
            rows = data[0].shape[0]
            batches = (tuple(t[i : i + NORMALIZATION_CHUNK] for t in data) for i in range(0, rows, NORMALIZATION_CHUNK))
        else:
            batches = data.batches(0)
        for batch in batches:
            yield (batch[0] if encoded else model.encode_std(batch[0])), (batch[-1] if weighted else None)

    return lambda data: model.fit_latent_normalization(chunks(data))


def build_phases(model, config: TrainingConfig, weighted: bool = False) -> list[Phase]:
    """The phases of the configured algorithm for ``model`` (``weighted``: batches end with event weights);
    see the module docstring."""
    algorithm = resolve_algorithm(model, config)
    losses = _Losses(model, config, weighted)
    weights = {"latent_l2": config.latent_l2, "score": config.score_weight}
    if algorithm == "ml":
        return [Phase("ML", [Step("ml", list(model.parameters()), losses.maximum_likelihood, config.learning_rate,
                                  weights)], config.epochs_for(ambient=ml_mode(model) == "ambient"))]
    m_step = Step("M", model.manifold_parameters(), losses.reconstruction, config.lr_m, weights)
    if model.conditional_outer:
        d_loss, prepare = losses.fixed_manifold_nll, None
    else:
        d_loss, prepare = losses.latent_nll, _encode_frozen(model)
    d_step = Step("D", model.density_parameters(), d_loss, config.lr_d, weights)
    d_refresh, x_refresh = _latent_normalization(model, True, weighted), _latent_normalization(model, False, weighted)
    ratio = model.ratio_parameters() if hasattr(model, "ratio_parameters") else []

    def density_phases(epochs: int) -> list[Phase]:
        """[D] on the latents; with a morphing inner density [D, R]: the flow p_ref, then the ratio, each with
        its own validation, early stopping and learning-rate schedule."""
        if not ratio:
            return [Phase("D", [d_step], epochs, prepare, ema_decay=config.ema_decay)]
        taken = {id(p) for p in ratio}
        reference = Step("D", [p for p in model.density_parameters() if id(p) not in taken], losses.reference_nll,
                         config.lr_d, weights)
        return [Phase("D", [reference], epochs, _subset_then(config.reference_events, prepare),
                      ema_decay=config.ema_decay),
                Phase("R", [Step("R", ratio, d_loss, config.lr_d, weights)], epochs, prepare,
                      ema_decay=config.ema_decay, refresh=d_refresh)]

    if config.reference_events > 0 and not ratio:
        raise ConfigError("training.reference_events trains phase D of a morphing inner density on fewer events; "
                          "this model has none (set [model] inner_density = \"morphing\" or leave it at 0)")
    m_prepare = _first_rows(config.manifold_events) if config.manifold_events > 0 else None
    if algorithm == "sequential":
        phases = [Phase("M", [m_step], config.epochs_m, m_prepare), *density_phases(config.epochs_d)]
    elif algorithm == "alternating":
        alternating_d = Step("D", model.density_parameters(), losses.current_latent_nll, config.lr_d, weights)
        phases = [Phase("A", [m_step, alternating_d], config.epochs_for(), refresh=x_refresh)]
    else:
        s_weights = {**weights, "reconstruction": config.reconstruction_weight, "nll": config.nll_weight}
        s_step = Step("S", list(model.parameters()), losses.simultaneous, config.learning_rate, s_weights)
        phases = [Phase("M", [m_step], config.epochs_pretrain, m_prepare),
                  Phase("S", [s_step], config.epochs_for(), refresh=x_refresh), *density_phases(config.epochs_posttrain)]
    return [phase for phase in phases if phase.epochs > 0]


def train_model(
    model,
    x: np.ndarray | torch.Tensor,
    theta: np.ndarray | torch.Tensor,
    config: TrainingConfig,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    t_xz: np.ndarray | torch.Tensor | None = None,
    callback: Callable[[dict], None] | None = None,
    w: np.ndarray | torch.Tensor | None = None,
    distributed: DistributedContext | None = None,
) -> History:
    """Fit the model's scalers on (x, theta) and train it with ``config``'s algorithm; returns the learning curves.

    The model is moved to ``config.device`` first (in a data-parallel run, ``distributed``, to the rank's
    device; :mod:`mflow_sbi.training.distributed`); the training tensors are made there.

    ``checkpoint`` is written after every epoch; ``resume`` continues from it. ``t_xz`` (N, p) is the joint
    score, needed when ``config.scandal`` > 0; an unset ``scandal`` trains with the score exactly when ``t_xz`` is
    given (:meth:`TrainingConfig.for_data`). ``w`` (N,): per-event weights (weighted scalers, losses and
    validation; negative weights allowed, the sum must be positive). ``callback`` receives every epoch's history
    record.
    """
    config = config.for_data(t_xz is not None)
    with torch_threads(config.threads):
        torch.manual_seed(config.seed)
        model.to(resolve_device(config.device) if distributed is None else distributed.device)
        data = prepare_tensors(model, x, theta, t_xz, config, w)
        history = fit_prepared(model, data, config, checkpoint=checkpoint, resume=resume, progress=progress,
                               callback=callback, weighted=w is not None, distributed=distributed)
    model.eval()
    return history


def fit_prepared(
    model,
    data: Batch | BatchSource,
    config: TrainingConfig,
    validation: Batch | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
    weighted: bool = False,
    distributed: DistributedContext | None = None,
) -> History:
    """Run ``config``'s phases on standardized data (scalers already set): in-memory tensors, or a batch
    source with in-memory ``validation`` tensors (see :class:`~mflow_sbi.training.trainer.Trainer`);
    ``weighted``: the last tensor of every batch holds event weights; with ``distributed``, this rank's part
    of a data-parallel run (rank 0's model state is broadcast first)."""
    for key in ("manifold_events", "reference_events"):
        if getattr(config, key) > 0 and not isinstance(data, tuple):
            raise ConfigError(f"training.{key} needs in-memory training data (not stream = true)")
    options = {"progress": progress, "checkpoint": checkpoint, "callback": callback, "validation": validation}
    if distributed is None:
        trainer = Trainer(model, data, config, **options)
    else:
        trainer = DistributedTrainer(model, data, config, context=distributed, **options)
    phases = build_phases(model, config, weighted)
    with flow_kernels(model, config.flow_kernels):
        return trainer.fit(compile_steps(phases) if config.compile else phases, resume=resume)
