"""One entry point for event files: ``load_any`` reads ``.npz`` or ROOT files, single paths, lists or globs."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mflow_sbi.data.datasets import EventData, load_events
from mflow_sbi.data.event_format import EventFormat
from mflow_sbi.data.root_read import ReadStats, read_root
from mflow_sbi.errors import DataFileError, InputError

PathSpec = str | os.PathLike | Iterable[str | os.PathLike]
ROOT_SUFFIX = ".root"
NPZ_SUFFIX = ".npz"


def expand_paths(paths: PathSpec) -> list[Path]:
    """A list of files from one path, a glob pattern (``*``, ``?``, ``[...]``) or an iterable of these.

    Patterns expand in sorted order; a pattern matching nothing raises DataFileError. Plain paths are kept
    as given (a missing file is reported by the reader).
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    files: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text) and not Path(text).exists():
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataFileError(f"{text}: no files match this pattern")
            files += [Path(m) for m in matches]
        else:
            files.append(Path(text))
    if not files:
        raise DataFileError("no input files given")
    return files


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (ROOT_SUFFIX, NPZ_SUFFIX):
        raise DataFileError(f"{path}: unknown events file type {suffix or '(none)'!r}; expected .npz or .root")
    return suffix


def _concatenate_npz(parts: list[EventData], paths: list[Path]) -> EventData:
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:], strict=True):
        if part.x.shape[1] != first.x.shape[1]:
            raise DataFileError(f"{path}: x has {part.x.shape[1]} columns but {paths[0]} has {first.x.shape[1]}")
        for key in ("theta", "t_xz"):
            if (getattr(part, key) is None) != (getattr(first, key) is None):
                raise DataFileError(f"{path}: field '{key}' present in some input files but not in others")
    if len(parts) == 1:
        return first

    def join(key: str) -> np.ndarray | None:
        return None if getattr(first, key) is None else np.concatenate([getattr(p, key) for p in parts])

    return EventData(x=join("x"), theta=join("theta"), t_xz=join("t_xz"), simulator=first.simulator,
                     prior=first.prior, parameter_names=first.parameter_names,
                     simulator_options=first.simulator_options, parameter_labels=first.parameter_labels)


def load_any(paths: PathSpec, fmt: EventFormat | str | os.PathLike | None = None, require_theta: bool = False,
             step_size: int | str | None = None, stats: ReadStats | None = None) -> EventData:
    """Events from ``.npz`` files (:func:`~mflow_sbi.data.datasets.load_events`) or ROOT files.

    ``paths``: a path, a glob pattern or a list of them (all of one kind). ``fmt`` (ROOT only): an
    EventFormat, a preset name (``delphes``, ``nanoaod``) or a TOML file; None reads files written by
    mflow-sbi with their stored format. ``step_size``: read ROOT files in chunks of this many entries (or
    a size such as ``"50 MB"``) to bound the memory used by raw branches; None reads each file at once.
    ``stats`` (ROOT only) accumulates how many events were read, dropped and selected.
    """
    files = expand_paths(paths)
    kinds = {_file_kind(path) for path in files}
    if len(kinds) > 1:
        raise DataFileError(f"mixed .npz and .root inputs ({', '.join(map(str, files))}); use one kind")
    if kinds == {ROOT_SUFFIX}:
        return read_root(files, fmt, require_theta=require_theta, step_size=step_size, stats=stats)
    if fmt is not None:
        raise InputError(f"an event format applies to ROOT files only, but the input is .npz ({files[0]})")
    return _concatenate_npz([load_events(path, require_theta=require_theta) for path in files], files)
