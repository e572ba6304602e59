"""The reference-posterior step: the posterior under a simulator's exact likelihood, for comparison."""

from __future__ import annotations

import numpy as np

from mflow_sbi.errors import IntractableLikelihood
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.inference.settings import InferenceConfig


def has_tractable_likelihood(simulator, x: np.ndarray) -> bool:
    """Whether ``simulator.log_likelihood`` is available at events like ``x`` (it raises IntractableLikelihood
    where it is not), probed at one event and one prior draw."""
    try:
        simulator.log_likelihood(x[:1], simulator.prior.sample(1, np.random.default_rng(0))[0])
    except IntractableLikelihood:
        return False
    return True


def exact_reference(simulator, x_observed: np.ndarray, inference: InferenceConfig,
                    progress: bool = True, rate=None) -> Posterior | None:
    """p(theta | x_observed) under the simulator's exact likelihood with the same sampler settings (and the same
    ``rate`` term, :mod:`mflow_sbi.inference.rates`, when one is given) as the learned posterior, or None when
    the simulator has no tractable likelihood."""
    from mflow_sbi.inference.likelihood import SimulatorLikelihood
    from mflow_sbi.inference.rates import ExtendedLikelihood
    from mflow_sbi.inference.sampler import sample_posterior

    if not has_tractable_likelihood(simulator, x_observed):
        return None
    likelihood = SimulatorLikelihood(simulator, x_observed)
    if rate is not None:
        likelihood = ExtendedLikelihood(likelihood, rate)
    return sample_posterior(likelihood, simulator.prior, n_walkers=inference.walkers,
                            n_steps=inference.steps, burn_in=inference.burn_in,
                            adaptive_burn_in=inference.adaptive_burn_in, thin=inference.thin,
                            seed=inference.seed, progress=progress, parameter_names=simulator.parameter_names,
                            labels=tuple(getattr(simulator, "parameter_labels", simulator.parameter_names)),
                            metadata={"likelihood": f"exact ({simulator.name})"})
