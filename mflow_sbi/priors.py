"""Priors over the parameters theta.

A prior is a product of independent one-dimensional components. Each component has a textual
specification (``uniform(LOW,HIGH)`` or ``normal(LOC,SCALE)``) so it can be stored in data files, model
directories and configuration files and parsed back exactly.

    log p(theta) = sum_k log p_k(theta_k),   -inf outside the support.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mflow_sbi.errors import InputError

_SPEC = re.compile(r"^\s*(uniform|normal)\s*\(\s*([^,()]+)\s*,\s*([^,()]+)\s*\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Uniform1D:
    """U(low, high): log p = -log(high - low) inside [low, high], -inf outside."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.high > self.low):
            raise InputError(f"uniform prior needs finite low < high, got uniform({self.low},{self.high})")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=n)

    def log_prob(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        inside = (values >= self.low) & (values <= self.high)
        return np.where(inside, -math.log(self.high - self.low), -np.inf)

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def spec(self) -> str:
        return f"uniform({self.low!r},{self.high!r})"


@dataclass(frozen=True)
class Normal1D:
    """N(loc, scale^2): log p = -(v - loc)^2 / (2 scale^2) - log(scale sqrt(2 pi))."""

    loc: float
    scale: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.loc) and math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"normal prior needs finite loc and scale > 0, got normal({self.loc},{self.scale})")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(self.loc, self.scale, size=n)

    def log_prob(self, values: np.ndarray) -> np.ndarray:
        z = (np.asarray(values, dtype=np.float64) - self.loc) / self.scale
        return -0.5 * z**2 - math.log(self.scale * math.sqrt(2 * math.pi))

    @property
    def support(self) -> tuple[float, float]:
        return (-math.inf, math.inf)

    @property
    def spec(self) -> str:
        return f"normal({self.loc!r},{self.scale!r})"


Component = Uniform1D | Normal1D


def parse_component(spec: str) -> Component:
    """Parse ``uniform(LOW,HIGH)`` or ``normal(LOC,SCALE)`` (case-insensitive)."""
    match = _SPEC.match(str(spec))
    if match is None:
        raise InputError(f"prior spec {spec!r} is not of the form uniform(LOW,HIGH) or normal(LOC,SCALE)")
    kind, a, b = match.group(1).lower(), match.group(2), match.group(3)
    try:
        first, second = float(a), float(b)
    except ValueError as err:
        raise InputError(f"prior spec {spec!r}: arguments must be numbers") from err
    return Uniform1D(first, second) if kind == "uniform" else Normal1D(first, second)


class IndependentPrior:
    """Product of independent 1-D priors, one per parameter.

    Any object with ``dim``, ``sample(n, rng)``, ``log_prob(theta)`` and ``support`` can be used where a
    prior is expected; this class is the one that can be stored as text (``specs``).
    """

    def __init__(self, components: Sequence[Component]):
        if len(components) == 0:
            raise InputError("a prior needs at least one parameter")
        self.components = tuple(components)

    @classmethod
    def from_specs(cls, specs: Sequence[str]) -> IndependentPrior:
        return cls([parse_component(s) for s in specs])

    @property
    def specs(self) -> list[str]:
        return [c.spec for c in self.components]

    @property
    def dim(self) -> int:
        return len(self.components)

    @property
    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) arrays; infinite where a component is unbounded."""
        bounds = np.array([c.support for c in self.components], dtype=np.float64)
        return bounds[:, 0], bounds[:, 1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` parameter points, shape (n, dim)."""
        return np.stack([c.sample(n, rng) for c in self.components], axis=1)

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """log p(theta) for theta of shape (dim,) or (n, dim); -inf outside the support."""
        theta = np.asarray(theta, dtype=np.float64)
        single = theta.ndim == 1
        theta = np.atleast_2d(theta)
        if theta.shape[-1] != self.dim:
            raise InputError(f"prior has {self.dim} parameters but theta has shape {theta.shape}")
        total = sum(c.log_prob(theta[:, k]) for k, c in enumerate(self.components))
        return total[0] if single else total

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IndependentPrior) and self.components == other.components

    def __repr__(self) -> str:
        return f"IndependentPrior({self.specs})"


def box_uniform(low: Sequence[float], high: Sequence[float]) -> IndependentPrior:
    """Uniform prior on the box [low, high]."""
    return IndependentPrior([Uniform1D(float(a), float(b)) for a, b in zip(low, high, strict=True)])


def diagonal_normal(loc: Sequence[float], scale: Sequence[float]) -> IndependentPrior:
    """Independent normal prior."""
    return IndependentPrior([Normal1D(float(a), float(b)) for a, b in zip(loc, scale, strict=True)])


def resolve_prior(stored, override, parameter_dim: int, what: str = "the model"):
    """The prior to use for inference: ``override`` when given, else the ``stored`` one (e.g. saved with a
    model); either must have ``parameter_dim`` parameters."""
    prior = override if override is not None else stored
    if prior is None:
        raise InputError(f"{what} stores no prior; give one, e.g. IndependentPrior.from_specs(['uniform(-1,1)']) "
                         "with one spec per parameter")
    dim = getattr(prior, "dim", None)
    if dim is not None and int(dim) != int(parameter_dim):
        raise InputError(f"the prior has {dim} parameter(s) but {what} has {parameter_dim}")
    return prior
