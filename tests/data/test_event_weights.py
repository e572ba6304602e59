"""Per-event weights read from a ROOT weight branch (event format key ``weight``), kept through ``convert``."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.data.datasets import load_events
from mflow_sbi.data.event_format import EventFormat, load_format
from mflow_sbi.data.loading import load_any
from mflow_sbi.errors import ConfigError


def weighted_format() -> dict:
    return {**load_format("delphes").to_dict(), "weight": "Weight"}


def test_the_weight_branch_is_read_and_survives_convert(tmp_path, lhc_like):
    from mflow_sbi.cli import main
    from mflow_sbi.data.root_write import write_delphes
    from mflow_sbi.tomlio import write_toml

    photons, jets, theta = lhc_like
    weights = np.random.default_rng(3).normal(1.0, 0.5, size=len(theta))  # some negative
    path = write_delphes(tmp_path / "w.root", photons, jets, theta, ["a", "b"], weight=weights, dtype=np.float64)
    data = load_any(path, weighted_format(), require_theta=True)
    assert np.array_equal(data.w, weights) and (data.w < 0).any()
    assert load_any(path, "delphes").w is None  # no weight key: unweighted, as before
    write_toml(tmp_path / "f.toml", {"format": weighted_format()})
    assert main(["convert", str(path), "--format", str(tmp_path / "f.toml"), "--out", str(tmp_path / "w.npz")]) == 0
    assert np.array_equal(load_events(tmp_path / "w.npz").w, weights)


def test_weight_key_is_validated_and_round_trips():
    fmt = EventFormat.from_dict(weighted_format())
    assert fmt.weight == "Weight" and EventFormat.from_dict(fmt.to_dict()) == fmt
    with pytest.raises(ConfigError, match="'weight' must be a branch name"):
        EventFormat.from_dict({**weighted_format(), "weight": 3})


def test_weights_are_not_streamed(tmp_path, lhc_like):
    from mflow_sbi.data.root_write import write_delphes
    from mflow_sbi.training.streaming import open_streamed

    photons, jets, theta = lhc_like
    path = write_delphes(tmp_path / "w.root", photons, jets, theta, ["a", "b"])
    with pytest.raises(ConfigError, match="not streamed"):
        open_streamed(path, EventFormat.from_dict(weighted_format()))
