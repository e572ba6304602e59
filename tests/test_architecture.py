"""The layering of CONTRIBUTING.md ("Architecture"), checked on the import statements of every module, and
the lazy package imports that keep ``import mflow_sbi`` and ``mflow-sbi --help`` light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import from a lower layer and from its own package; packages that share a layer
# do not import each other, except the single-file modules of the core (layer 0).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mflow_sbi", "mflow_sbi.errors", "mflow_sbi.io", "mflow_sbi.threads", "mflow_sbi.lazy", "mflow_sbi.layout",
     "mflow_sbi.priors", "mflow_sbi.tomlio", "mflow_sbi.schema", "mflow_sbi.devices",
     "mflow_sbi.compute"),
    ("mflow_sbi.data",),
    ("mflow_sbi.flows", "mflow_sbi.simulators"),
    ("mflow_sbi.training", "mflow_sbi.inference"),
    ("mflow_sbi.simulation", "mflow_sbi.plotting"),
    ("mflow_sbi.config",),
    ("mflow_sbi.workflow",),
    ("mflow_sbi.cli",),
    ("mflow_sbi.__main__",),
)
HEAVY = ("emcee", "scipy.optimize", "matplotlib", "uproot", "torch", "nflows")  # torch alone takes ~1.5 s


def unit(module: str) -> str:
    """The layered unit of a module: its package below mflow_sbi (the top-level simulators/ folder counts as
    mflow_sbi.simulators), or the module itself for single-file modules."""
    parts = module.split(".")
    if parts[0] == "simulators":
        parts = ["mflow_sbi", *parts]
    return ".".join(parts[:2])


def layer(name: str) -> int:
    for index, units in enumerate(LAYERS):
        if name in units:
            return index
    raise AssertionError(f"{name} is in no layer of tests/test_architecture.py (add it, and to CONTRIBUTING.md)")


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imported_modules(path: Path, module: str) -> set[str]:
    """Absolute names of the project modules ``path`` imports at run time (``if TYPE_CHECKING`` blocks aside)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {name for name in found if name.split(".")[0] in ("mflow_sbi", "simulators")}


def project_modules() -> dict[str, Path]:
    modules = {}
    for top in ("mflow_sbi", "simulators"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_every_import_respects_the_layers():
    violations = []
    for module, path in project_modules().items():
        own = unit(module)
        for target in imported_modules(path, module):
            other = unit(target)
            if other == own or layer(other) < layer(own) or layer(other) == layer(own) == 0:
                continue
            violations.append(f"{module} imports {target} ({own}: layer {layer(own)}, {other}: layer {layer(other)})")
    assert not violations, "\n".join(violations)


def test_the_checker_sees_a_violation(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("from mflow_sbi.inference.sampler import sample_posterior\nif TYPE_CHECKING:\n    import mflow_sbi.cli\n")
    assert imported_modules(path, "mflow_sbi.flows.bad") == {"mflow_sbi.inference.sampler"}
    assert layer(unit("mflow_sbi.inference.sampler")) > layer(unit("mflow_sbi.flows.bad"))


def _loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import mflow_sbi",
    "import mflow_sbi.data, mflow_sbi.flows, mflow_sbi.inference, mflow_sbi.training, mflow_sbi.config",
    "import contextlib, io\nfrom mflow_sbi.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])",
])
def test_light_imports_do_not_load_the_sampler_or_plotting_stack(code):
    assert _loaded_after(code) == []


def test_modules_moved_in_the_restructuring_stay_importable_from_their_01_paths():
    import mflow_sbi.inference.priors as old_priors
    import mflow_sbi.priors as priors
    from mflow_sbi.inference import sampler
    from mflow_sbi.inference.potential import PosteriorPotential
    from mflow_sbi.inference.settings import DEFAULT_WALKERS

    assert old_priors.IndependentPrior is priors.IndependentPrior and old_priors.resolve_prior is priors.resolve_prior
    assert sampler.LogPosterior is PosteriorPotential and sampler.DEFAULT_WALKERS == DEFAULT_WALKERS
