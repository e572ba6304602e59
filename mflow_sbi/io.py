"""Atomic file writing: outputs are written to a temporary file in the same folder, then renamed.

A crash or interrupt therefore never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mflow_sbi.errors import DataFileError, InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, else delete it.

    ``suffix`` defaults to the target's suffix, so writers that look at the extension (numpy, matplotlib,
    uproot) behave as for the final name.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=target.suffix if suffix is None else suffix, dir=target.parent
    )
    os.close(handle)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        if tmp.exists():
            tmp.chmod(0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``numpy.savez`` written atomically; returns the final path, which must end in ``.npz``."""
    if Path(path).suffix != ".npz":
        raise InputError(f"{path}: an .npz output file must end in .npz, got {Path(path).suffix or 'no extension'!r}")
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


def save_json(path: str | os.PathLike, obj: object) -> Path:
    """Pretty-printed JSON written atomically; returns the final path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> object:
    """A JSON file's content, with a DataFileError naming the file when it is missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: invalid JSON ({err})") from None


def array_fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 over each array's shape and float64 C-order bytes, in order (ties results to their data)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_text(path: str | os.PathLike, text: str) -> Path:
    """Text written atomically; returns the final path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (no pickles), with a DataFileError naming the file when it is missing
    or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"root":
        raise DataFileError(f"{path}: this is a ROOT file, not an .npz archive (ROOT files are read through an "
                            "event format; see docs/root_io.md)")
    if magic != b"PK\x03\x04":
        raise DataFileError(f"{path}: not an .npz archive (an .npz file is a zip archive of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataFileError(f"{path}: not a readable .npz file ({err})") from None
