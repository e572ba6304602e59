"""Event data: ``.npz`` data sets, ROOT I/O with event formats, streaming, and four-vector kinematics.

The ROOT-related names are imported lazily (on first use), so importing the package does not load
uproot, awkward or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from mflow_sbi.data.datasets import EventData, load_events

_LAZY = {
    "Collection": "event_format", "EventFormat": "event_format", "load_format": "event_format",
    "preset_names": "event_format", "expand_paths": "loading", "load_any": "loading", "ReadStats": "root_read",
    "read_root": "root_read", "write_delphes": "root_write", "write_flat": "root_write",
    "EventStream": "streaming", "Moments": "streaming", "stream_moments": "streaming",
}

__all__ = ["EventData", "load_events", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"mflow_sbi.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
