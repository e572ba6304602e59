"""In-memory training tensors for ``train_model``.

Events with NaN/inf in x, theta, t_xz or the weights w are dropped with a logged warning naming their rows; a
data set without a single finite event is an error. The model's scalers are fitted on the remaining events
(weighted, with weights), the data are standardized once, and all batches are slices of these tensors (no
per-item dataset objects). Weights, normalized to mean 1, are the last tensor of every batch.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from mflow_sbi.errors import ConfigError, InputError
from mflow_sbi.training.settings import TrainingConfig

log = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor


def finite_rows(named: dict[str, torch.Tensor]) -> torch.Tensor:
    """Boolean mask of the rows that are finite in every given 2-D tensor; raises if none is."""
    rows = next(iter(named.values())).shape[0]
    keep = torch.ones(rows, dtype=torch.bool)
    for name, values in named.items():
        if values.ndim != 2 or values.shape[0] != rows:
            raise InputError(f"{name} must have shape ({rows}, k) like the other training arrays, "
                             f"got {tuple(values.shape)}")
        keep &= torch.isfinite(values).all(dim=1)
    if not bool(keep.any()):
        raise InputError(
            f"all {rows} training events contain NaN or inf (in {', '.join(named)}); there is nothing to train on"
        )
    dropped = torch.nonzero(~keep).flatten().tolist()
    if dropped:
        log.warning("dropping %d of %d training events with NaN or inf values (rows %s%s)", len(dropped), rows,
                    dropped[:10], " ..." if len(dropped) > 10 else "")
    return keep


def effective_sample_size(w: ArrayLike) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 (N for equal weights; smaller for unequal or negative)."""
    w = np.asarray(w, dtype=np.float64)
    square = float((w**2).sum())
    return float(w.sum()) ** 2 / square if square > 0 else 0.0


def normalized_weights(w: torch.Tensor) -> torch.Tensor:
    """w / mean(w) (mean 1), float32, shape (N, 1) -> (N,); the sum must be positive."""
    w = w.reshape(-1).to(torch.float64)
    total = float(w.sum())
    if not total > 0:
        raise InputError(f"the training weights sum to {total:.6g}; a positive sum is needed")
    return (w * (len(w) / total)).to(torch.float32)


def validation_rows(x: ArrayLike, theta: ArrayLike, t_xz: ArrayLike | None, config: TrainingConfig,
                    w: ArrayLike | None = None) -> np.ndarray:
    """Indices into (x, theta) of the events that :func:`train_model` holds out for validation: the finite rows
    (as :func:`prepare_tensors` keeps them), split as the trainer splits them (``split_indices``)."""
    from mflow_sbi.training.trainer import split_indices

    arrays = [np.asarray(x), np.asarray(theta)] + ([np.asarray(t_xz)] if config.score_weight > 0 else [])
    arrays += [] if w is None else [np.asarray(w)]
    kept = np.flatnonzero(np.logical_and.reduce([np.isfinite(a).reshape(len(a), -1).all(axis=1) for a in arrays]))
    _, held_out = split_indices(len(kept), config.validation_fraction, config.seed)
    return kept[held_out.numpy()]


def prepare_tensors(model, x: ArrayLike, theta: ArrayLike, t_xz: ArrayLike | None, config: TrainingConfig,
                    w: ArrayLike | None = None):
    """Drop non-finite events, fit the model's scalers (weighted with ``w``), and return the standardized
    training tensors (x_std, theta_std[, t_xz][, w / mean(w)])."""
    if config.score_weight > 0 and t_xz is None:
        raise ConfigError("SCANDAL (training.scandal > 0) needs the joint score: "
                          "the training data have no 't_xz' field")
    named = {"x": torch.as_tensor(x).to(torch.float32), "theta": torch.as_tensor(theta).to(torch.float32)}
    if config.score_weight > 0:
        named["t_xz"] = torch.as_tensor(t_xz).to(torch.float32)
    if w is not None:
        named["w"] = torch.as_tensor(w).to(torch.float64).reshape(-1, 1)
    if named["x"].ndim != 2:
        raise InputError(f"x must have shape (N, {model.data_dim}), got {tuple(named['x'].shape)}")
    keep = finite_rows(named)
    x_t, theta_t = model.check_inputs(named["x"][keep], named["theta"][keep])
    if x_t.shape[0] < 2:
        raise InputError(f"need at least 2 training events, got {x_t.shape[0]}")
    weights = None if w is None else normalized_weights(named["w"][keep])
    model.fit_scalers(x_t, theta_t, weights)
    with torch.no_grad():
        data = (model.x_scaler(x_t), model.theta_scaler(theta_t))
    if config.score_weight > 0:
        score = named["t_xz"][keep].to(model.device)
        if score.shape[1] != model.parameter_dim:
            raise InputError(f"t_xz must have shape (N, {model.parameter_dim}) like theta, got {tuple(score.shape)}")
        data = (*data, score)
    if weights is not None:
        log.info("training on %d weighted events: effective sample size %.1f, %d negative weight(s)", len(weights),
                 effective_sample_size(weights.numpy()), int((weights < 0).sum()))
        data = (*data, weights)
    return data
