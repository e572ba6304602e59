"""Kinematics helpers against direct angle arithmetic."""

from __future__ import annotations

import numpy as np

from mflow_sbi.data.kinematics import azimuthal_asymmetry, from_pt_eta_phi_m


def test_azimuthal_asymmetry_is_sin_2dphi_forward_minus_backward_and_label_free():
    rng = np.random.default_rng(0)
    n = 1000
    eta, phi = rng.uniform(-4, 4, (2, n)), rng.uniform(-np.pi, np.pi, (2, n))
    first = from_pt_eta_phi_m(rng.uniform(20, 300, n), eta[0], phi[0], rng.uniform(0, 20, n))
    second = from_pt_eta_phi_m(rng.uniform(20, 300, n), eta[1], phi[1], rng.uniform(0, 20, n))
    dphi = np.where(eta[0] >= eta[1], phi[0] - phi[1], phi[1] - phi[0])
    value = azimuthal_asymmetry(first, second)
    np.testing.assert_allclose(value, np.sin(2 * dphi), atol=1e-12)
    np.testing.assert_allclose(azimuthal_asymmetry(second, first), value, atol=1e-12)
    assert np.mean(value > 0) > 0.4 and np.mean(value < 0) > 0.4  # both signs occur: the test can fail
