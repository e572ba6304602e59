"""mflow-sbi: simulation-based inference with manifold-learning flows (Brehmer & Cranmer 2020).

The public API is re-exported here and imported lazily (on first attribute access), so ``import mflow_sbi`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mflow_sbi.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "AmbientFlow": "mflow_sbi.flows",
    "PIE": "mflow_sbi.flows",
    "ManifoldFlow": "mflow_sbi.flows",
    "EncoderManifoldFlow": "mflow_sbi.flows",
    "load_model": "mflow_sbi.flows",
    "TrainingConfig": "mflow_sbi.training",
    "train_model": "mflow_sbi.training",
    "ModelLikelihood": "mflow_sbi.inference",
    "SimulatorLikelihood": "mflow_sbi.inference",
    "Posterior": "mflow_sbi.inference",
    "sample_posterior": "mflow_sbi.inference",
    "run_inference": "mflow_sbi.inference",
    "IndependentPrior": "mflow_sbi.priors",
    "corner_plot": "mflow_sbi.plotting",
    "load_any": "mflow_sbi.data",
    "load_events": "mflow_sbi.data",
}

if TYPE_CHECKING:
    from mflow_sbi.data import load_any, load_events
    from mflow_sbi.flows import PIE, AmbientFlow, EncoderManifoldFlow, ManifoldFlow, load_model
    from mflow_sbi.inference import ModelLikelihood, Posterior, SimulatorLikelihood, run_inference, sample_posterior
    from mflow_sbi.plotting import corner_plot
    from mflow_sbi.priors import IndependentPrior
    from mflow_sbi.training import TrainingConfig, train_model


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "__version__",
    "AmbientFlow",
    "PIE",
    "ManifoldFlow",
    "EncoderManifoldFlow",
    "load_model",
    "TrainingConfig",
    "train_model",
    "ModelLikelihood",
    "SimulatorLikelihood",
    "Posterior",
    "sample_posterior",
    "run_inference",
    "IndependentPrior",
    "corner_plot",
    "load_any",
    "load_events",
]
