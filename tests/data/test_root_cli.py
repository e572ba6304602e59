"""End to end: simulate -> ROOT -> convert / load_any, and load_any on .npz inputs."""

import numpy as np
import pytest
import uproot

from mflow_sbi.cli import main
from mflow_sbi.data import kinematics, load_any
from mflow_sbi.data.datasets import EventData, load_events
from mflow_sbi.errors import InputError
from tests.tiny_models import tiny_job


def test_simulate_flat_root_holds_the_npz_events(tmp_path):
    root, npz = tmp_path / "poly.root", tmp_path / "poly.npz"
    for out in (root, npz):
        args = ["simulate", "polynomial_surface", "--n", "200", "--from-prior", "--seed", "4", "--out", str(out)]
        assert main(args) == 0
    tree = uproot.open(root)["events"]
    assert tree.keys() == ["x0", "x1", "x2", "theta"]
    expected = load_events(npz)
    data = load_any(root, require_theta=True)
    np.testing.assert_array_equal(data.x, expected.x)
    np.testing.assert_array_equal(data.theta, expected.theta)
    assert data.simulator == "polynomial_surface" and data.prior.specs == expected.prior.specs
    assert data.parameter_names == expected.parameter_names


def test_convert_reports_the_selection_and_writes_npz(tmp_path, lhc_like, caplog):
    from mflow_sbi.data.root_write import write_delphes

    photons, jets, theta = lhc_like
    source = write_delphes(tmp_path / "events.root", photons, jets, theta, ["a", "b"], dtype=np.float64)
    out = tmp_path / "data.npz"
    caplog.set_level("INFO")
    assert main(["convert", str(source), "--format", "delphes", "--out", str(out), "--require-theta",
                 "--step-size", "500"]) == 0
    assert "1500 of 1500 events passed the selection" in caplog.text
    data = load_events(out, require_theta=True)
    np.testing.assert_allclose(data.x, kinematics.event_features([photons, jets], [(0, 1), (2, 3)]), rtol=1e-12,
                               atol=1e-9)
    # a format given entirely by flags: the diphoton system only, leading photon above 100 GeV
    flags = ["--tree", "Delphes", "--collection", "photon:pt_eta_phi_e:jagged:2:Photon.PT,Photon.Eta,Photon.Phi,"
             "Photon.E:20:2.5", "--pair", "0,1", "--column", "Weight", "--parameters", "a"]
    assert main(["convert", str(source), "--out", str(out), *flags]) == 0
    data = load_events(out)
    assert data.x.shape == (1500, 6 * 2 + 8 + 1) and data.theta.shape == (1500, 1)
    np.testing.assert_array_equal(data.theta[:, 0], theta[:, 0])
    np.testing.assert_array_equal(data.x[:, -1], 1.0)


def test_load_any_npz_inputs(tmp_path):
    rng = np.random.default_rng(0)
    parts = [EventData(x=rng.normal(size=(5, 2)), theta=rng.normal(size=(5, 1)), parameter_names=("t",))
             for _ in range(2)]
    for i, part in enumerate(parts):
        part.save(tmp_path / f"d{i}.npz")
    joined = load_any(str(tmp_path / "d*.npz"), require_theta=True)
    np.testing.assert_array_equal(joined.x, np.concatenate([p.x for p in parts]))
    assert joined.parameter_names == ("t",)
    single = load_any(tmp_path / "d1.npz")
    np.testing.assert_array_equal(single.theta, parts[1].theta)
    with pytest.raises(InputError, match="an event format applies to ROOT files only"):
        load_any(tmp_path / "d1.npz", "delphes")
    EventData(x=rng.normal(size=(5, 3))).save(tmp_path / "other.npz")
    with pytest.raises(InputError, match="x has 3 columns"):
        load_any([tmp_path / "d0.npz", tmp_path / "other.npz"])


def test_lhc_simulator_round_trip(tmp_path):
    """simulate lhc -> Delphes ROOT -> read with the delphes preset = the simulator's 40 observables."""
    from mflow_sbi.data.root_write import write_delphes
    from mflow_sbi.simulators import get_simulator

    simulator = get_simulator("lhc")
    rng = np.random.default_rng(1)
    theta = np.array([0.5, -0.5])
    photons, jets = simulator.sample_events(theta, 500, rng)
    expected = simulator.observables(photons, jets)
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-4)):
        path = write_delphes(tmp_path / "lhc.root", photons, jets, theta, simulator.parameter_names, rng=2, dtype=dtype)
        data = load_any(path, "delphes", require_theta=True)
        assert data.x.shape == expected.shape == (500, 40)
        assert np.max(np.abs(data.x - expected) / np.abs(expected).max(axis=0)) < tolerance
    out = tmp_path / "cli.root"
    assert main(["simulate", "lhc", "--n", "300", "--theta", "0,0", "--seed", "3", "--out", str(out)]) == 0
    data = load_any(out, require_theta=True)
    assert data.x.shape == (300, 40) and data.parameter_names == tuple(simulator.parameter_names)
    np.testing.assert_array_equal(data.theta, 0.0)


def test_lhc_cp_observable_round_trips_through_its_stored_format(tmp_path):
    """simulate lhc with cp_observable -> Delphes ROOT -> read without a format: the 41 observables of the
    simulator with that option (float32 branches), and the option comes back with the events; the plain
    ``delphes`` preset reads the same file as the default simulator's 40 observables, without the option."""
    from mflow_sbi.simulators import get_simulator

    out = tmp_path / "cp.root"
    assert main(["simulate", "lhc", "--n", "300", "--from-prior", "--seed", "4", "--option", "cp_observable=true",
                 "--out", str(out)]) == 0
    simulator = get_simulator("lhc", cp_observable=True)
    data = load_any(out, require_theta=True)
    assert data.x.shape == (300, 41) and data.simulator_options == {"cp_observable": True}
    assert np.max(simulator.distance_to_manifold(data.x)) < 1e-5  # float32 momenta; a wrong 41st column is O(1)
    plain = load_any(out, "delphes", require_theta=True)
    np.testing.assert_array_equal(plain.x, data.x[:, :40])
    assert plain.simulator_options is None


def test_train_reads_root_files_through_a_format(tmp_path, lhc_like, monkeypatch):
    """``train --data EVENTS.root --format ...`` hands the selected features to training, no .npz needed."""
    from mflow_sbi.cli import train as train_cli
    from mflow_sbi.data.root_write import write_delphes
    from mflow_sbi.inference.priors import diagonal_normal

    photons, jets, theta = lhc_like
    prior = diagonal_normal([0.0, 0.0], [1.0, 1.0])
    for i, part in enumerate((slice(0, 700), slice(700, None))):
        write_delphes(tmp_path / f"ev{i}.root", photons[part], jets[part], theta[part], ["a", "b"], prior=prior,
                      dtype=np.float64)
    received = {}

    def fake_train(data, config, out_dir, resume=False, progress=True, event_format=None):
        received["data"], received["format"] = data, event_format
        return out_dir

    monkeypatch.setattr(train_cli, "train_from_data", fake_train)
    assert main(["train", "--data", str(tmp_path / "ev*.root"), "--format", "delphes", "--step-size", "300",
                 "--out", str(tmp_path / "model")]) == 0
    data = received["data"]
    assert received["format"].name == "delphes"  # recorded in the model directory
    np.testing.assert_allclose(data.x, kinematics.event_features([photons, jets], [(0, 1), (2, 3)]), rtol=1e-12,
                               atol=1e-9)
    np.testing.assert_array_equal(data.theta, theta)
    assert data.prior.specs == prior.specs and data.parameter_names == ("a", "b")


def test_infer_reads_root_observed_events_with_the_models_event_format(tmp_path, capsys):
    """train --format delphes records the format; infer --observed events.root reads with it (no flag), and
    a format with other features than the model's is an error."""
    import json

    config = tmp_path / "tiny.toml"
    config.write_text(tiny_job())
    train, observed, model = tmp_path / "train.root", tmp_path / "observed.root", tmp_path / "model"
    assert main(["-q", "simulate", "lhc", "--n", "300", "--from-prior", "--seed", "1", "--out", str(train)]) == 0
    assert main(["-q", "simulate", "lhc", "--n", "8", "--theta", "0.5,0", "--seed", "2", "--out", str(observed)]) == 0
    assert main(["-q", "train", "--data", str(train), "--format", "delphes", "--out", str(model),
                 "--config", str(config)]) == 0
    record = json.loads((model / "training_data.json").read_text())
    assert record["event_format"] == "delphes" and len(record["feature_names"]) == 40
    assert (model / "event_format.toml").is_file()
    posterior = tmp_path / "posterior.npz"
    assert main(["-q", "infer", "--model", str(model), "--observed", str(observed), "--out", str(posterior),
                 "--walkers", "4", "--steps", "30", "--burn-in", "10", "--init", "prior"]) == 0
    with np.load(posterior) as result:
        assert result["samples"].shape == (4 * 20, 2)
    capsys.readouterr()
    assert main(["infer", "--model", str(model), "--observed", str(observed), "--out", str(tmp_path / "x.npz"),
                 "--format", "delphes", "--pair", "0,1"]) == 2
    assert "gives the features" in capsys.readouterr().err


def test_flat_root_files_keep_the_simulator_options(tmp_path):
    out = tmp_path / "sg.root"
    assert main(["simulate", "spherical_gaussian", "--n", "50", "--from-prior", "--option", "epsilon=0.05",
                 "--out", str(out)]) == 0
    data = load_any(out, require_theta=True)
    assert data.simulator == "spherical_gaussian" and data.simulator_options == {"epsilon": 0.05}
