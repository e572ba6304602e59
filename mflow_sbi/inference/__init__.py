"""Inference: iid likelihoods (cached M-flow encoding), priors, emcee posteriors, credible regions,
calibration (SBC, expected coverage) and sample-set metrics (C2ST, MMD)."""

from mflow_sbi.inference.calibration import CalibrationResult, run_calibration
from mflow_sbi.inference.credible import HPDRegion2D, central_interval, hpd_interval, hpd_region_2d
from mflow_sbi.inference.likelihood import EnsembleLikelihood, ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import c2st, mmd2
from mflow_sbi.inference.pipeline import run_inference
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.inference.priors import IndependentPrior, Normal1D, Uniform1D, box_uniform, diagonal_normal
from mflow_sbi.inference.sampler import sample_posterior

__all__ = [
    "CalibrationResult",
    "EnsembleLikelihood",
    "HPDRegion2D",
    "IndependentPrior",
    "ModelLikelihood",
    "Normal1D",
    "Posterior",
    "SimulatorLikelihood",
    "Uniform1D",
    "box_uniform",
    "c2st",
    "central_interval",
    "diagonal_normal",
    "hpd_interval",
    "hpd_region_2d",
    "mmd2",
    "run_calibration",
    "run_inference",
    "sample_posterior",
]
