"""TOML writing (tomli-w) and reading (tomllib): what is written reads back the same."""

from __future__ import annotations

import math

import pytest

from mflow_sbi.errors import ConfigError
from mflow_sbi.tomlio import dumps_toml, read_toml, write_toml


def test_round_trip_of_awkward_keys_arrays_of_tables_and_special_floats(tmp_path):
    data = {
        "format": {
            "tree": "events",
            "key.with.dots": 1,
            "key with spaces": "a \"quoted\" value\n",
            "": 2.5,
            "collections": [{"name": "muon", "count": 2, "branches": {"px": "Muon_Px"}}, {"name": "jet", "count": 1}],
            "pairs": [[0, 1], [2, 3]],
            "limits": [math.inf, -math.inf, 1e-300],
            "flag": False,
        },
        "top": [1, 2, 3],
    }
    assert read_toml(write_toml(tmp_path / "f.toml", data)) == data


def test_none_values_are_left_out(tmp_path):
    written = read_toml(write_toml(tmp_path / "f.toml", {"training": {"learning_rate_m": None, "epochs": 3}}))
    assert written == {"training": {"epochs": 3}}


def test_unwritable_values_and_unreadable_files_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="cannot write"):
        dumps_toml({"x": object()})
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        read_toml(bad)
    with pytest.raises(ConfigError, match="no such file"):
        read_toml(tmp_path / "missing.toml")
