"""The interface every simulator implements, and shared helpers.

All arrays are float64 numpy arrays; every random draw goes through an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Protocol, runtime_checkable

import numpy as np

from mflow_sbi.errors import ConfigError, InputError, IntractableLikelihood
from mflow_sbi.priors import IndependentPrior

__all__ = ["Simulator", "IntractableLikelihood", "broadcast_theta", "check_x", "load_constants", "nuisance_names",
           "CONSTANTS"]

#: Where the published constants live: ``data/simulators/`` in the repository, shipped as the package data
#: ``mflow_sbi.simulators.constants`` (one ``NAME.json`` per simulator).
CONSTANTS = resources.files("mflow_sbi.simulators.constants")


@runtime_checkable
class Simulator(Protocol):
    """A simulator with known data manifold (and, where tractable, known likelihood).

    Optional method (not part of the checked protocol; ``rate = "simulator"`` needs it):

    ``expected_events(theta, luminosity) -> (K,)``: nu(theta) = luminosity x sigma(theta) x efficiency(theta),
    the expected number of events passing the simulator's selection, for theta of shape (K, p); the simulator
    documents the units of ``luminosity`` (``lhc``: fb^-1). Used by the extended likelihood
    (``mflow_sbi.inference.rates``).

    Optional attribute: ``nuisance_names``, the names of the entries of ``parameter_names`` that are nuisance
    parameters (systematic uncertainties; their prior components are their constraints), e.g. ``("nu_jes",)`` for
    ``lhc`` with ``jes_uncertainty > 0``. Flows condition on all parameters; MCMC marginalizes the nuisances,
    summaries and corner plots show the parameters of interest, and ``limits`` profiles the nuisances.
    """

    name: str
    data_dim: int
    manifold_dim: int
    parameter_names: tuple[str, ...]
    parameter_labels: tuple[str, ...]
    prior: IndependentPrior

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw x of shape (n, data_dim); theta has shape (p,) (shared) or (n, p) (one per event)."""
        ...

    def log_likelihood(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """log p(x|theta) per event, shape (n,); raises IntractableLikelihood where unknown."""
        ...

    def joint_score(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """grad_theta log p(x|theta) per event, shape (n, p); raises IntractableLikelihood where unknown."""
        ...

    def distance_to_manifold(self, x: np.ndarray) -> np.ndarray:
        """A non-negative distance (or constraint-violation summary) per event, shape (n,)."""
        ...


def nuisance_names(simulator: object) -> tuple[str, ...]:
    """The simulator's declared nuisance parameters (``()`` when it declares none)."""
    return tuple(getattr(simulator, "nuisance_names", ()) or ())


def broadcast_theta(theta: np.ndarray, n: int, parameter_dim: int) -> np.ndarray:
    """Return theta as an (n, p) array; accepts (p,) (same theta for all events) or (n, p)."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim == 1 and theta.shape[0] == parameter_dim:
        return np.broadcast_to(theta, (n, parameter_dim))
    if theta.ndim == 2 and theta.shape == (n, parameter_dim):
        return theta
    raise InputError(f"theta must have shape ({parameter_dim},) or ({n}, {parameter_dim}), got {theta.shape}")


def check_x(x: np.ndarray, data_dim: int, what: str = "x") -> np.ndarray:
    """Return x as a float64 (n, data_dim) array or raise naming the expected shape."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != data_dim:
        raise InputError(f"{what} must have shape (n, {data_dim}), got {x.shape}")
    return x


def load_constants(name: str) -> dict:
    """Load a simulator's published constants, ``NAME.json`` in :data:`CONSTANTS`."""
    source = CONSTANTS / f"{name}.json"
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise ConfigError(f"simulator constants {source} are missing from this installation of mflow-sbi") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"simulator constants {source} are not valid JSON ({error})") from None
