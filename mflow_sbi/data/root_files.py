"""Opening ROOT files and trees with uproot, turning every failure into a one-line DataFileError.

Files written by mflow-sbi also carry a ``TObjString`` named ``mflow_sbi`` holding JSON metadata
(simulator, parameter names and branches, prior specs, and the event format that reads the file back),
so that they can be read without a format description.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uproot

from mflow_sbi.data.event_format import closest
from mflow_sbi.errors import DataFileError, MflowError

METADATA_KEY = "mflow_sbi"
METADATA_VERSION = 1
ROOT_MAGIC = b"root"

#: What uproot raises on damaged files (short reads, bad headers, failed decompression or deserialization).
READ_ERRORS = (
    OSError, ValueError, KeyError, IndexError, EOFError, struct.error, zlib.error,
    uproot.deserialization.DeserializationError,
)


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise uproot's errors on damaged files as DataFileError naming ``path``; pass MflowError through."""
    try:
        yield
    except MflowError:
        raise
    except READ_ERRORS as err:
        detail = " ".join(str(err).split())[:200]
        kind = type(err).__name__ if type(err).__name__ != "error" else f"{type(err).__module__}.error"
        raise DataFileError(f"{path}: corrupt or truncated ROOT file ({kind}: {detail})") from None


def open_root(path: str | os.PathLike) -> uproot.ReadOnlyDirectory:
    """Open a ROOT file, checking that it exists, starts with the ROOT magic and is not truncated."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    with path.open("rb") as handle:
        magic = handle.read(len(ROOT_MAGIC))
    if magic != ROOT_MAGIC:
        raise DataFileError(f"{path}: not a ROOT file (starts with {magic!r}, expected {ROOT_MAGIC!r})")
    with reading(path):
        file = uproot.open(path)
        end = file.file.fEND
    size = path.stat().st_size
    if end > size:
        raise DataFileError(f"{path}: truncated ROOT file (header says {end} bytes, file has {size})")
    return file


# TTrees and RNTuples (ROOT's successor format, which uproot reads with the same arrays/iterate interface)
TREE_CLASSES = ("TTree", "TNtuple", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")


def get_tree(file: uproot.ReadOnlyDirectory, path: str | os.PathLike, name: str) -> Any:
    """The TTree or RNTuple ``name`` in ``file``; the error lists the trees that exist, closest first."""
    with reading(path):
        classes = file.classnames(cycle=False)
    trees = sorted(key for key, cls in classes.items() if cls.startswith(TREE_CLASSES))
    if name not in classes:
        found = ", ".join(trees) if trees else "none"
        raise DataFileError(f"{path}: no tree '{name}'{closest(name, trees)}; trees in file: {found}")
    if name not in trees:
        raise DataFileError(f"{path}: '{name}' is a {classes[name]}, not a TTree or RNTuple; trees in file: "
                            f"{', '.join(trees)}")
    with reading(path):
        return file[name]


def read_metadata(file: uproot.ReadOnlyDirectory, path: str | os.PathLike) -> dict[str, Any] | None:
    """The mflow-sbi metadata stored in ``file``, or None for files written by other programs."""
    with reading(path):
        if file.classnames(cycle=False).get(METADATA_KEY) != "TObjString":
            return None
        text = str(file[METADATA_KEY])
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path}: unreadable '{METADATA_KEY}' metadata ({err})") from None
    if not isinstance(meta, dict):
        raise DataFileError(f"{path}: '{METADATA_KEY}' metadata is not a JSON object")
    if meta.get("version") != METADATA_VERSION:
        raise DataFileError(f"{path}: '{METADATA_KEY}' metadata has unsupported version {meta.get('version')!r}")
    return meta


def metadata_json(**fields: Any) -> str:
    """Serialize the metadata stored by the writers (``version`` added)."""
    return json.dumps({"version": METADATA_VERSION, **fields}, sort_keys=True)
