"""Latent phase space of the parametric WBF H -> gamma gamma generator: SM density, kinematics, acceptance.

Latent z, 14 coordinates (units GeV, radians), ``LATENT_NAMES``:

    0-3   leading-pT jet    (pT, eta, phi, m)
    4-7   subleading jet    (pT, eta, phi, m)
    8     diphoton invariant mass m_gg
    9-10  recoil kick k (2-D): pT(H) = -(pT(j1) + pT(j2)) + k
    11    Higgs rapidity y_H
    12-13 (cos theta*, phi*) of the leading-pT photon in the Higgs rest frame, reached from the lab by a pure
          boost along the Higgs momentum; angles measured against the lab axes (z = beam)

SM density. Events are generated with labelled jets (a, b) and a labelled photon A (direction n in the rest
frame, photon B along -n), independently:

    pT_a, pT_b ~ Gamma(k_pt, s_pt)                       falling spectra, mode (k_pt - 1) s_pt
    eta_c = (eta_a + eta_b) / 2 ~ N(0, s_c^2)
    Delta = eta_a - eta_b,  |Delta| ~ Gamma(k_d, s_d), sign +-1 with probability 1/2   (rapidity gap)
    phi_a ~ U(-pi, pi),  dphi = phi_a - phi_b ~ (1 + kappa cos 2 dphi) / (2 pi)          (mild modulation)
    m_a, m_b ~ Gamma(k_m, s_m)
    m_gg ~ N(m_H, sigma_m^2),  k ~ N(0, s_k^2 I_2),  y_H ~ N(0, s_y^2)
    cos theta* ~ U(-1, 1),  phi* ~ U(-pi, pi)                                          (isotropic decay)

(eta_a, eta_b) -> (eta_c, Delta) and (phi_a, phi_b) -> (phi_a, dphi) have unit Jacobian, so the generated
density is the product of these factors in z-coordinates. Every factor is symmetric under relabelling the jets
(a <-> b) and the photons (n -> -n), so the density of the pT-ordered latent z is 2 x 2 = 4 times the
generated density: p0(z) = 4 prod(factors), a normalized density on the pT-ordered region.

Acceptance (applied to the generated momenta): both jets pT > 20, |eta| < 5, |eta_j1 - eta_j2| > 2,
m_jj > 200; both photons pT > 20, |eta| < 2.5 (values from ``data/simulators/lhc.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from mflow_sbi.data.kinematics import from_pt_eta_phi_m, invariant_mass, pseudorapidity, transverse_momentum

LATENT_NAMES = ("pt_j1", "eta_j1", "phi_j1", "m_j1", "pt_j2", "eta_j2", "phi_j2", "m_j2",
                "m_gg", "kick_x", "kick_y", "y_h", "cos_theta_star", "phi_star")
LATENT_DIM = len(LATENT_NAMES)
LOG_LABELLINGS = math.log(4.0)  # jet and photon relabellings map to the same pT-ordered latent point


@dataclass(frozen=True)
class SMDensity:
    """Parameters of the SM latent density (see the module docstring)."""

    jet_pt_shape: float
    jet_pt_scale: float
    eta_center_width: float
    deta_shape: float
    deta_scale: float
    dphi_modulation: float
    jet_mass_shape: float
    jet_mass_scale: float
    higgs_mass: float
    mass_resolution: float
    kick_width: float
    higgs_rapidity_width: float


@dataclass(frozen=True)
class Cuts:
    """Acceptance cuts (GeV)."""

    jet_pt_min: float
    jet_eta_max: float
    deta_jj_min: float
    mjj_min: float
    photon_pt_min: float
    photon_eta_max: float


def wrap_angle(phi: np.ndarray) -> np.ndarray:
    """Map angles to [-pi, pi)."""
    return np.mod(phi + np.pi, 2 * np.pi) - np.pi


def _log_gamma_pdf(x: np.ndarray, shape: float, scale: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (shape - 1) * np.log(x) - x / scale - gammaln(shape) - shape * math.log(scale)
    return np.where(x > 0, value, -np.inf)


def _log_normal_pdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    return -0.5 * ((x - loc) / scale) ** 2 - math.log(scale * math.sqrt(2 * math.pi))


def signed_dphi_jj(z: np.ndarray) -> np.ndarray:
    """phi(forward jet) - phi(backward jet) in [-pi, pi), jets ordered in pseudorapidity (label independent)."""
    forward_first = z[:, 1] >= z[:, 5]
    dphi = wrap_angle(z[:, 2] - z[:, 6])
    return np.where(forward_first, dphi, -dphi)


def momentum_product(z: np.ndarray, scale: float) -> np.ndarray:
    """q = pT(j1) pT(j2) / scale^2, the momentum-transfer proxy the couplings grow with."""
    return z[:, 0] * z[:, 4] / scale**2


class LatentModel:
    """SM latent density, its sampler (optionally pT-tilted), the latent <-> momenta maps and the cuts."""

    def __init__(self, density: SMDensity, cuts: Cuts) -> None:
        self.density = density
        self.cuts = cuts

    # --- sampling -----------------------------------------------------------------------------------
    def _sample_dphi(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """dphi ~ (1 + kappa cos 2 dphi) / (2 pi) on [-pi, pi) by rejection from the uniform density."""
        kappa = self.density.dphi_modulation
        out = np.empty(n)
        todo = np.arange(n)
        while todo.size:
            proposal = rng.uniform(-np.pi, np.pi, todo.size)
            keep = rng.random(todo.size) * (1 + abs(kappa)) < 1 + kappa * np.cos(2 * proposal)
            out[todo[keep]] = proposal[keep]
            todo = todo[~keep]
        return out

    def sample_generated(self, n: int, rng: np.random.Generator, tilt: np.ndarray | int = 0) -> np.ndarray:
        """Draw generated (labelled, unordered) latent points, shape (n, 14).

        ``tilt`` m (per event) draws the jet pTs from p0(pT) pT^m / E[pT^m] = Gamma(k_pt + m, s_pt) instead, i.e.
        the event from p0(z) q(z)^m / E[q^m]; the rest of the event is unchanged.
        """
        d = self.density
        z = np.empty((n, LATENT_DIM))
        shape = d.jet_pt_shape + (tilt if np.ndim(tilt) == 0 else np.asarray(tilt)[:, None])
        z[:, [0, 4]] = rng.gamma(shape, d.jet_pt_scale, (n, 2))
        center = d.eta_center_width * rng.standard_normal(n)
        gap = rng.gamma(d.deta_shape, d.deta_scale, n) * (2.0 * rng.integers(0, 2, n) - 1.0)
        z[:, 1], z[:, 5] = center + 0.5 * gap, center - 0.5 * gap
        z[:, 2] = rng.uniform(-np.pi, np.pi, n)
        z[:, 6] = wrap_angle(z[:, 2] - self._sample_dphi(n, rng))
        z[:, [3, 7]] = rng.gamma(d.jet_mass_shape, d.jet_mass_scale, (n, 2))
        z[:, 8] = d.higgs_mass + d.mass_resolution * rng.standard_normal(n)
        z[:, 9:11] = d.kick_width * rng.standard_normal((n, 2))
        z[:, 11] = d.higgs_rapidity_width * rng.standard_normal(n)
        z[:, 12] = rng.uniform(-1.0, 1.0, n)
        z[:, 13] = rng.uniform(-np.pi, np.pi, n)
        return z

    def mean_momentum_product(self, power: int, scale: float) -> float:
        """E_p0[q^power] = (s_pt^power Gamma(k_pt + power) / Gamma(k_pt))^2 / scale^(2 power)."""
        d = self.density
        one_jet = math.exp(gammaln(d.jet_pt_shape + power) - gammaln(d.jet_pt_shape)) * d.jet_pt_scale**power
        return (one_jet / scale**power) ** 2

    # --- density ------------------------------------------------------------------------------------
    def log_density(self, z: np.ndarray) -> np.ndarray:
        """log p0(z) of the pT-ordered latent (without cuts; see the module docstring)."""
        d = self.density
        gap = z[:, 1] - z[:, 5]
        dphi = z[:, 2] - z[:, 6]
        terms = (
            _log_gamma_pdf(z[:, 0], d.jet_pt_shape, d.jet_pt_scale)
            + _log_gamma_pdf(z[:, 4], d.jet_pt_shape, d.jet_pt_scale)
            + _log_normal_pdf(0.5 * (z[:, 1] + z[:, 5]), 0.0, d.eta_center_width)
            + _log_gamma_pdf(np.abs(gap), d.deta_shape, d.deta_scale) - math.log(2.0)
            + np.log1p(d.dphi_modulation * np.cos(2 * dphi)) - 2 * math.log(2 * np.pi)
            + _log_gamma_pdf(z[:, 3], d.jet_mass_shape, d.jet_mass_scale)
            + _log_gamma_pdf(z[:, 7], d.jet_mass_shape, d.jet_mass_scale)
            + _log_normal_pdf(z[:, 8], d.higgs_mass, d.mass_resolution)
            + _log_normal_pdf(z[:, 9], 0.0, d.kick_width) + _log_normal_pdf(z[:, 10], 0.0, d.kick_width)
            + _log_normal_pdf(z[:, 11], 0.0, d.higgs_rapidity_width)
            - math.log(2.0) - math.log(2 * np.pi)
        )
        return terms + LOG_LABELLINGS

    # --- kinematics ---------------------------------------------------------------------------------
    @staticmethod
    def momenta(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent -> (photons, jets), each (n, 2, 4) (E, px, py, pz), in latent order (photon along n first)."""
        jets = np.stack([from_pt_eta_phi_m(*z[:, 0:4].T), from_pt_eta_phi_m(*z[:, 4:8].T)], axis=1)
        mass = z[:, 8]
        p_t = z[:, 9:11] - jets[:, 0, 1:3] - jets[:, 1, 1:3]
        m_t = np.sqrt(mass**2 + np.sum(p_t**2, axis=1))
        higgs = np.column_stack([m_t * np.cosh(z[:, 11]), p_t, m_t * np.sinh(z[:, 11])])
        sin_theta = np.sqrt(np.clip(1.0 - z[:, 12] ** 2, 0.0, None))
        direction = np.column_stack([sin_theta * np.cos(z[:, 13]), sin_theta * np.sin(z[:, 13]), z[:, 12]])
        rest = 0.5 * mass[:, None, None] * np.stack([direction, -direction], axis=1)  # (n, 2, 3)
        rest = np.concatenate([np.broadcast_to(0.5 * mass[:, None, None], (len(z), 2, 1)), rest], axis=2)
        photons = boost(rest, higgs[:, None, 1:] / higgs[:, None, 0:1])
        return photons, jets

    @staticmethod
    def latent(photons: np.ndarray, jets: np.ndarray) -> np.ndarray:
        """Exact inverse of ``momenta`` for pT-ordered objects (leading photon and jet first)."""
        z = np.empty((len(jets), LATENT_DIM))
        for k, jet in enumerate((jets[:, 0], jets[:, 1])):
            z[:, 4 * k] = transverse_momentum(jet)
            z[:, 4 * k + 1] = pseudorapidity(jet)
            z[:, 4 * k + 2] = np.arctan2(jet[:, 2], jet[:, 1])
            z[:, 4 * k + 3] = invariant_mass(jet)
        higgs = photons[:, 0] + photons[:, 1]
        z[:, 8] = invariant_mass(higgs)
        z[:, 9:11] = higgs[:, 1:3] + jets[:, 0, 1:3] + jets[:, 1, 1:3]
        z[:, 11] = np.arctanh(higgs[:, 3] / higgs[:, 0])
        rest = boost(photons[:, 0], -higgs[:, 1:] / higgs[:, 0:1])
        z[:, 12] = rest[:, 3] / np.linalg.norm(rest[:, 1:], axis=1)
        z[:, 13] = np.arctan2(rest[:, 2], rest[:, 1])
        return z

    def jets_may_pass(self, z: np.ndarray) -> np.ndarray:
        """Jet pT, |eta| and Delta-eta cuts evaluated on the latent directly (a superset filter for ``accepted``)."""
        c = self.cuts
        margin = 1e-9  # rounding between latent and momenta must never drop an accepted event
        return ((np.minimum(z[:, 0], z[:, 4]) > c.jet_pt_min - margin)
                & (np.maximum(np.abs(z[:, 1]), np.abs(z[:, 5])) < c.jet_eta_max + margin)
                & (np.abs(z[:, 1] - z[:, 5]) > c.deta_jj_min - margin))

    def accepted(self, photons: np.ndarray, jets: np.ndarray) -> np.ndarray:
        """Boolean acceptance of events (objects in any order)."""
        c = self.cuts
        jet_eta, photon_eta = pseudorapidity(jets), pseudorapidity(photons)
        return (
            np.all(transverse_momentum(jets) > c.jet_pt_min, axis=1)
            & np.all(np.abs(jet_eta) < c.jet_eta_max, axis=1)
            & (np.abs(jet_eta[:, 0] - jet_eta[:, 1]) > c.deta_jj_min)
            & (invariant_mass(jets[:, 0] + jets[:, 1]) > c.mjj_min)
            & np.all(transverse_momentum(photons) > c.photon_pt_min, axis=1)
            & np.all(np.abs(photon_eta) < c.photon_eta_max, axis=1)
        )


def boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Lorentz boost of four-momenta (..., 4) by velocity beta (..., 3) (the frame moves with -beta).

    E' = gamma (E + beta.p),  p' = p + (gamma^2 / (gamma + 1) (beta.p) + gamma E) beta.
    """
    beta = np.broadcast_to(beta, p4[..., 1:].shape)
    gamma = 1.0 / np.sqrt(1.0 - np.sum(beta**2, axis=-1))
    beta_p = np.sum(beta * p4[..., 1:], axis=-1)
    energy = gamma * (p4[..., 0] + beta_p)
    factor = gamma**2 / (gamma + 1.0) * beta_p + gamma * p4[..., 0]
    return np.concatenate([energy[..., None], p4[..., 1:] + factor[..., None] * beta], axis=-1)
