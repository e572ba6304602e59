import awkward as ak
import numpy as np
import pytest
import uproot

from mflow_sbi.data import kinematics
from mflow_sbi.data.datasets import EventData
from mflow_sbi.data.root_read import ReadStats, read_root
from mflow_sbi.data.root_write import write_delphes, write_flat
from mflow_sbi.errors import InputError
from mflow_sbi.inference.priors import diagonal_normal

PAIRS = [(0, 1), (2, 3)]


def test_delphes_layout_opens_in_plain_uproot(tmp_path, lhc_like):
    photons, jets, theta = lhc_like
    path = write_delphes(tmp_path / "events.root", photons, jets, theta, ["cp_even", "cp_odd"], rng=1)
    file = uproot.open(path)
    assert file.classnames(cycle=False)["Delphes"] == "TTree"
    tree = file["Delphes"]
    assert set(tree.keys()) == {
        "Photon_size", "Photon.PT", "Photon.Eta", "Photon.Phi", "Photon.E",
        "Jet_size", "Jet.PT", "Jet.Eta", "Jet.Phi", "Jet.Mass", "Weight", "cp_even", "cp_odd",
    }
    for collection in ("Photon", "Jet"):
        for leaf in ("PT", "Eta", "Phi"):
            branch = tree[f"{collection}.{leaf}"]
            assert branch.count_branch.name == f"{collection}_size"
            assert branch.interpretation.content.to_dtype == np.float32
    arrays = tree.arrays(library="ak")
    n = len(photons)
    assert len(arrays) == n
    np.testing.assert_array_equal(arrays["Photon_size"], ak.num(arrays["Photon.PT"]))
    np.testing.assert_array_equal(arrays["Weight"], np.ones(n))
    weighted = write_delphes(tmp_path / "w.root", photons, jets, theta, ["a", "b"], weight=np.arange(n) / n)
    np.testing.assert_array_equal(uproot.open(weighted)["Delphes"]["Weight"].array(library="np"), np.arange(n) / n)
    np.testing.assert_array_equal(arrays["cp_odd"], theta[:, 1])
    # the leading objects come first, in the given order, as (PT, Eta, Phi, E / Mass)
    photon_pt = kinematics.transverse_momentum(photons)
    np.testing.assert_allclose(arrays["Photon.PT"][:, :2].to_numpy(), photon_pt, rtol=1e-7)
    np.testing.assert_allclose(arrays["Photon.E"][:, :2].to_numpy(), photons[..., 0], rtol=1e-7)
    np.testing.assert_allclose(arrays["Jet.Eta"][:, :2].to_numpy(), kinematics.pseudorapidity(jets), rtol=1e-6)
    np.testing.assert_allclose(arrays["Jet.Mass"][:, :2].to_numpy(), kinematics.invariant_mass(jets), rtol=1e-5)
    # the nuisance: some events carry extra, softer objects; every collection is ordered by decreasing PT
    for collection in ("Photon", "Jet"):
        counts = ak.to_numpy(ak.num(arrays[f"{collection}.PT"]))
        assert 0.15 < np.mean(counts > 2) < 0.7
        pt = arrays[f"{collection}.PT"]
        assert ak.all(pt[:, 1:] <= pt[:, :-1])


def test_delphes_is_deterministic_and_extras_optional(tmp_path, lhc_like):
    photons, jets, theta = lhc_like
    first = write_delphes(tmp_path / "a.root", photons, jets, theta, ["a", "b"], rng=7)
    second = write_delphes(tmp_path / "b.root", photons, jets, theta, ["a", "b"], rng=np.random.default_rng(7))
    plain = write_delphes(tmp_path / "c.root", photons, jets, theta, ["a", "b"], extra_objects=False)
    read = [uproot.open(p)["Delphes"].arrays(library="ak") for p in (first, second, plain)]
    assert ak.all(read[0]["Jet.PT"] == read[1]["Jet.PT"]) and ak.all(read[0]["Photon.Phi"] == read[1]["Photon.Phi"])
    assert np.all(ak.to_numpy(read[2]["Jet_size"]) == 2) and np.all(ak.to_numpy(read[2]["Photon_size"]) == 2)


def _stored(p4, fourth, dtype):
    """Four-momenta rebuilt from (PT, Eta, Phi, E or Mass) rounded to ``dtype``, as a reader sees them."""
    values = [kinematics.transverse_momentum(p4), kinematics.pseudorapidity(p4), kinematics.azimuth(p4)]
    if fourth == "E":
        return kinematics.from_pt_eta_phi_e(*(v.astype(dtype) for v in (*values, p4[..., 0])))
    return kinematics.from_pt_eta_phi_m(*(v.astype(dtype) for v in (*values, kinematics.invariant_mass(p4))))


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_delphes_round_trip_reproduces_the_observables(tmp_path, lhc_like, dtype, tolerance):
    """Read back with the delphes preset: the extra objects are skipped, the 40 features match."""
    photons, jets, theta = lhc_like
    prior = diagonal_normal([0.0, 0.0], [1.0, 1.0])
    path = write_delphes(tmp_path / "e.root", photons, jets, theta, ["a", "b"], rng=3, dtype=dtype,
                         simulator="lhc", prior=prior, t_xz=-2.0 * theta, batch_events=400)
    stats = ReadStats()
    data = read_root([path], "delphes", require_theta=True, stats=stats)
    # exactly the features of the stored (rounded) values ...
    stored = kinematics.event_features([_stored(photons, "E", dtype), _stored(jets, "Mass", dtype)], PAIRS)
    np.testing.assert_array_equal(data.x, stored)
    # ... which are the simulated ones to the precision of the branches, relative to each feature's scale
    expected = kinematics.event_features([photons, jets], PAIRS)
    assert data.x.shape == expected.shape == (len(photons), 40)
    assert np.max(np.abs(data.x - expected) / np.abs(expected).max(axis=0)) < tolerance
    np.testing.assert_array_equal(data.theta, theta)
    np.testing.assert_array_equal(data.t_xz, -2.0 * theta)
    assert data.parameter_names == ("a", "b") and data.simulator == "lhc" and data.prior.specs == prior.specs
    assert stats == ReadStats(read=len(photons), nonfinite=0, failed_selection=0, selected=len(photons))


def test_flat_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(5)
    data = EventData(x=rng.normal(size=(300, 3)), theta=rng.uniform(-1, 1, (300, 1)), t_xz=rng.normal(size=(300, 1)),
                     simulator="toy", parameter_names=("theta",))
    path = write_flat(tmp_path / "flat.root", data, feature_names=["u", "v", "w"], batch_events=128)
    tree = uproot.open(path)["events"]
    assert tree.keys() == ["u", "v", "w", "theta", "t_xz_theta"]
    np.testing.assert_array_equal(tree["v"].array(library="np"), data.x[:, 1])
    back = read_root([path])
    np.testing.assert_array_equal(back.x, data.x)
    np.testing.assert_array_equal(back.theta, data.theta)
    np.testing.assert_array_equal(back.t_xz, data.t_xz)
    assert back.parameter_names == ("theta",) and back.simulator == "toy" and back.prior is None
    unnamed = read_root([write_flat(tmp_path / "plain.root", EventData(x=data.x))])
    assert unnamed.theta is None and uproot.open(tmp_path / "plain.root")["events"].keys() == ["x0", "x1", "x2"]


def test_writers_reject_bad_arrays_and_leave_no_file(tmp_path, lhc_like):
    photons, jets, theta = lhc_like
    target = tmp_path / "bad.root"
    with pytest.raises(InputError, match=r"jets must have shape \(1500, k, 4\)"):
        write_delphes(target, photons, jets[:10], theta, ["a", "b"])
    with pytest.raises(InputError, match=r"theta must have shape \(1500, 3\)"):
        write_delphes(target, photons, jets, theta, ["a", "b", "c"])
    with pytest.raises(InputError, match=r"weight must have shape \(1500,\)"):
        write_delphes(target, photons, jets, theta, ["a", "b"], weight=np.ones(3))
    with pytest.raises(InputError, match="clash"):
        write_delphes(target, photons, jets, theta, ["Weight", "b"])
    with pytest.raises(InputError, match="2 feature names for 3 observables"):
        write_flat(target, EventData(x=np.zeros((4, 3))), feature_names=["a", "b"])
    with pytest.raises(InputError, match="unique"):
        write_flat(target, EventData(x=np.zeros((4, 2)), theta=np.zeros((4, 1)), parameter_names=("a",)),
                   feature_names=["a", "b"])
    assert list(tmp_path.iterdir()) == []
