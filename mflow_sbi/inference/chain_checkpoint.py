"""Checkpoints of a running emcee chain, so that a killed MCMC run resumes where it stopped.

Every ``every`` steps the chain so far (steps, walkers, p), its log-probabilities, the walkers' acceptance
counts and the state of emcee's random generator (MT19937 key, position and cached Gaussian) are written to
one ``.npz`` file, atomically. Resuming puts them back into emcee's in-memory backend and continues from the
last saved walker positions with the saved generator state. emcee's moves draw every random number from that
generator, so the resumed chain is the uninterrupted chain, step for step.

The file also records the run's ``key``: the sampler settings and whatever identifies the target (e.g. the
model and a fingerprint of the observed events). Resuming under another key is an error that names the
checkpoint and the keys that differ, never a silent mix of two runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import emcee
import numpy as np

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.io import read_npz, save_npz

CHECKPOINT_EVERY = 500
FIELDS = ("chain", "log_prob", "accepted", "key", "rs_key", "rs_pos", "rs_has_gauss", "rs_cached_gaussian")


def _random_state_arrays(state: tuple) -> dict[str, np.ndarray]:
    name, key, pos, has_gauss, cached = state
    if name != "MT19937":
        raise InputError(f"cannot checkpoint a {name} generator state (expected MT19937)")
    return {"rs_key": np.asarray(key, dtype=np.uint32), "rs_pos": np.asarray(pos, dtype=np.int64),
            "rs_has_gauss": np.asarray(has_gauss, dtype=np.int64), "rs_cached_gaussian": np.asarray(cached)}


def _random_state_tuple(fields: dict[str, np.ndarray]) -> tuple:
    return ("MT19937", fields["rs_key"].astype(np.uint32), int(fields["rs_pos"]), int(fields["rs_has_gauss"]),
            float(fields["rs_cached_gaussian"]))


class ChainCheckpoint:
    """The checkpoint file ``path`` of one MCMC run identified by ``key`` (a JSON-serializable dict), written
    every ``every`` steps."""

    def __init__(self, path: str | os.PathLike, key: dict, every: int = CHECKPOINT_EVERY) -> None:
        if every < 1:
            raise InputError(f"checkpoint interval must be >= 1 step, got {every}")
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))
        self.every = int(every)

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def save(self, sampler: emcee.EnsembleSampler) -> Path:
        """Write the chain of ``sampler`` (in-memory backend) up to its current iteration."""
        backend = sampler.backend
        done = backend.iteration
        return save_npz(self.path, chain=backend.chain[:done], log_prob=backend.log_prob[:done],
                        accepted=backend.accepted, key=np.array(json.dumps(self.key, sort_keys=True)),
                        **_random_state_arrays(backend.random_state))

    def restore(self, n_walkers: int, dim: int) -> tuple[emcee.backends.Backend, emcee.State] | None:
        """(backend filled with the saved chain, state to continue from), or None without a checkpoint file."""
        if not self.path.is_file():
            return None
        fields = read_npz(self.path)
        missing = [name for name in FIELDS if name not in fields]
        if missing:
            raise DataFileError(f"{self.path} is not an MCMC checkpoint: it lacks {missing}")
        saved = json.loads(str(fields["key"]))
        if saved != self.key:
            differ = sorted(k for k in set(saved) | set(self.key) if saved.get(k) != self.key.get(k))
            raise InputError(f"{self.path} is the checkpoint of another MCMC run (different {differ}: "
                             f"{ {k: saved.get(k) for k in differ} } there, { {k: self.key.get(k) for k in differ} } "
                             "now); delete it or start afresh")
        chain, log_prob = fields["chain"], fields["log_prob"]
        if chain.ndim != 3 or chain.shape[1:] != (n_walkers, dim) or log_prob.shape != chain.shape[:2] or not len(chain):
            raise DataFileError(f"{self.path} holds a chain of shape {chain.shape}, expected (steps, {n_walkers}, {dim})")
        backend = emcee.backends.Backend()
        backend.reset(n_walkers, dim)
        backend.grow(len(chain), None)
        backend.chain[:] = chain
        backend.log_prob[:] = log_prob
        backend.accepted = fields["accepted"].astype(float)
        backend.iteration = len(chain)
        backend.random_state = _random_state_tuple(fields)
        return backend, emcee.State(chain[-1], log_prob=log_prob[-1], random_state=backend.random_state)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
