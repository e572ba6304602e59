"""Training: losses, the phased trainer, the algorithms (sequential / alternating / simultaneous M/D,
maximum likelihood, SCANDAL) and learning curves.

Names are imported lazily (on first use), so importing the package does not load torch or matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mflow_sbi.lazy import lazy_exports

_LAZY = {
    "build_phases": "mflow_sbi.training.algorithms",
    "resolve_algorithm": "mflow_sbi.training.algorithms",
    "train_model": "mflow_sbi.training.algorithms",
    "LEARNING_CURVES_FILE": "mflow_sbi.layout",
    "plot_learning_curves": "mflow_sbi.training.curves",
    "HISTORY_CSV": "mflow_sbi.layout",
    "HISTORY_JSON": "mflow_sbi.layout",
    "History": "mflow_sbi.training.history",
    "load_history": "mflow_sbi.training.history",
    "ALGORITHMS": "mflow_sbi.training.settings",
    "TrainingConfig": "mflow_sbi.training.settings",
    "Phase": "mflow_sbi.training.trainer",
    "Step": "mflow_sbi.training.trainer",
    "Trainer": "mflow_sbi.training.trainer",
}

if TYPE_CHECKING:
    from mflow_sbi.layout import HISTORY_CSV, HISTORY_JSON, LEARNING_CURVES_FILE
    from mflow_sbi.training.algorithms import build_phases, resolve_algorithm, train_model
    from mflow_sbi.training.curves import plot_learning_curves
    from mflow_sbi.training.history import History, load_history
    from mflow_sbi.training.settings import ALGORITHMS, TrainingConfig
    from mflow_sbi.training.trainer import Phase, Step, Trainer

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
__all__ = [
    "ALGORITHMS",
    "HISTORY_CSV",
    "HISTORY_JSON",
    "History",
    "LEARNING_CURVES_FILE",
    "Phase",
    "Step",
    "Trainer",
    "TrainingConfig",
    "build_phases",
    "load_history",
    "plot_learning_curves",
    "resolve_algorithm",
    "train_model",
]
