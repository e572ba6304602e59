"""Each bad input gives a specific one-line DataFileError / ConfigError (and the CLI exits 2, writing nothing)."""

import re
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from mflow_sbi.cli import main
from mflow_sbi.data import load_any
from mflow_sbi.data.datasets import EventData
from mflow_sbi.data.event_format import EventFormat, load_format
from mflow_sbi.data.root_read import read_root
from mflow_sbi.data.root_write import write_delphes, write_flat
from mflow_sbi.errors import DataFileError


@pytest.fixture
def delphes_file(tmp_path, lhc_like):
    photons, jets, theta = lhc_like
    return write_delphes(tmp_path / "events.root", photons, jets, theta, ["a", "b"], rng=0)


def test_missing_file_and_not_a_root_file(tmp_path):
    with pytest.raises(DataFileError, match="missing.root: no such file"):
        read_root([tmp_path / "missing.root"], "delphes")
    text = tmp_path / "text.root"
    text.write_text("just some text\n")
    with pytest.raises(DataFileError, match=r"text.root: not a ROOT file \(starts with b'just'"):
        read_root([text], "delphes")


def test_truncated_and_corrupt_files(tmp_path, delphes_file):
    content = delphes_file.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(DataFileError, match=r"truncated.root: truncated ROOT file \(header says \d+ bytes"):
        read_root([truncated], "delphes")
    tiny = tmp_path / "tiny.root"
    tiny.write_bytes(content[:40])
    with pytest.raises(DataFileError, match="tiny.root: corrupt or truncated ROOT file"):
        read_root([tiny], "delphes")
    damaged = bytearray(content)
    middle = len(damaged) // 2
    damaged[middle:middle + 512] = bytes(512)  # zeros over compressed basket data
    corrupt = tmp_path / "corrupt.root"
    corrupt.write_bytes(bytes(damaged))
    with pytest.raises(DataFileError, match="corrupt.root: corrupt or truncated ROOT file"):
        read_root([corrupt], "delphes")


def test_missing_tree_and_branch_name_the_closest(delphes_file):
    with pytest.raises(DataFileError, match=r"no tree 'Events'; trees in file: Delphes"):
        read_root([delphes_file], "nanoaod")
    with pytest.raises(DataFileError, match=r"no tree 'delphes' \(closest: Delphes\); trees in file: Delphes"):
        read_root([delphes_file], load_format("delphes").to_dict() | {"tree": "delphes"})
    table = load_format("delphes").to_dict()
    table["collections"][1]["branches"]["pt"] = "Jet.Pt"
    with pytest.raises(DataFileError, match=r"Delphes: missing branch 'Jet.Pt' \(collection 'jet'\) \(closest: Jet.PT"):
        read_root([delphes_file], EventFormat.from_dict(table))
    with pytest.raises(DataFileError, match="'mflow_sbi' is a TObjString, not a TTree"):
        read_root([delphes_file], EventFormat(tree="mflow_sbi", columns=("x",)))


def test_jagged_flat_mismatch(tmp_path, delphes_file):
    flat = write_flat(tmp_path / "flat.root", EventData(x=np.ones((5, 4))), feature_names=["PT1", "Eta1", "Phi1", "E1"])
    photon = {"name": "photon", "convention": "pt_eta_phi_e", "count": 1,
              "branches": {"pt": "PT1", "eta": "Eta1", "phi": "Phi1", "e": "E1"}}
    with pytest.raises(DataFileError, match=r"branch 'PT1' \(collection 'photon'\) is flat but the format expects "
                                            'jagged; set layout = "flat"'):
        read_root([flat], {"tree": "events", "collections": [photon]})
    flat_photon = photon | {"layout": "flat", "branches": {"pt": "Photon.PT{i}", "eta": "Photon.Eta{i}",
                                                           "phi": "Photon.Phi{i}", "e": "Photon.E{i}"}}
    delphes_like = tmp_path / "jagged.root"
    with uproot.recreate(delphes_like) as file:
        file.mktree("events", {"Photon.PT1": "var * float32"}).extend({"Photon.PT1": ak.Array([[1.0, 2.0], [], [3.0]])})
    with pytest.raises(DataFileError, match=r"'Photon.PT1' \(collection 'photon'\) is jagged but the format expects "
                                            'flat; set layout = "jagged"'):
        read_root([delphes_like], {"tree": "events", "collections": [flat_photon]})
    with pytest.raises(DataFileError, match="branch 'Jet.PT' .column. is jagged but the format expects flat"):
        read_root([delphes_file], EventFormat(tree="Delphes", columns=("Jet.PT",)))


def test_non_numeric_branch(shared_root):
    with pytest.raises(DataFileError, match=r"branch 'Type' \(column\) is not numeric \(char\*\)"):
        read_root([shared_root / "uproot-Zmumu.root"], EventFormat(tree="events", columns=("Type",)))


def test_no_events_pass_the_selection(delphes_file):
    table = load_format("delphes").to_dict()
    table["collections"][1]["min_pt"] = 1e5
    message = ("no events pass the selection (>= 2 photon(s) with pT > 20, |eta| < 2.5; >= 2 jet(s) with pT > 100000, "
               "|eta| < 5): read 1500, 1500 failed it, 0 dropped for NaN/inf values")
    with pytest.raises(DataFileError, match=re.escape(message)):
        read_root([delphes_file], EventFormat.from_dict(table))


def test_parameters_absent_when_training_needs_theta(tmp_path, delphes_file):
    observed = write_flat(tmp_path / "observed.root", EventData(x=np.ones((5, 2))))
    assert read_root([observed]).theta is None  # fine for observed data
    with pytest.raises(DataFileError, match="no parameter branches for theta .needed for training."):
        read_root([observed], require_theta=True)
    listed = EventFormat(tree="events", columns=("x0", "x1"), parameters=("theta_0",))
    assert read_root([observed], listed).theta is None
    with pytest.raises(DataFileError, match=r"missing parameter branch\(es\) needed for training: 'theta_0'"):
        read_root([observed], listed, require_theta=True)
    table = load_format("delphes").to_dict() | {"parameters": ["a", "bb"]}
    with pytest.raises(DataFileError, match=r"'bb' \(closest: b\)"):
        read_root([delphes_file], EventFormat.from_dict(table), require_theta=True)
    plain = tmp_path / "plain.root"
    with uproot.recreate(plain) as file:
        file.mktree("events", {"x0": np.float64}).extend({"x0": np.arange(3.0)})
    with pytest.raises(DataFileError, match="no event format given and the file was not written by mflow-sbi"):
        read_root([plain])


def test_inconsistent_input_files(tmp_path, delphes_file):
    flat = write_flat(tmp_path / "flat.root", EventData(x=np.ones((5, 2))))
    with pytest.raises(DataFileError, match="gives different features"):
        read_root([delphes_file, flat])
    with pytest.raises(DataFileError, match="mixed .npz and .root inputs"):
        load_any([delphes_file, tmp_path / "x.npz"])
    with pytest.raises(DataFileError, match="no files match this pattern"):
        load_any(str(tmp_path / "nothing*.root"))
    with pytest.raises(DataFileError, match="unknown events file type '.csv'"):
        load_any(tmp_path / "events.csv")


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: d / "missing.root", ["--format", "delphes"], "missing.root: no such file"),
        (lambda d: d / "events.root", ["--format", "nanoaod"], "no tree 'Events'"),
        (lambda d: d / "events.root", ["--format", "delphes", "--tree", "Delphes", "--column", "Weigth"],
         "missing branch 'Weigth' (column) (closest: Weight)"),
        (lambda d: d / "events.root", ["--format", "delphez"], "neither a preset"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, delphes_file, capsys, make, args, message):
    out = tmp_path / "out.npz"
    code = main(["convert", str(make(tmp_path)), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mflow-sbi convert: error: ") and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_files_are_closed_after_reading_and_after_errors(delphes_file):
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd to count open files")
    before = len(list(fds.iterdir()))
    for _ in range(5):
        read_root([delphes_file], "delphes", step_size=500)
        with pytest.raises(DataFileError):
            read_root([delphes_file], "nanoaod")
        with pytest.raises(DataFileError):
            read_root([delphes_file, delphes_file], {"tree": "Delphes", "columns": ["Nope"]})
    assert len(list(fds.iterdir())) <= before
