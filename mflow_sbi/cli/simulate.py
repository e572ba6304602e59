"""``mflow-sbi simulate``: draw events from a simulator into an ``.npz`` or a ROOT file.

ROOT output (``--out`` ending in ``.root``): simulators with ``sample_events`` (photons and jets) write the
Delphes layout, the others a flat ``events`` tree; see :mod:`mflow_sbi.data.root_write`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from mflow_sbi.cli.options import parse_vector
from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import InputError

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from simulators import SIMULATORS

    parser = subparsers.add_parser("simulate", help="simulate events (training data or an observed set)")
    parser.add_argument("simulator", choices=sorted(SIMULATORS), metavar="SIMULATOR",
                        help=f"one of: {', '.join(sorted(SIMULATORS))}")
    parser.add_argument("--n", type=int, required=True, help="number of events")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--theta", help="fixed parameter point V[,V...]")
    source.add_argument("--from-prior", action="store_true", help="draw a parameter point per event from the prior")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint-score", action="store_true",
                        help="also store the exact joint score t_xz = grad_theta log p(x|theta) per event ")
    parser.add_argument("--out", required=True, help="output file (.npz, or .root for a ROOT TTree)")
    parser.set_defaults(func=run)


def draw_thetas(simulator, n: int, theta: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """(n, p) parameters: ``theta`` (shape (p,)) repeated, or drawn from the prior when None."""
    if n <= 0:
        raise InputError(f"--n must be positive, got {n}")
    p = len(simulator.parameter_names)
    if theta is None:
        return simulator.prior.sample(n, rng)
    if theta.shape != (p,):
        names = ", ".join(simulator.parameter_names)
        raise InputError(f"{simulator.name} has {p} parameters ({names}), got {theta.size} values")
    return np.tile(theta, (n, 1))


def simulate_events(name: str, n: int, theta: np.ndarray | None, seed: int, joint_score: bool = False) -> EventData:
    """Simulate ``n`` events at ``theta`` (shape (p,)) or, if None, with theta drawn from the prior.

    With ``joint_score`` the exact score grad_theta log p(x|theta) of every event is stored as ``t_xz`` (for
    score-augmented training); simulators without a tractable likelihood raise ``IntractableLikelihood``.
    """
    from simulators import get_simulator

    simulator = get_simulator(name)
    rng = np.random.default_rng(seed)
    thetas = draw_thetas(simulator, n, theta, rng)
    x = simulator.sample(thetas, n, rng)
    t_xz = simulator.joint_score(x, thetas) if joint_score else None
    return EventData(x=x, theta=thetas, t_xz=t_xz, simulator=name, prior=simulator.prior,
                     parameter_names=tuple(simulator.parameter_names))


def simulate_root(name: str, n: int, theta: np.ndarray | None, seed: int, out: str,
                  joint_score: bool = False) -> Path:
    """Simulate into a ROOT file: Delphes layout when the simulator has ``sample_events``, else flat.

    The flat tree holds exactly the events ``simulate_events`` gives for the same seed. With ``joint_score``
    the exact joint score (computed from the float64 observables) is stored too.
    """
    from mflow_sbi.data.root_write import write_delphes, write_flat
    from simulators import get_simulator

    simulator = get_simulator(name)
    if not hasattr(simulator, "sample_events"):
        data = simulate_events(name, n, theta, seed, joint_score=joint_score)
        return write_flat(out, data, feature_names=getattr(simulator, "observable_names", None))
    rng = np.random.default_rng(seed)
    thetas = draw_thetas(simulator, n, theta, rng)
    photons, jets = simulator.sample_events(thetas, n, rng)
    t_xz = simulator.joint_score(simulator.observables(photons, jets), thetas) if joint_score else None
    return write_delphes(out, photons, jets, thetas, simulator.parameter_names, rng=rng, simulator=name,
                         prior=simulator.prior, t_xz=t_xz)


def run(args: argparse.Namespace) -> None:
    theta = None if args.from_prior else parse_vector(args.theta, "--theta")
    if Path(args.out).suffix == ".root":
        path = simulate_root(args.simulator, args.n, theta, args.seed, args.out, joint_score=args.joint_score)
        log.info("wrote %d %s events to %s", args.n, args.simulator, path)
        return
    data = simulate_events(args.simulator, args.n, theta, args.seed, joint_score=args.joint_score)
    path = data.save(args.out)
    log.info("wrote %d %s events to %s", len(data.x), args.simulator, path)
