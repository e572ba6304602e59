"""Parsers for option values shared by several subcommands."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from mflow_sbi.errors import InputError


def examples(*commands: str) -> dict:
    """``add_parser`` keywords that end a subcommand's help with example command lines."""
    return {"epilog": "examples:\n" + "\n".join(f"  {command}" for command in commands),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def parse_vector(text: str, what: str = "value") -> np.ndarray:
    """Parse ``V[,V...]`` into a float64 vector."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"{what} {text!r} is not a comma-separated list of numbers") from None
    return np.array(values, dtype=np.float64)


def add_device_argument(parser: argparse.ArgumentParser, default_from: str) -> None:
    """``--device cpu|cuda|auto`` (or cuda:N); unset, the value comes from ``default_from`` (a config key)."""
    parser.add_argument("--device", metavar="DEVICE",
                        help=f"where the model runs: cpu, cuda (cuda:N) or auto = cuda when available "
                             f"(default: {default_from}, auto)")


def add_scheduler_argument(parser: argparse.ArgumentParser) -> None:
    """``--scheduler local|threads|synchronous|tcp://HOST:PORT`` (unset: the ``[compute] scheduler`` default)."""
    parser.add_argument("--scheduler", metavar="SCHEDULER",
                        help="Dask scheduler of the tasks: local (a local cluster sized to the machine, the default), "
                             "threads, synchronous, or the address tcp://HOST:PORT of a running cluster")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal and without --quiet (logs and CI stay clean)."""
    return not args.quiet and sys.stderr.isatty()
