"""Lazy re-exports for package ``__init__`` modules (PEP 562 module ``__getattr__``).

A package lists ``{name: module}`` for its public names; a name's module is imported on first access, so
importing the package itself stays cheap (no torch, emcee, scipy or matplotlib until they are needed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``names[name]`` (an absolute module) on use."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *names})

    return __getattr__, __dir__
