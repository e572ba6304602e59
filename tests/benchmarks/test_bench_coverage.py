"""The coverage benchmark's bookkeeping on made-up calibration results."""

import json

import numpy as np
import pytest

from benchmarks import bench_coverage
from benchmarks.bench_coverage import coverage_record, parse_args, targets
from mflow_sbi import layout
from mflow_sbi.errors import InputError
from mflow_sbi.inference.calibration import CalibrationResult


def made_up(credibility: np.ndarray) -> CalibrationResult:
    k = len(credibility)
    ranks = np.arange(k)[:, None] % 100
    return CalibrationResult(np.zeros((k, 1)), ranks, credibility, 99, ("theta",))


def test_calibrated_credibilities_meet_the_target_and_overconfident_ones_do_not():
    calibrated = coverage_record(made_up((np.arange(200) + 0.5) / 200), wall_s=1.0)
    assert calibrated["coverage"]["0.68"] == pytest.approx(0.68)
    assert calibrated["binomial_sd_points"]["0.68"] == pytest.approx(3.3, abs=0.01)
    assert all(t["met"] for t in targets(calibrated).values())
    # overconfident: the truth sits in the outer 20% of every posterior, never inside the 68% region
    overconfident = coverage_record(made_up(np.linspace(0.8, 0.99, 200)), wall_s=1.0)
    assert overconfident["deviation_points"]["0.68"] == pytest.approx(-68.0)
    checks = targets(overconfident)
    assert not checks["coverage_0.68_within_3_points"]["met"] and checks["coverage_0.95_within_3_points"]["met"] is False


def test_settings_and_output_names():
    args = parse_args(["--quick", "--simulator", "lhc"])
    assert args.datasets == 6 and args.out.name == "coverage_lhc_quick.json"
    assert parse_args([]).datasets == 200 and parse_args([]).plot.name == "coverage_polynomial_surface.png"


def test_a_model_trained_on_another_simulator_or_options_is_refused(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / layout.TRAINING_DATA_RECORD_FILE).write_text(
        json.dumps({"simulator": "lhc", "simulator_options": {"cp_observable": True}}))
    bench_coverage.check_model_source(model_dir, "lhc", {"cp_observable": True, "smearing": False})  # same simulator
    with pytest.raises(InputError, match="trained on 'lhc' events with options {'cp_observable': True}"):
        bench_coverage.check_model_source(model_dir, "lhc", {})
    with pytest.raises(InputError, match="not on 'polynomial_surface'"):
        bench_coverage.check_model_source(model_dir, "polynomial_surface", {})
    bench_coverage.check_model_source(tmp_path, "lhc", {})  # no training record: nothing to compare
