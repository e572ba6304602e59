"""The ``mflow-sbi`` command.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func`` to the function that runs it (a ``func`` may return an exit status).
Errors print one line on stderr (in a data-parallel run rank 0's only), ``mflow-sbi
COMMAND: error: ...``, and set the exit status (``--debug`` shows the traceback instead):

- 2: usage and input errors (argparse's own, and :class:`mflow_sbi.errors.InputError` with its subclasses);
- 1: failures (:class:`~mflow_sbi.errors.TrainingError`, an intractable likelihood, and operating-system
  errors such as an unwritable output folder or a full disk, named with the file);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence

from mflow_sbi import __version__
from mflow_sbi.errors import InputError, MflowError

SUBCOMMAND_MODULES = ("simulate", "convert", "train", "plot_training", "info", "evaluate", "infer", "plot", "export",
                      "calibrate", "run", "limits")

# Exit status 2: the user's input is wrong (a missing input file included); anything else that fails is 1.
INPUT_ERRORS = (InputError, FileNotFoundError, IsADirectoryError, NotADirectoryError)

# A value such as "-1,-1" or "-0.5" (a parameter point, a prior bound) that argparse would take for a flag.
NEGATIVE_VALUES = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*$")


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--flag -1,-1`` -> ``--flag=-1,-1`` so that argparse reads negative numbers as the flag's value."""
    joined: list[str] = []
    for token in argv:
        previous = joined[-1] if joined else ""
        if NEGATIVE_VALUES.match(token) and previous.startswith("--") and "=" not in previous:
            joined[-1] = f"{previous}={token}"
        else:
            joined.append(token)
    return joined


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; an OSError as "STRERROR: FILENAME" (e.g. "No space left on device")."""
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
        if err.filename2:
            text += f" -> {err.filename2}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def _add_global_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show full tracebacks on errors")
    parser.add_argument("--quiet", "-q", action="store_true", default=default, help="no progress bars, warnings only")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2), pointing to ``--help``
    instead of printing the usage block. Subcommand parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mflow-sbi", description="Simulation-based inference with manifold-learning flows."
    )
    parser.add_argument("--version", action="version", version=f"mflow-sbi {__version__}")
    _add_global_options(parser, False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"mflow_sbi.cli.{name}").add_parser(subparsers)
    # --debug / --quiet are accepted after the subcommand too; SUPPRESS keeps the top-level value otherwise.
    for subparser in subparsers.choices.values():
        _add_global_options(subparser, argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(join_negative_values(argv))
    args.argv = argv
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", message="torch.triangular_solve is deprecated")
    try:
        status = args.func(args)
    except BrokenPipeError:  # the output went to a pipe that closed early (`mflow-sbi info m | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (MflowError, OSError) as err:
        if args.debug:
            raise
        if os.environ.get("RANK", "0") == "0":
            print(f"mflow-sbi {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, INPUT_ERRORS) else 1
    except KeyboardInterrupt:
        print(f"mflow-sbi {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)

