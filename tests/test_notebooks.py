"""Execute the tutorial notebooks: each must run top to bottom (nbclient raises on a failing cell)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPECTED_FILES = {"01_quickstart.ipynb": ["quickstart_corner.png"]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    for name in EXPECTED_FILES.get(path.name, []):
        assert (tmp_path / name).is_file(), name


def test_notebooks_exist():
    assert NOTEBOOKS, "no tutorial notebooks found"
