"""Speed switches of a training run (``[training] flow_kernels`` and ``compile``); neither changes the math.

- ``flow_kernels``: how the model's transform stacks are evaluated while training (see
  ``mflow_sbi.flows.fused``): "fused" (the default: mask-free splines, log-dets only where a loss needs
  them, and the simultaneous step's reconstruction taken from its Jacobian pass) or "nflows" (nflows'
  own transforms and separate reconstruction and density passes in the simultaneous step: the code path
  of earlier versions, kept for comparisons). The model's setting is restored afterwards, so inference
  runs as before.
- ``compile``: every step's loss function goes through ``torch.compile`` (inductor, dynamic batch size).
  When compilation fails (no C++ compiler, an unsupported operation; the first training batch also runs
  its backward pass inside the guard), a warning is logged and the step runs eagerly for the rest of the
  run. Compiling takes tens of seconds to minutes on a small machine (a one-time cost; the inductor cache
  on disk shortens later runs) and pays off for long runs. With dropout the compiled
  kernels draw other random masks than eager code.
"""

from __future__ import annotations

import logging

import torch

from mflow_sbi.training.trainer import Batch, LossFn, LossTerms, Phase, Step

log = logging.getLogger(__name__)


class CompiledLoss:
    """A step's loss through ``torch.compile``; when compiling fails (on any call: training and validation
    compile separate graphs; the first training call also runs the backward pass, which is compiled on its
    own), a warning is logged and the eager function is used from then on."""

    def __init__(self, loss: LossFn, step: Step):
        self.eager = loss
        self.name = step.name
        self.parameters = list(step.parameters)
        self.compiled: LossFn | None = torch.compile(loss, dynamic=True)
        self.backward_checked = False

    def __call__(self, batch: Batch) -> LossTerms:
        if self.compiled is None:
            return self.eager(batch)
        try:
            if not self.backward_checked and torch.is_grad_enabled():
                # one discarded forward and backward pass, so that compiling the backward also happens here
                total = sum(value.sum() for value in self.compiled(batch).values())
                torch.autograd.grad(total, self.parameters, allow_unused=True)
                self.backward_checked = True
            return self.compiled(batch)
        except Exception as err:  # noqa: BLE001 - any failure of the compiler means: run eagerly
            lines = str(err).strip().splitlines()
            log.warning("step %s: torch.compile failed (%s: %s); running this step eagerly", self.name,
                        type(err).__name__, (lines[0] if lines else "")[:200])
            self.compiled = None
            return self.eager(batch)


def compile_steps(phases: list[Phase]) -> list[Phase]:
    """The phases with every step's loss wrapped in :class:`CompiledLoss` (the phases are modified in place)."""
    for phase in phases:
        for step in phase.steps:
            step.loss = CompiledLoss(step.loss, step)
    return phases
