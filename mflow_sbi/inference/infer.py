"""One call from a trained model and observed events to a posterior."""

from __future__ import annotations

import numpy as np

from mflow_sbi.inference.likelihood import ModelLikelihood
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.inference.sampler import sample_posterior
from mflow_sbi.priors import resolve_prior


def run_inference(
    model,
    x_observed: np.ndarray,
    prior=None,
    cache: bool | str = "auto",
    mode: str | None = None,
    metadata: dict | None = None,
    **sampler_options,
) -> Posterior:
    """Sample p(theta | x_observed) for a trained ``model`` (interface: see likelihood.LikelihoodModel).

    ``prior`` overrides the prior stored with the model. ``sampler_options`` go to
    :func:`mflow_sbi.inference.sampler.sample_posterior` (n_walkers, n_steps, burn_in, thin, seed, init,
    progress, until_converged).
    """
    prior = resolve_prior(getattr(model, "prior", None), prior, model.parameter_dim)
    likelihood = ModelLikelihood(model, x_observed, cache=cache, mode=mode)
    names = getattr(model, "parameter_names", None)
    info = {"model": {"class": type(model).__name__, "data_dim": int(model.data_dim),
                      "latent_dim": getattr(model, "latent_dim", None), "mode": mode}}
    info.update(metadata or {})
    return sample_posterior(likelihood, prior, parameter_names=names, labels=getattr(model, "parameter_labels", None),
                            metadata=info, **sampler_options)
