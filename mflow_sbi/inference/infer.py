"""One call from a trained model and observed events to a posterior."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mflow_sbi.flows.ensemble import ModelEnsemble
from mflow_sbi.inference.ensemble_spread import ensemble_spread
from mflow_sbi.inference.likelihood import LikelihoodModel, ModelLikelihood
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.inference.potential import PosteriorPotential, Prior
from mflow_sbi.inference.rates import ExtendedLikelihood, RateTerm
from mflow_sbi.inference.sampler import sample_potential
from mflow_sbi.priors import resolve_prior


class PosteriorModel(LikelihoodModel, Protocol):
    """A :class:`~mflow_sbi.inference.likelihood.LikelihoodModel` that also carries what a posterior records:
    the prior it was trained with (or None), its parameter names and its latent dimension (None: no manifold).
    Every model of :mod:`mflow_sbi.flows` is one."""

    prior: Prior | None
    parameter_names: tuple[str, ...]
    latent_dim: int | None


def run_inference(
    model: PosteriorModel,
    x_observed: np.ndarray,
    *,
    prior: Prior | None = None,
    cache: bool | str = "auto",
    mode: str | None = None,
    metadata: dict | None = None,
    rate: RateTerm | None = None,
    **sampler_options: Any,
) -> Posterior:
    """Sample p(theta | x_observed) proportional to p(theta) prod_i p_model(x_i | theta) for a trained ``model``.

    ``prior`` overrides the prior stored with the model; ``cache`` and ``mode`` go to
    :class:`~mflow_sbi.inference.likelihood.ModelLikelihood`; ``sampler_options`` to
    :func:`~mflow_sbi.inference.sampler.sample_potential` (n_walkers, n_steps, burn_in, thin, seed, init,
    progress, until_converged, moves). With a ``rate`` term (:mod:`mflow_sbi.inference.rates`) the likelihood is
    the extended one, log Pois(N | nu(theta)) + sum_i log p_model(x_i | theta). The posterior's metadata records
    the model, ``rate`` (the rate term's metadata, or ``{"source": "none"}``), then ``metadata``; for an ensemble
    (:class:`~mflow_sbi.flows.ensemble.ModelEnsemble`) also how much its members' posteriors differ
    (``ensemble``, :func:`~mflow_sbi.inference.ensemble_spread.ensemble_spread`).
    """
    prior = resolve_prior(model.prior, prior, model.parameter_dim)
    likelihood = ModelLikelihood(model, x_observed, cache=cache, mode=mode)
    potential = PosteriorPotential(likelihood if rate is None else ExtendedLikelihood(likelihood, rate), prior)
    info = {"model": {"class": type(model).__name__, "data_dim": int(model.data_dim), "latent_dim": model.latent_dim,
                      "mode": mode}}
    if rate is None:
        info["rate"] = {"source": "none"}
    info.update(metadata or {})
    posterior = sample_potential(potential, parameter_names=model.parameter_names, metadata=info, **sampler_options)
    if isinstance(model, ModelEnsemble) and len(model) > 1:
        posterior.metadata["ensemble"] = ensemble_spread(model, x_observed, posterior.samples, model.parameter_names,
                                                         cache=cache, mode=mode,
                                                         seed=int(sampler_options.get("seed") or 0))
    return posterior
