"""``mflow-sbi info MODEL_DIR``: what a trained model is and what it was trained on, without loading torch."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from mflow_sbi import layout
from mflow_sbi.cli.options import examples
from mflow_sbi.errors import DataFileError
from mflow_sbi.io import read_json
from mflow_sbi.training.history import load_history
from mflow_sbi.workflow.train import read_training_data_record


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a trained model: architecture, prior, training data and options, history",
        description="Describe a model directory written by `mflow-sbi train` (or `run`'s model/).",
        **examples("mflow-sbi info model", "mflow-sbi info mflow_sbi_output/model"))
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model directory written by `mflow-sbi train`")
    parser.set_defaults(func=run)


def history_lines(records: list[dict]) -> list[str]:
    """Per phase: epochs run and the best validation (else training) loss with its epoch."""
    lines = []
    for phase in dict.fromkeys(r["phase"] for r in records):
        rows = [r for r in records if r["phase"] == phase]
        scored = [((r["val"] or r["train"]).get("loss"), r["epoch"]) for r in rows]
        scored = [(v, e) for v, e in scored if v is not None and math.isfinite(v)]
        best = ""
        if scored:
            loss, epoch = min(scored)
            best = f", best {'validation' if rows[0]['val'] else 'training'} loss {loss:.4g} at epoch {epoch + 1}"
        lines.append(f"phase {phase}: {len(rows)} epoch(s){best}")
    return lines


def member_lines(model_dir: Path, members: list[str]) -> list[str]:
    """An ensemble's members: type and manifold dimension, training seed, and their learning-curve summaries."""
    from mflow_sbi.tomlio import read_toml

    lines = [f"ensemble of {len(members)} models (the likelihood is the mean of their log-likelihoods)"]
    for name in members:
        member = model_dir / name
        if not (member / layout.CONFIG_FILE).is_file():
            lines.append(f"  {name}: missing")
            continue
        config = read_toml(member / layout.CONFIG_FILE).get("model", {})
        training = member / layout.TRAINING_CONFIG_FILE
        seed = read_toml(training).get("training", {}).get("seed") if training.is_file() else None
        latent = f", latent_dim {config['latent_dim']}" if "latent_dim" in config else ""
        lines.append(f"  {name}: {config.get('type', '?')}{latent}, seed {seed}")
        if (member / layout.HISTORY_JSON).is_file():
            lines += [f"    {line}" for line in history_lines(load_history(member).records)]
    return lines


def describe(model_dir: str | Path) -> list[str]:
    """The lines ``info`` prints."""
    from mflow_sbi.tomlio import read_toml

    model_dir = Path(model_dir)
    if not (model_dir / layout.CONFIG_FILE).is_file():
        raise DataFileError(f"{model_dir}: not a model directory (no {layout.CONFIG_FILE})")
    config = read_toml(model_dir / layout.CONFIG_FILE)
    model = dict(config.get("model", {}))
    lines = [f"model directory  {model_dir}", f"model type       {model.pop('type', '?')}",
             f"parameters       {', '.join(model.pop('parameter_names', []))}"]
    if "prior" in config:
        lines.append(f"prior            {', '.join(config['prior'].get('specs', []))}")
    members = model.pop("members", None)
    for key, value in model.items():
        lines.append(f"  {key} = {json.dumps(value)}")
    data = read_training_data_record(model_dir)
    if data:
        options = ", ".join(f"{k}={v}" for k, v in (data.get("simulator_options") or {}).items())
        lines.append(f"training data    {data['n_events']} events of dimension {data['data_dim']} from "
                     f"{data.get('simulator') or 'an unnamed source'}{f' ({options})' if options else ''}"
                     f"{', with the joint score' if data.get('joint_score') else ''}")
        if data.get("files"):
            lines.append(f"  files: {', '.join(data['files'])} (event format {data.get('event_format')})")
        lines.append(f"  fingerprint {data['fingerprint']}")
    if (model_dir / layout.TRAINING_CONFIG_FILE).is_file():
        training = read_toml(model_dir / layout.TRAINING_CONFIG_FILE).get("training", {})
        lines.append("training         " + ", ".join(f"{k}={v}" for k, v in training.items()))
    if members:
        lines += member_lines(model_dir, members)
    elif (model_dir / layout.HISTORY_JSON).is_file():
        lines += [f"  {line}" for line in history_lines(load_history(model_dir).records)]
    versions = read_json(model_dir / layout.VERSIONS_FILE) if (model_dir / layout.VERSIONS_FILE).is_file() else None
    if isinstance(versions, dict):
        lines.append("versions         " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return lines


def run(args: argparse.Namespace) -> None:
    print("\n".join(describe(args.model_dir)))
