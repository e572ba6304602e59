"""Event data: ``.npz`` data sets, ROOT I/O with event formats, streaming, and four-vector kinematics.

The ROOT-related names are imported lazily (on first use), so importing the package does not load
uproot, awkward or torch.
"""

from __future__ import annotations

from mflow_sbi.data.datasets import EventData, load_events
from mflow_sbi.lazy import lazy_exports

_MODULES = {
    "Collection": "event_format", "EventFormat": "event_format", "load_format": "event_format",
    "preset_names": "event_format", "expand_paths": "loading", "load_any": "loading", "ReadStats": "root_read",
    "read_root": "root_read", "write_delphes": "root_write", "write_flat": "root_write",
    "EventStream": "streaming", "Moments": "streaming", "stream_moments": "streaming",
}
_LAZY = {name: f"mflow_sbi.data.{module}" for name, module in _MODULES.items()}

__all__ = ["EventData", "load_events", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
