"""``mflow-sbi simulate``: draw events from a simulator into an ``.npz`` or a ROOT file.

ROOT output (``--out`` ending in ``.root``): simulators with ``sample_events`` (photons and jets) write the
Delphes layout, the others a flat ``events`` tree; see :mod:`mflow_sbi.data.root_write`. ``--chunk-size``
writes the events as several files, simulated as Dask tasks (:mod:`mflow_sbi.workflow.chunked_simulation`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from mflow_sbi.cli.options import add_scheduler_argument, examples, parse_vector
from mflow_sbi.errors import InputError
from mflow_sbi.simulation import simulate_events, simulate_root

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mflow_sbi.simulators import SIMULATORS

    parser = subparsers.add_parser(
        "simulate", help="simulate events (training data or an observed set)",
        **examples("mflow-sbi simulate polynomial_surface --n 20000 --from-prior --seed 1 --joint-score --out train.npz",
                   "mflow-sbi simulate polynomial_surface --n 20 --theta 0.3 --seed 2 --out observed.npz",
                   "mflow-sbi simulate lhc --n 100000 --theta -1,-1 --option smearing=true --out events.root",
                   "mflow-sbi simulate lhc --n 10000000 --from-prior --chunk-size 500000 --out big.root --scheduler local"))
    parser.add_argument("simulator", metavar="SIMULATOR",
                        help=f"one of: {', '.join(sorted(SIMULATORS))}, or your own simulator class as "
                             "package.module:Class or path/to/file.py:Class")
    parser.add_argument("--n", type=int, required=True, help="number of events")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--theta", help="fixed parameter point V[,V...]")
    source.add_argument("--from-prior", action="store_true", help="draw a parameter point per event from the prior")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--joint-score", action="store_true",
                        help="also store the exact joint score t_xz = grad_theta log p(x|theta) per event ")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="simulator option, e.g. smearing=true (lhc) or latent_dim=3 (spherical_gaussian); repeatable")
    parser.add_argument("--out", required=True, help="output file (.npz, or .root for a ROOT TTree)")
    parser.add_argument("--chunk-size", type=int, metavar="N",
                        help="write files of N events each, OUT_00000.npz, OUT_00001.npz, ... (one Dask task per file; "
                             "each file seeded by its own child of SeedSequence(--seed))")
    add_scheduler_argument(parser)
    parser.add_argument("--resume", action="store_true",
                        help="with --chunk-size: keep the complete chunk files of an interrupted run, simulate the rest")
    parser.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """``KEY=VALUE`` strings -> dict; VALUE is read as JSON (numbers, true/false), else kept as a string."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option {item!r} is not of the form KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def run(args: argparse.Namespace) -> None:
    if args.n <= 0:
        raise InputError(f"--n must be positive, got {args.n}")
    if Path(args.out).suffix not in (".npz", ".root"):
        raise InputError(f"--out {args.out}: the output file must end in .npz or .root")
    theta = None if args.from_prior else parse_vector(args.theta, "--theta")
    options = parse_options(args.option)
    if args.chunk_size is not None:
        _simulate_chunks(args, theta, options)
        return
    if args.resume or args.scheduler:
        raise InputError("--resume and --scheduler apply to chunked simulation: give --chunk-size N")
    if Path(args.out).suffix == ".root":
        path = simulate_root(args.simulator, args.n, theta, args.seed, args.out, joint_score=args.joint_score,
                             options=options)
        log.info("wrote %d %s events to %s", args.n, args.simulator, path)
        return
    data = simulate_events(args.simulator, args.n, theta, args.seed, joint_score=args.joint_score, options=options)
    path = data.save(args.out)
    log.info("wrote %d %s events to %s", len(data.x), args.simulator, path)


def _simulate_chunks(args: argparse.Namespace, theta, options: dict) -> None:
    from mflow_sbi.compute import DEFAULT_SCHEDULER
    from mflow_sbi.workflow.chunked_simulation import ChunkPlan, chunk_pattern, simulate_to_files

    if args.chunk_size < 1:
        raise InputError(f"--chunk-size must be positive, got {args.chunk_size}")
    plan = ChunkPlan(args.simulator, args.n, args.chunk_size, args.seed, args.out,
                     theta=None if theta is None else tuple(float(v) for v in theta), joint_score=args.joint_score,
                     options=options)
    paths = simulate_to_files(plan, args.scheduler or DEFAULT_SCHEDULER, resume=args.resume)
    log.info("wrote %d %s events to %d files %s", args.n, args.simulator, len(paths), chunk_pattern(args.out))
