"""mflow-sbi: simulation-based inference with manifold-learning flows (Brehmer & Cranmer 2020).

The model classes are imported lazily (on first attribute access), so ``import mflow_sbi`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "AmbientFlow": "mflow_sbi.flows",
    "PIE": "mflow_sbi.flows",
    "ManifoldFlow": "mflow_sbi.flows",
    "EncoderManifoldFlow": "mflow_sbi.flows",
    "load_model": "mflow_sbi.flows",
}

if TYPE_CHECKING:
    from mflow_sbi.flows import PIE, AmbientFlow, EncoderManifoldFlow, ManifoldFlow, load_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mflow_sbi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["PIE", "AmbientFlow", "EncoderManifoldFlow", "ManifoldFlow", "__version__", "load_model"]
