"""Deprecated location of :mod:`mflow_sbi.priors` (kept so that imports written for 0.1 keep working)."""

from mflow_sbi.priors import (
    Component,
    IndependentPrior,
    Normal1D,
    Uniform1D,
    box_uniform,
    diagonal_normal,
    parse_component,
    resolve_prior,
)

__all__ = [
    "Component",
    "IndependentPrior",
    "Normal1D",
    "Uniform1D",
    "box_uniform",
    "diagonal_normal",
    "parse_component",
    "resolve_prior",
]
