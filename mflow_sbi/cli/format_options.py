"""Command-line options describing an event format (for ``convert``, and ``train`` on ROOT files).

``--format NAME|FILE.toml`` picks a preset or a TOML file; the other flags override parts of it or, with
``--tree``, describe a format entirely on the command line::

    --tree events --collection muon:px_py_pz_e:flat:2:px{i},py{i},pz{i},E{i} --pair 0,1

A collection is ``NAME:CONVENTION:LAYOUT:COUNT:B1,B2,B3,B4[:MIN_PT[:MAX_ABS_ETA]]`` with the branches in
the convention's component order (e.g. pt, eta, phi, mass).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from mflow_sbi.data.event_format import CONVENTIONS, Collection, EventFormat, load_format
from mflow_sbi.errors import ConfigError, InputError


def add_format_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("event format (ROOT input)")
    group.add_argument("--format", help="preset name (delphes, nanoaod) or a format .toml file")
    group.add_argument("--tree", help="tree name (overrides the format's)")
    group.add_argument("--collection", action="append", metavar="SPEC",
                       help="NAME:CONVENTION:LAYOUT:COUNT:B1,B2,B3,B4[:MIN_PT[:MAX_ABS_ETA]] (repeatable; "
                            "replaces the format's collections)")
    group.add_argument("--pair", action="append", metavar="I,J", help="object pair for system features (repeatable)")
    group.add_argument("--column", action="append", metavar="BRANCH", help="per-event branch used as a feature")
    group.add_argument("--parameters", metavar="B1[,B2...]", help="branches forming theta")
    group.add_argument("--nonfinite", choices=("drop", "error"), help="drop events with NaN/inf values or fail")
    group.add_argument("--step-size", type=parse_step_size, default=None,
                       help="read ROOT files in chunks of this many entries (or a size such as '100 MB'); "
                            "default: whole files")


def parse_step_size(text: str) -> int | str:
    """Entries (a positive integer) or a size string such as '100 MB' (passed to uproot)."""
    from mflow_sbi.data.root_read import check_step_size

    try:
        return check_step_size(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_collection(spec: str) -> Collection:
    """A Collection from ``NAME:CONVENTION:LAYOUT:COUNT:B1,B2,B3,B4[:MIN_PT[:MAX_ABS_ETA]]``."""
    parts = spec.split(":")
    if not 5 <= len(parts) <= 7:
        raise ConfigError(f"--collection {spec!r}: expected NAME:CONVENTION:LAYOUT:COUNT:B1,B2,B3,B4"
                          "[:MIN_PT[:MAX_ABS_ETA]]")
    name, convention, layout, count, branches = parts[:5]
    if convention not in CONVENTIONS:
        raise ConfigError(f"--collection {spec!r}: convention {convention!r} unknown; use one of "
                          f"{', '.join(CONVENTIONS)}")
    names = branches.split(",")
    if len(names) != 4:
        raise ConfigError(f"--collection {spec!r}: needs 4 branches ({', '.join(CONVENTIONS[convention])})")
    try:
        numbers = [int(count)] + [float(v) for v in parts[5:]]
    except ValueError:
        raise ConfigError(f"--collection {spec!r}: COUNT, MIN_PT and MAX_ABS_ETA must be numbers") from None
    return Collection(name=name, convention=convention, layout=layout, count=numbers[0],
                      branches=dict(zip(CONVENTIONS[convention], names, strict=True)),
                      min_pt=numbers[1] if len(numbers) > 1 else 0.0,
                      max_abs_eta=numbers[2] if len(numbers) > 2 else math.inf)


def _parse_pair(text: str) -> tuple[int, int]:
    try:
        first, second = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--pair {text!r}: expected two object indices I,J") from None
    return first, second


def format_from_args(args: argparse.Namespace) -> EventFormat | None:
    """The EventFormat the flags describe, or None (use the format stored in files written by mflow-sbi)."""
    builds = args.collection or args.pair or args.column
    if args.format is None and not builds and args.tree is None:
        if args.parameters or args.nonfinite:
            raise ConfigError("--parameters/--nonfinite need --format or --tree with --collection/--column")
        return None
    changes: dict = {}
    if args.collection:
        changes["collections"] = tuple(parse_collection(spec) for spec in args.collection)
    if args.pair:
        changes["pairs"] = tuple(_parse_pair(text) for text in args.pair)
    if args.column:
        changes["columns"] = tuple(args.column)
    if args.tree:
        changes["tree"] = args.tree
    if args.parameters:
        changes["parameters"] = tuple(p.strip() for p in args.parameters.split(","))
    if args.nonfinite:
        changes["nonfinite"] = args.nonfinite
    if args.format is not None:
        return dataclasses.replace(load_format(args.format), **changes)
    if "tree" not in changes:
        raise ConfigError("--collection/--pair/--column without --format need --tree")
    return EventFormat(name="command line", **changes)
