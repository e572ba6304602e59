"""Reading ROOT trees into feature arrays x (and parameters theta), in one shot or in chunks.

For each chunk of entries and each collection of the :class:`~mflow_sbi.data.event_format.EventFormat`:

1. the four-momenta of all objects are built from the branches in the collection's convention;
2. objects failing ``pT > min_pt`` or ``|eta| < max_abs_eta`` are removed, the rest ordered by decreasing
   pT (stable, so ties keep file order);
3. events with fewer than ``min_count`` remaining objects fail the selection; the others keep their
   ``count`` leading objects.

Features are then :func:`mflow_sbi.data.kinematics.event_features` of the selected objects and pairs,
followed by the plain columns. Events with a NaN/inf in any value read or feature computed are dropped
and counted (``nonfinite = "drop"``) or raise (``nonfinite = "error"``).

Every file is checked (tree, branches, jagged/flat layout, parameter branches) before any event is read.
Chunks come from uproot's ``TTree.iterate`` with a configurable ``step_size`` (entries, or a size such as
``"50 MB"``), so memory stays bounded by one chunk.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from mflow_sbi.data import kinematics
from mflow_sbi.data.datasets import EventData
from mflow_sbi.data.event_format import Collection, EventFormat, closest, load_format
from mflow_sbi.data.root_files import get_tree, open_root, read_metadata, reading
from mflow_sbi.errors import ConfigError, DataFileError, InputError
from mflow_sbi.priors import IndependentPrior

log = logging.getLogger(__name__)

BUILDERS = {
    "pt_eta_phi_mass": kinematics.from_pt_eta_phi_m,
    "pt_eta_phi_e": kinematics.from_pt_eta_phi_e,
    "px_py_pz_e": kinematics.from_px_py_pz_e,
}
DEFAULT_STEP_SIZE = "100 MB"
SIZE_PATTERN = re.compile(r"\s*\d+(\.\d*)?\s*([kmgt]i?)?b\s*", re.IGNORECASE)


def check_step_size(step_size: int | str | None) -> int | str | None:
    """A chunk size: a positive number of entries, a memory size such as ``"100 MB"`` or ``"1 GiB"``, or None."""
    if step_size is None or (isinstance(step_size, int) and step_size > 0):
        return step_size
    if isinstance(step_size, str):
        if step_size.strip().isdigit() and int(step_size) > 0:
            return int(step_size)
        if SIZE_PATTERN.fullmatch(step_size):
            return step_size
    raise InputError(f"step size must be a positive number of entries or a size such as '100 MB', got {step_size!r}")


@dataclass
class ReadStats:
    """Event counts accumulated over everything read."""

    read: int = 0
    nonfinite: int = 0
    failed_selection: int = 0
    selected: int = 0

    def add(self, other: ReadStats) -> None:
        self.read += other.read
        self.nonfinite += other.nonfinite
        self.failed_selection += other.failed_selection
        self.selected += other.selected

    def summary(self) -> str:
        return (f"{self.selected} of {self.read} events passed the selection "
                f"({self.failed_selection} failed it, {self.nonfinite} dropped for NaN/inf values)")


@dataclass
class TreeSource:
    """One validated file: its tree, the format and the branches to read."""

    path: Path
    tree: Any
    fmt: EventFormat
    parameters: tuple[str, ...]
    scores: tuple[str, ...]
    metadata: dict[str, Any] | None
    branches: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.fmt.tree}"


def _describe(field: Any) -> str:
    """The layout of a TTree branch (by its uproot interpretation) or an RNTuple field (by its awkward form):
    "jagged" (a variable-length list of numbers per event), "flat", "fixed-size array" or "non-numeric"."""
    if hasattr(field, "interpretation"):
        interpretation = field.interpretation
        if isinstance(interpretation, uproot.AsJagged):
            return "jagged" if isinstance(interpretation.content, uproot.AsDtype) else "non-numeric"
        if isinstance(interpretation, uproot.AsDtype):
            return "flat" if interpretation.inner_shape == () else "fixed-size array"
        return "non-numeric"
    form = field.to_akform()[0].contents[0]
    if isinstance(form, ak.forms.NumpyForm):
        return "flat" if form.inner_shape == [] or form.inner_shape == () else "fixed-size array"
    if isinstance(form, ak.forms.ListOffsetForm | ak.forms.ListForm) and isinstance(form.content, ak.forms.NumpyForm):
        return "jagged"
    return "non-numeric"


def branch_names(tree: Any) -> list[str]:
    """All branch names, nested ones (e.g. ``Jet.PT`` inside a Delphes ``Jet`` TClonesArray) without their parents."""
    try:
        return list(tree.keys(full_paths=False))
    except TypeError:  # an RNTuple, whose keys are its fields
        return list(tree.keys())


def _check_branch(tree: Any, where: str, name: str, expected: str, purpose: str) -> None:
    """Raise unless branch ``name`` exists and is numeric with layout ``expected`` (jagged or flat)."""
    keys = branch_names(tree)
    if name not in keys:
        raise DataFileError(f"{where}: missing branch '{name}' ({purpose}){closest(name, keys)}")
    found = _describe(tree[name])
    if found == "non-numeric":
        raise DataFileError(f"{where}: branch '{name}' ({purpose}) is not numeric ({tree[name].typename})")
    if found != expected:
        in_collection = purpose.startswith("collection") and found in ("jagged", "flat")
        hint = f'; set layout = "{found}" for this collection' if in_collection else ""
        raise DataFileError(f"{where}: branch '{name}' ({purpose}) is {found} but the format expects {expected}{hint}")


def _resolve_parameters(tree: Any, where: str, fmt: EventFormat, meta: dict | None,
                        require_theta: bool) -> tuple[str, ...]:
    """Parameter branches: the format's list, else the file's metadata; () when absent and not required."""
    listed = fmt.parameters if fmt.parameters is not None else tuple((meta or {}).get("parameter_branches", ()))
    if not listed:
        if require_theta:
            raise DataFileError(f"{where}: no parameter branches for theta (needed for training): the format lists "
                                "none and the file has no mflow-sbi metadata; add parameters = [...] to the format")
        return ()
    keys = branch_names(tree)
    missing = [p for p in listed if p not in keys]
    if missing and require_theta:
        hints = "; ".join(f"'{p}'{closest(p, keys)}" for p in missing)
        raise DataFileError(f"{where}: missing parameter branch(es) needed for training: {hints}")
    if missing:
        log.info("%s: parameter branches %s absent; reading x only", where, ", ".join(missing))
        return ()
    for name in listed:
        _check_branch(tree, where, name, "flat", "parameter")
    return tuple(listed)


def open_source(path: str | os.PathLike, fmt: EventFormat | str | os.PathLike | None,
                require_theta: bool = False) -> TreeSource:
    """Open and validate one file against ``fmt`` (None: the format stored in the file's metadata)."""
    path = Path(path)
    file = open_root(path)
    try:
        return _validated_source(path, file, fmt, require_theta)
    except BaseException:
        file.file.close()
        raise


def close_sources(sources: Iterable[TreeSource]) -> None:
    """Close the files behind ``sources``."""
    for source in sources:
        source.tree.file.close()


def _validated_source(path: Path, file: Any, fmt: EventFormat | str | os.PathLike | None,
                      require_theta: bool) -> TreeSource:
    meta = read_metadata(file, path)
    if fmt is None:
        if meta is None or "format" not in meta:
            raise DataFileError(f"{path}: no event format given and the file was not written by mflow-sbi; "
                                "pass a format (preset name or .toml file)")
        fmt = meta["format"]
    fmt = load_format(fmt)
    tree = get_tree(file, path, fmt.tree)
    where = f"{path}:{fmt.tree}"
    branches: list[str] = []
    for coll in fmt.collections:
        for names in coll.component_branches():
            for name in names:
                _check_branch(tree, where, name, coll.layout, f"collection '{coll.name}'")
                branches.append(name)
    for name in fmt.columns:
        _check_branch(tree, where, name, "flat", "column")
        branches.append(name)
    if fmt.weight is not None:
        _check_branch(tree, where, fmt.weight, "flat", "weight")
        branches.append(fmt.weight)
    parameters = _resolve_parameters(tree, where, fmt, meta, require_theta)
    scores = tuple((meta or {}).get("score_branches", ())) if parameters else ()
    if not set(scores) <= set(branch_names(tree)):
        scores = ()
    branches += [*parameters, *scores]
    return TreeSource(path=path, tree=tree, fmt=fmt, parameters=parameters, scores=scores, metadata=meta,
                      branches=list(dict.fromkeys(branches)))


def _objects(arrays: Any, coll: Collection, where: str) -> tuple[np.ndarray, np.ndarray]:
    """All objects of ``coll`` in a chunk: flat (M, 4) four-momenta and per-event counts (n,)."""
    per_component = coll.component_branches()
    if coll.layout == "jagged":
        columns = [arrays[names[0]] for names in per_component]
        counts = ak.to_numpy(ak.num(columns[0], axis=1)).astype(np.int64)
        for names, column in zip(per_component[1:], columns[1:], strict=True):
            if not np.array_equal(ak.to_numpy(ak.num(column, axis=1)), counts):
                raise DataFileError(f"{where}: branches '{per_component[0][0]}' and '{names[0]}' of collection "
                                    f"'{coll.name}' have different numbers of objects in some events")
        values = [ak.to_numpy(ak.flatten(column, axis=1)).astype(np.float64) for column in columns]
    else:
        values = [np.stack([ak.to_numpy(arrays[name]) for name in names], axis=1).astype(np.float64).reshape(-1)
                  for names in per_component]
        counts = np.full(len(arrays), coll.object_slots, dtype=np.int64)
    return BUILDERS[coll.convention](*values), counts


def _per_event_any(flags: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per event: whether any of its objects is flagged."""
    events = np.repeat(np.arange(len(counts)), counts)
    return np.bincount(events, weights=flags, minlength=len(counts)) > 0


def select_leading(p4: np.ndarray, counts: np.ndarray, coll: Collection) -> tuple[np.ndarray, np.ndarray]:
    """Apply the collection's cuts and keep its ``count`` leading objects by pT.

    ``p4`` (M, 4) holds the objects of all events in order, ``counts`` (n,) how many each event has.
    Returns the selected (n, count, 4) four-momenta (NaN where an event has too few objects) and the
    (n,) mask of events with at least ``min_count`` objects passing the cuts.
    """
    n = len(counts)
    events = np.repeat(np.arange(n), counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        pt = kinematics.transverse_momentum(p4)
        keep = pt > coll.min_pt
        if np.isfinite(coll.max_abs_eta):
            keep &= np.abs(kinematics.pseudorapidity(p4)) < coll.max_abs_eta
    events, pt, p4 = events[keep], pt[keep], p4[keep]
    order = np.lexsort((-pt, events))  # by event, then by decreasing pT; lexsort is stable
    events, p4 = events[order], p4[order]
    kept = np.bincount(events, minlength=n)
    rank = np.arange(len(events)) - np.repeat(np.cumsum(kept) - kept, kept)
    leading = rank < coll.count
    selected = np.full((n, coll.count, 4), np.nan)
    selected[events[leading], rank[leading]] = p4[leading]
    return selected, kept >= coll.required


def _flat_matrix(arrays: Any, names: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.stack([ak.to_numpy(arrays[name]).astype(np.float64) for name in names], axis=1)


def select_chunk(arrays: Any, source: TreeSource, entry_start: int = 0) -> tuple[EventData, ReadStats]:
    """Features, parameters and counts for one chunk of entries read from ``source``."""
    fmt, where = source.fmt, source.where
    n = len(arrays)
    passed = np.ones(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    objects = []
    for coll in fmt.collections:
        p4, counts = _objects(arrays, coll, where)
        bad |= _per_event_any(~np.isfinite(p4).all(axis=1), counts)
        selected, ok = select_leading(p4, counts, coll)
        objects.append(selected)
        passed &= ok
    columns = _flat_matrix(arrays, fmt.columns) if fmt.columns else np.empty((n, 0))
    theta = _flat_matrix(arrays, source.parameters) if source.parameters else None
    t_xz = _flat_matrix(arrays, source.scores) if source.scores else None
    w = _flat_matrix(arrays, [fmt.weight]) if fmt.weight is not None else None
    for extra in (columns, theta, t_xz, w):
        if extra is not None:
            bad |= ~np.isfinite(extra).all(axis=1)
    keep = passed & ~bad
    x = np.empty((int(keep.sum()), fmt.n_features))
    n_kinematic = fmt.n_features - len(fmt.columns)
    if objects and len(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            x[:, :n_kinematic] = kinematics.event_features([o[keep] for o in objects], list(fmt.pairs),
                                                               list(fmt.azimuthal_pairs))
    x[:, n_kinematic:] = columns[keep]
    bad_features = ~np.isfinite(x).all(axis=1)
    bad[np.flatnonzero(keep)[bad_features]] = True
    if fmt.nonfinite == "error" and bad.any():
        first = entry_start + int(np.flatnonzero(bad)[0])
        raise DataFileError(f"{where}: {int(bad.sum())} events with NaN/inf values (first at entry {first}); "
                            'set nonfinite = "drop" in the format to skip them')
    stats = ReadStats(read=n, nonfinite=int(bad.sum()), failed_selection=int((~passed & ~bad).sum()))
    rows = ~bad_features
    stats.selected = int(rows.sum())
    data = EventData(x=x[rows], theta=None if theta is None else theta[keep][rows],
                     t_xz=None if t_xz is None else t_xz[keep][rows], w=None if w is None else w[keep][rows, 0])
    return data, stats


def _chunks(source: TreeSource, step_size: int | str | None) -> Iterator[Any]:
    with reading(source.path):
        if step_size is None:
            yield source.tree.arrays(source.branches, library="ak")
            return
        iterator = source.tree.iterate(source.branches, step_size=step_size, library="ak")
    while True:
        with reading(source.path):
            try:
                arrays = next(iterator)
            except StopIteration:
                return
        yield arrays


def open_sources(paths: Iterable[str | os.PathLike], fmt: EventFormat | str | os.PathLike | None,
                 require_theta: bool = False) -> list[TreeSource]:
    """Validate every file before reading any events; all must give the same features and parameters."""
    sources: list[TreeSource] = []
    try:
        for path in paths:
            sources.append(open_source(path, fmt, require_theta))
        _check_consistent(sources)
    except BaseException:
        close_sources(sources)
        raise
    return sources


def _check_consistent(sources: list[TreeSource]) -> None:
    if not sources:
        raise DataFileError("no input files")
    first = sources[0]
    for other in sources[1:]:
        if other.fmt.feature_names() != first.fmt.feature_names():
            raise DataFileError(f"{other.path}: its format gives different features than {first.path}")
        if len(other.parameters) != len(first.parameters):
            raise DataFileError(f"{other.path}: parameter branches {list(other.parameters)} do not match "
                                f"{list(first.parameters)} in {first.path}")


def iterate_root(sources: list[TreeSource], step_size: int | str | None = DEFAULT_STEP_SIZE,
                 stats: ReadStats | None = None) -> Iterator[EventData]:
    """Yield the selected events chunk by chunk (chunks with no selected event are skipped).

    ``step_size``: entries per chunk, a size string such as ``"50 MB"``, or None for one chunk per file.
    ``stats`` (optional) accumulates the counts. Raises DataFileError at the end if no event passed.
    """
    total = ReadStats()
    step_size = check_step_size(step_size)
    try:
        for source in sources:
            entry = 0
            for arrays in _chunks(source, step_size):
                data, chunk_stats = select_chunk(arrays, source, entry)
                entry += chunk_stats.read
                total.add(chunk_stats)
                if stats is not None:
                    stats.add(chunk_stats)
                if len(data.x):
                    yield data
    finally:
        close_sources(sources)
    if total.selected == 0:
        cuts = "; ".join(_selection_text(c) for c in sources[0].fmt.collections) or "none"
        raise DataFileError(f"{', '.join(str(s.path) for s in sources)}: no events pass the selection ({cuts}): "
                            f"read {total.read}, {total.failed_selection} failed it, "
                            f"{total.nonfinite} dropped for NaN/inf values")


def _selection_text(coll: Collection) -> str:
    cuts = f"pT > {coll.min_pt:g}" + (f", |eta| < {coll.max_abs_eta:g}" if np.isfinite(coll.max_abs_eta) else "")
    return f">= {coll.required} {coll.name}(s) with {cuts}"


# The metadata keys that say what the events are; files that differ only in others (e.g. one written before
# the event format and simulator options were stored) still share simulator, prior and parameter names.
IDENTITY_KEYS = ("simulator", "prior", "parameter_names", "parameter_branches")


def source_metadata(sources: list[TreeSource]) -> dict[str, Any]:
    """EventData metadata (simulator, its options, prior, parameter_names) shared by all sources.

    Simulator, prior and parameter names are kept when every file records the same ``IDENTITY_KEYS``; when the
    files disagree they are dropped with a warning naming the first file that differs. The options only when
    every file records the same options and the files are read with the format they were written for
    (another format gives other features)."""
    first = sources[0]
    if not first.parameters:
        return {}
    meta = first.metadata or {}

    differing = next((s for s in sources if any((s.metadata or {}).get(k) != meta.get(k) for k in IDENTITY_KEYS)), None)
    if differing is not None and meta.get("simulator") is not None:
        keys = [k for k in IDENTITY_KEYS if (differing.metadata or {}).get(k) != meta.get(k)]
        log.warning("%s and %s record different %s: the events are read without a simulator and prior",
                    first.path, differing.path, ", ".join(keys))
    from_meta = differing is None and tuple(meta.get("parameter_branches", ())) == first.parameters
    names = tuple(meta.get("parameter_names", first.parameters)) if from_meta else first.parameters
    prior = IndependentPrior.from_specs(meta["prior"]) if from_meta and meta.get("prior") else None
    simulator = meta.get("simulator") if from_meta else None
    options_agree = all((s.metadata or {}).get("simulator_options") == meta.get("simulator_options") for s in sources)
    as_written = all(_read_as_written(s.metadata or {}, s.fmt) for s in sources)
    options = meta.get("simulator_options") if from_meta and options_agree and as_written else None
    return {"parameter_names": names, "prior": prior, "simulator": simulator, "simulator_options": options}


def _read_as_written(meta: dict[str, Any], fmt: EventFormat) -> bool:
    """Whether ``fmt`` gives the features of the format stored in the file's metadata (False when it has none
    or an unreadable one)."""
    try:
        return "format" in meta and load_format(meta["format"]).feature_names() == fmt.feature_names()
    except (ConfigError, TypeError):
        return False


def concatenate(chunks: Iterable[EventData], **metadata: Any) -> EventData:
    """One EventData from a sequence of chunks."""
    chunks = list(chunks)

    def join(key: str) -> np.ndarray | None:
        parts = [getattr(c, key) for c in chunks]
        return None if parts[0] is None else np.concatenate(parts, axis=0)

    return EventData(x=join("x"), theta=join("theta"), t_xz=join("t_xz"), w=join("w"), **metadata)


def read_root(paths: Iterable[str | os.PathLike], fmt: EventFormat | str | os.PathLike | None = None,
              require_theta: bool = False, step_size: int | str | None = None,
              stats: ReadStats | None = None) -> EventData:
    """Read all selected events of ``paths`` into memory (chunked when ``step_size`` is given)."""
    sources = open_sources(paths, fmt, require_theta)
    return concatenate(iterate_root(sources, step_size, stats), **source_metadata(sources))
