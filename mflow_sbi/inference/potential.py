"""The posterior potential: what the sampler explores, split from how it is explored (as in sbi's
potential / sampler / posterior split).

    U(theta) = log p(theta) + sum_{i=1}^N log p(x_i | theta)      (the unnormalized log posterior)

A :class:`Potential` is vectorized, theta (K, p) -> (K,), -inf outside the prior support (where the
likelihood is not evaluated), and declares what the sampler needs besides its values: the number of
parameters, the prior (to place walkers) and metadata recorded with the posterior (the observed data's
fingerprint, the number of events, whether the encoding was cached, the prior's specs).
:class:`PosteriorPotential` builds one from a summed log-likelihood and a prior.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from mflow_sbi.errors import InputError


class Prior(Protocol):
    """What a prior needs for sampling: draws (n, p) and log densities (K, p) -> (K,), -inf off the support.
    Priors with ``dim`` and ``specs`` (e.g. :class:`mflow_sbi.priors.IndependentPrior`) say more."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def log_prob(self, theta: np.ndarray) -> np.ndarray: ...


class LogLikelihood(Protocol):
    """theta (K, p) -> (K,) summed log-likelihood of the observed events."""

    def __call__(self, theta: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ObservedLikelihood(Protocol):
    """A log-likelihood that knows its data (``ModelLikelihood``, ``SimulatorLikelihood``): its number of
    parameters and the metadata to record with a posterior."""

    parameter_dim: int

    @property
    def metadata(self) -> dict[str, Any]: ...

    def __call__(self, theta: np.ndarray) -> np.ndarray: ...


class Potential(Protocol):
    """The unnormalized log posterior the sampler consumes (see the module docstring)."""

    parameter_dim: int
    prior: Prior

    @property
    def metadata(self) -> dict[str, Any]: ...

    def __call__(self, theta: np.ndarray) -> np.ndarray: ...


def prior_dim(prior: Prior) -> int:
    """Number of parameters of ``prior``: its ``dim``, or the width of one draw for priors without it."""
    dim = getattr(prior, "dim", None)
    return int(dim) if dim is not None else int(np.atleast_2d(prior.sample(1, np.random.default_rng(0))).shape[1])


class PosteriorPotential:
    """U(theta) = log p(theta) + log L(theta) for a summed log-likelihood ``log_likelihood`` and a ``prior``.

    The likelihood is evaluated only at the points inside the prior support; NaN becomes -inf.
    """

    def __init__(self, log_likelihood: LogLikelihood, prior: Prior):
        self.log_likelihood = log_likelihood
        self.prior = prior
        self.parameter_dim = prior_dim(prior)
        if isinstance(log_likelihood, ObservedLikelihood) and log_likelihood.parameter_dim != self.parameter_dim:
            raise InputError(f"the prior has {self.parameter_dim} parameter(s) but the likelihood (model) has "
                             f"{log_likelihood.parameter_dim}")

    @property
    def metadata(self) -> dict[str, Any]:
        """The likelihood's metadata and the prior's specs (when it has them)."""
        info = dict(self.log_likelihood.metadata) if isinstance(self.log_likelihood, ObservedLikelihood) else {}
        specs = getattr(self.prior, "specs", None)
        if specs is not None:
            info["prior"] = list(specs)
        return info

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        result = np.broadcast_to(np.asarray(self.prior.log_prob(theta), dtype=np.float64), (len(theta),)).copy()
        inside = np.isfinite(result)
        if inside.any():
            result[inside] += np.asarray(self.log_likelihood(theta[inside]), dtype=np.float64)
        result[~inside] = -np.inf
        return np.where(np.isnan(result), -np.inf, result)
