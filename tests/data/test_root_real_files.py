"""Files written by ROOT itself (scikit-hep-testdata, in ../shared/data/root): read each with a format,
compute features, and check them against values computed independently here."""

from pathlib import Path

import numpy as np
import uproot

from mflow_sbi.data import load_any
from mflow_sbi.data.event_format import Collection, EventFormat
from mflow_sbi.data.root_read import ReadStats

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MASS = 5  # index of m within the 8 pair features


def test_zmumu_flat_columns_give_the_z_peak(shared_root):
    path = shared_root / "uproot-Zmumu.root"
    data = load_any(path, EXAMPLES / "zmumu_format.toml")
    branches = uproot.open(path)["events"].arrays(library="np")
    assert data.x.shape == (len(branches["E1"]), 20)
    e, px, py, pz = (branches[f"{c}1"] + branches[f"{c}2"] for c in ("E", "px", "py", "pz"))
    mass = np.sqrt(e**2 - px**2 - py**2 - pz**2)
    np.testing.assert_allclose(data.x[:, 12 + MASS], mass, rtol=1e-10)
    np.testing.assert_allclose(data.x[:, 12 + MASS], branches["M"], rtol=1e-6)  # ROOT's own dimuon mass
    # the muons are ordered by pT (the file's are not; its pt1/pt2 columns come from another track fit)
    pt1, pt2 = np.hypot(branches["px1"], branches["py1"]), np.hypot(branches["px2"], branches["py2"])
    assert np.mean(pt1 < pt2) > 0.2
    np.testing.assert_allclose(data.x[:, 4], np.maximum(pt1, pt2), rtol=1e-12)
    np.testing.assert_allclose(data.x[:, 10], np.minimum(pt1, pt2), rtol=1e-12)
    counts, edges = np.histogram(data.x[:, 12 + MASS], bins=np.arange(60.0, 121.0, 2.0))
    peak = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    assert 89.0 <= peak <= 93.0
    assert abs(np.median(mass[(mass > 80) & (mass < 100)]) - 91.2) < 1.0


def test_hzz_jagged_cartesian_collections(shared_root, reference):
    path = shared_root / "uproot-HZZ.root"
    stats = ReadStats()
    data = load_any(path, EXAMPLES / "hzz_format.toml", stats=stats)
    arrays = uproot.open(path)["events"].arrays(filter_name=["Muon_[EP]*", "Jet_[EP]*", "MET_p*"]).tolist()
    expected = []
    for event in arrays:
        chosen = []
        for name, count, min_pt, max_eta in (("Muon", 2, 5.0, 2.4), ("Jet", 1, 20.0, np.inf)):
            objs = [(float(e), float(px), float(py), float(pz)) for e, px, py, pz in
                    zip(event[f"{name}_E"], event[f"{name}_Px"], event[f"{name}_Py"], event[f"{name}_Pz"],
                        strict=True)]
            objs = [o for o in objs if np.hypot(o[1], o[2]) > min_pt
                    and abs(np.arcsinh(o[3] / np.hypot(o[1], o[2]))) < max_eta]
            objs.sort(key=lambda o: -np.hypot(o[1], o[2]))
            chosen.append(objs[:count] if len(objs) >= count else None)
        if all(c is not None for c in chosen):
            expected.append(reference.features(chosen, [(0, 1)]) + [event["MET_px"], event["MET_py"]])
    expected = np.array(expected)
    assert stats.read == len(arrays) and stats.selected == len(expected) > 100
    np.testing.assert_allclose(data.x, expected, rtol=1e-9, atol=1e-9)


def test_nanoaod_preset_and_a_dijet_selection(shared_root, reference):
    path = shared_root / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    arrays = uproot.open(path)["Events"].arrays(filter_name=[f"{c}_{v}" for c in ("Jet", "Photon")
                                                            for v in ("pt", "eta", "phi", "mass")]).tolist()

    def leading(event, name, count, min_pt, max_eta):
        objs = [(float(pt), float(eta), float(phi), float(m)) for pt, eta, phi, m in
                zip(event[f"{name}_pt"], event[f"{name}_eta"], event[f"{name}_phi"], event[f"{name}_mass"],
                    strict=True) if pt > min_pt and abs(eta) < max_eta]
        objs.sort(key=lambda o: -o[0])
        return [reference.p4(*o) for o in objs[:count]] if len(objs) >= count else None

    expected = []
    for event in arrays:
        chosen = [leading(event, "Photon", 2, 20.0, 2.5), leading(event, "Jet", 2, 20.0, 5.0)]
        if all(c is not None for c in chosen):
            expected.append(reference.features(chosen, [(0, 1), (2, 3)]))
    preset = load_any(path, "nanoaod")
    assert preset.x.shape == (len(expected), 40) and len(expected) >= 1
    np.testing.assert_allclose(preset.x, np.array(expected), rtol=1e-9, atol=1e-9)

    jets = Collection(name="jet", convention="pt_eta_phi_mass", count=2, min_pt=30.0, max_abs_eta=2.4,
                      branches={c: f"Jet_{c}" for c in ("pt", "eta", "phi", "mass")})
    dijet = load_any(path, EventFormat(tree="Events", collections=(jets,), pairs=((0, 1),)))
    expected = [reference.features([c], [(0, 1)]) for c in (leading(e, "Jet", 2, 30.0, 2.4) for e in arrays)
                if c is not None]
    assert len(expected) > 20
    np.testing.assert_allclose(dijet.x, np.array(expected), rtol=1e-9, atol=1e-9)
