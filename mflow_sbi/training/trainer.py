"""A robust training loop over in-memory tensors or streamed batches, organized in phases.

A training run is a sequence of :class:`Phase` objects. A phase has one or more :class:`Step` objects;
for every batch each step evaluates its loss terms, minimizes their weighted sum

    L_step = sum_k w_k * term_k        (w_k = 1 unless the step says otherwise)

over its own parameter group with its own optimizer (AdamW with weight decay, cosine learning-rate
schedule per phase, gradient-norm clipping). This covers every algorithm:

- sequential M/D: phase "M" [reconstruction step on the outer flow], then phase "D" [NLL step on the inner flow];
- alternating M/D: one phase with the steps [M, D] (separate optimizers, alternating per batch);
- simultaneous / maximum likelihood: one phase with one step on all parameters.

Data: in-memory tensors (split into training and validation at random, shuffled per epoch by index), or
a :class:`BatchSource` of training batches too large for memory (e.g. streamed from ROOT files) together with
fixed in-memory validation tensors.

Per phase a validation split scores each epoch (the sum of the steps' weighted losses); early stopping
with patience restores the best weights at the end of the phase.

Robustness: a non-finite loss or gradient norm skips that step for that batch; skips are counted per epoch,
logged and stored in the history. More than ``max_nonfinite`` consecutive skips stop the run with a
:class:`TrainingError` (the checkpoint of the last completed epoch stays on disk).

Progress: a tqdm bar per phase with the running losses, shown only on a terminal and only with
``progress=True``; otherwise (a batch job writing to a log file) one INFO log line per epoch with the
losses, the learning rate and the throughput.

Weight averaging: a phase with ``ema_decay`` > 0 keeps an exponential moving average of the parameters of
its steps, updated after every optimizer step (``avg = d_t * avg + (1 - d_t) * parameter`` with the warm-up
d_t = min(decay, t / (t + 9)) at step t, starting from the parameters at the start of the phase).
Validation scores the averaged weights, the best state kept for early stopping holds them, and the phase
ends with the best averaged weights in the model; training itself continues on the live weights. The
averages are part of the checkpoint.

Every epoch writes an atomic checkpoint. ``resume`` continues from it; because each epoch's shuffling and
dropout are seeded from (seed, phase, epoch) and the optimizer and schedule states are restored, a resumed
run reproduces the uninterrupted one bit for bit.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from mflow_sbi.errors import TrainingError
from mflow_sbi.io import atomic_path
from mflow_sbi.training.history import History
from mflow_sbi.training.settings import TrainingConfig

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]
LossTerms = dict[str, torch.Tensor]
LossFn = Callable[[Batch], LossTerms]
TOTAL = "loss"


@dataclass
class Step:
    """One optimizer step per batch: minimize ``sum_k weights[k] * loss(batch)[k]`` over ``parameters``.

    ``loss`` returns named scalar terms (means over the batch); terms without a weight count once.
    """

    name: str
    parameters: Sequence[nn.Parameter]
    loss: LossFn
    learning_rate: float = 1e-3
    weights: Mapping[str, float] = field(default_factory=dict)

    def total(self, terms: LossTerms) -> torch.Tensor:
        return sum(self.weights.get(name, 1.0) * value for name, value in terms.items())


class BatchSource(Protocol):
    """Training batches that are produced on the fly instead of held in memory."""

    def batches(self, seed: int) -> Iterable[Batch]:
        """One epoch of batches, shuffled reproducibly by ``seed`` (same seed -> same batches)."""

    def mapped(self, fn: Callable[[Batch], Batch]) -> BatchSource:
        """The same batches, each passed through ``fn`` (without gradients) before it is yielded."""


@dataclass
class Phase:
    """Epochs of the same steps. ``prepare`` (optional) maps the data once at the start of the phase
    (in-memory tensors; a :class:`BatchSource` maps every batch as it comes), e.g. to encode x with a frozen
    outer flow so that later steps see only latents. ``refresh`` (optional) gets the phase's training data
    (prepared) before every validation, in eval mode without gradients: for statistics the model stores from
    its training data (the morphing ratio's normalization)."""

    name: str
    steps: list[Step]
    epochs: int
    prepare: Callable[[Batch], Batch] | None = None
    ema_decay: float = 0.0
    refresh: Callable[[Batch | BatchSource], None] | None = None


class _EMA:
    """Exponential moving average of parameters: after the t-th optimizer step (t = 1, 2, ...),
    ``shadow = d_t * shadow + (1 - d_t) * parameter`` with the warm-up d_t = min(decay, t / (t + 9)); the
    shadow starts at the parameters' values. Without the warm-up the untrained starting weights would keep a
    weight decay^t in the average (0.25 after 1,400 steps at 0.999), which ruined posteriors in our runs."""

    def __init__(self, parameters: Sequence[nn.Parameter], decay: float):
        self.parameters = list(parameters)
        self.decay = float(decay)
        self.shadow = [p.detach().clone() for p in self.parameters]
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, self.updates / (self.updates + 9.0))

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = self.current_decay()
        for shadow, parameter in zip(self.shadow, self.parameters, strict=True):
            shadow.mul_(decay).add_(parameter.detach(), alpha=1.0 - decay)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the live parameters and the averages (call twice to undo)."""
        for shadow, parameter in zip(self.shadow, self.parameters, strict=True):
            saved = parameter.detach().clone()
            parameter.copy_(shadow)
            shadow.copy_(saved)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": [t.clone() for t in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise TrainingError(f"checkpoint holds {len(state['shadow'])} averaged tensors, the phase has "
                                f"{len(self.shadow)}")
        self.updates = int(state["updates"])
        for shadow, saved in zip(self.shadow, state["shadow"], strict=True):
            shadow.copy_(saved)



def epoch_summary(record: dict, epochs: int, learning_rate: float, seconds: float, events: int | None) -> str:
    """One line per epoch for logs: ``phase D epoch 3/40: train loss 1.23 (nll 1.2, score 0.3) | val loss
    1.31 | lr 1.0e-03 | 5400 events/s`` (the time per epoch where the number of events is not known)."""
    def losses(values: dict) -> str:
        extra = ", ".join(f"{k} {v:.4g}" for k, v in values.items() if k != TOTAL)
        return f"loss {values[TOTAL]:.4g}" + (f" ({extra})" if extra else "")

    parts = [f"phase {record['phase']} epoch {record['epoch'] + 1}/{epochs}: train {losses(record['train'])}"]
    if record["val"]:
        parts.append(f"val {losses(record['val'])}")
    parts.append(f"lr {learning_rate:.1e}")
    parts.append(f"{events / seconds:.0f} events/s" if events and seconds > 0 else f"{seconds:.1f} s")
    return " | ".join(parts)


def _epoch_seed(seed: int, phase_index: int, epoch: int) -> int:
    return (seed * 1_000_003 + phase_index * 10_007 + epoch) % (2**63 - 1)


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random split into (train, validation) indices; validation gets at least one event when n > 1."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    n_val = min(max(int(round(n * validation_fraction)), 1 if validation_fraction > 0 and n > 1 else 0), n - 1)
    return order[n_val:], order[:n_val]


class _Totals:
    """Event-weighted running means of named losses."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: Mapping[str, torch.Tensor | float], rows: int) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value) * rows
            self.counts[name] = self.counts.get(name, 0) + rows

    def means(self, names: Sequence[str]) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] if self.counts.get(k) else math.nan for k in names}


def _check_tensors(data: Batch, what: str, allow_empty: bool = False) -> None:
    if not data or (data[0].shape[0] == 0 and not allow_empty) or any(t.shape[0] != data[0].shape[0] for t in data):
        raise TrainingError(f"{what} tensors must be {'' if allow_empty else 'non-empty and '}share their first "
                            "dimension")


class Trainer:
    """Runs phases over in-memory data tensors (all of the same first dimension), split at random into
    training and validation by ``config.validation_fraction``, or over a :class:`BatchSource` with the
    in-memory ``validation`` tensors (possibly with zero rows: then the training loss scores the epochs).

    Of the training configuration the loop reads ``batch_size``, ``weight_decay``, ``clip_norm``,
    ``validation_fraction``, ``patience``, ``max_nonfinite`` and ``seed``; the phases carry the rest.

    ``callback`` (optional) is called with each epoch's history record after its checkpoint is written.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Batch | BatchSource,
        config: TrainingConfig,
        *,
        progress: bool = True,
        checkpoint: str | os.PathLike | None = None,
        callback: Callable[[dict], None] | None = None,
        validation: Batch | None = None,
    ):
        self.model = model
        self.config = config
        self.progress = progress
        self.checkpoint_path = Path(checkpoint) if checkpoint is not None else None
        self.callback = callback
        if isinstance(data, tuple):
            _check_tensors(data, "training")
            if validation is not None:
                raise TrainingError("in-memory training data are split into training and validation by "
                                    "validation_fraction; give validation tensors only with a batch source")
            train_idx, val_idx = split_indices(data[0].shape[0], config.validation_fraction, config.seed)
            self.train_data: Batch | BatchSource = tuple(t[train_idx] for t in data)
            self.val_data = tuple(t[val_idx] for t in data)
        else:
            if validation is None:
                raise TrainingError("training from a batch source needs validation tensors (zero rows for none)")
            _check_tensors(validation, "validation", allow_empty=True)
            self.train_data, self.val_data = data, validation
        self.history = History()
        self.consecutive_nonfinite = 0  # across the epochs of a phase

    # --- one epoch ---------------------------------------------------------------------------------------
    def _batches(self, data: Batch, generator: torch.Generator | None) -> Iterator[Batch]:
        n = data[0].shape[0]
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        order = order.to(data[0].device)
        for idx in order.split(self.config.batch_size):
            yield tuple(t[idx] for t in data)

    def _optimize(self, step: Step, optimizer: torch.optim.Optimizer, batch: Batch) -> LossTerms | None:
        """One update; returns the detached terms and total, or None when the loss or gradient is non-finite."""
        terms = step.loss(batch)
        total = step.total(terms)
        if not bool(torch.isfinite(total)):
            return None
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        norm = torch.nn.utils.clip_grad_norm_(step.parameters, self.config.clip_norm)
        if not bool(torch.isfinite(norm)):
            optimizer.zero_grad(set_to_none=True)
            return None
        optimizer.step()
        return {**{k: v.detach() for k, v in terms.items()}, f"{step.name}.{TOTAL}": total.detach()}

    def _epoch_batches(self, data: Batch | BatchSource, seed: int) -> Iterable[Batch]:
        if isinstance(data, tuple):
            return self._batches(data, torch.Generator().manual_seed(seed))
        return data.batches(seed)

    def _train_epoch(self, data: Batch | BatchSource, steps: list[Step], optimizers, seed: int,
                     bar, ema: _EMA | None = None) -> tuple[dict, int]:
        self.model.train()
        torch.manual_seed(seed)
        totals = _Totals()
        skipped = 0
        for batch in self._epoch_batches(data, seed):
            for step, optimizer in zip(steps, optimizers, strict=True):
                terms = self._optimize(step, optimizer, batch)
                if terms is None:
                    skipped += 1
                    self.consecutive_nonfinite += 1
                    if self.consecutive_nonfinite > self.config.max_nonfinite:
                        where = f"; the last good checkpoint is {self.checkpoint_path}" if self.checkpoint_path else ""
                        raise TrainingError(
                            f"{self.consecutive_nonfinite} consecutive non-finite losses or gradients in step "
                            f"'{step.name}'; stopping (check the data for NaN/inf or lower the learning rate){where}"
                        )
                    continue
                self.consecutive_nonfinite = 0
                if ema is not None:
                    ema.update()
                totals.add(terms, batch[0].shape[0])
            if bar is not None and totals.sums:
                bar.set_postfix({k: f"{v:.4g}" for k, v in totals.means(list(totals.sums)).items()}, refresh=False)
        return self._summarize(totals, steps), skipped

    @staticmethod
    def _summarize(totals: _Totals, steps: list[Step]) -> dict:
        names = [k for k in totals.sums if not k.endswith(f".{TOTAL}")]
        means = totals.means(names)
        means[TOTAL] = sum(totals.means([f"{s.name}.{TOTAL}"])[f"{s.name}.{TOTAL}"] for s in steps)
        return means

    @torch.no_grad()
    def _validate(self, data: Batch, steps: list[Step]) -> dict:
        if data[0].shape[0] == 0:
            return {}
        self.model.eval()
        totals = _Totals()
        for batch in self._batches(data, None):
            for step in steps:
                terms = step.loss(batch)
                totals.add({**terms, f"{step.name}.{TOTAL}": step.total(terms)}, batch[0].shape[0])
        return self._summarize(totals, steps)

    def _decide_done(self, done: bool) -> bool:
        """Whether the phase ends after this epoch (a data-parallel run takes rank 0's decision)."""
        return done

    # --- checkpoints ----------------------------------------------------------------------------------
    def _save_checkpoint(self, state: dict) -> None:
        if self.checkpoint_path is None:
            return
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def _load_checkpoint(self, plan: list[tuple[str, int]]) -> dict | None:
        if self.checkpoint_path is None or not self.checkpoint_path.is_file():
            return None
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)  # tensors and plain data only
        except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
            raise TrainingError(f"{self.checkpoint_path}: cannot read checkpoint ({err})") from None
        if state.get("plan") != plan:
            raise TrainingError(
                f"{self.checkpoint_path}: checkpoint was written for phases {state.get('plan')}, but this run has "
                f"{plan}; use the same configuration to resume, or start afresh (without resume)"
            )
        return state

    # --- the run ----------------------------------------------------------------------------------------
    def fit(self, phases: list[Phase], resume: bool = False) -> History:
        """Run all phases; with ``resume`` continue from the checkpoint if there is one."""
        plan = [(phase.name, phase.epochs) for phase in phases]
        state = self._load_checkpoint(plan) if resume else None
        if resume and state is None:
            log.warning("no checkpoint at %s: starting from scratch", self.checkpoint_path)
        if state is not None:
            self.history.records = list(state["history"])
            log.info("resuming at phase %d, epoch %d", state["phase"], state["epoch"] + 1)
        for phase_index, phase in enumerate(phases):
            if state is not None and phase_index < state["phase"]:
                continue
            phase_state = state if state is not None and state["phase"] == phase_index else None
            self._run_phase(plan, phase_index, phase, phase_state)
            state = None
        return self.history

    def _run_phase(self, plan, phase_index: int, phase: Phase, state: dict | None) -> None:
        optimizers = [
            torch.optim.AdamW(step.parameters, lr=step.learning_rate, weight_decay=self.config.weight_decay)
            for step in phase.steps
        ]
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(phase.epochs, 1)) for opt in optimizers]
        progress = {"start": 0, "best_loss": math.inf, "best_state": None, "stale": 0}
        if state is not None:
            self.model.load_state_dict(state["model"])
        ema = None
        if phase.ema_decay > 0:
            unique = {id(p): p for step in phase.steps for p in step.parameters}  # steps may share parameters
            ema = _EMA(list(unique.values()), phase.ema_decay)
        if state is not None:
            for obj, saved in zip(optimizers + schedulers, state["optimizers"] + state["schedulers"], strict=True):
                obj.load_state_dict(saved)
            if ema is not None:
                if state.get("ema") is None:
                    raise TrainingError(f"{self.checkpoint_path}: checkpoint has no weight averages but phase "
                                        f"{phase.name} averages its weights (ema_decay); use the same configuration")
                ema.load_state_dict(state["ema"])
            progress = {"start": state["epoch"] + 1, "best_loss": state["best_loss"], "best_state": state["best_state"],
                        "stale": state["stale"]}
        if state is None or not state["done"]:
            self._epochs(plan, phase_index, phase, optimizers, schedulers, progress, ema)
        if progress["best_state"] is not None:
            self.model.load_state_dict(progress["best_state"])

    def _epochs(self, plan, phase_index: int, phase: Phase, optimizers, schedulers, progress: dict,
                ema: _EMA | None = None) -> None:
        """Train from epoch ``progress['start']``, updating ``progress`` (best loss and weights, staleness)."""
        train_data, val_data = self.train_data, self.val_data
        if phase.prepare is not None:
            with torch.no_grad():
                if isinstance(train_data, tuple):
                    train_data = phase.prepare(train_data)
                else:
                    train_data = train_data.mapped(phase.prepare)
                val_data = phase.prepare(val_data) if val_data[0].shape[0] else val_data
        start = progress["start"]
        self.consecutive_nonfinite = 0
        bar = tqdm(range(start, phase.epochs), desc=f"phase {phase.name}", initial=start, total=phase.epochs,
                   disable=None if self.progress else True, leave=False)
        for epoch in bar:
            started, learning_rate = time.perf_counter(), optimizers[0].param_groups[0]["lr"]
            seed = _epoch_seed(self.config.seed, phase_index, epoch)
            train_losses, skipped = self._train_epoch(train_data, phase.steps, optimizers, seed, bar, ema)
            for scheduler in schedulers:
                scheduler.step()
            if ema is not None:
                ema.swap()  # validate (and keep as best) the averaged weights
            if phase.refresh is not None:
                self.model.eval()
                with torch.no_grad():
                    phase.refresh(train_data)
            val_losses = self._validate(val_data, phase.steps)
            score = (val_losses or train_losses)[TOTAL]
            if skipped:
                log.warning("phase %s epoch %d: skipped %d batch step(s) with non-finite loss or gradient",
                            phase.name, epoch, skipped)
            record = {"phase": phase.name, "epoch": epoch, "train": train_losses, "val": val_losses, "skipped": skipped}
            self.history.records.append(record)
            if bar.disable:
                events = train_data[0].shape[0] if isinstance(train_data, tuple) else None
                log.info("%s", epoch_summary(record, phase.epochs, learning_rate, time.perf_counter() - started, events))
            if score < progress["best_loss"]:
                progress.update(best_loss=score, best_state=copy.deepcopy(self.model.state_dict()), stale=0)
            else:
                progress["stale"] += 1
            if ema is not None:
                ema.swap()  # back to the live weights for training and the checkpoint
            done = self._decide_done(progress["stale"] >= self.config.patience or epoch == phase.epochs - 1)
            self._save_checkpoint({
                "plan": plan, "phase": phase_index, "epoch": epoch, "model": self.model.state_dict(),
                "optimizers": [o.state_dict() for o in optimizers], "schedulers": [s.state_dict() for s in schedulers],
                "best_loss": progress["best_loss"], "best_state": progress["best_state"], "stale": progress["stale"],
                "done": done, "history": self.history.records, "ema": None if ema is None else ema.state_dict(),
            })
            if self.callback is not None:
                self.callback(record)
            if done:
                if progress["stale"] >= self.config.patience:
                    log.info("phase %s: early stopping after epoch %d", phase.name, epoch)
                break
        bar.close()
