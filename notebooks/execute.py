"""Execute the tutorial notebooks and store them with their outputs, so they render on GitHub and in the docs.

    .venv/bin/python notebooks/execute.py                      # all notebooks
    .venv/bin/python notebooks/execute.py 02_lhc_study.ipynb   # some

Each notebook runs top to bottom in a fresh kernel inside a temporary folder (the files it writes stay out of
the repository); its outputs, with images at modest resolution, are written back into the ``.ipynb``. The
budget is the ``BUDGET`` variable in each notebook's first code cell. ``tests/test_notebooks.py`` executes
the notebooks the same way (:func:`execute`) and checks their numbers.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 900  # per cell


def execute(path: Path, workdir: Path, extra_cells: list[str] = ()) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed in ``workdir`` (plus ``extra_cells`` appended at the end)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in extra_cells)
    client = NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return notebook


def main(names: list[str]) -> int:
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        began = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:
            notebook = execute(path, Path(workdir))
        nbformat.write(notebook, path)
        print(f"{path.name}: executed in {time.perf_counter() - began:.0f} s, {path.stat().st_size / 1024:.0f} KiB stored")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
