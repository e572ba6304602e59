"""Training and observed data sets stored as ``.npz`` files.

Keys: ``x`` (N, d) always; ``theta`` (N, p) for training data; optional ``t_xz`` (N, p) joint score; optional
``w`` (N,) per-event weights (generator weights; finite, negative values allowed, positive sum);
``simulator`` (str), ``simulator_options`` (JSON text of the simulator's keyword arguments), ``prior`` (one
spec string per parameter), ``parameter_names`` (p strings).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mflow_sbi.errors import DataFileError
from mflow_sbi.io import read_npz, save_npz
from mflow_sbi.priors import IndependentPrior


@dataclass
class EventData:
    """Events x with (optionally) their parameters theta, joint score and metadata."""

    x: np.ndarray
    theta: np.ndarray | None = None
    t_xz: np.ndarray | None = None
    simulator: str | None = None
    prior: IndependentPrior | None = None
    parameter_names: tuple[str, ...] | None = None
    simulator_options: dict | None = None
    parameter_labels: tuple[str, ...] | None = None
    w: np.ndarray | None = None

    def save(self, path: str | os.PathLike) -> Path:
        arrays: dict[str, np.ndarray] = {"x": np.asarray(self.x, dtype=np.float64)}
        if self.theta is not None:
            arrays["theta"] = np.asarray(self.theta, dtype=np.float64)
        if self.t_xz is not None:
            arrays["t_xz"] = np.asarray(self.t_xz, dtype=np.float64)
        if self.w is not None:
            arrays["w"] = np.asarray(self.w, dtype=np.float64).reshape(-1)
        if self.simulator is not None:
            arrays["simulator"] = np.array(self.simulator)
        if self.simulator_options:
            arrays["simulator_options"] = np.array(json.dumps(self.simulator_options))
        if self.prior is not None:
            arrays["prior"] = np.array(self.prior.specs)
        if self.parameter_names is not None:
            arrays["parameter_names"] = np.array(self.parameter_names)
        if self.parameter_labels is not None:
            arrays["parameter_labels"] = np.array(self.parameter_labels)
        return save_npz(path, **arrays)


def _float_matrix(path: Path, key: str, value: np.ndarray, rows: int | None) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise DataFileError(f"{path}: field '{key}' must be a numeric 2-D array (N, dim), got shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise DataFileError(f"{path}: field '{key}' has {array.shape[0]} rows but 'x' has {rows}")
    return array.astype(np.float64)


def check_weights(w: np.ndarray, rows: int, where: str) -> np.ndarray:
    """Per-event weights as float64 (rows,): numeric, (rows,) or (rows, 1), finite, with a positive sum (negative
    weights are allowed, see docs/physics.md)."""
    array = np.asarray(w)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        raise DataFileError(f"{where}: field 'w' must be a numeric array of shape (N,), got {array.dtype} {array.shape}")
    if len(array) != rows:
        raise DataFileError(f"{where}: field 'w' has {len(array)} entries but 'x' has {rows} rows")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise DataFileError(f"{where}: field 'w' has {int((~np.isfinite(array)).sum())} NaN/inf weight(s)")
    if not array.sum() > 0:
        raise DataFileError(f"{where}: the weights in field 'w' sum to {array.sum():.6g}; a positive sum is needed")
    return array


def load_events(path: str | os.PathLike, require_theta: bool = False) -> EventData:
    """Read an ``.npz`` events file, validating field names and shapes."""
    path = Path(path)
    fields = read_npz(path)
    if "x" not in fields:
        raise DataFileError(f"{path}: missing field 'x' (events, shape (N, d)); found {sorted(fields)}")
    x = _float_matrix(path, "x", fields["x"], None)
    if x.shape[0] == 0:
        raise DataFileError(f"{path}: field 'x' holds no events")
    theta = _float_matrix(path, "theta", fields["theta"], len(x)) if "theta" in fields else None
    if require_theta and theta is None:
        raise DataFileError(f"{path}: missing field 'theta' (parameters, shape (N, p)) needed for training")
    t_xz = _float_matrix(path, "t_xz", fields["t_xz"], len(x)) if "t_xz" in fields else None
    w = check_weights(fields["w"], len(x), str(path)) if "w" in fields else None
    prior = IndependentPrior.from_specs([str(s) for s in fields["prior"]]) if "prior" in fields else None
    names = tuple(str(s) for s in fields["parameter_names"]) if "parameter_names" in fields else None
    labels = tuple(str(s) for s in fields["parameter_labels"]) if "parameter_labels" in fields else None
    simulator = str(fields["simulator"]) if "simulator" in fields else None
    options = json.loads(str(fields["simulator_options"])) if "simulator_options" in fields else None
    return EventData(x=x, theta=theta, t_xz=t_xz, simulator=simulator, prior=prior, parameter_names=names,
                     simulator_options=options, parameter_labels=labels, w=w)
