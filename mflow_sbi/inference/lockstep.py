"""Run several MCMC jobs in lockstep and gather their likelihood calls into one batched evaluation.

Calibration samples K posteriors, each with its own emcee ensemble (and mode-finding start). Run one after
another, every likelihood call carries only n_walkers / 2 x N rows and costs mostly fixed per-call overhead.
Here each job runs unchanged (its own :func:`~mflow_sbi.inference.sampler.sample_potential`, its own seeds)
in a worker thread, but its likelihood is a stand-in that posts theta to the coordinator and waits. Once
every unfinished job has posted (each job makes one call at a time), the coordinator evaluates all posted
calls together (``evaluate``, e.g. a :class:`~mflow_sbi.inference.likelihood.LikelihoodBatch`: one pass of
sum_k K_k x N rows, chunked) and hands each job its values. A job therefore sees exactly the values its own
likelihood would return, and draws exactly the random numbers it would alone: the posteriors are those of K
separate runs with the same seeds. "Exactly" holds to the last bit when a row's value does not depend on the
shape of the batch it is computed in (the analytic test model); an nflows network in float32 can differ in
the last bit (measured: 2.4e-7 in a log-likelihood of ~-30 when a 3-point call shares its batch), and once
such a difference flips one accept decision the chain continues differently: another sample of the same
posterior. The batch's composition is deterministic (every unfinished job posts exactly one call per round;
calls are ordered by job), so a rerun with the same lockstep blocks gives the same numbers bit for bit.

Only one thread computes at a time (the workers wait while the coordinator evaluates), so the GIL costs
nothing and torch keeps the thread count the likelihood asks for.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from mflow_sbi.errors import InputError

Result = TypeVar("Result")
Evaluate = Callable[[list[tuple[int, np.ndarray]]], list[np.ndarray]]

_CALL, _DONE = "call", "done"


class DeferredLikelihood:
    """Job ``index``'s stand-in for ``likelihood``: same ``parameter_dim`` and ``metadata``, values computed by
    the coordinator in a batch with the other jobs' calls."""

    def __init__(self, index: int, likelihood: Any, requests: queue.SimpleQueue):
        self.index = index
        self.likelihood = likelihood
        self.parameter_dim = likelihood.parameter_dim
        self._requests = requests
        self._reply: queue.SimpleQueue = queue.SimpleQueue()

    @property
    def metadata(self) -> dict:
        return dict(getattr(self.likelihood, "metadata", {}))

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        self._requests.put((_CALL, self.index, np.asarray(theta, dtype=np.float64)))
        value = self._reply.get()
        if isinstance(value, BaseException):
            raise value
        return value


def run_lockstep(likelihoods: Sequence[Any], evaluate: Evaluate, jobs: Sequence[Callable[[Any], Result]]) -> list[Result]:
    """Run ``jobs[k](deferred likelihood k)`` for all k in lockstep; returns their results in order.

    ``evaluate([(k, theta_k), ...])`` must return ``[likelihoods[k](theta_k), ...]``. An exception raised by a job
    is re-raised (the first by job order) after all jobs have ended. A single job runs directly in this thread
    with its own likelihood (nothing to batch it with).
    """
    if len(likelihoods) != len(jobs):
        raise InputError(f"need one job per likelihood, got {len(jobs)} jobs and {len(likelihoods)} likelihoods")
    if len(jobs) == 1:
        return [jobs[0](likelihoods[0])]
    requests: queue.SimpleQueue = queue.SimpleQueue()
    deferred = [DeferredLikelihood(k, likelihood, requests) for k, likelihood in enumerate(likelihoods)]
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException | None] = [None] * len(jobs)

    def work(k: int) -> None:
        try:
            results[k] = jobs[k](deferred[k])
        except BaseException as err:  # noqa: BLE001 - handed to the caller below
            errors[k] = err
        finally:
            requests.put((_DONE, k, None))

    threads = [threading.Thread(target=work, args=(k,), daemon=True, name=f"lockstep-{k}") for k in range(len(jobs))]
    for thread in threads:
        thread.start()
    running = len(jobs)
    while running:
        calls = []
        for _ in range(running):  # every running job posts exactly one message before it waits or ends
            kind, k, theta = requests.get()
            if kind == _DONE:
                running -= 1
            else:
                calls.append((k, theta))
        if not calls:
            continue
        calls.sort(key=lambda call: call[0])
        try:
            values = evaluate(calls)
        except Exception as err:  # noqa: BLE001 - every waiting job raises it
            values = [err] * len(calls)
        for (k, _), value in zip(calls, values, strict=True):
            deferred[k]._reply.put(value)
    for thread in threads:
        thread.join()
    for err in errors:
        if err is not None:
            raise err
    return results
