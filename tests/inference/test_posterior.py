"""Posterior container: persistence, summaries, MAP, file errors."""

import json

import numpy as np
import pytest
from scipy.stats import norm

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.inference.posterior import Posterior


def gaussian_posterior(n=40_000, seed=0, with_chain=False):
    rng = np.random.default_rng(seed)
    mean, std = np.array([0.5, -2.0]), np.array([0.1, 3.0])
    samples = mean + std * rng.standard_normal((n, 2))
    log_prob = -0.5 * np.sum(((samples - mean) / std) ** 2, axis=1)
    chain = samples[: 200 * 8].reshape(200, 8, 2) if with_chain else None
    diagnostics = {"acceptance_fraction": 0.4, "autocorrelation_time": [5.0, 6.0],
                   "effective_sample_size": [8000.0, 6666.7], "split_rhat": [1.0, 1.001], "warnings": ["a warning"]}
    return Posterior(samples, log_prob, ("alpha", "beta"), (r"$\alpha$", r"$\beta$"), diagnostics,
                     {"sampler": {"burn_in": 20}, "observed_fingerprint": "abc"}, chain,
                     chain[..., 0] if with_chain else None), mean, std


def test_summary_matches_the_generating_gaussian():
    """40k iid N(mean, std^2) draws. Worst errors over seeds 0-29, in units of std: mean 0.010, MAP 0.016,
    central 95% endpoints 0.032 (tolerance 0.07), relative std 0.007; the 68% HPD interval's endpoints up
    to 0.068 (a symmetric density's HPD slides along its flat optimum; tolerance 0.15) while its length
    (relative 0.014; tolerance 0.03) and true content (0.007 off 0.68; tolerance 0.015) stay put."""
    posterior, mean, std = gaussian_posterior()
    summary = posterior.summary()
    assert summary["n_samples"] == 40_000
    for k, name in enumerate(("alpha", "beta")):
        entry = summary["parameters"][name]
        assert entry["mean"] == pytest.approx(mean[k], abs=0.02 * std[k])
        assert entry["std"] == pytest.approx(std[k], rel=0.02)
        assert entry["map"] == pytest.approx(mean[k], abs=0.05 * std[k])
        assert entry["central_95"] == pytest.approx([mean[k] - 1.96 * std[k], mean[k] + 1.96 * std[k]],
                                                    abs=0.07 * std[k])
        low, high = entry["hpd_68"]
        assert (high - low) / (2 * 0.9945 * std[k]) == pytest.approx(1.0, abs=0.03)
        assert norm.cdf(high, mean[k], std[k]) - norm.cdf(low, mean[k], std[k]) == pytest.approx(0.68, abs=0.015)
        assert [low, high] == pytest.approx([mean[k] - 0.9945 * std[k], mean[k] + 0.9945 * std[k]], abs=0.15 * std[k])
    assert summary["autocorrelation_time"] == {"alpha": 5.0, "beta": 6.0}
    assert summary["acceptance_fraction"] == 0.4 and summary["warnings"] == ["a warning"]
    np.testing.assert_array_equal(posterior.map_estimate, posterior.samples[np.argmax(posterior.log_prob)])


def test_text_summary_names_everything():
    text = gaussian_posterior()[0].format_summary()
    for word in ("alpha", "beta", "hpd_95", "central_68", "acceptance fraction: 0.400", "ESS", "WARNING: a warning"):
        assert word in text


def test_save_load_round_trip(tmp_path):
    posterior, _, _ = gaussian_posterior(n=2000, with_chain=True)
    path = posterior.save(tmp_path / "post.npz")
    with np.load(path) as npz:
        assert {"samples", "log_prob", "param_names"} <= set(npz.files)
        assert npz["samples"].shape == (2000, 2) and npz["log_prob"].shape == (2000,)
        assert npz["param_names"].tolist() == ["alpha", "beta"]
    loaded = Posterior.load(path)
    np.testing.assert_array_equal(loaded.samples, posterior.samples)
    np.testing.assert_array_equal(loaded.chain, posterior.chain)
    np.testing.assert_array_equal(loaded.chain_log_prob, posterior.chain_log_prob)
    assert loaded.parameter_names == ("alpha", "beta") and loaded.labels == (r"$\alpha$", r"$\beta$")
    assert loaded.diagnostics == posterior.diagnostics and loaded.metadata == posterior.metadata
    summary_path = posterior.save_summary(tmp_path / "summary.json")
    assert json.loads(summary_path.read_text())["parameters"]["beta"]["hpd_95"] == posterior.summary()[
        "parameters"]["beta"]["hpd_95"]


def steps_posterior(steps=50, walkers=4, burn_in=10):
    """A posterior whose chain values encode (step, walker): value = 100 step + walker, log_prob = -step."""
    step, walker = np.meshgrid(np.arange(steps), np.arange(walkers), indexing="ij")
    chain = (100.0 * step + walker)[:, :, None]
    log_prob = -step.astype(float)
    kept = chain[burn_in:]
    return Posterior(kept.reshape(-1, 1), log_prob[burn_in:].ravel(), metadata={"sampler": {"burn_in": burn_in}},
                     chain=kept, chain_log_prob=log_prob[burn_in:], burn_in_chain=chain[:burn_in],
                     burn_in_log_prob=log_prob[:burn_in]), chain, log_prob


def test_burn_in_is_stored_beside_the_kept_chain(tmp_path):
    posterior, chain, log_prob = steps_posterior()
    path = posterior.save(tmp_path / "post.npz")
    with np.load(path) as npz:
        assert npz["chain"].shape == (40, 4, 1) and npz["burn_in_chain"].shape == (10, 4, 1)
        assert npz["chain_log_prob"].shape == (40, 4) and npz["burn_in_log_prob"].shape == (10, 4)
        assert npz["chain"].min() == 1000  # step 10, walker 0: the first kept step
    loaded = Posterior.load(path)
    assert loaded.burn_in == 10
    np.testing.assert_array_equal(loaded.chain, chain[10:])
    np.testing.assert_array_equal(loaded.burn_in_chain, chain[:10])
    full, full_log_prob = loaded.full_chain()
    np.testing.assert_array_equal(full, chain)
    np.testing.assert_array_equal(full_log_prob, log_prob)


def test_a_kept_chain_without_burn_in_round_trips_as_such(tmp_path):
    """No stored burn-in writes an empty burn_in_chain, so the file is not mistaken for the old layout and
    re-split at the burn-in its metadata records."""
    posterior, chain, _ = steps_posterior()
    bare = Posterior(posterior.samples, posterior.log_prob, metadata=posterior.metadata, chain=posterior.chain)
    loaded = Posterior.load(bare.save(tmp_path / "p.npz"))
    assert loaded.burn_in == 0 and loaded.chain_log_prob is None
    np.testing.assert_array_equal(loaded.chain, chain[10:])


def test_old_files_with_the_burn_in_inside_the_chain_are_split_at_the_recorded_burn_in(tmp_path):
    posterior, chain, log_prob = steps_posterior()
    arrays = {"samples": posterior.samples, "log_prob": posterior.log_prob, "param_names": np.array(["theta_0"]),
              "metadata": np.array(json.dumps(posterior.metadata)), "chain": chain, "chain_log_prob": log_prob}
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = Posterior.load(tmp_path / "old.npz")
    assert loaded.burn_in == 10
    np.testing.assert_array_equal(loaded.chain, chain[10:])
    np.testing.assert_array_equal(loaded.chain_log_prob, log_prob[10:])
    np.testing.assert_array_equal(loaded.burn_in_log_prob, log_prob[:10])
    np.savez(tmp_path / "short.npz", **{**arrays, "chain": chain[:10], "chain_log_prob": log_prob[:10]})
    with pytest.raises(DataFileError, match="short.npz: the chain has 10 steps, not more than its recorded burn-in 10"):
        Posterior.load(tmp_path / "short.npz")


def test_chain_shapes_are_checked():
    posterior, chain, log_prob = steps_posterior()
    args = (posterior.samples, posterior.log_prob)
    with pytest.raises(InputError, match=r"burn_in_chain must have shape \(steps, 4, 1\), got \(10, 3, 1\)"):
        Posterior(*args, chain=chain[10:], burn_in_chain=chain[:10, :3])
    with pytest.raises(InputError, match=r"the log posterior of chain must have shape \(40, 4\)"):
        Posterior(*args, chain=chain[10:], chain_log_prob=log_prob)
    with pytest.raises(InputError, match="burn_in_chain given without the kept chain"):
        Posterior(*args, burn_in_chain=chain[:10])


def test_numpy_metadata_is_stored_as_plain_json(tmp_path):
    posterior = Posterior(np.zeros((3, 1)), np.zeros(3), metadata={"truth": np.array([0.5]), "n": np.int64(3)},
                          diagnostics={"tau": (np.float32(2.0),)})
    loaded = Posterior.load(posterior.save(tmp_path / "p.npz"))
    assert loaded.metadata == {"truth": [0.5], "n": 3} and loaded.diagnostics == {"tau": [2.0]}
    assert json.loads(posterior.save_summary(tmp_path / "s.json").read_text())["metadata"]["truth"] == [0.5]


def test_minimal_file_from_elsewhere_loads(tmp_path):
    np.savez(tmp_path / "bare.npz", samples=np.zeros((5, 1)) + np.arange(5)[:, None], log_prob=np.zeros(5))
    loaded = Posterior.load(tmp_path / "bare.npz")
    assert loaded.parameter_names == ("theta_0",) and loaded.chain is None and loaded.metadata == {}


def test_file_errors(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        Posterior.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "events.npz", x=np.zeros((3, 2)))
    with pytest.raises(DataFileError, match="missing"):
        Posterior.load(tmp_path / "events.npz")
    np.savez(tmp_path / "bad.npz", samples=np.zeros((5, 2)), log_prob=np.zeros(4))
    with pytest.raises(DataFileError, match="log_prob must have shape"):
        Posterior.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataFileError, match="junk.npz: not an .npz archive"):
        Posterior.load(tmp_path / "junk.npz")


def test_constructor_checks_names():
    with pytest.raises(InputError, match="need 2 parameter names"):
        Posterior(np.zeros((4, 2)), np.zeros(4), parameter_names=("a",))
