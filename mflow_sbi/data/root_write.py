"""Writing events as ROOT TTrees (uproot ``mktree``, so plain ROOT and uproot read them as TTrees).

Two layouts:

- Delphes (:func:`write_delphes`), for simulators with photons and jets: tree ``Delphes`` with jagged
  branches ``Photon.PT, Photon.Eta, Photon.Phi, Photon.E`` sharing the counter ``Photon_size``,
  ``Jet.PT, Jet.Eta, Jet.Phi, Jet.Mass`` sharing ``Jet_size`` (float32, as Delphes writes them, ordered by
  decreasing PT), and per-event branches ``Weight``, one per parameter and optionally ``t_xz_NAME`` per
  joint-score component (float64). As a realistic nuisance some events carry extra, softer photons and
  jets, so readers must select the leading objects; the ``delphes`` preset recovers the simulator's 40
  observables (the stored format, e.g. with ``azimuthal_pairs``, the simulator's observables with its options).
- Flat (:func:`write_flat`): tree ``events`` with one float64 branch per observable and per parameter
  (and ``t_xz_NAME`` per parameter when the joint score is given).

Both store the metadata described in :mod:`mflow_sbi.data.root_files`, so ``load_any(path)`` reads them back
without a format. Files are written to a temporary name and renamed (never half-written).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from mflow_sbi.data import kinematics
from mflow_sbi.data.datasets import EventData
from mflow_sbi.data.root_files import METADATA_KEY, metadata_json
from mflow_sbi.errors import InputError
from mflow_sbi.io import atomic_path
from mflow_sbi.priors import IndependentPrior

DELPHES_TREE = "Delphes"
FLAT_TREE = "events"
WEIGHT_BRANCH = "Weight"
BASKET_EVENTS = 100_000

#: Nuisance objects: probability that an event carries extras, their mean number, and |eta| range.
EXTRA_PHOTONS = {"probability": 0.3, "mean": 1.0, "max_abs_eta": 2.5}
EXTRA_JETS = {"probability": 0.5, "mean": 1.5, "max_abs_eta": 4.7}
EXTRA_PT_FRACTION = (0.2, 0.95)  # extra objects' pT as a fraction of the event's softest leading object


def _four_momenta(array: np.ndarray, what: str, n: int | None) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 3 or array.shape[-1] != 4 or array.shape[1] < 1 or (n is not None and array.shape[0] != n):
        rows = "n" if n is None else n
        raise InputError(f"{what} must have shape ({rows}, k, 4) with (E, px, py, pz), got {array.shape}")
    return array


def _per_event(values: np.ndarray | None, n: int, columns: int, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1 and values.shape == (columns,) and columns > 0:
        values = np.broadcast_to(values, (n, columns))
    if values.shape != (n, columns):
        raise InputError(f"{what} must have shape ({n}, {columns}) or ({columns},), got {values.shape}")
    return values


def _extra_objects(leading: np.ndarray, rng: np.random.Generator, probability: float, mean: float,
                   max_abs_eta: float, massive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Softer extra objects: (M, 4) four-momenta and per-event counts (n,).

    Each event carries 1 + Poisson(mean - 1) extras with the given probability; their pT is a uniform
    fraction of the event's softest leading object, so they never displace the leading ones.
    """
    n = len(leading)
    counts = np.where(rng.random(n) < probability, 1 + rng.poisson(mean - 1.0, n), 0)
    total = int(counts.sum())
    softest = np.repeat(kinematics.transverse_momentum(leading).min(axis=1), counts)
    pt = softest * rng.uniform(*EXTRA_PT_FRACTION, total)
    eta = rng.uniform(-max_abs_eta, max_abs_eta, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    mass = pt * rng.uniform(0.05, 0.2, total) if massive else np.zeros(total)
    p4 = kinematics.from_pt_eta_phi_m(pt, eta, phi, mass)
    events = np.repeat(np.arange(n), counts)
    order = np.lexsort((-kinematics.transverse_momentum(p4), events))
    return p4[order], counts


def _jagged_record(leading: np.ndarray, extra: np.ndarray | None, extra_counts: np.ndarray | None,
                   fields: Sequence[str], dtype: type) -> ak.Array:
    """A jagged record array (events x objects) of Delphes fields, leading objects first."""
    n, k = leading.shape[:2]
    counts = np.full(n, k) if extra is None else k + extra_counts
    flat = leading.reshape(-1, 4)
    if extra is not None:
        events = np.concatenate([np.repeat(np.arange(n), k), np.repeat(np.arange(n), extra_counts)])
        order = np.argsort(events, kind="stable")
        flat = np.concatenate([flat, extra])[order]
    columns = {
        "PT": kinematics.transverse_momentum(flat),
        "Eta": kinematics.pseudorapidity(flat),
        "Phi": kinematics.azimuth(flat),
        "E": flat[:, 0],
        "Mass": kinematics.invariant_mass(flat),
    }
    return ak.zip({f: ak.unflatten(columns[f].astype(dtype), counts) for f in fields})


def _write_tree(path: str | os.PathLike, tree: str, columns: dict, metadata: str, batch: int, **options) -> Path:
    """Create ``tree`` from ``columns`` (equal-length arrays), extended ``batch`` events at a time."""
    n = len(next(iter(columns.values())))
    with atomic_path(path) as tmp:
        with uproot.recreate(tmp) as file:
            types = {key: col.type.content if isinstance(col, ak.Array) else col.dtype for key, col in columns.items()}
            out = file.mktree(tree, types, **options)
            for start in range(0, n, batch):
                out.extend({name: col[start:start + batch] for name, col in columns.items()})
            file[METADATA_KEY] = metadata
    return Path(path)


def _parameter_columns(names: list[str], theta: np.ndarray, t_xz: np.ndarray | None,
                       n: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """One float64 column per parameter and, when ``t_xz`` is given, per joint-score component (``t_xz_NAME``)."""
    theta = _per_event(theta, n, len(names), "theta")
    columns = {name: np.ascontiguousarray(theta[:, i]) for i, name in enumerate(names)}
    scores = [] if t_xz is None else [f"t_xz_{name}" for name in names]
    if t_xz is not None:
        t_xz = _per_event(t_xz, n, len(names), "t_xz")
        columns |= {name: np.ascontiguousarray(t_xz[:, i]) for i, name in enumerate(scores)}
    return columns, scores


def _check_names(names: Sequence[str], reserved: Sequence[str], what: str) -> None:
    clash = sorted(set(names) & set(reserved))
    if len(set(names)) != len(names) or clash:
        raise InputError(f"{what} must be unique and not clash with {list(reserved)}; got {list(names)}")


def write_delphes(path: str | os.PathLike, photons: np.ndarray, jets: np.ndarray, theta: np.ndarray,
                  parameter_names: Sequence[str], weight: np.ndarray | None = None,
                  rng: np.random.Generator | int | None = None, extra_objects: bool = True, *,
                  simulator: str | None = None, prior: IndependentPrior | None = None,
                  t_xz: np.ndarray | None = None, dtype: type = np.float32,
                  batch_events: int = BASKET_EVENTS, event_format: str | dict = "delphes",
                  simulator_options: dict | None = None) -> Path:
    """Write photons and jets in the Delphes layout (see the module docstring).

    ``photons``, ``jets``: (n, k, 4) four-momenta (E, px, py, pz), ordered by decreasing pT.
    ``theta``: (n, p) or (p,). ``weight``: (n,) event weights (default 1). ``rng`` (Generator or seed;
    None means seed 0) draws the extra softer objects when ``extra_objects``. ``t_xz``: optional (n, p)
    joint score, stored as ``t_xz_NAME`` and read back into ``EventData.t_xz``. ``dtype``: float type of
    the object branches (float32 like Delphes; float64 for bit-exact round trips). ``event_format`` (a preset
    name or a format table) and ``simulator_options`` are stored in the metadata: readers without a format
    use that one (e.g. the ``delphes`` preset with the jets' azimuthal asymmetry added), and the events keep
    the simulator's options.
    """
    photons = _four_momenta(photons, "photons", None)
    n = len(photons)
    jets = _four_momenta(jets, "jets", n)
    names = [str(p) for p in parameter_names]
    parameter_columns, scores = _parameter_columns(names, theta, t_xz, n)
    _check_names([*names, *scores], ["Photon_size", "Jet_size", WEIGHT_BRANCH], "parameter names")
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    if weight.shape != (n,):
        raise InputError(f"weight must have shape ({n},), got {weight.shape}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
    photon_extra = _extra_objects(photons, rng, massive=False, **EXTRA_PHOTONS) if extra_objects else (None, None)
    jet_extra = _extra_objects(jets, rng, massive=True, **EXTRA_JETS) if extra_objects else (None, None)
    columns = {
        "Photon": _jagged_record(photons, *photon_extra, ("PT", "Eta", "Phi", "E"), dtype),
        "Jet": _jagged_record(jets, *jet_extra, ("PT", "Eta", "Phi", "Mass"), dtype),
        WEIGHT_BRANCH: weight,
        **parameter_columns,
    }
    metadata = metadata_json(simulator=simulator, parameter_names=names, parameter_branches=names,
                             score_branches=scores, prior=None if prior is None else list(prior.specs),
                             weight_branch=WEIGHT_BRANCH, format=event_format,
                             **({"simulator_options": simulator_options} if simulator_options else {}))
    return _write_tree(path, DELPHES_TREE, columns, metadata, batch_events,
                       field_name=lambda outer, inner: f"{outer}.{inner}", counter_name=lambda name: f"{name}_size")


def write_flat(path: str | os.PathLike, data: EventData, feature_names: Sequence[str] | None = None,
               tree: str = FLAT_TREE, batch_events: int = BASKET_EVENTS) -> Path:
    """Write ``data`` as a flat tree: one float64 branch per observable (``feature_names``, default
    ``x0, x1, ...``), per parameter (``data.parameter_names``, default ``theta_0, ...``) and, when
    ``data.t_xz`` is set, per joint-score component (``t_xz_NAME``)."""
    x = np.asarray(data.x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise InputError(f"x must be a non-empty (n, d) array, got shape {x.shape}")
    n, d = x.shape
    features = [f"x{i}" for i in range(d)] if feature_names is None else [str(f) for f in feature_names]
    if len(features) != d:
        raise InputError(f"{len(features)} feature names for {d} observables")
    columns = {name: np.ascontiguousarray(x[:, i]) for i, name in enumerate(features)}
    parameters: list[str] = []
    scores: list[str] = []
    if data.theta is not None:
        parameters = list(data.parameter_names or [f"theta_{i}" for i in range(np.shape(data.theta)[-1])])
        parameter_columns, scores = _parameter_columns(parameters, data.theta, data.t_xz, n)
        columns |= parameter_columns
    _check_names([*features, *parameters, *scores], [], "feature, parameter and score branch names")
    metadata = metadata_json(simulator=data.simulator, parameter_names=parameters, parameter_branches=parameters,
                             score_branches=scores, prior=None if data.prior is None else list(data.prior.specs),
                             format={"tree": tree, "columns": features},
                             **({"simulator_options": data.simulator_options} if data.simulator_options else {}))
    return _write_tree(path, tree, columns, metadata, batch_events)
