"""Event formats: how to turn the branches of a ROOT tree into feature vectors x and parameters theta.

A format names the tree, the object collections to read and how (kinematics convention, jagged or flat
columns, how many leading objects, pT / |eta| cuts, minimum multiplicity), the object pairs whose
system features are added, the object pairs whose azimuthal asymmetry is added, plain per-event columns taken
as they are, and the parameter branches that form theta. Features follow :mod:`mflow_sbi.data.kinematics`: 6
per selected object (E, px, py, pz, pT, eta), then 8 per pair (E, px, py, pz, pT, m, eta, Delta-eta), then one
per azimuthal pair (sin 2 Delta-phi, forward minus backward object), then the plain columns.

A format is written as a TOML table (top level, or a ``[format]`` table)::

    tree = "Delphes"
    pairs = [[0, 1], [2, 3]]          # indices into the selected objects, in collection order
    azimuthal_pairs = [[2, 3]]        # optional: sin 2 Delta-phi of these pairs (CP-odd in weak boson fusion)
    columns = []                      # per-event branches appended as features, unchanged
    parameters = ["theta_0"]          # theta branches; omitted: taken from the file's mflow-sbi metadata
    weight = "Event.Weight"           # optional: a per-event weight branch (training uses weighted losses)
    nonfinite = "drop"                # or "error": events with NaN/inf inputs or features

    [[collections]]
    name = "photon"
    convention = "pt_eta_phi_e"       # or pt_eta_phi_mass, px_py_pz_e
    layout = "jagged"                 # one variable-length branch per component
    branches = { pt = "Photon.PT", eta = "Photon.Eta", phi = "Photon.Phi", e = "Photon.E" }
    count = 2                         # leading objects (by pT) taken from each event
    min_count = 2                     # events with fewer objects passing the cuts are dropped (>= count)
    min_pt = 20.0
    max_abs_eta = 2.5

With ``layout = "flat"`` each component names a numbered per-event branch pattern such as ``"px{i}"``,
expanded for ``i = first_index .. first_index + slots - 1`` (e.g. ``E1, px1, ..., E2, px2, ...``).

Shipped presets (``mflow_sbi/presets/NAME.toml``) are usable by name: ``delphes`` and ``nanoaod``.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mflow_sbi.data.kinematics import AZIMUTHAL_FEATURE, OBJECT_FEATURES, PAIR_FEATURES
from mflow_sbi.errors import ConfigError
from mflow_sbi.tomlio import read_toml

#: Component names of each kinematics convention, in the argument order of the kinematics helpers.
CONVENTIONS: dict[str, tuple[str, ...]] = {
    "pt_eta_phi_mass": ("pt", "eta", "phi", "mass"),
    "pt_eta_phi_e": ("pt", "eta", "phi", "e"),
    "px_py_pz_e": ("px", "py", "pz", "e"),
}
LAYOUTS = ("jagged", "flat")
NONFINITE_POLICIES = ("drop", "error")


def closest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """A ' (closest: a, b)' hint listing the choices most similar to ``name``, or '' if none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" (closest: {', '.join(matches)})" if matches else ""


@dataclass(frozen=True)
class Collection:
    """One object collection: which branches hold its four-momenta and which objects are selected."""

    name: str
    convention: str
    branches: dict[str, str]
    count: int
    layout: str = "jagged"
    min_count: int | None = None
    min_pt: float = 0.0
    max_abs_eta: float = math.inf
    slots: int | None = None
    first_index: int = 1

    def __post_init__(self) -> None:
        where = f"collection '{self.name}'"
        if self.convention not in CONVENTIONS:
            raise ConfigError(f"{where}: convention {self.convention!r} unknown; use one of {', '.join(CONVENTIONS)}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"{where}: layout {self.layout!r} unknown; use one of {', '.join(LAYOUTS)}")
        expected = set(CONVENTIONS[self.convention])
        if set(self.branches) != expected:
            raise ConfigError(
                f"{where}: convention {self.convention} needs branches for {sorted(expected)}, "
                f"got {sorted(self.branches)}"
            )
        if not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"{where}: count must be a positive integer, got {self.count!r}")
        if self.min_count is not None and self.min_count < self.count:
            raise ConfigError(f"{where}: min_count ({self.min_count}) must be >= count ({self.count})")
        if self.layout == "flat":
            for component, pattern in self.branches.items():
                if "{i}" not in pattern:
                    raise ConfigError(f"{where}: flat branch pattern {component} = {pattern!r} lacks '{{i}}'")
            if self.object_slots < self.count:
                raise ConfigError(f"{where}: slots ({self.object_slots}) must be >= count ({self.count})")

    @property
    def required(self) -> int:
        """Minimum number of objects passing the cuts for an event to be kept."""
        return self.count if self.min_count is None else self.min_count

    @property
    def object_slots(self) -> int:
        """Number of numbered objects per event in a flat layout."""
        return self.count if self.slots is None else self.slots

    def component_branches(self) -> list[list[str]]:
        """Branch names per component (convention order); one per slot for flat layouts, else one each."""
        names = CONVENTIONS[self.convention]
        if self.layout == "jagged":
            return [[self.branches[c]] for c in names]
        indices = range(self.first_index, self.first_index + self.object_slots)
        return [[self.branches[c].replace("{i}", str(i)) for i in indices] for c in names]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "convention": self.convention, "layout": self.layout,
            "branches": dict(self.branches), "count": self.count, "min_pt": self.min_pt,
        }
        if self.min_count is not None:
            out["min_count"] = self.min_count
        if math.isfinite(self.max_abs_eta):
            out["max_abs_eta"] = self.max_abs_eta
        if self.layout == "flat":
            out["slots"] = self.object_slots
            out["first_index"] = self.first_index
        return out


@dataclass(frozen=True)
class EventFormat:
    """How to read x (and theta) from a tree; see the module docstring."""

    tree: str
    collections: tuple[Collection, ...] = ()
    pairs: tuple[tuple[int, int], ...] = ()
    azimuthal_pairs: tuple[tuple[int, int], ...] = ()
    columns: tuple[str, ...] = ()
    parameters: tuple[str, ...] | None = None
    nonfinite: str = "drop"
    weight: str | None = None
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        if not self.collections and not self.columns:
            raise ConfigError(f"format '{self.name}': needs at least one collection or column")
        names = [c.name for c in self.collections]
        if len(set(names)) != len(names):
            raise ConfigError(f"format '{self.name}': collection names must be unique, got {names}")
        n_objects = self.n_objects
        for key, pairs in (("pairs", self.pairs), ("azimuthal_pairs", self.azimuthal_pairs)):
            for pair in pairs:
                if len(pair) != 2 or not all(isinstance(i, int) and 0 <= i < n_objects for i in pair) \
                        or pair[0] == pair[1]:
                    raise ConfigError(f"format '{self.name}': pair {list(pair)} of '{key}' must hold two different "
                                      f"object indices in 0..{n_objects - 1}")
        if self.nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(
                f"format '{self.name}': nonfinite must be one of {NONFINITE_POLICIES}, got {self.nonfinite!r}"
            )

    @property
    def n_objects(self) -> int:
        return sum(c.count for c in self.collections)

    @property
    def n_features(self) -> int:
        return 6 * self.n_objects + 8 * len(self.pairs) + len(self.azimuthal_pairs) + len(self.columns)

    def object_labels(self) -> list[str]:
        """Labels of the selected objects in order, e.g. ['photon1', 'photon2', 'jet1', 'jet2']."""
        return [f"{c.name}{k + 1}" for c in self.collections for k in range(c.count)]

    def feature_names(self) -> list[str]:
        """One name per feature column, e.g. 'photon1_E', 'photon1_photon2_m', 'jet1_jet2_sin2dphi', then the
        plain columns."""
        labels = self.object_labels()
        names = [f"{label}_{f}" for label in labels for f in OBJECT_FEATURES]
        names += [f"{labels[i]}_{labels[j]}_{f}" for i, j in self.pairs for f in PAIR_FEATURES]
        names += [f"{labels[i]}_{labels[j]}_{AZIMUTHAL_FEATURE}" for i, j in self.azimuthal_pairs]
        return names + list(self.columns)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tree": self.tree, "nonfinite": self.nonfinite}
        if self.collections:
            out["collections"] = [c.to_dict() for c in self.collections]
        if self.pairs:
            out["pairs"] = [list(p) for p in self.pairs]
        if self.azimuthal_pairs:
            out["azimuthal_pairs"] = [list(p) for p in self.azimuthal_pairs]
        if self.columns:
            out["columns"] = list(self.columns)
        if self.parameters is not None:
            out["parameters"] = list(self.parameters)
        if self.weight is not None:
            out["weight"] = self.weight
        return out

    @classmethod
    def from_dict(cls, table: dict[str, Any], name: str = "custom") -> EventFormat:
        """Build a format from a parsed TOML/JSON table, naming the offending key on error."""
        table = table.get("format", table)
        allowed = {"tree", "collections", "pairs", "azimuthal_pairs", "columns", "parameters", "nonfinite", "weight"}
        _check_keys(table, allowed, f"format '{name}'")
        if "tree" not in table:
            raise ConfigError(f"format '{name}': missing key 'tree' (the TTree name)")
        for key, what in (("collections", "an array of tables"), ("pairs", "an array of [i, j] pairs"),
                          ("azimuthal_pairs", "an array of [i, j] pairs"),
                          ("columns", "an array of branch names"), ("parameters", "an array of branch names")):
            if key in table and not isinstance(table[key], list | tuple):
                raise ConfigError(f"format '{name}': '{key}' must be {what}, got {table[key]!r}")
        if "weight" in table and not isinstance(table["weight"], str):
            raise ConfigError(f"format '{name}': 'weight' must be a branch name, got {table['weight']!r}")
        for key in ("pairs", "azimuthal_pairs"):
            if not all(isinstance(p, list | tuple) for p in table.get(key, [])):
                raise ConfigError(f"format '{name}': '{key}' must be an array of [i, j] pairs, got {table[key]!r}")
        collections = tuple(_collection(c, name, k) for k, c in enumerate(table.get("collections", [])))
        parameters = table.get("parameters")
        try:
            return cls(
                tree=str(table["tree"]),
                collections=collections,
                pairs=tuple(tuple(p) for p in table.get("pairs", [])),
                azimuthal_pairs=tuple(tuple(p) for p in table.get("azimuthal_pairs", [])),
                columns=tuple(str(c) for c in table.get("columns", [])),
                parameters=None if parameters is None else tuple(str(p) for p in parameters),
                nonfinite=str(table.get("nonfinite", "drop")),
                weight=table.get("weight"),
                name=name,
            )
        except TypeError as err:
            raise ConfigError(f"format '{name}': {err}") from None


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}{closest(key, sorted(allowed))}")


def _collection(table: dict[str, Any], fmt_name: str, index: int) -> Collection:
    where = f"format '{fmt_name}', collection {index}"
    allowed = {"name", "convention", "layout", "branches", "count", "min_count", "min_pt", "max_abs_eta", "slots",
               "first_index"}
    _check_keys(table, allowed, where)
    for key in ("name", "convention", "branches", "count"):
        if key not in table:
            raise ConfigError(f"{where}: missing key {key!r}")
    branches = table["branches"]
    if not isinstance(branches, dict):
        raise ConfigError(f"{where}: 'branches' must map components to branch names, got {branches!r}")
    try:
        return Collection(
            name=str(table["name"]),
            convention=str(table["convention"]),
            layout=str(table.get("layout", "jagged")),
            branches={str(k): str(v) for k, v in branches.items()},
            count=table["count"],
            min_count=table.get("min_count"),
            min_pt=float(table.get("min_pt", 0.0)),
            max_abs_eta=float(table.get("max_abs_eta", math.inf)),
            slots=table.get("slots"),
            first_index=int(table.get("first_index", 1)),
        )
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: {err}") from None


def _preset_dir():
    return resources.files("mflow_sbi") / "presets"


def preset_names() -> list[str]:
    """Names of the shipped format presets."""
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def load_format(spec: str | os.PathLike | EventFormat | dict) -> EventFormat:
    """An EventFormat from itself, a dict, a preset name (``delphes``, ``nanoaod``) or a TOML file path."""
    if isinstance(spec, EventFormat):
        return spec
    if isinstance(spec, dict):
        return EventFormat.from_dict(spec)
    text = os.fspath(spec)
    if text in preset_names():
        with resources.as_file(_preset_dir() / f"{text}.toml") as path:
            return EventFormat.from_dict(read_toml(path), name=text)
    if not text.endswith(".toml"):
        raise ConfigError(f"format {text!r} is neither a preset ({', '.join(preset_names())}) nor a .toml file")
    return EventFormat.from_dict(read_toml(text), name=Path(text).stem)
