"""Weak boson fusion pp -> H j j, H -> gamma gamma at sqrt(s) = 13 TeV: a fast parametric generator with an
exact likelihood, standing in for MadGraph + Pythia + Delphes.

Parameters theta = (theta_0, theta_1): scaled couplings of a CP-even and a CP-odd dimension-six Higgs-vector-
boson operator; the Standard Model is (0, 0); prior N(0, 1) for each.

Latent phase space z (14-D) and its SM density p0(z): see ``simulators/lhc_model.py``. The parameters enter
through an EFT-like amplitude squared (quadratic in theta, never negative),

    w(z, theta) = |1 + theta_0 a(z) + i theta_1 b(z) exp(2 i dphi_jj)|^2,   a = c_even q,  b = c_odd q,
    q = pT(j1) pT(j2) / (100 GeV)^2,

with dphi_jj = phi(forward jet) - phi(backward jet), so the CP-even operator hardens the jet spectra and the
CP-odd one produces a sin(2 dphi_jj) asymmetry whose sign follows theta_1. With the acceptance indicator
1_acc(z),

    p(z|theta) = p0(z) w(z, theta) 1_acc(z) / sigma(theta),

and sigma(theta) is the quadratic of ``simulators/lhc_cross_section.py``. Sampling is exact rejection
sampling: with w = |1 + q u|^2, u = theta_0 c_even + i theta_1 c_odd exp(2 i dphi_jj), the bounds
Re u <= beta = theta_0 c_even + |theta_1| c_odd and |u| <= gamma = |theta_0| c_even + |theta_1| c_odd give the
envelope p0(z) (1 + 2 max(beta, 0) q + gamma^2 q^2) >= p0(z) w(z, theta), a three-component mixture of the
pT-tilted SM densities p0 q^m / E[q^m] (m = 0, 1, 2); candidates outside the cuts are rejected too.

Observables x (40, objects ordered by pT) are computed from the four-momenta only via
``mflow_sbi.data.kinematics.event_features``; they lie on a 14-dimensional manifold given by the 26 constraints
of ``simulators/lhc_constraints.py``. Option ``cp_observable=True`` appends a 41st: the jets' azimuthal asymmetry
sin 2 dphi_jj (``azimuthal_asymmetry``), a smooth function of the jets' momenta on the manifold (the Delta-eta
cut keeps the jets apart in eta, so which one is forward never flips), held to them by a 27th constraint. The
likelihood ratio of an event depends on theta only through (q, sin 2 dphi_jj): w = (1 + theta_0 a - theta_1 b s)^2
+ theta_1^2 b^2 (1 - s^2); with the option the CP-odd direction is one coordinate instead of an arctangent of
the jets' components. ``log_likelihood`` inverts x -> z and returns log p(z|theta): the
density of x on the manifold differs from it by the embedding term -1/2 log det(J^T J)(z), which does not
depend on theta, so the result is exact up to a theta-independent (event-dependent) term.

With ``smearing=True`` jet and photon four-momenta are scaled by log-normal resolution factors (after the
cuts, before the observables): the data stay on the same manifold, but the likelihood is intractable.

Jet-energy-scale nuisance (``jes_uncertainty = s > 0``): a third parameter nu (``nu_jes``, prior N(0, 1), declared
in ``nuisance_names``) scales both jets' four-momenta by lambda = 1 + s nu after the cuts (like the smearing,
it moves no event across them, so sigma(theta) and ``expected_events`` do not depend on nu). The observed
latent z' = (lambda pT_j, eta_j, phi_j, lambda m_j, m_gg, k', y_H, angles) has the recoil kick
k' = k + (lambda - 1) (pT_vec(j1) + pT_vec(j2)) (the photons are unchanged), a map z -> z' that is triangular with
diagonal (lambda, 1, 1, lambda) per jet and 1 elsewhere, so |det dz'/dz| = lambda^4 and the likelihood stays exact:

    log p(z' | theta, nu) = log p(z(z', nu) | theta) - 4 log lambda,   z(z', nu) = latent(photons, jets / lambda).

The scaled events lie on the same manifold (a four-momentum scaled as a whole stays a four-momentum), and its
embedding term does not depend on nu either. lambda <= 0 (nu <= -1/s) has likelihood 0.
"""

from __future__ import annotations

import numpy as np

from mflow_sbi.data.event_format import load_format
from mflow_sbi.data.kinematics import event_features, sort_by_pt
from mflow_sbi.errors import ConfigError, InputError, IntractableLikelihood
from mflow_sbi.priors import diagonal_normal

from .base import broadcast_theta, check_x, load_constants
from .lhc_constraints import BASE_OBSERVABLES, JET_SLICES, closure, constraint_violations
from .lhc_cross_section import fingerprint
from .lhc_model import Cuts, LatentModel, SMDensity, momentum_product, signed_dphi_jj

PHOTON_SLICES = (slice(0, 4), slice(6, 10))
PAIRS = ((0, 1), (2, 3))  # diphoton and dijet systems
AZIMUTHAL_PAIRS = ((2, 3),)  # the jets' sin 2 dphi_jj (option cp_observable)


def load_lhc_constants(check: bool = True) -> dict:
    """Read the constants ``lhc.json``; with ``check``, require acceptances computed for these constants."""
    constants = load_constants("lhc")
    if check:
        stored = constants.get("cross_section", {}).get("fingerprint")
        if stored != fingerprint(constants):
            raise ConfigError(f"lhc.json (simulator constants): cross-section acceptances are missing or stale "
                              f"for these constants (fingerprint {stored} != {fingerprint(constants)}); "
                              "run `python -m mflow_sbi.simulators.calibrate_lhc`")
    return constants


def make_latent_model(constants: dict) -> LatentModel:
    return LatentModel(SMDensity(**constants["sm_density"]), Cuts(**constants["cuts"]))


class LHC:
    """The WBF H -> gamma gamma generator; see the module docstring for the model."""

    name = "lhc"
    data_dim = 40
    manifold_dim = 14
    parameter_names = ("theta_0", "theta_1")
    parameter_labels = (r"$\theta_0$", r"$\theta_1$")

    nuisance_names: tuple[str, ...] = ()

    def __init__(self, smearing: bool = False, jes_uncertainty: float = 0.0, cp_observable: bool = False) -> None:
        constants = load_lhc_constants()
        self.version = constants["version"]
        self.smearing = bool(smearing)
        if not isinstance(cp_observable, bool):
            raise ConfigError(f"lhc option cp_observable must be true or false, got {cp_observable!r}")
        self.cp_observable = cp_observable
        self.data_dim = BASE_OBSERVABLES + int(cp_observable)
        if isinstance(jes_uncertainty, bool) or not isinstance(jes_uncertainty, int | float) \
                or not 0.0 <= jes_uncertainty < 1.0:
            raise ConfigError(f"lhc option jes_uncertainty must be a number in [0, 1), got {jes_uncertainty!r}")
        self.jes_uncertainty = float(jes_uncertainty)
        self.model = make_latent_model(constants)
        couplings = constants["couplings"]
        self.momentum_scale = float(couplings["momentum_scale"])
        self.c_even, self.c_odd = float(couplings["cp_even"]), float(couplings["cp_odd"])
        self.resolution = constants["smearing"]
        self.q_moments = np.array([self.model.mean_momentum_product(m, self.momentum_scale) for m in range(3)])
        self.sigma_terms = self.q_moments * np.array(constants["cross_section"]["acceptance"])  # A_0, A_1, A_2
        self.sm_cross_section_fb = float(constants["normalization"]["sm_cross_section_fb"])
        self.prior = diagonal_normal([0.0, 0.0], [1.0, 1.0])
        if self.jes_uncertainty > 0:
            self.parameter_names = (*self.parameter_names, "nu_jes")
            self.parameter_labels = (*self.parameter_labels, r"$\nu_{\rm JES}$")
            self.nuisance_names = ("nu_jes",)
            self.prior = diagonal_normal([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])

    @property
    def root_format(self) -> str | dict:
        """The event format that reads this simulator's Delphes-layout ROOT files back into its observables: the
        ``delphes`` preset, with the jets' azimuthal asymmetry added under ``cp_observable``."""
        if not self.cp_observable:
            return "delphes"
        return load_format("delphes").to_dict() | {"azimuthal_pairs": [list(pair) for pair in AZIMUTHAL_PAIRS]}

    @property
    def parameter_dim(self) -> int:
        return len(self.parameter_names)

    def jet_scale(self, theta: np.ndarray) -> np.ndarray | None:
        """lambda = 1 + s nu per row of theta (n, p), or None without the nuisance."""
        return 1.0 + self.jes_uncertainty * theta[:, 2] if self.nuisance_names else None

    # --- theta dependence ---------------------------------------------------------------------------
    def amplitude_terms(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, sin 2 dphi_jj, cos 2 dphi_jj) per event."""
        q = momentum_product(z, self.momentum_scale)
        dphi = signed_dphi_jj(z)
        return self.c_even * q, self.c_odd * q, np.sin(2 * dphi), np.cos(2 * dphi)

    def weight(self, z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """w(z, theta) = (1 + theta_0 a - theta_1 b s)^2 + (theta_1 b c)^2."""
        theta = broadcast_theta(theta, len(z), 2)
        a, b, s, c = self.amplitude_terms(z)
        return (1 + theta[:, 0] * a - theta[:, 1] * b * s) ** 2 + (theta[:, 1] * b * c) ** 2

    def cross_section(self, theta: np.ndarray) -> np.ndarray:
        """sigma(theta) = A_0 + 2 c_even theta_0 A_1 + (c_even^2 theta_0^2 + c_odd^2 theta_1^2) A_2."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        a0, a1, a2 = self.sigma_terms
        return a0 + 2 * self.c_even * theta[:, 0] * a1 + (self.c_even**2 * theta[:, 0] ** 2
                                                           + self.c_odd**2 * theta[:, 1] ** 2) * a2

    def expected_events(self, theta: np.ndarray, luminosity: float) -> np.ndarray:
        """nu(theta) = luminosity x sigma_SM x sigma(theta), shape (K,), for ``luminosity`` in fb^-1.

        ``cross_section(theta)`` is dimensionless: the accepted rate E_p0[w 1_acc] relative to the SM rate
        before cuts, so it already holds the acceptance of the cuts (sigma(0) = eps_0, the SM acceptance) and the
        efficiency factor of nu = L sigma eps is 1 here (no detector efficiency is modelled; smearing, when on,
        acts after the cuts and moves no event across them). sigma_SM = 8.585 fb is the SM WBF H -> gamma gamma
        cross section before cuts (``normalization`` in ``lhc.json``), so nu(0) = 5.28 L / fb^-1.
        """
        return float(luminosity) * self.sm_cross_section_fb * self.cross_section(theta)

    # --- sampling -----------------------------------------------------------------------------------
    def _envelope_coefficients(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(beta+, gamma) with w <= 1 + 2 beta+ q + gamma^2 q^2 for every dphi_jj.

        Writing w = |1 + q u|^2 with u = theta_0 c_even + i theta_1 c_odd exp(2 i dphi_jj):
        Re u <= beta = theta_0 c_even + |theta_1| c_odd and |u| <= gamma = |theta_0| c_even + |theta_1| c_odd.
        """
        beta = self.c_even * theta[:, 0] + self.c_odd * np.abs(theta[:, 1])
        gamma = self.c_even * np.abs(theta[:, 0]) + self.c_odd * np.abs(theta[:, 1])
        return np.maximum(beta, 0.0), gamma

    def _propose(self, beta: np.ndarray, gamma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw from p0 (1 + 2 beta q + gamma^2 q^2): a mixture of the pT tilts m = 0, 1, 2 with weights
        (1, 2 beta E[q], gamma^2 E[q^2])."""
        mixture = np.stack([np.ones_like(gamma), 2 * beta * self.q_moments[1], gamma**2 * self.q_moments[2]], 1)
        cumulative = np.cumsum(mixture, axis=1) / mixture.sum(axis=1, keepdims=True)
        tilt = np.sum(rng.random(len(gamma))[:, None] > cumulative[:, :2], axis=1)
        z = np.empty((len(gamma), self.manifold_dim))
        for m in range(3):
            chosen = tilt == m
            z[chosen] = self.model.sample_generated(int(chosen.sum()), rng, m)
        return z

    def sample_events(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(photons, jets), each (n, 2, 4) four-momenta (E, px, py, pz) ordered by decreasing pT."""
        theta = broadcast_theta(theta, n, self.parameter_dim)
        scale = self.jet_scale(theta)
        if scale is not None and np.any(scale <= 0):
            raise InputError(f"nu_jes must exceed -1 / jes_uncertainty = {-1 / self.jes_uncertainty:.4g} "
                             "(a positive jet energy scale)")
        theta = theta[:, :2]
        beta, gamma = self._envelope_coefficients(theta)
        photons, jets = np.empty((n, 2, 4)), np.empty((n, 2, 4))
        todo = np.arange(n)
        while todo.size:
            z = self._propose(beta[todo], gamma[todo], rng)
            q = momentum_product(z, self.momentum_scale)
            envelope = 1 + 2 * beta[todo] * q + (gamma[todo] * q) ** 2
            candidate = np.flatnonzero((rng.random(len(todo)) * envelope < self.weight(z, theta[todo]))
                                       & self.model.jets_may_pass(z))
            new_photons, new_jets = self.model.momenta(z[candidate])
            passed = self.model.accepted(new_photons, new_jets)
            keep = candidate[passed]
            photons[todo[keep]], jets[todo[keep]] = new_photons[passed], new_jets[passed]
            todo = np.delete(todo, keep)
        if scale is not None:
            jets = jets * scale[:, None, None]
        if self.smearing:
            photons, jets = self._smear(photons, "photon", rng), self._smear(jets, "jet", rng)
        return sort_by_pt(photons), sort_by_pt(jets)

    def _smear(self, p4: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
        """Scale each four-momentum by exp(r N(0, 1)), r = sqrt(stochastic^2 / E + constant^2)."""
        stochastic, constant = self.resolution[f"{kind}_stochastic"], self.resolution[f"{kind}_constant"]
        relative = np.sqrt(stochastic**2 / p4[..., 0] + constant**2)
        return p4 * np.exp(relative * rng.standard_normal(relative.shape))[..., None]

    def observables(self, photons: np.ndarray, jets: np.ndarray) -> np.ndarray:
        """The 40 observables of pT-ordered (photons, jets) (see ``simulators/lhc_constraints.py``), then with
        ``cp_observable`` the jets' sin 2 dphi_jj."""
        return event_features([photons, jets], pairs=PAIRS, azimuthal_pairs=AZIMUTHAL_PAIRS if self.cp_observable else ())

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.observables(*self.sample_events(theta, n, rng))

    # --- latent <-> observables ---------------------------------------------------------------------
    @staticmethod
    def momenta(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(photons, jets) four-momenta read back from the observables."""
        return (np.stack([x[:, s] for s in PHOTON_SLICES], axis=1), np.stack([x[:, s] for s in JET_SLICES], axis=1))

    def latent(self, x: np.ndarray) -> np.ndarray:
        """Observables -> latent z (n, 14) (exact inverse of ``embed`` on the manifold)."""
        return self.model.latent(*self.momenta(check_x(x, self.data_dim)))

    def embed(self, z: np.ndarray) -> np.ndarray:
        """Latent z (pT-ordered, leading photon's decay angles) -> observables (n, data_dim)."""
        return self.observables(*self.model.momenta(np.asarray(z, dtype=np.float64)))

    # --- likelihood ---------------------------------------------------------------------------------
    def _require_tractable(self) -> None:
        if self.smearing:
            raise IntractableLikelihood("lhc with smearing=True has no tractable likelihood; use smearing=False")

    def latent_log_prob(self, z: np.ndarray, theta: np.ndarray, accepted: np.ndarray) -> np.ndarray:
        """log p(z|theta) = log p0(z) + log w(z, theta) - log sigma(theta); -inf where not ``accepted``."""
        theta = broadcast_theta(theta, len(z), 2)
        with np.errstate(divide="ignore"):
            value = self.model.log_density(z) + np.log(self.weight(z, theta)) - np.log(self.cross_section(theta))
        return np.where(accepted, value, -np.inf)

    def in_support(self, x: np.ndarray) -> np.ndarray:
        """Inside the acceptance and pT-ordered as the latent parametrization requires."""
        photons, jets = self.momenta(x)
        return (self.model.accepted(photons, jets) & (x[:, 4] >= x[:, 10]) & (x[:, 16] >= x[:, 22]))

    def unscaled(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The observables with both jets' four-momenta divided by the jet energy scale ``scale`` (n,)."""
        photons, jets = self.momenta(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.observables(photons, jets / scale[:, None, None])

    def log_likelihood(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """log p(z(x)|theta) (with the nuisance: log p(z(z', nu)|theta) - 4 log lambda): exact up to the
        theta-independent embedding term (module docstring)."""
        self._require_tractable()
        x = check_x(x, self.data_dim)
        theta = broadcast_theta(theta, len(x), self.parameter_dim)
        scale = self.jet_scale(theta)
        if scale is None:
            return self.latent_log_prob(self.latent(x), theta, self.in_support(x))
        positive = scale > 0
        safe = np.where(positive, scale, 1.0)
        truth = self.unscaled(x, safe)
        value = self.latent_log_prob(self.latent(truth), theta[:, :2], self.in_support(truth)) - 4 * np.log(safe)
        return np.where(positive, value, -np.inf)

    def joint_score(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """grad_theta log p(z(x)|theta) = grad w / w - grad sigma / sigma, shape (n, p) (with the nuisance also
        d/dnu, :meth:`_joint_score_with_nuisance`)."""
        self._require_tractable()
        x = check_x(x, self.data_dim)
        if self.nuisance_names:
            return self._joint_score_with_nuisance(x, broadcast_theta(theta, len(x), self.parameter_dim))
        return self._theta_score(self.latent(x), broadcast_theta(theta, len(x), 2))

    def _theta_score(self, z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        a, b, s, c = self.amplitude_terms(z)
        real = 1 + theta[:, 0] * a - theta[:, 1] * b * s
        w = real**2 + (theta[:, 1] * b * c) ** 2
        d_w = np.stack([2 * a * real, -2 * b * s * real + 2 * theta[:, 1] * (b * c) ** 2], axis=1)
        a1, a2 = self.sigma_terms[1:]
        d_sigma = np.stack([2 * self.c_even * a1 + 2 * self.c_even**2 * theta[:, 0] * a2,
                            2 * self.c_odd**2 * theta[:, 1] * a2], axis=1)
        return d_w / w[:, None] - d_sigma / self.cross_section(theta)[:, None]

    def _joint_score_with_nuisance(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(d/dtheta_0, d/dtheta_1, d/dnu) of log p(z(z', nu) | theta) - 4 log lambda (module docstring).

        With z(z', nu): pT_j = pT'_j / lambda, m_j = m'_j / lambda, k = k' - (1 - 1/lambda) S' (S' the jets' summed
        transverse momenta), dz/dnu = -(s / lambda) (pT_j, m_j, S) with S = S' / lambda, and d log p / dz from the
        gamma (jet pT and mass), normal (kick) and amplitude factors (w depends on the jet pTs through
        q = pT_1 pT_2 / scale^2); the cuts act on z and contribute nothing away from their boundaries.
        """
        scale = self.jet_scale(theta)
        truth = self.unscaled(x, scale)
        z = self.latent(truth)
        theta_poi = theta[:, :2]
        d = self.model.density
        dlog_pt = (d.jet_pt_shape - 1) / z[:, [0, 4]] - 1 / d.jet_pt_scale
        dlog_m = (d.jet_mass_shape - 1) / z[:, [3, 7]] - 1 / d.jet_mass_scale
        dlog_kick = -z[:, 9:11] / d.kick_width**2
        a, b, s, c = self.amplitude_terms(z)
        q = momentum_product(z, self.momentum_scale)
        real = 1 + theta_poi[:, 0] * a - theta_poi[:, 1] * b * s
        w = real**2 + (theta_poi[:, 1] * b * c) ** 2
        dw_dq = (2 * real * (theta_poi[:, 0] * self.c_even - theta_poi[:, 1] * self.c_odd * s)
                 + 2 * (theta_poi[:, 1] * b * c) * theta_poi[:, 1] * self.c_odd * c)
        dlog_pt = dlog_pt + (dw_dq * q / w)[:, None] / z[:, [0, 4]]
        _, jets = self.momenta(truth)
        summed = jets[:, 0, 1:3] + jets[:, 1, 1:3]
        rate = -self.jes_uncertainty / scale
        d_nu = rate * ((dlog_pt * z[:, [0, 4]]).sum(1) + (dlog_m * z[:, [3, 7]]).sum(1) + (dlog_kick * summed).sum(1))
        d_nu = d_nu - 4 * self.jes_uncertainty / scale
        return np.column_stack([self._theta_score(z, theta_poi), d_nu])

    # --- manifold -----------------------------------------------------------------------------------
    def constraint_violations(self, x: np.ndarray) -> np.ndarray:
        """The dimensionless constraint residuals, shape (n, 26) (27 with ``cp_observable``)."""
        return constraint_violations(check_x(x, self.data_dim))

    def distance_to_manifold(self, x: np.ndarray) -> np.ndarray:
        """Root mean square of the constraint residuals (scale-free closure), shape (n,)."""
        return closure(check_x(x, self.data_dim))
