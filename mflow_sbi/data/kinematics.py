"""Four-vector kinematics and the observables built from them.

Shared by the LHC simulator and the ROOT readers, so that a simulated event and the same event read back
from a ROOT file give identical features. All arrays float64, units GeV, natural units (c = 1).

Conventions
-----------
A four-momentum array has trailing shape (4,) ordered (E, px, py, pz).

    pT  = sqrt(px^2 + py^2)
    eta = asinh(pz / pT)                  (pseudorapidity)
    m   = sqrt(max(E^2 - |p|^2, 0))

Object features (6 per object):   (E, px, py, pz, pT, eta)
Pair features (8 per pair):       (E, px, py, pz, pT, m, eta) of the summed four-momentum, and
                                  Delta-eta = eta(first) - eta(second) of the two constituents.
Azimuthal asymmetry of a pair:    sin(2 Delta-phi), Delta-phi = phi(forward) - phi(backward), the forward
                                  object being the one of larger eta (so it does not depend on the labels);
                                  in weak boson fusion its sign follows a CP-odd coupling (Plehn, Rainwater and
                                  Zeppenfeld, Phys. Rev. Lett. 88 (2002) 051801).
"""

from __future__ import annotations

import numpy as np

OBJECT_FEATURES = ("E", "px", "py", "pz", "pT", "eta")
PAIR_FEATURES = ("E", "px", "py", "pz", "pT", "m", "eta", "deta")
AZIMUTHAL_FEATURE = "sin2dphi"


def from_pt_eta_phi_m(pt, eta, phi, mass) -> np.ndarray:
    """(E, px, py, pz) from transverse momentum, pseudorapidity, azimuth and mass."""
    pt, eta, phi, mass = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, mass))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return np.stack([energy, px, py, pz], axis=-1)


def from_pt_eta_phi_e(pt, eta, phi, energy) -> np.ndarray:
    """(E, px, py, pz) from transverse momentum, pseudorapidity, azimuth and energy."""
    pt, eta, phi, energy = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, energy))
    return np.stack([energy, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def from_px_py_pz_e(px, py, pz, energy) -> np.ndarray:
    """(E, px, py, pz) from Cartesian components."""
    return np.stack([np.asarray(a, dtype=np.float64) for a in (energy, px, py, pz)], axis=-1)


def transverse_momentum(p4: np.ndarray) -> np.ndarray:
    return np.hypot(p4[..., 1], p4[..., 2])


def pseudorapidity(p4: np.ndarray) -> np.ndarray:
    return np.arcsinh(p4[..., 3] / transverse_momentum(p4))


def azimuth(p4: np.ndarray) -> np.ndarray:
    return np.arctan2(p4[..., 2], p4[..., 1])


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    m2 = p4[..., 0] ** 2 - (p4[..., 1] ** 2 + p4[..., 2] ** 2 + p4[..., 3] ** 2)
    return np.sqrt(np.maximum(m2, 0.0))


def object_features(p4: np.ndarray) -> np.ndarray:
    """(..., 4) four-momenta -> (..., 6) features (E, px, py, pz, pT, eta)."""
    return np.concatenate([p4, transverse_momentum(p4)[..., None], pseudorapidity(p4)[..., None]], axis=-1)


def pair_features(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two (..., 4) four-momenta -> (..., 8) features of their sum plus their Delta-eta."""
    total = first + second
    return np.concatenate(
        [
            total,
            transverse_momentum(total)[..., None],
            invariant_mass(total)[..., None],
            pseudorapidity(total)[..., None],
            (pseudorapidity(first) - pseudorapidity(second))[..., None],
        ],
        axis=-1,
    )


def azimuthal_asymmetry(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two (..., 4) four-momenta -> sin(2 (phi_forward - phi_backward)) (...), from the components only:

        sin(phi_a - phi_b) = (py_a px_b - px_a py_b) / (pT_a pT_b),  cos(phi_a - phi_b) = (px_a px_b + py_a py_b) / (pT_a pT_b),

    sin 2 dphi = 2 sin dphi cos dphi, with the sign flipped when the second object is the forward one.
    """
    norm = transverse_momentum(first) * transverse_momentum(second)
    sine = (first[..., 2] * second[..., 1] - first[..., 1] * second[..., 2]) / norm
    cosine = (first[..., 1] * second[..., 1] + first[..., 2] * second[..., 2]) / norm
    forward_first = pseudorapidity(first) >= pseudorapidity(second)
    return np.where(forward_first, 1.0, -1.0) * 2 * sine * cosine


def sort_by_pt(p4: np.ndarray) -> np.ndarray:
    """Order objects along axis -2 by decreasing pT; p4 has shape (n_events, n_objects, 4)."""
    order = np.argsort(-transverse_momentum(p4), axis=-1, kind="stable")
    return np.take_along_axis(p4, order[..., None], axis=-2)


def event_features(collections: list[np.ndarray], pairs: list[tuple[int, int]],
                   azimuthal_pairs: list[tuple[int, int]] = ()) -> np.ndarray:
    """Concatenate object features, pair features, then pair azimuthal asymmetries for one array of events.

    ``collections`` is a list of (n_events, k_i, 4) arrays (objects already selected and ordered); the
    objects are numbered in that order. ``pairs`` and ``azimuthal_pairs`` list index pairs into the flattened
    object list. Returns an (n_events, 6 * n_objects + 8 * n_pairs + n_azimuthal_pairs) array.
    """
    objects = np.concatenate(collections, axis=1)
    parts = [object_features(objects).reshape(objects.shape[0], -1)]
    parts += [pair_features(objects[:, i], objects[:, j]) for i, j in pairs]
    parts += [azimuthal_asymmetry(objects[:, i], objects[:, j])[:, None] for i, j in azimuthal_pairs]
    return np.concatenate(parts, axis=1)
