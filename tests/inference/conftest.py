"""A conjugate Gaussian stand-in for a trained M-flow, with its analytic posterior.

The fake model has data x = (x_m, x_v) in R^n x R^(d-n). Its "outer flow" is the fixed linear map
u' = M x_m (theta-independent), its "inner" density is u' | theta ~ N(A theta + b, Sigma), and the
off-manifold part is x_v ~ N(0, I). Hence

    log p(x | theta) = log N(M x_m; A theta + b, Sigma) + log|det M| + log N(x_v; 0, I),

and with a normal prior N(mu0, S0) the posterior given N events is normal with
    precision P = S0^-1 + N A^T Sigma^-1 A,   mean = P^-1 (S0^-1 mu0 + A^T Sigma^-1 sum_i (u'_i - b)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from mflow_sbi.inference.priors import IndependentPrior, Normal1D

LOG_2PI = float(np.log(2 * np.pi))


def _gauss_log_prob(u: torch.Tensor, mean: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    white = torch.linalg.solve_triangular(chol, (u - mean).T, upper=False).T
    return -0.5 * (white**2).sum(1) - torch.log(torch.diagonal(chol)).sum() - 0.5 * u.shape[1] * LOG_2PI


class FakeManifoldModel(torch.nn.Module):
    """Implements the model interface used by the inference layer with an analytic density."""

    def __init__(self, A, b, sigma, mixing, data_dim, prior=None, cached=True, names=None):
        super().__init__()
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float32))
        self.register_buffer("b", torch.as_tensor(b, dtype=torch.float32))
        self.register_buffer("chol", torch.linalg.cholesky(torch.as_tensor(sigma, dtype=torch.float32)))
        self.register_buffer("M", torch.as_tensor(mixing, dtype=torch.float32))
        self.latent_dim, self.parameter_dim = self.A.shape
        self.data_dim = data_dim
        self.prior = prior
        self.parameter_names = tuple(names or (f"theta_{k}" for k in range(self.parameter_dim)))
        self.supports_cached_likelihood = cached
        self.calls = {"log_prob": 0, "latent_log_prob": 0, "cache_observed": 0}

    def _split(self, x):
        n = self.latent_dim
        u = x[:, :n] @ self.M.T
        rest = x[:, n:]
        const = torch.linalg.slogdet(self.M)[1] - 0.5 * (rest**2).sum(1) - 0.5 * rest.shape[1] * LOG_2PI
        return u, const

    def latent_log_prob(self, u, theta):
        self.calls["latent_log_prob"] += 1
        return _gauss_log_prob(u, theta @ self.A.T + self.b, self.chol)

    def log_prob(self, x, theta, mode=None):
        self.calls["log_prob"] += 1
        u, const = self._split(x)
        return _gauss_log_prob(u, theta @ self.A.T + self.b, self.chol) + const

    def cache_observed(self, x, mode=None):
        self.calls["cache_observed"] += 1
        return self._split(x)

    def sample(self, theta, n, generator=None):
        eps = torch.randn(n, self.latent_dim, generator=generator)
        u = theta @ self.A.T + self.b + eps @ self.chol.T
        x_m = torch.linalg.solve(self.M, u.T).T
        return torch.cat([x_m, torch.randn(n, self.data_dim - self.latent_dim, generator=generator)], 1)


@dataclass
class ConjugateProblem:
    model: FakeManifoldModel
    prior: IndependentPrior
    x: np.ndarray
    theta_true: np.ndarray
    mean: np.ndarray
    cov: np.ndarray

    def analytic_posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return analytic_posterior(self.model, self.prior, x)


def analytic_posterior(model: FakeManifoldModel, prior: IndependentPrior, x: np.ndarray):
    A = model.A.double().numpy()
    b = model.b.double().numpy()
    chol = model.chol.double().numpy()
    sigma_inv = np.linalg.inv(chol @ chol.T)
    u = x[:, : model.latent_dim] @ model.M.double().numpy().T
    mu0 = np.array([c.loc for c in prior.components])
    s0_inv = np.diag([1 / c.scale**2 for c in prior.components])
    precision = s0_inv + len(x) * A.T @ sigma_inv @ A
    cov = np.linalg.inv(precision)
    mean = cov @ (s0_inv @ mu0 + A.T @ sigma_inv @ (u - b).sum(0))
    return mean, cov


def make_problem(p: int = 2, n: int = 2, d: int = 3, n_events: int = 20, seed: int = 0, cached=True):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, p)) + 2 * np.eye(n, p)
    b = rng.normal(size=n)
    root = rng.normal(size=(n, n)) * 0.3 + np.eye(n)
    sigma = root @ root.T
    mixing = np.eye(n) + 0.3 * rng.normal(size=(n, n))
    prior = IndependentPrior([Normal1D(0.0, 2.0) for _ in range(p)])
    model = FakeManifoldModel(A, b, sigma, mixing, d, prior=prior, cached=cached)
    theta_true = prior.sample(1, rng)[0]
    gen = torch.Generator().manual_seed(seed)
    x = model.sample(torch.as_tensor(theta_true, dtype=torch.float32), n_events, gen).double().numpy()
    mean, cov = analytic_posterior(model, prior, x)
    return ConjugateProblem(model, prior, x, theta_true, mean, cov)


@pytest.fixture(scope="session")
def conjugate_problem():
    return make_problem


@pytest.fixture
def fake_model_class():
    return FakeManifoldModel


@pytest.fixture
def posterior_of():
    return analytic_posterior
