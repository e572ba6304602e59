"""In-memory training tensors for ``train_model``.

Events with NaN/inf in x, theta or t_xz are dropped with a logged warning naming their rows; a data set
without a single finite event is an error. The model's scalers are fitted on the remaining events, the data
are standardized once, and all batches are slices of these tensors (no per-item dataset objects).
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


def prepare_tensors(model, x: ArrayLike, theta: ArrayLike, t_xz: ArrayLike | None, config: TrainingConfig):
    """Drop non-finite events, fit the model's scalers, and return the standardized training tensors."""
    if config.score_weight > 0 and t_xz is None:
        raise ConfigError("SCANDAL (training.scandal > 0) needs the joint score: "
                          "the training data have no 't_xz' field")
    named = {"x": torch.as_tensor(x).to(torch.float32), "theta": torch.as_tensor(theta).to(torch.float32)}
    if config.score_weight > 0:
        named["t_xz"] = torch.as_tensor(t_xz).to(torch.float32)
    if named["x"].ndim != 2:
        raise InputError(f"x must have shape (N, {model.data_dim}), got {tuple(named['x'].shape)}")
    keep = finite_rows(named)
    x_t, theta_t = model.check_inputs(named["x"][keep], named["theta"][keep])
    if x_t.shape[0] < 2:
        raise InputError(f"need at least 2 training events, got {x_t.shape[0]}")
    model.fit_scalers(x_t, theta_t)
    with torch.no_grad():
        data = (model.x_scaler(x_t), model.theta_scaler(theta_t))
    if config.score_weight > 0:
        score = named["t_xz"][keep]
        if score.shape[1] != model.parameter_dim:
            raise InputError(f"t_xz must have shape (N, {model.parameter_dim}) like theta, got {tuple(score.shape)}")
        data = (*data, score)
    return data
