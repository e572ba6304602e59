"""``mflow-sbi infer`` / ``plot`` / ``calibrate`` end to end on tiny budgets (model loading faked)."""

import json

import numpy as np
import pytest

import mflow_sbi.flows
from mflow_sbi.cli import main
from mflow_sbi.data.datasets import EventData
from mflow_sbi.inference.posterior import Posterior

PNG = b"\x89PNG"


@pytest.fixture
def fake_model(conjugate_problem, monkeypatch):
    """A conjugate-Gaussian model (3-D data, 1 parameter) returned by ``mflow_sbi.flows.load_model``."""
    problem = conjugate_problem(p=1, n=2, d=3, n_events=20, seed=0)
    loaded = []

    def load_model(path, device=None):
        loaded.append(str(path))
        return problem.model

    monkeypatch.setattr(mflow_sbi.flows, "load_model", load_model, raising=False)
    return problem, loaded


def test_infer_writes_posterior_and_summary(fake_model, tmp_path, capsys):
    problem, loaded = fake_model
    observed = EventData(x=problem.x, theta=np.tile(problem.theta_true, (len(problem.x), 1))).save(tmp_path / "obs.npz")
    out = tmp_path / "post" / "posterior.npz"
    rc = main(["infer", "--model", str(tmp_path / "model"), "--observed", str(observed), "--out", str(out),
               "--walkers", "8", "--steps", "300", "--burn-in", "50", "--seed", "3"])
    assert rc == 0 and loaded == [str(tmp_path / "model")]
    with np.load(out) as npz:
        assert npz["samples"].shape == (8 * 250, 1) and npz["log_prob"].shape == (8 * 250,)
        assert npz["param_names"].tolist() == ["theta_0"]
    posterior = Posterior.load(out)
    assert posterior.metadata["observed_theta"] == pytest.approx(problem.theta_true.tolist())
    assert posterior.metadata["sampler"]["seed"] == 3 and posterior.metadata["cached"] is True
    summary = json.loads((tmp_path / "post" / "posterior_summary.json").read_text())
    entry = summary["parameters"]["theta_0"]
    assert {"mean", "std", "median", "map", "central_68", "central_95", "hpd_68", "hpd_95"} <= set(entry)
    assert abs(entry["mean"] - problem.mean[0]) < 0.5 * np.sqrt(problem.cov[0, 0])
    assert {"acceptance_fraction", "autocorrelation_time", "effective_sample_size"} <= set(summary)
    assert "theta_0" in capsys.readouterr().out


def test_infer_rejects_wrong_observed_dimension(fake_model, tmp_path, capsys):
    observed = EventData(x=np.zeros((4, 5))).save(tmp_path / "obs.npz")
    rc = main(["infer", "--model", "m", "--observed", str(observed), "--out", str(tmp_path / "p.npz")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("mflow-sbi infer: error:") and "dimension 5" in err and "\n" not in err
    assert not (tmp_path / "p.npz").exists()


def test_infer_prior_override_and_bad_walkers(fake_model, tmp_path, capsys):
    problem, _ = fake_model
    observed = EventData(x=problem.x).save(tmp_path / "obs.npz")
    args = ["infer", "--model", "m", "--observed", str(observed), "--out", str(tmp_path / "p.npz"),
            "--steps", "60", "--burn-in", "10"]
    assert main([*args, "--prior", "uniform(-1,1)", "--prior", "uniform(0,1)"]) == 2
    assert "prior has 2 parameter(s) but the model has 1" in capsys.readouterr().err
    assert main([*args, "--walkers", "1"]) == 2
    assert "at least 2 x 1 = 2 walkers" in capsys.readouterr().err
    assert main([*args, "--walkers", "4", "--prior", "uniform(-0.5,0.5)", "--no-cache"]) == 0
    posterior = Posterior.load(tmp_path / "p.npz")
    assert np.all(np.abs(posterior.samples) <= 0.5) and posterior.metadata["cached"] is False


def make_posterior_file(path, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    chain = shift + rng.normal(size=(120, 8, 2))
    posterior = Posterior(chain[20:].reshape(-1, 2), -0.5 * np.sum(chain[20:] ** 2, axis=2).ravel(), ("a", "b"),
                          metadata={"sampler": {"burn_in": 20}, "observed_theta": [0.0, 0.0]}, chain=chain[20:],
                          chain_log_prob=-0.5 * np.sum(chain[20:] ** 2, axis=2), burn_in_chain=chain[:20],
                          diagnostics={"autocorrelation_time": [1.0, 1.0]})
    return posterior.save(path)


def test_plot_corner_trace_and_autocorrelation(tmp_path):
    first = make_posterior_file(tmp_path / "a.npz")
    second = make_posterior_file(tmp_path / "b.npz", shift=0.5, seed=1)
    outputs = [tmp_path / name for name in ("corner.png", "trace.png", "acf.png")]
    rc = main(["plot", str(first), str(second), "--out", str(outputs[0]), "--truth", "0.1,-0.2", "--names", "x,y",
               "--trace", str(outputs[1]), "--autocorr", str(outputs[2])])
    assert rc == 0
    for path in outputs:
        assert path.read_bytes()[:4] == PNG
    assert main(["plot", str(first), "--out", str(tmp_path / "single.png")]) == 0  # truth from metadata
    assert (tmp_path / "single.png").read_bytes()[:4] == PNG


def test_plot_errors(tmp_path, capsys):
    first = make_posterior_file(tmp_path / "a.npz")
    assert main(["plot", str(first), "--out", str(tmp_path / "c.png"), "--truth", "1,2,3"]) == 2
    assert "truth must have 2 value(s)" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "c.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


def test_calibrate_writes_results(fake_model, tmp_path):
    out = tmp_path / "cal"
    rc = main(["calibrate", "--model", "m", "--simulator", "polynomial_surface", "--n-datasets", "3",
               "--n-events", "5", "--rank-samples", "10", "--walkers", "4", "--steps", "80", "--burn-in", "20",
               "--out", str(out)])
    assert rc == 0
    with np.load(out / "calibration.npz") as npz:
        assert npz["ranks"].shape == (3, 1) and npz["credibility"].shape == (3,)
    assert json.loads((out / "calibration_summary.json").read_text())["n_datasets"] == 3
    for name in ("sbc_ranks.png", "coverage.png"):
        assert (out / name).read_bytes()[:4] == PNG


def test_calibrate_rejects_mismatched_simulator(conjugate_problem, monkeypatch, tmp_path, capsys):
    problem = conjugate_problem(p=1, n=1, d=2)
    monkeypatch.setattr(mflow_sbi.flows, "load_model", lambda path, device=None: problem.model, raising=False)
    rc = main(["calibrate", "--model", "m", "--simulator", "polynomial_surface", "--n-events", "5",
               "--out", str(tmp_path)])
    assert rc == 2 and "data dimension 3" in capsys.readouterr().err


def test_nuisance_parameters_are_marginalized_and_hidden_by_default(conjugate_problem, monkeypatch, tmp_path, capsys):
    """A model whose training data declare theta_1 a nuisance: the MCMC samples both (marginalizing theta_1), the
    summary's ``parameters`` and the printout show theta_0, ``nuisance_parameters`` theta_1; --show-nuisance prints
    both, and the corner plot works either way."""
    problem = conjugate_problem(p=2, n=2, d=3, n_events=20, seed=0)
    monkeypatch.setattr(mflow_sbi.flows, "load_model", lambda path, device=None: problem.model, raising=False)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "training_data.json").write_text(json.dumps({"nuisance_names": ["theta_1"]}))
    (tmp_path / "model" / "weights.pt").write_bytes(b"fake")  # the MCMC checkpoint is keyed by the weights file
    observed = EventData(x=problem.x).save(tmp_path / "obs.npz")
    args = ["infer", "--model", str(tmp_path / "model"), "--observed", str(observed), "--walkers", "8", "--steps", "200",
            "--burn-in", "50"]
    assert main([*args, "--out", str(tmp_path / "p.npz")]) == 0
    printed = capsys.readouterr().out
    assert "nuisance parameters (marginalized, not shown): theta_1" in printed and "\ntheta_1 " not in printed
    summary = json.loads((tmp_path / "p_summary.json").read_text())
    assert list(summary["parameters"]) == ["theta_0"] and list(summary["nuisance_parameters"]) == ["theta_1"]
    posterior = Posterior.load(tmp_path / "p.npz")
    assert posterior.dim == 2 and posterior.nuisance_names == ("theta_1",)
    marginal = posterior.of_interest()
    assert marginal.parameter_names == ("theta_0",) and np.array_equal(marginal.samples[:, 0], posterior.samples[:, 0])
    assert marginal.chain.shape == (150, 8, 1) and marginal.burn_in_chain.shape == (50, 8, 1)
    assert main([*args, "--out", str(tmp_path / "q.npz"), "--show-nuisance"]) == 0
    assert "\ntheta_1 " in capsys.readouterr().out
    for extra in ([], ["--show-nuisance"]):
        assert main(["plot", str(tmp_path / "p.npz"), "--out", str(tmp_path / "c.png"), *extra]) == 0
        assert (tmp_path / "c.png").read_bytes()[:4] == PNG
