"""Inference: iid likelihoods (cached M-flow encoding), potentials, emcee posteriors, credible regions,
calibration (SBC, expected coverage) and sample-set metrics (C2ST, MMD).

Names are imported lazily (on first use), so importing the package does not load emcee or scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mflow_sbi.lazy import lazy_exports

_LAZY = {
    "CalibrationResult": "mflow_sbi.inference.calibration",
    "run_calibration": "mflow_sbi.inference.calibration",
    "HPDRegion2D": "mflow_sbi.inference.credible",
    "central_interval": "mflow_sbi.inference.credible",
    "hpd_interval": "mflow_sbi.inference.credible",
    "hpd_region_2d": "mflow_sbi.inference.credible",
    "ModelLikelihood": "mflow_sbi.inference.likelihood",
    "EnsembleLikelihood": "mflow_sbi.inference.likelihood",
    "SimulatorLikelihood": "mflow_sbi.inference.likelihood",
    "c2st": "mflow_sbi.inference.metrics",
    "mmd2": "mflow_sbi.inference.metrics",
    "run_inference": "mflow_sbi.inference.infer",
    "Posterior": "mflow_sbi.inference.posterior",
    "IndependentPrior": "mflow_sbi.priors",
    "Normal1D": "mflow_sbi.priors",
    "Uniform1D": "mflow_sbi.priors",
    "box_uniform": "mflow_sbi.priors",
    "diagonal_normal": "mflow_sbi.priors",
    "sample_posterior": "mflow_sbi.inference.sampler",
    "ExtendedLikelihood": "mflow_sbi.inference.rates",
    "RateTerm": "mflow_sbi.inference.rates",
    "fit_quadratic_rate": "mflow_sbi.inference.rates",
    "profile_likelihood_limits": "mflow_sbi.inference.limits",
}

if TYPE_CHECKING:
    from mflow_sbi.inference.calibration import CalibrationResult, run_calibration
    from mflow_sbi.inference.credible import HPDRegion2D, central_interval, hpd_interval, hpd_region_2d
    from mflow_sbi.inference.infer import run_inference
    from mflow_sbi.inference.likelihood import EnsembleLikelihood, ModelLikelihood, SimulatorLikelihood
    from mflow_sbi.inference.limits import profile_likelihood_limits
    from mflow_sbi.inference.metrics import c2st, mmd2
    from mflow_sbi.inference.posterior import Posterior
    from mflow_sbi.inference.rates import ExtendedLikelihood, RateTerm, fit_quadratic_rate
    from mflow_sbi.inference.sampler import sample_posterior
    from mflow_sbi.priors import IndependentPrior, Normal1D, Uniform1D, box_uniform, diagonal_normal

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
__all__ = [
    "CalibrationResult",
    "EnsembleLikelihood",
    "ExtendedLikelihood",
    "HPDRegion2D",
    "IndependentPrior",
    "ModelLikelihood",
    "Normal1D",
    "Posterior",
    "RateTerm",
    "SimulatorLikelihood",
    "Uniform1D",
    "box_uniform",
    "c2st",
    "central_interval",
    "diagonal_normal",
    "fit_quadratic_rate",
    "hpd_interval",
    "hpd_region_2d",
    "mmd2",
    "profile_likelihood_limits",
    "run_calibration",
    "run_inference",
    "sample_posterior",
]
