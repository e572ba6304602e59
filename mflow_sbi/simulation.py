"""Simulating data sets from the registered simulators (used by `simulate`, `run` and the tests).

Simulator keyword options (e.g. ``latent_dim`` of the spherical Gaussian, ``smearing`` of the LHC generator)
are stored with ``.npz`` data sets as ``simulator_options``, so later steps rebuild the same simulator.

The ``[simulation]`` table of a run configuration (:class:`SimulationConfig`):

    simulator    a registered simulator (``mflow_sbi.simulators.SIMULATORS``) or your own, as
                 ``package.module:Class`` or ``path/to/file.py:Class``
    n_train      training events, theta drawn from the prior
    n_observed   observed events, all at observed_theta
    true_theta   the parameter point of the observed events
    seed         the training set's seed (the observed set uses seed + 1)
    joint_score  store the exact joint score t_xz with the training events (for SCANDAL)
    reference    also sample the exact-likelihood posterior when the simulator has one
    chunk_size   0: the training set in one file; else in files of this many events, simulated as Dask tasks
                 on ``[compute] scheduler`` (:mod:`mflow_sbi.workflow.chunked_simulation`; resumable)
    [simulation.options]  the simulator's keyword arguments
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import InputError
from mflow_sbi.schema import BOOLEAN, NUMBERS, SUBTABLE, Rule, Table, integer, setting
from mflow_sbi.simulators import SIMULATORS, is_user_simulator

SIMULATOR_NAME = Rule(f"one of {tuple(sorted(SIMULATORS))} or your own as package.module:Class",
                      lambda v: isinstance(v, str) and (v in SIMULATORS or is_user_simulator(v)))


@dataclass
class SimulationConfig(Table):
    """The ``[simulation]`` table (see the module docstring)."""

    TABLE = "simulation"

    simulator: str = setting("polynomial_surface", SIMULATOR_NAME)
    n_train: int = setting(20000, integer(2))
    n_observed: int = setting(20, integer(1))
    true_theta: list[float] = setting([0.3], NUMBERS)
    seed: int = setting(1, integer(0))
    joint_score: bool = setting(True, BOOLEAN)
    reference: bool = setting(True, BOOLEAN)
    options: dict[str, Any] = setting({}, SUBTABLE)
    chunk_size: int = setting(0, integer(0))


def draw_thetas(simulator, n: int, theta: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """(n, p) parameters: ``theta`` (shape (p,)) repeated, or drawn from the prior when None."""
    if n <= 0:
        raise InputError(f"the number of events must be positive, got {n}")
    p = len(simulator.parameter_names)
    if theta is None:
        return simulator.prior.sample(n, rng)
    if theta.shape != (p,):
        names = ", ".join(simulator.parameter_names)
        raise InputError(f"{simulator.name} has {p} parameters ({names}), got {theta.size} values")
    if not np.all(np.isfinite(theta)):
        raise InputError(f"the parameter point must be finite, got {theta.tolist()}")
    return np.tile(theta, (n, 1))


def simulate_events(
    name: str, n: int, theta: np.ndarray | None, seed: int | np.random.SeedSequence, joint_score: bool = False,
    options: dict | None = None,
) -> EventData:
    """Simulate ``n`` events at ``theta`` (shape (p,)) or, if None, with theta drawn from the prior; ``seed``
    (an integer or a SeedSequence) seeds ``numpy.random.default_rng``.

    With ``joint_score`` the exact score grad_theta log p(x|theta) of every event is stored as ``t_xz`` (for
    score-augmented training); simulators without a tractable likelihood raise ``IntractableLikelihood``.
    ``options`` are the simulator's keyword arguments.
    """
    from mflow_sbi.simulators import get_simulator

    simulator = get_simulator(name, **(options or {}))
    rng = np.random.default_rng(seed)
    thetas = draw_thetas(simulator, n, theta, rng)
    x = simulator.sample(thetas, n, rng)
    t_xz = simulator.joint_score(x, thetas) if joint_score else None
    return EventData(x=x, theta=thetas, t_xz=t_xz, simulator=name, prior=simulator.prior,
                     parameter_names=tuple(simulator.parameter_names), simulator_options=dict(options or {}),
                     parameter_labels=tuple(getattr(simulator, "parameter_labels", simulator.parameter_names)))


def simulate_root(name: str, n: int, theta: np.ndarray | None, seed: int | np.random.SeedSequence, out: str,
                  joint_score: bool = False, options: dict | None = None) -> Path:
    """Simulate into a ROOT file: Delphes layout when the simulator has ``sample_events``, else flat.

    The flat tree holds exactly the events ``simulate_events`` gives for the same seed. With ``joint_score``
    the exact joint score (computed from the float64 observables) is stored too.
    """
    from mflow_sbi.data.root_write import write_delphes, write_flat
    from mflow_sbi.simulators import get_simulator

    simulator = get_simulator(name, **(options or {}))
    if not hasattr(simulator, "sample_events"):
        data = simulate_events(name, n, theta, seed, joint_score=joint_score, options=options)
        return write_flat(out, data, feature_names=getattr(simulator, "observable_names", None))
    rng = np.random.default_rng(seed)
    thetas = draw_thetas(simulator, n, theta, rng)
    photons, jets = simulator.sample_events(thetas, n, rng)
    t_xz = simulator.joint_score(simulator.observables(photons, jets), thetas) if joint_score else None
    return write_delphes(out, photons, jets, thetas, simulator.parameter_names, rng=rng, simulator=name,
                         prior=simulator.prior, t_xz=t_xz, event_format=getattr(simulator, "root_format", "delphes"),
                         simulator_options=options)
