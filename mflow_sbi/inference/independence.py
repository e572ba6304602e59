"""An independence Metropolis-Hastings move for emcee: jumps between modes drawn from a Student-t mixture.

Stretch and differential-evolution moves propose points along differences of walkers, so a walker rarely
crosses a deep valley between two modes, and the chain's mode fractions echo its start. The independence
move proposes every walker's next point from one fixed density q, regardless of where the walker is,

    q(theta) = sum_k w_k t_nu(theta; mu_k, Sigma_k),

a mixture of multivariate Student-t densities (``DF`` = nu degrees of freedom, location mu_k, scale
Sigma_k), one per mode, and accepts theta' with probability min(1, r),

    log r = log pi(theta') - log pi(theta) + log q(theta) - log q(theta').

This is Metropolis-Hastings with a proposal q(theta' | theta) = q(theta') that does not depend on theta, so
pi is its stationary density for any q that is positive wherever pi is (the heavy t tails make sure of that
near the modes). When q is close to pi, r is close to 1: a walker then lands in mode k with probability
~ w_k in every accepted jump, whatever mode it came from, and successive states are nearly independent
(autocorrelation time ~ 1 / acceptance). When q is poor (a wrong weight, a curved mode), the chain is still
correct, only slower; in a move mixture with DE moves (``sampler.make_moves("independence")``) the DE share
keeps mixing within curved or heavy-tailed modes.

q must not change while the chain's samples are kept: it is fitted once from the mode set
(``from_modes``: mu_k the mode, Sigma_k its Laplace covariance, w_k its estimated mass) and refitted once at
the end of the burn-in from the second half of the burn-in chain (``refit``): each point goes to the
component with the largest w_k t_nu(theta; mu_k, Sigma_k); mu_k and Sigma_k become the sample mean and
covariance of its points, and w_k = (1 - ``WEIGHT_FLOOR``) f_k + ``WEIGHT_FLOOR`` / K with f_k the chain's
fraction of points in component k (the floor keeps every mode reachable even if the burn-in chain missed it).
A component with fewer than ``MIN_REFIT_POINTS`` x p points keeps its location and scale. After the burn-in
q stays fixed, so the kept chain is an MH chain with a fixed proposal (detailed balance).
"""

from __future__ import annotations

from dataclasses import dataclass

import emcee
import numpy as np
from scipy.special import logsumexp

from mflow_sbi.inference.modes import ModeSet, t_draws, t_log_pdf

DF = 5.0
WEIGHT_FLOOR = 0.1
MIN_REFIT_POINTS = 10
RIDGE = 1e-10  # x the trace per parameter, added to refitted covariances


@dataclass
class StudentTMixture:
    """q(theta) = sum_k w_k t_df(theta; mu_k, Sigma_k) (module docstring)."""

    means: np.ndarray  # (K, p)
    scales: np.ndarray  # (K, p, p)
    weights: np.ndarray  # (K,), summing to 1
    df: float = DF

    @classmethod
    def from_modes(cls, modes: ModeSet, df: float = DF) -> StudentTMixture:
        """mu_k, Sigma_k: each mode's location and Laplace covariance; w_k its estimated mass."""
        return cls(np.array([m.location for m in modes.modes]), np.array([m.covariance for m in modes.modes]),
                   modes.weights, df)

    def component_log_prob(self, points: np.ndarray) -> np.ndarray:
        """log w_k + log t_df(theta; mu_k, Sigma_k), shape (n, K)."""
        points = np.atleast_2d(points)
        with np.errstate(divide="ignore"):  # a zero weight gives -inf
            log_w = np.log(self.weights)
        return np.stack([log_w[k] + t_log_pdf(points, self.means[k], self.scales[k], self.df)
                         for k in range(len(self.weights))], axis=1)

    def log_prob(self, points: np.ndarray) -> np.ndarray:
        """log q(theta), shape (n,)."""
        return logsumexp(self.component_log_prob(points), axis=1)

    def assign(self, points: np.ndarray) -> np.ndarray:
        """The component of largest w_k t_df(theta; mu_k, Sigma_k) of each point."""
        return np.argmax(self.component_log_prob(points), axis=1)

    def sample(self, n: int, rng) -> np.ndarray:
        """``n`` draws from q; ``rng`` is a numpy ``Generator`` or emcee's ``RandomState``."""
        labels = rng.choice(len(self.weights), size=n, p=self.weights)
        draws = np.empty((n, self.means.shape[1]))
        for k in np.unique(labels):
            rows = np.flatnonzero(labels == k)
            draws[rows] = t_draws(rng, self.means[k], self.scales[k], self.df, rows.size)
        return draws

    def refit(self, points: np.ndarray) -> StudentTMixture:
        """The mixture refitted to ``points`` (n, p), e.g. the second half of the burn-in (module docstring)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.means.shape[1])
        k, p = self.means.shape
        labels = self.assign(points)
        counts = np.bincount(labels, minlength=k)
        means, scales = self.means.copy(), self.scales.copy()
        for j in np.flatnonzero(counts >= MIN_REFIT_POINTS * p):
            mine = points[labels == j]
            cov = np.atleast_2d(np.cov(mine, rowvar=False))
            cov = 0.5 * (cov + cov.T) + RIDGE * max(np.trace(cov) / p, 1e-300) * np.eye(p)
            if np.all(np.linalg.eigvalsh(cov) > 0):
                means[j], scales[j] = mine.mean(axis=0), cov
        weights = (1 - WEIGHT_FLOOR) * counts / counts.sum() + WEIGHT_FLOOR / k
        return StudentTMixture(means, scales, weights, self.df)

    def to_dict(self) -> dict:
        return {"df": self.df, "weights": self.weights.tolist(), "means": self.means.tolist(),
                "std": [np.sqrt(np.diag(s)).tolist() for s in self.scales]}


class IndependenceMove(emcee.moves.MHMove):
    """emcee move: every walker proposes theta' ~ q (``proposal``, a :class:`StudentTMixture`), accepted by
    emcee's MH step with log r = log pi(theta') - log pi(theta) + log q(theta) - log q(theta'). All walkers
    move at once: one vectorized posterior call of n_walkers points per step. Replace ``proposal`` only
    between steps that are not kept (the burn-in)."""

    def __init__(self, proposal: StudentTMixture) -> None:
        self.proposal = proposal
        super().__init__(self._propose)

    def _propose(self, coords: np.ndarray, random) -> tuple[np.ndarray, np.ndarray]:
        new = self.proposal.sample(len(coords), random)
        return new, self.proposal.log_prob(coords) - self.proposal.log_prob(new)
