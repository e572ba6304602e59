"""Data-parallel training with torch.distributed: K processes (ranks), one model replica each, gradients
averaged by :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on the CPU, nccl on GPUs).

Processes are started by ``torchrun --nproc-per-node K -m mflow_sbi train ...`` or by ``mflow-sbi train
--workers K``; both set ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous address, and
:func:`distributed_session` joins the process group when ``WORLD_SIZE`` > 1.

What each rank does, with K ranks and a configured ``batch_size`` B (the *global* batch):

- In-memory data: every rank holds the same training and validation split. Each epoch's shuffled order is
  :class:`~torch.utils.data.distributed.DistributedSampler`'s (seeded by the epoch seed; the last indices are
  repeated so that every rank gets ceil(N/K)); rank r takes every K-th index from r and batches of b =
  ceil(B/K) of them. Global batch j is then the union of the ranks' j-th batches, which is exactly batch j of
  a single process on the same order whenever K divides N and B: K processes take the same optimizer steps
  as one, on the same events, up to the order of floating-point sums. With weighted events each rank's
  loss is its own batch's weighted mean and DDP averages the ranks' gradients, i.e. the ranks' batches
  count equally rather than by their summed weights (the same as one process only on average).
- Streamed ROOT data: rank r takes the chunks c (counted over files and chunks) with c mod K = r; an epoch
  ends for all ranks at the first step where one rank has no batch left (so the ranks take the same number
  of steps; the other ranks' remaining events of that epoch are left out).
- Every step of every phase is wrapped in its own DistributedDataParallel over exactly that step's
  parameters: the frozen group of phase M or D is not part of the wrapper, so it is neither synchronized nor
  waited for (no unused-parameter hangs, ``find_unused_parameters`` stays off). A non-finite loss on any rank
  skips the step on all ranks (one all-reduce of a flag), so the replicas never diverge.
- The model's state (weights and the fitted scalers) is broadcast from rank 0 before training; validation
  rows are split across the ranks (every rank keeps all when there are fewer than K) and the loss sums and
  counts are gathered, so every rank sees the losses of the whole validation set; early stopping is decided
  on rank 0 and broadcast. Checkpoints, logs and progress come from rank 0 only; a checkpoint holds nothing
  rank-specific, so ``resume`` works with the same or a different number of processes (with the same number
  it continues bit for bit).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from mflow_sbi.devices import resolve_device
from mflow_sbi.errors import ConfigError
from mflow_sbi.training.trainer import TOTAL, Batch, BatchSource, LossTerms, Phase, Step, Trainer, _Totals

log = logging.getLogger(__name__)

TIMEOUT = datetime.timedelta(minutes=30)  # a rank waiting longer than this for the others fails


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the process group and the device its replica runs on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the model directory."""
        return self.rank == 0

    def shard(self, rows: int) -> slice:
        """The rows of a validation set that this rank scores: every K-th from its rank (all when rows < K)."""
        return slice(None) if rows < self.world_size else slice(self.rank, None, self.world_size)

    def local_batch_size(self, batch_size: int) -> int:
        """Rows per rank of a global batch of ``batch_size``."""
        return math.ceil(batch_size / self.world_size)

    def all_true(self, flag: bool) -> bool:
        """True when ``flag`` is true on every rank."""
        value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._collective_device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def from_main(self, value: object) -> object:
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self._collective_device)
        return box[0]

    def gather(self, value: object) -> list:
        """Every rank's ``value``, in rank order."""
        values: list = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers in ``module`` on every rank."""
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    @property
    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


@contextlib.contextmanager
def distributed_session(device: str) -> Iterator[DistributedContext | None]:
    """Join the process group described by the environment (``WORLD_SIZE`` > 1) for the block, else yield
    None. Each rank's device is ``device`` resolved (:mod:`mflow_sbi.devices`), GPU ``LOCAL_RANK`` for CUDA;
    the backend is nccl on GPUs and gloo on the CPU. Ranks other than 0 log warnings only."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield None
        return
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"rank {rank} has local rank {local_rank} but only {torch.cuda.device_count()} CUDA "
                              "device(s) are visible: start at most one process per GPU")
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo", timeout=TIMEOUT,
                                rank=rank, world_size=world_size)
    package_logger = logging.getLogger("mflow_sbi")
    level = package_logger.level
    if rank != 0:
        package_logger.setLevel(logging.WARNING)
    try:
        yield DistributedContext(rank, world_size, local_rank, resolved)
    finally:
        package_logger.setLevel(level)
        if started:
            dist.destroy_process_group()


class _StepModule(nn.Module):
    """One step's loss as a module whose parameters are exactly the step's (what DDP synchronizes)."""

    def __init__(self, step: Step):
        super().__init__()
        self.step_parameters = nn.ParameterList(step.parameters)
        self.step = step

    def forward(self, *batch: torch.Tensor) -> LossTerms:
        return self.step.loss(batch)


class DistributedTrainer(Trainer):
    """A :class:`~mflow_sbi.training.trainer.Trainer` for one rank of a data-parallel run (see the module
    docstring); the same arguments plus the rank's ``context``."""

    def __init__(self, model: nn.Module, data: Batch | BatchSource, config, *, context: DistributedContext,
                 progress: bool = True, checkpoint=None, callback: Callable[[dict], None] | None = None,
                 validation: Batch | None = None):
        super().__init__(model, data, config, progress=progress and context.is_main, checkpoint=checkpoint,
                         callback=callback if context.is_main else None, validation=validation)
        self.context = context
        rows = self.val_data[0].shape[0]
        self.val_data = tuple(t[context.shard(rows)] for t in self.val_data)
        self._wrappers: dict[int, DistributedDataParallel] = {}
        context.broadcast_module(model)

    # --- data ------------------------------------------------------------------------------------------
    def _epoch_batches(self, data: Batch | BatchSource, seed: int) -> Iterable[Batch]:
        if isinstance(data, tuple):
            return self._sampled_batches(data, seed)
        return self._while_all_have_batches(data.batches(seed))

    def _sampled_batches(self, data: Batch, seed: int) -> Iterator[Batch]:
        sampler = DistributedSampler(range(data[0].shape[0]), num_replicas=self.context.world_size,
                                     rank=self.context.rank, shuffle=True, seed=seed)
        order = torch.tensor(list(sampler), dtype=torch.long, device=data[0].device)
        for idx in order.split(self.context.local_batch_size(self.config.batch_size)):
            yield tuple(t[idx] for t in data)

    def _while_all_have_batches(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        iterator = iter(batches)
        while True:
            batch = next(iterator, None)
            if not self.context.all_true(batch is not None):
                return
            yield batch

    # --- steps -----------------------------------------------------------------------------------------
    def _wrapper(self, step: Step) -> DistributedDataParallel:
        if id(step) not in self._wrappers:
            device_ids = [self.context.device] if self.context.device.type == "cuda" else None
            self._wrappers[id(step)] = DistributedDataParallel(_StepModule(step), device_ids=device_ids)
        return self._wrappers[id(step)]

    def _optimize(self, step: Step, optimizer: torch.optim.Optimizer, batch: Batch) -> LossTerms | None:
        """As the single-process step, with the loss through the step's DDP wrapper (gradients averaged over
        the ranks during backward, which always runs so that the ranks' reductions pair up); a non-finite loss
        or gradient norm on any rank skips the update on every rank."""
        terms = self._wrapper(step)(*batch)
        total = step.total(terms)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        norm = torch.nn.utils.clip_grad_norm_(step.parameters, self.config.clip_norm)
        if not self.context.all_true(bool(torch.isfinite(total)) and bool(torch.isfinite(norm))):
            optimizer.zero_grad(set_to_none=True)
            return None
        optimizer.step()
        return {**{k: v.detach() for k, v in terms.items()}, f"{step.name}.{TOTAL}": total.detach()}

    def _run_phase(self, plan, phase_index: int, phase: Phase, state: dict | None) -> None:
        self._wrappers.clear()  # a phase's wrappers hold hooks on its parameters: drop them with the phase
        try:
            super()._run_phase(plan, phase_index, phase, state)
        finally:
            self._wrappers.clear()

    # --- agreement across ranks -----------------------------------------------------------------------
    def _summarize(self, totals: _Totals, steps: list[Step]) -> dict:
        """The losses of all ranks' events: the ranks' sums and counts added in rank order."""
        merged = _Totals()
        for sums, counts in self.context.gather((totals.sums, totals.counts)):
            for name, value in sums.items():
                merged.sums[name] = merged.sums.get(name, 0.0) + value
                merged.counts[name] = merged.counts.get(name, 0) + counts[name]
        return Trainer._summarize(merged, steps)

    def _decide_done(self, done: bool) -> bool:
        return bool(self.context.from_main(done))

    def _save_checkpoint(self, state: dict) -> None:
        if self.context.is_main:
            super()._save_checkpoint(state)
