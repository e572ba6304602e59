"""Training: losses, the phased trainer, the algorithms (sequential / alternating / simultaneous M/D,
maximum likelihood, SCANDAL) and learning curves."""

from mflow_sbi.training.algorithms import build_phases, resolve_algorithm, train_model
from mflow_sbi.training.curves import LEARNING_CURVES_FILE, plot_learning_curves
from mflow_sbi.training.history import HISTORY_CSV, HISTORY_JSON, History, load_history
from mflow_sbi.training.settings import ALGORITHMS, TrainingConfig
from mflow_sbi.training.trainer import Phase, Step, Trainer, TrainerSettings

__all__ = [
    "ALGORITHMS",
    "HISTORY_CSV",
    "HISTORY_JSON",
    "LEARNING_CURVES_FILE",
    "History",
    "Phase",
    "Step",
    "Trainer",
    "TrainerSettings",
    "TrainingConfig",
    "build_phases",
    "load_history",
    "plot_learning_curves",
    "resolve_algorithm",
    "train_model",
]
