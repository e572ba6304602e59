"""Shared fixtures for the ROOT I/O tests: LHC-like events built through the kinematics helpers, a
plain-math reference for features, and the real ROOT files in ../shared/data/root (tests using them skip
when the folder is absent)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mflow_sbi.data import kinematics

# ../shared relative to the repository root; MFLOW_SBI_SHARED_ROOT overrides it (e.g. for a git worktree).
SHARED_ROOT = Path(os.environ.get("MFLOW_SBI_SHARED_ROOT",
                                  Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "root"))


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


def _reference_features(objects_per_collection, pairs):
    """Features of one event from lists of (E, px, py, pz) tuples, with plain math."""
    objects = [o for collection in objects_per_collection for o in collection]
    out = []
    for e, px, py, pz in objects:
        pt = math.hypot(px, py)
        out += [e, px, py, pz, pt, math.asinh(pz / pt)]
    for i, j in pairs:
        e, px, py, pz = (objects[i][k] + objects[j][k] for k in range(4))
        pt = math.hypot(px, py)
        eta_i = math.asinh(objects[i][3] / math.hypot(objects[i][1], objects[i][2]))
        eta_j = math.asinh(objects[j][3] / math.hypot(objects[j][1], objects[j][2]))
        out += [e, px, py, pz, pt, math.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0)), math.asinh(pz / pt),
                eta_i - eta_j]
    return out


def _p4_from_pt_eta_phi_m(pt, eta, phi, m):
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return (math.sqrt(px * px + py * py + pz * pz + m * m), px, py, pz)


@pytest.fixture
def reference():
    """Plain-math reference: ``p4(pt, eta, phi, m)`` and ``features(objects_per_collection, pairs)``."""
    return SimpleNamespace(p4=_p4_from_pt_eta_phi_m, features=_reference_features)
