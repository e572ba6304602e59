"""A robust training loop over in-memory tensors, organized in phases.

A training run is a sequence of :class:`Phase` objects. A phase has one or more :class:`Step` objects;
for every batch each step computes its loss and updates its own parameter group with its own optimizer
(AdamW, cosine learning-rate schedule, gradient-norm clipping). This covers all algorithms:

- sequential M/D: phase "M" [reconstruction step on the outer flow], then phase "D" [NLL step on the inner flow];
- alternating M/D: one phase with the steps [M, D];
- simultaneous / maximum likelihood: one phase with one step on all parameters.

Per phase: a validation split scores each epoch (sum of the step losses); early stopping with patience
restores the best weights. A non-finite loss skips the batch (counted); more than ``max_nonfinite``
consecutive skips stop the run with a TrainingError. Every epoch writes an atomic checkpoint; ``resume``
continues from it, and because every epoch's shuffling and dropout are seeded from (seed, phase, epoch)
the resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from mflow_sbi.errors import TrainingError
from mflow_sbi.io import atomic_path

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]
LossFn = Callable[[Batch], torch.Tensor]


@dataclass
class Step:
    """One optimizer step per batch: minimize ``loss(batch)`` (mean over the batch) over ``parameters``."""

    name: str
    parameters: Sequence[nn.Parameter]
    loss: LossFn
    learning_rate: float = 1e-3


@dataclass
class Phase:
    """Epochs of the same steps. ``prepare`` (optional) maps the data tensors once at the start of the
    phase, e.g. to encode x with a frozen outer flow so that later steps see only latents."""

    name: str
    steps: list[Step]
    epochs: int
    prepare: Callable[[Batch], Batch] | None = None


@dataclass
class TrainerSettings:
    batch_size: int = 256
    weight_decay: float = 1e-5
    clip_norm: float = 5.0
    validation_fraction: float = 0.1
    patience: int = 5
    max_nonfinite: int = 20
    seed: int = 0
    progress: bool = True


@dataclass
class History:
    """Per-epoch records: {"phase", "epoch", "train": {step: loss}, "val": {step: loss}, "skipped"}."""

    records: list[dict] = field(default_factory=list)

    def to_list(self) -> list[dict]:
        return list(self.records)


def _epoch_seed(seed: int, phase_index: int, epoch: int) -> int:
    return (seed * 1_000_003 + phase_index * 10_007 + epoch) % (2**63 - 1)


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random split into (train, validation) indices; validation gets at least one event when n > 1."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    n_val = min(max(int(round(n * validation_fraction)), 1 if validation_fraction > 0 and n > 1 else 0), n - 1)
    return order[n_val:], order[:n_val]


class Trainer:
    """Runs phases over in-memory data tensors (all of the same first dimension)."""

    def __init__(self, model: nn.Module, data: Batch, settings: TrainerSettings, checkpoint: str | os.PathLike | None = None):
        if not data or any(t.shape[0] != data[0].shape[0] for t in data):
            raise TrainingError("training tensors must be non-empty and share their first dimension")
        self.model = model
        self.settings = settings
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else None
        train_idx, val_idx = split_indices(data[0].shape[0], settings.validation_fraction, settings.seed)
        self.train_data = tuple(t[train_idx] for t in data)
        self.val_data = tuple(t[val_idx] for t in data)
        self.history = History()

    # --- one epoch ---------------------------------------------------------------------------------------
    def _batches(self, data: Batch, generator: torch.Generator | None) -> list[Batch]:
        n = data[0].shape[0]
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        return [tuple(t[idx] for t in data) for idx in order.split(self.settings.batch_size)]

    def _train_epoch(self, data: Batch, steps: list[Step], optimizers, schedulers, seed: int, bar) -> tuple[dict, int]:
        self.model.train()
        torch.manual_seed(seed)
        totals = {s.name: 0.0 for s in steps}
        counts = {s.name: 0 for s in steps}
        skipped = 0
        consecutive = 0
        for batch in self._batches(data, torch.Generator().manual_seed(seed)):
            for step, optimizer in zip(steps, optimizers, strict=True):
                loss = step.loss(batch)
                if not bool(torch.isfinite(loss)):
                    skipped += 1
                    consecutive += 1
                    if consecutive > self.settings.max_nonfinite:
                        raise TrainingError(
                            f"{consecutive} consecutive non-finite losses in step '{step.name}'; stopping "
                            "(check the data for NaN/inf or lower the learning rate)"
                        )
                    continue
                consecutive = 0
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(step.parameters, self.settings.clip_norm)
                optimizer.step()
                totals[step.name] += float(loss.detach()) * batch[0].shape[0]
                counts[step.name] += batch[0].shape[0]
            if bar is not None:
                bar.set_postfix({k: f"{totals[k] / max(counts[k], 1):.4g}" for k in totals}, refresh=False)
        for scheduler in schedulers:
            scheduler.step()
        return {k: totals[k] / counts[k] if counts[k] else math.nan for k in totals}, skipped

    @torch.no_grad()
    def _validate(self, data: Batch, steps: list[Step]) -> dict:
        if data[0].shape[0] == 0:
            return {}
        self.model.eval()
        totals = {s.name: 0.0 for s in steps}
        n = 0
        for batch in self._batches(data, None):
            for step in steps:
                totals[step.name] += float(step.loss(batch)) * batch[0].shape[0]
            n += batch[0].shape[0]
        return {k: v / n for k, v in totals.items()}

    # --- checkpoints ----------------------------------------------------------------------------------
    def _save_checkpoint(self, state: dict) -> None:
        if self.checkpoint_path is None:
            return
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def _load_checkpoint(self) -> dict | None:
        if self.checkpoint_path is None or not self.checkpoint_path.is_file():
            return None
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)

    # --- the run ----------------------------------------------------------------------------------------
    def fit(self, phases: list[Phase], resume: bool = False) -> History:
        """Run all phases; with ``resume`` continue from the checkpoint if there is one."""
        state = self._load_checkpoint() if resume else None
        if resume and state is None:
            log.warning("no checkpoint at %s: starting from scratch", self.checkpoint_path)
        if state is not None:
            self.history.records = list(state["history"])
            log.info("resuming at phase %d, epoch %d", state["phase"], state["epoch"] + 1)
        for phase_index, phase in enumerate(phases):
            if state is not None and phase_index < state["phase"]:
                continue
            self._run_phase(phase_index, phase, state if state is not None and state["phase"] == phase_index else None)
            state = None
        return self.history

    def _run_phase(self, phase_index: int, phase: Phase, state: dict | None) -> None:
        optimizers = [
            torch.optim.AdamW(step.parameters, lr=step.learning_rate, weight_decay=self.settings.weight_decay)
            for step in phase.steps
        ]
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(phase.epochs, 1)) for opt in optimizers]
        start, best_loss, best_state, stale = 0, math.inf, None, 0
        if state is not None:
            self.model.load_state_dict(state["model"])
            for obj, saved in zip(optimizers + schedulers, state["optimizers"] + state["schedulers"], strict=True):
                obj.load_state_dict(saved)
            start, best_loss, best_state, stale = state["epoch"] + 1, state["best_loss"], state["best_state"], state["stale"]
        if state is None or not state["done"]:
            best_state = self._epochs(phase_index, phase, optimizers, schedulers, start, best_loss, best_state, stale)
        if best_state is not None:
            self.model.load_state_dict(best_state)

    def _epochs(self, phase_index, phase, optimizers, schedulers, start, best_loss, best_state, stale) -> dict | None:
        """Train from epoch ``start``; return the state dict of the best epoch."""
        train_data, val_data = self.train_data, self.val_data
        if phase.prepare is not None:
            with torch.no_grad():
                train_data, val_data = phase.prepare(train_data), phase.prepare(val_data)
        bar = tqdm(range(start, phase.epochs), desc=f"phase {phase.name}", disable=not self.settings.progress,
                   initial=start, total=phase.epochs, leave=False)
        for epoch in bar:
            seed = _epoch_seed(self.settings.seed, phase_index, epoch)
            train_losses, skipped = self._train_epoch(train_data, phase.steps, optimizers, schedulers, seed, bar)
            val_losses = self._validate(val_data, phase.steps)
            score = sum(val_losses.values()) if val_losses else sum(train_losses.values())
            if skipped:
                log.warning("phase %s epoch %d: skipped %d batch step(s) with non-finite loss", phase.name, epoch, skipped)
            self.history.records.append(
                {"phase": phase.name, "epoch": epoch, "train": train_losses, "val": val_losses, "skipped": skipped}
            )
            if score < best_loss:
                best_loss, best_state, stale = score, copy.deepcopy(self.model.state_dict()), 0
            else:
                stale += 1
            done = stale >= self.settings.patience or epoch == phase.epochs - 1
            self._save_checkpoint({
                "phase": phase_index, "epoch": epoch, "model": self.model.state_dict(),
                "optimizers": [o.state_dict() for o in optimizers], "schedulers": [s.state_dict() for s in schedulers],
                "best_loss": best_loss, "best_state": best_state, "stale": stale, "done": done,
                "history": self.history.records,
            })
            if done:
                if stale >= self.settings.patience:
                    log.info("phase %s: early stopping after epoch %d", phase.name, epoch)
                break
        bar.close()
        return best_state
