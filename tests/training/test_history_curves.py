"""Learning curves: JSON/CSV files and the PNG plot."""

from __future__ import annotations

import csv
import json
import math

import pytest

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.training import History, load_history, plot_learning_curves

RECORDS = [
    {"phase": "M", "epoch": 0, "train": {"reconstruction": 0.5, "loss": 0.5},
     "val": {"reconstruction": 0.6, "loss": 0.6}, "skipped": 0},
    {"phase": "M", "epoch": 1, "train": {"reconstruction": 0.25, "loss": 0.25}, "val": {}, "skipped": 2},
    {"phase": "D", "epoch": 0, "train": {"nll": -1.5, "loss": math.nan}, "val": {"nll": -1.25, "loss": -1.25},
     "skipped": 0},
]


def test_json_and_csv_hold_every_record(tmp_path):
    json_path, csv_path = History(RECORDS).save(tmp_path)
    loaded = json.loads(json_path.read_text())
    assert loaded[2]["train"] == {"nll": -1.5, "loss": None}  # non-finite -> null
    assert load_history(tmp_path).records == loaded
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == ["phase", "epoch", "skipped", "train_reconstruction", "train_loss", "train_nll",
                             "val_reconstruction", "val_loss", "val_nll"]
    assert [(r["phase"], r["epoch"], r["skipped"]) for r in rows] == [("M", "0", "0"), ("M", "1", "2"), ("D", "0", "0")]
    assert float(rows[1]["train_reconstruction"]) == 0.25 and rows[1]["val_reconstruction"] == ""
    assert rows[2]["train_loss"] == "" and float(rows[2]["val_nll"]) == -1.25


def test_load_history_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        load_history(tmp_path)
    (tmp_path / "history.json").write_text("{not json")
    with pytest.raises(DataFileError, match="invalid JSON"):
        load_history(tmp_path)
    (tmp_path / "history.json").write_text('{"phase": "M"}')
    with pytest.raises(DataFileError, match="list of per-epoch records"):
        load_history(tmp_path / "history.json")


def test_plot_writes_a_png(tmp_path):
    path = plot_learning_curves(RECORDS, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".curves.png*"))  # atomic write leaves no temporary file
    with pytest.raises(InputError, match="history is empty"):
        plot_learning_curves([], tmp_path / "empty.png")
