"""Log-likelihood of N iid observed events as a function of theta, batched over many theta at once.

    log L(theta) = sum_{i=1}^N log p(x_i | theta)

``ModelLikelihood`` evaluates a trained flow. When theta conditions only the inner flow of an M-flow
(``model.supports_cached_likelihood``), the outer flow's encoding u'_i = f(x_i)_{1..n} and every
theta-independent term c_i are computed once ("cached"), and each call only runs the inner flow:

    log L(theta) = sum_i latent_log_prob(u'_i, theta) + sum_i c_i.

Models that also offer ``latent_summary`` / ``summary_log_prob`` (the M-flow family and ensembles of it) move the
inner density's theta-free work into the cache as well: s_i, c'_i = latent_summary(u'_i) once, then
log L(theta) = sum_i summary_log_prob(s_i, theta) + sum_i (c_i + c'_i). For a morphing inner density that is one
quadratic form per event and theta (mflow_sbi.flows.morphing); for a flow inner density s_i = u'_i, the same work.

Otherwise every call re-encodes the events through ``model.log_prob``. For K parameter points all K x N
(theta, event) rows go through the network in batched calls of at most ``chunk_size`` rows, so memory stays
bounded. Sums are accumulated in float64.

Speed (same function): the stacks run with the fused kernels (``kernels="fused"``, mflow_sbi.flows.fused:
mask-free splines, the same values to float rounding), and on the CPU in chunks of ``CPU_CHUNK_SIZE`` rows,
whose tensors stay in the processor's cache. Measured on the polynomial-surface M-flow (one thread, batches of
32,000 rows, medians of 3): 15.7 us per row with nflows' kernels in 65,536-row chunks, 13.5 fused in
65,536-row chunks, 9.3 fused in 4,096-row chunks, 10.8 in 16,384 and 11.5 in 1,024.

``SimulatorLikelihood`` does the same with a simulator's exact likelihood, for reference posteriors.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

import numpy as np
import torch

from mflow_sbi.errors import InputError
from mflow_sbi.flows.architecture import FLOW_KERNELS
from mflow_sbi.flows.base import flow_kernels
from mflow_sbi.io import array_fingerprint
from mflow_sbi.threads import torch_threads

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 65536  # rows per network call on an accelerator, and of the simulator's likelihood
CPU_CHUNK_SIZE = 4096  # rows per network call on the CPU (module docstring)
# From this many rows per call on, threads="auto" uses every core (measured in benchmarks/bench_scaling.py).
PARALLEL_ROWS = 131072


class LikelihoodModel(Protocol):
    """What ``ModelLikelihood`` needs from a trained conditional density model (see mflow_sbi.flows)."""

    data_dim: int
    parameter_dim: int
    supports_cached_likelihood: bool

    def log_prob(self, x: torch.Tensor, theta: torch.Tensor, mode: str | None = None) -> torch.Tensor: ...

    def cache_observed(self, x: torch.Tensor, mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def latent_log_prob(self, u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor: ...


def check_observed(x: np.ndarray, data_dim: int) -> np.ndarray:
    """Validate observed events: a finite float64 array of shape (N >= 1, data_dim)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"observed data must have shape (N, {data_dim}), got {x.shape}")
    if x.shape[0] == 0:
        raise InputError("observed data holds zero events")
    if x.shape[1] != data_dim:
        raise InputError(f"observed events have dimension {x.shape[1]}, the model expects {data_dim}")
    bad = ~np.all(np.isfinite(x), axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(f"observed data has NaN or inf in {rows.size} event(s), e.g. rows {rows[:5].tolist()}")
    return x


def observed_fingerprint(x: np.ndarray) -> str:
    """SHA-256 of the observed events (float64, C order) with their shape, to tie a posterior to its data."""
    return array_fingerprint(x)


def _check_theta(theta: np.ndarray, parameter_dim: int) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[1] != parameter_dim:
        raise InputError(f"theta must have shape (K, {parameter_dim}), got {theta.shape}")
    return theta


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


class ModelLikelihood:
    """Callable theta (K, p) float64 -> (K,) float64 summed log-likelihood of the observed events.

    ``cache``: "auto" (use the cached encoding when the model supports it), True (require it) or False
    (always re-encode). ``mode`` is passed to the model's density (None: its default). ``threads``: torch
    intra-op threads during evaluation: an integer (default 1, fastest for MCMC-sized batches, and on a
    shared machine also for large ones: benchmarks/bench_scaling.py measured 2 threads 3.4x slower at N = 10^4
    under load); "auto" uses one thread for calls of fewer than ``PARALLEL_ROWS`` (theta, event) rows and every
    core for larger calls; None leaves torch's setting. ``chunk_size``: rows per network call (None:
    ``CPU_CHUNK_SIZE`` on the CPU, ``DEFAULT_CHUNK_SIZE`` on an accelerator). ``kernels``: how the model's
    stacks are evaluated during the likelihood's calls ("fused", the default, or "nflows"; the model's own
    setting is restored after each call).
    """

    def __init__(
        self,
        model: LikelihoodModel,
        x_observed: np.ndarray,
        cache: bool | str = "auto",
        chunk_size: int | None = None,
        mode: str | None = None,
        threads: int | str | None = 1,
        kernels: str = "fused",
    ):
        if cache not in ("auto", True, False):
            raise InputError(f"cache must be 'auto', True or False, got {cache!r}")
        if kernels not in FLOW_KERNELS:
            raise InputError(f"kernels must be one of {FLOW_KERNELS}, got {kernels!r}")
        device = _model_device(model)
        if chunk_size is None:
            chunk_size = CPU_CHUNK_SIZE if device.type == "cpu" else DEFAULT_CHUNK_SIZE
        if int(chunk_size) < 1:
            raise InputError(f"chunk_size must be positive, got {chunk_size}")
        if not (threads is None or threads == "auto" or (isinstance(threads, int) and threads >= 0)):
            raise InputError(f"threads must be 'auto', a count >= 0 or None, got {threads!r}")
        supported = bool(getattr(model, "supports_cached_likelihood", False))
        if cache is True and not supported:
            raise InputError("this model cannot cache the observed encoding (theta conditions its outer flow)")
        self.model = model
        self.model.eval()
        self.parameter_dim = int(model.parameter_dim)
        self.x_observed = check_observed(x_observed, int(model.data_dim))
        self.n_events = self.x_observed.shape[0]
        self.chunk_size = int(chunk_size)
        self.mode = mode
        self.threads = threads
        self.kernels = kernels
        self.cached = supported if cache == "auto" else bool(cache)
        self.fingerprint = observed_fingerprint(self.x_observed)
        self.device = device
        self._x = torch.as_tensor(self.x_observed, dtype=torch.float32, device=self.device)
        self.n_nonfinite = 0
        self.summarized = False
        if self.cached:
            with torch.inference_mode(), torch_threads(self.threads_for(self.n_events)), flow_kernels(model, kernels):
                parts = [model.cache_observed(self._x[i:i + self.chunk_size], mode=mode)
                         for i in range(0, self.n_events, self.chunk_size)]  # chunked: bounded memory at large N
                self.summarized = hasattr(model, "latent_summary")
                if self.summarized:
                    parts = [(summary, const + extra) for (u, const) in parts
                             for summary, extra in [model.latent_summary(u)]]
            self._u = torch.cat([u for u, _ in parts])
            self._const = float(sum(const.double().sum() for _, const in parts))

    @property
    def metadata(self) -> dict:
        """Recorded with a posterior: the observed data's fingerprint, their number, whether encoding was cached."""
        return {"observed_fingerprint": self.fingerprint, "n_events": self.n_events, "cached": self.cached}

    def _rows(self, x_rows: torch.Tensor, theta_rows: torch.Tensor) -> torch.Tensor:
        if self.cached:
            if self.summarized:
                return self.model.summary_log_prob(x_rows, theta_rows)
            return self.model.latent_log_prob(x_rows, theta_rows)
        return self.model.log_prob(x_rows, theta_rows, mode=self.mode)

    def threads_for(self, rows: int) -> int | None:
        """The torch thread count for a call of ``rows`` rows (see ``threads``)."""
        if self.threads != "auto":
            return self.threads
        return 1 if rows < PARALLEL_ROWS else os.cpu_count() or 1

    @property
    def events(self) -> torch.Tensor:
        """The rows the network sees per call: the cached encodings u'_i (their latent summaries s_i when the model
        has them), or the events x_i themselves."""
        return self._u if self.cached else self._x

    def finish(self, total: np.ndarray) -> np.ndarray:
        """Summed network values (K,) -> log L: plus the cached constant, NaN/+inf counted and set to -inf."""
        result = total + self._const if self.cached else total
        nonfinite = np.isnan(result) | (result == np.inf)
        if nonfinite.any():
            self.n_nonfinite += int(nonfinite.sum())
            log.warning("model log-likelihood is NaN/+inf at %d parameter point(s); treated as -inf",
                        int(nonfinite.sum()))
            result = np.where(nonfinite, -np.inf, result)
        return result

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        return LikelihoodBatch([self])([(0, theta)])[0]


def summed_rows(rows, events: torch.Tensor, owner: torch.Tensor, theta: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """sum_i rows(events[owner[t], i], theta[t]) for every t, in float64: shape (T,).

    ``events`` (J, N, dim) holds J data sets of N events, ``theta`` (T, p) the parameter points and ``owner``
    (T,) the data set of each. The T x N rows go through ``rows`` in blocks of whole parameter points (and,
    when N alone exceeds ``chunk_size``, of events), at most ``chunk_size`` rows at a time, so memory stays
    bounded and every point's sum is taken in the same order whatever else is in the batch.
    """
    n_points, n_events = theta.shape[0], events.shape[1]
    event_block = min(n_events, chunk_size)
    point_block = max(1, chunk_size // n_events)
    total = torch.zeros(n_points, dtype=torch.float64, device=theta.device)
    for t0 in range(0, n_points, point_block):
        block_theta, block_owner = theta[t0:t0 + point_block], owner[t0:t0 + point_block]
        b = block_theta.shape[0]
        for e0 in range(0, n_events, event_block):
            block_events = events[block_owner, e0:e0 + event_block]
            e = block_events.shape[1]
            values = rows(block_events.reshape(b * e, -1), block_theta.repeat_interleave(e, dim=0))
            total[t0:t0 + b] += values.view(b, e).double().sum(dim=1)
    return total


class LikelihoodBatch:
    """Many :class:`ModelLikelihood` of one model (same cache setting, mode, chunk size and threads), e.g. the
    K data sets of a calibration, evaluated together: ``batch([(j, theta_j), ...])`` returns
    ``[likelihoods[j](theta_j), ...]`` from one pass of all sum_j K_j x N rows through the network (chunked).
    All data sets must hold the same number of events.
    """

    def __init__(self, likelihoods):
        self.likelihoods = list(likelihoods)
        if not self.likelihoods:
            raise InputError("a likelihood batch needs at least one likelihood")
        first = self.likelihoods[0]
        if not _can_batch(self.likelihoods):
            raise InputError("batched likelihoods must share the model, cache setting, mode, chunk size, threads "
                             "and number of events")
        self.parameter_dim = first.parameter_dim
        self._first = first
        self._events = torch.stack([lik.events for lik in self.likelihoods]) if len(self.likelihoods) > 1 \
            else first.events[None]

    def __call__(self, requests) -> list[np.ndarray]:
        requests = [(int(j), _check_theta(theta, self.parameter_dim)) for j, theta in requests]
        sizes = [theta.shape[0] for _, theta in requests]
        first = self._first
        theta = torch.as_tensor(np.concatenate([theta for _, theta in requests]), dtype=torch.float32,
                                device=first.device)
        owner = torch.as_tensor(np.repeat([j for j, _ in requests], sizes), device=first.device)
        with (torch.inference_mode(), torch_threads(first.threads_for(theta.shape[0] * first.n_events)),
              flow_kernels(first.model, first.kernels)):
            total = summed_rows(first._rows, self._events, owner, theta, first.chunk_size).cpu().numpy()
        parts = np.split(total, np.cumsum(sizes)[:-1])
        return [self.likelihoods[j].finish(part) for (j, _), part in zip(requests, parts, strict=True)]


def _can_batch(likelihoods) -> bool:
    return all(isinstance(lik, ModelLikelihood) for lik in likelihoods) and len(
        {(id(lik.model), lik.cached, lik.mode, lik.chunk_size, lik.threads, lik.kernels, lik.n_events)
         for lik in likelihoods}) == 1


def batch_evaluator(likelihoods):
    """A function ``[(j, theta_j), ...] -> [likelihoods[j](theta_j), ...]``: one :class:`LikelihoodBatch` when the
    likelihoods are :class:`ModelLikelihood` that can share one, else each request evaluated on its own."""
    likelihoods = list(likelihoods)
    if likelihoods and _can_batch(likelihoods):
        return LikelihoodBatch(likelihoods)
    return lambda requests: [likelihoods[j](theta) for j, theta in requests]


class SimulatorLikelihood:
    """Exact summed log-likelihood from ``simulator.log_likelihood(x, theta)``, for reference posteriors.

    All K x N (theta, event) rows go to the simulator in calls of at most ``chunk_size`` rows, with theta
    given per row (shape (rows, p), as ``simulators.base.broadcast_theta`` accepts). The simulator's
    likelihood may omit a theta-independent constant; posteriors are unaffected.
    """

    def __init__(self, simulator, x_observed: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.simulator = simulator
        self.parameter_dim = len(simulator.parameter_names)
        self.x_observed = check_observed(x_observed, int(simulator.data_dim))
        self.n_events = self.x_observed.shape[0]
        self.chunk_size = int(chunk_size)
        self.fingerprint = observed_fingerprint(self.x_observed)

    @property
    def metadata(self) -> dict:
        """Recorded with a posterior: the observed data's fingerprint and their number."""
        return {"observed_fingerprint": self.fingerprint, "n_events": self.n_events}

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = _check_theta(theta, self.parameter_dim)
        total = np.zeros(theta.shape[0])
        n_rows = theta.shape[0] * self.n_events
        for start in range(0, n_rows, self.chunk_size):
            rows = np.arange(start, min(start + self.chunk_size, n_rows))
            theta_index = rows // self.n_events
            values = self.simulator.log_likelihood(self.x_observed[rows % self.n_events], theta[theta_index])
            np.add.at(total, theta_index, values)
        return np.where(np.isnan(total), -np.inf, total)


class EnsembleLikelihood:
    """Mean of the summed log-likelihoods of K models (an ensemble of K inner flows on the same manifold, or of
    K whole models): log L(theta) = (1/K) sum_k log L_k(theta), i.e. the geometric mean of the members'
    likelihoods. ``spread(theta)`` gives the members' standard deviation of log L at theta, an uncertainty of
    the learned log posterior. Members are callables like :class:`ModelLikelihood` on the same observed data.
    """

    def __init__(self, members):
        self.members = list(members)
        if not self.members:
            raise InputError("an ensemble needs at least one member likelihood")
        dims = {int(m.parameter_dim) for m in self.members}
        prints = {getattr(m, "fingerprint", None) for m in self.members}
        if len(dims) != 1 or len(prints) != 1:
            raise InputError("ensemble members must share the parameter dimension and the observed data")
        self.parameter_dim = dims.pop()
        self.fingerprint = prints.pop()

    def _values(self, theta: np.ndarray) -> np.ndarray:
        return np.stack([member(theta) for member in self.members])

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        return self._values(theta).mean(axis=0)

    def spread(self, theta: np.ndarray) -> np.ndarray:
        values = self._values(theta)
        return values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
