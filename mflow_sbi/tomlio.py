"""Minimal TOML reading (stdlib ``tomllib``) and writing for our configuration files.

The writer handles what our files contain: nested tables of strings, numbers, booleans and flat lists
of those. Reading back what it writes gives the same dictionary.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path

from mflow_sbi.errors import ConfigError
from mflow_sbi.io import save_text


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} to TOML")


def dumps_toml(data: dict, _prefix: str = "") -> str:
    """Serialize a nested dict: scalars first, then one [table] per nested dict. None values are omitted."""
    lines = [f"{key} = {_scalar(value)}" for key, value in data.items() if value is not None and not isinstance(value, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{_prefix}{key}"
            lines += ["", f"[{name}]", dumps_toml(value, f"{name}.").strip("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def write_toml(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as TOML atomically."""
    return save_text(path, dumps_toml(data))
