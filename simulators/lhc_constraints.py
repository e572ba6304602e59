"""The 26 exact constraints that cut the LHC simulator's 14-dimensional manifold out of its 40 observables
(27 out of 41 with the CP-odd observable).

Observables (objects ordered by pT): photon 1, photon 2, jet 1, jet 2 each (E, px, py, pz, pT, eta) at offsets
0, 6, 12, 18; the diphoton and the dijet system each (E, px, py, pz, pT, m, eta, Delta-eta) at 24 and 32.
Every constraint is written as a dimensionless residual that vanishes on the manifold:

    6 pT relations      (pT - sqrt(px^2 + py^2)) / E                 4 objects + 2 systems
    6 eta relations     (pz - pT sinh(eta)) / E                        4 objects + 2 systems
    4 on-shell          (E^2 - |p|^2) / E^2 (massless photons), (m^2 - E^2 + |p|^2) / E^2 (systems)
    8 momentum sums     (P_system - p_first - p_second) / E_system    4 components x 2 systems
    2 Delta-eta         Delta-eta - (eta_first - eta_second)           2 systems

With the CP-odd observable (``lhc`` option ``cp_observable``, a 41st column: the jets' azimuthal asymmetry
sin 2 Delta-phi_jj of ``mflow_sbi.data.kinematics.azimuthal_asymmetry``) a 27th residual holds it to the jets'
components: x_40 - sin 2 Delta-phi_jj(jet 1, jet 2); the manifold stays 14-dimensional.

The distance to the manifold is the root mean square of the residuals (the paper's "closure").
"""

from __future__ import annotations

import numpy as np

from mflow_sbi.data.kinematics import azimuthal_asymmetry

OBJECTS = (0, 6, 12, 18)
SYSTEMS = ((24, 0, 6), (32, 12, 18))  # (system offset, first constituent, second constituent)
N_CONSTRAINTS = 26
BASE_OBSERVABLES = 40
JET_SLICES = (slice(12, 16), slice(18, 22))  # the (E, px, py, pz) of jet 1 and jet 2


def _pt_relation(x: np.ndarray, b: int) -> np.ndarray:
    return (x[:, b + 4] - np.hypot(x[:, b + 1], x[:, b + 2])) / x[:, b]


def _eta_relation(x: np.ndarray, b: int, eta: int) -> np.ndarray:
    return (x[:, b + 3] - x[:, b + 4] * np.sinh(x[:, eta])) / x[:, b]


def _mass_squared(x: np.ndarray, b: int) -> np.ndarray:
    return x[:, b] ** 2 - x[:, b + 1] ** 2 - x[:, b + 2] ** 2 - x[:, b + 3] ** 2


def constraint_violations(x: np.ndarray) -> np.ndarray:
    """(n, 40) observables -> (n, 26) dimensionless residuals, in the order of the module docstring; (n, 41)
    observables (with the CP-odd one) -> (n, 27)."""
    columns = [_pt_relation(x, b) for b in OBJECTS] + [_pt_relation(x, s) for s, _, _ in SYSTEMS]
    columns += [_eta_relation(x, b, b + 5) for b in OBJECTS] + [_eta_relation(x, s, s + 6) for s, _, _ in SYSTEMS]
    columns += [_mass_squared(x, b) / x[:, b] ** 2 for b in OBJECTS[:2]]
    columns += [(x[:, s + 5] ** 2 - _mass_squared(x, s)) / x[:, s] ** 2 for s, _, _ in SYSTEMS]
    for s, first, second in SYSTEMS:
        columns += [(x[:, s + k] - x[:, first + k] - x[:, second + k]) / x[:, s] for k in range(4)]
    columns += [x[:, s + 7] - (x[:, first + 5] - x[:, second + 5]) for s, first, second in SYSTEMS]
    if x.shape[1] > BASE_OBSERVABLES:
        columns.append(x[:, BASE_OBSERVABLES] - azimuthal_asymmetry(*(x[:, jet] for jet in JET_SLICES)))
    return np.stack(columns, axis=1)


def closure(x: np.ndarray) -> np.ndarray:
    """Root mean square of the residuals per event."""
    return np.sqrt(np.mean(constraint_violations(x) ** 2, axis=1))
