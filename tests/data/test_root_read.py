"""Selection and features on synthetic trees, checked against a per-event reference written with math."""

import awkward as ak
import numpy as np
import pytest
import uproot

from mflow_sbi.data.event_format import Collection, EventFormat
from mflow_sbi.data.root_read import ReadStats, read_root, select_leading
from mflow_sbi.errors import DataFileError


@pytest.fixture
def nano_like(tmp_path):
    """A NanoAOD-like tree: jagged Jet_pt/eta/phi/mass and Muon_... with random multiplicities (0-5)."""
    rng = np.random.default_rng(11)
    n = 400
    columns, raw = {}, {}
    for name, eta_max in (("Jet", 5.5), ("Muon", 2.8)):
        counts = rng.integers(0, 6, n)
        total = counts.sum()
        fields = {"pt": rng.uniform(5, 150, total), "eta": rng.uniform(-eta_max, eta_max, total),
                  "phi": rng.uniform(-np.pi, np.pi, total), "mass": rng.uniform(0.1, 20, total)}
        raw[name] = (counts, fields)
        columns[name] = ak.zip({k: ak.unflatten(v.astype(np.float32), counts) for k, v in fields.items()})
    columns["w"] = rng.normal(size=n)
    path = tmp_path / "nano.root"
    with uproot.recreate(path) as file:
        tree = file.mktree("Events", {k: v.type.content if isinstance(v, ak.Array) else v.dtype
                                      for k, v in columns.items()})
        tree.extend(columns)
    return path, raw, columns["w"]


def nano_format(**overrides):
    def coll(name, count, min_pt, max_abs_eta, **extra):
        return Collection(name=name.lower(), convention="pt_eta_phi_mass", count=count, min_pt=min_pt,
                          max_abs_eta=max_abs_eta, branches={c: f"{name}_{c}" for c in ("pt", "eta", "phi", "mass")},
                          **extra)

    table = dict(tree="Events", collections=(coll("Jet", 2, 30.0, 4.7, min_count=3), coll("Muon", 1, 10.0, 2.4)),
                 pairs=((0, 1), (1, 2)), columns=("w",), parameters=())
    table.update(overrides)
    return EventFormat(**table)


def test_selection_and_features_match_a_per_event_reference(nano_like, reference):
    path, raw, w = nano_like
    fmt = nano_format()
    stats = ReadStats()
    data = read_root([path], fmt, stats=stats)
    expected = []
    for event in range(len(w)):
        chosen = []
        for name, count, min_pt, max_eta, need in (("Jet", 2, 30.0, 4.7, 3), ("Muon", 1, 10.0, 2.4, 1)):
            counts, fields = raw[name]
            start = counts[:event].sum()
            objs = [tuple(float(np.float32(fields[c][start + k])) for c in ("pt", "eta", "phi", "mass"))
                    for k in range(counts[event])]
            objs = [o for o in objs if o[0] > min_pt and abs(o[1]) < max_eta]
            objs.sort(key=lambda o: -o[0])
            chosen.append(None if len(objs) < need else [reference.p4(*o) for o in objs[:count]])
        if all(c is not None for c in chosen):
            expected.append(reference.features(chosen, [(0, 1), (1, 2)]) + [w[event]])
    expected = np.array(expected)
    assert 40 < len(expected) < 300  # the cuts matter, in both directions
    assert data.x.shape == expected.shape == (len(expected), 6 * 3 + 8 * 2 + 1)
    np.testing.assert_allclose(data.x, expected, rtol=1e-9, atol=1e-9)
    assert stats == ReadStats(read=len(w), nonfinite=0, failed_selection=len(w) - len(expected),
                              selected=len(expected))
    assert data.theta is None


def test_chunked_reading_gives_the_same_arrays(nano_like):
    path, _, _ = nano_like
    one_shot = read_root([path], nano_format())
    chunked = read_root([path, path], nano_format(), step_size=37)
    np.testing.assert_array_equal(chunked.x, np.concatenate([one_shot.x, one_shot.x]))


def test_select_leading_orders_by_pt_and_applies_cuts():
    coll = Collection(name="j", convention="px_py_pz_e", count=2, min_pt=10.0, max_abs_eta=2.0,
                      branches={c: c for c in ("px", "py", "pz", "e")})
    # event 0: pT 5 (cut), 30, 20 (|eta| > 2: cut), 40; event 1: one object; event 2: no object
    p4 = np.array([[10, 5, 0, 0], [40, 30, 0, 1], [100, 20, 0, 80], [50, 0, 40, 2], [60, 0, 50, 0]], dtype=float)
    selected, passed = select_leading(p4, np.array([4, 1, 0]), coll)
    np.testing.assert_array_equal(passed, [True, False, False])
    np.testing.assert_array_equal(selected[0], p4[[3, 1]])
    np.testing.assert_array_equal(selected[1, 0], p4[4])
    assert np.isnan(selected[1, 1]).all() and np.isnan(selected[2]).all()


def _flat_file(tmp_path, values, name="flat.root"):
    path = tmp_path / name
    with uproot.recreate(path) as file:
        tree = file.mktree("events", {k: np.float64 for k in values})
        tree.extend({k: np.asarray(v, dtype=np.float64) for k, v in values.items()})
    return path


def flat_format(nonfinite="drop", slots=3, count=2):
    coll = Collection(name="mu", convention="px_py_pz_e", layout="flat", count=count, slots=slots, first_index=1,
                      branches={"px": "px{i}", "py": "py{i}", "pz": "pz{i}", "e": "E{i}"})
    return EventFormat(tree="events", collections=(coll,), pairs=((0, 1),), parameters=("p",), nonfinite=nonfinite)


def test_flat_layout_selects_the_leading_slots(tmp_path):
    # three numbered objects per event, stored out of pT order; the reader picks the two hardest
    px = np.array([[10.0, 50.0, 30.0], [60.0, 5.0, 7.0]])
    values = {"p": [0.5, -0.5]}
    for i in range(3):
        values |= {f"px{i + 1}": px[:, i], f"py{i + 1}": [1.0, 2.0], f"pz{i + 1}": [3.0, 4.0],
                   f"E{i + 1}": px[:, i] + 10}
    data = read_root([_flat_file(tmp_path, values)], flat_format())
    np.testing.assert_array_equal(data.x[:, 1], [50.0, 60.0])  # leading px
    np.testing.assert_array_equal(data.x[:, 7], [30.0, 7.0])  # second px
    np.testing.assert_array_equal(data.theta[:, 0], [0.5, -0.5])


def test_nonfinite_values_are_dropped_with_a_count_or_raise(tmp_path):
    rng = np.random.default_rng(2)
    values = {f"{c}{i}": rng.uniform(10, 20, 6) for c in ("px", "py", "pz", "E") for i in (1, 2)}
    values["E1"] += 30
    values["E2"] += 30
    values["p"] = np.arange(6.0)
    values["px2"][1] = np.nan  # bad object
    values["p"][4] = np.inf  # bad parameter
    path = _flat_file(tmp_path, values)
    stats = ReadStats()
    data = read_root([path], flat_format(slots=2), stats=stats)
    assert stats.nonfinite == 2 and stats.selected == 4
    np.testing.assert_array_equal(data.theta[:, 0], [0, 2, 3, 5])
    with pytest.raises(DataFileError, match=r"2 events with NaN/inf values \(first at entry 1\)"):
        read_root([path], flat_format(nonfinite="error", slots=2))


def test_an_rntuple_reads_like_the_same_ttree(tmp_path):
    """ROOT's RNTuple (what uproot >= 5.7 writes with file[name] = ...) is read through the same event format
    as a TTree with the same branches, to the same numbers."""
    import awkward as ak
    import uproot

    from mflow_sbi.data.event_format import EventFormat
    from mflow_sbi.data.loading import load_any

    rng = np.random.default_rng(4)
    counts = rng.integers(2, 4, size=50)
    jets = {f"Jet_{c}": ak.unflatten(rng.uniform(1, 100, counts.sum()) if c != "eta" else rng.normal(size=counts.sum()),
                                      counts) for c in ("pt", "eta", "phi", "mass")}
    flat = {"met": rng.uniform(0, 50, 50), "g": rng.uniform(-1, 1, 50)}
    with uproot.recreate(tmp_path / "tree.root") as file:
        file.mktree("Events", {**{k: "var * float64" for k in jets}, **{k: "float64" for k in flat}})
        file["Events"].extend({**jets, **flat})
    with uproot.recreate(tmp_path / "ntuple.root") as file:
        file["Events"] = {**jets, **flat}
    assert uproot.open(tmp_path / "ntuple.root").classnames(cycle=False)["Events"].endswith("RNTuple")
    fmt = EventFormat.from_dict({"tree": "Events", "collections": [
        {"name": "jet", "convention": "pt_eta_phi_mass", "layout": "jagged", "count": 2,
         "branches": {"pt": "Jet_pt", "eta": "Jet_eta", "phi": "Jet_phi", "mass": "Jet_mass"}}],
        "columns": ["met"], "parameters": ["g"]})
    from_tree, from_ntuple = load_any(tmp_path / "tree.root", fmt), load_any(tmp_path / "ntuple.root", fmt)
    assert from_tree.x.shape == (50, 13)
    np.testing.assert_array_equal(from_ntuple.x, from_tree.x)
    np.testing.assert_array_equal(from_ntuple.theta, from_tree.theta)


def _source(name, **metadata):
    from types import SimpleNamespace

    from mflow_sbi.data.event_format import load_format

    written = {"tree": "events", "columns": ["x0", "x1"]}
    meta = {"simulator": "spherical_gaussian", "parameter_names": ["theta_0"], "parameter_branches": ["theta_0"],
            "prior": ["uniform(-1,1)"], "format": written, **metadata}
    meta = {key: value for key, value in meta.items() if value is not None}
    return SimpleNamespace(path=name, parameters=("theta_0",), metadata=meta, fmt=load_format(written))


def test_files_that_differ_only_in_later_metadata_keys_keep_simulator_and_prior(caplog):
    from mflow_sbi.data.root_read import source_metadata

    new = _source("new.root", simulator_options={"epsilon": 0.05})
    old = _source("old.root", format=None)  # written before the format and options were stored
    meta = source_metadata([new, old])
    assert meta["simulator"] == "spherical_gaussian" and meta["prior"] is not None
    assert meta["simulator_options"] is None  # not recorded by every file
    assert source_metadata([new, new])["simulator_options"] == {"epsilon": 0.05}
    assert "record different" not in caplog.text
    other = _source("other.root", simulator="polynomial_surface")
    with caplog.at_level("WARNING"):
        meta = source_metadata([new, other])
    assert meta["simulator"] is None and meta["prior"] is None
    assert "new.root and other.root record different simulator" in caplog.text
