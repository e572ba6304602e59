"""bench_slcp's bookkeeping: mode masses, summaries, targets and the table, on hand-made runs."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_slcp import markdown, mass_error, mode_masses, parse_args, rescore
from mflow_sbi.simulators import get_simulator


def test_mode_masses_and_mass_error():
    signs = np.array([[1, 1, s3, s4, 1] for s3 in (-1, 1) for s4 in (-1, 1)], dtype=float)
    samples = np.repeat(signs, [1, 1, 1, 5], axis=0)
    masses = mode_masses(get_simulator("slcp"), samples)
    np.testing.assert_allclose(masses, [0.125, 0.125, 0.125, 0.625])
    assert mass_error(masses, np.full(4, 0.25)) == 37.5


def _run(c2st: float | None, masses, error_vs_reference: float | None) -> dict:
    run = {"masses": masses, "mass_error_vs_exact_points": mass_error(masses, np.full(4, 0.25))}
    if c2st is not None:
        run.update(c2st=c2st, mass_error_vs_reference_points=error_vs_reference)
    return run


def test_rescore_names_the_default_and_checks_the_targets():
    even = [0.25] * 4
    results = {
        "setting": {}, "held_out_log_likelihood": {"exact": -9.0, "af_coupling": -13.0, "af_maf": -12.0, "af_coupling_old": -14.0,
                                               "sbi_nle": -11.0},
        "models": {"af_coupling": {"family": "coupling", "epochs_cap": 300, "label": "", "epochs_run": 30,
                                   "training_wall_s": 1.0},
                   "af_maf": {"family": "maf", "epochs_cap": 300, "label": "", "epochs_run": 9, "training_wall_s": 1.0},
                   "af_coupling_old": {"family": "coupling", "epochs_cap": 30, "label": "", "epochs_run": 30,
                                       "training_wall_s": 1.0},
                   "sbi_nle": {"label": "sbi", "epochs_run": 5, "training_wall_s": 1.0}, "reference": {"label": "ref"}},
        "runs": {"reference": [_run(None, even, None)] * 3,
                 "af_coupling": [_run(0.8, even, 6.0), _run(0.9, even, 1.0), _run(0.7, even, 2.0)],
                 "af_maf": [_run(0.6, even, 1.0)] * 3, "af_coupling_old": [_run(0.9, even, 1.0)] * 3,
                 "sbi_nle": [_run(0.75, [0.4, 0.2, 0.2, 0.2], 15.0)] * 3},
    }
    rescore(results, "coupling")
    assert results["summary"]["af_coupling"]["c2st"] == {"median": 0.8, "max": 0.9}
    assert results["targets"] == {"af_default_masses_within_5_points_of_reference": False, "af_default_c2st_le_sbi": False}
    labels = {name: record.get("label") for name, record in results["models"].items()}
    assert labels["af_coupling"] == "AF coupling, up to 300 epochs (default)"
    assert labels["af_maf"] == "AF maf, up to 300 epochs"
    assert labels["af_coupling_old"] == "AF coupling, up to 30 epochs (old default)"
    assert results["setting"]["observations_completed"] == 3
    rescore(results, "maf")
    assert results["targets"] == {"af_default_masses_within_5_points_of_reference": True, "af_default_c2st_le_sbi": True}
    table = markdown(results)
    assert "| AF maf, up to 300 epochs (default) | 9 / 1.0 | -12.000 | 0.6 (0.6) |" in table


def test_quick_settings():
    args = parse_args(["--quick"])
    assert (args.n_train, args.observations, args.epochs, args.old_epochs) == (1000, 2, 4, 2)
    assert parse_args([]).epochs is None and parse_args([]).old_epochs == 30


def test_ensemble_label_and_sampler_moves():
    from benchmarks.bench_slcp import SAMPLER, af_label, sampler_settings

    record = {"family": "coupling", "epochs_cap": 300}
    assert af_label("af_coupling", record | {"ensemble": 3}, "coupling") == \
        "ensemble of 3 AF coupling, up to 300 epochs (default)"
    assert af_label("af_coupling", record, "maf") == "AF coupling, up to 300 epochs"
    assert sampler_settings(parse_args([])) == SAMPLER
    assert sampler_settings(parse_args(["--moves", "independence"]))["moves"] == "independence"
    with pytest.raises(SystemExit):
        parse_args(["--ensemble", "0"])
