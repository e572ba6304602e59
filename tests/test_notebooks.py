"""The tutorial notebooks: stored with their outputs (so they render on GitHub and in the docs), and re-executed
here at their stored budget (``BUDGET = 1``, the first code cell) with checks on their numbers.

Each notebook's last cells build a dict ``checks``; the test appends a cell printing it as JSON. The learned
posteriors are compared with the exact ones in units of the exact posterior's standard deviation: the
offset of the mean z = (mean - exact mean) / exact std and the ratio of the standard deviations. The margins
come from runs with the networks' initial weights (torch's seed) and the data seeds varied; the numbers are
in each test's docstring.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PRINT_CHECKS = "import json\nprint(json.dumps(checks))"


def execute(name: str, workdir: Path) -> tuple[nbformat.NotebookNode, dict]:
    """The notebook executed in ``workdir`` by ``notebooks/execute.py``, and its ``checks``."""
    spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    notebook = module.execute(NOTEBOOKS / name, workdir, extra_cells=[PRINT_CHECKS])
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    assert not [o for cell in code_cells for o in cell.outputs if o.output_type == "error"]
    return notebook, json.loads(code_cells[-1].outputs[-1]["text"])


def budget(name: str) -> str:
    return nbformat.read(NOTEBOOKS / name, as_version=4).cells[1].source.splitlines()[0]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stored_with_their_outputs_and_small(path):
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells[0].source.startswith("BUDGET = 1\n")
    assert all(cell.execution_count is not None for cell in code_cells), "run notebooks/execute.py (make notebooks)"
    assert any("image/png" in o.get("data", {}) for cell in code_cells for o in cell.outputs)
    assert not [o for cell in code_cells for o in cell.outputs if o.output_type == "error"]
    assert path.stat().st_size < 400_000


def test_quickstart_matches_the_exact_posterior(tmp_path):
    """Polynomial surface, 3000 events with the joint score (SCANDAL), 8 + 10 epochs. Over torch seeds 0-4
    (data seed 0; the stored run is seed 0) z was +0.09, +0.36, +0.31, -2.17, -1.47 and the std ratio 1.21-1.45;
    thresholds |z| < 3.5 and ratio in (0.6, 1.9). Negative control: the prior U(-1, 1) has std ratio
    0.577 / 0.281 = 2.05 and fails. Data seeds matter more (seed 2's exact mean lies near the prior's edge and
    gave z = -4.1), so the data seed stays fixed."""
    assert budget("01_quickstart.ipynb") == "BUDGET = 1"
    _, checks = execute("01_quickstart.ipynb", tmp_path)
    assert abs(checks["mean_offset_in_exact_std"]) < 3.5
    assert 0.6 < checks["std_ratio"] < 1.9
    assert checks["samples_shape"] == [16 * 250, 1]
    # steps - burn_in = 250 kept steps after the adaptive burn-in of at most 150 steps (checked every 25 from 50)
    burn_in = checks["burn_in_chain_shape"][0]
    assert checks["kept_chain_shape"] == [250, 16, 1] and checks["burn_in_chain_shape"] == [burn_in, 16, 1]
    assert 50 <= burn_in <= 150 and burn_in % 25 == 0
    assert (tmp_path / "quickstart_corner.png").is_file()


def test_lhc_study_compares_mflow_and_af_with_the_exact_posterior(tmp_path):
    """LHC, 5000 events, 5 epochs per phase, reference point (0.5, -0.5), 20 events. Over torch seeds 0-2 for the
    M-flow and training seeds 0-2 for the AF (data seed 0; the stored run is seed 0): M-flow |z| <= 1.94, std
    ratios 1.36-1.80; AF |z| <= 2.56, std ratios 0.69-0.90; thresholds |z| < 4 and ratio in (0.4, 2.4). At this
    budget the checks catch a broken pipeline (wrong data, likelihood or sampler), not a mediocre model: the
    prior N(0, 1) has std ratios 2.0 and 2.2 (exact stds 0.50, 0.46) and would pass. The 26 constraint
    residuals of simulated events are exact up to rounding (4.4e-15 measured; threshold 1e-12)."""
    _, checks = execute("02_lhc_study.ipynb", tmp_path)
    for name in ("M-flow", "AF"):
        assert max(abs(z) for z in checks[name]["mean_offset_in_exact_std"]) < 4.0, name
        assert all(0.4 < ratio < 2.4 for ratio in checks[name]["std_ratio"]), name
    assert checks["residuals_max"] < 1e-12
    assert checks["calibration_ranks_shape"] == [8, 2]
    assert all((tmp_path / name).is_file() for name in ("lhc_observables.png", "lhc_posteriors.png", "lhc_coverage.png"))


def test_root_files_notebook_trains_and_infers_from_root(tmp_path):
    """Polynomial surface in a user's ROOT ntuple, trained with `mflow-sbi train` (3000 events, no score, 8 + 10
    epochs) and inferred with `mflow-sbi infer --observed observed.root`. Over training seeds 0-2 (the stored
    run is seed 0): z +0.03, -0.90, +0.11, std ratio 1.17-1.60; thresholds |z| < 2.5 and ratio in (0.6, 2.0)
    (the prior U(-1, 1), std ratio 2.05, fails the second barely: without the score this budget leaves the
    posterior wide). The observed events read back through the event format equal the ones written, bit
    for bit, and the model directory keeps the event format."""
    _, checks = execute("03_root_files.ipynb", tmp_path)
    assert checks["observed_read_back_exactly"]
    assert abs(checks["mean_offset_in_exact_std"]) < 2.5
    assert 0.6 < checks["std_ratio"] < 2.0
    assert checks["samples_shape"] == [16 * 250, 1]
    assert (tmp_path / "model" / "event_format.toml").is_file() and (tmp_path / "root_corner.png").is_file()
