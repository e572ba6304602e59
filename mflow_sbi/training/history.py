"""Learning curves: per-epoch records, saved as JSON and as a flat CSV table.

A record is ``{"phase": str, "epoch": int, "train": {name: loss}, "val": {name: loss}, "skipped": int}``;
the names are the loss terms of the phase's steps (e.g. "reconstruction", "nll", "score") plus "loss", the
weighted objective that early stopping watches. Non-finite values are written as JSON null / empty CSV cells.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from mflow_sbi.errors import DataFileError
from mflow_sbi.io import save_json, save_text
from mflow_sbi.layout import HISTORY_CSV, HISTORY_JSON

SPLITS = ("train", "val")


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass
class History:
    """The per-epoch records of a training run, in order."""

    records: list[dict] = field(default_factory=list)

    def to_list(self) -> list[dict]:
        """JSON-ready records (non-finite losses become None)."""
        return [
            {**record, **{split: {k: _finite_or_none(v) for k, v in record.get(split, {}).items()} for split in SPLITS}}
            for record in self.records
        ]

    def loss_names(self) -> list[str]:
        """All loss names in order of first appearance."""
        names: dict[str, None] = {}
        for record in self.records:
            for split in SPLITS:
                names.update(dict.fromkeys(record.get(split, {})))
        return list(names)

    def to_csv(self) -> str:
        """One row per epoch: phase, epoch, skipped, then train_NAME and val_NAME for every loss name."""
        names = self.loss_names()
        header = ["phase", "epoch", "skipped"] + [f"{split}_{name}" for split in SPLITS for name in names]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for record in self.to_list():
            values = [record.get(split, {}).get(name) for split in SPLITS for name in names]
            writer.writerow([record["phase"], record["epoch"], record.get("skipped", 0)]
                            + ["" if v is None else repr(v) for v in values])
        return buffer.getvalue()

    def save(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write history.json and history.csv into ``directory`` (atomically); returns both paths."""
        directory = Path(directory)
        return save_json(directory / HISTORY_JSON, self.to_list()), save_text(directory / HISTORY_CSV, self.to_csv())


def load_history(path: str | os.PathLike) -> History:
    """Read a history.json (or the one inside a model directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY_JSON
    if not path.is_file():
        raise DataFileError(f"{path}: no such file (a trained model directory holds {HISTORY_JSON})")
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: invalid JSON ({err})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "phase" in r and "epoch" in r for r in records):
        raise DataFileError(f"{path}: expected a list of per-epoch records with 'phase' and 'epoch'")
    return History(records)
