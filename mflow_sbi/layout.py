"""Where the workflow writes its files: the model directory, the run directory and posterior files.

Every file name the package writes is defined here, and only here.

    MODEL_DIR/                    (``mflow-sbi train --out``, ``run``'s ``model/``)
        config.toml               model type, architecture, parameter names, prior
        weights.pt                the state dict
        versions.json             package versions it was trained with
        manifest.json             SHA-256 of config.toml and weights.pt, checked on load
        training.toml             the [training] options of the run
        training_data.json        what it was trained on: simulator, events, parameter names, fingerprint
        event_format.toml         for ROOT training data: the event format (infer reads ROOT input with it)
        ood_reference.npz         M-flows: held-out events' distance to the manifold and latent log-density
        history.json, history.csv per-epoch losses
        learning_curves.png
        checkpoint.pt             for ``resume``

    ENSEMBLE_DIR/                 (``[training] ensemble = K``; :mod:`mflow_sbi.flows.ensemble`)
        config.toml               type "ensemble", the member directories, parameter names, prior
        versions.json, manifest.json
        training.toml, training_data.json, event_format.toml   as in a MODEL_DIR
        member_00/, member_01/    K complete MODEL_DIRs (:func:`member_dir_name`)

    RUN_DIR/                      (``mflow-sbi run --out``)
        config.toml               the effective configuration (defaults, file and --set resolved):
                                  ``mflow-sbi run RUN_DIR/config.toml`` reproduces the run
        train.npz, observed.npz   the simulated data sets (train_00000.npz, ... and train_chunks.json
                                  with [simulation] chunk_size)
        model/                    a MODEL_DIR
        posterior.npz             the learned posterior, with posterior_summary.json beside it
        summary.json              the same summary under its 0.1 name (documented in the README)
        reference_posterior.npz   the exact-likelihood posterior, when the simulator has one
        corner.png

A posterior written to ``P.npz`` has its JSON summary in ``P_summary.json`` (:func:`summary_path`) and, when the
misspecification check ran, the per-event OOD scores in ``P_ood.npz`` (:func:`ood_scores_path`); while its
MCMC runs, the chain is checkpointed to ``P_mcmc_checkpoint.npz`` (:func:`mcmc_checkpoint_path`, deleted once
``P.npz`` is written; ``--resume`` continues from it). A data set simulated in chunks to ``OUT.npz`` (or
``OUT.root``) is the files ``OUT_00000.npz``, ``OUT_00001.npz``, ... (:func:`chunk_path`) with the plan
``OUT_chunks.json`` (:func:`chunk_plan_path`) beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

# model directory
CONFIG_FILE = "config.toml"
WEIGHTS_FILE = "weights.pt"
VERSIONS_FILE = "versions.json"
MANIFEST_FILE = "manifest.json"
TRAINING_CONFIG_FILE = "training.toml"
TRAINING_DATA_RECORD_FILE = "training_data.json"
EVENT_FORMAT_FILE = "event_format.toml"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
LEARNING_CURVES_FILE = "learning_curves.png"
CHECKPOINT_FILE = "checkpoint.pt"
OOD_REFERENCE_FILE = "ood_reference.npz"  # validation events' manifold scores (inference.misspecification)
RATE_FIT_FILE = "rate_fit.json"  # quadratic rate fit (mflow_sbi.inference.rates.QuadraticRate), for rate = "fit"

# limits directory (mflow-sbi limits)
LIMITS_FILE = "limits.json"
LIMITS_GRID_FILE = "limits.npz"
LIMITS_PLOT_FILE = "limits.png"

# run directory
RUN_CONFIG_FILE = "config.toml"
TRAINING_DATA_FILE = "train.npz"
OBSERVED_DATA_FILE = "observed.npz"
MODEL_SUBDIR = "model"
POSTERIOR_FILE = "posterior.npz"
RUN_SUMMARY_FILE = "summary.json"
REFERENCE_POSTERIOR_FILE = "reference_posterior.npz"
CORNER_FILE = "corner.png"

# calibration directory
CALIBRATION_FILE = "calibration.npz"
CALIBRATION_SUMMARY_FILE = "calibration_summary.json"
CALIBRATION_CHECKPOINT_FILE = "calibration_checkpoint.npz"  # completed data sets, for calibrate --resume
CALIBRATION_TASKS_DIR = "calibration_tasks"  # calibrate --scheduler: one result file per data set, for --resume
SBC_PLOT_FILE = "sbc_ranks.png"
COVERAGE_PLOT_FILE = "coverage.png"


def member_dir_name(k: int) -> str:
    """The directory of ensemble member ``k`` inside the ensemble's model directory."""
    return f"member_{k:02d}"


def ood_scores_path(posterior: str | os.PathLike) -> Path:
    """Where the per-event OOD scores of the misspecification check go: ``<stem>_ood.npz`` beside the posterior."""
    path = Path(posterior)
    return path.with_name(f"{path.stem}_ood.npz")


def summary_path(posterior: str | os.PathLike) -> Path:
    """Where the JSON summary of a posterior written to ``posterior`` goes: ``<stem>_summary.json`` beside it."""
    path = Path(posterior)
    return path.with_name(f"{path.stem}_summary.json")


def mcmc_checkpoint_path(posterior: str | os.PathLike) -> Path:
    """The MCMC checkpoint of a posterior being written to ``posterior``: ``<stem>_mcmc_checkpoint.npz``."""
    path = Path(posterior)
    return path.with_name(f"{path.stem}_mcmc_checkpoint.npz")


CHUNK_DIGITS = 5


def chunk_path(out: str | os.PathLike, index: int) -> Path:
    """Chunk ``index`` of a data set simulated in chunks to ``out``: ``<stem>_<index:05d><suffix>`` beside it."""
    path = Path(out)
    return path.with_name(f"{path.stem}_{index:0{CHUNK_DIGITS}d}{path.suffix}")


def chunk_plan_path(out: str | os.PathLike) -> Path:
    """The plan of a data set simulated in chunks to ``out`` (what resume checks): ``<stem>_chunks.json``."""
    path = Path(out)
    return path.with_name(f"{path.stem}_chunks.json")
