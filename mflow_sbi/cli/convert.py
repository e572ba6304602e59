"""``mflow-sbi convert``: read events from ROOT files with an event format and save them as ``.npz``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mflow_sbi.cli.format_options import add_format_arguments, format_from_args
from mflow_sbi.cli.options import examples
from mflow_sbi.errors import InputError

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="ROOT events -> .npz features (x) and parameters (theta)",
        **examples("mflow-sbi convert events.root --format delphes --out data.npz",
                   "mflow-sbi convert 'run_*.root' --format examples/zmumu_format.toml --out zmumu.npz"))
    parser.add_argument("inputs", nargs="+", metavar="EVENTS.root", help="ROOT files or glob patterns")
    parser.add_argument("--out", required=True, help="output .npz file")
    parser.add_argument("--require-theta", action="store_true", help="fail unless parameter branches are read")
    add_format_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.data.loading import load_any
    from mflow_sbi.data.root_read import ReadStats

    if Path(args.out).suffix != ".npz":
        raise InputError(f"--out must end in .npz, got {args.out}")
    stats = ReadStats()
    fmt = format_from_args(args)
    data = load_any(args.inputs, fmt, require_theta=args.require_theta, step_size=args.step_size, stats=stats)
    path = data.save(args.out)
    log.info("%s; wrote %d x %d features%s to %s", stats.summary(), *data.x.shape,
             "" if data.theta is None else f" and {data.theta.shape[1]} parameters", path)
