"""The MCMC checkpoint of a posterior file being written by ``infer`` or ``run``.

The chain is saved every ``CHECKPOINT_EVERY`` steps to ``<posterior stem>_mcmc_checkpoint.npz``
(:func:`mflow_sbi.layout.mcmc_checkpoint_path`) under a key that identifies the target: the SHA-256 of the
model's weights (:func:`mflow_sbi.flows.weights_sha256`, an ensemble's members' too; or the model directory's
path when it holds no weights file), a fingerprint of the observed
events and the prior and rate in use. ``--resume`` continues a killed run from it only when all of these (and
the sampler settings) are the same.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mflow_sbi import layout
from mflow_sbi.inference.chain_checkpoint import CHECKPOINT_EVERY, ChainCheckpoint
from mflow_sbi.io import array_fingerprint


def posterior_checkpoint(posterior_path: str | os.PathLike, model_dir: str | os.PathLike, x_observed: np.ndarray,
                         every: int = CHECKPOINT_EVERY, **target: object) -> ChainCheckpoint:
    """The checkpoint of the MCMC run writing ``posterior_path``; ``target`` adds what else identifies the
    posterior (e.g. prior specs, the rate term), as JSON-serializable values."""
    from mflow_sbi.flows import weights_sha256

    model = weights_sha256(model_dir) or str(Path(model_dir).resolve())  # e.g. a model in memory
    key = {"model": model, "observed": array_fingerprint(np.asarray(x_observed)), **target}
    return ChainCheckpoint(layout.mcmc_checkpoint_path(posterior_path), key, every)
