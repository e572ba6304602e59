"""Bad input at every entry point, as one table (docs/reliability.md lists the rows).

Each row runs one ``mflow-sbi`` command in process on a prepared workspace and checks the error contract:
the exit status (2 for usage and input errors, 1 for failures), exactly one line on stderr that starts with
``mflow-sbi`` and contains the row's specific message, no traceback, and nothing left behind in the row's
output folder (no final file, no temporary file).
"""

from __future__ import annotations

import errno
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mflow_sbi.cli import main
from tests.tiny_models import tiny_job

MODEL_CONFIG = tiny_job(latent_dim=2, batch_size=128)


@dataclass(frozen=True)
class Row:
    """``argv`` with {ws} (the shared workspace) and {out} (this row's empty output folder) filled in; ``setup``
    writes this row's extra inputs into {out}/../inputs."""

    id: str
    argv: tuple[str, ...]
    message: str
    code: int = 2
    setup: Callable[[Path, Path], None] | None = None
    patch: str | None = None  # "full_disk" or "unwritable"


def npz(name: str, **arrays) -> Callable[[Path, Path], None]:
    def write(ws: Path, inputs: Path) -> None:
        np.savez(inputs / name, **{k: np.asarray(v) for k, v in arrays.items()})
    return write


def text(name: str, content: str | bytes) -> Callable[[Path, Path], None]:
    def write(ws: Path, inputs: Path) -> None:
        target = inputs / name
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return write


def damaged_model(how: str) -> Callable[[Path, Path], None]:
    """A copy of the workspace's model with its weights truncated, its config replaced or its type foreign."""
    def write(ws: Path, inputs: Path) -> None:
        model = inputs / "model"
        shutil.copytree(ws / "model", model)
        if how == "truncated_weights":
            data = (model / "weights.pt").read_bytes()
            (model / "weights.pt").write_bytes(data[: len(data) // 2])
        elif how == "foreign_type":
            config = (model / "config.toml").read_text().replace('type = "mflow"', 'type = "flowformer"')
            (model / "config.toml").write_text(config)
            (model / "manifest.json").unlink()
        elif how == "newer_version":  # a key this version does not know, as a later version might write
            config = (model / "config.toml").read_text().replace("latent_dim = 2", "latent_dim = 2\nfuture_key = 1")
            (model / "config.toml").write_text(config)
            (model / "manifest.json").unlink()
            (model / "versions.json").write_text('{"mflow_sbi": "9.0.0"}')
        elif how == "no_weights":
            (model / "weights.pt").unlink()
    return write


THREE = np.random.default_rng(0).normal(size=(20, 3))
ROWS = [
    # usage errors (argparse)
    Row("unknown-subcommand", ("simulates",), "invalid choice: 'simulates'"),
    Row("missing-required-flag", ("infer", "--model", "{ws}/model"), "required: --observed, --out"),
    Row("int-flag-not-an-int", ("simulate", "polynomial_surface", "--n", "ten", "--from-prior", "--out", "{out}/x.npz"),
        "argument --n: invalid int value: 'ten'"),
    Row("choice-flag", ("export", "{ws}/posterior.npz", "--format", "xml", "--out", "{out}/p.xml"),
        "argument --format: invalid choice: 'xml'"),
    # simulate
    Row("unknown-simulator", ("simulate", "polynomial_surfaces", "--n", "5", "--from-prior", "--out", "{out}/x.npz"),
        "polynomial_surfaces"),
    Row("theta-wrong-length", ("simulate", "polynomial_surface", "--n", "5", "--theta", "1,2", "--out", "{out}/x.npz"),
        "1 parameters"),
    Row("theta-not-a-number", ("simulate", "polynomial_surface", "--n", "5", "--theta", "abc", "--out", "{out}/x.npz"),
        "abc"),
    Row("theta-nan", ("simulate", "polynomial_surface", "--n", "5", "--theta", "nan", "--out", "{out}/x.npz"),
        "the parameter point must be finite"),
    Row("n-not-positive", ("simulate", "polynomial_surface", "--n", "0", "--from-prior", "--out", "{out}/x.npz"),
        "--n must be positive"),
    Row("unknown-simulator-option", ("simulate", "lhc", "--n", "5", "--from-prior", "--option", "smear=1", "--out",
                                     "{out}/x.npz"), "simulator 'lhc' has no option 'smear'"),
    Row("output-extension", ("simulate", "polynomial_surface", "--n", "5", "--from-prior", "--out", "{out}/x.csv"),
        ".csv"),
    Row("full-disk", ("simulate", "polynomial_surface", "--n", "50", "--from-prior", "--out", "{out}/x.npz"),
        "No space left on device", code=1, patch="full_disk"),
    Row("unwritable-folder", ("simulate", "polynomial_surface", "--n", "50", "--from-prior", "--out", "{out}/x.npz"),
        "Permission denied", code=1, patch="unwritable"),
    # convert
    Row("convert-missing-root-file", ("convert", "{out}/../inputs/none.root", "--format", "delphes", "--out",
                                      "{out}/x.npz"), "none.root"),
    Row("convert-not-a-root-file", ("convert", "{out}/../inputs/fake.root", "--format", "delphes", "--out",
                                    "{out}/x.npz"), "fake.root", setup=text("fake.root", "plain text, not ROOT")),
    Row("convert-unknown-preset", ("convert", "{ws}/events.root", "--format", "cms_nano", "--out", "{out}/x.npz"),
        "cms_nano"),
    Row("convert-bad-collection-spec", ("convert", "{ws}/events.root", "--collection", "jets:ptetaphim", "--out",
                                        "{out}/x.npz"), "jets:ptetaphim"),
    # train: data files
    Row("train-missing-data", ("train", "--data", "{out}/../inputs/none.npz", "--out", "{out}/m"), "none.npz"),
    Row("train-npz-without-x", ("train", "--data", "{out}/../inputs/y.npz", "--out", "{out}/m"), "missing field 'x'",
        setup=npz("y.npz", y=np.zeros((5, 3)))),
    Row("train-x-one-dimensional", ("train", "--data", "{out}/../inputs/flat.npz", "--out", "{out}/m", "--prior",
                                    "uniform(-1,1)"), "must be a numeric 2-D array (N, dim), got shape (30,)",
        setup=npz("flat.npz", x=np.zeros(30), theta=np.zeros((30, 1)))),
    Row("train-theta-rows-differ", ("train", "--data", "{out}/../inputs/rows.npz", "--out", "{out}/m", "--prior",
                                    "uniform(-1,1)"), "field 'theta' has 7 rows but 'x' has 20",
        setup=npz("rows.npz", x=THREE, theta=np.zeros((7, 1)))),
    Row("train-no-finite-event", ("train", "--data", "{out}/../inputs/nan.npz", "--out", "{out}/m", "--prior",
                                  "uniform(-1,1)", "--latent-dim", "2"), "all 20 training events contain NaN or inf",
        setup=npz("nan.npz", x=np.full((20, 3), np.nan), theta=np.zeros((20, 1)))),
    Row("train-empty", ("train", "--data", "{out}/../inputs/empty.npz", "--out", "{out}/m", "--prior", "uniform(-1,1)"),
        "field 'x' holds no events", setup=npz("empty.npz", x=np.zeros((0, 3)), theta=np.zeros((0, 1)))),
    Row("train-object-array", ("train", "--data", "{out}/../inputs/pickled.npz", "--out", "{out}/m"), "pickled.npz",
        setup=npz("pickled.npz", x=np.array([{"a": 1}], dtype=object))),
    # train: options and config
    Row("train-latent-dim-too-large", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--latent-dim", "5"),
        "1 <= latent_dim < data_dim=3, got 5"),
    Row("train-negative-epochs", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--epochs", "-1"),
        "training.epochs must be an integer >= 0 (or unset), got -1"),
    Row("train-missing-config", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--config",
                                 "{out}/../inputs/none.toml"), "none.toml"),
    Row("train-config-unknown-key", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--config",
                                     "{out}/../inputs/bad.toml"), "learnig_rate",
        setup=text("bad.toml", "[training]\nlearnig_rate = 0.1\n")),
    Row("train-config-wrong-type", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--config",
                                    "{out}/../inputs/bad.toml"), "training.batch_size must be an integer >= 1, got 'large'",
        setup=text("bad.toml", "[training]\nbatch_size = \"large\"\n")),
    Row("train-config-not-toml", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--config",
                                  "{out}/../inputs/bad.toml"), "bad.toml", setup=text("bad.toml", "[training\nx = 1\n")),
    Row("train-scandal-without-score", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--scandal", "1"),
        "t_xz"),
    Row("train-bad-prior-spec", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--prior", "uniform(1)"),
        "uniform(1)"),
    Row("train-prior-count", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--prior", "uniform(-1,1)",
                              "--prior", "uniform(-1,1)"),
        "prior has 2 parameters but theta has 1 columns"),
    # model directories
    Row("info-missing-model", ("info", "{out}/../inputs/none"), "none: not a model directory"),
    Row("plot-training-without-history", ("plot-training", "{out}/../inputs", "--out", "{out}/curves.png"),
        "history.json: no such file"),
    Row("info-not-a-model", ("info", "{out}/../inputs"), "inputs: not a model directory (no config.toml)"),
    Row("infer-truncated-weights", ("infer", "--model", "{out}/../inputs/model", "--observed", "{ws}/observed.npz",
                                    "--out", "{out}/p.npz"), "weights.pt", setup=damaged_model("truncated_weights")),
    Row("infer-model-without-weights", ("infer", "--model", "{out}/../inputs/model", "--observed", "{ws}/observed.npz",
                                        "--out", "{out}/p.npz"), "weights.pt", setup=damaged_model("no_weights")),
    Row("infer-model-of-unknown-type", ("infer", "--model", "{out}/../inputs/model", "--observed",
                                        "{ws}/observed.npz", "--out", "{out}/p.npz"), "flowformer",
        setup=damaged_model("foreign_type")),
    Row("infer-model-of-another-version", ("infer", "--model", "{out}/../inputs/model", "--observed",
                                           "{ws}/observed.npz", "--out", "{out}/p.npz"),
        "'future_key'); written by mflow-sbi 9.0.0, this is", setup=damaged_model("newer_version")),
    Row("evaluate-wrong-dimension", ("evaluate", "{ws}/model", "--data", "{out}/../inputs/x4.npz"),
        "events have dimension 4 and 1 parameter(s)", setup=npz("x4.npz", x=np.zeros((10, 4)), theta=np.zeros((10, 1)))),
    # infer: observed data and sampler settings
    Row("infer-observed-wrong-dimension", ("infer", "--model", "{ws}/model", "--observed", "{out}/../inputs/x4.npz",
                                           "--out", "{out}/p.npz"), "observed events have dimension 4, the model expects 3",
        setup=npz("x4.npz", x=np.zeros((10, 4)))),
    Row("infer-observed-empty", ("infer", "--model", "{ws}/model", "--observed", "{out}/../inputs/x0.npz", "--out",
                                 "{out}/p.npz"), "holds no events", setup=npz("x0.npz", x=np.zeros((0, 3)))),
    Row("infer-observed-nan", ("infer", "--model", "{ws}/model", "--observed", "{out}/../inputs/xnan.npz", "--out",
                               "{out}/p.npz"), "NaN or inf in 1 event(s)",
        setup=npz("xnan.npz", x=np.where(np.arange(60).reshape(20, 3) == 7, np.nan, THREE))),
    Row("infer-observed-random-bytes", ("infer", "--model", "{ws}/model", "--observed", "{out}/../inputs/junk.npz",
                                        "--out", "{out}/p.npz"), "junk.npz", setup=text("junk.npz", bytes(range(256)))),
    Row("infer-too-few-walkers", ("infer", "--model", "{ws}/model", "--observed", "{ws}/observed.npz", "--out",
                                  "{out}/p.npz", "--walkers", "1"),
        "need at least 2 x 1 = 2 walkers"),
    Row("infer-burn-in-too-long", ("infer", "--model", "{ws}/model", "--observed", "{ws}/observed.npz", "--out",
                                   "{out}/p.npz", "--steps", "100", "--burn-in", "100"),
        "need at least 4 steps after burn-in"),
    Row("infer-prior-count", ("infer", "--model", "{ws}/model", "--observed", "{ws}/observed.npz", "--out",
                              "{out}/p.npz", "--prior", "uniform(-1,1)", "--prior", "normal(0,1)"),
        "the prior has 2 parameter(s) but the model has 1"),
    Row("infer-output-extension", ("infer", "--model", "{ws}/model", "--observed", "{ws}/observed.npz", "--out",
                                   "{out}/p.txt", "--walkers", "4", "--steps", "30", "--burn-in", "10"), ".txt"),
    # posterior files
    Row("plot-missing-posterior", ("plot", "{out}/../inputs/none.npz", "--out", "{out}/c.png"), "none.npz"),
    Row("plot-random-bytes", ("plot", "{out}/../inputs/junk.npz", "--out", "{out}/c.png"), "junk.npz",
        setup=text("junk.npz", b"PK\x03\x04" + bytes(200))),
    Row("plot-a-root-file", ("plot", "{ws}/events.root", "--out", "{out}/c.png"), "events.root"),
    Row("plot-npz-not-a-posterior", ("plot", "{ws}/train.npz", "--out", "{out}/c.png"), "not a posterior file"),
    Row("plot-truth-wrong-length", ("plot", "{ws}/posterior.npz", "--out", "{out}/c.png", "--truth", "0.1,0.2"),
        "truth must have 1 value(s), got 2"),
    Row("plot-levels-out-of-range", ("plot", "{ws}/posterior.npz", "--out", "{out}/c.png", "--levels", "0.5,1.5"),
        "1.5"),
    Row("export-random-bytes", ("export", "{out}/../inputs/junk.npz", "--format", "csv", "--out", "{out}/p.csv"),
        "junk.npz", setup=text("junk.npz", b"\x00" * 64)),
    # calibrate
    Row("calibrate-unknown-simulator", ("calibrate", "--model", "{ws}/model", "--simulator", "sphere9", "--n-events",
                                        "5", "--out", "{out}/c"), "sphere9"),
    Row("calibrate-no-datasets", ("calibrate", "--model", "{ws}/model", "--simulator", "polynomial_surface",
                                  "--n-datasets", "0", "--n-events", "5", "--out", "{out}/c"),
        "need positive n_datasets"),
    Row("calibrate-simulator-of-another-dimension", ("calibrate", "--model", "{ws}/model", "--simulator", "lhc",
                                                     "--n-datasets", "2", "--n-events", "5", "--out", "{out}/c"),
        "simulator lhc has data dimension 40 and 2 parameter(s); the model has 3 and 1"),
    Row("calibrate-lockstep-zero", ("calibrate", "--model", "{ws}/model", "--simulator", "polynomial_surface",
                                    "--n-datasets", "2", "--n-events", "5", "--lockstep", "0", "--out", "{out}/c"),
        "need positive n_datasets, n_events, n_rank_samples, lockstep; got 2, 5, 99, 0"),
    # devices and scale-out
    Row("infer-unknown-device", ("infer", "--model", "{ws}/model", "--observed", "{ws}/observed.npz", "--out",
                                 "{out}/p.npz", "--device", "tpu"),
        "device must be one of cpu, cuda, auto or cuda:N, got 'tpu'"),
    Row("simulate-chunk-size-zero", ("simulate", "polynomial_surface", "--n", "50", "--from-prior", "--chunk-size", "0",
                                     "--out", "{out}/x.npz"), "--chunk-size must be positive, got 0"),
    Row("train-workers-zero", ("train", "--data", "{ws}/train.npz", "--out", "{out}/m", "--workers", "0"),
        "--workers must be >= 1, got 0"),
    Row("simulate-unknown-scheduler", ("simulate", "polynomial_surface", "--n", "50", "--from-prior", "--chunk-size",
                                       "10", "--scheduler", "slurm", "--out", "{out}/x.npz"),
        "compute.scheduler must be one of ('local', 'threads', 'synchronous') or a scheduler address"),
    # run configs
    Row("run-missing-config", ("run", "{out}/../inputs/none.toml", "--out", "{out}/r"), "none.toml"),
    Row("run-simulation-wrong-type", ("run", "{out}/../inputs/bad.toml", "--out", "{out}/r"),
        "simulation.n_train must be an integer >= 2, got 2.5",
        setup=text("bad.toml", "[simulation]\nn_train = 2.5\n")),
    Row("run-unknown-table", ("run", "{out}/../inputs/bad.toml", "--out", "{out}/r"), "simulaton",
        setup=text("bad.toml", "[simulaton]\nn_train = 100\n")),
    Row("run-bad-set", ("run", "--set", "training.epochs_d", "--out", "{out}/r"), "training.epochs_d"),
    Row("run-unknown-simulator-option", ("run", "--set", "simulation.simulator=\"lhc\"", "--set",
                                         "simulation.options={{smear=true}}", "--out", "{out}/r"), "smear"),
    # limits
    Row("limits-bad-grid", ("limits", "{ws}/model", "--observed", "{ws}/observed.npz", "--grid", "theta=-1:1",
                            "--out", "{out}/l"), "theta=-1:1"),
    Row("limits-unknown-parameter", ("limits", "{ws}/model", "--observed", "{ws}/observed.npz", "--grid",
                                     "phi=-1:1:5", "--out", "{out}/l"), "phi"),
    Row("limits-expected-wrong-length", ("limits", "{ws}/model", "--observed", "{ws}/observed.npz", "--grid",
                                         "theta=-1:1:5", "--expected", "0.1,0.2", "--out", "{out}/l"),
        "theta_0 needs 1 value(s), got [0.1, 0.2]"),
    Row("limits-confidence-level", ("limits", "{ws}/model", "--observed", "{ws}/observed.npz", "--grid",
                                    "theta=-1:1:5", "--cl", "1.2", "--out", "{out}/l"), "1.2"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("workspace")
    (ws / "model.toml").write_text(MODEL_CONFIG)
    commands = [
        ["simulate", "polynomial_surface", "--n", "300", "--from-prior", "--seed", "1", "--out", f"{ws}/train.npz"],
        ["simulate", "polynomial_surface", "--n", "10", "--theta", "0.3", "--seed", "2", "--out", f"{ws}/observed.npz"],
        ["simulate", "lhc", "--n", "20", "--from-prior", "--seed", "3", "--out", f"{ws}/events.root"],
        ["train", "--data", f"{ws}/train.npz", "--out", f"{ws}/model", "--config", f"{ws}/model.toml"],
        ["infer", "--model", f"{ws}/model", "--observed", f"{ws}/observed.npz", "--out", f"{ws}/posterior.npz",
         "--walkers", "4", "--steps", "30", "--burn-in", "10", "--init", "prior"],
    ]
    for argv in commands:
        assert main(["-q", *argv]) == 0, argv
    return ws


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def unwritable(*args, dir=None, **kwargs):  # noqa: A002 - tempfile.mkstemp's keyword
    raise PermissionError(errno.EACCES, "Permission denied", dir)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_one_line_with_the_documented_status_and_leaves_nothing(row, workspace, tmp_path, capsys,
                                                                             monkeypatch):
    out, inputs = tmp_path / "out", tmp_path / "inputs"
    out.mkdir()
    inputs.mkdir()
    if row.setup is not None:
        row.setup(workspace, inputs)
    if row.patch == "full_disk":
        monkeypatch.setattr(zipfile.ZipFile, "open", full_disk)
    elif row.patch == "unwritable":
        monkeypatch.setattr("tempfile.mkstemp", unwritable)
    capsys.readouterr()
    argv = [arg.format(ws=workspace, out=out) for arg in row.argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == row.code, err
    assert len(lines) == 1, err
    assert lines[0].startswith("mflow-sbi") and "Traceback" not in err, err
    assert row.message in lines[0], lines[0]
    assert sorted(p.name for p in out.rglob("*")) == [], "left behind"


def test_the_table_covers_every_subcommand():
    from mflow_sbi.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {row.argv[0] for row in ROWS}
    assert set(subparsers.choices) <= covered


def test_docs_list_every_row_and_count_them():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    assert f"## Bad input: the table ({len(ROWS)} rows)" in doc
    missing = [row.id for row in ROWS if f"| {row.id} |" not in doc]
    assert not missing, missing
