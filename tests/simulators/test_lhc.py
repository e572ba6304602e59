"""LHC WBF H -> gamma gamma generator: manifold, inverse map, SM density, cross section, theta dependence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from mflow_sbi.data.kinematics import azimuth, invariant_mass, pseudorapidity, transverse_momentum
from mflow_sbi.errors import ConfigError, IntractableLikelihood
from mflow_sbi.simulators.lhc import LHC
from mflow_sbi.simulators.lhc_constraints import N_CONSTRAINTS
from mflow_sbi.simulators.lhc_model import wrap_angle

REFERENCE_POINTS = [(0.0, 0.0), (0.5, 0.0), (-1.0, -1.0)]


@pytest.fixture(scope="module")
def sim():
    return LHC()


@pytest.fixture(scope="module")
def reference_samples(sim):
    return {theta: sim.sample(np.array(theta), 5000, np.random.default_rng(3)) for theta in REFERENCE_POINTS}


def sin_2dphi(x: np.ndarray) -> np.ndarray:
    """sin(2 (phi_forward - phi_backward)) computed directly from the jet observables."""
    phi1, phi2 = np.arctan2(x[:, 14], x[:, 13]), np.arctan2(x[:, 20], x[:, 19])
    dphi = np.where(x[:, 17] >= x[:, 23], phi1 - phi2, phi2 - phi1)
    return np.sin(2 * dphi)


@pytest.mark.parametrize("smearing", [False, True])
def test_constraints_hold_on_samples(smearing):
    sim = LHC(smearing=smearing)
    for theta in REFERENCE_POINTS:
        x = sim.sample(np.array(theta), 3000, np.random.default_rng(1))
        violations = sim.constraint_violations(x)
        assert violations.shape == (3000, N_CONSTRAINTS)
        assert np.max(np.abs(violations)) < 1e-9
        assert np.max(sim.distance_to_manifold(x)) < 1e-9


@pytest.mark.parametrize("column", range(40))
def test_every_observable_is_constrained(sim, reference_samples, column):
    """Perturbing any single observable by 1e-4 of its event's energy scale breaks some constraint.

    Unperturbed events violate the constraints by <= 6e-16; over data seeds 0-15 (200 events x 40 columns)
    the smallest violation after the perturbation was 6.4e-8 (one event, column 37), hence 1e-9."""
    x = reference_samples[(0.0, 0.0)][:200].copy()
    assert np.all(sim.distance_to_manifold(x) < 1e-12)
    x[:, column] += 1e-4 * (x[:, 24] if column not in (5, 11, 17, 23, 30, 31, 38, 39) else 1.0)
    assert np.all(sim.distance_to_manifold(x) > 1e-9)


def test_inverse_map_round_trips(sim, reference_samples):
    """Float64 round trips. Angles recovered near the ends of their range (arccos close to +-1) lose digits:
    over data seeds 0-11 the worst event of 3 x 5000 was off by up to 2.3e-9 (relative + absolute), the
    median by ~1e-15, so the tolerance is 1e-7 (a wrong inverse is off by O(1))."""
    for x in reference_samples.values():
        z = sim.latent(x)
        assert z.shape == (len(x), 14)
        np.testing.assert_allclose(sim.embed(z), x, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(sim.latent(sim.embed(z)), z, rtol=1e-7, atol=1e-7)
        assert np.median(np.abs(sim.embed(z) - x)) < 1e-12


def test_sample_events_contract(sim):
    rng_state = np.random.default_rng(8)
    photons, jets = sim.sample_events(np.array([0.5, 0.0]), 2000, rng_state)
    assert photons.shape == jets.shape == (2000, 2, 4)
    for objects in (photons, jets):
        assert np.all(transverse_momentum(objects[:, 0]) >= transverse_momentum(objects[:, 1]))
        assert np.all(transverse_momentum(objects) > 20)
    np.testing.assert_allclose(invariant_mass(photons), 0.0, atol=1e-4)
    assert np.all(np.abs(pseudorapidity(photons)) < 2.5) and np.all(np.abs(pseudorapidity(jets)) < 5)
    assert np.all(np.abs(pseudorapidity(jets[:, 0]) - pseudorapidity(jets[:, 1])) > 2)
    assert np.all(invariant_mass(jets[:, 0] + jets[:, 1]) > 200)
    mgg = invariant_mass(photons[:, 0] + photons[:, 1])
    assert abs(np.mean(mgg) - 125.0) < 0.2 and 1.4 < np.std(mgg) < 1.8
    x = sim.sample(np.array([0.5, 0.0]), 2000, np.random.default_rng(8))
    np.testing.assert_array_equal(x, sim.observables(photons, jets))


def test_sm_latent_density_matches_independent_formula_and_sampler(sim):
    """log p0 against scipy (independent code), and the sampled generation variables against the same laws."""
    d = sim.model.density
    z = sim.model.sample_generated(50_000, np.random.default_rng(4))
    ks = {
        "pt": (z[:, [0, 4]].ravel(), stats.gamma(d.jet_pt_shape, scale=d.jet_pt_scale).cdf),
        "eta_c": (0.5 * (z[:, 1] + z[:, 5]), stats.norm(0, d.eta_center_width).cdf),
        "gap": (np.abs(z[:, 1] - z[:, 5]), stats.gamma(d.deta_shape, scale=d.deta_scale).cdf),
        "dphi": (wrap_angle(z[:, 2] - z[:, 6]),
                 lambda t: (t + np.pi + 0.5 * d.dphi_modulation * np.sin(2 * t)) / (2 * np.pi)),
        "phi": (z[:, 2], stats.uniform(-np.pi, 2 * np.pi).cdf),
        "mass": (z[:, [3, 7]].ravel(), stats.gamma(d.jet_mass_shape, scale=d.jet_mass_scale).cdf),
        "mgg": (z[:, 8], stats.norm(d.higgs_mass, d.mass_resolution).cdf),
        "kick": (z[:, 9:11].ravel(), stats.norm(0, d.kick_width).cdf),
        "y": (z[:, 11], stats.norm(0, d.higgs_rapidity_width).cdf),
        "cos": (z[:, 12], stats.uniform(-1, 2).cdf),
        "phistar": (z[:, 13], stats.uniform(-np.pi, 2 * np.pi).cdf),
    }
    for name, (values, cdf) in ks.items():
        assert stats.kstest(values, cdf).pvalue > 1e-4, name
    assert np.mean(z[:, 1] > z[:, 5]) == pytest.approx(0.5, abs=0.01)

    x = sim.sample(np.zeros(2), 2000, np.random.default_rng(5))
    zs = sim.latent(x)
    expected = (math.log(4.0)
                + stats.gamma.logpdf(zs[:, [0, 4]], d.jet_pt_shape, scale=d.jet_pt_scale).sum(axis=1)
                + stats.norm.logpdf(0.5 * (zs[:, 1] + zs[:, 5]), 0, d.eta_center_width)
                + stats.gamma.logpdf(np.abs(zs[:, 1] - zs[:, 5]), d.deta_shape, scale=d.deta_scale) - math.log(2)
                + np.log((1 + d.dphi_modulation * np.cos(2 * (zs[:, 2] - zs[:, 6]))) / (2 * np.pi) ** 2)
                + stats.gamma.logpdf(zs[:, [3, 7]], d.jet_mass_shape, scale=d.jet_mass_scale).sum(axis=1)
                + stats.norm.logpdf(zs[:, 8], d.higgs_mass, d.mass_resolution)
                + stats.norm.logpdf(zs[:, 9:11], 0, d.kick_width).sum(axis=1)
                + stats.norm.logpdf(zs[:, 11], 0, d.higgs_rapidity_width)
                - math.log(4 * np.pi))
    np.testing.assert_allclose(sim.model.log_density(zs), expected, rtol=1e-10)


@pytest.fixture(scope="module")
def sm_events(sim):
    """Plain SM latent samples (generation labelling) with their acceptance."""
    z = sim.model.sample_generated(400_000, np.random.default_rng(6))
    return z, sim.model.accepted(*sim.model.momenta(z))


@pytest.mark.parametrize("theta", [(0.0, 0.0), (0.7, 0.0), (-1.0, -1.0), (0.3, 1.5)])
def test_cross_section_matches_direct_monte_carlo(sim, sm_events, theta):
    """sigma(theta) = E_p0[w 1_acc] against plain SM samples (no tilts, no symmetry argument)."""
    z, accepted = sm_events
    values = sim.weight(z, np.array(theta)) * accepted
    error = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - sim.cross_section(np.array(theta))[0]) < 4 * error


def test_rejection_sampler_matches_weighted_sm_density(sim, sm_events):
    """Histograms of q and sin 2 dphi from the sampler vs SM samples weighted by w 1_acc / sigma."""
    theta = np.array([-1.0, -1.0])
    n = 30_000
    x = sim.sample(theta, n, np.random.default_rng(9))
    z, accepted = sm_events
    weights = sim.weight(z, theta) * accepted / sim.cross_section(theta)[0]
    zx = sim.latent(x)
    for sampled, reference, edges in [
        (zx[:, 0] * zx[:, 4], z[:, 0] * z[:, 4], np.quantile(zx[:, 0] * zx[:, 4], np.linspace(0, 1, 21))),
        (sin_2dphi(x), np.sin(2 * _signed_dphi(z)), np.linspace(-1, 1, 21)),
    ]:
        counts, _ = np.histogram(sampled, edges)
        expected_w, _ = np.histogram(reference, edges, weights=weights)
        expected_w2, _ = np.histogram(reference, edges, weights=weights**2)
        scale = n / len(z)
        variance = counts + expected_w2 * scale**2
        chi2 = np.sum((counts - expected_w * scale) ** 2 / variance)
        assert stats.chi2.sf(chi2, len(counts)) > 1e-3, chi2


def _signed_dphi(z: np.ndarray) -> np.ndarray:
    dphi = wrap_angle(z[:, 2] - z[:, 6])
    return np.where(z[:, 1] >= z[:, 5], dphi, -dphi)


def test_cp_odd_asymmetry_flips_sign_with_theta_1(sim):
    means = {}
    for t1 in (-0.8, 0.0, 0.8):
        values = sin_2dphi(sim.sample(np.array([0.0, t1]), 20_000, np.random.default_rng(12)))
        means[t1] = (values.mean(), values.std() / np.sqrt(len(values)))
    assert abs(means[0.0][0]) < 4 * means[0.0][1]
    assert means[0.8][0] < -10 * means[0.8][1] and means[-0.8][0] > 10 * means[-0.8][1]


def test_cp_even_operator_hardens_jets(sim):
    pt = {t0: transverse_momentum(sim.sample_events(np.array([t0, 0.0]), 20_000, np.random.default_rng(13))[1])
          for t0 in (0.0, 1.0)}
    assert np.mean(pt[1.0]) > np.mean(pt[0.0]) + 5


def test_smearing_keeps_manifold_but_hides_likelihood():
    smeared, exact = LHC(smearing=True), LHC()
    x_s = smeared.sample(np.zeros(2), 1000, np.random.default_rng(14))
    x_e = exact.sample(np.zeros(2), 1000, np.random.default_rng(14))
    assert not np.allclose(x_s, x_e)
    # momenta are rescaled, directions kept (the pT order may change after smearing)
    for k in (0, 1):
        phi_s = np.sort(azimuth(smeared.momenta(x_s)[k]), axis=1)
        np.testing.assert_allclose(phi_s, np.sort(azimuth(exact.momenta(x_e)[k]), axis=1), atol=1e-12)
    with pytest.raises(IntractableLikelihood, match="smearing"):
        smeared.log_likelihood(x_s, np.zeros(2))
    with pytest.raises(IntractableLikelihood):
        smeared.joint_score(x_s, np.zeros(2))


def test_outside_support_has_zero_density(sim, reference_samples):
    x = reference_samples[(0.0, 0.0)][:10]
    swapped = x.copy()
    swapped[:, 0:6], swapped[:, 6:12] = x[:, 6:12], x[:, 0:6]
    assert np.all(sim.log_likelihood(swapped, np.zeros(2)) == -np.inf)
    assert np.all(np.isfinite(sim.log_likelihood(x, np.zeros(2))))


def test_stale_constants_are_refused(tmp_path, monkeypatch):
    from mflow_sbi.simulators import base

    constants = json.loads((base.CONSTANTS / "lhc.json").read_text())
    constants["cuts"]["mjj_min"] = 300.0
    (tmp_path / "lhc.json").write_text(json.dumps(constants))
    monkeypatch.setattr(base, "CONSTANTS", tmp_path)
    with pytest.raises(ConfigError, match="stale"):
        LHC()


def test_calibration_script_reproduces_stored_acceptances(tmp_path, monkeypatch):
    from mflow_sbi.simulators import base, calibrate_lhc

    stored = json.loads((base.CONSTANTS / "lhc.json").read_text())["cross_section"]
    calibrate_lhc.main(["--events-per-tilt", "40000", "--seed", "5", "--out", str(tmp_path / "lhc.json")])
    fresh = json.loads((tmp_path / "lhc.json").read_text())["cross_section"]
    assert fresh["fingerprint"] == stored["fingerprint"] and fresh["events_per_tilt"] == 40000
    difference = np.array(fresh["acceptance"]) - np.array(stored["acceptance"])
    assert np.all(np.abs(difference) < 5 * np.array(fresh["acceptance_std"]))
    monkeypatch.setattr(base, "CONSTANTS", tmp_path)
    LHC()  # the rewritten file is accepted


@pytest.fixture(scope="module")
def cp_sim():
    return LHC(cp_observable=True)


def test_cp_observable_appends_sin_2dphi_and_keeps_the_rest(sim, cp_sim):
    """Same seed, same events: the first 40 columns are the default simulator's, the 41st is the arctangent
    reference sin 2 dphi_jj, and the likelihood (a function of the latent point) is unchanged."""
    theta = np.array([0.5, -1.0])
    x = cp_sim.sample(theta, 2000, np.random.default_rng(21))
    base = sim.sample(theta, 2000, np.random.default_rng(21))
    assert x.shape == (2000, 41) and cp_sim.data_dim == 41
    np.testing.assert_array_equal(x[:, :40], base)
    np.testing.assert_allclose(x[:, 40], sin_2dphi(base), atol=1e-12)
    np.testing.assert_array_equal(cp_sim.log_likelihood(x, theta), sim.log_likelihood(base, theta))
    np.testing.assert_allclose(x[:, 40], cp_sim.amplitude_terms(cp_sim.latent(x))[2], atol=1e-12)  # the s of w
    np.testing.assert_allclose(cp_sim.embed(cp_sim.latent(x)), x, rtol=1e-7, atol=1e-7)


def test_cp_observable_is_held_by_a_27th_constraint(cp_sim):
    """On the data the 27 residuals vanish (float64, <= 1e-9 as for the 26); moving only the new column by 1e-4
    leaves the first 26 at zero and shows in the 27th (and so in the closure)."""
    x = cp_sim.sample(np.zeros(2), 500, np.random.default_rng(22))
    violations = cp_sim.constraint_violations(x)
    assert violations.shape == (500, N_CONSTRAINTS + 1)
    assert np.max(np.abs(violations)) < 1e-9
    x[:, 40] += 1e-4
    violations = cp_sim.constraint_violations(x)
    assert np.max(np.abs(violations[:, :N_CONSTRAINTS])) < 1e-9
    np.testing.assert_allclose(violations[:, N_CONSTRAINTS], 1e-4, rtol=1e-6)
    assert np.all(cp_sim.distance_to_manifold(x) > 1e-6)


def test_cp_observable_option_is_checked():
    with pytest.raises(ConfigError, match="cp_observable must be true or false, got 'yes'"):
        LHC(cp_observable="yes")
