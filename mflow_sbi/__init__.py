"""mflow-sbi: simulation-based inference with manifold-learning flows (Brehmer & Cranmer 2020)."""

__version__ = "0.1.0"
