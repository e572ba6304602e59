"""Extended likelihood: the number of observed events as information about theta.

An analysis that counts its events as well as measuring their distribution maximizes the extended likelihood
(Barlow, Nucl. Instrum. Meth. A 297 (1990) 496; Cranmer, arXiv:1503.07622, sec. 3)

    log L(theta) = log Pois(n_obs | nu(theta)) + sum_{i=1}^{n_obs} log p(x_i | theta),
    log Pois(n | nu) = n log nu - nu - log n!,
    nu(theta) = luminosity x sigma(theta) x efficiency(theta)     (expected events after all cuts).

:class:`RateTerm` is the first term, vectorized theta (K, p) -> (K,), for any ``nu(theta)``;
:class:`ExtendedLikelihood` adds it to any summed shape log-likelihood (``ModelLikelihood``,
``SimulatorLikelihood``) and records which rate was used in the metadata. The rate comes from

- the simulator (``rate = "simulator"``): its optional ``expected_events(theta, luminosity)`` method;
- a fit (``rate = "fit"``): :func:`fit_quadratic_rate`, a quadratic in theta fitted by least squares to simulated
  (theta, sigma x efficiency) pairs. For EFT couplings entering the amplitude linearly the rate is exactly a
  quadratic in theta (the idea behind morphing), so the fit is exact up to the noise of its inputs;
  :class:`QuadraticRate` stores the coefficients with the fit's residuals as a small JSON file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mflow_sbi.errors import InputError
from mflow_sbi.inference.potential import LogLikelihood, ObservedLikelihood
from mflow_sbi.io import save_json

RATE_SOURCES = ("none", "simulator", "fit")
QUADRATIC_RATE_FORMAT = "mflow-sbi quadratic rate 1"


def poisson_log_pmf(n: int, nu: np.ndarray) -> np.ndarray:
    """log Pois(n | nu) = n log nu - nu - log n! elementwise; -inf where nu <= 0 (or NaN), except nu = 0, n = 0."""
    if int(n) != n or n < 0:
        raise InputError(f"the observed number of events must be a non-negative integer, got {n!r}")
    nu = np.asarray(nu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (n * np.log(nu) if n > 0 else np.zeros_like(nu)) - nu - math.lgamma(n + 1)
    value = np.where(nu > 0, value, -np.inf)
    if n == 0:
        value = np.where(nu == 0, 0.0, value)
    return np.where(np.isnan(value), -np.inf, value)


class RateTerm:
    """theta (K, p) -> (K,) log Pois(n_observed | nu(theta)) for ``expected_events``: theta (K, p) -> nu (K,).

    ``source`` ("simulator", "fit", ...) and ``luminosity`` are recorded in :attr:`metadata`.
    """

    def __init__(self, expected_events: Callable[[np.ndarray], np.ndarray], n_observed: int, *, source: str,
                 luminosity: float | None = None, details: dict[str, Any] | None = None):
        if int(n_observed) != n_observed or n_observed < 0:
            raise InputError(f"n_observed must be a non-negative integer, got {n_observed!r}")
        self.expected_events = expected_events
        self.n_observed = int(n_observed)
        self.source = source
        self.luminosity = luminosity
        self.details = dict(details or {})

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        nu = np.broadcast_to(np.asarray(self.expected_events(theta), dtype=np.float64), (len(theta),))
        return poisson_log_pmf(self.n_observed, nu)

    @property
    def metadata(self) -> dict[str, Any]:
        """``{"source", "luminosity", "n_observed", ...details}``, recorded as the posterior's ``rate``."""
        return {"source": self.source, "luminosity": self.luminosity, "n_observed": self.n_observed, **self.details}


class ExtendedLikelihood:
    """log L(theta) = ``shape(theta)`` + ``rate(theta)`` (see the module docstring); an ``ObservedLikelihood``
    when ``shape`` is one, its metadata extended by ``rate``."""

    def __init__(self, shape: LogLikelihood, rate: RateTerm):
        self.shape = shape
        self.rate = rate
        dim = getattr(shape, "parameter_dim", None)
        if dim is not None:
            self.parameter_dim = int(dim)
        n_events = getattr(shape, "n_events", None)
        if n_events is not None and int(n_events) != rate.n_observed:
            raise InputError(f"the rate term counts {rate.n_observed} observed events but the likelihood has {n_events}")

    @property
    def metadata(self) -> dict[str, Any]:
        info = dict(self.shape.metadata) if isinstance(self.shape, ObservedLikelihood) else {}
        info["rate"] = self.rate.metadata
        return info

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        total = np.asarray(self.shape(theta), dtype=np.float64) + self.rate(theta)
        return np.where(np.isnan(total), -np.inf, total)


def simulator_rate(simulator: Any, n_observed: int, *, luminosity: float) -> RateTerm:
    """The rate term from ``simulator.expected_events(theta, luminosity)`` (an optional simulator method)."""
    method = getattr(simulator, "expected_events", None)
    if method is None:
        raise InputError(f"simulator {getattr(simulator, 'name', type(simulator).__name__)!r} has no "
                         "expected_events(theta, luminosity): use rate = 'fit' or 'none'")
    check_luminosity(luminosity)
    return RateTerm(lambda theta: method(theta, luminosity), n_observed, source="simulator",
                    luminosity=float(luminosity), details={"simulator": getattr(simulator, "name", None)})


def check_luminosity(luminosity: Any) -> float:
    if isinstance(luminosity, bool) or not isinstance(luminosity, int | float) or not math.isfinite(luminosity) \
            or luminosity <= 0:
        raise InputError(f"luminosity must be a positive number, got {luminosity!r}")
    return float(luminosity)


def quadratic_features(theta: np.ndarray) -> np.ndarray:
    """(K, p) -> (K, 1 + p + p (p + 1) / 2): 1, theta_i, theta_i theta_j (i <= j)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    p = theta.shape[1]
    columns = [np.ones(len(theta))] + [theta[:, i] for i in range(p)]
    columns += [theta[:, i] * theta[:, j] for i in range(p) for j in range(i, p)]
    return np.stack(columns, axis=1)


@dataclass
class QuadraticRate:
    """r(theta) = c . phi(theta), phi = :func:`quadratic_features`: a rate per unit luminosity (sigma x
    efficiency, in the units of the fitted values), with the fit's quality.

    ``residuals``: ``rms`` and ``max_abs`` of the fitted minus the input values, ``max_relative`` of their
    ratio to the inputs, ``n_points`` and ``parameter_dim``.
    """

    coefficients: np.ndarray
    parameter_dim: int
    residuals: dict[str, float]

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if theta.shape[1] != self.parameter_dim:
            raise InputError(f"theta must have shape (K, {self.parameter_dim}), got {theta.shape}")
        return quadratic_features(theta) @ self.coefficients

    def expected_events(self, theta: np.ndarray, luminosity: float) -> np.ndarray:
        """nu(theta) = luminosity x r(theta)."""
        return check_luminosity(luminosity) * self(theta)

    def rate_term(self, n_observed: int, *, luminosity: float, path: str | None = None) -> RateTerm:
        details = {"fit_residuals": self.residuals}
        if path is not None:
            details["fit_path"] = str(path)
        return RateTerm(lambda theta: self.expected_events(theta, luminosity), n_observed, source="fit",
                        luminosity=float(luminosity), details=details)

    def to_dict(self) -> dict[str, Any]:
        return {"format": QUADRATIC_RATE_FORMAT, "parameter_dim": self.parameter_dim,
                "features": "1, theta_i, theta_i theta_j (i <= j)",
                "coefficients": [float(c) for c in self.coefficients], "residuals": self.residuals}

    def save(self, path: str | os.PathLike) -> Path:
        return save_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> QuadraticRate:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read the rate fit {path}: {error}") from error
        if not isinstance(data, dict) or data.get("format") != QUADRATIC_RATE_FORMAT:
            raise InputError(f"{path} is not a rate fit (format {QUADRATIC_RATE_FORMAT!r} expected)")
        p = int(data["parameter_dim"])
        coefficients = np.asarray(data["coefficients"], dtype=np.float64)
        if coefficients.shape != (1 + p + p * (p + 1) // 2,):
            raise InputError(f"{path}: {coefficients.size} coefficients do not fit a quadratic in {p} parameters")
        return cls(coefficients, p, dict(data.get("residuals", {})))


def fit_quadratic_rate(theta: np.ndarray, rate: np.ndarray) -> QuadraticRate:
    """Least-squares fit of r(theta) = c . phi(theta) to simulated pairs (theta (K, p), rate (K,)).

    The fit is linear in c: c = argmin ||Phi c - r||^2 (``numpy.linalg.lstsq``); it needs at least as many
    points as coefficients, 1 + p + p (p + 1) / 2, in general position.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    rate = np.asarray(rate, dtype=np.float64).reshape(-1)
    if len(rate) != len(theta):
        raise InputError(f"{len(theta)} parameter points but {len(rate)} rates")
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(rate))):
        raise InputError("the rate fit needs finite theta and rates")
    features = quadratic_features(theta)
    if len(rate) < features.shape[1]:
        raise InputError(f"a quadratic in {theta.shape[1]} parameters has {features.shape[1]} coefficients; "
                         f"got only {len(rate)} points")
    coefficients, _, rank, _ = np.linalg.lstsq(features, rate, rcond=None)
    if rank < features.shape[1]:
        raise InputError(f"the rate fit's points do not determine a quadratic (rank {rank} < {features.shape[1]})")
    error = features @ coefficients - rate
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.abs(error / rate)
    residuals = {"rms": float(np.sqrt(np.mean(error**2))), "max_abs": float(np.max(np.abs(error))),
                 "max_relative": float(np.max(relative[np.isfinite(relative)], initial=0.0)),
                 "n_points": int(len(rate)), "parameter_dim": int(theta.shape[1])}
    return QuadraticRate(coefficients, int(theta.shape[1]), residuals)


def fit_simulator_rate(simulator: Any, *, n_points: int = 25, seed: int = 0) -> QuadraticRate:
    """Quadratic fit to ``simulator.expected_events(theta, 1)`` at ``n_points`` prior draws (seeded).

    A stand-in for the (theta, sigma x efficiency) pairs of a generator run (e.g. reweighted events): with the
    ``lhc`` simulator it checks that the fit machinery reproduces a known rate (its residuals are ~1e-15).
    """
    if getattr(simulator, "expected_events", None) is None:
        raise InputError(f"simulator {getattr(simulator, 'name', type(simulator).__name__)!r} has no "
                         "expected_events(theta, luminosity) to fit a rate to: fit one to your own (theta, rate) "
                         "pairs with fit_quadratic_rate and save it as rate_fit.json in the model directory")
    theta = np.atleast_2d(simulator.prior.sample(int(n_points), np.random.default_rng(seed)))
    return fit_quadratic_rate(theta, simulator.expected_events(theta, 1.0))


def rate_term_from_settings(rate: str, n_observed: int, *, luminosity: float | None, simulator: Any = None,
                            fit_path: str | os.PathLike | None = None) -> RateTerm | None:
    """The ``[inference] rate`` choice as a rate term: None for "none", the simulator's ``expected_events`` for
    "simulator", the :class:`QuadraticRate` stored at ``fit_path`` for "fit"."""
    if rate not in RATE_SOURCES:
        raise InputError(f"rate must be one of {RATE_SOURCES}, got {rate!r}")
    if rate == "none":
        return None
    if luminosity is None:
        raise InputError(f"rate = {rate!r} needs a luminosity")
    if rate == "simulator":
        if simulator is None:
            raise InputError("rate = 'simulator' needs the simulator the data came from")
        return simulator_rate(simulator, n_observed, luminosity=luminosity)
    if fit_path is None or not Path(fit_path).is_file():
        raise InputError(f"rate = 'fit' needs a rate fit file, {fit_path} does not exist")
    return QuadraticRate.load(fit_path).rate_term(n_observed, luminosity=check_luminosity(luminosity),
                                                  path=str(fit_path))


__all__ = ["QUADRATIC_RATE_FORMAT", "RATE_SOURCES", "ExtendedLikelihood", "QuadraticRate", "RateTerm", "fit_quadratic_rate",
           "fit_simulator_rate", "poisson_log_pmf", "quadratic_features", "rate_term_from_settings", "simulator_rate"]
