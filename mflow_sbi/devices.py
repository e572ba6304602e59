"""Where models run: ``device`` names as configured (``[training] device``, ``[inference] device``, ``--device``).

    "cpu"     the CPU
    "cuda"    the current CUDA GPU ("cuda:N": GPU N); an error when torch sees no CUDA device
    "auto"    "cuda" when torch sees a CUDA device, else "cpu"

Models, training tensors, cached encodings and likelihood chunks live on the resolved device; results come
back to the CPU (numpy) only where they leave the model code. torch is imported on use, so the CLI can read
the names while building its parser.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mflow_sbi.errors import ConfigError
from mflow_sbi.schema import Rule

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("cpu", "cuda", "auto")
DEFAULT_DEVICE = "auto"
_NAME = re.compile(r"^(cpu|cuda|auto|cuda:\d+)$")


def is_device_name(value: object) -> bool:
    """True for "cpu", "cuda", "cuda:N" and "auto"."""
    return isinstance(value, str) and bool(_NAME.match(value))


DEVICE = Rule(f"one of {DEVICE_CHOICES} or 'cuda:N'", is_device_name)  # the config tables' ``device`` keys


def resolve_device(name: str = DEFAULT_DEVICE) -> torch.device:
    """The torch device for a device name (see the module docstring); a ConfigError naming the value when it is
    not one, or when CUDA is asked for and torch sees no CUDA device."""
    import torch

    if not is_device_name(name):
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "without CUDA support" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}"
            raise ConfigError(f"device {name!r}: CUDA is not available (torch {torch.__version__} is built {built} "
                              "and sees no GPU); use device 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device
