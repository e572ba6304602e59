"""``mflow-sbi plot-training MODEL_DIR``: plot the learning curves stored with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from mflow_sbi.cli.options import examples
from mflow_sbi.errors import InputError
from mflow_sbi.flows import ensemble_members
from mflow_sbi.layout import LEARNING_CURVES_FILE, member_dir_name


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot-training", help="plot the learning curves of a trained model",
                                   **examples("mflow-sbi plot-training model",
                                              "mflow-sbi plot-training model --out curves.pdf"))
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model directory written by `mflow-sbi train`")
    parser.add_argument("--out", help=f"image to write (default: MODEL_DIR/{LEARNING_CURVES_FILE})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.training.curves import plot_learning_curves
    from mflow_sbi.training.history import load_history

    members = ensemble_members(args.model_dir)
    if members:
        first = Path(args.model_dir) / member_dir_name(0)
        raise InputError(f"{args.model_dir} is an ensemble of {len(members)} models, each with its own learning "
                         f"curves: plot a member's, e.g. mflow-sbi plot-training {first}")
    history = load_history(args.model_dir)
    out = Path(args.out) if args.out else Path(args.model_dir) / LEARNING_CURVES_FILE
    plot_learning_curves(history.records, out)
    print(f"learning curves written to {out}")
