"""The LHC benchmark's bookkeeping: target checks, the table and the settings, on made-up cells."""

import pytest

from benchmarks.bench_lhc import markdown, parse_args, parse_points, summarize


def fake_results(jes: float = 0.0) -> dict:
    cells = []
    for i, point in enumerate(([0.0, 0.0], [0.5, 0.0], [-1.0, -1.0])):
        cells.append({"point": point,
                      "mflow": {"c2st": 0.55 + 0.02 * i, "mmd2": 0.01},
                      "af": {"c2st": 0.7, "mmd2": 0.1}, "sbi": {"c2st": 0.9, "mmd2": 0.3}})
    exact = [{"std": [0.5, 0.4], **({"std_nu_fixed": [0.45, 0.38]} if jes else {})} for _ in cells]
    training = {m: {"training_wall_s": 60.0, "figures": {"nll": -1.0}} for m in ("mflow", "af")}
    training["sbi"] = {"training_wall_s": 30.0}
    return {"setting": {"jes": jes}, "models": ["mflow", "af", "sbi"], "cells": cells, "exact": exact,
            "training": training}


def test_targets_follow_the_worst_point():
    results = fake_results()
    summarize(results)
    assert results["summary"]["mflow"]["c2st_max"] == pytest.approx(0.59)
    assert results["targets"]["mflow_c2st_le_0.6_at_every_point"]["met"]
    assert results["targets"]["mflow_better_than_af_and_sbi_at_every_point"]["met"]
    results["cells"][2]["mflow"]["c2st"] = 0.75  # negative control: one point worse than the AF and the bound
    summarize(results)
    assert not results["targets"]["mflow_c2st_le_0.6_at_every_point"]["met"]
    assert not results["targets"]["mflow_better_than_af_and_sbi_at_every_point"]["met"]


def test_table_points_and_quick_settings():
    results = fake_results(jes=0.1)
    summarize(results)
    table = markdown(results)
    assert "| [0.5, 0.0] | 0.570 / 0.01 | 0.700 / 0.1 | 0.900 / 0.3 | [0.5, 0.4] | [0.45, 0.38] |" in table
    assert "exact, nu fixed" in table and "| M-flow | 60 |" in table
    assert parse_points("0,0;0.5,0;-1,-1") == [[0.0, 0.0], [0.5, 0.0], [-1.0, -1.0]]
    args = parse_args(["--quick"])
    assert args.n_train == 1000 and args.out.name == "lhc_quick.json"
    with pytest.raises(SystemExit):
        parse_args(["--models", "mflow,nope"])


def test_simulator_options_carry_the_cp_observable_and_the_nuisance():
    from benchmarks.bench_lhc import simulator_of, simulator_options

    args = parse_args(["--cp-observable", "--jes", "0.1"])
    assert simulator_options(args) == {"jes_uncertainty": 0.1, "cp_observable": True}
    assert simulator_options(args, nuisance=False) == {"cp_observable": True}
    assert simulator_of(args, nuisance=False).data_dim == 41
    assert simulator_options(parse_args([])) == {}
