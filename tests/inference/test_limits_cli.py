"""``mflow-sbi limits`` end to end on the conjugate-Gaussian fake model (loading faked), and its one-line errors."""

import json

import numpy as np
import pytest
from scipy import stats

import mflow_sbi.flows
from mflow_sbi.cli import main
from mflow_sbi.data.datasets import EventData
from mflow_sbi.inference.rates import fit_quadratic_rate, quadratic_features

PNG = b"\x89PNG"


@pytest.fixture
def fake_model(conjugate_problem, monkeypatch, tmp_path):
    problem = conjugate_problem(p=1, n=2, d=3, n_events=20, seed=0)
    monkeypatch.setattr(mflow_sbi.flows, "load_model", lambda path, device=None: problem.model, raising=False)
    observed = EventData(x=problem.x).save(tmp_path / "obs.npz")
    (tmp_path / "model").mkdir()
    return problem, observed


def mle_and_fisher(problem):
    model = problem.model
    A, b = model.A.double().numpy(), model.b.double().numpy()
    chol = model.chol.double().numpy()
    sigma_inv = np.linalg.inv(chol @ chol.T)
    u = problem.x[:, :2] @ model.M.double().numpy().T
    fisher = len(u) * A.T @ sigma_inv @ A
    return np.linalg.solve(fisher, A.T @ sigma_inv @ (u - b).sum(0)), fisher


def test_limits_writes_json_npz_plot_and_analytic_intervals(fake_model, tmp_path, capsys):
    problem, observed = fake_model
    theta_hat, fisher = mle_and_fisher(problem)
    sd = 1 / np.sqrt(fisher[0, 0])
    low, high = theta_hat[0] - 5 * sd, theta_hat[0] + 5 * sd
    out = tmp_path / "lim"
    rc = main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", f"theta_0={low}:{high}:201",
               "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "limits.json").read_text())
    assert summary["dof"] == 1 and summary["metadata"]["rate"] == {"source": "none"}
    assert summary["metadata"]["profiled_nuisances"] == []
    for level in ("0.68", "0.95"):
        half = np.sqrt(stats.chi2.ppf(float(level), 1)) * sd
        (segment,) = summary["intervals"]["theta_0"][level]["segments"]
        np.testing.assert_allclose(segment, [theta_hat[0] - half, theta_hat[0] + half], atol=5e-3 * sd)
    with np.load(out / "limits.npz") as grid:
        assert grid["q"].shape == (201,) and grid["axis_theta_0"][0] == pytest.approx(low)
    assert (out / "limits.png").read_bytes()[:4] == PNG
    assert "theta_0 68% CL" in capsys.readouterr().out


def test_limits_with_a_rate_fit(fake_model, tmp_path):
    """nu(theta) = 20 + 10 (theta - theta_hat) from rate_fit.json (luminosity 2) with n = 20 observed events: the
    Poisson term adds the Fisher information (dnu/dtheta)^2 / nu = 5 at the MLE, so the 68% interval shrinks by
    about sqrt(F / (F + 5)) (exact for a Gaussian; nu changes by < 10% across the interval, so within 2%)."""
    problem, observed = fake_model
    theta_hat, fisher = mle_and_fisher(problem)
    theta = np.linspace(-2, 2, 7)[:, None] + theta_hat
    coefficients = np.array([20.0 - 10.0 * theta_hat[0], 10.0, 0.0]) / 2.0
    fit_quadratic_rate(theta, quadratic_features(theta) @ coefficients).save(tmp_path / "model" / "rate_fit.json")
    sd = 1 / np.sqrt(fisher[0, 0])
    grid = f"theta_0={theta_hat[0] - 5 * sd}:{theta_hat[0] + 5 * sd}:401"
    args = ["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grid]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--rate", "fit", "--luminosity", "2"]) == 0
    plain = json.loads((tmp_path / "a" / "limits.json").read_text())
    rated = json.loads((tmp_path / "b" / "limits.json").read_text())
    assert rated["metadata"]["rate"]["source"] == "fit" and rated["metadata"]["rate"]["luminosity"] == 2.0
    assert rated["metadata"]["rate"]["fit_residuals"]["rms"] < 1e-10

    def width(summary):
        (segment,) = summary["intervals"]["theta_0"]["0.68"]["segments"]
        return segment[1] - segment[0]

    assert width(rated) / width(plain) == pytest.approx(np.sqrt(fisher[0, 0] / (fisher[0, 0] + 5.0)), rel=0.02)


@pytest.mark.parametrize("extra, message", [
    (["--grid", "theta_0"], "NAME=LOW:HIGH:N"),
    (["--grid", "theta_1=-1:1:5"], "not a parameter of the model"),
    (["--grid", "theta_0=-1:1:5", "--rate", "simulator"], "needs --luminosity"),
    (["--grid", "theta_0=-1:1:5", "--rate", "fit", "--luminosity", "1"], "needs a rate fit file"),
    (["--grid", "theta_0=-1:1:5", "--cl", "0.68,1.5"], "confidence levels must lie in (0, 1)"),
])
def test_limits_errors_are_one_line(fake_model, tmp_path, capsys, extra, message):
    _, observed = fake_model
    rc = main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err


def test_expected_limits_are_written_printed_and_plotted(fake_model, tmp_path, capsys):
    """--expected THETA_0: the Asimov intervals have the observed ones' width (the Gaussian q has the same curvature
    for any data) and are centred at THETA_0 within the Monte-Carlo error 4 sigma_1 / sqrt(M)."""
    problem, observed = fake_model
    theta_hat, fisher = mle_and_fisher(problem)
    sd = 1 / np.sqrt(fisher[0, 0])
    theta_0 = theta_hat[0] + 2 * sd
    out = tmp_path / "lim"
    grid = f"theta_0={theta_hat[0] - 6 * sd}:{theta_hat[0] + 6 * sd}:241"
    assert main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grid, "--out", str(out),
                 "--expected", str(theta_0), "--asimov-events", "20000", "--seed", "4"]) == 0
    summary = json.loads((out / "limits.json").read_text())
    expected = summary["expected"]
    assert expected["metadata"] == {"theta_0": [theta_0], "n_expected": 20.0, "asimov_events": 20000, "seed": 4}
    (obs_segment,) = summary["intervals"]["theta_0"]["0.68"]["segments"]
    (exp_segment,) = expected["intervals"]["theta_0"]["0.68"]["segments"]
    assert exp_segment[1] - exp_segment[0] == pytest.approx(obs_segment[1] - obs_segment[0], abs=0.01 * sd)
    assert abs(np.mean(exp_segment) - theta_0) < 4 * sd * np.sqrt(20 / 20000) + 0.01 * sd
    with np.load(out / "limits.npz") as arrays:
        assert arrays["q_expected"].shape == (241,) and arrays["theta_hat_expected"].shape == (1,)
    assert "expected theta_0 68% CL" in capsys.readouterr().out
    assert (out / "limits.png").read_bytes()[:4] == PNG
    assert main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grid, "--out", str(out),
                 "--expected", "0,1"]) == 2
    assert "theta_0 needs 1 value(s)" in capsys.readouterr().err


def test_expected_limits_in_two_parameters_with_a_rate(conjugate_problem, monkeypatch, tmp_path):
    """Two parameters (contours drawn) and a rate: the Asimov data have N = nu(THETA_0) events."""
    problem = conjugate_problem(p=2, n=2, d=3, n_events=20, seed=1)
    monkeypatch.setattr(mflow_sbi.flows, "load_model", lambda path, device=None: problem.model, raising=False)
    observed = EventData(x=problem.x).save(tmp_path / "obs.npz")
    (tmp_path / "model").mkdir()
    theta = np.random.default_rng(0).normal(size=(12, 2))
    coefficients = np.array([20.0, 2.0, -1.0, 0.5, 0.0, 0.5])  # nu = 20 + 2 a - b + (a^2 + b^2) / 2 at luminosity 1
    fit_quadratic_rate(theta, quadratic_features(theta) @ coefficients).save(tmp_path / "model" / "rate_fit.json")
    centre = problem.theta_true
    grids = [f"theta_{k}={centre[k] - 2}:{centre[k] + 2}:21" for k in range(2)]
    out = tmp_path / "lim"
    assert main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grids[0], "--grid", grids[1],
                 "--out", str(out), "--rate", "fit", "--luminosity", "1", "--expected", f"{centre[0]},{centre[1]}",
                 "--asimov-events", "2000"]) == 0
    expected = json.loads((out / "limits.json").read_text())["expected"]
    a, b = centre
    assert expected["metadata"]["n_expected"] == pytest.approx(20 + 2 * a - b + (a * a + b * b) / 2, rel=1e-9)
    assert expected["dof"] == 2 and (out / "limits.png").read_bytes()[:4] == PNG


def test_limits_profile_the_nuisances_of_the_training_data(conjugate_problem, monkeypatch, tmp_path):
    """theta_1 declared a nuisance in training_data.json and left off the grid: profiled with its prior N(0, 2^2) as
    constraint, so the 68% half-width is sqrt(chi2_1^-1(0.68) (P^-1)_00), P = F + diag(0, 1/4) (analytic)."""
    problem = conjugate_problem(p=2, n=2, d=3, n_events=20, seed=3)
    monkeypatch.setattr(mflow_sbi.flows, "load_model", lambda path, device=None: problem.model, raising=False)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "training_data.json").write_text(json.dumps({"nuisance_names": ["theta_1"]}))
    observed = EventData(x=problem.x).save(tmp_path / "obs.npz")
    theta_hat, fisher = mle_and_fisher(problem)
    precision = fisher + np.diag([0.0, 0.25])
    t_star = np.linalg.solve(precision, fisher @ theta_hat)
    sd = np.sqrt(np.linalg.inv(precision)[0, 0])
    grid = f"theta_0={t_star[0] - 4 * sd}:{t_star[0] + 4 * sd}:161"
    out = tmp_path / "lim"
    assert main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grid, "--out", str(out)]) == 0
    summary = json.loads((out / "limits.json").read_text())
    assert summary["metadata"]["profiled_nuisances"] == ["theta_1"] and summary["parameters"] == ["theta_0"]
    assert summary["metadata"]["nuisance_hat"][0] == pytest.approx(t_star[1], abs=0.01 / np.sqrt(precision[1, 1]))
    (segment,) = summary["intervals"]["theta_0"]["0.68"]["segments"]
    half = np.sqrt(stats.chi2.ppf(0.68, 1)) * sd
    np.testing.assert_allclose(segment, [t_star[0] - half, t_star[0] + half], atol=0.01 * sd)


def test_toy_expected_limits_are_written_printed_and_plotted(fake_model, tmp_path, capsys):
    """--toys T with --expected: the conjugate fake model's q is exactly quadratic, so the toys' coverage of THETA_0
    is the level (margin four binomial standard errors for T = 60) and the median 68% interval has the observed
    interval's width within the spread of the toys' end points."""
    problem, observed = fake_model
    theta_hat, fisher = mle_and_fisher(problem)
    sd = 1 / np.sqrt(fisher[0, 0])
    out = tmp_path / "lim"
    grid = f"theta_0={theta_hat[0] - 8 * sd}:{theta_hat[0] + 8 * sd}:161"
    assert main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grid, "--out", str(out),
                 "--expected", str(theta_hat[0]), "--toys", "60", "--seed", "2"]) == 0
    toys = json.loads((out / "limits.json").read_text())["expected_toys"]
    assert toys["n_toys"] == 60 and toys["n_events"]["median"] == 20
    for level in ("0.68", "0.95"):
        c = float(level)
        assert abs(toys["coverage"][level]["fraction"] - c) < 4 * np.sqrt(c * (1 - c) / 60)
    lower, upper = toys["endpoints"]["theta_0"]["0.68"]["lower"], toys["endpoints"]["theta_0"]["0.68"]["upper"]
    assert upper[2] - lower[2] == pytest.approx(2 * sd, abs=0.5 * sd)
    with np.load(out / "limits.npz") as arrays:
        assert arrays["q_toys_theta_0"].shape == (5, 161) and arrays["toy_quantiles"][2] == 0.5
    printed = capsys.readouterr().out
    assert "toys (60) theta_0 68% CL: median [" in printed and "coverage of THETA_0 by the 95% CL region" in printed
    assert (out / "limits.png").read_bytes()[:4] == PNG
    assert main(["limits", str(tmp_path / "model"), "--observed", str(observed), "--grid", grid, "--out",
                 str(tmp_path / "bad"), "--toys", "5"]) == 2
    assert "--toys 5: needs --expected THETA_0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
