"""One name per concept in files and metadata, and files written by 0.1 under the old names still read."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from mflow_sbi import layout
from mflow_sbi.cli import main
from mflow_sbi.errors import InputError
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.priors import resolve_prior

ROOT = Path(__file__).resolve().parents[1]


def small_posterior(metadata: dict) -> Posterior:
    rng = np.random.default_rng(0)
    return Posterior(rng.normal(size=(50, 2)), np.zeros(50), ("a", "b"), metadata=metadata)


def test_posterior_files_name_parameters_like_data_files_and_read_the_01_name(tmp_path):
    path = small_posterior({}).save(tmp_path / "p.npz")
    with np.load(path) as fields:
        assert list(fields["parameter_names"]) == ["a", "b"]
    legacy = {key: value for key, value in np.load(path).items() if key != "parameter_names"}  # as 0.1 wrote it
    np.savez(tmp_path / "old.npz", **legacy)
    assert Posterior.load(tmp_path / "old.npz").parameter_names == ("a", "b")


@pytest.mark.parametrize("key", ["observed_theta", "true_theta"])  # true_theta: `run` posteriors of 0.1
def test_plot_marks_the_truth_of_infer_run_and_01_posteriors(tmp_path, monkeypatch, key):
    from mflow_sbi import plotting

    path = small_posterior({key: [0.1, 0.2]}).save(tmp_path / "p.npz")
    seen = {}
    monkeypatch.setattr(plotting, "corner_plot", lambda posteriors, out, truth=None, **options: seen.update(truth=truth))
    assert main(["-q", "plot", str(path), "--out", str(tmp_path / "c.png")]) == 0
    assert list(seen["truth"]) == [0.1, 0.2]


def test_summaries_are_named_after_their_posterior():
    assert layout.summary_path("out/posterior.npz") == Path("out/posterior_summary.json")


def test_library_errors_do_not_name_cli_flags():
    with pytest.raises(InputError) as err:
        resolve_prior(None, None, 1)
    assert "--" not in str(err.value)
    for path in sorted((ROOT / "mflow_sbi").rglob("*.py")):
        if "cli" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                texts = [n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                assert not any(word.startswith("--") for text in texts for word in text.split()), (path, texts)

