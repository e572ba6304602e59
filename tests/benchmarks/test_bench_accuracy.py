"""The accuracy benchmark's bookkeeping: summaries, target checks and the table, on made-up cells."""

import copy
import json

import pytest

from benchmarks.bench_accuracy import markdown, merge, parse_args, summarize, targets


def fake_results(n_train: int) -> dict:
    cells = []
    for seed in (0, 1):
        for theta in (-0.5, 0.5):
            value = 0.001 * (1 + seed) * (2 if theta > 0 else 1)
            cells.append({"seed": seed, "theta": theta, "mflow": {"mmd2": value, "c2st": 0.52},
                          "sbi": {"mmd2": 0.02, "c2st": 0.6}})
    results = {"setting": {"n_train": n_train, "seeds": [0, 1], "observed": 20}, "cells": cells,
               "training": [{"seed": s, "mflow": {"training_wall_s": 10.0}, "sbi": {"training_wall_s": 5.0}}
                            for s in (0, 1)]}
    results["summary"] = {m: summarize([c[m] for c in cells]) for m in ("mflow", "sbi")}
    return results


def test_summary_and_targets():
    results = fake_results(100_000)
    assert results["summary"]["mflow"]["mmd2"] == {"median": 0.002, "max": 0.004, "min": 0.001}
    checks = targets(results)
    assert checks["mflow_median_mmd2_le_0.003_at_100k"] == {"value": 0.002, "met": True, "setting_matches": True}
    assert checks["mflow_max_mmd2_le_0.01_at_100k"]["met"]
    assert checks["mflow_better_than_sbi_in_every_cell"]["value"] == "4/4"
    results["cells"][0]["mflow"]["mmd2"] = 0.05  # negative control: one bad cell breaks two targets
    results["summary"]["mflow"] = summarize([c["mflow"] for c in results["cells"]])
    checks = targets(results)
    assert not checks["mflow_max_mmd2_le_0.01_at_100k"]["met"]
    assert checks["mflow_better_than_sbi_in_every_cell"] == {"value": "3/4", "met": False, "setting_matches": True}
    assert not targets(fake_results(10_000))["mflow_median_mmd2_le_0.003_at_100k"]["setting_matches"]


def test_table_and_quick_settings():
    table = markdown(fake_results(20_000))
    assert "| M-flow (no score) | 0.002 | 0.004 |" in table and "0.017 (M-flow sequential)" in table
    args = parse_args(["--quick"])
    assert args.n_train == 2000 and args.seeds == "0" and args.out.name == "accuracy_quick.json"


def split_run(results: dict, seed: int) -> dict:
    """The part of ``results`` that a process running only training seed ``seed`` would have written."""
    return {"setting": results["setting"] | {"seeds": [seed]}, "exact": [{"theta": 0.0, "mmd2": 0.0001, "c2st": 0.5,
                                                                            "exact_mean": 0.1, "exact_std": 0.3}],
            "training": [t for t in results["training"] if t["seed"] == seed],
            "cells": [c for c in results["cells"] if c["seed"] == seed], "wall_s": 100 + seed}


def test_merge_recombines_runs_of_single_seeds(tmp_path):
    whole = fake_results(100_000)
    paths = []
    for seed in (0, 1):
        paths.append(tmp_path / f"s{seed}.json")
        paths[-1].write_text(json.dumps(split_run(whole, seed)))
    merged = merge(paths)
    assert merged["setting"]["seeds"] == [0, 1] and len(merged["cells"]) == 4 and merged["wall_s"] == 101
    assert merged["summary"]["mflow"] == whole["summary"]["mflow"]  # the same summary as one run of both seeds
    assert merged["targets"]["mflow_better_than_sbi_in_every_cell"]["value"] == "4/4"
    other = split_run(whole, 1)
    other["setting"]["n_train"] = 10_000  # negative controls: another setting, a repeated seed
    paths[1].write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="setting"):
        merge(paths)
    with pytest.raises(SystemExit, match="repeat"):
        merge([paths[0], paths[0]])


def test_merge_accepts_a_newer_samplers_reference_on_the_same_observed_sets(tmp_path):
    """Runs whose sampler moves differ merge when their exact references agree within the tolerance; a reference
    of other observed sets (mean off by 0.1) does not."""
    whole = fake_results(100_000)
    first, second = split_run(whole, 0), split_run(whole, 1)
    first["setting"]["emcee"] = {"walkers": 64, "moves": "de"}
    second["setting"]["emcee"] = {"walkers": 64, "moves": "independence"}
    second["exact"][0]["exact_mean"] += 0.01
    paths = [tmp_path / "s0.json", tmp_path / "s1.json"]
    for path, run in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(run))
    merged = merge(paths)
    assert merged["setting"]["seeds"] == [0, 1] and set(merged["exact_per_file"]) == {str(p) for p in paths}
    second["exact"][0]["exact_mean"] += 0.1
    paths[1].write_text(json.dumps(second))
    with pytest.raises(SystemExit, match="exact"):
        merge(paths)
    second["exact"][0]["exact_mean"] -= 0.1
    second["setting"]["emcee"]["walkers"] = 32  # another sampler setting than the moves still refuses
    paths[1].write_text(json.dumps(second))
    with pytest.raises(SystemExit, match="setting"):
        merge(paths)


def test_merge_adds_another_models_cells_to_the_same_seeds(tmp_path):
    """A run of sbi alone on the seeds of a run without it: the merged cells hold both, and the sbi target counts."""
    whole = fake_results(100_000)
    without, alone = copy.deepcopy(split_run(whole, 0)), copy.deepcopy(split_run(whole, 0))
    for cell in without["cells"]:
        del cell["sbi"]
    for cell in alone["cells"]:
        del cell["mflow"]
    without["training"] = [{"seed": 0, "mflow": {"training_wall_s": 10.0}}]
    alone["training"] = [{"seed": 0, "sbi": {"training_wall_s": 5.0}}]
    paths = [tmp_path / "mflow.json", tmp_path / "sbi.json"]
    for path, run in zip(paths, (without, alone), strict=True):
        path.write_text(json.dumps(run))
    merged = merge(paths)
    assert merged["training"] == [{"seed": 0, "mflow": {"training_wall_s": 10.0}, "sbi": {"training_wall_s": 5.0}}]
    assert all("mflow" in c and "sbi" in c for c in merged["cells"]) and len(merged["cells"]) == 2
    assert merged["targets"]["mflow_better_than_sbi_in_every_cell"]["value"] == "2/2"


def test_separate_manifolds_train_one_phase_m_per_member():
    """--separate-manifolds: each member's outer flow is its own (differs from the others'); without it the
    members share the one phase-M manifold (identical outer weights) and differ in the inner flow only."""
    import numpy as np
    import torch

    from benchmarks.bench_accuracy import simulate_training, train_mflows
    from mflow_sbi.simulators import get_simulator

    simulator = get_simulator("polynomial_surface")
    theta, x, t_xz = simulate_training(simulator, 300, 0)

    def outer_and_inner(separate: bool) -> tuple[list, list]:
        args = parse_args(["--ensemble", "2", "--epochs-m", "1", "--epochs-d", "1", "--scandal", "0"]
                          + (["--separate-manifolds"] if separate else []))
        members, info = train_mflows(simulator, theta, x, t_xz, args, seed=0)["mflow"]
        assert len(members) == 2 and len(info["epochs_m_run"]) == (2 if separate else 1)
        flat = [[torch.cat([p.detach().ravel() for p in getattr(m, part).parameters()]) for m in members]
                for part in ("outer", "inner")]
        return flat[0], flat[1]

    outer, inner = outer_and_inner(separate=False)
    assert torch.equal(outer[0], outer[1]) and not torch.equal(inner[0], inner[1])
    outer, _ = outer_and_inner(separate=True)
    assert not np.allclose(outer[0].numpy(), outer[1].numpy())
