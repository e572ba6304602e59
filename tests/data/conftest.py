"""Shared fixtures for the ROOT I/O tests: LHC-like events built through the kinematics helpers, and
the real ROOT files in ../shared/data/root (tests using them skip when the folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mflow_sbi.data import kinematics

SHARED_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "root"


def leading_objects(rng: np.random.Generator, n: int, k: int, max_abs_eta: float, massive: bool) -> np.ndarray:
    """(n, k, 4) four-momenta with pT in (25, 300) GeV ordered by decreasing pT, inside |eta| < max_abs_eta."""
    pt = -np.sort(-rng.uniform(25.0, 300.0, (n, k)), axis=1)
    eta = rng.uniform(-max_abs_eta, max_abs_eta, (n, k))
    phi = rng.uniform(-np.pi, np.pi, (n, k))
    mass = rng.uniform(2.0, 30.0, (n, k)) if massive else np.zeros((n, k))
    return kinematics.from_pt_eta_phi_m(pt, eta, phi, mass)


@pytest.fixture
def lhc_like():
    """Photons (n, 2, 4), jets (n, 2, 4) passing the delphes preset's acceptance, theta (n, 2)."""
    rng = np.random.default_rng(20260101)
    n = 1500
    photons = leading_objects(rng, n, 2, 2.4, massive=False)
    jets = leading_objects(rng, n, 2, 4.8, massive=True)
    theta = rng.normal(size=(n, 2))
    return photons, jets, theta


@pytest.fixture
def shared_root() -> Path:
    if not SHARED_ROOT.is_dir():
        pytest.skip(f"real ROOT files not found: {SHARED_ROOT} (the ../shared data folder is absent)")
    return SHARED_ROOT
