"""TOML files: reading with the standard library's ``tomllib``, writing with ``tomli-w``, both atomic and
with errors that name the file.

tomli-w quotes keys where TOML needs it (dots, spaces) and writes arrays of tables, so reading back what
:func:`write_toml` wrote gives the same dictionary. TOML has no null: None values are left out (readers take
the default for a missing key).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

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


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_without_none(item) for item in value]
    return value


def dumps_toml(data: dict) -> str:
    """``data`` as TOML text (None values left out)."""
    try:
        return tomli_w.dumps(_without_none(data))
    except TypeError as err:
        raise ConfigError(f"cannot write to TOML: {err}") from None


def write_toml(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as TOML atomically."""
    return save_text(path, dumps_toml(data))
