import math
import re
from pathlib import Path

import pytest

from mflow_sbi.data.event_format import Collection, EventFormat, load_format, preset_names
from mflow_sbi.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_presets_give_the_lhc_observable_layout():
    assert preset_names() == ["delphes", "nanoaod"]
    for name in preset_names():
        fmt = load_format(name)
        names = fmt.feature_names()
        assert fmt.n_features == len(names) == 40
        # photon 1, photon 2, jet 1, jet 2 (6 each), then the diphoton and dijet systems (8 each)
        assert names[0] == "photon1_E" and names[6] == "photon2_E" and names[12] == "jet1_E" and names[23] == "jet2_eta"
        assert names[24] == "photon1_photon2_E" and names[29] == "photon1_photon2_m"
        assert names[32] == "jet1_jet2_E" and names[39] == "jet1_jet2_deta"
        assert fmt.parameters is None


def test_example_formats_load():
    hzz = load_format(EXAMPLES / "hzz_format.toml")
    zmumu = load_format(EXAMPLES / "zmumu_format.toml")
    assert hzz.n_features == 6 * 3 + 8 + 2
    assert zmumu.n_features == 20
    assert zmumu.collections[0].component_branches() == [["px1", "px2"], ["py1", "py2"], ["pz1", "pz2"], ["E1", "E2"]]


def test_dict_round_trip():
    fmt = load_format("delphes")
    again = EventFormat.from_dict(fmt.to_dict())
    assert again == fmt
    assert again.collections[0].max_abs_eta == 2.5 and again.collections[1].min_pt == 20.0


def test_azimuthal_pairs_add_one_named_feature_each_and_round_trip():
    fmt = EventFormat.from_dict(load_format("delphes").to_dict() | {"azimuthal_pairs": [[2, 3]]})
    assert fmt.n_features == len(fmt.feature_names()) == 41
    assert fmt.feature_names()[:40] == load_format("delphes").feature_names()
    assert fmt.feature_names()[40] == "jet1_jet2_sin2dphi"
    assert EventFormat.from_dict(fmt.to_dict()) == fmt


def _table(**changes):
    table = {
        "tree": "t",
        "collections": [{"name": "jet", "convention": "pt_eta_phi_mass", "count": 2,
                         "branches": {"pt": "a", "eta": "b", "phi": "c", "mass": "d"}}],
        "pairs": [[0, 1]],
    }
    table.update(changes)
    return table


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_table(tre="x"), "unknown key 'tre' (closest: tree)"),
        ({k: v for k, v in _table().items() if k != "tree"}, "missing key 'tree'"),
        (_table(pairs=[[0, 2]]), "pair [0, 2]"),
        (_table(pairs=[[1, 1]]), "pair [1, 1]"),
        (_table(azimuthal_pairs=[[0, 2]]), "pair [0, 2] of 'azimuthal_pairs' must hold two different object indices"),
        (_table(nonfinite="ignore"), "nonfinite"),
        (_table(collections=[]), "at least one collection or column"),
    ],
)
def test_invalid_formats_name_the_problem(table, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        EventFormat.from_dict(table)


def test_invalid_collections():
    branches = {"pt": "a", "eta": "b", "phi": "c", "mass": "d"}
    with pytest.raises(ConfigError, match="convention 'ptetaphim' unknown"):
        Collection(name="j", convention="ptetaphim", branches=branches, count=1)
    with pytest.raises(ConfigError, match=r"needs branches for \['e', 'eta', 'phi', 'pt'\]"):
        Collection(name="j", convention="pt_eta_phi_e", branches=branches, count=1)
    with pytest.raises(ConfigError, match="min_count"):
        Collection(name="j", convention="pt_eta_phi_mass", branches=branches, count=2, min_count=1)
    with pytest.raises(ConfigError, match="lacks"):
        Collection(name="j", convention="pt_eta_phi_mass", branches=branches, count=1, layout="flat")
    with pytest.raises(ConfigError, match="layout 'ragged'"):
        Collection(name="j", convention="pt_eta_phi_mass", branches=branches, count=1, layout="ragged")
    flat = {k: v + "{i}" for k, v in branches.items()}
    with pytest.raises(ConfigError, match="slots"):
        Collection(name="j", convention="pt_eta_phi_mass", branches=flat, count=3, layout="flat", slots=2)
    coll = Collection(name="j", convention="pt_eta_phi_mass", branches=flat, count=1, layout="flat", slots=3,
                      first_index=0)
    assert coll.component_branches()[0] == ["a0", "a1", "a2"]
    assert coll.required == 1 and math.isinf(coll.max_abs_eta)


def test_format_specs(tmp_path):
    with pytest.raises(ConfigError, match="neither a preset"):
        load_format("delphez")
    with pytest.raises(ConfigError, match="missing.toml: no such file"):
        load_format(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("tree = \n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_format(bad)
    good = tmp_path / "good.toml"
    good.write_text('tree = "events"\ncolumns = ["a", "b"]\nparameters = ["p"]\n')
    fmt = load_format(good)
    assert fmt.columns == ("a", "b") and fmt.parameters == ("p",) and fmt.name == "good"
    assert load_format(fmt) is fmt


@pytest.mark.parametrize(("table", "message"), [
    ({"tree": "t", "collections": 0}, "'collections' must be an array of tables, got 0"),
    ({"tree": "t", "pairs": [1, 2]}, "'pairs' must be an array of \\[i, j\\] pairs"),
    ({"tree": "t", "azimuthal_pairs": [3]}, "'azimuthal_pairs' must be an array of \\[i, j\\] pairs"),
    ({"tree": "t", "columns": "met"}, "'columns' must be an array of branch names"),
])
def test_format_arrays_of_the_wrong_type_are_named(table, message):
    from mflow_sbi.data.event_format import EventFormat
    from mflow_sbi.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        EventFormat.from_dict(table)
