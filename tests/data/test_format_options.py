import argparse
import math

import pytest

from mflow_sbi.cli.format_options import add_format_arguments, format_from_args, parse_collection
from mflow_sbi.data.event_format import load_format
from mflow_sbi.errors import ConfigError


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_format_arguments(parser)
    return format_from_args(parser.parse_args(argv))


def test_collection_spec():
    coll = parse_collection("mu:px_py_pz_e:flat:2:px{i},py{i},pz{i},E{i}:5:2.4")
    assert coll.branches == {"px": "px{i}", "py": "py{i}", "pz": "pz{i}", "e": "E{i}"}
    assert (coll.name, coll.layout, coll.count, coll.min_pt, coll.max_abs_eta) == ("mu", "flat", 2, 5.0, 2.4)
    assert math.isinf(parse_collection("j:pt_eta_phi_mass:jagged:1:a,b,c,d").max_abs_eta)
    for bad, message in [("j:pt_eta_phi_mass:jagged:1", "expected NAME:CONVENTION"),
                         ("j:cartesian:jagged:1:a,b,c,d", "convention 'cartesian' unknown"),
                         ("j:pt_eta_phi_mass:jagged:1:a,b,c", "needs 4 branches (pt, eta, phi, mass)"),
                         ("j:pt_eta_phi_mass:jagged:two:a,b,c,d", "must be numbers")]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_collection(bad)


def test_flags_build_or_override_a_format():
    assert parse() is None
    fmt = parse("--tree", "events", "--collection", "mu:px_py_pz_e:flat:2:px{i},py{i},pz{i},E{i}", "--pair", "0,1",
                "--column", "M", "--parameters", "a, b", "--nonfinite", "error")
    assert fmt.tree == "events" and fmt.pairs == ((0, 1),) and fmt.columns == ("M",)
    assert fmt.parameters == ("a", "b") and fmt.nonfinite == "error" and fmt.n_features == 6 * 2 + 8 + 1
    overridden = parse("--format", "delphes", "--tree", "Other", "--parameters", "p")
    assert overridden.tree == "Other" and overridden.parameters == ("p",)
    assert overridden.collections == load_format("delphes").collections
    with pytest.raises(ConfigError, match="need --tree"):
        parse("--column", "M")
    with pytest.raises(ConfigError, match="--parameters/--nonfinite need --format"):
        parse("--parameters", "a")
    with pytest.raises(ConfigError, match="expected two object indices"):
        parse("--tree", "t", "--column", "M", "--pair", "0")
    with pytest.raises(ConfigError, match=r"pair \[0, 5\]"):
        parse("--format", "delphes", "--pair", "0,5")


@pytest.mark.parametrize("text", ["-3", "0", "ten", "100 parsecs"])
def test_bad_step_sizes_are_rejected(text):
    parser = argparse.ArgumentParser()
    add_format_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--step-size", text])


def test_step_sizes():
    from mflow_sbi.data.root_read import check_step_size
    from mflow_sbi.errors import InputError

    assert check_step_size("250") == 250 and check_step_size("100 MB") == "100 MB" and check_step_size("1GiB")
    with pytest.raises(InputError, match="step size must be a positive number"):
        check_step_size(-1)
