"""The build configuration ships every package and runtime file; the simulators install under mflow_sbi."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mflow_sbi.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Import name -> source folder for every folder of mflow_sbi/ and simulators/ that holds files."""
    mapped = {Path(folder): name for name, folder in setuptools_table()["package-dir"].items()}
    folders = {}
    for base in (ROOT / "mflow_sbi", ROOT / "simulators", ROOT / "data" / "simulators"):
        for folder in [base, *sorted(p for p in base.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
            if not any(f.is_file() for f in folder.iterdir()):
                continue
            relative = folder.relative_to(ROOT)
            name = mapped.get(relative) or next(
                (f"{mapped[parent]}.{'.'.join(relative.relative_to(parent).parts)}" for parent in mapped
                 if parent in relative.parents), ".".join(relative.parts))
            folders[name] = folder
    return folders


def test_every_source_folder_is_a_listed_package():
    listed = set(setuptools_table()["packages"])
    missing = sorted(set(package_folders()) - listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert not any(name.split(".")[0] != "mflow_sbi" for name in listed), "only mflow_sbi may be a top-level name"


def test_every_non_python_file_is_package_data():
    patterns = setuptools_table()["package-data"]
    for name, folder in package_folders().items():
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in {".py", ".pyc"}:
                assert any(path.match(p) for p in patterns.get(name, [])), f"{path} is not shipped as package data"


def test_constants_are_read_through_the_package():
    from mflow_sbi.simulators import base

    assert (base.CONSTANTS / "polynomial_surface.json").is_file()
    assert base.load_constants("lhc")["cuts"]


def test_missing_constants_name_the_file(tmp_path, monkeypatch):
    from mflow_sbi.simulators import base

    monkeypatch.setattr(base, "CONSTANTS", tmp_path)
    with pytest.raises(ConfigError, match=r"polynomial_surface\.json are missing from this installation"):
        base.load_constants("polynomial_surface")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match=r"broken\.json are not valid JSON"):
        base.load_constants("broken")


def test_source_checkout_name_is_the_installed_package():
    import mflow_sbi.simulators
    import simulators

    assert simulators is mflow_sbi.simulators
    assert type(simulators.get_simulator("polynomial_surface")) is mflow_sbi.simulators.PolynomialSurface
